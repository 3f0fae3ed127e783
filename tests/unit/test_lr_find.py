"""The LR range test: the suggestion rules on known curves, the sweep's stops, and a sweep of a
real run that leaves its weights, optimizer state, data order and RNG states as they were."""

from __future__ import annotations

import itertools
import math
import random
import time

import numpy as np
import pytest
import torch

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import lr_find as L
from tui_train.core.config import from_dict
from tui_train.core.run import control
from tui_train.core.state import TrainingState
from tui_train.core.train import lr_sweep
from tui_train.core.train.engine import Trainer


def test_the_valley_is_the_middle_of_the_longest_descent():
    # up for 10, down for 60 (indices 10..69), up again: the longest strictly decreasing
    # subsequence is one point of the first ramp and the whole descent, 61 points ending at 69
    losses = [2.0 + 0.01 * i for i in range(10)] + [1.9 - 0.01 * i for i in range(60)] + [1.5 + 0.1 * i for i in range(30)]
    i = L.valley(losses)
    # fastai: start = end - length (69 - 61 = 8), then a third and a sixth of (end - start) = 61
    assert i == 8 + int(61 / 3) + int(61 / 3 / 2) == 38
    assert 10 < i < 69  # on the descent, not at its ends


def test_suggestions_on_a_synthetic_curve_with_a_known_valley():
    curve = L.run_sweep(L.demo_loss)  # falls from about 1e-5, lowest near 3e-2, blows up past 0.1
    low = min(range(len(curve.losses)), key=curve.losses.__getitem__)
    lowest_lr = curve.lrs[low]
    assert curve.stopped == "diverged" and len(curve.lrs) < curve.steps
    s = curve.suggestions
    assert set(s) == set(L.RULES) and curve.suggestion == s["valley"]
    assert 1e-5 < s["valley"] < lowest_lr  # on the descent, below the minimum
    assert s["minimum/10"] == pytest.approx(lowest_lr / 10)
    # the valley's point is lower than where the descent starts and higher than the minimum
    at = curve.lrs.index(s["valley"])
    assert curve.losses[0] > curve.losses[at] > curve.losses[low]


def test_the_schedule_is_exponential_from_start_to_end():
    lrs = [L.lr_at(i, 1e-7, 10.0, 100) for i in range(100)]
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(lrs)}
    assert len(ratios) == 1


def test_the_sweep_stops_at_the_first_non_finite_loss_and_at_divergence():
    curve = L.run_sweep(lambda lr: math.nan if lr > 1e-3 else 1.0, steps=50)
    assert curve.stopped == "non-finite" and all(lr <= 1e-3 for lr in curve.lrs)
    blown = L.run_sweep(lambda lr: 1.0 if lr < 1e-2 else 1e6, steps=50)
    assert blown.stopped == "diverged" and blown.losses[-1] > L.DIVERGENCE * min(blown.losses)
    calls = []
    stopped = L.run_sweep(lambda lr: calls.append(lr) or 1.0, steps=50, stop=lambda: len(calls) >= 3)
    assert stopped.stopped == "interrupted" and len(stopped.lrs) == 3


def test_too_few_points_give_no_suggestion_and_bad_options_are_refused():
    assert L.run_sweep(lambda lr: math.nan, steps=10).suggestion is None
    # a converged model: any larger LR raises the loss, 4x its best within a few steps
    short = L.run_sweep(lambda lr: 1e-5 * (lr / 1e-7) ** 3, steps=100)
    assert short.stopped == "diverged" and len(short.lrs) < L.MIN_POINTS and short.suggestions == {}
    assert "no suggestion" in L.describe(short.suggestions, len(short.lrs), short.stopped)
    with pytest.raises(L.SweepError, match="end_lr"):
        L.run_sweep(lambda lr: 1.0, start=1.0, end=0.1)
    assert "steps" in L.check_options(1e-7, 10.0, 4)


def test_the_curve_round_trips_through_json():
    curve = L.run_sweep(L.demo_loss, steps=30)
    assert L.Curve.from_json(curve.to_json()) == curve


def test_find_learning_rate_applies_only_to_a_paused_run():
    state = TrainingState(base_lr=1e-3)
    running = control.decide(C.FindLearningRate(), "running", state, {})
    assert "pause first" in running.rejected
    assert control.decide(C.FindLearningRate(), "paused", state, {}).effect == "lr_find"
    assert "steps" in control.decide(C.FindLearningRate(steps=2), "paused", state, {}).rejected


def _rng() -> tuple:
    return random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist()


def test_a_sweep_leaves_the_run_untouched(tmp_path):
    # dropout draws from the global RNG; momentum makes the optimizer state worth checking
    cfg = from_dict({"name": "t", "data": {"dataset": "digits", "batch_size": 32}, "model": {"dropout": 0.2},
                     "optim": {"name": "adam", "lr": 1e-3}, "train": {"max_steps": 5, "log_every": 5}})
    trainer = Trainer(cfg, runs_dir=tmp_path)
    trainer.prepare()
    rt = trainer.p.rt
    x, y = next(iter(rt.data.train_batches(0, 32)))  # one real step, so that Adam has state
    rt.loss_fn(rt.model(x), y).backward()
    rt.optimizer.step()
    rt.optimizer.zero_grad()
    weights = {k: v.clone() for k, v in rt.model.state_dict().items()}
    opt = rt.optimizer.state_dict()
    opt_state = {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()} for k, v in opt["state"].items()}
    groups = [dict(g) for g in opt["param_groups"]]
    rng = _rng()

    curve = lr_sweep.sweep_runtime(rt, cfg, steps=20)

    assert len(curve.lrs) > 5 and curve.suggestion is not None
    assert all(torch.equal(weights[k], v) for k, v in rt.model.state_dict().items())
    after = rt.optimizer.state_dict()
    assert [dict(g) for g in after["param_groups"]] == groups
    for k, v in after["state"].items():
        for n, t in v.items():
            assert torch.equal(t, opt_state[k][n]) if torch.is_tensor(t) else t == opt_state[k][n]
    assert _rng() == rng
    assert rt.model.training  # the mode it was in
    # The data order is a pure function of (seed, epoch): what a sweep could disturb is the run
    # itself, which test_a_sweep_in_the_middle_of_a_run_changes_nothing_the_run_does checks.


SWEEP_AT = 3


def _run_with_pause(tmp_path, sweep: bool, monkeypatch=None) -> tuple[dict, list]:
    """A short run (dropout, augmentation, Adam, cosine: every kind of state) paused at step
    SWEEP_AT and resumed, with or without an LR range test while paused; its final weights."""
    cfg = from_dict({"name": "t", "data": {"dataset": "digits", "batch_size": 64, "augment": {"rotation": 10.0, "translate": 0.1}},
                     "model": {"name": "mlp", "hidden": [32], "dropout": 0.2}, "optim": {"name": "adam", "lr": 3e-3},
                     "schedule": {"name": "cosine", "warmup_steps": 2},
                     "train": {"max_steps": 8, "log_every": 1, "device": "cpu", "deterministic": True, "seed": 3, "num_threads": 1},
                     "checkpoint": {"save_best": False}})
    trainer = Trainer(cfg, runs_dir=tmp_path / ("sweep" if sweep else "plain"))
    events = []

    def sink(ev):  # on the trainer thread: the commands land at one known step boundary
        events.append(ev)
        if isinstance(ev, E.StepMetrics) and ev.step == SWEEP_AT:
            trainer.submit(C.Pause())
            if sweep:
                trainer.submit(C.FindLearningRate(steps=12))
            trainer.submit(C.Resume())

    trainer.run(sink=sink)
    assert isinstance(events[-1], E.RunFinished) and events[-1].status == "completed", events[-1]
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}, events


def test_a_sweep_in_the_middle_of_a_run_changes_nothing_the_run_does(tmp_path, monkeypatch):
    """Bit-identical final weights with and without a sweep while paused (data order, RNG,
    weights, optimizer state all untouched), and the sweep's time is not training time: the sweep
    here is made to take 1000 s on the clock (perf_counter shifted while it runs), and the run's
    train_seconds does not contain it."""
    plain, _ = _run_with_pause(tmp_path, sweep=False)
    shift = [0.0]
    real_counter, real_sweep = time.perf_counter, lr_sweep.sweep_runtime

    def slow_sweep(*args, **kwargs):
        curve = real_sweep(*args, **kwargs)
        shift[0] += 1000.0  # as if the sweep had taken 1000 s
        return curve

    monkeypatch.setattr(time, "perf_counter", lambda: real_counter() + shift[0])
    monkeypatch.setattr(lr_sweep, "sweep_runtime", slow_sweep)
    swept, events = _run_with_pause(tmp_path, sweep=True)
    found = [e for e in events if isinstance(e, E.LearningRateFound)]
    assert len(found) == 1 and found[0].lrs, found
    assert plain.keys() == swept.keys() and all(torch.equal(plain[k], swept[k]) for k in plain)
    summary = events[-1].summary
    assert shift[0] == 1000.0 and summary["train_seconds"] < 1000.0, summary
    assert summary["wall_seconds"] >= 1000.0  # the wall clock did see it: the shift was in effect


def test_a_model_returning_a_tuple_sweeps_and_one_that_does_not_fit_is_refused_first(tmp_path, monkeypatch):
    from tui_train.core.config import ConfigError

    (tmp_path / "nets.py").write_text(
        "import torch\n"
        "class Pair(torch.nn.Module):\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n        self.fc = torch.nn.Linear(64, num_classes)\n"
        "    def forward(self, x):\n        h = x.flatten(1)\n        return self.fc(h), h\n"
        "class Three(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(64, 3)\n"
        "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    monkeypatch.chdir(tmp_path)

    def cfg(model: str):
        return from_dict({"name": "t", "data": {"dataset": "digits", "batch_size": 32}, "model": {"name": model},
                          "optim": {"name": "adam", "lr": 1e-3}})

    curve, device = lr_sweep.find_lr(cfg("nets.py:Pair"), steps=20)  # (logits, features), as training takes it
    assert device == "cpu" and len(curve.lrs) > 5 and all(math.isfinite(v) for v in curve.losses)
    with pytest.raises(ConfigError, match=r"expected shape \[32, 10\]"):  # the run's own one line, before any sweep
        lr_sweep.find_lr(cfg("nets.py:Three"), steps=20)
