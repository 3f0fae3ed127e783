"""The thread count: measured before the first step (alternating rounds, the fastest kept), in
deterministic mode too, recorded in every checkpoint and reused on resume (issue 20, defect 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import tui_train.core.train.threads as threads
from tests.engine_helpers import run_to_end
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer
from tui_train.core.train.threads import thread_candidates


@pytest.fixture(autouse=True)
def keep_thread_count():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_candidates_only_when_the_count_is_free(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    cpu = torch.device("cpu")
    assert thread_candidates(cpu, from_dict({})) == [8, 4, 1]
    assert thread_candidates(cpu, from_dict({"train": {"num_threads": 2}})) == []
    assert thread_candidates(torch.device("cuda"), from_dict({})) == []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert thread_candidates(cpu, from_dict({})) == []


def test_deterministic_mode_measures_the_thread_count_too(monkeypatch):
    # Pinned at torch's default (2 here) from a background thread, digits-mlp trained at 3.7k
    # samples/s instead of 36k on one thread: deterministic mode chooses as the default mode does.
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    cfg = from_dict({"train": {"deterministic": True}})
    assert thread_candidates(torch.device("cpu"), cfg) == [8, 4, 1]


def _fake_clock(monkeypatch, step_seconds: dict[int, float]):
    state = {"now": 0.0, "threads": 2}
    monkeypatch.setattr(threads.time, "perf_counter", lambda: state["now"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: state.update(threads=n))

    def step() -> None:
        state["now"] += step_seconds[state["threads"]]

    return state, step


def test_choose_threads_picks_the_fastest(monkeypatch):
    state, step = _fake_clock(monkeypatch, {2: 0.002, 1: 0.001})  # 1 thread is twice as fast here
    chosen, rates = threads.choose_threads([2, 1], step, min_seconds=0.05)
    assert chosen == 1 and state["threads"] == 1
    assert rates[1] == pytest.approx(2 * rates[2])


def test_a_tie_within_the_noise_goes_to_the_fewest_threads(monkeypatch):
    from tui_train.core.train.threads import NOISE

    for ratio, expect in ((1.0 + NOISE / 2, 1), (1.0 + 3 * NOISE, 2)):  # 2 threads a little faster / clearly faster
        state, step = _fake_clock(monkeypatch, {2: 0.001, 1: 0.001 * ratio})
        chosen, _ = threads.choose_threads([2, 1], step, min_seconds=0.05)
        assert chosen == expect and state["threads"] == expect, ratio


def test_slow_steps_get_one_round(monkeypatch):
    calls = []
    state, step = _fake_clock(monkeypatch, {2: 2.0, 1: 1.0})
    chosen, _ = threads.choose_threads([2, 1], lambda: (calls.append(state["threads"]), step()), min_seconds=0.05, min_steps=3)
    assert chosen == 1
    assert len(calls) == 2 * 4  # per candidate one warm-up and three timed steps, one round only


def _config() -> dict:
    return {"name": "threads", "data": {"dataset": "digits", "batch_size": 128},
            "model": {"name": "mlp", "hidden": [32], "dropout": 0.2},
            "train": {"epochs": 2, "log_every": 1, "device": "cpu", "seed": 3},
            "checkpoint": {"every_steps": 4, "keep_last": 100, "save_best": False}}


def test_the_count_is_recorded_in_the_checkpoint_and_reused_on_resume(monkeypatch, tmp_path):
    measured = iter([1, 2])  # the first run measures 1 thread; measuring again would give 2
    calls = []

    def fake_choose(candidates, step, **kw):
        step()  # the probe step runs (on a scratch copy)
        n = next(measured)
        calls.append(n)
        torch.set_num_threads(n)
        return n, {n: 100.0}

    monkeypatch.setattr(threads, "choose_threads", fake_choose, raising=False)
    monkeypatch.setattr(threads, "thread_candidates", lambda device, cfg: [2, 1])
    seen: list[int] = []
    first = Trainer(from_dict(_config()), runs_dir=tmp_path / "a")
    events = run_to_end(first)
    assert isinstance(events[-1], E.RunFinished) and calls == [1]
    assert any(isinstance(e, E.RunNote) and "threads: using 1" in e.message for e in events)
    ck = sorted(Path(first.run_dir, "checkpoints").glob("step-*-periodic.pt"))[1]
    assert load(ck)["threads"] == 1

    folder = tmp_path / "b" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(ck, folder / ck.name)
    torch.set_num_threads(2)  # a fresh process starts at torch's default
    resumed = Trainer(from_dict(_config()), runs_dir=tmp_path / "unused", resume=folder / ck.name)
    q = []

    def sink(ev):
        q.append(ev)
        if isinstance(ev, E.StepMetrics):
            seen.append(torch.get_num_threads())

    resumed.run(sink=sink)
    assert isinstance(q[-1], E.RunFinished), q[-1]
    assert calls == [1], "the resumed run measured the thread count again"
    assert seen and set(seen) == {1}
    assert any(isinstance(e, E.RunNote) and "as the resumed checkpoint recorded" in e.message for e in q)
    got, ref = resumed.model.state_dict(), first.model.state_dict()
    for name in ref:
        assert torch.equal(got[name], ref[name]), name  # default (non-deterministic) mode, bit-identical


UNCOPYABLE = """\
import threading

import torch.nn as nn


class Net(nn.Module):
    \"\"\"A user model holding a lock (a deep copy refuses it), whose 3rd training forward raises.\"\"\"

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.lock = threading.Lock()
        self.calls = 0

    def forward(self, x):
        self.calls += self.training
        if self.calls == 3:
            raise RuntimeError("CUDA error at [/src/kernel.cu:12] bad thing")
        return self.body(x)
"""


def test_a_model_the_measurement_cannot_train_runs_as_itself(monkeypatch, tmp_path):
    """The measurement is an optimisation: a user model that refuses a deep copy (it holds a lock)
    must not fail at start with a traceback from the scratch copy; the run trains at the default
    count, says so, and fails (if it must) as itself, at its own step."""
    (tmp_path / "net.py").write_text(UNCOPYABLE)
    monkeypatch.setattr(threads, "thread_candidates", lambda device, cfg: [2, 1])
    cfg = from_dict({"data": {"dataset": "digits", "batch_size": 32}, "model": {"name": f"{tmp_path / 'net.py'}:Net"},
                     "train": {"epochs": 1, "log_every": 1, "device": "cpu"}})
    trainer = Trainer(cfg, runs_dir=tmp_path / "runs")
    trainer.dry_run = False  # its forward counts calls: the dry run's would move the fault
    events = run_to_end(trainer)
    notes = [e.message for e in events if isinstance(e, E.RunNote)]
    assert any(n.startswith("threads: using") and "not measured" in n for n in notes), notes
    failed = [e for e in events if isinstance(e, E.RunFailed)]
    assert failed and "[/src/kernel.cu:12]" in failed[0].message, events[-3:]
    assert max(e.step for e in events if isinstance(e, E.StepMetrics)) == 2  # two steps trained, the third raised
