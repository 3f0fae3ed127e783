"""UI benchmarks: (c) the real TUI attached vs headless, (d) cost of one dashboard frame,
(e) key press to engine action, (f) UI memory over many logged steps, (g) start-up.

(c) and (g) run the installed ``tui-train`` in tmux, a real terminal, as a user would; (d), (e)
and (f) drive the app in-process with Textual's Pilot.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.util import rss_mb, table


def tui_train_cmd() -> list[str]:
    exe = shutil.which("tui-train") or str(Path(sys.executable).parent / "tui-train")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "tui_train.tui.cli"]


def run_sections(only: str, size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    if "c" in only:
        section_c(size, reps, data_dir, work, out)
    if "d" in only:
        section_d(size, out)
    if "e" in only:
        section_e(size, data_dir, work, out)
    if "g" in only:
        section_g(size, work, out)


# --------------------------------------------------------------------------- (c)

class Tmux:
    """A private tmux server (its own socket) holding one pane of a given size."""

    def __init__(self, cols: int = 120, rows: int = 40):
        if not shutil.which("tmux"):
            raise RuntimeError("tmux is not installed")
        self.socket = f"tui-train-bench-{uuid.uuid4().hex[:8]}"
        self.cols, self.rows = cols, rows

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True).stdout

    def start(self, command: str, cwd: Path) -> None:
        self.tmux("new-session", "-d", "-s", "bench", "-x", str(self.cols), "-y", str(self.rows), "-c", str(cwd), command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bench")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "bench", *keys)

    def kill(self) -> None:
        self.tmux("kill-server")


def _wait_file(pattern_dir: Path, name: str, timeout: float) -> Path | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(pattern_dir.glob(f"*/{name}"))
        if found:
            return found[0]
        time.sleep(0.1)
    return None


def section_c(size: str, reps: int, data_dir: Path, work: Path, out) -> None:
    """Same run (mnist-simple, 1 thread) headless and in the TUI in a 120x40 tmux pane."""
    epochs = {"tiny": 1, "quick": 2, "full": 5}[size]
    subset = {"tiny": 5000, "quick": 0, "full": 0}[size]
    sets = ["--data-dir", str(data_dir), "--set", f"train.epochs={epochs}", "--set", "train.num_threads=1",
            "--set", f"data.subset={subset}"]
    cmd = tui_train_cmd()
    res: dict[str, list[float]] = {"headless": [], "tui": []}
    for i in range(reps):
        runs = work / f"c-headless-{i}"
        subprocess.run(cmd + ["run", "mnist-simple", "--headless", "--runs-dir", str(runs), *sets],
                       capture_output=True, text=True, check=True)
        res["headless"].append(json.loads(next(runs.glob("*/summary.json")).read_text())["samples_per_second"])
        runs = work / f"c-tui-{i}"
        tm = Tmux(120, 40)
        try:
            quoted = " ".join(f"'{a}'" for a in cmd + ["run", "mnist-simple", "--runs-dir", str(runs), *sets])
            tm.start(quoted, work)
            summary = _wait_file(runs, "summary.json", 600)
            if summary is None:
                raise RuntimeError("the TUI run did not finish:\n" + tm.screen())
            time.sleep(0.2)
            res["tui"].append(json.loads(summary.read_text())["samples_per_second"])
            tm.keys("q")
        finally:
            tm.kill()
    h, t = statistics.median(res["headless"]), statistics.median(res["tui"])
    out("\n## (c) the real TUI attached vs headless, same run\n")
    out(f"mnist-simple ({epochs} epoch(s){', subset ' + str(subset) if subset else ''}), 1 intra-op thread; the TUI in a "
        f"120x40 tmux pane (a real terminal), trainer in its process of its own (the default); median of {reps} alternating reps. "
        "Goal: >= 0.97x.\n")
    out(table([[f"{h:,.0f}", f"{t:,.0f}", f"**{t / h:.2f}x**", str([round(x) for x in res["headless"]]),
                str([round(x) for x in res["tui"]])]],
              ["headless samples/s", "TUI samples/s", "ratio", "headless reps", "TUI reps"]))


# --------------------------------------------------------------------------- (d), (f): in-process dashboard

def _fake_app(tmp: Path, steps_per_epoch: int = 1000):
    from tui_train.core.config import from_dict
    from tui_train.core.testing import FakeTrainer
    from tui_train.tui.app import build_app

    fakes: list = []

    def factory(config, preset):
        fakes.append(FakeTrainer(config, preset=preset, epochs=1000, steps_per_epoch=steps_per_epoch))
        return fakes[-1]

    cfg = from_dict({"name": "bench"})
    app = build_app(config=cfg, preset="bench", runs_dir=tmp, trainer_factory=factory, start_immediately=True)
    return app, fakes


def _step(i: int):
    import math

    from tui_train.core import events as E

    return E.StepMetrics(step=i, epoch=i // 1000, epoch_progress=(i % 1000) / 1000, loss=1.0 / (1 + i) + 0.01 * math.sin(i),
                         lr=1e-3 * (1 + 0.1 * math.cos(i / 500)), samples_per_second=60000.0, accuracy=1 - 1.0 / (2 + i), elapsed=i / 1000)


async def _wait_ready(app, pilot, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while (app.dashboard is None or not app.dashboard.ready) and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause(0.3)


def frame_cost(n_points: int, frames: int, cols: int = 120, rows: int = 40) -> dict:
    """Feed ``n_points`` logged steps, then time ``frames`` dashboard frames: each appends one step
    (so every plot is dirty), rebuilds the three plots from their decimated views and renders them
    (plotext canvas + Rich text), as a redraw does."""
    import tempfile

    async def main() -> dict:
        app, _ = _fake_app(Path(tempfile.mkdtemp()))
        async with app.run_test(size=(cols, rows)) as pilot:
            await _wait_ready(app, pilot)
            dash = app.dashboard
            t_feed = time.perf_counter()
            for i in range(1, n_points + 1):
                dash.apply(_step(i))
            feed_s = time.perf_counter() - t_feed
            dash.flush(force=True)
            await pilot.pause(0.2)
            times = []
            for k in range(frames):
                dash.apply(_step(n_points + 1 + k))
                t0 = time.perf_counter()
                for plot in dash.plots:
                    plot.redraw(force=True)
                    plot.render()
                dash.flush(force=True)
                times.append(time.perf_counter() - t0)
            held = max(len(line.series) for p in dash.plots for line in p.lines.values())
        return {"n": n_points, "median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * sorted(times)[int(0.9 * (len(times) - 1))],
                "feed_s": feed_s, "points_held": held}

    return asyncio.run(main())


def section_d(size: str, out) -> None:
    frames = {"tiny": 3, "quick": 20, "full": 50}[size]
    big = {"tiny": 20_000, "quick": 1_000_000, "full": 1_000_000}[size]
    small = frame_cost(1_000, frames)
    large = frame_cost(big, frames)
    out("\n## (d) cost of one dashboard frame (120x40): three plots rebuilt from their decimated views and rendered\n")
    out(f"Goal: {big:,} vs 1,000 logged steps per series <= 1.2x, and <= 10 ms per frame. Median (p90) of {frames} frames.\n")
    out(table([[f"{small['n']:,}", f"{small['points_held']:,}", f"{small['median_ms']:.2f} ({small['p90_ms']:.2f})"],
               [f"{large['n']:,}", f"{large['points_held']:,}", f"{large['median_ms']:.2f} ({large['p90_ms']:.2f})"]],
              ["logged steps per series", "points held per series", "ms per frame"]))
    out(f"\nRatio {large['n']:,} / 1,000: **{large['median_ms'] / small['median_ms']:.2f}x**; feeding {large['n']:,} steps "
        f"through the dashboard took {large['feed_s']:.1f} s ({1e6 * large['feed_s'] / large['n']:.1f} µs per step).")


def section_f_ui(size: str, out) -> None:
    """RSS growth of the app while 1e6 StepMetrics go through the dashboard's event handling."""
    import tempfile

    n = {"tiny": 20_000, "quick": 1_000_000, "full": 1_000_000}[size]

    async def main() -> tuple[float, float]:
        app, _ = _fake_app(Path(tempfile.mkdtemp()))
        async with app.run_test(size=(120, 40)) as pilot:
            await _wait_ready(app, pilot)
            dash = app.dashboard
            for i in range(1, 20_001):  # warm-up: fill the bounded series once
                dash.apply(_step(i))
            dash.flush(force=True)
            gc.collect()
            before = rss_mb()
            for i in range(20_001, 20_001 + n):
                dash.apply(_step(i))
                if i % 50_000 == 0:
                    dash.flush(force=True)
                    await pilot.pause(0)
            gc.collect()
            return before, rss_mb()

    before, after = asyncio.run(main())
    out(f"\nUI: {n:,} logged steps through the dashboard (history bounded per series, the full history is in metrics.jsonl): "
        f"RSS {before:.0f} -> {after:.0f} MB, growth **{after - before:.1f} MB** (goal <= 64 MB).")


# --------------------------------------------------------------------------- (e)

def section_e(size: str, data_dir: Path, work: Path, out) -> None:
    """Pilot + the real trainer process (over its control socket) on the MNIST MLP: press space / apply an LR
    change and time until the engine's acknowledgement reaches the app; count optimizer steps
    after the pause was acknowledged."""
    from tui_train.core import commands as C
    from tui_train.core import events as E
    from tui_train.core.config import load_config
    from tui_train.core.live.remote import RemoteTrainer
    from tui_train.tui.app import build_app

    trials = {"tiny": 3, "quick": 20, "full": 50}[size]
    cfg = load_config("mnist-mlp", [f'data.data_dir="{data_dir}"', "train.epochs=1000", "train.log_every=1", "train.num_threads=1"])
    seen: list[tuple[float, E.Event]] = []

    class Timed(RemoteTrainer):
        def run(self, stop_event=None, sink=None):
            def timed(ev):
                seen.append((time.perf_counter(), ev))
                sink(ev)
            return super().run(stop_event, timed)

    def factory(config, preset):
        return Timed(config, runs_dir=work / "e", preset=preset)

    async def main() -> dict:
        app = build_app(config=cfg, preset="mnist-mlp", runs_dir=work / "e", trainer_factory=factory, start_immediately=True)
        pause_ms, lr_ms, steps_after = [], [], []
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 120
            while app.status != "running" and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(1.0)
            for k in range(trials):
                n0 = len(seen)
                t0 = time.perf_counter()
                await pilot.press("space")
                ack = await _until(pilot, seen, n0, lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
                pause_ms.append(1000 * (ack[0] - t0))
                paused_step = ack[1].step
                await pilot.pause(0.3)
                later = [e.step for _, e in seen[n0:] if isinstance(e, E.StepMetrics) and e.step > paused_step]
                steps_after.append(len(later))
                n1 = len(seen)
                new_lr = 1e-3 * (1 + (k % 5) / 10)
                await pilot.press("l")
                await pilot.pause(0.05)
                for ch in f"{new_lr:.6g}":
                    await pilot.press(ch)
                # the dialog typing is UI time: time from Enter (last key) to the engine's ack
                t1 = time.perf_counter()
                await pilot.press("enter")
                ack = await _until(pilot, seen, n1, lambda e: isinstance(e, E.CommandApplied) and e.key == "lr")
                lr_ms.append(1000 * (ack[0] - t1))
                await pilot.press("space")
                # awaited here, before paused_step changes
                await _until(pilot, seen, n1, lambda e: isinstance(e, E.StepMetrics) and e.step > paused_step)  # noqa: B023
                await pilot.pause(0.2)
            app.submit(C.Interrupt("bench"))  # end the run: quitting would only detach from it
            deadline = time.monotonic() + 60
            while app.status not in E.FINAL_STATUSES and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.press("q")
        return {"pause": pause_ms, "lr": lr_ms, "steps_after": steps_after}

    r = asyncio.run(main())

    def p(v, q):
        s = sorted(v)
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]

    out("\n## (e) key press to engine action (Pilot, the real trainer process over its control socket, MNIST MLP, log_every 1)\n")
    out(f"{trials} trials. Pause: from the key press to the engine's StatusChanged(paused) arriving in the app; "
        "LR: from Enter in the dialog to the engine's CommandApplied(lr) arriving. Goal: 0 steps after the pause is "
        "acknowledged, the new LR on the very next step, p99 <= 100 ms.\n")
    out(table([["pause (space)", f"{p(r['pause'], 0.5):.1f}", f"{p(r['pause'], 0.99):.1f}", f"{max(r['steps_after'])}"],
               ["set LR (l, Enter)", f"{p(r['lr'], 0.5):.1f}", f"{p(r['lr'], 0.99):.1f}", "-"]],
              ["action", "p50 ms", "p99 ms", "optimizer steps after the ack (max)"]))
    out("\nThe new LR on the very next step is checked by tests/unit/test_engine.py::test_set_learning_rate_applies_to_the_next_step "
        "and tests/functional (real engine): the first StepMetrics after the acknowledgement carries it.")


async def _until(pilot, seen, start: int, pred, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in seen[start:]:
            if pred(item[1]):
                return item
        await pilot.pause(0.005)
    raise RuntimeError("no acknowledgement")


# --------------------------------------------------------------------------- (g)

def section_g(size: str, work: Path, out) -> None:
    reps = {"tiny": 2, "quick": 5, "full": 10}[size]
    cmd = tui_train_cmd()
    helps = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd + ["--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - t0)
    headless = [headless_first_step(work / f"gh{i}", cmd) for i in range(1 if size == "tiny" else reps)]
    first, running = [], []
    for i in range(max(2, reps // 2)):
        f, r = _startup_times(work / f"g{i}", cmd)
        first += [f] if f is not None else []
        running += [r] if r is not None else []
    out("\n## (g) start-up\n")
    rows = [["`tui-train --help`", f"{statistics.median(helps):.2f}", "<= 0.5"],
            ["`tui-train run digits-mlp --headless` to the first training step's line",
             f"{statistics.median(headless):.2f}", "-"],
            ["first dashboard frame (`tui-train run digits-mlp`, 120x40 tmux)",
             f"{statistics.median(first):.2f}" if first else "not seen", "<= 3"]]
    if running:
        rows.append(["until training runs (RUNNING and steps on screen; the child process imports torch)",
                     f"{statistics.median(running):.2f}", "-"])
    out(table(rows, ["what", "seconds (median)", "goal"]))


def headless_first_step(runs: Path, cmd: list[str]) -> float:
    """Seconds from starting `tui-train run digits-mlp --headless` to its first step line (a log
    line at step 1: train.log_every = 1); the run is then stopped (SIGTERM)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd + ["run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--set", "train.log_every=1",
                                   "--set", "train.epochs=1000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("step "):
                return time.perf_counter() - t0
        raise RuntimeError(f"tui-train run digits-mlp --headless ended (exit {proc.wait()}) before its first step line")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _startup_times(runs: Path, cmd: list[str]) -> tuple[float | None, float | None]:
    """(first dashboard frame, training visibly running) in seconds from the command's start."""
    tm = Tmux(120, 40)
    first = running = None
    try:
        t0 = time.perf_counter()
        quoted = " ".join(f"'{a}'" for a in cmd + ["run", "digits-mlp", "--runs-dir", str(runs), "--set", "train.epochs=1000"])
        tm.start(quoted, runs.parent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and running is None:
            scr = tm.screen()
            if first is None and "tui-train" in scr and "hyperparams" in scr:
                first = time.perf_counter() - t0
            if "RUNNING" in scr and "step" in scr:
                running = time.perf_counter() - t0
            time.sleep(0.01)
        tm.keys("q")  # the quit dialog: s stops the run (q again would detach and leave it training)
        time.sleep(0.3)
        tm.keys("s")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not list(runs.glob("*/summary.json")):
            time.sleep(0.1)
    finally:
        tm.kill()
    return first, running
