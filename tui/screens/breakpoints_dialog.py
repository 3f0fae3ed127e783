"""The `p` dialog: the run's pending breakpoints, and one line to add one or clear them
(core.breakpoints: epoch=K, step=N, next-epoch, plateau=K, 'val_accuracy >= 0.98')."""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.core import breakpoints
from tui_train.core import commands as C
from tui_train.tui import format as fmt

_CLEAR = re.compile(r"^\s*clear\s*(?:#?\s*(\d+))?\s*$")


def parse_breakpoint_line(text: str) -> C.AddBreakpoint | C.ClearBreakpoints:
    """'epoch=5' -> AddBreakpoint('epoch=5'); 'clear' -> ClearBreakpoints() (all); 'clear 2' (or
    'clear #2') -> ClearBreakpoints(2). ValueError (a :class:`core.breakpoints.BreakpointError`) with
    a one-line reason otherwise; the run checks again (epochs and steps already done, its task's metrics)."""
    m = _CLEAR.match(text)
    if m is not None:
        return C.ClearBreakpoints(int(m.group(1) or 0))
    breakpoints.parse(text, epoch=0)  # the form only: next-epoch is resolved by the run
    return C.AddBreakpoint(text.strip())


class BreakpointsDialog(ModalScreen[C.Command | None]):
    """Shows the pending breakpoints; dismisses with the command typed (add or clear), or None."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, pending: tuple | list) -> None:
        super().__init__()
        self.pending = tuple(pending)
        """The pending breakpoints as last reported: {id, spec} each."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Breakpoints: pause the run there (once)", classes="dialog-title")
            listed = "\n".join(f"#{b['id']}  {b['spec']}" for b in self.pending) or "none pending"
            yield Static(fmt.literal(listed), id="bp-list")
            yield Static("epoch=K · step=N · next-epoch · plateau=K · val_accuracy >= 0.98 · clear · clear ID · "
                         "Enter applies, Esc cancels", classes="dialog-help")
            yield Input(placeholder="e.g. next-epoch", id="bp-input")
            yield Static("", id="bp-error", classes="dialog-error")

    @on(Input.Submitted, "#bp-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            command = parse_breakpoint_line(event.value)
        except ValueError as err:
            self.query_one("#bp-error", Static).update(fmt.literal(err))
            return
        self.dismiss(command)

    def action_cancel(self) -> None:
        self.dismiss(None)
