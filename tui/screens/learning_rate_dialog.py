"""The `l` dialog: type a new base learning rate; invalid text is refused in place."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.core import limits
from tui_train.tui import format as fmt


def parse_learning_rate(text: str) -> float:
    """'3e-4' -> 0.0003. Raises ValueError (a :class:`core.limits.LimitError`) with a one-line reason
    for anything the engine would refuse (the range of ``core.limits.LIMITS["lr"]``)."""
    return float(limits.parse("lr", text))


class LearningRateDialog(ModalScreen[float | None]):
    """Asks for a learning rate; dismisses with the float, or None on Escape."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, current: float | None) -> None:
        super().__init__()
        self.current = current
        """The base LR shown as the starting text."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Set the base learning rate", classes="dialog-title")
            yield Static(f"current: {fmt.lr(self.current)} · the schedule multiplies it · Enter applies, Esc cancels",
                         classes="dialog-help")
            yield Input(value=fmt.lr(self.current) if self.current else "", placeholder="e.g. 3e-4 or 0.001", id="lr-input")
            yield Static("", id="lr-error", classes="dialog-error")

    @on(Input.Submitted, "#lr-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = parse_learning_rate(event.value)
        except ValueError as err:
            self.query_one("#lr-error", Static).update(fmt.literal(err))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
