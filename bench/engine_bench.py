"""Engine benchmarks: (a) engine vs the classic loop, (b) engine vs a bare loop over preloaded
tensors, (f) memory of the engine over many logged steps. Figures, not assertions.

Every loop trains the same model from the same initial weights on the same data and batch size;
repetitions alternate between the contenders and the medians are reported.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from tui_train.core.config import from_dict
from tui_train.core.train.engine import Trainer

MEAN, STD = 0.1307, 0.3081  # MNIST's published statistics, used by the classic loop


@dataclass
class Result:
    """One timed training pass."""

    samples_per_second: float
    test_accuracy: float | None


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn() -> nn.Module:
    """The same layout as core.train.models' cnn with channels [32, 64], hidden [128]."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


MODELS = {"mlp": (mlp, {"name": "mlp", "hidden": [128]}), "cnn": (cnn, {"name": "cnn", "channels": [32, 64], "hidden": [128]})}


def engine_config(kind: str, data_dir: Path, batch_size: int, max_steps: int, device: str, threads: int, log_every: int = 50):
    return from_dict({
        "name": f"bench-{kind}",
        "data": {"dataset": "mnist", "data_dir": str(data_dir), "val_fraction": 0.0, "batch_size": batch_size,
                 "mean": [MEAN], "std": [STD]},
        "model": MODELS[kind][1],
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"epochs": 1, "max_steps": max_steps, "log_every": log_every, "device": device, "seed": 0, "num_threads": threads},
        "checkpoint": {"save_best": False, "save_last": False},
    })


def test_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, x.shape[0], 2000):
            correct += int((model(x[i:i + 2000]).argmax(1) == y[i:i + 2000]).sum())
    model.train()
    return correct / x.shape[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finish(device: torch.device, t0: float, n: int, model: nn.Module, test) -> Result:
    """Stop the clock after the device has caught up; test accuracy outside the timed part."""
    _sync(device)
    dt = time.perf_counter() - t0
    return Result(n / dt, test_accuracy(model, *test) if test is not None else None)


def classic_loop(kind: str, data_dir: Path, batch_size: int, max_steps: int, device: torch.device, test) -> Result:
    """The loop from the tutorials: DataLoader + ToTensor + Normalize, loss.item() every step."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    ds = datasets.MNIST(str(data_dir), train=True, download=False, transform=tf)
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0, generator=g)
    torch.manual_seed(0)
    model = MODELS[kind][0]().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    n, running = 0, 0.0
    _sync(device)
    t0 = time.perf_counter()
    for steps, (x, y) in enumerate(loader, start=1):
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        running += loss.item()  # the classic per-step host sync
        n += x.shape[0]
        if max_steps and steps >= max_steps:
            break
    return _finish(device, t0, n, model, test)


def bare_loop(kind: str, x: torch.Tensor, y: torch.Tensor, batch_size: int, max_steps: int, device: torch.device, test) -> Result:
    """The practical limit: preloaded normalized tensors on the device, no logging at all."""
    torch.manual_seed(0)
    model = MODELS[kind][0]().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0)).to(device)
    n = 0
    _sync(device)
    t0 = time.perf_counter()
    for steps, i in enumerate(range(0, x.shape[0], batch_size), start=1):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += idx.shape[0]
        if max_steps and steps >= max_steps:
            break
    return _finish(device, t0, n, model, test)


def engine_run(kind: str, data_dir: Path, batch_size: int, max_steps: int, device: str, threads: int, runs_dir: Path, test) -> Result:
    """tui-train's Trainer, as the headless command runs it (throughput excludes evaluation)."""
    trainer = Trainer(engine_config(kind, data_dir, batch_size, max_steps, device, threads), runs_dir=runs_dir)
    summary = trainer.run(sink=lambda e: None)
    if summary.get("status") != "completed":
        raise RuntimeError(f"engine run ended {summary.get('status')}: {summary.get('reason')}")
    return Result(summary["samples_per_second"], test_accuracy(trainer.model, *test) if test is not None else None)


def load_tensors(data_dir: Path, device: torch.device):
    from tui_train.core.train.data import load_data

    cfg = engine_config("mlp", data_dir, 64, 0, str(device), 0).data
    data = load_data(cfg, device, 0)
    return data.tensors("train"), data.tensors("test")


def compare(kind: str, data_dir: Path, *, batch_size: int, max_steps: int, reps: int, device: str, threads: int,
            runs_dir: Path, with_classic: bool = True) -> dict:
    """Alternate classic / bare / engine repetitions; return medians and accuracies."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    (x, y), test = load_tensors(data_dir, dev)
    out: dict[str, list[Result]] = {"classic": [], "bare": [], "engine": []}
    for _ in range(reps):
        if with_classic:
            out["classic"].append(classic_loop(kind, data_dir, batch_size, max_steps, dev, test))
        out["bare"].append(bare_loop(kind, x, y, batch_size, max_steps, dev, test))
        out["engine"].append(engine_run(kind, data_dir, batch_size, max_steps, device, threads, runs_dir, test))
        gc.collect()
    med = {k: statistics.median(r.samples_per_second for r in v) for k, v in out.items() if v}
    acc = {k: v[-1].test_accuracy for k, v in out.items() if v}
    return {"kind": kind, "batch_size": batch_size, "steps": max_steps or "1 epoch", "threads": threads, "reps": reps,
            "samples_per_second": med, "test_accuracy": acc,
            "all": {k: [round(r.samples_per_second) for r in v] for k, v in out.items() if v}}


def engine_memory(data_dir: Path, steps: int, runs_dir: Path) -> dict:
    """RSS growth of a run that logs every step (log_every=1), after a warm-up run of 1/10 the length."""
    from bench.util import rss_mb

    cfg = from_dict({"data": {"dataset": "digits", "batch_size": 8}, "model": {"name": "mlp", "hidden": [16]},
                     "train": {"epochs": 100_000, "max_steps": max(1, steps // 10), "log_every": 1, "device": "cpu"},
                     "checkpoint": {"save_best": False, "save_last": False}})
    Trainer(cfg, runs_dir=runs_dir).run(sink=lambda e: None)
    gc.collect()
    before = rss_mb()
    cfg = from_dict({**_plain(cfg), "train": {**_plain(cfg)["train"], "max_steps": steps}})
    t0 = time.perf_counter()
    Trainer(cfg, runs_dir=runs_dir).run(sink=lambda e: None)
    gc.collect()
    return {"logged_steps": steps, "rss_growth_mb": rss_mb() - before, "seconds": time.perf_counter() - t0}


def _plain(cfg) -> dict:
    from tui_train.core.config import to_dict

    return to_dict(cfg)


def dry_run_cost(preset: str, data_dir: Path, runs_dir: Path, reps: int) -> dict:
    """The start-up dry run (core.train.dryrun) of ``preset`` on CPU with 1 thread: its first call in the
    process (cold), the median of ``reps`` more, and the median of as many training steps, for scale."""
    from tui_train.core.config import load_config
    from tui_train.core.train.dryrun import dry_run

    cfg = load_config(preset, ["train.device=cpu", "train.num_threads=1", f"data.data_dir={json.dumps(str(data_dir))}"])
    trainer = Trainer(cfg, runs_dir=runs_dir)
    trainer.dry_run = False
    trainer.prepare()
    rt = trainer.p.rt
    cold = dry_run(cfg, rt)
    warm = statistics.median(dry_run(cfg, rt) for _ in range(reps))
    x, y = next(rt.data.train_batches(0, cfg.data.batch_size))
    steps = []
    for _ in range(reps):
        t0 = time.perf_counter()
        trainer._train_batch(x, y)
        trainer._optimizer_step()
        steps.append(time.perf_counter() - t0)
    trainer.run_log.close()
    return {"preset": preset, "batch": cfg.data.batch_size, "cold": cold, "warm": warm, "step": statistics.median(steps)}
