"""Exact resume beyond tests/unit/test_resume.py (issue 21 item 4): with BatchNorm (its running
statistics too), with a user dataset served by a DataLoader with a random transform, with
reduce-on-plateau, with commands arriving in the middle of a gradient accumulation, and through
the CLI in a fresh process after SIGTERM. Each resumes from several checkpoints of one reference
run (epoch boundaries included) and compares the whole state_dict, buffers included, with
torch.equal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer


@pytest.fixture(autouse=True)
def keep_threads():
    """train.num_threads sets torch's process-wide count: put it back for the tests after these."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def cfg(**sections) -> object:
    """A tiny digits run on the CPU, one thread, a checkpoint at every optimizer step; ``sections``
    update the sections' dicts."""
    raw = {
        "name": "resume-more",
        "data": {"dataset": "digits", "batch_size": 128},
        "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "adam", "lr": 3e-3},
        "train": {"epochs": 2, "log_every": 1, "device": "cpu", "num_threads": 1, "seed": 3},
        "checkpoint": {"every_steps": 1, "keep_last": 10_000, "save_best": False},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return from_dict(raw)


def run(trainer: Trainer, stop: threading.Event | None = None) -> list[E.Event]:
    events: list[E.Event] = []
    trainer.run(stop, sink=events.append)
    assert isinstance(events[-1], E.RunFinished), events[-1]
    return events


def snapshot(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The whole state_dict: parameters and buffers (BatchNorm's running mean, var and count)."""
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def resume_from(ck: Path, tmp: Path, config) -> Trainer:
    """A Trainer resuming from a copy of ``ck`` in its own run directory (the reference's stays as it was)."""
    folder = tmp / f"resume-{ck.stem}" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(ck, folder / ck.name)
    return Trainer(config, runs_dir=tmp / "unused", resume=folder / ck.name)


def assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], where: str) -> None:
    assert got.keys() == want.keys(), where
    differ = [k for k in want if not torch.equal(got[k], want[k])]
    assert not differ, f"{where}: {', '.join(differ)} differ from the uninterrupted run"


def periodic(trainer: Trainer) -> list[Path]:
    return sorted(Path(trainer.run_dir, "checkpoints").glob("step-*-periodic.pt"))


def picks(ckpts: list[Path], spe: int) -> list[Path]:
    """The first step, mid first epoch, the first epoch boundary, the step after it, the second last step."""
    return [ckpts[i] for i in sorted({0, spe // 2, spe - 1, spe, len(ckpts) - 2})]


def check_resumes(config, tmp: Path, points=picks) -> tuple[Trainer, list[int]]:
    """Train ``config`` uninterrupted, resume from ``points`` of its periodic checkpoints, compare
    each resumed run's final state_dict with the reference's. Returns the reference and the steps."""
    ref = Trainer(config, runs_dir=tmp / "ref")
    run(ref)
    want = snapshot(ref)
    ckpts = periodic(ref)
    assert len(ckpts) == ref.total_steps
    steps = []
    for ck in points(ckpts, ref.steps_per_epoch):
        step = load(ck)["step"]
        resumed = resume_from(ck, tmp, config)
        events = run(resumed)
        assert events[0].start_step == step
        assert_same(snapshot(resumed), want, f"resume at step {step} (steps per epoch {ref.steps_per_epoch})")
        steps.append(step)
    return ref, steps


# --------------------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("deterministic", [False, True], ids=["default", "deterministic"])
def test_batchnorm_cnn_resume_is_bit_identical_running_stats_included(tmp_path, deterministic):
    config = cfg(model={"name": "cnn", "channels": [4, 8], "hidden": [16], "batch_norm": True, "dropout": 0.1},
                 data={"augment": {"rotation": 10.0}}, train={"deterministic": deterministic})
    ref, steps = check_resumes(config, tmp_path)
    buffers = dict(ref.model.named_buffers())
    assert any(k.endswith("running_mean") for k in buffers) and any(k.endswith("num_batches_tracked") for k in buffers)
    # every training batch counted once (the model's shape probe none: core/train/models.py CNN)
    assert int(next(v for k, v in buffers.items() if k.endswith("num_batches_tracked"))) == ref.p.rt.batches_per_epoch * 2
    assert ref.steps_per_epoch in steps  # the first epoch boundary was among the resume points


# --------------------------------------------------------------------------- a user dataset through a DataLoader

USER_DATASET = """
    import torch
    from torch.utils.data import Dataset
    from torchvision import transforms


    class Blobs(Dataset):
        '''300 items of 1x6x6 with 3 classes; every read draws a fresh random flip and erasure.'''

        def __init__(self):
            g = torch.Generator().manual_seed(0)
            self.y = torch.arange(300) % 3
            self.x = torch.randn(300, 1, 6, 6, generator=g) + self.y.view(-1, 1, 1, 1).float()
            self.transform = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomErasing(p=0.5)])

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.transform(self.x[i]), int(self.y[i])


    def make():
        return Blobs()
"""


@pytest.mark.parametrize("loader", ["auto", "dataloader"])
def test_user_dataset_with_a_random_transform_through_the_dataloader_resumes_bit_identical(tmp_path, monkeypatch, loader):
    """The transform draws from the global torch RNG on every read (num_workers = 0, the default):
    the checkpoint's RNG state must be the one the next batch draws from, so nothing between a
    checkpoint and the next read may draw from it (a new DataLoader iterator used to: its base seed)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds.py").write_text(textwrap.dedent(USER_DATASET))
    config = cfg(data={"dataset": "ds.py:make", "batch_size": 32, "loader": loader},
                 model={"name": "mlp", "hidden": [16], "dropout": 0.2})
    ref, _ = check_resumes(config, tmp_path)
    assert type(ref.data).__name__ == "LoaderData"


# --------------------------------------------------------------------------- reduce-on-plateau

def test_reduce_on_plateau_resume_before_and_after_the_reduction_is_bit_identical(tmp_path):
    """The plateau's scale, best value and bad epochs travel in the checkpoint: a run resumed
    before the reduction reduces at the same epoch end, one resumed after it keeps the lower LR."""
    config = cfg(data={"batch_size": 256}, optim={"lr": 3e-2}, train={"epochs": 5},
                 schedule={"name": "plateau", "plateau_patience": 0, "plateau_factor": 0.5})
    scales: dict[int, float] = {}

    def around_the_reduction(ckpts: list[Path], spe: int) -> list[Path]:
        scales.update({load(p)["step"]: load(p)["plateau"]["scale"] for p in ckpts})
        first = min(s for s, v in scales.items() if v < 1.0)  # the first step trained at the reduced LR
        assert first % spe == 1 and first < len(ckpts) - 1, f"the reduction must come at an epoch end inside the run ({scales})"
        # mid first epoch, the epoch boundaries before the reduction (the last one reduces after
        # resuming), the first step after it, and later
        return [ckpts[i - 1] for i in sorted({spe // 2, spe, first - 1, first, first + 1})]

    ref, steps = check_resumes(config, tmp_path, points=around_the_reduction)
    assert ref.p.plateau.scale == 0.5 and ref.current_lr(ref.state.step) == pytest.approx(1.5e-2)
    assert any(scales[s] == 1.0 for s in steps) and any(scales[s] == 0.5 for s in steps)


# --------------------------------------------------------------------------- gradient accumulation

def accum_config():
    # 11 batches an epoch in steps of 3, 3, 3 and a partial 2: epoch ends fall inside an accumulation
    return cfg(optim={"name": "adam", "lr": 3e-3, "grad_accum": 3}, model={"name": "mlp", "hidden": [16], "dropout": 0.2},
               data={"augment": {"rotation": 10.0}}, checkpoint={"every_steps": 0})


def after_micro_batches(trainer: Trainer, hook) -> None:
    """Call ``hook(batch)`` after each micro-batch's backward (``batch``: its index in the epoch),
    on the training thread, before the optimizer step that ends its accumulation."""
    real = trainer._train_batch

    def train_batch(x, y):
        real(x, y)
        hook(trainer.state.batch)

    trainer._train_batch = train_batch


def test_commands_sent_mid_accumulation_wait_for_the_step_and_resume_from_there_is_exact(tmp_path):
    """Commands apply at optimizer-step boundaries only (engine._train_epoch): a SaveCheckpoint
    (or an interrupt) arriving in the middle of an accumulation is carried out after the step that
    ends it, so no checkpoint holds half-accumulated gradients; each resumes bit-identically."""
    plain = Trainer(accum_config(), runs_dir=tmp_path / "plain")
    run(plain)
    want = snapshot(plain)
    spe, bpe = plain.steps_per_epoch, plain.p.rt.batches_per_epoch
    assert (spe, bpe) == (4, 11)

    saving = Trainer(accum_config(), runs_dir=tmp_path / "saving")
    after_micro_batches(saving, lambda b: b % 3 == 1 and saving.submit(C.SaveCheckpoint()))  # after the 2nd of 3
    run(saving)
    assert_same(snapshot(saving), want, "a run that saved mid-accumulation")  # saving changes nothing
    manual = sorted(Path(saving.run_dir, "checkpoints").glob("step-*-manual.pt"))
    assert len(manual) == 2 * spe
    for ck in manual:
        payload = load(ck)
        batch, step, epoch = payload["batch"], payload["step"], payload["epoch"]
        assert batch % 3 == 0 or batch == bpe, f"{ck.name}: saved at batch {batch}, inside an accumulation"
        assert step == epoch * spe + -(-batch // 3), ck.name
        resumed = resume_from(ck, tmp_path, accum_config())
        run(resumed)
        assert_same(snapshot(resumed), want, f"resume at step {step} (epoch {epoch}, batch {batch})")

    # a stop mid-accumulation: after batch 4 (the middle of the second step), and after batch 9 of
    # the second epoch (the epoch ends with a partial step first, so the run stops at the boundary)
    for epoch, batch, stop_after in ((0, 6, 4), (1, bpe, 9)):
        stop = threading.Event()
        t = Trainer(accum_config(), runs_dir=tmp_path / f"stop-{epoch}-{stop_after}")
        after_micro_batches(t, lambda b, t=t, stop=stop, e=epoch, s=stop_after: t.state.epoch == e and b == s and stop.set())
        assert run(t, stop)[-1].status == "interrupted"
        (ck,) = Path(t.run_dir, "checkpoints").glob("step-*-interrupt.pt")
        assert (load(ck)["epoch"], load(ck)["batch"]) == (epoch, batch)
        resumed = resume_from(ck, tmp_path, accum_config())
        run(resumed)
        assert_same(snapshot(resumed), want, f"resume after a stop at epoch {epoch} batch {stop_after}")


# --------------------------------------------------------------------------- the CLI, a fresh process

def tui_cmd() -> list[str]:
    exe = shutil.which("tui-train") or str(Path(sys.executable).parent / "tui-train")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "tui_train.tui.cli"]


CLI_SETS = ["train.epochs=6", "train.log_every=1", "train.num_threads=1", "train.seed=5"]


def cli_run(tmp: Path, name: str) -> subprocess.Popen:
    sets = [a for s in CLI_SETS for a in ("--set", s)]
    return subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp / name), *sets],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def last_weights(runs: Path) -> dict[str, torch.Tensor]:
    """The model tensors of the one run's last.pt, which must be the end of all 6 epochs."""
    (run_dir,) = runs.iterdir()
    last = load(run_dir / "checkpoints" / "last.pt")
    assert (last["epoch"], last["batch"]) == (6, 0), runs
    return last["model"]


@pytest.mark.slow
def test_cli_sigterm_then_resume_in_a_fresh_process_ends_bit_identical(tmp_path):
    """`tui-train run digits-mlp --headless` stopped by SIGTERM mid-epoch, then
    `tui-train run --resume RUN_DIR --headless` in a new process: last.pt's weights equal those of
    an uninterrupted run of the same config (dropout, warmup + cosine, Adam: digits-mlp as it is)."""
    whole = cli_run(tmp_path, "whole")
    cut = cli_run(tmp_path, "cut")
    lines, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:  # SIGTERM once the run is a little way into its first epoch
        line = cut.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("step") and sum(x.startswith("step") for x in lines) >= 15:
            cut.send_signal(signal.SIGTERM)
            break
    out, _ = cut.communicate(timeout=60)
    assert cut.returncode == 130, "".join(lines) + out  # interrupted, not finished before the signal
    (run_dir,) = (tmp_path / "cut").iterdir()
    (ck,) = (run_dir / "checkpoints").glob("step-*-interrupt.pt")
    stopped = load(ck)
    assert 0 < stopped["step"] < 6 * 41, stopped["step"]
    res = subprocess.run(tui_cmd() + ["run", "--resume", str(run_dir), "--headless"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, out
    got, want = last_weights(tmp_path / "cut"), last_weights(tmp_path / "whole")
    assert_same(got, want, f"resumed in a new process after SIGTERM at step {stopped['step']} (batch {stopped['batch']})")
