"""The Sweep screen (issue 24 item 3) in Pilot: the app drives a real SweepDriver in a thread of its
own, as ``tui-train sweep`` on a terminal does.

Two kinds of sweep: real grid sweeps on digits-mlp (the driver spawns real trainer processes: two
trials at most) for the leaderboard, Enter and its way back, p and S; and sweeps whose record on
disk holds a trial "running" in a stand-in process (a ``sleep``: the real driver adopts it, as
``--resume`` adopts a trial still training) for the questions and dialogs, which need a driver
that stays busy but no trainer. A sweep opened from the Runs screen is read-only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Static
from textual.widgets._toast import Toast

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core.sweep import plan
from tui_train.core.sweep import record as R
from tui_train.core.sweep.driver import SweepDriver
from tui_train.tui import keys
from tui_train.tui.app import TrainApp, build_app
from tui_train.tui.screens.confirm_dialog import ConfirmDialog
from tui_train.tui.screens.extend_dialog import ExtendDialog
from tui_train.tui.screens.runs_screen import RunsScreen
from tui_train.tui.screens.sweep_quit_dialog import SweepQuitDialog
from tui_train.tui.screens.sweep_screen import BEST, SweepScreen
from tui_train.tui.screens.trial_dashboard import TrialDashboard, TrialReplay
from tui_train.tui.screens.trial_dialog import TrialDialog

SIZE = (120, 34)

FAST = ["train.num_threads=1"]
"""Every real trial: one CPU thread (two cores, shared)."""

SWEEP_TIMEOUT = 120.0
"""Seconds for a real two-trial sweep of two epochs each (a trial's start takes seconds: Python, torch, the data)."""


def real_sweep(tmp_path: Path, grid: list[str], overrides: list[str]) -> tuple[Path, R.SweepRecord]:
    """A grid sweep of digits-mlp planned as ``tui-train sweep`` plans it."""
    return plan.create("digits-mlp", overrides=FAST + overrides, grid=grid, random=[], trials=None, optuna=False,
                       metric=None, parallel=1, prune="", runs_dir=tmp_path / "runs", extra_dirs=[])


def driven_app(sweep_dir: Path, rec: R.SweepRecord) -> TrainApp:
    """The app as run_sweep_tui builds it: on the Sweep screen, driving ``rec``."""
    return build_app(runs_dir=Path(rec.runs_dir), sweep=sweep_dir,
                     sweep_driver=lambda say, changed: SweepDriver(rec, sweep_dir, say=say, changed=changed))


def rows(screen: SweepScreen) -> list[list[str]]:
    """The leaderboard's cells as text, in table order."""
    table = screen.table
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(screen: SweepScreen, key: str) -> list[str]:
    """One column of the leaderboard ('status', 'value', 'param:optim.lr'...), in table order."""
    index = [c.value for c in screen.table.columns].index(key)
    return [r[index] for r in rows(screen)]


def trial(app: TrainApp, number: int) -> R.Trial:
    return next(t for t in app.sweep.record.trials if t.number == number)


def toasts(app) -> str:
    return "\n".join(str(t.render()) for t in app.screen.query(Toast))


async def on_sweep(pilot, app: TrainApp) -> SweepScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the Sweep screen")
    return app.screen


def select(screen: SweepScreen, number: int) -> None:
    screen.table.move_cursor(row=screen.order.index(number))


# --------------------------------------------------------------------------- real sweeps
@run_async
async def test_a_grid_sweep_ranks_both_trials_marks_the_best_and_replays_one(tmp_path):
    sweep_dir, rec = real_sweep(tmp_path, ["optim.lr=0.01,0.1"], ["train.epochs=2"])
    app = driven_app(sweep_dir, rec)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_sweep(pilot, app)
        await wait_for(pilot, lambda: app.sweep.ended, SWEEP_TIMEOUT, "the sweep to complete")
        await wait_for(pilot, lambda: screen.session.version == screen._shown_version, what="the last redraw")
        await settle(pilot)
        assert app.sweep.exit_code() == 0 and app.sweep.record.state == "completed"
        best = app.sweep.record.best()
        table = rows(screen)
        assert len(table) == 2 and {r[1] for r in table} == {"0", "1"}
        assert table[0][0] == BEST and table[0][1] == str(best.number) and table[1][0] == ""  # best first, marked
        assert column(screen, "status") == ["completed", "completed"]
        assert set(column(screen, "param:optim.lr")) == {"0.01", "0.1"}
        text = screen_text(app)
        assert "COMPLETED · 2/2 trials done" in text and "val_accuracy" in text
        # the curves: both trials (none runs now), best first
        assert [c.number for c in screen.plot.curves] == [t.number for t in rec.leaderboard()]
        assert all(len(c.values) == 2 for c in screen.plot.curves)

        # Enter: the finished trial is replayed; Esc comes back to the sweep
        select(screen, best.number)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialReplay) and app.screen.status == "completed",
                       what="the trial's replay")
        await pilot.press("escape")
        await on_sweep(pilot, app)
        assert app.screen is screen
        await pilot.press("q")  # the sweep is over: q quits without asking
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.return_code == 0


@run_async
async def test_enter_attaches_to_a_running_trial_esc_returns_p_prunes_it_and_S_stops_the_sweep(tmp_path):
    sweep_dir, rec = real_sweep(tmp_path, ["optim.lr=0.01,0.02"], ["train.epochs=200"])
    app = driven_app(sweep_dir, rec)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_sweep(pilot, app)
        await wait_for(pilot, lambda: trial(app, 0).status == "running" and trial(app, 0).epoch >= 1, SWEEP_TIMEOUT,
                       "trial 0 to train")
        select(screen, 0)

        # Enter: the running trial's dashboard, attached as `tui-train attach` shows it
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDashboard) and app.screen.status == "running",
                       what="the trial's dashboard")
        assert app.run_active and Path(app.run_dir).resolve() == Path(trial(app, 0).run_dir).resolve()
        await pilot.press("escape")  # back: the trial trains on, the sweep goes on
        await on_sweep(pilot, app)
        assert not app.run_active and app.dashboard is None
        epoch = trial(app, 0).epoch
        await wait_for(pilot, lambda: trial(app, 0).epoch > epoch, 60, "trial 0 to train on after Esc")

        # p: pruned (it validates, saves and ends); the sweep starts trial 1
        select(screen, 0)
        await pilot.press("p")
        await wait_for(pilot, lambda: trial(app, 0).status == "pruned", 60, "trial 0 pruned")
        assert trial(app, 0).reason == "pruned: by hand"
        await wait_for(pilot, lambda: trial(app, 1).status == "running", SWEEP_TIMEOUT, "trial 1 to start")

        # S: asks first; then trial 1 saves and ends interrupted, the sweep is recorded stopped
        await pilot.press("S")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop question")
        await pilot.press("y")
        await on_sweep(pilot, app)
        await wait_for(pilot, lambda: app.sweep.ended, 60, "the sweep to stop")
        await wait_for(pilot, lambda: "STOPPED" in screen_text(app), what="the header to say so")
        assert trial(app, 1).status == "interrupted" and app.sweep.record.state == "stopped"
        summary = json.loads((Path(trial(app, 1).run_dir) / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert app.sweep.exit_code() == 0
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.return_code == 0
    assert R.load(sweep_dir).state == "stopped"


# --------------------------------------------------------------------------- a driver kept busy by a stand-in
@pytest.fixture
def stand_in():
    """A process standing in for a trial's trainer (killed at the end)."""
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def busy_sweep(tmp_path: Path, pid: int, name: str = "sweep-digits-mlp", params: dict | None = None,
               reason: str = "") -> Path:
    """A random sweep's folder whose trial 0 is recorded running in process ``pid`` (an empty run
    directory: no epochs yet), trial 1 done, trial 2 queued; its driver adopts trial 0."""
    runs = tmp_path / "runs"
    sweep_dir = runs / name
    sweep_dir.mkdir(parents=True)
    run0, run1 = runs / "run0", runs / "run1"
    run0.mkdir()
    run1.mkdir()
    params = params or {"optim.lr": 0.01}
    rec = R.SweepRecord(preset="digits-mlp", overrides=list(FAST), space={"grid": {}, "random": {
        "optim.lr": {"low": 0.001, "high": 0.1, "log": True, "integer": False}}}, method="random", metric="val_accuracy",
        mode="max", trials_planned=3, runs_dir=str(runs), trials=[
            R.Trial(0, dict(params), status="running", run_dir=str(run0), pid=pid, started=time.time()),
            R.Trial(1, {"optim.lr": 0.05}, status="failed", run_dir=str(run1), value=0.5, epoch=1, values=[0.5],
                    started=time.time() - 5, ended=time.time(), reason=reason or "failed: it broke"),
            R.Trial(2, {"optim.lr": 0.002})])
    R.save(sweep_dir, rec)
    return sweep_dir


def busy_app(sweep_dir: Path) -> TrainApp:
    return build_app(runs_dir=sweep_dir.parent, sweep=sweep_dir)  # the default factory reads sweep.json


@run_async
async def test_q_asks_and_leave_quits_with_the_trials_training_on(tmp_path, stand_in):
    proc = stand_in()
    sweep_dir = busy_sweep(tmp_path, proc.pid)
    app = busy_app(sweep_dir)
    async with app.run_test(size=SIZE) as pilot:
        await on_sweep(pilot, app)
        await wait_for(pilot, lambda: app.sweep.running and app.sweep.record.state == "running", what="the driver")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepQuitDialog), what="the quit question")
        assert "tui-train sweep --resume" in screen_text(app).replace("\n", " ")
        await pilot.press("c")  # Cancel: nothing happens
        await on_sweep(pilot, app)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepQuitDialog), what="the quit question again")
        await pilot.press("l")
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.return_code == 0
    assert app.sweep.finish() is False and app.sweep.left  # not waited for: left going
    assert "left the sweep; its running trials train on" in app.sweep.closing_line()
    assert proc.poll() is None  # the trial's process trains on
    assert R.load(sweep_dir).trials[0].status == "running"  # --resume adopts it


@run_async
async def test_q_then_stop_ends_the_sweep_then_quits(tmp_path, stand_in):
    proc = stand_in()
    sweep_dir = busy_sweep(tmp_path, proc.pid)
    app = busy_app(sweep_dir)
    async with app.run_test(size=SIZE) as pilot:
        await on_sweep(pilot, app)
        await wait_for(pilot, lambda: app.sweep.running and app.sweep.record.state == "running", what="the driver")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepQuitDialog), what="the quit question")
        await pilot.press("s")
        await wait_for(pilot, lambda: "STOPPING" in screen_text(app), what="the header to say stopping")
        assert app.is_running  # it waits for the trials to end
        proc.kill()  # the stand-in ends (a trainer would save and end on the driver's Interrupt)
        proc.wait()
        await wait_for(pilot, lambda: not app.is_running, 30, "the app to quit once the sweep has stopped")
    assert app.return_code == 0 and app.sweep.record.state == "stopped"
    assert R.load(sweep_dir).state == "stopped"


@run_async
async def test_n_checks_each_value_against_the_preset_and_queues_the_trial_and_plus_extends(tmp_path, stand_in):
    proc = stand_in()
    sweep_dir = busy_sweep(tmp_path, proc.pid)
    app = busy_app(sweep_dir)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await on_sweep(pilot, app)
        await wait_for(pilot, lambda: app.sweep.running and app.sweep.record.state == "running", what="the driver")
        select(screen, 1)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDialog), what="the trial dialog")
        dialog = app.screen
        field = dialog.query_one("#trial-value-0", Input)
        assert field.value == "0.05"  # prefilled with the selected trial's value
        field.value = "fast"
        await pilot.press("enter")
        await settle(pilot)
        error = str(dialog.query_one("#trial-error", Static).render())
        assert "optim.lr" in error and isinstance(app.screen, TrialDialog)  # refused in place, one line
        field.value = "0.03"
        dialog.query_one("#trial-other", Input).value = "train.epochs=0"
        await pilot.press("enter")
        await settle(pilot)
        assert "epochs" in str(dialog.query_one("#trial-error", Static).render()) and isinstance(app.screen, TrialDialog)
        dialog.query_one("#trial-other", Input).value = "train.epochs=3"
        await pilot.press("enter")
        await on_sweep(pilot, app)
        await wait_for(pilot, lambda: len(app.sweep.record.trials) == 4, what="the new trial")
        assert app.sweep.record.trials[3].params == {"optim.lr": "0.03", "train.epochs": "3"}
        assert app.sweep.record.trials[3].status == "queued" and app.sweep.record.trials_planned == 4

        # +: two more trials drawn from the space
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ExtendDialog), what="the extend dialog")
        app.screen.query_one(Input).value = "2"
        await pilot.press("enter")
        await on_sweep(pilot, app)
        await wait_for(pilot, lambda: len(app.sweep.record.trials) == 6, what="two more trials")
        assert app.sweep.record.trials_planned == 6
        await wait_for(pilot, lambda: screen.table.row_count == 6, what="the table to show them")

        # x on a trial that is not running: a notice, no request
        select(screen, 1)
        await pilot.press("x")
        await wait_for(pilot, lambda: "only a running trial" in toasts(app), what="the notice")

        # the palette lists the sweep's keys
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {"Prune trial", "Stop trial", "New trial", "Extend sweep", "Stop sweep", "Open trial"} <= titles
        app.sweep.request_stop()
        proc.kill()
        proc.wait()
        await wait_for(pilot, lambda: app.sweep.ended, 30, "the sweep to stop")


# --------------------------------------------------------------------------- read-only, from the Runs screen
NASTY = "[/x][bold]m[red \x1b[31m\x07 [link=https://x]"


@run_async
async def test_a_sweep_opened_from_the_runs_screen_is_read_only_and_shows_its_texts_literally(tmp_path):
    params = {f"optim.lr{NASTY}": f"0.1{NASTY}"}
    sweep_dir = busy_sweep(tmp_path, 0, name="sweep-[/x]", params=params, reason=f"failed: {NASTY}")
    rec = R.load(sweep_dir)
    rec.trials[0].status, rec.trials[0].values, rec.trials[0].value, rec.trials[0].epoch = "completed", [0.7, 0.8], 0.8, 2
    R.save(sweep_dir, rec)
    app = build_app(runs_dir=sweep_dir.parent, runs_screen=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the runs")
        app.screen.post_message(RunsScreen.OpenSweep(sweep_dir))
        screen = await on_sweep(pilot, app)
        await wait_for(pilot, lambda: screen.table.row_count == 3, what="the leaderboard")
        await settle(pilot)
        text = screen_text(app)
        assert "RUNNING (not driven here)" in text and "sweep-[/x]" in screen.header_text().plain
        assert all(ch not in text for ch in "\x1b\x07")
        cells = [c for row in rows(screen) for c in row]
        assert any("[/x][bold]m[red" in c for c in cells)  # the parameter's value, as it was written
        assert rows(screen)[0][0] == BEST and rows(screen)[0][1] == "0"
        select(screen, 1)
        await settle(pilot)
        info = str(screen.query_one("#sweep-info", Static).render())
        assert "[/x][bold]m[red" in info  # the failed trial's reason

        # keys that need the driver say how to drive it
        for key in ("p", "n", "plus", "S"):
            await pilot.press(key)
        await wait_for(pilot, lambda: "this sweep is not driven here: tui-train sweep --resume" in toasts(app),
                       what="the notice")
        assert isinstance(app.screen, SweepScreen)

        # refreshed from sweep.json: a change on disk shows within a second or two
        rec.trials[2].status = "running"
        R.save(sweep_dir, rec)
        await wait_for(pilot, lambda: "running" in column(screen, "status"), 5, "the new status")

        await pilot.press("escape")  # back to the runs
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs")


# --------------------------------------------------------------------------- keys and exit codes
def test_every_sweep_key_is_in_the_help():
    rows_ = dict(keys.help_rows())
    for table in (keys.SWEEP_KEYS, keys.TRIAL_KEYS):
        for k in table:
            if k.help:
                assert rows_[k.help_key] == k.help


def test_a_hang_up_interrupts_the_sweep_exit_130(tmp_path, stand_in):
    """The driver's stop event (what a hang-up sets): 130, the record interrupted, as headless."""
    from tui_train.tui.sweep_session import SweepSession, default_driver_factory

    proc = stand_in()
    sweep_dir = busy_sweep(tmp_path, proc.pid)
    session = SweepSession(sweep_dir, default_driver_factory(sweep_dir))
    session.start()
    deadline = time.monotonic() + 10
    while session.record.state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    session.hang_up()
    proc.kill()
    proc.wait()
    assert session.finish(30)
    assert session.exit_code() == 130 and session.record.state == "interrupted"
    assert "go on: tui-train sweep --resume" in session.closing_line()
