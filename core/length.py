"""The run's length, changed live (``ctl set epochs 30``, ``SetRunLength``): what a change may be
and what it does to the LR schedule.

A run's length is ``train.epochs`` and ``train.max_steps`` (0: no limit); the steps it plans are
``epochs x steps_per_epoch``, cut at ``max_steps``. A change may not make the run shorter than what
is done: an epoch under way counts as done (it finishes), and so does every step taken. Its range
is the config field's (core.limits). The schedule follows a policy, ``schedule.on_length_change``
unless the command names one (:data:`POLICIES`):

- ``stretch``: the rest of the schedule, from the current step, is re-laid over the new total
  (core.schedule.stretch): the LR of the next step is what it would have been, and the run's last
  step is the schedule's last (a cosine still ends at its floor);
- ``keep``: the schedule stays laid over the steps it was laid over; steps past its end run at its
  final value, and a shorter run ends before the schedule does.

Either way the total the schedule is laid over is fixed at the first change and kept, with the
stretch's segments, in the training state (checkpoints hold them: a resume is bit-identical); the
config (and so every checkpoint's) holds the new length. Pure: :func:`core.run.control.decide`
asks :func:`change`, the loop replaces its config with :func:`replaced`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tui_train.core import limits
from tui_train.core.config import RunConfig
from tui_train.core.schedule import stretch
from tui_train.core.state import TrainingState

POLICIES = ("stretch", "keep")
"""What a length change does to the LR schedule (see the module docstring)."""

KEYS = tuple(limits.LENGTH_FIELDS)
"""The length keys: 'epochs', 'max_steps'."""


def planned_steps(epochs: int, max_steps: int, steps_per_epoch: int) -> int:
    """The optimizer steps a run plans: every epoch's, cut at ``max_steps`` (0: no limit)."""
    total = epochs * steps_per_epoch
    return min(total, max_steps) if max_steps else total


@dataclass(frozen=True)
class Length:
    """A run's length as planned now: what the loop tells :func:`core.run.control.decide`."""

    epochs: int
    """train.epochs now."""
    max_steps: int
    """train.max_steps now (0: no limit)."""
    steps_per_epoch: int
    """Optimizer steps per epoch."""
    warmup_steps: int = 0
    """schedule.warmup_steps (a stretch leaves a warmup's pace alone)."""
    policy: str = "stretch"
    """schedule.on_length_change: the policy when a command names none."""

    @property
    def total(self) -> int:
        """The optimizer steps planned now."""
        return planned_steps(self.epochs, self.max_steps, self.steps_per_epoch)

    @classmethod
    def of(cls, config: RunConfig, steps_per_epoch: int) -> Length:
        """The length of a run with ``config``."""
        t = config.train
        return cls(t.epochs, t.max_steps, steps_per_epoch, config.schedule.warmup_steps, config.schedule.on_length_change)


@dataclass(frozen=True)
class Change:
    """What one length change does, or why it is refused."""

    rejected: str = ""
    """Why not ('' when it applies)."""
    old: int = 0
    """The key's value before."""
    new: int = 0
    """Its value after."""
    changes: dict = dataclasses.field(default_factory=dict)
    """Training-state fields to set: lr_total and lr_plan."""
    detail: str = ""
    """The acknowledgement: old -> new, the steps planned, what the schedule does."""


def epochs_done(state: TrainingState) -> int:
    """Epochs done, the one under way counted (it finishes whatever the new length)."""
    return state.epoch + (1 if state.batch else 0)


def change(length: Length, state: TrainingState, key: str, value: object, policy: str = "") -> Change:
    """What setting ``key`` ('epochs' or 'max_steps') to ``value`` does now, under ``policy`` ('':
    the run's default); refused (one line) when the value is out of its range, shorter than what is
    done, or the policy unknown."""
    if key not in KEYS:
        return Change(rejected=f"{key!r} is not a length (allowed: {', '.join(KEYS)})")
    if policy and policy not in POLICIES:
        return Change(rejected=f"policy {policy!r} is not allowed (allowed: {', '.join(POLICIES)})")
    try:
        new = int(limits.check(key, value))
    except limits.LimitError as e:
        return Change(rejected=str(e))
    done = epochs_done(state) if key == "epochs" else state.step
    if new < done and not (key == "max_steps" and new == 0):
        what = f"{done} epoch(s) (the one under way counts)" if key == "epochs" else f"{done} step(s)"
        return Change(rejected=f"{key} {new} is shorter than what is done: {what}")
    policy = policy or length.policy
    old = getattr(length, key)
    after = dataclasses.replace(length, **{key: new})
    laid = state.lr_total or length.total
    plan = [list(s) for s in state.lr_plan]
    if policy == "stretch":
        plan = stretch(plan, laid, state.step, after.total, length.warmup_steps)
        how = f"lr schedule stretched over steps {state.step}..{after.total}"
    else:
        how = f"lr schedule kept (laid over {laid} steps; later steps at its final value)"
    detail = f"{key} {old} -> {new} ({length.total} -> {after.total} steps planned; {how})"
    return Change(old=old, new=new, changes={"lr_total": laid, "lr_plan": plan}, detail=detail)


def replaced(config: RunConfig, key: str, value: int) -> RunConfig:
    """``config`` with the run's new length (what the loop trains to and its checkpoints record)."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **{key: int(value)}))


__all__ = ["KEYS", "POLICIES", "Change", "Length", "change", "epochs_done", "planned_steps", "replaced"]
