"""Pilot tests on a scripted fake trainer: keys submit the right commands; events drive widgets."""

from __future__ import annotations

import math

import pytest

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.testing import demo_script
from tui_train.tui.screens.confirm_dialog import ConfirmDialog
from tui_train.tui.screens.help_screen import HelpScreen
from tui_train.tui.screens.hyperparameter_dialog import HyperparameterDialog
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.learning_rate_dialog import LearningRateDialog
from tui_train.tui.screens.quit_dialog import QuitDialog
from tui_train.tui.widgets.epoch_table import BEST_MARK, EpochTable
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.hyperparameter_panel import HyperparameterPanel
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.status_badge import StatusBadge

SIZE = (120, 40)


def badge(app) -> str:
    return str(app.screen.query_one(StatusBadge).render()).strip()


def log_text(app) -> str:
    return "\n".join(app.dashboard.query_one(EventLog).lines_text)


async def started(pilot, fakes):
    await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and pilot.app.status == "running", what="run start")


@run_async
async def test_keys_submit_the_right_commands(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fake = fakes[0]
        await pilot.press("s", "v", "left_square_bracket", "right_square_bracket")
        await wait_for(pilot, lambda: len(fake.commands) == 4)
        assert fake.commands == [C.SaveCheckpoint(), C.Validate(), C.ScaleLearningRate(0.5), C.ScaleLearningRate(2.0)]

        # space submits Pause; the badge only changes when the engine says so
        await pilot.press("space")
        await wait_for(pilot, lambda: app.status == "paused")
        assert fake.commands[-1] == C.Pause()
        await settle(pilot)
        assert badge(app) == "PAUSED"
        await pilot.press("space")
        await wait_for(pilot, lambda: app.status == "running")
        assert fake.commands[-1] == C.Resume()
        await settle(pilot)
        assert badge(app) == "RUNNING"

        # l: the dialog takes 3e-4
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LearningRateDialog))
        app.screen.query_one("#lr-input").value = ""
        await pilot.press(*"3e-4", "enter")
        await wait_for(pilot, lambda: fake.commands[-1] == C.SetLearningRate(3e-4))
        await wait_for(pilot, lambda: app.dashboard.query_one(HyperparameterPanel).values.get("lr") == 3e-4)
        assert "3.00e-04" in screen_text(app)

        # h: a hyperparameter
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HyperparameterDialog))
        app.screen.query_one("#hp-value").value = ""
        await pilot.press(*"0.8", "enter")
        await wait_for(pilot, lambda: fake.commands[-1] == C.SetHyperparameter("momentum", 0.8))

        # e asks first; n declines, y confirms
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
        assert not any(isinstance(c, C.Stop) for c in fake.commands)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.status == "early_stopped")
        assert isinstance(fake.commands[-1], C.Stop)
        await settle(pilot)
        assert badge(app) == "EARLY STOPPED"
        assert "checkpoint (early_stop)" in log_text(app)

        # after the end, run keys submit nothing; n opens the launcher
        count = len(fake.commands)
        await pilot.press("s", "space", "v")
        await settle(pilot)
        assert len(fake.commands) == count
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))


@pytest.mark.parametrize("text", ["abc", "0", "-0.1", "nan", "inf", ""])
@run_async
async def test_invalid_lr_submits_nothing_and_says_why(tmp_path, text):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LearningRateDialog))
        app.screen.query_one("#lr-input").value = text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LearningRateDialog)
        assert str(app.screen.query_one("#lr-error").render()).strip() != ""
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, LearningRateDialog)
        assert fakes[0].commands == []


@run_async
async def test_events_drive_the_widgets(tmp_path):
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await wait_for(pilot, lambda: app.dashboard.query_one(EpochTable).row_count == 3)
        await settle(pilot)
        dash = app.dashboard
        table = dash.query_one(EpochTable)
        # only the latest best keeps the star
        assert [table.get_row(str(i))[0] for i in range(3)] == ["1", "2", f"3 {BEST_MARK}"]
        panel = dash.query_one(HyperparameterPanel)
        assert panel.values["lr"] == 5e-4 and panel.values["lr_now"] == 5e-4
        text = screen_text(app)
        assert "RUNNING" in text and "runs/fake-run" in text and "tiny" in text
        assert "runs/fake-run/checkpoints/best-epoch002.pt" in log_text(app)
        assert "lr 0.001 -> 0.0005" in log_text(app)
        assert "early stopping: 5 epoch(s) of patience left" in log_text(app)
        assert len(dash.query_one("#loss-plot", MetricPlot).lines["train"].series) == 30
        assert [kind for _, kind in dash.query_one("#lr-plot", MetricPlot).markers] == ["lr"]


@run_async
async def test_a_validation_is_marked_V_on_the_plots(tmp_path):
    """issue 20 defect 6: the README lists the V marker; no validation ever drew it."""
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await wait_for(pilot, lambda: app.dashboard.query_one(EpochTable).row_count == 3)
        fakes[0].emit(E.ValidationMetrics(step=250, epoch=2, metrics={"loss": 0.3, "accuracy": 0.9}))
        await settle(pilot)
        for plot in app.dashboard.plots:
            assert (250.0, "validate") in plot.markers, plot.id
        drawn = app.dashboard.query_one("#loss-plot", MetricPlot).render()
        assert "V" in (drawn.plain if hasattr(drawn, "plain") else str(drawn))


@run_async
async def test_plots_redraw_only_on_change(tmp_path):
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await settle(pilot)
        plot = app.dashboard.query_one("#loss-plot", MetricPlot)
        before = plot.draw_count
        for _ in range(5):
            app.pump_events()
            app.dashboard.refresh_plots(force=True)
        assert plot.draw_count == before  # nothing new: no redraw
        fakes[0].emit(E.StepMetrics(step=301, epoch=2, epoch_progress=1.0, loss=0.04, lr=5e-4, samples_per_second=1.0))
        await settle(pilot)
        assert plot.draw_count == before + 1


@run_async
async def test_run_failed_shows_failed_and_traceback_path(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fakes[0].emit(E.RunFailed(message="RuntimeError: boom", traceback="Traceback...\nRuntimeError: boom",
                                  traceback_path="runs/fake-run/traceback.txt"))
        await wait_for(pilot, lambda: app.status == "failed")
        await settle(pilot)
        assert badge(app) == "FAILED"
        assert "RuntimeError: boom" in log_text(app)
        assert "runs/fake-run/traceback.txt" in log_text(app)
        assert app.failed
        await pilot.press("question_mark")  # still usable
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("q")  # no run active: quits without asking
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 1


@run_async
async def test_trainer_factory_error_becomes_failed(tmp_path):
    def broken(config, preset):
        raise ImportError("no engine here")

    from tests.functional.helpers import tiny_config
    from tui_train.tui.app import build_app

    app = build_app(config=tiny_config(), preset="tiny", runs_dir=tmp_path, trainer_factory=broken, start_immediately=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status == "failed")
        await settle(pilot)
        assert badge(app) == "FAILED"
        assert "ImportError: no engine here" in log_text(app)


@run_async
async def test_non_finite_values_never_reach_widgets(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fake = fakes[0]
        fake.emit(E.StepMetrics(step=10, epoch=0, epoch_progress=0.1, loss=1.0, lr=1e-3, samples_per_second=10.0,
                                accuracy=0.5, elapsed=1.0))
        fake.emit(E.StepMetrics(step=20, epoch=0, epoch_progress=math.nan, loss=math.nan, lr=math.inf,
                                samples_per_second=math.inf, accuracy=math.nan, elapsed=math.nan))
        fake.emit(E.RunWarning(message="non-finite loss (nan) at step 20", step=20))
        fake.emit(E.StatusChanged(status="paused", reason="non-finite loss", step=20, cause="nonfinite"))
        fake.emit(E.EpochMetrics(epoch=0, step=20, train={"loss": math.inf, "accuracy": math.nan},
                                 val={"loss": math.nan, "accuracy": 0.5}, lr=math.nan, seconds=math.inf))
        await wait_for(pilot, lambda: app.status == "paused")
        await settle(pilot)
        dash = app.dashboard
        for plot in dash.query(MetricPlot):
            for line in plot.lines.values():
                assert all(math.isfinite(y) for y in line.series.ys)
        assert dash.query_one("#loss-plot", MetricPlot).lines["train"].series.ys == [1.0]
        from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog

        assert isinstance(app.screen, NonFiniteDialog)  # resume, roll back (LR halved) or stop
        assert str(dash.query_one(StatusBadge).render()).strip() == "PAUSED"
        assert "non-finite" in log_text(app)
        assert [k for _, k in dash.query_one("#loss-plot", MetricPlot).markers] == ["nonfinite"]
        screen_text(app)  # renders
        await pilot.press("r")
        await wait_for(pilot, lambda: fake.commands[-1:] == [C.Resume()])


@run_async
async def test_regression_run_plots_r2(tmp_path):
    app, fakes = fake_app(tmp_path, task="regression", script=demo_script(task="regression"))
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await wait_for(pilot, lambda: app.dashboard.query_one(EpochTable).row_count == 3)
        await settle(pilot)
        plot = app.dashboard.query_one("#metric-plot", MetricPlot)
        assert plot.title == "R²"
        assert len(plot.lines["val"].series) == 3 and len(plot.lines["train"].series) == 3
        assert "val R²" in screen_text(app)


@run_async
async def test_quit_while_running_offers_save_and_stops_training(tmp_path):
    # an in-thread trainer (not detachable): q offers Stop (the stop event saves an interrupt
    # checkpoint and ends the run) or Cancel, never Detach (issue 9; the detachable case is in
    # test_leaving.py)
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        text = screen_text(app)
        assert "Stop (s)" in text and "Cancel (c)" in text and "Detach" not in text
        await pilot.press("escape")  # stay
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitDialog))
        assert app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press("s")  # stop: the app quits at once, the stop event ends the run, saving
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    fake = fakes[0]
    assert fake.finished.wait(5), "the stop event must end training"
    assert app.stop_training(5)
    app.drain_after_exit()
    assert fake.commands == [] and fake.status == "interrupted" and not fake.detached
    assert app.status == "interrupted" and app.exit_code() == 130


@run_async
async def test_ctrl_c_asks_like_q_instead_of_killing_the_run(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitDialog))
        assert app.is_running and not fakes[0].finished.is_set()
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press("q")  # q again in the dialog: Stop, as the run cannot be left going
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert fakes[0].finished.wait(5)
    assert fakes[0].status == "interrupted"


@run_async
async def test_launcher_starts_the_run_with_edits(tmp_path):
    from tui_train.core.testing import FakeTrainer
    from tui_train.tui.app import build_app

    made = []

    def factory(config, preset):
        made.append((config, preset))
        return FakeTrainer(config, preset=preset)

    app = build_app(config=None, preset=None, runs_dir=tmp_path, trainer_factory=factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        screen = app.screen
        assert screen.selected == "digits-mlp"
        text = screen_text(app)
        assert "digits-mlp" in text and "regression-mlp" in text
        # an invalid edit is shown, nothing starts
        screen.query_one("#f-lr").value = "nan"
        await pilot.pause()
        screen.action_start()
        await pilot.pause()
        assert "finite" in str(screen.query_one("#launch-error").render())
        assert made == []
        screen.query_one("#f-lr").value = "3e-4"
        screen.query_one("#f-epochs").value = "2"
        await pilot.pause()
        screen.query_one("#f-epochs").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: made and app.status == "running")
    config, preset = made[0]
    assert preset == "digits-mlp"
    assert (config.optim.lr, config.train.epochs, config.train.on_nonfinite) == (3e-4, 2, "pause")


VISIBLE_AT = {
    (80, 24): ("RUNNING", "epoch 3/3", "loss", "accuracy", "learning rate", "lr now", "events", "space"),
    (40, 12): ("RUNNING", "epoch 3/3", "loss", "accuracy", "hyperparams"),
    (20, 6): ("RUNNING", "epoch 3/3"),
    (200, 60): ("RUNNING", "epoch 3/3", "loss", "accuracy", "learning rate", "lr now", "batch size", "epochs", "val acc",
                "events", "system", "train", "val"),
}
"""What each size must show (the wider layouts add the epoch table, the system panel, legends)."""


def newest_epoch_shown(table: EpochTable) -> bool:
    """The last row lies inside the table's scrolled window (header and scrollbar rows left out)."""
    rows = table.scrollable_content_region.height - 1  # the header row
    return table.row_count > 0 and table.scroll_offset.y <= table.row_count - 1 < table.scroll_offset.y + rows


@pytest.mark.parametrize("big, small, toggle", [((160, 60), (160, 30), False), ((160, 60), (130, 28), False),
                                                ((160, 40), (100, 30), True)])
@run_async
async def test_shrinking_the_terminal_keeps_the_newest_epoch_and_rewraps_the_log(tmp_path, big, small, toggle):
    """issue 20 defect 9: after a shrink the log's lines were clipped (wrapped at the old width) and
    the epoch table stayed on old epochs (its old scroll offset) until the next epoch."""
    app, fakes = fake_app(tmp_path, script=demo_script(epochs=20))
    async with app.run_test(size=big) as pilot:
        await started(pilot, fakes)
        table, log = app.dashboard.query_one(EpochTable), app.dashboard.query_one(EventLog)
        await wait_for(pilot, lambda: table.row_count == 20)
        await settle(pilot)
        said = list(log.lines_text)
        await pilot.resize_terminal(*small)
        await settle(pilot)
        width = log.scrollable_content_region.width
        assert log.display and width and max(strip.cell_length for strip in log.lines) <= width and log.max_scroll_x == 0
        assert log.lines_text == said  # the same lines, wrapped again
        if toggle:  # narrow: the log is shown; t shows the epochs
            await pilot.press("t")
            await settle(pilot)
        assert table.display and newest_epoch_shown(table), (table.scroll_offset, table.size)


@pytest.mark.parametrize("size", list(VISIBLE_AT))
@run_async
async def test_sizes_render_and_resize_without_crash(tmp_path, size):
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=size) as pilot:
        await started(pilot, fakes)
        await settle(pilot)

        def missing() -> list[str]:
            text = screen_text(app)
            return [w for w in VISIBLE_AT[size] if w not in text]

        assert not missing(), (missing(), screen_text(app))
        await pilot.resize_terminal(30, 10)
        await settle(pilot)
        assert "RUNNING" in screen_text(app)
        await pilot.resize_terminal(*size)
        await settle(pilot)
        assert not missing(), ("after shrinking and growing back", missing(), screen_text(app))
        await pilot.press("t", "question_mark")
        await settle(pilot)
        assert "tui-train keys" in screen_text(app)


@run_async
async def test_command_palette_offers_the_actions(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Pause / resume training", "Set learning rate", "Halve learning rate", "Double learning rate",
                      "Edit hyperparameters", "Save checkpoint", "Validate now", "Early stop", "Help: keys"):
            assert title in titles
        # run one through the palette callback
        next(c for c in app.get_system_commands(app.screen) if c.title == "Save checkpoint").callback()
        await wait_for(pilot, lambda: fakes[0].commands == [C.SaveCheckpoint()])


@run_async
async def test_no_color_renders_and_badge_says_the_status(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, fakes = fake_app(tmp_path, script=demo_script())
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, fakes)
        await settle(pilot)
        assert "RUNNING" in screen_text(app)
        assert _colours_drawn(app) == set()  # what reaches the terminal is grey only
        await pilot.press("space")
        await wait_for(pilot, lambda: "PAUSED" in screen_text(app))  # the status is in words, not in a colour


def _colours_drawn(app) -> set:
    """The non-grey colours in the frame as the terminal gets it (after the app's line filters:
    with NO_COLOR, Textual's Monochrome)."""
    from textual.color import Color

    found = set()
    for strip in app.screen._compositor.render_strips():
        for line_filter in app._filters:
            strip = strip.apply_filter(line_filter, Color(0, 0, 0))
        for segment in strip:
            for colour in (segment.style.color, segment.style.bgcolor) if segment.style else ():
                rgb = colour.get_truecolor() if colour is not None else None
                if rgb is not None and not rgb.red == rgb.green == rgb.blue:
                    found.add(tuple(rgb))
    return found


@run_async
async def test_without_no_color_the_frame_has_colours(tmp_path):
    """The other side of the NO_COLOR test: the same frame in colour (the check can see colour)."""
    app, fakes = fake_app(tmp_path, script=demo_script())
    assert not app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, fakes)
        await settle(pilot)
        assert _colours_drawn(app)


@run_async
async def test_new_run_after_the_end_goes_through_the_launcher(tmp_path):
    app, fakes = fake_app(tmp_path, script=demo_script(), auto_finish=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.status == "completed" and not app.run_active)
        await settle(pilot)
        assert "n New run" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        # the launcher shows the last run's config again; Enter in a field starts the next run
        assert app.screen.query_one("#f-lr").value == "0.001"
        app.screen.query_one("#f-lr").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(fakes) == 2 and app.status == "completed")
        assert app.dashboard is not None and app.dashboard.is_mounted


@run_async
async def test_several_viewers_pace_the_redraws_and_the_header_counts_them(tmp_path):
    from tui_train.tui.screens.dashboard_screen import MAX_PACE, PANEL_INTERVAL
    from tui_train.tui.widgets.run_header import RunHeader

    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        dash = app.dashboard
        base = [p.min_interval for p in dash.plots]
        assert dash.pace == 1 and "viewers" not in str(app.screen.query_one(RunHeader).query_one("#run-info").render())
        fakes[0].viewers = 3  # what a RemoteTrainer learns from the endpoint's viewers message
        await wait_for(pilot, lambda: dash.pace == 3, what="pace 3")
        assert [p.min_interval for p in dash.plots] == [b * 3 for b in base]
        await settle(pilot)
        assert "3 viewers" in str(app.screen.query_one(RunHeader).query_one("#run-info").render())
        fakes[0].viewers = 100
        await wait_for(pilot, lambda: dash.pace == MAX_PACE, what="pace capped")
        assert [p.min_interval for p in dash.plots] == [b * MAX_PACE for b in base]
        fakes[0].viewers = 1  # the others left: back to the full rate
        await wait_for(pilot, lambda: dash.pace == 1, what="pace 1")
        assert [p.min_interval for p in dash.plots] == base and PANEL_INTERVAL * dash.pace == PANEL_INTERVAL
        await pilot.press("space")  # keys are not paced
        await wait_for(pilot, lambda: fakes[0].commands[-1:] == [C.Pause()])


@run_async
async def test_the_time_to_target_is_shown_when_the_run_ends(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, fakes)
        target = {"expression": "val_accuracy >= 0.99", "metric": "val_accuracy", "op": ">=", "value": 0.99,
                  "reached": True, "reached_value": 0.991, "step": 340, "epoch": 3}
        fakes[0].emit(E.RunFinished(status="completed", run_dir="runs/fake-run", summary={
            "status": "completed", "reason": "target reached: val_accuracy 0.991 >= 0.99", "target": target,
            "time_to_target": 12.34, "wall_to_target": 15.6}))
        await wait_for(pilot, lambda: app.status == "completed")
        await settle(pilot)
        assert "val_accuracy >= 0.99 in 12.3s train / 15.6s wall, epoch 4" in screen_text(app)


@run_async
async def test_a_target_not_reached_says_so(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        target = {"expression": "val_loss <= 0.01", "reached": False}
        fakes[0].emit(E.RunFinished(status="completed", run_dir="runs/fake-run", summary={
            "status": "completed", "target": target, "time_to_target": None, "wall_to_target": None}))
        await wait_for(pilot, lambda: app.status == "completed")
        await settle(pilot)
        assert "val_loss <= 0.01: not reached" in screen_text(app)


@run_async
async def test_the_app_settles_its_start_up_heap(tmp_path):
    """bench (e): a full garbage collection of the viewer's start-up objects paused it for 100-150 ms
    between a key and its acknowledgement; the app moves them to the permanent generation when it
    mounts, so that full collections scan only what came later."""
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app, fakes = fake_app(tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot, fakes)
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # the imports' objects: torch's, Textual's, ours
            tracked = len(gc.get_objects())
            assert tracked < frozen  # what a full collection still scans: much less than before
    finally:
        gc.unfreeze()
