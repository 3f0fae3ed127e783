"""(l) past runs: `tui-train runs` over 1,000 run directories (goal <= 1 s), reading only their
small files (summary.json, config.toml, the first line of events.jsonl)."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from bench.tui_bench import tui_train_cmd
from bench.util import table


def make_runs(root: Path, n: int) -> None:
    """``n`` finished run directories as the engine writes them (RunLog, a few hundred steps each)."""
    from core import events as E
    from core.config import from_dict, to_toml
    from core.runlog import RunLog

    cfg = from_dict({"name": "bench", "data": {"dataset": "digits"}})
    for i in range(n):
        run_dir = root / f"2026{i:08d}-bench"
        run_dir.mkdir(parents=True)
        log = RunLog(run_dir)
        log.open(to_toml(cfg))
        log.write(E.RunStarted(run_dir=str(run_dir), preset="bench", device="cpu", task="classification", epochs=3,
                               steps_per_epoch=100, total_steps=300, train_size=6400, val_size=600, test_size=1000,
                               num_params=1000, model="mlp", hyperparameters={"lr": 1e-3}))
        for step in range(1, 301, 10):
            log.write(E.StepMetrics(step=step, epoch=step // 100, epoch_progress=(step % 100) / 100, loss=1 / step, lr=1e-3,
                                    samples_per_second=1e4, accuracy=0.9, elapsed=step / 100))
        log.close()
        (run_dir / "summary.json").write_text(json.dumps({
            "status": "completed", "preset": "bench", "epochs_completed": 3, "epochs_planned": 3, "wall_seconds": 10.0 + i,
            "best": {"metric": "val_accuracy", "value": 0.9 + i / 1e5, "epoch": 2}, "test": {"accuracy": 0.9, "loss": 0.3},
            "interventions": i % 3, "world_size": 1, "hyperparameters": {"lr": 1e-3, "batch_size": 64, "optimizer": "sgd",
                                                                          "schedule": "constant"}, "parent": None}))


def section_l(size: str, reps: int, work: Path, out) -> None:
    from core.runs import list_runs

    n = {"tiny": 50, "quick": 1000, "full": 1000}[size]
    root = work / "l-runs"
    t0 = time.perf_counter()
    make_runs(root, n)
    made = time.perf_counter() - t0
    inproc, cli = [], []
    for _ in range(max(3, reps)):
        t = time.perf_counter()
        rows = list_runs(root)
        inproc.append(time.perf_counter() - t)
        assert len(rows) == n
        t = time.perf_counter()
        subprocess.run(tui_train_cmd() + ["runs", "--runs-dir", str(root), "--json"], stdout=subprocess.DEVNULL, check=True)
        cli.append(time.perf_counter() - t)
    out("\n## (l) listing past runs\n")
    out(f"{n:,} finished run directories ({made:.0f} s to write), read with core.runs.list_runs and with the `tui-train runs --json` "
        f"command (a fresh process: Python and Typer start-up included), {len(cli)} tries each. Goal: <= 1 s.\n")
    out(table([["list_runs (in process)", f"{min(inproc):.2f}", f"{statistics.median(inproc):.2f}"],
               ["`tui-train runs --json`", f"{min(cli):.2f}", f"{statistics.median(cli):.2f}"]], ["what", "best s", "median s"]))
