"""`?`: every key, in one table; Esc, q or ? closes it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui_train.tui.format import literal
from tui_train.tui.keys import help_rows

KEYS: list[tuple[str, str]] = help_rows()
"""Key -> what it does (built from :mod:`tui.keys`: the dashboard's and the app's bindings, then
Textual's and the launcher's keys)."""


class HelpScreen(ModalScreen[None]):
    """Lists every key."""

    BINDINGS = [("escape", "close", "Close"), ("q", "close", "Close"), ("question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, expand=True, padding=(0, 1))
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("action", ratio=1)
        for key, text in KEYS:
            table.add_row(literal(key), literal(text))  # a str cell is markup: "[" and "]" are keys here
        with VerticalScroll(classes="dialog help"):
            yield Label("tui-train keys", classes="dialog-title")
            yield Static(table)
            yield Static("Markers on the plots: L lr change · P pause · R resume · C checkpoint · E early stop · "
                         "! non-finite loss · V validation.  ✎ marks live-editable hyperparameters; ★ the best epoch.",
                         classes="dialog-help")
            yield Static("Esc closes this help.", classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)
