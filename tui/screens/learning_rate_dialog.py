"""The `l` dialog: type a new base learning rate; invalid text is refused in place."""

from __future__ import annotations

import math

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui import format as fmt


def parse_learning_rate(text: str) -> float:
    """'3e-4' -> 0.0003. Raises ValueError with a one-line reason for anything not finite and > 0."""
    text = text.strip()
    if not text:
        raise ValueError("type a learning rate, e.g. 3e-4 or 0.001")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number (e.g. 3e-4 or 0.001)") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite: the learning rate must be a finite number > 0")
    if value <= 0:
        raise ValueError(f"{text!r}: the learning rate must be > 0")
    return value


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
            self.query_one("#lr-error", Static).update(str(err))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
