"""ProcessTrainer: the engine in a child process, same contract, and no run lost when the child or
the parent dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core import commands as C
from core import events as E
from core.checkpoint import load, newest
from core.config import from_dict
from core.process import ProcessTrainer

REPO = Path(__file__).resolve().parents[2]


def cfg(tmp_path: Path, **train):
    model = tmp_path / "warny.py"
    model.write_text(textwrap.dedent("""
        import warnings, torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(64, 10)
                warnings.warn("a warning from the user's model")
            def forward(self, x):
                return self.lin(x.flatten(1))
    """))
    return from_dict({"name": "proc", "data": {"dataset": "digits"}, "model": {"name": f"{model}:Net"},
                      "train": {"log_every": 5, "device": "cpu", **train},
                      "checkpoint": {"every_steps": 10}})


class Background:
    def __init__(self, trainer: ProcessTrainer, stop: threading.Event | None = None):
        self.events: list[E.Event] = []
        self.stop = stop or threading.Event()
        self.thread = threading.Thread(target=lambda: trainer.run(self.stop, self.events.append), daemon=True)
        self.thread.start()

    def wait(self, pred, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if pred(e):
                    return e
            time.sleep(0.02)
        raise AssertionError([e.kind for e in self.events[-10:]])

    def join(self):
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.events


def test_same_contract_across_the_process_boundary(tmp_path):
    t = ProcessTrainer(cfg(tmp_path, epochs=2), runs_dir=tmp_path / "runs", preset="proc")
    t.submit(C.Pause())
    bg = Background(t)
    bg.wait(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    t.submit(C.SetLearningRate(0.005))
    t.submit(C.Resume())
    events = bg.join()
    assert isinstance(events[0], E.RunStarted) and isinstance(events[-1], E.RunFinished)
    assert events[-1].status == "completed" and t.exitcode == 0
    lr = next(e for e in events if isinstance(e, E.CommandApplied) and e.key == "lr")
    assert lr.new == 0.005 and lr.step == 0
    assert next(e for e in events if isinstance(e, E.StepMetrics)).lr == 0.005
    assert any("a warning from the user's model" in e.message for e in events if isinstance(e, E.RunWarning))


def test_stop_event_interrupts_the_child_and_it_saves(tmp_path):
    t = ProcessTrainer(cfg(tmp_path, epochs=500), runs_dir=tmp_path / "runs")
    bg = Background(t)
    bg.wait(lambda e: isinstance(e, E.StepMetrics) and e.step >= 10)
    bg.stop.set()
    events = bg.join()
    fin = events[-1]
    assert isinstance(fin, E.RunFinished) and fin.status == "interrupted"
    assert any(isinstance(e, E.CheckpointSaved) and e.reason == "interrupt" for e in events)


def test_a_killed_child_is_reported_not_hung(tmp_path):
    t = ProcessTrainer(cfg(tmp_path, epochs=500), runs_dir=tmp_path / "runs")
    bg = Background(t)
    started = bg.wait(lambda e: isinstance(e, E.RunStarted))
    bg.wait(lambda e: isinstance(e, E.CheckpointSaved))
    os.kill(t.process.pid, signal.SIGKILL)
    events = bg.join()
    failed = events[-1]
    assert isinstance(failed, E.RunFailed) and "signal 9" in failed.message
    ck = newest(Path(started.run_dir) / "checkpoints")
    assert ck is not None and load(ck)["step"] >= 10  # the last complete checkpoint survives


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_signal_to_the_child_saves_and_ends_interrupted(tmp_path, sig):
    t = ProcessTrainer(cfg(tmp_path, epochs=500), runs_dir=tmp_path / "runs")
    bg = Background(t)
    bg.wait(lambda e: isinstance(e, E.StepMetrics) and e.step >= 5)
    os.kill(t.process.pid, sig)
    events = bg.join()
    assert isinstance(events[-1], E.RunFinished) and events[-1].status == "interrupted"


PARENT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from core.config import from_dict
from core.process import ProcessTrainer
from core import events as E

if __name__ == "__main__":
    cfg = from_dict({"data": {"dataset": "digits"}, "model": {"name": "mlp", "hidden": [16]},
                     "train": {"epochs": 100000, "log_every": 5, "device": "cpu"}})
    def sink(e):
        if isinstance(e, E.RunStarted):
            print(e.run_dir, flush=True)
    ProcessTrainer(cfg, runs_dir=sys.argv[2]).run(sink=sink)
"""


def test_the_child_saves_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(REPO), str(tmp_path / "runs")], stdout=subprocess.PIPE, text=True)
    run_dir = Path(parent.stdout.readline().strip())
    time.sleep(1.0)
    parent.kill()  # SIGKILL: the parent gets no chance to stop the child
    parent.wait()
    summary = run_dir / "summary.json"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not summary.exists():
        time.sleep(0.1)
    assert summary.exists(), "the orphaned child did not end the run"
    assert json.loads(summary.read_text())["status"] == "interrupted"
    assert list((run_dir / "checkpoints").glob("*interrupt*.pt"))
