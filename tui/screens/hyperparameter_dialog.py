"""The `h` dialog: change momentum, weight decay, gradient clip or early-stopping patience."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from tui_train.core import limits
from tui_train.core.commands import LIVE_HYPERPARAMETERS
from tui_train.tui import format as fmt


def parse_hyperparameter(key: str, text: str) -> float | int:
    """Validate text for a live hyperparameter against ``core.limits`` (the engine's range); ValueError
    (a :class:`core.limits.LimitError`) with a one-line reason otherwise. The learning rate is refused:
    it has its own dialog (l)."""
    if key not in LIVE_HYPERPARAMETERS:
        raise limits.LimitError(f"{key!r} is not set here (this dialog changes {', '.join(LIVE_HYPERPARAMETERS)})")
    return limits.parse(key, text)


class HyperparameterDialog(ModalScreen[tuple[str, float | int] | None]):
    """Pick a live hyperparameter and type its value; dismisses with (key, value) or None."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, current: dict) -> None:
        super().__init__()
        self.current = dict(current)
        """Current values as reported by the engine."""

    def compose(self) -> ComposeResult:
        options = [(fmt.literal(f"{k.replace('_', ' ')} (now {fmt.num(self.current.get(k))})"), k) for k in LIVE_HYPERPARAMETERS]
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
        return fmt.printable(fmt.num(value)) if value is not None else ""  # an Input shows control characters raw

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
            self.query_one("#hp-error", Static).update(fmt.literal(err))
            return
        self.dismiss((key, value))

    def action_cancel(self) -> None:
        self.dismiss(None)
