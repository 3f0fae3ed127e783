"""The Runs screen (issue "Past runs in the terminal") on small run directories written with RunLog:
the list, the filter, sorting, a finished run replayed on its dashboard, the marked runs' curves
and config diff, deletion (asked first, never of a live run), and the launcher's r."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import pytest
from textual import events

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core import events as E
from tui_train.core.config import from_dict, to_toml
from tui_train.core.run.runlog import RunLog
from tui_train.core.rundir import runs as R
from tui_train.core.testing import FakeTrainer
from tui_train.tui import keys
from tui_train.tui.app import build_app
from tui_train.tui.screens.confirm_dialog import ConfirmDialog
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.overlay_screen import OverlayScreen
from tui_train.tui.screens.runs_screen import ConfigDiffScreen, ReplayDashboard, RunsScreen, matches, sort_rows
from tui_train.tui.widgets.epoch_table import EpochTable
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.overlay_plot import PALETTE, ema, run_color, run_colors
from tui_train.tui.widgets.status_badge import StatusBadge

SIZE = (160, 40)
T0 = 1_750_000_000.0


def make_run(root: Path, name: str, *, lr: float = 1e-3, optimizer: str = "adam", epochs: int = 3, steps_per_epoch: int = 20,
             first_step: int = 0, finish: str | None = "completed", parent: Path | None = None, started: float = T0,
             torn: bool = False) -> Path:
    """A run directory as the engine writes it (RunLog): steps, epochs, an LR change; finished with
    a summary unless ``finish`` is None (killed: no ending, no summary)."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    preset = name.split("-", 2)[-1]
    cfg = from_dict({"name": preset, "optim": {"lr": lr, "name": optimizer}, "data": {"dataset": "digits", "batch_size": 16},
                     "train": {"epochs": epochs}})
    log = RunLog(run_dir)
    log.open((f"{R.PARENT_PREFIX}{parent} step {first_step}\n" if parent else "") + to_toml(cfg))
    log.write(E.RunStarted(run_dir=str(run_dir), preset=preset, device="cpu", task="classification", epochs=epochs,
                           steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch, train_size=320, val_size=40,
                           test_size=40, num_params=10, model="mlp", hyperparameters={"lr": lr, "optimizer": optimizer},
                           live=("lr",), start_step=first_step, start_epoch=first_step // steps_per_epoch))
    log.write(E.StatusChanged(status="running", reason="started", step=first_step, cause="start"))
    step = first_step
    for epoch in range(first_step // steps_per_epoch, epochs):
        for i in range(1, steps_per_epoch + 1):
            step += 1
            loss = 2.0 / (1 + step / 10) + (0.2 if optimizer == "sgd" else 0.0)
            log.write(E.StepMetrics(step=step, epoch=epoch, epoch_progress=i / steps_per_epoch, loss=loss, lr=lr,
                                    samples_per_second=1e3, accuracy=1 - loss / 2.5, elapsed=step * 0.05))
        if epoch == 0:
            log.write(E.CommandApplied(command="SetLearningRate", detail=f"lr {lr} -> {lr / 2}", step=step, key="lr",
                                       old=lr, new=lr / 2))
        log.write(E.EpochMetrics(epoch=epoch, step=step, train={"loss": loss, "accuracy": 1 - loss / 2.5},
                                 val={"loss": loss * 1.1, "accuracy": 1 - loss / 2.4}, lr=lr, seconds=1.0, is_best=True))
    summary = {"status": finish, "reason": "all epochs done", "preset": preset, "epochs_completed": epochs, "epochs_planned": epochs,
               "steps": step, "wall_seconds": 30.0 + epochs, "best": {"metric": "val_loss", "value": loss * 1.1, "epoch": epochs - 1},
               "test": {"accuracy": 0.91, "loss": 0.3}, "interventions": 1, "run_dir": str(run_dir.resolve()),
               "hyperparameters": {"lr": lr, "batch_size": 16, "optimizer": optimizer, "schedule": "constant"},
               "parent": {"run_dir": str(parent), "step": first_step} if parent else None}
    if finish is not None:
        log.write(E.TestMetrics(metrics={"loss": 0.3, "accuracy": 0.91}))
        log.write(E.StatusChanged(status=finish, reason="all epochs done", step=step, cause="end"))
        log.write(E.RunFinished(status=finish, summary=summary, run_dir=str(run_dir.resolve())))
    log.close()
    if finish is not None:
        log.write_summary(summary)
    events = run_dir / "events.jsonl"  # the start time the list shows
    first, *rest = events.read_text().splitlines(keepends=True)
    rec = json.loads(first)
    rec["time"] = started
    events.write_text(json.dumps(rec) + "\n" + "".join(rest))
    if torn:
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write('{"event": "StepMetrics", "step": 6')
    return run_dir


@pytest.fixture
def runs(tmp_path):
    """alpha (adam), its fork beta (sgd, from step 20), gamma (killed: no summary, a torn last line), delta (sgd, lr 0.01)."""
    root = tmp_path / "runs"
    alpha = make_run(root, "20260101-000000-alpha", started=T0)
    beta = make_run(root, "20260102-000000-beta", optimizer="sgd", first_step=20, parent=alpha, started=T0 + 86400)
    gamma = make_run(root, "20260103-000000-gamma", finish=None, torn=True, started=T0 + 2 * 86400)
    delta = make_run(root, "20260104-000000-delta", lr=0.01, optimizer="sgd", epochs=2, started=T0 + 3 * 86400)
    return types.SimpleNamespace(root=root, alpha=alpha, beta=beta, gamma=gamma, delta=delta)


def runs_app(root: Path, **kwargs):
    return build_app(runs_dir=root, runs_screen=True, **kwargs)


async def on_runs(pilot) -> RunsScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.reloads, what="the runs")
    await settle(pilot)
    return pilot.app.screen


def names(screen: RunsScreen) -> list[str]:
    """The run column of the table, top to bottom (what is on screen, not the screen's list)."""
    table = screen.table
    return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


def cursor_to(screen: RunsScreen, run_dir: Path) -> None:
    screen.table.move_cursor(row=screen.table.get_row_index(str(run_dir.resolve())))


# --------------------------------------------------------------------------- the list


@run_async
async def test_the_list_shows_every_run_newest_first_with_lineage_and_what_each_has(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        assert names(screen) == [runs.delta.name, runs.gamma.name, runs.beta.name, runs.alpha.name]
        text = screen_text(app)
        assert "4 runs · 0 live · 0 marked · sorted by started ↓" in text
        row = {key.value: str(cell) for key, cell in  # cells are Text: a run's texts are shown literally
               zip([c.key for c in screen.table.ordered_columns], screen.table.get_row(str(runs.beta.resolve())))}
        assert str(row["status"]) == "completed" and row["preset"] == "beta" and row["optimizer"] == "sgd"
        assert row["parent"] == f"{runs.alpha.name} @20" and row["epochs"] == "3/3" and row["test"] == "91.00%"
        assert row["started"] == time.strftime("%Y-%m-%d %H:%M", time.localtime(T0 + 86400))
        assert str(screen.table.get_row(str(runs.gamma.resolve()))[1]) == "unfinished"
        await pilot.press("escape")  # opened on the Runs screen (tui-train runs): Esc quits
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 0


@run_async
async def test_typing_filters_and_o_sorts(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        await pilot.press("s", "g", "d")  # no binding: typing starts the filter
        await wait_for(pilot, lambda: screen.query_text == "sgd", what="the filter")
        await settle(pilot)
        assert sorted(names(screen)) == sorted([runs.beta.name, runs.delta.name])
        assert "2 of 4 runs" in screen_text(app)
        await pilot.press("space", "a", "l")  # words must all match somewhere: sgd and "al"pha (beta's parent)
        await wait_for(pilot, lambda: screen.query_text == "sgd al")
        assert names(screen) == [runs.beta.name]
        await pilot.press("escape")  # in the filter: clears it, back to the table
        await wait_for(pilot, lambda: screen.query_text == "" and screen.table.has_focus)
        assert len(names(screen)) == 4 and isinstance(app.screen, RunsScreen)
        await pilot.press("slash", "u", "n", "f", "i", "n", "enter")
        await wait_for(pilot, lambda: screen.query_text == "unfin" and screen.table.has_focus)
        assert names(screen) == [runs.gamma.name]
        await pilot.press("escape")  # the table has the focus: Esc leaves (here: quits)
        await wait_for(pilot, lambda: not app.is_running, what="exit")


@run_async
async def test_o_cycles_the_sort_column_and_O_or_a_header_click_reverses(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        while screen.sort_key != "lr":
            await pilot.press("o")
        await settle(pilot)
        assert screen.reverse and names(screen)[0] == runs.delta.name  # lr 0.01 first
        await pilot.press("O")
        await settle(pilot)
        assert not screen.reverse and names(screen)[-1] == runs.delta.name and "sorted by lr ↑" in screen_text(app)
        status_header = (screen.table.columns["mark"].get_render_width(screen.table) + 1, 0)
        await pilot.click("#runs-table", offset=status_header)
        await settle(pilot)
        assert screen.sort_key == "status" and not screen.reverse  # another column: the direction stays
        assert [str(screen.table.get_row_at(i)[1]) for i in range(4)] == ["completed"] * 3 + ["unfinished"]
        await pilot.click("#runs-table", offset=status_header)  # the same one again: reversed
        await settle(pilot)
        assert screen.reverse and str(screen.table.get_row_at(0)[1]) == "unfinished"


def test_filter_words_and_the_sort_order_match_core_runs(runs):
    rows = R.list_runs(runs.root)
    assert [r.name for r in rows if matches(r, "SGD")] == [runs.delta.name, runs.beta.name]
    assert [r.name for r in rows if matches(r, "sgd 1.00e-02")] == [runs.delta.name]  # the lr as the table shows it
    assert [r.name for r in rows if matches(r, "runs")] == []  # the folders' common path matches nothing
    for key in R.SORT_KEYS:
        for reverse in (True, False):
            assert [r.name for r in sort_rows(rows, key, reverse)] == [r.name for r in R.list_runs(runs.root, key, reverse)], key


# --------------------------------------------------------------------------- opening a run


@run_async
async def test_enter_replays_a_finished_run_on_its_dashboard_and_esc_comes_back(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, runs.beta)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard) and app.dashboard is not None
                       and app.dashboard.query_one(EpochTable).row_count == 2 and not app.run_active, what="the replay")
        await settle(pilot)
        dash = app.dashboard
        table = dash.query_one(EpochTable)
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["2", "3 ★"]  # the fork's own epochs (from step 20), the best starred
        assert str(dash.query_one(StatusBadge).render()).strip() == "FINISHED"
        log = "\n".join(dash.query_one(EventLog).lines_text)
        assert "replaying 20260102-000000-beta from its files" in log and "run finished: FINISHED" in log
        assert "lr 0.001 -> 0.0005" not in log  # the fork's log: its first epoch was its parent's
        assert "test: loss 0.3 · accuracy 91.00%" in log
        assert dash.query_one("#loss-plot", MetricPlot).lines["train"].series.xs[0] == 21  # steps go on from the parent's
        assert app.status == "ready" and not app.run_active and not app.failed  # no run of this app's
        assert "esc Runs" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs")
        assert app.dashboard is None and not app.replaying and screen.reloads >= 2
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 0 and app.exit_code() == 0


@run_async
async def test_a_killed_run_is_replayed_as_its_files_end(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, runs.gamma)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard) and not app.run_active
                       and app.dashboard.query_one(EpochTable).row_count == 3, what="the replay")
        await settle(pilot)
        log = "\n".join(app.dashboard.query_one(EventLog).lines_text)
        assert "warning: the run ended without a summary: its files end at step 60, last status running" in log
        assert "training thread ended" not in log and "run finished" not in log
        assert str(app.dashboard.query_one(StatusBadge).render()).strip() == "RUNNING"  # its last recorded status, nothing made up
        assert app.exit_code() == 0


@run_async
async def test_a_replayed_run_rejects_commands_while_it_is_sent(runs, monkeypatch):
    # a replay that is still sending (held here) takes keys: the ReplayTrainer answers them
    import threading

    from tui_train.core.rundir import replay

    hold = threading.Event()
    real = replay.read_history
    monkeypatch.setattr(replay, "read_history", lambda *a, **k: (hold.wait(10), real(*a, **k))[1])
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, runs.alpha)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard) and app.trainer is not None and app.run_active)
        await pilot.press("s")  # save a checkpoint: queued by the replay until it has a sink
        hold.set()
        await wait_for(pilot, lambda: not app.run_active and app.dashboard.query_one(EpochTable).row_count == 3)
        await settle(pilot)
        log = "\n".join(app.dashboard.query_one(EventLog).lines_text)
        assert "SaveCheckpoint rejected: a finished run is replayed from its files; it cannot be steered" in log


def pretend_live(monkeypatch, *live_dirs: Path) -> None:
    """Make core.run.endpoint.probe find a live trainer for ``live_dirs`` (given an endpoint.json), none elsewhere."""
    live = {str(d.resolve()) for d in live_dirs}
    for d in live_dirs:
        (d / "endpoint.json").write_text("{}")
    monkeypatch.setattr("tui_train.core.run.endpoint.probe",
                        lambda run_dir, clean=True: (object(), "") if str(Path(run_dir).resolve()) in live
                        else (None, "no live endpoint"))


@run_async
async def test_enter_on_a_live_run_attaches(runs, monkeypatch):
    pretend_live(monkeypatch, runs.gamma)
    made: list[Path] = []

    def attach_factory(run_dir):
        made.append(run_dir)
        return FakeTrainer(run_dir=str(run_dir), detachable=True)

    app = runs_app(runs.root, attach_factory=attach_factory)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        assert names(screen)[0] == runs.gamma.name and str(screen.table.get_row_at(0)[1]) == "● running"  # live runs first
        assert "1 live" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: made and app.status == "running", what="attached")
        assert made == [runs.gamma.resolve()] and not isinstance(app.screen, ReplayDashboard) and not app.replaying


# --------------------------------------------------------------------------- marks: curves and config diff


@run_async
async def test_space_marks_and_v_overlays_the_marked_runs_with_a_legend(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        for run in (runs.alpha, runs.beta):
            cursor_to(screen, run)
            await pilot.press("space")
        await settle(pilot)
        assert [r.name for r in screen.marked_rows] == [runs.alpha.name, runs.beta.name]
        assert "2 marked" in screen_text(app)
        assert str(screen.table.get_row(str(runs.alpha.resolve()))[0]) == "✔"
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen) and app.screen.loaded.is_set(), what="the curves")
        await settle(pilot)
        overlay = app.screen
        text = screen_text(app)
        assert runs.alpha.name in text and runs.beta.name in text and runs.gamma.name not in text
        assert f"fork of {runs.alpha.name} at step 20 (shown)" in text
        loss, metric = overlay.plots
        drawn = {name: (xs, ys) for name, xs, ys, _, _ in loss.drawn_lines(10_000)}
        assert drawn[runs.alpha.name][0][0] == 1 and drawn[runs.alpha.name][0][-1] == 60
        assert drawn[runs.beta.name][0][0] == 21  # the fork lines up with its parent by step
        assert loss.line_colors == run_colors([runs.alpha.name, runs.beta.name]) and len(set(loss.line_colors.values())) == 2
        legend = overlay.legend()
        swatches = [s.style.color.number for s in legend.spans if legend.plain[s.start:s.end].startswith("━━")]
        assert swatches == [loss.line_colors[runs.alpha.name], loss.line_colors[runs.beta.name]]
        assert "x: step" in text and "smoothing off" in text
        await pilot.press("x")
        await settle(pilot)
        assert loss.axis == metric.axis == "epoch" and "x: epoch" in screen_text(app)
        epochs = {name: xs for name, xs, *_ in loss.drawn_lines(10_000)}
        assert epochs[runs.alpha.name][-1] == 3.0 and epochs[runs.beta.name][0] == pytest.approx(1.05)
        await pilot.press("x")
        await settle(pilot)
        assert loss.axis == "time" and loss.axis_label() == "time (s)"
        raw = {name: (xs, ys) for name, xs, ys, _, _ in loss.drawn_lines(10_000)}
        assert raw[runs.alpha.name][0][-1] == pytest.approx(3.0)  # training seconds
        await pilot.press("s")
        await settle(pilot)
        assert loss.smooth and metric.smooth and "smoothing on" in screen_text(app)
        smoothed = {name: (xs, ys) for name, xs, ys, _, _ in loss.drawn_lines(10_000)}
        assert smoothed[runs.alpha.name][0] == raw[runs.alpha.name][0] and smoothed[runs.alpha.name][1] != raw[runs.alpha.name][1]
        pairs = list(zip(smoothed[runs.alpha.name][1], raw[runs.alpha.name][1]))
        assert all(s >= r - 1e-12 for s, r in pairs) and pairs[-1][0] > pairs[-1][1]  # an average of the past: above a falling loss
        assert "cannot draw" not in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert [r.name for r in app.screen.marked_rows] == [runs.alpha.name, runs.beta.name]  # the marks stay


@run_async
async def test_c_shows_only_the_keys_where_the_marked_configs_differ(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        await pilot.press("c")  # nothing marked
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        for run in (runs.alpha, runs.delta):
            cursor_to(screen, run)
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigDiffScreen))
        await settle(pilot)
        diff = app.screen.diff
        assert set(diff) == {"name", "optim.lr", "optim.name", "train.epochs"}
        assert diff["optim.lr"] == [1e-3, 0.01] and diff["optim.name"] == ["adam", "sgd"]
        text = screen_text(app)
        assert "optim.lr" in text and "optim.name" in text and "data.batch_size" not in text and "data.dataset" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


# --------------------------------------------------------------------------- deleting


@run_async
async def test_delete_asks_first_and_removes_the_folder(runs):
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, runs.gamma)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert runs.gamma.name in screen_text(app)
        await pilot.press("n")  # declined: nothing happens
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert runs.gamma.is_dir() and len(names(screen)) == 4
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not runs.gamma.exists() and len(names(screen)) == 3, what="deleted")
        assert runs.gamma.name not in names(screen) and runs.alpha.is_dir() and runs.beta.is_dir() and runs.delta.is_dir()


@run_async
async def test_a_live_run_is_never_deleted(runs, monkeypatch):
    pretend_live(monkeypatch, runs.gamma)
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        notes: list[str] = []
        monkeypatch.setattr(screen, "notify", lambda message, **kw: notes.append(message))
        cursor_to(screen, runs.gamma)  # listed as live: refused at once, in one line, without asking
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen) and runs.gamma.is_dir()
        assert notes == [f"{runs.gamma.name} is live: stop it first (tui-train ctl {runs.gamma.resolve()} stop)"]
        cursor_to(screen, runs.alpha)  # listed finished, live by the time it is confirmed: core.rundir.runs.delete_run refuses
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        pretend_live(monkeypatch, runs.gamma, runs.alpha)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(notes) == 2, what="the refusal")
        assert runs.alpha.is_dir() and "the run is live; stop it first" in notes[1] and "\n" not in notes[1]


# --------------------------------------------------------------------------- the launcher, keys


@run_async
async def test_the_launchers_r_opens_the_runs_and_esc_goes_back(runs):
    app = build_app(runs_dir=runs.root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await settle(pilot)
        assert "r Runs" in screen_text(app)
        await pilot.press("r")
        screen = await on_runs(pilot)
        assert len(names(screen)) == 4
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen), what="back to the launcher")
        assert app.is_running


def test_every_runs_key_is_in_the_help():
    rows = dict(keys.help_rows())
    for table in (keys.LAUNCHER_KEYS, keys.RUNS_KEYS, keys.OVERLAY_KEYS, keys.REPLAY_KEYS):
        for k in table:
            if k.help:
                assert rows[k.help_key] == k.help


# --------------------------------------------------------------------------- colours and smoothing


def test_a_runs_colour_is_stable_and_marked_runs_get_distinct_ones():
    assert run_color("20260101-000000-alpha") == run_color("20260101-000000-alpha") in PALETTE
    names_ = [f"2026010{i}-000000-run{i}" for i in range(8)]
    colors = run_colors(names_)
    assert len(set(colors.values())) == 8 and colors == run_colors(list(reversed(names_)))
    first = min(names_)
    assert colors[first] == run_color(first)  # the first in name order always has its own


def test_the_ema_is_debiased_and_weighted_by_the_gaps():
    assert ema([0, 1, 2], [5.0, 5.0, 5.0], 10.0) == pytest.approx([5.0, 5.0, 5.0])  # no pull towards 0
    xs, ys = [0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 10.0]
    even = ema(xs, ys, 1.0)
    after_gap = ema([0.0, 1.0, 2.0, 12.0], ys, 1.0)
    assert 0 < even[-1] < 10 and after_gap[-1] == pytest.approx(10.0, abs=1e-3)  # a long gap: the old average has decayed
    thinned = ema([0.0, 1.0, 1.001, 1.002, 2.0], [0.0, 0.0, 10.0, 10.0, 0.0], 1.0)
    assert thinned[3] < 0.1  # points bunched together weigh as little as the span they cover


@run_async
async def test_space_shows_the_mark_in_the_row_at_once(runs):
    """issue 20 defect 4: the mark column had no width, so a mark showed only after a refill."""
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, runs.alpha)
        await pilot.press("space")
        await settle(pilot)
        assert "1 marked" in screen_text(app)
        rows = {ln.split("completed")[1].split()[0]: ln for ln in screen_text(app).splitlines() if "completed" in ln}
        assert rows["alpha"].split()[0] == "✔", rows["alpha"]
        assert "✔" not in rows["beta"]


@run_async
async def test_typing_fast_keeps_the_spaces_of_the_filter(runs):
    """issue 20 defect 4: keys typed before the filter had the focus went to the table (space marked a run)."""
    app = runs_app(runs.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        # as a terminal delivers fast typing: every key queued before the first is handled
        # (pilot.press waits for the app to go idle after each key, which hid the defect)
        for key in (*"mnist", "space", *"128"):
            event = events.Key(key, " " if key == "space" else key)
            event.set_sender(app)
            app._driver.send_message(event)
        box = screen.query_one("#runs-filter")
        await wait_for(pilot, lambda: screen.query_text == box.value, what="the filter")
        assert box.value == "mnist 128" and not screen.marked


@run_async
async def test_config_diff_headers_break_only_between_the_parts_of_a_run_name(tmp_path):
    """issue 20 defect 9: a narrow dialog folded the run names anywhere ("20260101-000000-r" / "un1-mnist-cnn")."""
    root = tmp_path / "runs"
    made = [make_run(root, f"2026010{i}-000000-run{i}-mnist-cnn", lr=10.0 ** -i, started=T0 + i) for i in (1, 2, 3)]
    app = runs_app(root)
    async with app.run_test(size=(80, 30)) as pilot:
        screen = await on_runs(pilot)
        for run in made:
            cursor_to(screen, run)
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigDiffScreen))
        await settle(pilot)
        text = screen_text(app)
        lines = text.splitlines()
        top = next(i for i, ln in enumerate(lines) if "Where the configs" in ln)
        header = lines[top + 1:next(i for i, ln in enumerate(lines) if " key " in ln) + 1]  # down to the key row
        words = set(" ".join(header).replace("-", " ").split())
        for run in made:
            assert set(run.name.split("-")) <= words, text  # each part whole: 20260101, 000000, run1, mnist, cnn
        assert "optim.lr" in text and "0.001" in text


@run_async
async def test_one_run_is_counted_in_the_singular(tmp_path):
    """issue 20 defect 9 ("1 mistakes"), the same class of defect: the info line said "1 runs"."""
    make_run(tmp_path / "runs", "20260101-000000-alpha", started=T0)
    app = runs_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await on_runs(pilot)
        assert "1 run · 0 live · 0 marked" in screen_text(app)
