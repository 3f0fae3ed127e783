"""c on the dashboard: the confusion matrix and the mistakes, on a scripted fake trainer."""

from __future__ import annotations

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import events as E
from tui_train.tui.halfblock import UPPER_HALF
from tui_train.tui.screens.confusion_screen import NO_VALIDATION, NOT_CLASSIFICATION, ConfusionScreen
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.widgets.confusion_grid import ConfusionGrid
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.mistake_gallery import MistakeGallery


async def started(pilot, fakes):
    await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and pilot.app.status == "running", what="run start")


def grid_text(app) -> str:
    return str(app.screen.query_one(ConfusionGrid).render())


def gallery_plain(app) -> str:
    gallery = app.screen.query_one(MistakeGallery)
    return gallery.render().plain


@run_async
async def test_c_opens_the_grid_and_the_gallery_follows_the_run_and_escape_closes(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot, fakes)
        await pilot.press("c")  # no validation yet: the screen says so
        await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="confusion screen")
        assert NO_VALIDATION in grid_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back to the dashboard")

        await pilot.press("v")  # the fake validates as the engine does: its matrix, then its metrics
        await wait_for(pilot, lambda: app.dashboard.confusion is not None, what="the confusion matrix")
        await settle(pilot)
        log = "\n".join(app.dashboard.query_one(EventLog).lines_text)
        assert "confusion matrix: lowest recall even 93.00% · c shows it and 1 mistake\n" in log + "\n"  # c is named (not in the footer)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="confusion screen")
        await settle(pilot)
        grid = grid_text(app)
        assert "even" in grid and "odd" in grid and "93" in grid and "93.0%" in grid and "recall" in grid
        assert "even → odd" in gallery_plain(app) and UPPER_HALF in gallery_plain(app)
        text = screen_text(app)
        assert "confusion matrix" in text and "accuracy 93.00% of 200" in text and "1 mistake shown" in text

        # a new validation while the screen is open redraws it
        fakes[0].emit(E.ConfusionMatrix(step=99, epoch=3, num_classes=2, confusion=((50, 50), (0, 100)),
                                        classes=("even", "odd")))
        await wait_for(pilot, lambda: "50.0%" in grid_text(app), what="the new matrix")
        assert "no misclassified samples" in gallery_plain(app)
        assert "validation at step 99 (epoch 4)" in screen_text(app)

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back to the dashboard")
        fakes[0].finish()


@run_async
async def test_a_hundred_classes_render_in_80x24_and_scroll(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, fakes)
        n = 100
        fakes[0].emit(E.ConfusionMatrix(step=5, epoch=0, num_classes=n,
                                        confusion=tuple(tuple(9 if i == j else 1 for j in range(n)) for i in range(n)),
                                        classes=tuple(f"class-{i}" for i in range(n))))
        await wait_for(pilot, lambda: app.dashboard.confusion is not None, what="the confusion matrix")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="confusion screen")
        await settle(pilot)
        box = app.screen.query_one("#confusion-grid-box")
        assert box.max_scroll_x > 0 and box.max_scroll_y > 0  # wider and taller than the screen: it scrolls
        assert "class-0" in screen_text(app) and "arrows scroll" in screen_text(app)
        await pilot.press("right", "down")
        await settle(pilot)
        assert box.scroll_x > 0 and box.scroll_y > 0  # the grid has the focus: arrows scroll it
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back to the dashboard")
        fakes[0].finish()


@run_async
async def test_a_replayed_run_shows_its_latest_matrix_and_mistakes_from_its_files(tmp_path):
    from tests.functional.test_runs_screen import cursor_to, on_runs, runs_app
    from tui_train.core.run.runlog import RunLog
    from tui_train.tui.screens.runs_screen import ReplayDashboard

    run_dir = tmp_path / "runs" / "20260101-000000-digits"
    run_dir.mkdir(parents=True)
    log = RunLog(run_dir)
    log.open("")
    log.write(E.RunStarted(run_dir=str(run_dir), preset="digits", device="cpu", task="classification", epochs=2,
                           steps_per_epoch=10, total_steps=20, train_size=320, val_size=40, test_size=40, num_params=10,
                           model="mlp"))
    stroke = "AP//AAD//wAA//8AAP//AA=="  # 4x4: a vertical bar
    for epoch, wrong in ((0, 3), (1, 1)):
        log.write(E.ConfusionMatrix(step=10 * (epoch + 1), epoch=epoch, num_classes=2, confusion=((20 - wrong, wrong), (0, 20)),
                                    classes=("left", "right"),
                                    mistakes=({"index": 7, "true": 0, "pred": 1, "height": 4, "width": 4, "channels": 1,
                                               "pixels": stroke},) * wrong))
    summary = {"status": "completed", "reason": "all epochs done", "preset": "digits", "steps": 20}
    log.write(E.StatusChanged(status="completed", reason="all epochs done", step=20, cause="end"))
    log.write(E.RunFinished(status="completed", summary=summary, run_dir=str(run_dir)))
    log.close()
    log.write_summary(summary)

    app = runs_app(tmp_path / "runs")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, run_dir)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard) and app.dashboard.confusion is not None
                       and app.dashboard.confusion.step == 20, what="the replay's latest matrix")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="confusion screen")
        await settle(pilot)
        assert "95.0%" in grid_text(app) and "left" in grid_text(app)  # the second validation's: 19 of 20
        assert gallery_plain(app).count("left → right") == 1 and UPPER_HALF in gallery_plain(app)  # from mistakes.json
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard), what="back to the replay")


@run_async
async def test_a_regression_run_says_it_has_no_matrix(tmp_path):
    app, fakes = fake_app(tmp_path, task="regression")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, fakes)
        await pilot.press("v")  # a regression validation sends no ConfusionMatrix
        await wait_for(pilot, lambda: "validation:" in "\n".join(app.dashboard.query_one(EventLog).lines_text), what="validation")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfusionScreen), what="confusion screen")
        assert NOT_CLASSIFICATION in grid_text(app) and app.dashboard.confusion is None
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back to the dashboard")
        fakes[0].finish()
