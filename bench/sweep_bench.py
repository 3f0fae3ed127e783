"""(v) sweeps (issue 24): parallel efficiency and what the driver costs a trial.

- Parallel efficiency: the same 4 digits-mlp trials (a grid of 4 learning rates) with
  ``--parallel 2`` and one after another (``--parallel 1``), alternating, each the installed
  ``tui-train sweep --headless`` from its start to its end (trainer start-ups included: a sweep
  pays them). Goal: <= 0.6x the wall time.
- Driver overhead: one trial's training throughput (its summary's samples/s) inside a sweep of one
  trial, against the same run started alone with ``tui-train run --headless``, alternating.
  Goal: >= 0.98x.
Figures, never assertions.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.util import table


def _cmd() -> list[str]:
    exe = shutil.which("tui-train") or str(Path(sys.executable).parent / "tui-train")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "tui_train.tui.cli"]


def _sweep(work: Path, parallel: int, epochs: int, lrs: str) -> float:
    runs = work / f"sweep-{parallel}-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    subprocess.run(_cmd() + ["sweep", "digits-mlp", "--grid", f"optim.lr={lrs}", "--set", f"train.epochs={epochs}",
                             "--parallel", str(parallel), "--runs-dir", str(runs), "--headless"],
                   check=True, capture_output=True, timeout=1800)
    seconds = time.perf_counter() - t0
    shutil.rmtree(runs, ignore_errors=True)
    return seconds


def _throughput(work: Path, alone: bool, epochs: int) -> float:
    runs = work / f"one-{alone}-{time.monotonic_ns()}"
    common = ["--set", f"train.epochs={epochs}", "--set", "train.num_threads=1", "--runs-dir", str(runs), "--headless"]
    if alone:
        subprocess.run(_cmd() + ["run", "digits-mlp", *common], check=True, capture_output=True, timeout=1800)
    else:
        subprocess.run(_cmd() + ["sweep", "digits-mlp", "--grid", "optim.lr=0.05", *common], check=True, capture_output=True,
                       timeout=1800)
    summary = next(p for p in runs.glob("*/summary.json"))
    sps = float(json.loads(summary.read_text())["samples_per_second"])
    shutil.rmtree(runs, ignore_errors=True)
    return sps


def section_v(size: str, reps: int, work: Path, out) -> None:
    epochs = {"tiny": 1, "quick": 20, "full": 60}[size]
    reps = 1 if size == "tiny" else max(reps, 3)
    lrs = "0.01,0.05" if size == "tiny" else "0.01,0.02,0.05,0.1"  # tiny: only that the section runs (CI)
    seq, par, alone, inside = [], [], [], []
    for _ in range(reps):
        seq.append(_sweep(work, 1, epochs, lrs))
        par.append(_sweep(work, 2, epochs, lrs))
        alone.append(_throughput(work, True, epochs))
        inside.append(_throughput(work, False, epochs))
    out("\n## (v) sweeps: parallel trials and the driver's cost\n\n"
        f"digits-mlp, {len(lrs.split(','))} trials (optim.lr={lrs}), {epochs} epochs each, the installed `tui-train sweep --headless` "
        f"timed from start to end, {reps} alternating reps. Goals: --parallel 2 <= 0.6x the wall time of one after "
        "another; a trial's samples/s in a sweep >= 0.98x the same run alone.\n")
    n = len(lrs.split(","))
    out(table([[f"{n} trials one after another (--parallel 1)", f"{min(seq):.1f}", f"{statistics.median(seq):.1f}", ""],
               [f"{n} trials, 2 at once (--parallel 2)", f"{min(par):.1f}", f"{statistics.median(par):.1f}",
                f"**{min(par) / min(seq):.2f}x** best, {statistics.median(par) / statistics.median(seq):.2f}x median"]],
              ["sweep", "best wall s", "median wall s", "ratio"]))
    out("\n" + table([["the run alone (tui-train run --headless)", f"{max(alone):,.0f}", f"{statistics.median(alone):,.0f}", ""],
                      ["the same run as a sweep's trial", f"{max(inside):,.0f}", f"{statistics.median(inside):,.0f}",
                       f"**{max(inside) / max(alone):.3f}x** best, {statistics.median(inside) / statistics.median(alone):.3f}x median"]],
                     ["run", "best samples/s", "median samples/s", "ratio"]))
    out(f"<!-- (v) raw: seq {seq} par {par} alone {alone} inside {inside} -->")
