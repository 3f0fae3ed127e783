"""The Sweep screen's `+` dialog: how many more trials a random or Optuna sweep plans."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.core.sweep.space import MAX_TRIALS
from tui_train.tui.format import literal


def parse_count(text: str, planned: int) -> int:
    """'4' -> 4: a whole number of trials, at least 1, the sweep staying within
    :data:`core.sweep.space.MAX_TRIALS` (ValueError with a one-line reason)."""
    try:
        count = int(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a whole number of trials") from None
    if count < 1:
        raise ValueError("at least 1 trial")
    if planned + count > MAX_TRIALS:
        raise ValueError(f"a sweep plans at most {MAX_TRIALS} trials ({planned} planned now)")
    return count


class ExtendDialog(ModalScreen[int | None]):
    """Asks for a number of trials; dismisses with it, or None on Escape."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, method: str, planned: int) -> None:
        super().__init__()
        self.method = method
        """'random' (the next draws of the seeded plan) or 'optuna' (asked of the study)."""
        self.planned = planned
        """Trials planned now."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("More trials", classes="dialog-title")
            how = "drawn from the same space" if self.method == "random" else "asked of Optuna's study"
            yield Static(f"{self.planned} planned now; the new ones are {how} · Enter adds them, Esc cancels",
                         classes="dialog-help")
            yield Input(value="1", id="extend-input")
            yield Static("", id="extend-error", classes="dialog-error")

    @on(Input.Submitted, "#extend-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            count = parse_count(event.value, self.planned)
        except ValueError as err:
            self.query_one("#extend-error", Static).update(literal(err))
            return
        self.dismiss(count)

    def action_cancel(self) -> None:
        self.dismiss(None)
