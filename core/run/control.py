"""What a command does: decided by a pure function, applied by the engine at a step boundary.

:func:`decide` looks at the command, the run's status, the training state and the optimizer's
current values, changes nothing, and returns a :class:`Decision`: the state changes, the status
to announce, the optimizer values to write, an effect the engine must carry out (save, validate,
roll back) and the acknowledgement. The run layer applies decisions in
:meth:`tui_train.core.run.place.RunPlace.apply`, for any loop (the built-in one carries out the
effects in core.train.effects, a user's in tui_train._loop_steering); that is the one place where
every command passes, and where a distributed run makes every rank apply the same commands at the
same step. Limits of live values come from :mod:`core.limits`.
"""

from __future__ import annotations

import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_train.core import breakpoints, limits, lr_find
from tui_train.core import commands as C
from tui_train.core import length as run_length
from tui_train.core.length import Length
from tui_train.core.state import TrainingState

EFFECTS = ("", "save", "validate", "rollback", "interrupt", "lr_find", "length")
"""What the engine carries out after deciding: nothing, a checkpoint, a validation, a rollback,
ending the run as interrupted at this step boundary, an LR range test on copies, or training to a
new length (its config replaced: core.length.replaced)."""


MID_EVALUATION_KEYS = ("momentum", "weight_decay", "grad_clip")
"""Live hyperparameters that only the next training step reads (patience is read by the epoch's
early-stopping decision, which follows its validation)."""


def applies_mid_evaluation(cmd: C.Command) -> bool:
    """``cmd`` only changes a value that the next training step reads (the learning rate, momentum,
    weight decay, gradient clipping): applying it between two batches of an epoch's validation is
    the same as applying it at the step boundary after that validation, only sooner. The engine does
    so, so that its acknowledgement does not wait for a whole validation (bench (e))."""
    if isinstance(cmd, (C.SetLearningRate, C.ScaleLearningRate)):
        return True
    return isinstance(cmd, C.SetHyperparameter) and cmd.key in MID_EVALUATION_KEYS


class CommandQueue:
    """The trainer's inbox: (command, origin) pairs in arrival order, put from any thread, taken by
    the training thread. As :class:`queue.SimpleQueue` (``get`` raises :class:`queue.Empty`), plus
    :meth:`take_leading`, which takes the commands at the front that pass a test and leaves the
    first that does not, and everything behind it, in order."""

    def __init__(self) -> None:
        self._items: deque[tuple[C.Command, str]] = deque()
        self._ready = threading.Condition(threading.Lock())

    def put(self, item: tuple[C.Command, str]) -> None:
        """Queue one (command, origin); never blocks."""
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def empty(self) -> bool:
        """Nothing is queued (a lock-free look: the training thread asks at every step)."""
        return not self._items

    def get(self, timeout: float | None = None) -> tuple[C.Command, str]:
        """The oldest item, waiting up to ``timeout`` seconds (None: for ever); queue.Empty after that."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            return self._items.popleft()

    def get_nowait(self) -> tuple[C.Command, str]:
        """The oldest item, or queue.Empty."""
        return self.get(timeout=0)

    def take_leading(self, test: Callable[[C.Command], bool]) -> list[tuple[C.Command, str]]:
        """Take the items at the front whose command passes ``test``, up to the first that does not."""
        taken: list[tuple[C.Command, str]] = []
        if not self._items:
            return taken
        with self._ready:
            while self._items and test(self._items[0][0]):
                taken.append(self._items.popleft())
        return taken


@dataclass(frozen=True)
class Decision:
    """The outcome of one command, as plain data."""

    rejected: str = ""
    """Why the command is refused ('' when it applies); a refused command changes nothing."""
    applied: str = ""
    """What changed, for the acknowledgement (the engine words it for save and validate)."""
    changes: dict = field(default_factory=dict)
    """Training-state fields to set, e.g. {'base_lr': 0.01}."""
    optimizer: dict = field(default_factory=dict)
    """Param-group values to write into every group: 'momentum', 'beta1' or 'weight_decay'."""
    status: tuple[str, str, str] | None = None
    """(status, reason, cause) to announce, or None."""
    status_after_ack: bool = False
    """Announce the status after the acknowledgement (a rollback ending a non-finite pause)."""
    effect: str = ""
    """One of :data:`EFFECTS`."""
    key: str = ""
    """The live value it changes ('lr', 'momentum', ...), for the acknowledgement."""
    old: float | None = None
    """Its old value."""
    new: float | None = None
    """Its new value."""


def _reject(reason: str) -> Decision:
    return Decision(rejected=reason)


def _positive_factor(name: str, value: Any) -> str:
    """'' when ``value`` is a finite number > 0, else why not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return f"{name} must be a finite number > 0, got {value!r}"
    return ""


def decide(cmd: C.Command, status: str, state: TrainingState, group: Mapping[str, Any], *,
           good_step: int | None = None, nonfinite_pause: bool = False, length: Length | None = None) -> Decision:
    """What ``cmd`` does now. ``group`` is the optimizer's first param group (read only);
    ``good_step`` the step of the last good snapshot (None: none yet); ``nonfinite_pause`` whether
    the current pause was caused by a non-finite loss; ``length`` the run's length as planned now
    (None: the loop's length is its own, and a SetRunLength is refused)."""
    if isinstance(cmd, C.Pause):
        if status != "running":
            return _reject(f"cannot pause while {status}")
        return Decision(applied="paused", status=("paused", "user", "command"))
    if isinstance(cmd, C.Resume):
        if status != "paused":
            return _reject(f"not paused (status {status})")
        return Decision(applied="resumed", status=("running", "resumed", "command"))
    if isinstance(cmd, C.Stop):
        if nonfinite_pause and good_step is not None:
            # never end on non-finite weights: the last good ones first, in this one command (a
            # Rollback sent before it resumes the run, which trains on NaN until a Stop sent after it
            # arrives through the socket: tests/functional/test_real_trainer_paths.py, nonfinite)
            return Decision(applied=f"early stop requested: back to the weights of step {good_step}, evaluating, saving",
                            status=("stopping", f"early stop ({cmd.reason})", "command"), effect="rollback")
        return Decision(applied="early stop requested: finishing the step, evaluating, saving",
                        status=("stopping", f"early stop ({cmd.reason})", "command"))
    if isinstance(cmd, C.Interrupt):
        return Decision(applied="stop requested: finishing the step, saving", effect="interrupt")
    if isinstance(cmd, (C.SetLearningRate, C.ScaleLearningRate)):
        return _learning_rate(cmd, state)
    if isinstance(cmd, C.SetHyperparameter):
        return _hyperparameter(cmd, state, group)
    if isinstance(cmd, C.Rollback):
        return _rollback(cmd, status, state, good_step, nonfinite_pause)
    if isinstance(cmd, C.SaveCheckpoint):
        return Decision(effect="save")
    if isinstance(cmd, C.Validate):
        return Decision(effect="validate", applied="validated")
    if isinstance(cmd, C.FindLearningRate):
        if status != "paused":
            return _reject(f"the LR range test runs on a paused run: pause first (status {status})")
        why = lr_find.check_options(cmd.start_lr, cmd.end_lr, cmd.steps)
        return _reject(why) if why else Decision(effect="lr_find")
    if isinstance(cmd, C.SetRunLength):
        return _run_length(cmd, state, length)
    if isinstance(cmd, C.AddBreakpoint | C.ClearBreakpoints):
        why, changes, did = (breakpoints.add(state, cmd.spec) if isinstance(cmd, C.AddBreakpoint)
                             else breakpoints.clear(state, cmd.id))
        return _reject(why) if why else Decision(applied=did, changes=changes)
    return _reject(f"unknown command {type(cmd).__name__}")


def _run_length(cmd: C.SetRunLength, state: TrainingState, length: Length | None) -> Decision:
    if length is None:
        return _reject("this loop owns its length: epochs and max_steps change in its own code")
    ch = run_length.change(length, state, cmd.key, cmd.value, cmd.policy)
    if ch.rejected:
        return _reject(ch.rejected)
    return Decision(applied=ch.detail, changes=ch.changes, effect="length", key=cmd.key, old=float(ch.old), new=float(ch.new))


def _learning_rate(cmd: C.SetLearningRate | C.ScaleLearningRate, state: TrainingState) -> Decision:
    if isinstance(cmd, C.ScaleLearningRate):
        why = _positive_factor("the learning-rate factor", cmd.factor)
        if why:
            return _reject(why)
        new = state.base_lr * cmd.factor
    else:
        new = cmd.lr
    try:
        new = limits.check("lr", new)
    except limits.LimitError as e:
        return _reject(str(e))
    old = state.base_lr
    return Decision(applied=f"lr {old:.6g} -> {new:.6g}", changes={"base_lr": new}, key="lr", old=old, new=new)


def _hyperparameter(cmd: C.SetHyperparameter, state: TrainingState, group: Mapping[str, Any]) -> Decision:
    key = cmd.key
    if key not in C.LIVE_HYPERPARAMETERS:
        return _reject(f"unknown hyperparameter {key!r} (allowed: {', '.join(C.LIVE_HYPERPARAMETERS)})")
    try:
        v = limits.check(key, cmd.value)
    except limits.LimitError as e:
        return _reject(str(e))
    changes: dict = {}
    optimizer: dict = {}
    if key == "momentum":
        if "momentum" in group:
            if group.get("nesterov") and v == 0:
                return _reject("momentum 0 is not allowed with nesterov")
            old, optimizer["momentum"] = group["momentum"], v
        else:  # Adam / AdamW: momentum is beta1
            old, optimizer["beta1"] = group["betas"][0], v
    elif key == "weight_decay":
        old, optimizer["weight_decay"] = group["weight_decay"], v
    else:  # grad_clip, patience: the engine's own live values
        old, changes[key] = getattr(state, key), v
    return Decision(applied=f"{key} {old:g} -> {v:g}", changes=changes, optimizer=optimizer, key=key,
                    old=float(old), new=float(v))


def _rollback(cmd: C.Rollback, status: str, state: TrainingState, good_step: int | None, nonfinite_pause: bool) -> Decision:
    why = _positive_factor("lr_factor", cmd.lr_factor)
    if why:
        return _reject(why)
    if good_step is None:
        return _reject("no good state to roll back to yet")
    old = state.base_lr
    try:
        new = limits.check("lr", old * cmd.lr_factor)
    except limits.LimitError as e:
        return _reject(str(e))
    # the answer to a non-finite pause resumes; a pause the user asked for stays until they resume
    resume = ("running", "rolled back", "command") if status == "paused" and nonfinite_pause else None
    return Decision(applied=f"rolled back to the weights of step {good_step}; lr {old:.6g} -> {new:.6g}",
                    changes={"base_lr": new}, effect="rollback", key="lr", old=old, new=new,
                    status=resume, status_after_ack=True)


def write_optimizer(optimizer, values: Mapping[str, float]) -> None:
    """Write a decision's param-group values into every group of ``optimizer``."""
    for name, v in values.items():
        for g in optimizer.param_groups:
            if name == "beta1":
                g["betas"] = (float(v), g["betas"][1])
            else:
                g[name] = float(v)


def hyperparameters(config, state: TrainingState, group: Mapping[str, Any]) -> dict:
    """The run's hyperparameters as plain values (panels, RunStarted): the live ones as they are
    now (``group``: the optimizer's first param group, or {} before it exists)."""
    o = config.optim
    momentum = group["momentum"] if "momentum" in group else group["betas"][0] if "betas" in group else o.momentum
    return {
        "lr": state.base_lr, "optimizer": o.name, "momentum": float(momentum),
        "weight_decay": float(group.get("weight_decay", o.weight_decay)), "grad_clip": state.grad_clip,
        "patience": state.patience, "batch_size": config.data.batch_size, "epochs": config.train.epochs,
        "schedule": config.schedule.name, "loss": o.loss, "early_stopping": config.early_stopping.enabled,
        "monitor": config.early_stopping.monitor,
    }
