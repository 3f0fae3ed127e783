"""(s) What the system sampler costs a run: the engine's throughput with the sampler off, at its
default interval, and at 20x that rate, repetitions alternating. Figures, not assertions."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.engine_bench import engine_config
from bench.util import table
from tui_train.core.config import replace
from tui_train.core.run import system
from tui_train.core.train.engine import Trainer

STRESS_INTERVAL = 0.1
"""A sampling rate 20x the default (2 s): the upper bound of what the sampler could cost."""


def throughput(data_dir: Path, epochs: int, steps: int, interval: float, runs_dir: Path) -> tuple[float, int]:
    """(samples/s, SystemSample events) of one MNIST MLP run with the sampler at ``interval`` (0: off)."""
    cfg = replace(engine_config("mlp", data_dir, batch_size=64, max_steps=steps, device="cpu", threads=1), **{"train.epochs": epochs})
    trainer = Trainer(cfg, runs_dir=runs_dir)
    trainer.system_interval = interval
    samples = []
    summary = trainer.run(sink=lambda e: samples.append(1) if e.kind == "SystemSample" else None)
    if summary.get("status") != "completed":
        raise RuntimeError(f"run ended {summary.get('status')}: {summary.get('reason')}")
    return summary["samples_per_second"], len(samples)


def sample_cost(n: int = 200) -> float:
    """Seconds of one sample (psutil's reads; no GPU here), the mean of ``n``."""
    sampler = system.SystemSampler(lambda e: None, lambda: 0, "cpu", interval=0)
    sampler.sample()
    t0 = time.perf_counter()
    for _ in range(n):
        sampler.sample()
    return (time.perf_counter() - t0) / n


def section_s(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    # long enough for several samples at the default interval (an MNIST MLP epoch is ~1 s here)
    epochs, steps = {"tiny": (1, 30), "quick": (5, 0), "full": (20, 0)}[size]
    contenders = {"off": 0.0, f"every {system.INTERVAL:g} s (default)": system.INTERVAL,
                  f"every {STRESS_INTERVAL:g} s (20x)": STRESS_INTERVAL}
    sps: dict[str, list[float]] = {k: [] for k in contenders}
    counts: dict[str, int] = dict.fromkeys(contenders, 0)
    for _ in range(reps):
        for name, interval in contenders.items():  # alternating: drift of the machine hits all alike
            rate, n = throughput(data_dir, epochs, steps, interval, work)
            sps[name].append(rate)
            counts[name] += n
    off = sps["off"]
    rows = []
    for name in contenders:
        best, med = max(sps[name]), statistics.median(sps[name])
        rows.append([name, f"{best:,.0f}", f"{med:,.0f}", f"**{best / max(off):.3f}x**", f"**{med / statistics.median(off):.3f}x**",
                     str(counts[name])])
    out(f"<!-- (s) raw samples/s per rep: {sps} -->")
    steps_txt = f"{epochs} epochs" if not steps else f"{steps} steps"
    out(f"\n## (s) the system sampler: throughput with it on vs off\n\nMNIST MLP ({steps_txt}), batch 64, 1 thread, CPU, "
        f"{reps} alternating reps. Goal: >= 0.99x at the default interval.\n")
    out(table(rows, ["sampler", "best samples/s", "median samples/s", "best vs off", "median vs off", "samples taken"]))
    cost = sample_cost()
    out(f"\nOne sample (psutil, no GPU) takes {cost * 1e6:.0f} µs of the sampler's thread: "
        f"{cost / system.INTERVAL:.4%} of one core at the default interval.")
