"""(t) time to accuracy: the seed tutorial's CNN flow until 99% MNIST test accuracy vs
``tui-train run mnist-fast --headless``, side by side, alternating.

The seed flow is the classic tutorial as a new user writes it: two conv layers (16, 32), fc 128,
Adam 1e-3, batch 64, ToTensor + Normalize through a DataLoader, ``loss.item()`` every step, and
the test accuracy after every epoch; it stops at the first epoch whose test accuracy reaches the
target. Its clock starts when it builds the datasets (Python and torch are already imported).
mnist-fast's figure is the run's own ``wall_seconds`` (summary.json: from loading the data to the
end of the test evaluation), the same span; the whole command's wall time, start-up included, is
reported beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.engine_bench import MEAN, STD
from bench.util import table

TARGET = 0.99


def seed_cnn() -> nn.Module:
    """The seed tutorial's network: conv 16 and 32 (3x3, ReLU, max-pool), fc 128, 10 outputs."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


REFERENCE_EPOCHS = 4
"""The issue's measurement of the seed flow: 99.0% after 4 epochs (42 s on 2 CPU cores). A seed
that never gets there within ``max_epochs`` is timed to this epoch instead, and the table says so."""


def seed_flow(data_dir: Path, *, seed: int = 0, max_epochs: int = 8, max_steps: int = 0, target: float = TARGET) -> dict:
    """Train the seed flow until the test accuracy reaches ``target`` (or ``max_epochs``);
    ``max_steps`` > 0 cuts each epoch short (the smoke test's size). The clock starts before the
    datasets are built, as mnist-fast's wall_seconds does: run it in a fresh process
    (:func:`seed_flow_process`) so that both pay the same first-use costs (torch._dynamo is
    imported by the first optimizer)."""
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train = datasets.MNIST(str(data_dir), train=True, download=True, transform=tf)  # extracts the .gz files (no network)
    test = datasets.MNIST(str(data_dir), train=False, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    test_loader = torch.utils.data.DataLoader(test, batch_size=1000)
    torch.manual_seed(seed)
    model = seed_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    accs, times = [], []
    for _ in range(max_epochs):
        model.train()
        running = 0.0
        for step, (x, y) in enumerate(loader, start=1):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            running += loss.item()
            if max_steps and step >= max_steps:
                break
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += int((model(x).argmax(1) == y).sum())
        accs.append(correct / len(test))
        times.append(time.perf_counter() - t0)
        if accs[-1] >= target:
            break
    reached = accs[-1] >= target
    at = len(accs) if reached else min(REFERENCE_EPOCHS, len(accs))
    return {"seconds": times[at - 1], "epochs": at, "accuracy": accs[at - 1], "reached": reached, "best": max(accs)}


def seed_flow_process(data_dir: Path, *, seed: int, max_epochs: int, max_steps: int) -> dict:
    """:func:`seed_flow` in a fresh Python process (its JSON result)."""
    import sys

    code = ("import json, sys; from pathlib import Path; from bench.accuracy_bench import seed_flow; "
            f"print(json.dumps(seed_flow(Path({str(data_dir)!r}), seed={seed}, max_epochs={max_epochs}, max_steps={max_steps})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"the seed flow failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fast_run(data_dir: Path, work: Path, *, max_steps: int = 0) -> dict:
    """``tui-train run mnist-fast --headless``: the run's wall_seconds, the command's, and its test accuracy."""
    from bench.tui_bench import tui_train_cmd

    runs = work / f"t-runs-{time.monotonic_ns()}"
    cmd = tui_train_cmd() + ["run", "mnist-fast", "--headless", "--runs-dir", str(runs), "--set", f"data.data_dir={data_dir}",
                             "--set", "data.download=false"]
    if max_steps:
        cmd += ["--set", f"train.max_steps={max_steps}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    command = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mnist-fast failed: {proc.stderr.strip()[-500:]}")
    summary = json.loads(next(runs.glob("*/summary.json")).read_text(encoding="utf-8"))
    return {"seconds": summary["wall_seconds"], "command": command, "epochs": summary["epochs_completed"],
            "accuracy": summary["test"]["accuracy"]}


def section_t(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    max_steps = 20 if size == "tiny" else 0
    seed, fast = [], []
    for _ in range(reps):  # alternate: the machine's noise falls on both
        seed.append(seed_flow_process(data_dir, seed=len(seed), max_epochs=1 if max_steps else 8, max_steps=max_steps))
        fast.append(fast_run(data_dir, work, max_steps=max_steps))

    def row(name: str, results: list[dict], extra: str = "") -> list[str]:
        secs = [r["seconds"] for r in results]
        return [name, f"{min(secs):.1f} s", f"{statistics.median(secs):.1f} s",
                ", ".join(str(r["epochs"]) for r in results), ", ".join(f"{r['accuracy']:.2%}" for r in results), extra]

    missed = [r for r in seed if not r["reached"]]
    seed_note = "until the test accuracy reaches the target (a fresh process per rep, seed = rep)"
    if missed:
        best = ", ".join(f"{r['best']:.2%}" for r in missed)
        seed_note += (f"; {len(missed)} of {len(seed)} reps never reached it in 8 epochs (best {best}): "
                      f"timed to epoch {REFERENCE_EPOCHS}, the issue's measurement")

    commands = [r["command"] for r in fast]
    best = min(r["seconds"] for r in seed) / min(r["seconds"] for r in fast)
    med = statistics.median(r["seconds"] for r in seed) / statistics.median(r["seconds"] for r in fast)
    out(f"\n## (t) time to {TARGET:.0%} MNIST test accuracy: the seed tutorial's CNN flow vs mnist-fast (goal >= 4x sooner)\n")
    out(table([
        row("seed flow (DataLoader, conv16-32 fc128, Adam 1e-3, batch 64)", seed, seed_note),
        row("tui-train run mnist-fast --headless", fast, f"whole command incl. start-up: best {min(commands):.1f} s, "
                                                         f"median {statistics.median(commands):.1f} s"),
    ], ["contender", "best", "median", "epochs", "test accuracy", "note"]))
    out(f"\nmnist-fast is **{best:.1f}x** sooner (best vs best), {med:.1f}x (median vs median); {reps} alternating reps.")
