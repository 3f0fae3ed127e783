"""The `h` dialog: change momentum, weight decay, gradient clip or early-stopping patience."""

from __future__ import annotations

import math

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from core.commands import LIVE_HYPERPARAMETERS
from tui import format as fmt

RULES = {
    "momentum": (0.0, 1.0, False, "a number in [0, 1)"),
    "weight_decay": (0.0, 1.0, True, "a number in [0, 1]"),
    "grad_clip": (0.0, None, True, "a number >= 0 (0 turns clipping off)"),
    "patience": (0.0, None, True, "a whole number of epochs >= 0"),
}
"""key -> (min, max or None, max inclusive, what is allowed)."""


def parse_hyperparameter(key: str, text: str) -> float:
    """Validate text for a live hyperparameter; ValueError with a one-line reason otherwise."""
    if key not in RULES:
        raise ValueError(f"{key!r} cannot be changed live (allowed: {', '.join(LIVE_HYPERPARAMETERS)})")
    lo, hi, hi_inclusive, allowed = RULES[key]
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{key}: {text.strip()!r} is not a number; expected {allowed}") from None
    if not math.isfinite(value) or value < lo or (hi is not None and (value > hi or (value == hi and not hi_inclusive))):
        raise ValueError(f"{key}: {text.strip()} is out of range; expected {allowed}")
    if key == "patience":
        if value != int(value):
            raise ValueError(f"patience: expected {allowed}")
        value = float(int(value))
    return value


class HyperparameterDialog(ModalScreen[tuple[str, float] | None]):
    """Pick a live hyperparameter and type its value; dismisses with (key, value) or None."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, current: dict) -> None:
        super().__init__()
        self.current = dict(current)
        """Current values as reported by the engine."""

    def compose(self) -> ComposeResult:
        options = [(f"{k.replace('_', ' ')} (now {fmt.num(self.current.get(k))})", k) for k in LIVE_HYPERPARAMETERS]
        with Vertical(classes="dialog"):
            yield Label("Change a hyperparameter", classes="dialog-title")
            yield Static("Tab moves between fields · Enter applies · Esc cancels", classes="dialog-help")
            yield Select(options, value=LIVE_HYPERPARAMETERS[0], allow_blank=False, id="hp-key")
            yield Input(value=self._text_for(LIVE_HYPERPARAMETERS[0]), id="hp-value")
            yield Static("", id="hp-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#hp-value", Input).focus()

    def _text_for(self, key: str) -> str:
        value = self.current.get(key)
        return fmt.num(value) if value is not None else ""

    @on(Select.Changed, "#hp-key")
    def _key_changed(self, event: Select.Changed) -> None:
        self.query_one("#hp-value", Input).value = self._text_for(str(event.value))
        self.query_one("#hp-error", Static).update("")

    @on(Input.Submitted, "#hp-value")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        key = str(self.query_one("#hp-key", Select).value)
        try:
            value = parse_hyperparameter(key, event.value)
        except ValueError as err:
            self.query_one("#hp-error", Static).update(str(err))
            return
        self.dismiss((key, value))

    def action_cancel(self) -> None:
        self.dismiss(None)
