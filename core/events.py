"""Events the engine emits (past tense or state), frozen dataclasses of plain Python values.

Never tensors, never the optimizer: an event can be queued, logged as JSON and rendered by any
front end. ``to_json(event)`` gives the dict written to ``events.jsonl`` / ``metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("starting", "running", "paused", "stopping", "completed", "early_stopped", "stopped", "unsaved", "failed",
            "interrupted", "preempted")
"""Every value of ``StatusChanged.status``; the last seven are final."""
FINAL_STATUSES = ("completed", "early_stopped", "stopped", "unsaved", "failed", "interrupted", "preempted")
"""The statuses a run ends with. ``unsaved``: the run trained to its end (it would have been
completed, early_stopped or stopped) but a checkpoint or a file of its record it was meant to
write was not written (summary.json's ``not_saved`` lists them): "completed" means everything
promised is on disk (STYLE.md habit 24). ``preempted``: the run's save signal (``--signal-save``,
a scheduler taking the nodes back: core.run.slurm) stopped it at a step boundary with a
checkpoint; neither a failure nor the run's end: a resume goes on."""
CAUSES = ("start", "command", "nonfinite", "end", "failure", "breakpoint")
"""Every value of ``StatusChanged.cause``: what made the status change (front ends match on it,
never on the reason text). 'breakpoint': a breakpoint was hit (core.breakpoints); the run is paused
and the reason says which."""


@dataclass(frozen=True)
class Event:
    """Base class of every event."""

    @property
    def kind(self) -> str:
        """The event's class name."""
        return type(self).__name__


@dataclass(frozen=True)
class RunStarted(Event):
    """The run is set up: data loaded, model built. Sent once, first; a run whose setup fails
    (bad data, a user model that raises) sends StatusChanged('failed') and RunFailed instead."""

    run_dir: str
    """The run directory (absolute path)."""
    preset: str
    """Preset name."""
    device: str
    """Device the model trains on, e.g. 'cpu' or 'cuda:0'."""
    task: str
    """'classification' or 'regression'."""
    epochs: int
    """Planned number of epochs."""
    steps_per_epoch: int
    """Optimizer steps per epoch."""
    total_steps: int
    """Planned optimizer steps for the whole run (max_steps applied)."""
    train_size: int
    """Training samples."""
    val_size: int
    """Validation samples."""
    test_size: int
    """Test samples."""
    num_params: int
    """Trainable parameters."""
    model: str
    """One-line model summary."""
    hyperparameters: dict = field(default_factory=dict)
    """Name -> current value (plain numbers and strings)."""
    live: tuple = ()
    """Names of the hyperparameters that can be changed while training."""
    start_step: int = 0
    """First step (non-zero when resumed)."""
    start_epoch: int = 0
    """First epoch (non-zero when resumed)."""
    world_size: int = 1
    """Processes training the run (torchrun ranks); samples/s and metrics are the whole run's."""
    max_steps: int = 0
    """train.max_steps (0: no step limit); with ``epochs``, the run's length, which may change live."""
    length_policy: str = ""
    """What a live change of the length does to the LR schedule: 'stretch' or 'keep' (core.length;
    '' when the loop's length is its own)."""
    breakpoints: tuple = ()
    """Pending breakpoints as the run starts (a resume keeps them): {id, spec} each (core.breakpoints)."""


@dataclass(frozen=True)
class StatusChanged(Event):
    """The run's status changed (see :data:`STATUSES`)."""

    status: str
    """New status."""
    reason: str = ""
    """Why, in a few words (for people; see ``cause`` for programs)."""
    step: int = 0
    """Optimizer step at which it changed."""
    cause: str = ""
    """What changed it, one of :data:`CAUSES`: the run starting or resuming, a command, a
    non-finite loss, the run's end, a failure ('' when not known)."""


@dataclass(frozen=True)
class StepMetrics(Event):
    """Training metrics over the last log interval."""

    step: int
    """Optimizer steps done."""
    epoch: int
    """Current epoch (0-based)."""
    epoch_progress: float
    """Fraction of the current epoch done, 0..1."""
    loss: float
    """Mean training loss over the interval (may be nan/inf: front ends must check)."""
    lr: float
    """Learning rate used by the last step."""
    samples_per_second: float
    """Training throughput over the interval (pauses excluded)."""
    accuracy: float | None = None
    """Training accuracy over the interval (classification)."""
    elapsed: float = 0.0
    """Training seconds so far (evaluation, checkpoints and pauses excluded)."""


@dataclass(frozen=True)
class EpochMetrics(Event):
    """End of an epoch: train metrics, and validation metrics when validated."""

    epoch: int
    """Epoch just finished (0-based)."""
    step: int
    """Optimizer steps done."""
    train: dict
    """Train metrics: loss, and accuracy for classification."""
    val: dict
    """Validation metrics (empty when not validated this epoch)."""
    lr: float
    """Learning rate at the end of the epoch."""
    seconds: float
    """Wall time of the epoch, validation included."""
    is_best: bool = False
    """This epoch is the best so far on the monitored metric."""
    patience_left: int | None = None
    """Early stopping: epochs left without improvement (None when disabled)."""


@dataclass(frozen=True)
class ValidationMetrics(Event):
    """An on-demand validation (the Validate command)."""

    step: int
    """Optimizer steps done."""
    epoch: int
    """Current epoch."""
    metrics: dict
    """Validation metrics."""


@dataclass(frozen=True)
class TestMetrics(Event):
    """Final evaluation on the test split."""

    metrics: dict
    """Test metrics: loss, accuracy, precision, recall, f1 (classification) or mse, mae, r2."""
    confusion: tuple = ()
    """Confusion matrix rows (true class) of counts per predicted class; empty for regression."""


MAX_MISTAKES = 32
"""At most this many misclassified samples ride on one :class:`ConfusionMatrix`."""
MAX_IMAGE_SIDE = 28
"""A mistake's image is downsampled (averaged) until neither side is longer than this."""
MAX_FEATURES = 16
"""A non-image mistake carries at most its first this many feature values."""
MAX_CONFUSION_CLASSES = 256
"""Above this many classes the matrix is not sent (256² counts are ~300 KB of JSON a validation)."""


@dataclass(frozen=True)
class ConfusionMatrix(Event):
    """A validation's confusion matrix and a few of the samples it got wrong (classification only).

    Sent after every validation (epoch end, the Validate command, the final partial epoch). With
    several ranks the matrix is the whole split's (summed); the mistakes are rank 0's shard's.
    """

    step: int
    """Optimizer steps done."""
    epoch: int
    """The epoch validated (0-based)."""
    num_classes: int
    """Number of classes (the matrix is num_classes x num_classes)."""
    confusion: tuple = ()
    """Rows (true class) of counts per predicted class; empty above :data:`MAX_CONFUSION_CLASSES`."""
    classes: tuple = ()
    """Class names, index order (empty when the dataset has none, or above the class limit)."""
    mistakes: tuple = ()
    """At most :data:`MAX_MISTAKES` misclassified samples, the first ones of the pass, each a dict:
    ``index`` (position in the split; with several ranks, in rank 0's share), ``true``, ``pred`` (class indices) and either an image
    (``height``, ``width`` <= :data:`MAX_IMAGE_SIDE`, ``channels`` 1 or 3, ``pixels``: base64 of
    uint8 row-major height x width x channels) or ``features`` (the first :data:`MAX_FEATURES`
    values, unnormalised) for a dataset that is not images."""


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint file was written atomically."""

    path: str
    """Absolute path of the file."""
    step: int
    """Optimizer steps done."""
    epoch: int
    """Current epoch."""
    reason: str
    """manual | periodic | best | last | early_stop | interrupt | preempt | error."""


@dataclass(frozen=True)
class CommandApplied(Event):
    """A command took effect at a step boundary."""

    command: str
    """Command class name."""
    detail: str
    """What changed, e.g. 'lr 0.001 -> 0.0005'."""
    step: int
    """Optimizer steps done when it applied."""
    key: str = ""
    """For hyperparameter changes: which one (lr, momentum, ...)."""
    old: float | None = None
    """Old value, for hyperparameter changes."""
    new: float | None = None
    """New value, for hyperparameter changes."""
    origin: str = ""
    """Who sent the command: a viewer's id on the control endpoint (e.g. 'tui-2', 'ctl-1'), '' when local."""


@dataclass(frozen=True)
class CommandRejected(Event):
    """A command could not be applied; nothing changed."""

    command: str
    """Command class name."""
    reason: str
    """Why, one line."""
    step: int = 0
    """Optimizer steps done."""
    origin: str = ""
    """Who sent the command (see CommandApplied.origin)."""


@dataclass(frozen=True)
class RunWarning(Event):
    """Something the user should know; training goes on unless a status change says otherwise."""

    message: str
    """One line."""
    step: int = 0
    """Optimizer steps done."""


@dataclass(frozen=True)
class RunNote(Event):
    """Information worth a line in the log (e.g. the thread count chosen by measurement)."""

    message: str
    """One line."""
    step: int = 0
    """Optimizer steps done."""


@dataclass(frozen=True)
class RunError(Event):
    """An error that did not end the run (e.g. a failed checkpoint save)."""

    message: str
    """One line."""
    step: int = 0
    """Optimizer steps done."""


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended (any final status but failed); summary.json is written."""

    status: str
    """completed | early_stopped | stopped | unsaved | interrupted | preempted."""
    summary: dict
    """The content of summary.json (``not_saved``: what the run could not write)."""
    run_dir: str
    """The run directory."""


@dataclass(frozen=True)
class RunFailed(Event):
    """The training thread raised; the traceback is saved in the run directory."""

    message: str
    """Exception type and message, one line."""
    traceback: str
    """The formatted traceback."""
    traceback_path: str
    """Where it was saved (run_dir/traceback.txt), or '' when no run directory exists."""
    summary: dict = field(default_factory=dict)
    """The content of summary.json (status failed)."""


@dataclass(frozen=True)
class LearningRateFound(Event):
    """The result of an LR range test (the FindLearningRate command): the curve and the suggestions
    (core.lr_find.Curve's fields; ``core.lr_find.Curve.from_json(to_json(event))`` rebuilds it)."""

    step: int
    """Optimizer steps done when it ran (the run itself did not move)."""
    lrs: tuple = ()
    """The learning rate of each sweep step (at most core.lr_find.MAX_STEPS)."""
    losses: tuple = ()
    """The smoothed loss at each of them."""
    raw_losses: tuple = ()
    """The measured loss at each of them."""
    stopped: str = "completed"
    """How the sweep ended: completed, diverged, non-finite or interrupted."""
    start_lr: float = 1e-7
    """The sweep's first learning rate."""
    end_lr: float = 10.0
    """Its last planned learning rate."""
    steps: int = 100
    """The steps planned."""
    suggestions: dict = field(default_factory=dict)
    """Rule -> learning rate: 'valley' (the suggestion), 'steepest', 'minimum/10'; {} when the
    curve is too short to tell."""


@dataclass(frozen=True)
class SystemSample(Event):
    """The trainer process's load and the machine's, sampled every few seconds by a daemon thread
    of the trainer process (core.run.system), never by the training thread. Written to metrics.jsonl."""

    step: int
    """The latest optimizer step when sampled."""
    cpu_percent: float
    """CPU use of the trainer process since the last sample, in % of one core (200 = two cores busy)."""
    rss_bytes: int
    """Resident memory of the trainer process."""
    mem_percent: float
    """System memory in use, % of the total."""
    mem_total_bytes: int
    """System memory in all."""
    gpu_percent: float | None = None
    """Utilisation of the training GPU, % (None: no GPU, or nvidia-ml-py is not installed)."""
    gpu_mem_bytes: int | None = None
    """Its memory in use (all processes)."""
    gpu_mem_total_bytes: int | None = None
    """Its memory in all."""
    gpu_temp_c: float | None = None
    """Its temperature, °C."""
    gpu_power_w: float | None = None
    """Its power draw, W."""


@dataclass(frozen=True)
class Scalars(Event):
    """Numbers a loop of your own logged under its own names (``tui_train.init``: any key of
    ``run.log`` but loss, accuracy, ``val_*`` and epoch), one series per name: their means since
    the last record. Written to metrics.jsonl (and epochs.jsonl, so a late viewer has them)."""

    step: int
    """The step of the record."""
    epoch: int
    """The epoch it belongs to (0-based)."""
    values: dict
    """Name -> mean of what was logged (a float, possibly non-finite)."""


@dataclass(frozen=True)
class BreakpointsChanged(Event):
    """The run's pending breakpoints changed: one was added, cleared, or hit (then removed, and the
    run paused with cause 'breakpoint'). Written to events.jsonl: the latest says what is pending."""

    step: int
    """Optimizer steps done."""
    pending: tuple = ()
    """Every pending breakpoint now, in the order added: {id, spec} each (core.breakpoints)."""


EVENT_TYPES: tuple[type[Event], ...] = (
    RunStarted, StatusChanged, StepMetrics, EpochMetrics, ValidationMetrics, TestMetrics, ConfusionMatrix, CheckpointSaved,
    CommandApplied, CommandRejected, RunWarning, RunNote, RunError, RunFinished, RunFailed, LearningRateFound, SystemSample,
    Scalars, BreakpointsChanged,
)
"""Every concrete event type (``tests/unit/test_dispatch.py`` checks that none is missing)."""

Handler = Callable[[Any], None]


def ignore(event: Event) -> None:
    """The handler of an event a consumer deliberately does not show."""


def exhaustive(handlers: Mapping[type[Event], Handler], owner: str) -> dict[type[Event], Handler]:
    """A dispatch table that covers every event type, or TypeError naming what ``owner`` misses.

    Consumers (the headless printer, the event log, the dashboard, the app) build their table with
    this at construction time, so a new event type cannot be silently skipped: it fails the first
    test that builds the consumer. Events a consumer does not show map to :func:`ignore`.
    """
    missing = [t.__name__ for t in EVENT_TYPES if t not in handlers]
    extra = [getattr(t, "__name__", repr(t)) for t in handlers if t not in EVENT_TYPES]
    if missing or extra:
        raise TypeError(f"{owner}: event dispatch is not exhaustive (missing: {', '.join(missing) or '-'}; "
                        f"unknown: {', '.join(extra) or '-'})")
    return dict(handlers)


def to_json(event: Event) -> dict[str, Any]:
    """A JSON-serializable dict with the event's kind and fields."""
    d = {"event": event.kind}
    for f in dataclasses.fields(event):
        v = getattr(event, f.name)
        d[f.name] = list(v) if isinstance(v, tuple) else v
    return d
