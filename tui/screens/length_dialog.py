"""The `E` dialog: change the run's length (epochs or max_steps) while it trains, and what the LR
schedule does (stretch or keep; core.length)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from tui_train.core import length, limits
from tui_train.tui import format as fmt

POLICY_HELP = {"stretch": "the rest of the LR schedule is re-laid over the new length (no jump; a cosine still ends at its floor)",
               "keep": "the LR schedule stays; steps past its end run at its final value"}
"""What each policy does, as the dialog says it."""


def parse_length(key: str, text: str) -> int:
    """Typed text for ``key`` ('epochs' or 'max_steps') -> the whole number the engine checks again
    (the config field's range); ValueError (a :class:`core.limits.LimitError`) with a one-line reason.
    Whether it is shorter than what is done only the run knows: it refuses with the reason."""
    if key not in length.KEYS:
        raise limits.LimitError(f"{key!r} is not a length (allowed: {', '.join(length.KEYS)})")
    return int(limits.parse(key, text))


class LengthDialog(ModalScreen[tuple[str, int, str] | None]):
    """Pick epochs or max_steps, type the new value, pick the policy; dismisses with (key, value,
    policy) or None."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, current: dict, policy: str) -> None:
        super().__init__()
        self.current = dict(current)
        """The length as last reported: {'epochs': N, 'max_steps': M}."""
        self.policy = policy if policy in length.POLICIES else length.POLICIES[0]
        """The run's default policy (schedule.on_length_change), selected first."""

    def compose(self) -> ComposeResult:
        keys = [(fmt.literal(f"{k.replace('_', ' ')} (now {self.current.get(k, '?')}{', 0 = none' if k == 'max_steps' else ''})"), k)
                for k in length.KEYS]
        policies = [(f"{p}{' (the run default)' if p == self.policy else ''}", p) for p in length.POLICIES]
        with Vertical(classes="dialog"):
            yield Label("Change the run's length", classes="dialog-title")
            yield Static("Never shorter than what is done · Tab moves · Enter applies · Esc cancels", classes="dialog-help")
            yield Select(keys, value=length.KEYS[0], allow_blank=False, id="length-key")
            yield Input(value=str(self.current.get(length.KEYS[0], "")), id="length-value")
            yield Select(policies, value=self.policy, allow_blank=False, id="length-policy")
            yield Static(fmt.literal(POLICY_HELP[self.policy]), id="length-policy-help", classes="dialog-help")
            yield Static("", id="length-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#length-value", Input).focus()

    @on(Select.Changed, "#length-key")
    def _key_changed(self, event: Select.Changed) -> None:
        self.query_one("#length-value", Input).value = str(self.current.get(str(event.value), ""))
        self.query_one("#length-error", Static).update("")

    @on(Select.Changed, "#length-policy")
    def _policy_changed(self, event: Select.Changed) -> None:
        self.query_one("#length-policy-help", Static).update(fmt.literal(POLICY_HELP.get(str(event.value), "")))

    @on(Input.Submitted, "#length-value")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        key = str(self.query_one("#length-key", Select).value)
        try:
            value = parse_length(key, event.value)
        except ValueError as err:
            self.query_one("#length-error", Static).update(fmt.literal(err))
            return
        self.dismiss((key, value, str(self.query_one("#length-policy", Select).value)))

    def action_cancel(self) -> None:
        self.dismiss(None)
