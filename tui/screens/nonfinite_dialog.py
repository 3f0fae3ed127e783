"""Shown when the engine pauses for a non-finite loss: resume, roll back (LR halved) or stop."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class NonFiniteDialog(ModalScreen[str | None]):
    """Dismisses with 'rollback', 'resume', 'stop', or None (stay paused and decide later)."""

    BINDINGS = [("b", "choose('rollback')", "Roll back"), ("r", "choose('resume')", "Resume"),
                ("e", "choose('stop')", "Stop"), ("escape", "choose(None)", "Stay paused")]

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
        """The engine's reason for pausing (names the step and the value)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Non-finite loss: training is paused", classes="dialog-title")
            yield Static(self.reason, classes="dialog-help")
            yield Static("Roll back: restore the last good weights (at most a second old when the loss was finite) and halve the "
                         "learning rate. Resume: go on as is. Stop: roll back, then early stop (evaluate, save).",
                         classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Roll back, LR/2 (b)", variant="primary", id="rollback")
                yield Button("Resume (r)", id="resume")
                yield Button("Stop (e)", variant="error", id="stop")

    def on_mount(self) -> None:
        self.query_one("#rollback", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
