"""(k) torchrun on this machine's CPU cores (gloo): 2 ranks x 1 thread vs 1 rank x 2 threads on
the MNIST CNN, and what the per-step control sync costs on the MNIST MLP (ranks meeting at every
step vs every log_every steps). Real `tui-train run --nproc-per-node 2 --headless` runs,
alternating, several reps; samples/s from summary.json (the whole run's samples, engine time)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

from bench.tui_bench import tui_train_cmd
from bench.util import table


def _run(preset: str, sets: list[str], runs: Path, nproc: int, env: dict | None = None) -> float:
    cmd = tui_train_cmd() + ["run", preset, "--headless", "--runs-dir", str(runs), *sets]
    if nproc > 1:
        cmd += ["--nproc-per-node", str(nproc)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600, env={**os.environ, **(env or {})},
                   check=True)
    (summary,) = runs.glob("*/summary.json")
    return json.loads(summary.read_text())["samples_per_second"]


def section_k(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    subset = {"tiny": 2000, "quick": 12000, "full": 0}[size]
    common = ["--data-dir", str(data_dir), "--set", "train.epochs=1", "--set", f"data.subset={subset}",
              "--set", "checkpoint.save_best=false", "--set", "checkpoint.save_last=false"]
    cnn: dict[str, list[float]] = {"1 rank x 2 threads": [], "2 ranks x 1 thread": []}
    mlp: dict[str, list[float]] = {"every log_every (50) steps": [], "every step": []}
    for i in range(reps):
        order = list(cnn) if i % 2 == 0 else list(cnn)[::-1]
        for name in order:
            one = name.startswith("1 rank")
            cnn[name].append(_run("mnist-cnn", common + ["--set", f"train.num_threads={2 if one else 1}"],
                                  work / f"k-cnn-{i}-{one}", 1 if one else 2))
        order = list(mlp) if i % 2 == 0 else list(mlp)[::-1]
        for name in order:
            every = name == "every step"
            mlp[name].append(_run("mnist-simple", common + ["--set", "train.num_threads=1"], work / f"k-mlp-{i}-{every}", 2,
                                  env={"TUI_TRAIN_SYNC_EVERY": "1"} if every else None))
    base = max(cnn["1 rank x 2 threads"])
    rows = [[name, f"{max(v):,.0f}", f"{statistics.median(v):,.0f}", f"**{max(v) / base:.2f}x**", str([round(x) for x in v])]
            for name, v in cnn.items()]
    out("\n## (k) torchrun on 2 CPU cores (gloo)\n")
    out(f"MNIST CNN (mnist-cnn, 1 epoch of {subset or 'all'} samples, per-rank batch 64: global batch 128 with 2 ranks), "
        f"{reps} alternating reps. Scaling efficiency = 2 ranks x 1 thread vs 1 rank x 2 threads on the same 2 cores.\n")
    out(table(rows, ["layout", "best samples/s", "median samples/s", "best vs 1 rank", "reps"]))
    ref = max(mlp["every log_every (50) steps"])
    rows = [[name, f"{max(v):,.0f}", f"{statistics.median(v):,.0f}", f"**{max(v) / ref:.2f}x**", str([round(x) for x in v])]
            for name, v in mlp.items()]
    out(f"\nThe control sync on the MNIST MLP (mnist-simple, 2 ranks x 1 thread, {reps} alternating reps): ranks meeting "
        "every log_every steps (the default) vs at every step (TUI_TRAIN_SYNC_EVERY=1). Goal: the sync costs <= 2%.\n")
    out(table(rows, ["ranks meet", "best samples/s", "median samples/s", "vs every log_every", "reps"]))
