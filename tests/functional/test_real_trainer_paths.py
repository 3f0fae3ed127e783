"""The features the fake-based tests cover, through the real paths (issue 21, item 3): the default
trainer process (core.live.remote.RemoteTrainer spawning core/train/serve.py through core/live/spawn.py, as `tui-train run` does), its
control endpoint, and the Textual app driven with Pilot. Each feature mirrors a fake-based test:

- two dashboards on one trainer process: each header says "· 2 viewers" and each paces its redraws
  (test_dashboard_fake.py::test_several_viewers_pace_the_redraws_and_the_header_counts_them);
- the trainer process killed (-9): the dashboard shows FAILED and why
  (test_dashboard_fake.py::test_run_failed_shows_failed_and_traceback_path);
- a run training in a background trainer process: the launcher lists it and `a` attaches
  (test_leaving.py::test_launcher_shows_live_runs_first_and_a_attaches), and Enter on it in the
  Runs screen attaches (test_runs_screen.py::test_enter_on_a_live_run_attaches);
- a non-finite pause seen by a second, attached app (test_leaving.py::test_an_attached_run_still_in_a_nonfinite_pause_asks_once,
  test_dashboard_engine.py::test_real_engine_nonfinite_loss_pauses_and_offers_rollback);
- the confusion screen follows the live run (test_confusion_screen.py), and the system panel shows
  the trainer process's SystemSample events (test_lr_find_system.py).

A trainer process costs seconds to start (torch; building the optimizer imports torch._dynamo),
so features that need the same kind of run share one test and one process: four in all.
Every test ends the trainer processes it started (Stop from the app, or SIGTERM: the run saves and
ends as interrupted; SIGKILL only if that fails) and reaps them. No timing is asserted: the tests
wait on conditions, with deadlines.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tests.functional.test_attach_remote import alive, badge, log_text, quick_idle  # noqa: F401 - quick_idle: autouse fixture
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import RunConfig, from_dict
from tui_train.core.live.remote import RemoteTrainer
from tui_train.core.live.spawn import spawn, spec_for
from tui_train.core.run.endpoint import Connection
from tui_train.tui.app import build_app
from tui_train.tui.screens.confusion_screen import ConfusionScreen
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog
from tui_train.tui.screens.quit_dialog import QuitDialog
from tui_train.tui.screens.run_picker import RunPicker
from tui_train.tui.screens.runs_screen import ReplayDashboard, RunsScreen
from tui_train.tui.widgets.run_header import RunHeader
from tui_train.tui.widgets.system_panel import SystemPanel

START = 90.0
"""Seconds a trainer process may take to start (it imports torch: several seconds on 2 loaded cores)."""

SIZE = (120, 40)


def tiny(**train) -> RunConfig:
    """A digits run that trains until told otherwise (test_attach_remote.tiny(), with more epochs:
    it runs ~500 steps a second, and must not end during a test on an idle machine)."""
    return from_dict({
        "name": "tiny", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.05},
        "train": {"epochs": 100_000, "log_every": 5, "device": "cpu", "num_threads": 1, **train},
        "checkpoint": {"save_best": False},
    })


def end_trainer(pid: int | None, timeout: float = 20.0) -> None:
    """End a trainer process properly: SIGTERM (it saves and ends as interrupted, removing its
    endpoint), SIGKILL only if it has not left by ``timeout``; then reap it (this process spawned it)."""
    if pid is None:
        return
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def background_run(runs: Path, config: RunConfig | None = None) -> Iterator[tuple[Path, int]]:
    """A run in a trainer process of its own with no viewer (as one left by a detach, or started
    by another terminal), paused through its endpoint as `tui-train ctl pause` does (idle, it
    leaves the cores to the app and a short history): yields (its run directory, its pid); ends it afterwards."""
    proc, ready = spawn(spec_for(config or tiny(), runs_dir=runs, preset="tiny"), timeout=START)
    try:
        assert ready.get("ready"), ready
        conn = Connection(Path(ready["socket"]), viewer="ctl")
        try:
            conn.send(C.Pause())
            deadline = time.monotonic() + 30
            for event, _, _ in conn.events(timeout=0.1):
                if isinstance(event, E.CommandApplied) and event.origin == conn.viewer_id:
                    break
                assert time.monotonic() < deadline, "no acknowledgement of Pause"
            else:
                raise AssertionError("the trainer closed the connection before acknowledging Pause")
        finally:
            conn.close()
        yield Path(ready["run_dir"]), int(ready["pid"])
    finally:
        end_trainer(proc.pid)
        with contextlib.suppress(Exception):
            proc.wait(1)


def header_text(app) -> str:
    return str(app.screen.query_one(RunHeader).query_one("#run-info").render())


async def attached(pilot, pid: int, status: str, what: str = "attached") -> None:
    """Wait until the app is attached to the trainer process ``pid`` (through the endpoint: it has a
    viewer id) and shows ``status``, its history read."""
    app = pilot.app
    await wait_for(pilot, lambda: app.status == status and isinstance(app.trainer, RemoteTrainer)
                   and app.trainer.viewer_id and app.dashboard is not None, timeout=START, what=what)
    assert app.trainer.pid == pid and app.detachable


async def live_steps(pilot) -> None:
    """Wait until steps newer than those shown arrive (live events, not the history)."""
    dash = pilot.app.dashboard
    seen = dash.step
    await wait_for(pilot, lambda: dash.step > seen, timeout=30, what="live steps")


# --------------------------------------------------------------------------- viewers, pacing, FAILED


@run_async
async def test_two_dashboards_count_two_viewers_and_pace_their_redraws_then_a_killed_trainer_shows_failed(tmp_path):
    runs = tmp_path / "runs"
    first = build_app(config=tiny(), preset="tiny", runs_dir=runs, start_immediately=True)  # as tui-train run
    pid = None
    try:
        async with first.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: first.status == "running" and first.trainer is not None and first.trainer.viewer_id,
                           timeout=START, what="the trainer process runs")
            pid = first.trainer.pid
            await pilot.press("space")  # paused, the trainer process leaves the cores to the two apps
            await wait_for(pilot, lambda: first.status == "paused", what="paused")
            dash = first.dashboard
            paced = lambda d: (*d.plots, d.query_one("#epochs"), d.query_one("#log"))  # noqa: E731 - what set_pace stretches
            base = [w.min_interval for w in paced(dash)]
            await settle(pilot)
            assert dash.pace == 1 and "viewers" not in header_text(first)

            second = build_app(runs_dir=runs, attach=Path(first.run_dir))
            async with second.run_test(size=SIZE) as pilot2:
                await attached(pilot2, pid, "paused", "the second viewer attached")
                # the endpoint tells every dashboard the count; each paces its redraws by it
                await wait_for(pilot2, lambda: first.trainer.viewers == 2 and second.trainer.viewers == 2, what="both told 2 viewers")
                await wait_for(pilot2, lambda: dash.pace == 2 and second.dashboard.pace == 2, what="both paced for 2")
                await settle(pilot2)
                for app in (first, second):
                    assert "· 2 viewers" in header_text(app)
                    assert [w.min_interval for w in paced(app.dashboard)] == [b * 2 for b in base]
                await pilot2.press("d")  # the second leaves; the run goes on
                await wait_for(pilot2, lambda: not second.is_running, what="the second detached")
            assert second.stop_training(10) and second.left_running()

            await wait_for(pilot, lambda: first.trainer.viewers == 1 and dash.pace == 1, timeout=30, what="back to one viewer")
            await settle(pilot)
            assert "viewers" not in header_text(first) and [w.min_interval for w in paced(dash)] == base
            assert first.status == "paused" and alive(pid)

            # the trainer process dies: the dashboard says FAILED, and why
            os.kill(pid, signal.SIGKILL)
            await wait_for(pilot, lambda: first.status == "failed", timeout=30, what="FAILED")
            await settle(pilot)
            assert badge(first) == "FAILED" and first.failed and not first.run_active and not alive(pid)
            reason = "the training process ended unexpectedly (killed by signal 9)"
            assert f"run FAILED: {reason}" in log_text(first) and f"status: FAILED ({reason}" in log_text(first)
            await pilot.press("q")  # no run active: quits without asking
            await wait_for(pilot, lambda: not first.is_running, what="exit")
        assert first.stop_training(10)
        assert first.exit_code() == 1 and not first.left_running()
    finally:
        end_trainer(pid)


# --------------------------------------------------------------------------- a background run: the launcher, the Runs screen


@run_async
async def test_a_background_trainer_process_is_listed_live_and_attached_from_the_launcher_and_the_runs_screen(tmp_path):
    from tests.functional.test_runs_screen import make_run, names

    runs = tmp_path / "runs"
    finished = make_run(runs, "20200101-000000-old", started=1_600_000_000.0)  # a past run: not live, listed after
    with background_run(runs) as (run_dir, pid):
        # the launcher: the live run on its top line; a, the picker, Enter attaches
        app = build_app(runs_dir=runs)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen), what="the launcher")
            await settle(pilot)
            text = screen_text(app)
            assert text.splitlines()[0].strip().startswith(f"{run_dir.name} is training · a: attach")
            assert "a Attach" in text
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, RunPicker), what="the picker")
            assert f"{run_dir.name} · pid {pid} · started" in screen_text(app) and finished.name not in screen_text(app)
            await pilot.press("enter")
            await attached(pilot, pid, "paused")
            await settle(pilot)
            assert badge(app) == "PAUSED" and f"attaching to {run_dir.name}" in log_text(app)
            log = log_text(app)  # the history, read from the run directory
            assert "run started: tiny" in log and "status: PAUSED" in log
            await pilot.press("space")  # steered through the socket: it resumes, live steps arrive
            await wait_for(pilot, lambda: app.status == "running", what="resumed")
            await live_steps(pilot)
            await pilot.press("space")
            await wait_for(pilot, lambda: app.status == "paused", what="paused again")
            await pilot.press("d")
            await wait_for(pilot, lambda: not app.is_running, what="exit on d")
        assert app.stop_training(10) and app.left_running() and alive(pid)  # the run goes on

        # the Runs screen: the live run first; Enter attaches to it (no replay)
        app = build_app(runs_dir=runs, runs_screen=True)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.reloads, what="the runs")
            await settle(pilot)
            screen = app.screen
            assert names(screen) == [run_dir.name, finished.name]
            assert str(screen.table.get_row_at(0)[1]) == "● paused" and "1 live" in screen_text(app)  # its live status
            await pilot.press("enter")
            await attached(pilot, pid, "paused")
            await settle(pilot)
            assert badge(app) == "PAUSED" and f"attaching to {run_dir.name}" in log_text(app)
            assert isinstance(app.screen, DashboardScreen) and not isinstance(app.screen, ReplayDashboard)
            assert not app.replaying and Path(app.run_dir) == run_dir
            await pilot.press("d")
            await wait_for(pilot, lambda: not app.is_running, what="exit on d")
        assert app.stop_training(10) and app.left_running() and alive(pid)


# --------------------------------------------------------------------------- the non-finite dialog, attached


@run_async
async def test_a_second_app_attached_to_a_nonfinite_pause_shows_the_dialog_and_answers_it(tmp_path):
    from tests.nan_model import SPEC

    runs = tmp_path / "runs"
    config = from_dict({
        "name": "nan", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": SPEC, "kwargs": {"after": 12}},
        "optim": {"name": "sgd", "lr": 0.05}, "schedule": {"name": "constant", "warmup_steps": 0},
        "train": {"epochs": 50, "log_every": 5, "device": "cpu", "num_threads": 1}, "checkpoint": {"save_best": False},
    })
    first = build_app(config=config, preset="nan", runs_dir=runs, start_immediately=True)  # on_nonfinite=pause, as tui-train run
    pid = None
    try:
        async with first.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(first.screen, NonFiniteDialog), timeout=START, what="the first app's dialog")
            pid = first.trainer.pid
            assert first.status == "paused"

            second = build_app(runs_dir=runs, attach=Path(first.run_dir))
            async with second.run_test(size=SIZE) as pilot2:
                await wait_for(pilot2, lambda: isinstance(second.screen, NonFiniteDialog), timeout=START,
                               what="the attached app's dialog")
                await settle(pilot2)
                assert isinstance(second.trainer, RemoteTrainer) and second.trainer.pid == pid
                assert sum(isinstance(s, NonFiniteDialog) for s in second.screen_stack) == 1
                assert second.status == "paused" and "non-finite" in screen_text(second)
                await pilot2.press("e")  # stop: from the last good weights, evaluate, save, end early
                await wait_for(pilot2, lambda: second.status == "early_stopped", timeout=60, what="stopped by the second app")
                await settle(pilot2)
                assert not isinstance(second.screen, NonFiniteDialog) and badge(second) == "EARLY STOPPED"
                await pilot2.press("q")
                await wait_for(pilot2, lambda: not second.is_running, what="the second app quits")

            # the first app's dialog no longer applies: it went away by itself
            await wait_for(pilot, lambda: first.status == "early_stopped" and not isinstance(first.screen, NonFiniteDialog),
                           timeout=30, what="the first app follows")
            await settle(pilot)
            assert badge(first) == "EARLY STOPPED"
            await pilot.press("q")
            await wait_for(pilot, lambda: not first.is_running, what="exit")
        assert first.stop_training(10) and second.stop_training(10)
        # one command, applied in the pause it answered (a Rollback sent first used to resume the run, which
        # trained on NaN until the Stop arrived through the socket, and then ended NOT SAVED)
        records = _records(Path(first.run_dir))
        applied = [(r["command"], r["origin"], r["step"]) for r in records if r["event"] == "CommandApplied"]
        paused_at = [r["step"] for r in records if r["event"] == "StatusChanged" and r["cause"] == "nonfinite"]
        assert applied == [("Stop", second.trainer.viewer_id, paused_at[0])] and len(paused_at) == 1
        saved = [r for r in records if r["event"] == "CheckpointSaved"]
        assert {r["reason"] for r in saved} >= {"early_stop"} and not [r for r in records if r["event"] == "RunError"]
    finally:
        end_trainer(pid)


def _records(run_dir: Path) -> list[dict]:
    import json

    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]


# --------------------------------------------------------------------------- the confusion screen, the system panel


@run_async
async def test_the_confusion_screen_and_the_system_panel_follow_the_trainer_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TRAIN_SYSTEM_INTERVAL", "0.2")  # the trainer process inherits it: a sample every 0.2 s
    app = build_app(config=tiny(), preset="tiny", runs_dir=tmp_path / "runs", start_immediately=True)
    pid = None
    try:
        async with app.run_test(size=(160, 40)) as pilot:  # from 160 columns the system panel is shown
            await wait_for(pilot, lambda: app.trainer is not None and app.trainer.pid is not None and app.dashboard is not None,
                           timeout=START, what="started")
            pid = app.trainer.pid
            panel = app.dashboard.query_one(SystemPanel)
            await wait_for(pilot, lambda: len(panel.history["cpu"]) >= 2 and app.dashboard.confusion is not None, timeout=START,
                           what="system samples and a confusion matrix from the trainer process")

            # the system panel: the samples the trainer process took
            await settle(pilot)
            sample = panel.latest
            assert isinstance(sample, E.SystemSample) and panel.display
            assert sample.rss_bytes > 0 and sample.mem_total_bytes > 0 and 0 <= sample.mem_percent <= 100
            assert sample.gpu_percent is None  # a CPU run: no GPU row
            assert panel.query_one("#sys-cpu").data == list(panel.history["cpu"])
            text = screen_text(app)
            assert re.search(r"cpu +\d+%", text) and re.search(r"rss +[\d.]+[KMG]", text) and re.search(r"mem +\d+%/", text), text

            # c: the latest matrix; each validation of the run (every epoch) redraws the open screen
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="the confusion screen")
            screen = app.screen
            first = screen.event.step
            await wait_for(pilot, lambda: screen.event is not None and screen.event.step > first, timeout=30, what="a newer matrix")
            await settle(pilot)
            shown = screen.event
            assert isinstance(shown, E.ConfusionMatrix) and shown.num_classes == 10
            text = screen_text(app)
            match = re.search(r"validation at step (\d+) \(epoch (\d+)\) · 10 classes · accuracy [\d.]+% of (\d+)", text)
            assert match, text
            assert int(match[1]) > first and int(match[3]) == sum(map(sum, shown.confusion))
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back to the dashboard")

            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog), what="the quit dialog")
            await pilot.press("s")  # Stop: Interrupt; the run saves and ends
            await wait_for(pilot, lambda: not app.is_running, timeout=30, what="exit after the run ended")
        assert app.stop_training(10)
        app.drain_after_exit()
        assert app.status == "interrupted"
    finally:
        end_trainer(pid)
