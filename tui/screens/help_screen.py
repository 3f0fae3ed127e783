"""`?`: every key, in one table; Esc, q or ? closes it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KEYS: list[tuple[str, str]] = [
    ("space", "pause / resume (the badge changes when the engine reports it)"),
    ("l", "set the base learning rate (dialog: 3e-4, 0.001; must be finite and > 0)"),
    ("[  /  ]", "halve / double the learning rate"),
    ("h", "change momentum, weight decay, gradient clip or early-stopping patience"),
    ("s", "save a checkpoint now (the event log shows its path)"),
    ("v", "validate now"),
    ("e", "early stop: finish the step, evaluate, save, end as EARLY STOPPED (asks first)"),
    ("b", "roll back: restore the last good weights (snapshot at most a second old), halve the LR"),
    ("t", "switch the lower panel between the event log and the epoch table (small terminals)"),
    ("n", "new run: back to the launcher (after the run ended)"),
    ("q", "quit (asks while a run is active, offering to save)"),
    ("?", "this help"),
    ("ctrl+p", "command palette: the same actions by name"),
    ("tab / shift+tab", "move the focus; arrows scroll the focused table or log"),
    ("launcher: ↑ ↓ enter", "pick a preset, edit lr / batch size / epochs / optimizer, Enter starts"),
]
"""Key -> what it does (the dashboard's and launcher's bindings, for the help screen and README)."""


class HelpScreen(ModalScreen[None]):
    """Lists every key."""

    BINDINGS = [("escape", "close", "Close"), ("q", "close", "Close"), ("question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, expand=True, padding=(0, 1))
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("action", ratio=1)
        for key, text in KEYS:
            table.add_row(key, text)
        with VerticalScroll(classes="dialog help"):
            yield Label("tui-train keys", classes="dialog-title")
            yield Static(table)
            yield Static("Markers on the plots: L lr change · P pause · R resume · C checkpoint · E early stop · "
                         "! non-finite loss · V validation.  ✎ marks live-editable hyperparameters; ★ the best epoch.",
                         classes="dialog-help")
            yield Static("Esc closes this help.", classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)
