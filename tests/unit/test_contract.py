"""The fake keeps the engine's contract: one command script, both trainers, the same reactions.

Each script is driven from the sink: the next command is submitted when the previous one is
acknowledged (or when a chosen event arrives), inside the trainer's own thread, so the real engine
applies every command at a known step boundary and both transcripts are deterministic. What is
compared is what reacts to commands (status changes with their cause and reason, acknowledgements,
checkpoints, validation, the end), not the continuous metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import pytest

from tests.nan_model import SPEC as NAN_SPEC
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.contract import TrainerLike
from tui_train.core.testing import FakeTrainer
from tui_train.core.train.engine import Trainer

WATCHDOG_S = 30.0
"""A script that stalls (an acknowledgement that never comes) ends the run as interrupted after this."""

SCRIPT: tuple[C.Command, ...] = (
    C.SetLearningRate(0.02),
    C.SetLearningRate(50.0),  # over the cap
    C.SetHyperparameter("momentum", 5.0),  # over the range
    C.ScaleLearningRate(0.5),
    C.SetHyperparameter("patience", 3),
    C.SetHyperparameter("lr", 0.1),  # the lr has its own command
    C.Validate(),
    C.SaveCheckpoint(),
    C.Pause(),  # already paused
    C.Rollback(0.5),  # applies; the user's pause stays
    C.Resume(),
    C.Pause(),
    C.Resume(),
    C.Stop(),
)
"""Submitted one by one, each when the previous one is acknowledged (the first after the opening Pause)."""

AFTER_END = C.Validate()
"""Submitted when the early-stop checkpoint is saved: the run has ended for it."""


def tiny_config(**train):
    """digits, a 64-16-10 MLP, plain SGD (no nesterov), one thread: quick and deterministic."""
    return from_dict({
        "name": "contract",
        "data": {"dataset": "digits", "batch_size": 64},
        "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
        "train": {"epochs": 1, "max_steps": 8, "log_every": 1, "device": "cpu", "num_threads": 1, **train},
    })


class Driver:
    """A sink that records every event and submits the next command when ``react`` says so."""

    def __init__(self, trainer: TrainerLike, react: Callable[[Driver, E.Event], None]):
        self.trainer, self.react = trainer, react
        self.events: list[E.Event] = []
        self.stop = threading.Event()

    def __call__(self, event: E.Event) -> None:
        self.events.append(event)
        self.react(self, event)

    def run(self, first: Iterable[C.Command] = ()) -> list[E.Event]:
        for cmd in first:
            self.trainer.submit(cmd)
        watchdog = threading.Timer(WATCHDOG_S, self.stop.set)
        watchdog.start()
        try:
            self.trainer.run(self.stop, self)
        finally:
            watchdog.cancel()
        return self.events


def is_ack(event: E.Event) -> bool:
    return isinstance(event, E.CommandApplied | E.CommandRejected)


def command_script(commands: Iterable[C.Command]) -> Callable[[Driver, E.Event], None]:
    """Submit the next of ``commands`` at each acknowledgement; AFTER_END once the run is ending."""
    pending = list(commands)

    def react(d: Driver, ev: E.Event) -> None:
        if is_ack(ev) and pending:
            d.trainer.submit(pending.pop(0))
        if isinstance(ev, E.CheckpointSaved) and ev.reason == "early_stop":
            d.trainer.submit(AFTER_END)
    return react


CONTINUOUS = (E.StepMetrics, E.EpochMetrics, E.RunNote)
"""What training sends by itself, whatever the commands."""


def reaction(ev: E.Event) -> tuple:
    """The fields of an event that a front end acts on (no paths, numbers or free text but the
    status reasons and checkpoint reasons, which the UI shows and matches)."""
    if isinstance(ev, E.StatusChanged):
        return (ev.kind, ev.status, ev.cause, ev.reason)
    if isinstance(ev, E.CommandApplied):
        return (ev.kind, ev.command, ev.key)
    if isinstance(ev, E.CommandRejected):
        return (ev.kind, ev.command)
    if isinstance(ev, E.CheckpointSaved):
        return (ev.kind, ev.reason)
    if isinstance(ev, E.RunFinished):
        return (ev.kind, ev.status)
    return (ev.kind,)


def reactions(events: Iterable[E.Event]) -> list[tuple]:
    return [reaction(e) for e in events
            if not isinstance(e, CONTINUOUS) and not (isinstance(e, E.CheckpointSaved) and e.reason in ("best", "periodic"))]


def rejections(events: Iterable[E.Event]) -> list[tuple[str, str]]:
    return [(e.command, e.reason) for e in events if isinstance(e, E.CommandRejected)]


def _fake(**kw) -> FakeTrainer:
    return FakeTrainer(tiny_config(), hyperparameters={"optimizer": "sgd", "lr": 0.05, "momentum": 0.5, "weight_decay": 0.0,
                                                      "grad_clip": 0.0, "patience": 5}, **kw)


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory) -> dict[str, list[E.Event]]:
    """The command script against the real engine and against the fake, each run once."""
    runs = tmp_path_factory.mktemp("contract-runs")
    engine = Trainer(tiny_config(), runs_dir=runs)
    return {
        "engine": Driver(engine, command_script(SCRIPT)).run(first=[C.Pause()]),
        "fake": Driver(_fake(), command_script(SCRIPT)).run(first=[C.Pause()]),
    }


EXPECTED = [
    ("RunStarted",),
    ("StatusChanged", "running", "start", "started"),
    ("StatusChanged", "paused", "command", "user"),
    ("CommandApplied", "Pause", ""),
    ("CommandApplied", "SetLearningRate", "lr"),
    ("CommandRejected", "SetLearningRate"),
    ("CommandRejected", "SetHyperparameter"),
    ("CommandApplied", "ScaleLearningRate", "lr"),
    ("CommandApplied", "SetHyperparameter", "patience"),
    ("CommandRejected", "SetHyperparameter"),
    ("ConfusionMatrix",),
    ("ValidationMetrics",),
    ("CommandApplied", "Validate", ""),
    ("CheckpointSaved", "manual"),
    ("CommandApplied", "SaveCheckpoint", ""),
    ("CommandRejected", "Pause"),
    ("CommandApplied", "Rollback", "lr"),
    ("StatusChanged", "running", "command", "resumed"),
    ("CommandApplied", "Resume", ""),
    ("StatusChanged", "paused", "command", "user"),
    ("CommandApplied", "Pause", ""),
    ("StatusChanged", "running", "command", "resumed"),
    ("CommandApplied", "Resume", ""),
    ("StatusChanged", "stopping", "command", "early stop (user)"),
    ("CommandApplied", "Stop", ""),
    ("CheckpointSaved", "early_stop"),
    ("CheckpointSaved", "last"),
    ("TestMetrics",),
    ("CommandRejected", "Validate"),
    ("StatusChanged", "early_stopped", "end", "early stop (user)"),
    ("RunFinished", "early_stopped"),
]
"""What both trainers send for SCRIPT: the status change before the acknowledgement, always."""


def test_the_engine_reacts_as_documented(transcripts):
    assert reactions(transcripts["engine"]) == EXPECTED


def test_the_fake_reacts_like_the_engine(transcripts):
    assert reactions(transcripts["fake"]) == reactions(transcripts["engine"])


def test_rejections_give_the_same_reasons(transcripts):
    engine, fake = rejections(transcripts["engine"]), rejections(transcripts["fake"])
    assert fake == engine
    assert engine[-1] == ("Validate", "the run has ended")


def test_the_comparison_sees_the_order(transcripts):
    """The fake's old order (acknowledgement, then status change) cannot pass."""
    events = list(transcripts["engine"])
    i = next(i for i, e in enumerate(events) if isinstance(e, E.StatusChanged) and e.cause == "command")
    events[i], events[i + 1] = events[i + 1], events[i]
    assert reactions(events) != reactions(transcripts["engine"])


def test_an_interrupt_ends_both_the_same_way(tmp_path):
    """The stop event (quitting the app) during a pause: what is queued at that boundary still
    applies, then the interrupt and last checkpoints; a command that comes later is rejected."""
    def react(d: Driver, ev: E.Event) -> None:
        if isinstance(ev, E.CommandApplied) and ev.command == "Pause":
            d.trainer.submit(C.SaveCheckpoint())  # queued behind the Pause: applies at the same boundary
            d.stop.set()
        if isinstance(ev, E.CheckpointSaved) and ev.reason == "interrupt":
            d.trainer.submit(AFTER_END)

    engine = Driver(Trainer(tiny_config(), runs_dir=tmp_path), react).run(first=[C.Pause()])
    fake = Driver(_fake(), react).run(first=[C.Pause()])
    assert reactions(engine)[2:] == [
        ("StatusChanged", "paused", "command", "user"),
        ("CommandApplied", "Pause", ""),
        ("CheckpointSaved", "manual"),
        ("CommandApplied", "SaveCheckpoint", ""),
        ("CheckpointSaved", "interrupt"),
        ("CheckpointSaved", "last"),
        ("CommandRejected", "Validate"),
        ("StatusChanged", "interrupted", "end", "stop requested"),
        ("RunFinished", "interrupted"),
    ]
    assert reactions(fake) == reactions(engine)
    assert rejections(fake) == rejections(engine) == [("Validate", "the run has ended")]


def test_a_rollback_resumes_a_nonfinite_pause_in_both(tmp_path):
    """Roll back at the non-finite pause (it resumes), pause, stop mid-epoch (the partial epoch is validated)."""
    def react(d: Driver, ev: E.Event) -> None:
        if isinstance(ev, E.StatusChanged) and ev.cause == "nonfinite":
            d.trainer.submit(C.Rollback(0.5))
        elif isinstance(ev, E.StatusChanged) and ev.reason == "rolled back":
            d.trainer.submit(C.Pause())
        elif isinstance(ev, E.CommandApplied) and ev.command == "Pause":
            d.trainer.submit(C.Stop())

    cfg = from_dict({
        "name": "contract-nan", "data": {"dataset": "digits"}, "model": {"name": NAN_SPEC}, "optim": {"name": "sgd", "lr": 0.05},
        "train": {"epochs": 1, "log_every": 1, "device": "cpu", "num_threads": 1, "on_nonfinite": "pause"},
    })
    engine = Driver(Trainer(cfg, runs_dir=tmp_path), react).run()
    at = next(e.step for e in engine if isinstance(e, E.StatusChanged) and e.cause == "nonfinite")
    script = [E.StepMetrics(step=at, epoch=0, epoch_progress=0.2, loss=float("nan"), lr=0.05, samples_per_second=1.0),
              E.RunWarning(message=f"non-finite loss (nan) at step {at}", step=at),
              E.StatusChanged(status="paused", reason=f"non-finite loss (nan) at step {at}", step=at, cause="nonfinite")]
    fake = Driver(_fake(script=script), react).run()
    assert reactions(engine)[2:] == [
        ("RunWarning",),
        ("StatusChanged", "paused", "nonfinite", f"non-finite loss (nan) at step {at}: resume, roll back (lr halved) or stop"),
        ("CommandApplied", "Rollback", "lr"),
        ("StatusChanged", "running", "command", "rolled back"),
        ("StatusChanged", "paused", "command", "user"),
        ("CommandApplied", "Pause", ""),
        ("StatusChanged", "stopping", "command", "early stop (user)"),
        ("CommandApplied", "Stop", ""),
        ("ConfusionMatrix",),
        ("ValidationMetrics",),
        ("CheckpointSaved", "early_stop"),
        ("CheckpointSaved", "last"),
        ("TestMetrics",),
        ("StatusChanged", "early_stopped", "end", "early stop (user)"),
        ("RunFinished", "early_stopped"),
    ]
    # the scripted pause reason is the fake's input, not its reaction: compare from the rollback on
    assert reactions(fake)[4:] == reactions(engine)[4:]


def test_every_trainer_has_what_the_app_reads(tmp_path):
    """TrainerLike declares every attribute a front end reads, so tui/ needs no getattr guard
    (issue 22 item 5): the engine, the fake, the remote and the replay trainer all have each one,
    and a trainer that is not detachable is never detached."""
    from tui_train.core.live.remote import RemoteTrainer
    from tui_train.core.rundir.replay import ReplayTrainer

    declared = set(TrainerLike.__annotations__)
    assert {"detachable", "detached", "viewers", "run_dir"} <= declared
    trainers = [Trainer(tiny_config(), runs_dir=tmp_path), _fake(), _fake(detachable=True),
                RemoteTrainer(tiny_config(), runs_dir=tmp_path), ReplayTrainer(tmp_path)]
    for trainer in trainers:
        missing = [name for name in declared if not hasattr(trainer, name)]
        assert not missing, (type(trainer).__name__, missing)
        assert trainer.viewers == 1 and trainer.detached is False
        assert isinstance(trainer.detachable, bool)
    assert [t.detachable for t in trainers] == [False, False, True, True, False]
