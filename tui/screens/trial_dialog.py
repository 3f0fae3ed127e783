"""The Sweep screen's `n` dialog: one more trial, its values edited from the selected trial's.

One field per parameter of the sweep, prefilled, and a field for other ``--set`` changes; Enter
checks the whole trial against the sweep's preset (the ``check`` the screen injects:
:meth:`tui.sweep_session.SweepSession.check_params`) and refuses it in place with the one line the
preset schema says, so nothing invalid is ever queued.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.tui.format import literal


def parse_params(values: dict[str, str], other: str) -> dict[str, str]:
    """The trial's parameters: each field's text (an empty one left out), then ``other``'s
    ``key=value`` texts (ValueError with a one-line reason when one cannot be read)."""
    params = {k: v.strip() for k, v in values.items() if v.strip()}
    try:
        items = shlex.split(other)
    except ValueError as e:
        raise ValueError(f"cannot read the other changes: {e}") from None
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r}: write section.key=value, e.g. train.epochs=5")
        params[key.strip()] = value
    if not params:
        raise ValueError("give at least one value")
    return params


class TrialDialog(ModalScreen[dict | None]):
    """Asks for a trial's parameters; dismisses with them (checked), or None on Escape."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, params: dict, check: Callable[[dict], str], based_on: int | None = None) -> None:
        super().__init__()
        self.params = {str(k): v for k, v in params.items()}
        """The values the fields start with (parameter -> value)."""
        self.check = check
        """Parameters -> '' when they make a valid run of the preset, else its one line."""
        self.based_on = based_on
        """The trial whose values are shown (None: none selected)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("One more trial", classes="dialog-title")
            origin = f"trial {self.based_on}'s values" if self.based_on is not None else "the sweep's parameters"
            yield Static(f"{origin}, to edit · each is checked against the preset · Enter queues it, Esc cancels",
                         classes="dialog-help")
            with VerticalScroll(id="trial-fields"):
                for i, (key, value) in enumerate(self.params.items()):
                    with Horizontal(classes="trial-field"):
                        yield Label(literal(key), classes="trial-key")  # keys from sweep.json: literal
                        yield Input(value="" if value is None else str(value), id=f"trial-value-{i}", compact=True)
                with Horizontal(classes="trial-field"):
                    yield Label("other --set", classes="trial-key")
                    yield Input(placeholder="e.g. train.epochs=5", id="trial-other", compact=True)
            yield Static("", id="trial-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def values(self) -> dict[str, str]:
        """The fields' texts now (parameter -> text)."""
        return {key: self.query_one(f"#trial-value-{i}", Input).value for i, key in enumerate(self.params)}

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.query_one("#trial-error", Static)
        try:
            params = parse_params(self.values(), self.query_one("#trial-other", Input).value)
        except ValueError as err:
            error.update(literal(err))
            return
        refused = self.check(params)
        if refused:
            error.update(literal(refused))  # the schema's line names the key and what is allowed
            return
        self.dismiss(params)

    def action_cancel(self) -> None:
        self.dismiss(None)
