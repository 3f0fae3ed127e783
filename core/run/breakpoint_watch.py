"""Watching a run's breakpoints (core.breakpoints) where the loop reaches them, and pausing there.

The loop asks :class:`BreakpointWatch` after each optimizer step (``step=N``) and at each epoch's
end, after its validation (``epoch=K``, ``next-epoch``, ``plateau=K``, a metric condition). A
breakpoint reached pauses the run, ``StatusChanged(status='paused', cause='breakpoint', reason=<which>)``,
is removed (one-shot; BreakpointsChanged says what is left), and the watch hands the loop's step
boundary the wait: the run stays there until a Resume (or a stop) arrives, as after a Pause.

Several ranks: every rank holds the same pending list (breakpoints come and go as commands, which
every rank applies at one step) and reaches each check at the same step; which breakpoints are hit
is rank 0's verdict, shared in one small all-reduce (only at checks where one is pending, the
same on every rank), so that every rank pauses at the same step. Nothing here is saved: the
pending breakpoints are the training state's (checkpoints keep them).
"""

from __future__ import annotations

from collections.abc import Callable

from tui_train.core import breakpoints
from tui_train.core import events as E
from tui_train.core.run.place import RunPlace


class BreakpointWatch:
    """A run's breakpoints, checked where the loop reaches them (see the module docstring)."""

    def __init__(self, place: RunPlace, monitor: str, boundary: Callable[[], object]):
        self.place = place
        """The run: its state holds the pending breakpoints; it announces the pause."""
        self.monitor = monitor
        """The monitored metric a ``plateau=K`` breakpoint watches (early_stopping.monitor)."""
        self.boundary = boundary
        """The loop's step boundary: where a paused run waits (and commands apply)."""

    def after_step(self) -> bool:
        """After an optimizer step: pause at a ``step=N`` breakpoint it reaches. True when paused
        (and resumed since: the boundary has waited)."""
        st = self.place.state
        if not st.breakpoints:  # the common case, at every step: nothing to check
            return False
        reasons = breakpoints.due_at_step(st.breakpoints, st.step)
        return any(reasons) and self._pause(reasons)  # steps are the same on every rank: so is any()

    def at_epoch_end(self, metrics: dict[str, dict], bad_validations: int | None) -> bool:
        """At an epoch's end, after its validation and its checkpoints (the epoch counted done):
        pause at the breakpoints it reaches. ``metrics``: {"train": ..., "val": ...};
        ``bad_validations``: validations since the monitored metric last improved, None when the
        epoch was not validated. Every rank asks (a collective while breakpoints are pending)."""
        st = self.place.state
        if not st.breakpoints:
            return False
        return self._pause(breakpoints.hits_at_epoch_end(st.breakpoints, epochs_done=st.epoch, metrics=metrics,
                                                         monitor=self.monitor, bad_validations=bad_validations))

    def _pause(self, reasons: list[str]) -> bool:
        """Rank 0's verdict (one reason per pending breakpoint, '' when not hit) on every rank: the
        hit ones are removed and the run pauses here, saying which. Every rank calls it at the same
        point (its metrics may differ in the last bit from rank 0's: the flags are rank 0's)."""
        place, st = self.place, self.place.state
        sync = place.sync
        flags = sync.all_sum([float(bool(r) and sync.is_main) for r in reasons])
        if not any(f > 0 for f in flags) or place.status != "running":  # a non-finite pause just now keeps its cause
            return False
        st.breakpoints = [b for b, f in zip(st.breakpoints, flags) if f <= 0]
        place.set_status("paused", "; ".join(r for r, f in zip(reasons, flags) if f > 0 and r) or "breakpoint", "breakpoint")
        place.emit(E.BreakpointsChanged(step=st.step, pending=tuple(dict(b) for b in st.breakpoints)))
        self.boundary()
        return True
