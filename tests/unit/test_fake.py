"""The fake's own helpers (its reactions to commands are proven against the engine in test_contract.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.testing import FakeTrainer, demo_script, sample_events

REPO = Path(__file__).resolve().parents[2]


def run(fake: FakeTrainer, *commands: C.Command, finish: bool = True) -> list[E.Event]:
    for cmd in commands:
        fake.submit(cmd)
    if finish:
        fake.finish()
    events: list[E.Event] = []
    fake.run(sink=events.append)
    return events


def test_sample_events_hold_one_plain_instance_of_every_type():
    samples = sample_events()
    assert [type(e) for e in samples] == list(E.EVENT_TYPES)
    for ev in samples:
        assert dataclasses.is_dataclass(ev) and type(ev).__dataclass_params__.frozen
        json.dumps(E.to_json(ev), allow_nan=False)  # plain values only


def test_fake_imports_no_torch_and_no_ui():
    code = "import sys, core.testing; print(sorted(m for m in ('torch', 'textual', 'plotext', 'typer', 'tui') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_records_commands_and_finishes_after_the_ones_before():
    fake = FakeTrainer(script=demo_script())
    events = run(fake, C.SaveCheckpoint())
    fake.submit(C.Validate())  # after run() returned: recorded, never answered (as with the engine)
    assert fake.commands == [C.SaveCheckpoint(), C.Validate()]
    assert fake.started.is_set() and fake.finished.is_set()
    assert [e.kind for e in events[-4:]] == ["CheckpointSaved", "CommandApplied", "StatusChanged", "RunFinished"]
    assert events[-4].path == "runs/fake-run/checkpoints/step-00000300-manual.pt"  # the last scripted step
    assert (events[-2].status, events[-2].cause, events[-1].status) == ("completed", "end", "completed")


def test_commands_behind_finish_are_rejected():
    fake = FakeTrainer()
    fake.finish()
    events = run(fake, C.Validate(), finish=False)
    assert [(e.command, e.reason) for e in events if isinstance(e, E.CommandRejected)] == [("Validate", "the run has ended")]


def test_auto_finish_ends_right_after_the_script():
    script = demo_script(epochs=1)
    events = run(FakeTrainer(script=script, auto_finish=True), finish=False)
    assert events[2:-2] == script
    assert [e.kind for e in events[:2]] == ["RunStarted", "StatusChanged"]
    assert [(e.kind, getattr(e, "status", "")) for e in events[-2:]] == [("StatusChanged", "completed"), ("RunFinished", "completed")]


def test_a_nonfinite_pause_is_answered_by_rollback_to_the_last_finite_step():
    fake = FakeTrainer(lr=1e-2)
    events: list[E.Event] = []
    thread = threading.Thread(target=fake.run, kwargs={"sink": events.append})
    thread.start()
    assert fake.started.wait(5)
    fake.emit(E.StepMetrics(step=10, epoch=0, epoch_progress=0.1, loss=1.0, lr=1e-2, samples_per_second=1.0))
    fake.emit(E.StepMetrics(step=20, epoch=0, epoch_progress=0.2, loss=float("nan"), lr=1e-2, samples_per_second=1.0))
    fake.emit(E.StatusChanged(status="paused", reason="non-finite loss", step=20, cause="nonfinite"))
    fake.submit(C.Rollback(0.5))
    fake.submit(C.Pause())  # a user's pause: the next Rollback leaves it
    fake.submit(C.Rollback(0.5))
    fake.finish()
    thread.join(5)
    answers = [(e.kind, getattr(e, "status", getattr(e, "command", ""))) for e in events[5:]]
    assert answers[:5] == [("CommandApplied", "Rollback"), ("StatusChanged", "running"),
                           ("StatusChanged", "paused"), ("CommandApplied", "Pause"), ("CommandApplied", "Rollback")]
    rollbacks = [e for e in events if isinstance(e, E.CommandApplied) and e.command == "Rollback"]
    assert "step 10" in rollbacks[0].detail and (rollbacks[0].new, rollbacks[1].new) == (5e-3, 2.5e-3)
    assert fake.hyperparameters["lr"] == 2.5e-3


def test_nesterov_refuses_momentum_zero():
    fake = FakeTrainer(hyperparameters={"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True})
    events = run(fake, C.SetHyperparameter("momentum", 0.0), C.SetHyperparameter("momentum", 0.5))
    acks = [(e.kind, getattr(e, "reason", "")) for e in events if isinstance(e, E.CommandApplied | E.CommandRejected)]
    assert acks == [("CommandRejected", "momentum 0 is not allowed with nesterov"), ("CommandApplied", "")]
    assert fake.hyperparameters["momentum"] == 0.5


def test_demo_script_is_deterministic():
    assert demo_script() == demo_script()
    assert demo_script(task="regression") == demo_script(task="regression")
