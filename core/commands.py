"""Commands the UI submits to the engine (imperative nouns, frozen, plain values).

They travel through the Trainer's thread-safe queue and apply at the next step boundary; each one
is acknowledged by a :class:`core.events.CommandApplied` or :class:`core.events.CommandRejected`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_train.core.limits import LIVE_KEYS

LIVE_HYPERPARAMETERS = tuple(k for k in LIVE_KEYS if k != "lr")
"""Names accepted by :class:`SetHyperparameter` (the learning rate has its own command); their
limits are in :mod:`core.limits`."""


@dataclass(frozen=True)
class Command:
    """Base class of every command."""

    @property
    def name(self) -> str:
        """The command's class name, as shown in acknowledgements and events.jsonl."""
        return type(self).__name__


@dataclass(frozen=True)
class Pause(Command):
    """Stop taking optimizer steps until Resume (or Stop) arrives."""


@dataclass(frozen=True)
class Resume(Command):
    """Continue after Pause (also after a pause for a non-finite loss)."""


@dataclass(frozen=True)
class Stop(Command):
    """Early stop: finish the step, evaluate, save a checkpoint, end as ``early_stopped``."""

    reason: str = "user"
    """Why, as recorded in the event log."""


@dataclass(frozen=True)
class SetLearningRate(Command):
    """Replace the base learning rate that the schedule multiplies (takes effect next step)."""

    lr: float
    """The new base learning rate: finite, > 0."""


@dataclass(frozen=True)
class ScaleLearningRate(Command):
    """Multiply the base learning rate (``[`` halves, ``]`` doubles)."""

    factor: float
    """Finite, > 0."""


@dataclass(frozen=True)
class SetHyperparameter(Command):
    """Change one live hyperparameter: momentum, weight_decay, grad_clip or patience."""

    key: str
    """One of :data:`LIVE_HYPERPARAMETERS`."""
    value: float
    """The new value (finite; range depends on the key)."""


@dataclass(frozen=True)
class SaveCheckpoint(Command):
    """Save a checkpoint now; the CheckpointSaved event carries its path."""

    reason: str = "manual"
    """Recorded in the checkpoint file name and the event log."""


@dataclass(frozen=True)
class Validate(Command):
    """Run validation now; results arrive as a ValidationMetrics event."""


@dataclass(frozen=True)
class Interrupt(Command):
    """End the run now as ``interrupted``: finish the step, save a checkpoint, no evaluation (what
    a SIGTERM does; the quit dialog's "stop"). ``--resume`` continues it."""

    reason: str = "user"
    """Why, as recorded in the event log."""


@dataclass(frozen=True)
class Rollback(Command):
    """Restore the last good weights (a snapshot taken at a log interval with a finite loss and
    finite weights, at most once a second), scale the base learning rate by ``lr_factor`` and
    continue: the answer to a non-finite loss."""

    lr_factor: float = 0.5
    """Multiplier for the base learning rate after the rollback (finite, > 0)."""


@dataclass(frozen=True)
class FindLearningRate(Command):
    """Run an LR range test now, on copies of the model and optimizer (a paused run only): the
    run's weights, optimizer state and data order are untouched. A LearningRateFound event
    carries the curve and the suggestion; applying it is a SetLearningRate of its own."""

    start_lr: float = 1e-7
    """First learning rate of the sweep (finite, > 0)."""
    end_lr: float = 10.0
    """Last learning rate of the sweep (> start_lr)."""
    steps: int = 100
    """Optimizer steps of the sweep, one batch each (5 .. core.lr_find.MAX_STEPS)."""


@dataclass(frozen=True)
class SetRunLength(Command):
    """Change the run's length (train.epochs or train.max_steps) while it trains; the LR schedule
    follows ``policy`` (core.length: stretch or keep). Never shorter than what is done. A loop of
    your own (tui_train.init) owns its length and refuses it."""

    key: str
    """'epochs' or 'max_steps' (0: no step limit)."""
    value: int
    """The new length (the config field's range; not below what is done)."""
    policy: str = ""
    """'stretch' or 'keep' ('': the run's schedule.on_length_change)."""


@dataclass(frozen=True)
class AddBreakpoint(Command):
    """Pause the run where ``spec`` says (core.breakpoints): once, then the breakpoint is removed."""

    spec: str
    """epoch=K, step=N, next-epoch, plateau=K, or a metric condition ('val_accuracy >= 0.98')."""


@dataclass(frozen=True)
class ClearBreakpoints(Command):
    """Remove one pending breakpoint, or all of them."""

    id: int = 0
    """The breakpoint's id (as added: #1, #2...); 0 clears them all."""


COMMAND_TYPES: tuple[type[Command], ...] = (
    Pause, Resume, Stop, Interrupt, SetLearningRate, ScaleLearningRate, SetHyperparameter, SaveCheckpoint, Validate, Rollback,
    FindLearningRate, SetRunLength, AddBreakpoint, ClearBreakpoints,
)
"""Every concrete command type (what the control endpoint accepts by name)."""
