"""(l) past runs: `tui-train runs` over 1,000 run directories (goal <= 1 s), reading only their
small files (summary.json, config.toml, the first line of events.jsonl); opening a finished run
with 1e6 logged steps from the Runs screen in tmux (goal <= 1.5 s); the curves of 8 runs
overlaid, one frame (goal <= 15 ms)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from pathlib import Path

from bench.tui_bench import tui_train_cmd
from bench.util import table


def make_runs(root: Path, n: int) -> None:
    """``n`` finished run directories as the engine writes them (RunLog, a few hundred steps each)."""
    from tui_train.core import events as E
    from tui_train.core.config import from_dict, to_toml
    from tui_train.core.run.runlog import RunLog

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
    from tui_train.core.rundir.runs import list_runs

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
    out(f"{n:,} finished run directories ({made:.0f} s to write), read with core.rundir.runs.list_runs and with the "
        f"`tui-train runs --json` "
        f"command (a fresh process: Python and Typer start-up included), {len(cli)} tries each. Goal: <= 1 s.\n")
    out(table([["list_runs (in process)", f"{min(inproc):.2f}", f"{statistics.median(inproc):.2f}"],
               ["`tui-train runs --json`", f"{min(cli):.2f}", f"{statistics.median(cli):.2f}"]], ["what", "best s", "median s"]))
    section_l_open(size, work, out)
    section_l_overlay(size, work, out)


def write_finished_run(run_dir: Path, n: int, *, preset: str = "long", steps_per_epoch: int = 1000, seed: float = 0.0) -> float:
    """A finished run directory with ``n`` logged steps written through RunLog, as the engine writes it
    (section (j)'s long run, then its end: StatusChanged completed, RunFinished, summary.json).
    Returns the seconds it took."""
    from tui_train.core import events as E
    from tui_train.core.config import from_dict, to_toml
    from tui_train.core.run.runlog import RunLog

    epochs = max(1, n // steps_per_epoch)
    run_dir.mkdir(parents=True)
    log = RunLog(run_dir)
    t0 = time.perf_counter()
    log.open(to_toml(from_dict({"name": preset, "data": {"dataset": "digits"}})))
    log.write(E.RunStarted(run_dir=str(run_dir), preset=preset, device="cpu", task="classification", epochs=epochs,
                           steps_per_epoch=steps_per_epoch, total_steps=n, train_size=64_000, val_size=6000, test_size=10000,
                           num_params=101_770, model="mlp 784-128-10", hyperparameters={"lr": 1e-3, "optimizer": "sgd"},
                           live=("lr", "momentum", "weight_decay", "grad_clip", "patience")))
    log.write(E.StatusChanged(status="running", reason="started", cause="start"))
    scale = 1.0 + seed
    for step in range(1, n + 1):
        log.write(E.StepMetrics(step=step, epoch=(step - 1) // steps_per_epoch,
                                epoch_progress=((step - 1) % steps_per_epoch + 1) / steps_per_epoch,
                                loss=2.3 / (1 + step / (500 * scale)), lr=1e-3, samples_per_second=64_000.0,
                                accuracy=min(0.99, step / (n * scale)), elapsed=step * 1e-3))
        if step % steps_per_epoch == 0:
            e = step // steps_per_epoch
            log.write(E.EpochMetrics(epoch=e - 1, step=step, train={"loss": 0.1 + 1 / (e * scale), "accuracy": 0.97},
                                     val={"loss": 0.12 + 1 / (e * scale), "accuracy": 0.96 - 0.1 / e}, lr=1e-3, seconds=1.0))
    summary = {"status": "completed", "reason": "all epochs done", "preset": preset, "run_dir": str(run_dir.resolve()),
               "device": "cpu", "task": "classification", "epochs_completed": epochs, "epochs_planned": epochs, "steps": n,
               "best": {"metric": "val_accuracy", "value": 0.96, "epoch": epochs - 1}, "val": {"loss": 0.12, "accuracy": 0.96},
               "test": {"loss": 0.13, "accuracy": 0.955}, "wall_seconds": n * 1e-3 + 5, "train_seconds": n * 1e-3,
               "samples_per_second": 64_000.0, "final_lr": 1e-3, "interventions": 0, "threads": 1, "world_size": 1,
               "hyperparameters": {"lr": 1e-3, "batch_size": 64, "optimizer": "sgd", "schedule": "constant"}, "parent": None}
    log.write(E.StatusChanged(status="completed", reason="all epochs done", step=n, cause="end"))
    log.write_summary(summary)
    log.write(E.RunFinished(status="completed", summary=summary, run_dir=str(run_dir.resolve())))
    log.close()
    return time.perf_counter() - t0


def open_finished_run(size: str, work: Path) -> dict:
    """`tui-train runs` over one finished run with N logged steps in a 120x40 tmux pane: the command to
    the list, then Enter (the run replayed from its files) to a complete dashboard frame; 3 tries."""
    from bench.tui_bench import Tmux
    from tui_train.tui.format import STATUS_LABELS

    n = {"tiny": 20_000, "quick": 1_000_000, "full": 1_000_000}[size]
    root = work / "l-finished"
    run_dir = root / "20260101-000000-long"
    written = write_finished_run(run_dir, n)
    cmd = " ".join(f"'{a}'" for a in tui_train_cmd() + ["runs", "--runs-dir", str(root)])
    target, badge = f"step {n}/", STATUS_LABELS["completed"]  # the badge of a completed run reads FINISHED
    listed, opened, last = [], [], ""
    for _ in range(3):
        pane = Tmux(120, 40)
        try:
            t0 = time.perf_counter()
            pane.start(cmd, work)
            while time.perf_counter() - t0 < 60:
                last = pane.screen()
                # its row (the folder name is in the last column, past the 120 columns of the pane)
                if any("completed" in line and " long " in line for line in last.splitlines()) and re.search(r"\b1 runs? ", last):
                    listed.append(time.perf_counter() - t0)
                    break
                time.sleep(0.01)
            else:
                continue
            time.sleep(0.3)  # the list settled (its cursor on the run)
            t1 = time.perf_counter()
            pane.keys("Enter")
            while time.perf_counter() - t1 < 60:
                last = pane.screen()
                lines = last.splitlines()
                if badge in "\n".join(lines[:2]) and target in last and "─ epochs ─" in last:
                    opened.append(time.perf_counter() - t1)
                    break
                time.sleep(0.01)
        finally:
            pane.kill()
    return {"n": n, "written": written, "listed": listed, "opened": opened, "last": last}


def overlay_cost(size: str, work: Path) -> dict:
    """8 finished runs on the curves screen (Runs screen, space x 8, v) in-process at 120x40: frames of
    both overlay plots rebuilt and rendered, a full screen repaint, one x-axis toggle."""
    import asyncio

    from tui_train.tui.app import build_app
    from tui_train.tui.screens.overlay_screen import OverlayScreen
    from tui_train.tui.screens.runs_screen import RunsScreen

    steps = {"tiny": 2_000, "quick": 20_000, "full": 20_000}[size]
    frames = {"tiny": 3, "quick": 20, "full": 50}[size]
    root = work / "l-overlay"
    written = sum(write_finished_run(root / f"2026010{i}-000000-run{i}", steps, preset=f"run{i}", steps_per_epoch=steps // 20,
                                     seed=i / 8) for i in range(8))

    def p90(xs: list[float]) -> float:
        return sorted(xs)[int(0.9 * (len(xs) - 1))]

    async def main() -> dict:
        app = build_app(runs_dir=root, runs_screen=True)
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 30
            while not (isinstance(app.screen, RunsScreen) and len(app.screen.shown) == 8) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.press(*["space"] * 8)
            t0 = time.perf_counter()
            await pilot.press("v")
            screen = app.screen
            assert isinstance(screen, OverlayScreen) and len(screen.rows) == 8, screen
            while not screen.loaded.is_set() and time.perf_counter() - t0 < 60:
                await pilot.pause(0.01)
            await pilot.pause()
            loaded_s = time.perf_counter() - t0
            assert len(screen.curves) == 8, screen.errors
            await pilot.pause(0.2)
            plots = screen.plots

            def frame() -> None:
                for plot in plots:
                    plot._drawn_key = None  # nothing changed: make the rebuild happen, as a new step does on the dashboard
                    plot.redraw(force=True)
                    plot.render()

            frame()
            times = []
            for _ in range(frames):
                t = time.perf_counter()
                frame()
                times.append(time.perf_counter() - t)
            repaints = []
            for _ in range(frames):
                t = time.perf_counter()
                for plot in plots:
                    plot._drawn_key = None
                    plot.redraw(force=True)
                screen.refresh(repaint=True)
                screen._on_timer_update()  # what the screen's update timer runs: the compositor repaints every widget
                repaints.append(time.perf_counter() - t)
            steady = []  # what the screen costs once drawn: a repaint with nothing to rebuild
            for _ in range(frames):
                t = time.perf_counter()
                screen.refresh(repaint=True)
                screen._on_timer_update()
                steady.append(time.perf_counter() - t)
            toggles = []
            for _ in range(3):  # step -> epoch -> time (each axis computed for the first time)
                t = time.perf_counter()
                await pilot.press("x")
                await pilot.pause()
                toggles.append(time.perf_counter() - t)
            assert screen.axis == "step"
            loss = plots[0]
            lines = loss.drawn_lines(min(2000, max(16, 2 * loss.size.width)))
            drawn = max(len(xs) + len(vx) for _, xs, _, vx, _ in lines)
            held = max(len(c.points["train_loss"]) for c in screen.curves)
        return {"steps": steps, "frames": frames, "written": written, "loaded_s": loaded_s,
                "median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * p90(times),
                "repaint_median_ms": 1000 * statistics.median(repaints), "repaint_p90_ms": 1000 * p90(repaints),
                "steady_median_ms": 1000 * statistics.median(steady), "steady_p90_ms": 1000 * p90(steady),
                "toggles_ms": [1000 * t for t in toggles], "drawn": drawn, "held": held}

    return asyncio.run(main())


def section_l_open(size: str, work: Path, out) -> None:
    r = open_finished_run(size, work)
    n, listed, opened = r["n"], r["listed"], r["opened"]
    out("\n## (l) opening a finished run\n")
    out(f"A finished run directory with {n:,} logged steps ({r['written']:.0f} s to write through RunLog), `tui-train runs` in a "
        "120x40 tmux pane: seconds from the command to the list showing the run, and from Enter (the run replayed from its "
        "files) to a complete frame (the status badge FINISHED, the step count, the epoch table); 3 tries. Goal: <= 1.5 s.\n")

    def fig(xs: list[float]) -> list[str]:
        return [f"{min(xs):.2f}", f"{statistics.median(xs):.2f}"] if xs else ["not seen", "-"]

    out(table([["command to the list", *fig(listed)], ["Enter to a complete frame", *fig(opened)]],
              ["what", "best s", "median s"]))
    if len(opened) < 3:
        out(f"\n{3 - len(opened)} tr{'y' if 3 - len(opened) == 1 else 'ies'} saw no complete frame; the last pane:\n\n```\n"
            f"{r['last'].rstrip()}\n```")


def section_l_overlay(size: str, work: Path, out) -> None:
    r = overlay_cost(size, work)
    out("\n## (l) overlaying 8 runs\n")
    out(f"8 finished runs of {r['steps']:,} logged steps and 20 epochs each ({r['written']:.0f} s to write), marked on the Runs "
        f"screen and shown with v, in-process at 120x40 (curves read in {r['loaded_s']:.2f} s). A frame: both overlay plots "
        "rebuilt (decimated lines, plotext data) and rendered (plotext canvas + Rich text); a repaint: the same plus the "
        f"compositor repainting the whole screen. Median (p90) of {r['frames']}. Goal: <= 15 ms.\n")
    t = r["toggles_ms"]
    out(table([["frame (2 plots rebuilt + rendered)", f"{r['median_ms']:.2f} ({r['p90_ms']:.2f})"],
               ["full screen repaint", f"{r['repaint_median_ms']:.2f} ({r['repaint_p90_ms']:.2f})"],
               ["repaint of the drawn overlay (nothing rebuilt)", f"{r['steady_median_ms']:.2f} ({r['steady_p90_ms']:.2f})"],
               ["x toggle (key to repainted, Pilot)", f"{t[0]:.1f} / {t[1]:.1f} / {t[2]:.1f} (step→epoch / →time / →step)"]],
              ["what", "ms"]))
    out(f"\nPoints per run: {r['held']:,} train-loss points held (of {r['steps']:,}), {r['drawn']:,} drawn per run in each plot "
        "(train line + validation dots).")
