"""What a command does in a loop of the user's own (:class:`tui_train.loop.Run`): the run layer
decides (:meth:`tui_train.core.run.place.RunPlace.apply`), this carries it out on the loop's
optimizer, scheduler and flags, and says what such a loop cannot honour."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_train.core import commands as C
from tui_train.core.errors import first_line
from tui_train.core.run import control

if TYPE_CHECKING:
    from tui_train.loop import Run

LIVE_KEYS = ("lr", "momentum", "weight_decay")
"""What a viewer may change live in a loop that gave its optimizer."""


class Steering:
    """The commands of one :class:`~tui_train.loop.Run`, applied at its ``run.log``."""

    def __init__(self, run: Run):
        self.run = run

    def apply(self, cmd: C.Command, origin: str) -> None:
        """Decide and carry out one command (core.run.place.RunPlace.apply). The base LR is read
        from the loop first (the scheduler's first base, else the first group's LR: the loop or its
        scheduler may have moved it); a new one scales every group's LR and every scheduler base alike."""
        run = self.run
        st = run.place.state
        if run.optimizer is not None:
            bases = getattr(run.scheduler, "base_lrs", None)
            st.base_lr = float(bases[0]) if bases else run._lr()
        before = st.base_lr
        run.place.apply(cmd, origin, group=run._group(), optimizer=run.optimizer, carry_out=self._carry_out,
                        refuse=self._refuse)
        after = run.place.state.base_lr
        if after != before and before > 0:  # every group and the scheduler's bases scale alike
            ratio = after / before
            for g in run.optimizer.param_groups:
                g["lr"] = g["lr"] * ratio
                if "initial_lr" in g:  # what a scheduler made later from this optimizer starts from
                    g["initial_lr"] = g["initial_lr"] * ratio
            if getattr(run.scheduler, "base_lrs", None):
                run.scheduler.base_lrs = [b * ratio for b in run.scheduler.base_lrs]

    def _refuse(self, cmd: C.Command) -> str:
        """Why this loop cannot honour ``cmd`` ('' when it can)."""
        run = self.run
        if isinstance(cmd, C.SetLearningRate | C.ScaleLearningRate) or (
                isinstance(cmd, C.SetHyperparameter) and cmd.key in LIVE_KEYS):
            if run.optimizer is None:
                return "no optimizer was given to tui_train.init: the loop's values cannot be changed"
            if isinstance(cmd, C.SetHyperparameter) and cmd.key != "lr" and cmd.key not in run._group():
                return f"the optimizer ({type(run.optimizer).__name__}) has no {cmd.key}"
            if run._group().get("lr", 0.0) <= 0:
                return "the optimizer's learning rate is not a positive number"
            return ""
        if isinstance(cmd, C.SetHyperparameter):
            return f"{cmd.key} is your loop's own: only lr, momentum and weight_decay change live here"
        if isinstance(cmd, C.Rollback):
            return "your loop keeps no last good weights (the built-in loop does)"
        if isinstance(cmd, C.FindLearningRate):
            return "the LR range test needs the built-in loop (tui-train lr-find PRESET)"
        if isinstance(cmd, C.SetRunLength):
            return "your loop owns its length: change its epochs or steps in your code"
        if isinstance(cmd, C.AddBreakpoint):
            return "breakpoints need the built-in loop (your loop can pause itself: run.log blocks while paused)"
        if isinstance(cmd, C.SaveCheckpoint) and run.model is None and run.save_hook is None:
            return "no model was given to tui_train.init: nothing to save"
        return ""

    def _carry_out(self, cmd: C.Command, d: control.Decision, origin: str) -> str | None:
        run = self.run
        if d.effect == "save" and run.save_hook is not None:
            reason = getattr(cmd, "reason", "") or "manual"
            try:
                return str(run.save_hook(reason))
            except Exception as e:  # noqa: BLE001 - the loop's save failed: said, listed as not saved, answered
                run.place.not_written(reason, first_line(e, typed=True))
                run.place.reject(cmd, f"checkpoint not saved: {run.place.save_error}", origin)
                return None
        if d.effect == "save":
            path = run.save(getattr(cmd, "reason", "") or "manual")
            if path is None:
                run.place.reject(cmd, f"checkpoint not saved: {run.place.save_error}", origin)
                return None
            return f"saved {path}"
        if d.effect == "validate":
            run.should_validate = True
            return "validation asked: the loop runs it when it reads run.should_validate"
        return d.applied
