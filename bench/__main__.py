"""`python -m bench [--quick] [--only a,b,...]`: measure tui-train and print a table of ratios.

Sections: (a) engine vs the classic DataLoader loop, (b) engine vs a bare loop over
preloaded tensors, (c) the real TUI attached vs headless, (d) cost of one dashboard frame,
(e) key press to engine action, (f) memory over many logged steps, (g) start-up, (h) what
attached viewers cost a run, (i) command to acknowledgement through the control socket, (j)
attaching to a run with a million logged steps, (k) torchrun, (l) past runs, (m) the start-up
dry run, (s) the system sampler's cost (throughput with it on vs off), (t) time to 99% MNIST test
accuracy (the seed tutorial's flow vs mnist-fast), (u) what run.log costs a loop of your own, (v)
sweeps: parallel trials and the driver's cost.
The output is Markdown; BENCHMARKS.md holds a recorded run. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.util import cleanup, machine, mnist_root, table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few hundred steps per measurement (~2 min on 2 cores); default: full epochs")
    ap.add_argument("--tiny", action="store_true", help="smallest sizes: only checks that every section still runs (CI)")
    ap.add_argument("--only", default="abcdefghijklmstuv", help="sections to run, e.g. 'ab' (default: all)")
    ap.add_argument("--data-dir", default=None, help="folder holding MNIST/raw (default: $TUI_TRAIN_MNIST_DIR or ../shared/data)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads for (a) and (b) (default: 1)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per contender (default: 3, tiny: 1)")
    args = ap.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    reps = args.reps or (1 if args.tiny else 3)
    data_dir = mnist_root(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="tui-train-bench-runs-"))
    out = print
    out(f"# tui-train benchmark ({size})\n\nMachine: {machine()}\n")
    t_start = time.perf_counter()
    try:
        if "a" in args.only or "b" in args.only:
            section_ab(args, size, reps, data_dir, work, out)
        if "c" in args.only or "d" in args.only or "e" in args.only or "g" in args.only:
            from bench import tui_bench

            tui_bench.run_sections(args.only, size, reps, data_dir, work, out)
        if "f" in args.only:
            section_f(size, data_dir, work, out)
        if "h" in args.only or "i" in args.only or "j" in args.only:
            from bench import endpoint_bench

            endpoint_bench.run_sections(args.only, size, reps, data_dir, work, out)
        if "k" in args.only:
            from bench.distributed_bench import section_k

            section_k(size, reps, data_dir, work, out)
        if "l" in args.only:
            from bench.runs_bench import section_l

            section_l(size, reps, work, out)
        if "m" in args.only:
            section_m(size, reps, data_dir, work, out)
        if "s" in args.only:
            from bench.system_bench import section_s

            section_s(size, reps, data_dir, work, out)
        if "t" in args.only:
            from bench.accuracy_bench import section_t

            section_t(size, reps, data_dir, work, out)
        if "u" in args.only:
            from bench.loop_bench import section_u

            section_u(size, reps, data_dir, work, out)
        if "v" in args.only:
            from bench.sweep_bench import section_v

            section_v(size, reps, work, out)
    finally:
        cleanup(work)
    out(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s")
    return 0


def section_ab(args, size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    from bench.engine_bench import compare

    steps = {"tiny": {"mlp": 30, "cnn": 5}, "quick": {"mlp": 600, "cnn": 60}, "full": {"mlp": 0, "cnn": 0}}[size]
    rows_a, rows_b = [], []
    # The MLP also at 2 threads: the classic loop is bound by per-sample Python work that threads
    # do not speed up, the tensor loops are bound by the matrix work that they do.
    plan = [("mlp", args.threads)] + ([("mlp", 2)] if args.threads != 2 and args.device == "cpu" else []) + [("cnn", args.threads)]
    for kind, threads in plan:
        r = compare(kind, data_dir, batch_size=64, max_steps=steps[kind], reps=reps, device=args.device,
                    threads=threads, runs_dir=work)
        sps, acc = r["samples_per_second"], r["test_accuracy"]
        steps_txt = "1 epoch" if not steps[kind] else f"{steps[kind]} steps"
        label = f"MNIST {kind} ({steps_txt}, {threads} thread{'s' if threads > 1 else ''})"
        rows_a.append([label, f"{sps['classic']:,.0f}", f"{sps['engine']:,.0f}",
                       f"**{sps['engine'] / sps['classic']:.1f}x**", f"{acc['classic']:.2%}", f"{acc['engine']:.2%}"])
        rows_b.append([label, f"{sps['bare']:,.0f}", f"{sps['engine']:,.0f}",
                       f"**{sps['engine'] / sps['bare']:.2f}x**", f"{acc['bare']:.2%}"])
        out(f"<!-- {label} raw samples/s per rep: {r['all']} -->")
    common = f"batch 64, SGD lr 0.01 momentum 0.9, device {args.device}, median of {reps} alternating reps"
    if "a" in args.only:
        out("\n## (a) engine vs the classic loop (DataLoader + ToTensor + Normalize, loss.item() every step)\n\n"
            f"{common}. Goal: >= 8x on the MLP, never slower on the CNN, same accuracy.\n")
        out(table(rows_a, ["model", "classic samples/s", "engine samples/s", "ratio", "classic test acc", "engine test acc"]))
    if "b" in args.only:
        out(f"\n## (b) engine vs a bare loop over preloaded tensors (no logging at all)\n\n{common}. Goal: >= 0.9x.\n")
        out(table(rows_b, ["model", "bare samples/s", "engine samples/s", "ratio", "bare test acc"]))


def section_f(size: str, data_dir: Path, work: Path, out) -> None:
    from bench.engine_bench import engine_memory

    steps = {"tiny": 2_000, "quick": 20_000, "full": 200_000}[size]
    r = engine_memory(data_dir, steps, work)
    out("\n## (f) memory: the engine over many logged steps (log_every = 1)\n")
    out(table([[f"{r['logged_steps']:,}", f"{r['rss_growth_mb']:.1f}", f"{r['seconds']:.0f}"]],
              ["logged steps", "engine RSS growth (MB)", "seconds"]))
    try:
        from bench import tui_bench

        tui_bench.section_f_ui(size, out)
    except ImportError as e:  # pragma: no cover - the UI part needs textual
        out(f"\n(UI memory not measured: {e})")


def section_m(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    from bench.engine_bench import dry_run_cost

    presets = ["digits-mlp"] if size == "tiny" else ["digits-mlp", "mnist-mlp", "mnist-cnn"]
    rows = []
    for preset in presets:
        r = dry_run_cost(preset, data_dir, work, max(3, reps))
        rows.append([preset, str(r["batch"]), f"{r['cold'] * 1000:.0f}", f"{r['warm'] * 1000:.0f}", f"{r['step'] * 1000:.1f}",
                     f"**{r['warm'] / r['step']:.1f}**"])
    out("\n## (m) the start-up dry run (one batch of each split through the model before the first step)\n\n"
        "CPU, 1 intra-op thread; cold: its first call in the process; warm and step: medians. Goal: about two "
        "training steps.\n")
    out(table(rows, ["preset", "batch", "dry run cold (ms)", "dry run warm (ms)", "one training step (ms)", "warm / step"]))


if __name__ == "__main__":
    sys.exit(main())
