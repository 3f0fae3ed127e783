"""Exact resume: resuming from a checkpoint taken at any step gives bit-identical parameters to an
uninterrupted run (CPU, deterministic mode), epoch boundaries and a live LR change included."""

from __future__ import annotations

import queue
import shutil
from pathlib import Path

import pytest
import torch

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict, to_dict
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer

CHANGE_AT = 4  # the live LR change is submitted when step 4 is reported, so it applies before step 5
NEW_LR = 0.0123


def config():
    # dropout (global RNG), augmentation (per-batch generators), Adam state, warmup + cosine,
    # a partial last batch: everything that must be restored exactly.
    return from_dict({
        "name": "resume",
        "data": {"dataset": "digits", "batch_size": 128, "augment": {"rotation": 10.0, "translate": 0.1}},
        "model": {"name": "mlp", "hidden": [32], "dropout": 0.2},
        "optim": {"name": "adam", "lr": 3e-3},
        "schedule": {"name": "cosine", "warmup_steps": 3},
        "train": {"epochs": 2, "log_every": 1, "device": "cpu", "deterministic": True, "seed": 7},
        "checkpoint": {"every_steps": 1, "keep_last": 10_000, "save_best": False},
    })


def run(trainer: Trainer, inject: bool) -> list[E.Event]:
    events: list[E.Event] = []

    def sink(ev: E.Event) -> None:  # runs on the trainer thread: the injection is deterministic
        events.append(ev)
        if inject and isinstance(ev, E.StepMetrics) and ev.step == CHANGE_AT:
            trainer.submit(C.SetLearningRate(NEW_LR))

    trainer.run(sink=sink)
    return events


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    trainer = Trainer(config(), runs_dir=tmp)
    events = run(trainer, inject=True)
    assert isinstance(events[-1], E.RunFinished)
    final = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ckpts = sorted(Path(trainer.run_dir, "checkpoints").glob("step-*-periodic.pt"))
    return final, ckpts, trainer.steps_per_epoch


def test_reference_has_a_checkpoint_at_every_step(reference):
    _, ckpts, spe = reference
    assert len(ckpts) == 2 * spe
    assert load(ckpts[CHANGE_AT])["base_lr"] == pytest.approx(NEW_LR)  # step 5: change applied
    assert load(ckpts[CHANGE_AT - 1])["base_lr"] == pytest.approx(3e-3)


def test_resume_at_every_step_is_bit_identical(reference, tmp_path):
    final, ckpts, spe = reference
    for ck in ckpts[:-1]:
        step = load(ck)["step"]
        folder = tmp_path / f"s{step}" / "checkpoints"
        folder.mkdir(parents=True)
        shutil.copy(ck, folder / ck.name)
        trainer = Trainer(config(), runs_dir=tmp_path / "unused", resume=folder / ck.name)
        if step == CHANGE_AT:  # the command was still queued when this checkpoint was written
            trainer.submit(C.SetLearningRate(NEW_LR))
        events = run(trainer, inject=step < CHANGE_AT)
        assert isinstance(events[-1], E.RunFinished), events[-1]
        assert events[0].start_step == step
        got = trainer.model.state_dict()
        for name, ref in final.items():
            assert torch.equal(got[name], ref), f"resume at step {step} (epoch boundary: {step % spe == 0}): {name} differs"


def test_live_lr_change_wins_over_the_preset_on_resume(reference, tmp_path):
    _, ckpts, _ = reference
    ck = ckpts[CHANGE_AT + 2]
    trainer = Trainer(config(), runs_dir=tmp_path, resume=ck)
    trainer.prepare()
    assert trainer.state.base_lr == pytest.approx(NEW_LR)
    assert [h["command"] for h in trainer.state.history] == ["SetLearningRate"]


def test_resume_keeps_the_epoch_train_metrics(reference, tmp_path):
    _, ckpts, spe = reference
    ref_payload = load(ckpts[spe - 1])
    assert ref_payload["epoch_acc"][2] > 0  # the epoch's sample count travels with the checkpoint
    q: queue.SimpleQueue = queue.SimpleQueue()
    folder = tmp_path / "r" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(ckpts[2], folder / ckpts[2].name)
    t = Trainer(config(), runs_dir=tmp_path, resume=folder / ckpts[2].name)
    t.run(sink=q.put)
    evs = []
    while not q.empty():
        evs.append(q.get())
    epoch0 = next(e for e in evs if isinstance(e, E.EpochMetrics))
    assert epoch0.epoch == 0 and 0 < epoch0.train["loss"] < 10


def test_resume_in_the_default_mode_is_bit_identical_too(tmp_path, monkeypatch):
    """Not only in deterministic mode: the run's thread count (measured once, before the first
    step) is recorded in the checkpoint and reused, so the resumed steps compute as the
    uninterrupted run's did, even where measuring again would choose another count (issue 20, defect 8)."""
    import tui_train.core.train.threads as threads

    raw = to_dict(config())
    raw["train"]["deterministic"] = False
    cfg = from_dict(raw)
    keep = torch.get_num_threads()
    counts = iter([1] + [2] * 100)  # the reference measures 1 thread; a resume measuring again would get 2

    def fake_choose(candidates, step, **kw):
        n = next(counts)
        torch.set_num_threads(n)
        return n, {n: 1.0}

    monkeypatch.setattr(threads, "choose_threads", fake_choose, raising=False)
    monkeypatch.setattr(threads, "thread_candidates", lambda device, c: [2, 1])
    try:
        trainer = Trainer(cfg, runs_dir=tmp_path / "ref")
        assert isinstance(run(trainer, inject=False)[-1], E.RunFinished)
        final = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        ckpts = sorted(Path(trainer.run_dir, "checkpoints").glob("step-*-periodic.pt"))
        spe = trainer.steps_per_epoch
        for ck in (ckpts[0], ckpts[spe // 2], ckpts[spe - 1], ckpts[spe + 1]):  # epoch boundary included
            step = load(ck)["step"]
            folder = tmp_path / f"s{step}" / "checkpoints"
            folder.mkdir(parents=True)
            shutil.copy(ck, folder / ck.name)
            torch.set_num_threads(2)
            resumed = Trainer(cfg, runs_dir=tmp_path / "unused", resume=folder / ck.name)
            assert isinstance(run(resumed, inject=False)[-1], E.RunFinished)
            got = resumed.model.state_dict()
            for name, ref in final.items():
                assert torch.equal(got[name], ref), f"default mode, resume at step {step}: {name} differs"
    finally:
        torch.set_num_threads(keep)
