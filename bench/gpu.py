"""`python -m bench.gpu --data-dir ROOT`: the CUDA path, checked and timed on a GPU machine.

1. The MNIST CNN (preset mnist-cnn) to 99% test accuracy: wall time to reach it and training
   samples/s. The test split is evaluated after each epoch on the training thread (inside the
   event sink, which runs there); that evaluation time is excluded from the figure.
2. Engine vs the classic and the bare loop on the GPU for the MLP and the CNN (sections (a) and
   (b) of the main bench).
3. The opt-in numerics: bf16 autocast, channels_last and torch.compile on the CNN, two epochs each
   (samples/s over the whole run, and epoch 2's median: warm-up and compilation excluded).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.util import machine, mnist_root, table
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import load_config
from tui_train.core.train.engine import Trainer


def time_to_accuracy(data_dir: Path, runs_dir: Path, target: float, max_epochs: int, overrides: list[str]) -> dict:
    cfg = load_config("mnist-cnn", [f"data.data_dir={str(data_dir)!r}".replace("'", '"'), "train.device=\"cuda\"",
                                    f"train.epochs={max_epochs}", *overrides])
    trainer = Trainer(cfg, runs_dir=runs_dir)
    t0 = time.perf_counter()
    excluded = 0.0
    hit: dict = {}
    curve: list[tuple[int, float, float]] = []

    def sink(ev: E.Event) -> None:
        nonlocal excluded
        if isinstance(ev, E.EpochMetrics) and not hit:
            t = time.perf_counter()
            acc = trainer._evaluate("test")[0]["accuracy"]  # same thread as training: the sink runs on it
            excluded += time.perf_counter() - t
            elapsed = time.perf_counter() - t0 - excluded
            curve.append((ev.epoch + 1, acc, elapsed))
            if acc >= target:
                hit.update(epoch=ev.epoch + 1, seconds=elapsed, accuracy=acc)
                trainer.submit(C.Stop("target reached"))

    summary = trainer.run(sink=sink)
    return {"hit": hit, "curve": curve, "samples_per_second": summary["samples_per_second"], "status": summary["status"],
            "setup_and_eval_excluded_s": round(excluded, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--runs-dir", default="/tmp/tui-train-gpu-runs")
    ap.add_argument("--max-epochs", type=int, default=8)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench.gpu: no CUDA device")
    data_dir = mnist_root(args.data_dir)
    runs = Path(args.runs_dir)
    print(f"# tui-train on a GPU\n\nMachine: {machine()}\n")

    rows = []
    for label, over in [("fp32", []), ("bf16 autocast + channels_last", ["train.bf16=true", "train.channels_last=true"])]:
        r = time_to_accuracy(data_dir, runs, 0.99, args.max_epochs, over)
        hit = r["hit"]
        rows.append([label, f"{hit.get('epoch', '-')}", f"{hit['seconds']:.1f}" if hit else "not reached",
                     f"{hit.get('accuracy', r['curve'][-1][1]):.2%}", f"{r['samples_per_second']:,.0f}"])
        print(f"<!-- {label} curve (epoch, test acc, train seconds): {r['curve']} -->")
    print("## MNIST CNN (preset mnist-cnn) to 99% test accuracy\n")
    print(table(rows, ["numerics", "epochs", "seconds to 99%", "test acc", "train samples/s"]))

    from bench.engine_bench import compare

    rows = []
    for kind in ("mlp", "cnn"):
        r = compare(kind, data_dir, batch_size=64, max_steps=0, reps=3, device="cuda", threads=1, runs_dir=runs, with_classic=True)
        sps = r["samples_per_second"]
        rows.append([f"MNIST {kind} (1 epoch, batch 64)", f"{sps['classic']:,.0f}", f"{sps['bare']:,.0f}", f"{sps['engine']:,.0f}",
                     f"{sps['engine'] / sps['classic']:.1f}x", f"{sps['engine'] / sps['bare']:.2f}x"])
    print("\n## Engine vs classic and bare loops on the GPU\n")
    print(table(rows, ["model", "classic samples/s", "bare samples/s", "engine samples/s", "engine/classic", "engine/bare"]))

    rows = []
    for label, over in [("fp32", []), ("bf16", ["train.bf16=true"]), ("channels_last", ["train.channels_last=true"]),
                        ("bf16 + channels_last", ["train.bf16=true", "train.channels_last=true"]),
                        ("torch.compile", ["train.compile=true"])]:
        cfg = load_config("mnist-cnn", [f"data.data_dir=\"{data_dir}\"", "train.device=\"cuda\"", "train.epochs=2", *over])
        t = Trainer(cfg, runs_dir=runs)
        steps: list = []
        s = t.run(sink=lambda e: steps.append(e) if isinstance(e, E.StepMetrics) else None)  # noqa: B023 - run() returns first
        steady = [e.samples_per_second for e in steps if e.epoch == 1]  # epoch 2: warm-up and compilation excluded
        steady.sort()
        rows.append([label, s["status"], f"{s['samples_per_second']:,.0f}", f"{steady[len(steady) // 2]:,.0f}" if steady else "-",
                     f"{(s['test'] or {}).get('accuracy', 0):.2%}"])
    print("\n## Opt-in numerics on the CNN (2 epochs, preset mnist-cnn, batch 128)\n")
    print(table(rows, ["option", "status", "samples/s (whole run)", "samples/s (epoch 2, median interval)", "test acc"]))


if __name__ == "__main__":
    main()
