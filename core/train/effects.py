"""What a command does in the built-in loop: its side of :meth:`core.run.place.RunPlace.apply`.

The run layer decides what a command means (:func:`core.run.control.decide`: the live values,
the status, the acknowledgement and the interventions record) and asks its client two things:
what the loop cannot honour now (:meth:`Effects.refuse`) and the effects that need the loop's
model (:meth:`Effects.carry_out`): a checkpoint (save), a validation (validate), the last good
weights back (rollback), the LR range test on copies (lr_find, :mod:`core.train.lr_sweep`; its
rules: :mod:`core.lr_find`), a new length (the loop's config replaced: :mod:`core.length`).
:meth:`Effects.apply` is what the loop hands to each step boundary;
:meth:`Effects.apply_mid_evaluation` applies the commands that only change what the next step
reads between two batches of a validation, so a long validation does not hold them back.

Saving and validating are the loop's own operations (its checkpoint payload, its evaluation):
they are given as callables, and so is handing the loop a config with a new length. Stateless
but for that config: a command leaves its trace in the run layer's record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tui_train.core import breakpoints, length, lr_find
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import RunConfig
from tui_train.core.length import Length
from tui_train.core.run import control
from tui_train.core.run.place import RunPlace
from tui_train.core.train import lr_sweep
from tui_train.core.train.guard import LastGood
from tui_train.core.train.meters import Stopwatch
from tui_train.core.train.runtime import Runtime


class Effects:
    """The built-in loop's effects of decided commands (see the module docstring)."""

    def __init__(self, place: RunPlace, rt: Runtime, config: RunConfig, good: LastGood, clock: Stopwatch, *,
                 checkpoint: Callable[[str], Path | None], evaluate: Callable[[str], tuple[dict, list]],
                 set_config: Callable[[RunConfig], object] = lambda config: None):
        self.place = place
        """The run layer: decides, acknowledges and records each command."""
        self.rt = rt
        """The built run: model, optimizer, data."""
        self.config = config
        """The run's config (the LR range test's batch size and clipping)."""
        self.good = good
        """The last good weights (Rollback restores them)."""
        self.clock = clock
        """The training clock: held while a validation or the LR range test runs."""
        self.checkpoint = checkpoint
        """Save the loop's checkpoint now with a reason; its path, or None when it was not saved."""
        self.evaluate = evaluate
        """The loop's evaluation of a split: (metrics, confusion)."""
        self.set_config = set_config
        """Hand the loop its config with a new length (SetRunLength): it trains to it and saves it."""

    def apply(self, cmd: C.Command, origin: str = "") -> None:
        """Decide, carry out and acknowledge one command (core.run.place.RunPlace.apply); every
        command of the run passes here, at a step boundary."""
        rt = self.rt
        self.place.apply(cmd, origin, group=rt.optimizer.param_groups[0], optimizer=rt.optimizer,
                         carry_out=self.carry_out, refuse=self.refuse, good_step=self.good.step,
                         length=Length.of(self.config, rt.steps_per_epoch))

    def apply_mid_evaluation(self) -> None:
        """Between two batches of an epoch's validation (one process): the queued commands at the
        front that only change what the next step reads (control.applies_mid_evaluation: the LR,
        momentum, weight decay, clipping) apply now, acknowledged without waiting for the
        validation's end; the first other command and everything behind it wait for the step
        boundary, so the order of commands is kept."""
        for cmd, origin in self.place.inbox.take_leading(control.applies_mid_evaluation):
            self.apply(cmd, origin)

    def refuse(self, cmd: C.Command) -> str:
        """Why this loop cannot honour ``cmd`` now ('' when it can)."""
        if isinstance(cmd, C.FindLearningRate) and not self.place.sync.solo:
            return "the LR range test runs in a single-process run (tui-train lr-find PRESET)"
        if isinstance(cmd, C.AddBreakpoint):
            return self._unreachable(cmd.spec)
        return ""

    def _unreachable(self, spec: str) -> str:
        """Why this run can never reach breakpoint ``spec`` ('' when it can): a metric it does not
        record for its task, a validation it does not have (core.breakpoints checks the rest)."""
        try:
            bp = breakpoints.parse(spec, self.rt.task, epoch=self.place.state.epoch)
        except breakpoints.BreakpointError as e:
            return str(e)
        needs_val = bp.kind == "plateau" or (bp.target is not None and bp.target.split == "val")
        if needs_val and not self.rt.data.val_size:
            return f"{bp.spec}: this run has no validation split (data.val_fraction = 0)"
        return ""

    def carry_out(self, cmd: C.Command, d: control.Decision, origin: str = "") -> str | None:
        """A decision's effect; returns the acknowledgement's detail (None: no acknowledgement)."""
        place, st = self.place, self.place.state
        if d.effect == "save":
            path = self.checkpoint(getattr(cmd, "reason", "") or "manual")
            if path is None and place.sync.is_main:  # a RunError said why; whoever asked (ctl, a viewer) hears it too
                place.reject(cmd, f"checkpoint not saved: {place.save_error}", origin)
            return None if path is None else f"saved {path}"
        if d.effect == "validate":
            with self.clock.held():  # a pause keeps its clock stopped
                metrics, _ = self.evaluate("val")
            place.emit(E.ValidationMetrics(step=st.step, epoch=st.epoch, metrics=metrics))
        elif d.effect == "rollback":
            self.good.restore(self.rt.model, self.rt.optimizer)
        elif d.effect == "lr_find":
            return self.find_lr(cmd)
        elif d.effect == "length":  # the loop trains to the new length; its checkpoints record it
            self.config = length.replaced(self.config, d.key, int(d.new))
            self.rt.total_steps = length.planned_steps(self.config.train.epochs, self.config.train.max_steps,
                                                       self.rt.steps_per_epoch)
            self.set_config(self.config)
        return d.applied

    def find_lr(self, cmd: C.FindLearningRate) -> str:
        """The LR range test on copies (core.train.lr_sweep), the clock held as for a validation; the
        curve goes out as LearningRateFound, the acknowledgement says the suggestion."""
        place, st = self.place, self.place.state
        with self.clock.held():
            curve = lr_sweep.sweep_runtime(self.rt, self.config, epoch=st.epoch, grad_clip=st.grad_clip, start=cmd.start_lr,
                                           end=cmd.end_lr, steps=cmd.steps, stop=place.stop.is_set)
        place.emit(lr_find.found_event(curve, st.step))
        return lr_find.ack_detail(curve)
