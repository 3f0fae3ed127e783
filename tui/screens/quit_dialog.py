"""Asked by `q` while a run is active: save a checkpoint and quit, quit, or stay."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class QuitDialog(ModalScreen[str | None]):
    """Dismisses with 'save' (checkpoint, then quit), 'quit', or None (stay)."""

    BINDINGS = [("s", "choose('save')", "Save & quit"), ("q", "choose('quit')", "Quit"),
                ("escape", "choose(None)", "Cancel"), ("c", "choose(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit while the run is active?", classes="dialog-title")
            yield Static("Training stops at the end of the current step (the engine saves an interrupt "
                         "checkpoint). Save first to get a manual checkpoint as well.", classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save & quit (s)", variant="primary", id="save")
                yield Button("Quit (q)", variant="error", id="quit")
                yield Button("Cancel (c)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
