"""A loop's own series on the dashboard (issue 23: "any other key gets its own series"): the plot of
the Scalars a loop of the user's own sends, its names literal, NaN kept from the widgets; the
built-in loop's dashboard without it; a real ``tui_train.init`` loop attached through its endpoint
(core.live.remote.RemoteTrainer) and its replay from the files.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import events as E
from tui_train.core.testing import demo_script
from tui_train.tui.app import build_app
from tui_train.tui.screens.runs_screen import ReplayDashboard, RunsScreen
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.scalars_plot import MAX_LINES, ScalarsPlot

ODD = "[/bold]"
"""A name that is markup to Rich: shown as it is, or a MarkupError would take the app down."""

ESCAPED = "\x1b[31mred\x1b[0m"
"""A name with an ANSI colour code: shown as the escape's characters, never as colour."""

TIMEOUT = 60.0


def odd_script() -> list[E.Event]:
    """The demo run, with series of the loop's own: odd names, NaN and inf among the values, and
    more names than are plotted."""
    extra = {f"extra_{i}": float(i) for i in range(MAX_LINES)}
    return demo_script() + [
        E.Scalars(step=100, epoch=0, values={"grad_norm": 1.5, ODD: math.nan, ESCAPED: 0.25}),
        E.Scalars(step=200, epoch=1, values={"grad_norm": math.inf, ODD: 2.0, ESCAPED: 0.5}),
        E.Scalars(step=300, epoch=2, values={"grad_norm": 0.75, ODD: 3.0, ESCAPED: math.nan, **extra}),
    ]


def shown(app, selector: str) -> bool:
    return app.dashboard.query_one(selector).display


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@run_async
async def test_the_loops_own_series_are_plotted_with_their_names_literal(tmp_path, size):
    app, fakes = fake_app(tmp_path, script=odd_script())
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and app.dashboard is not None
                       and app.dashboard.has_class("-scalars"), what="the series came")
        await settle(pilot)
        dash = app.dashboard
        series = dash.query_one(ScalarsPlot)
        assert list(series.names) == ["grad_norm", ODD, ESCAPED, "extra_0", "extra_1", "extra_2"]
        assert list(series.left_out) == ["extra_3", "extra_4", "extra_5"]
        plot = series.plot
        lines = {line.label: line.series for line in plot.lines.values()}
        assert lines["grad_norm"].xs == [100.0, 300.0] and lines[ODD].xs == [200.0, 300.0]  # nan and inf left out
        assert all(math.isfinite(y) for s in lines.values() for y in s.ys)
        assert plot.draw_count >= 1 and "cannot draw" not in str(plot.render())

        legend = "\n".join(line.plain for line in series.legend_lines(200))  # with room for all of it
        assert "grad_norm 0.75" in legend and f"{ODD} 3" in legend and "\\x1b[31mred\\x1b[0m nan" in legend
        assert "not plotted: extra_3, extra_4, extra_5" in legend
        shown_legend = str(dash.query_one("#scalars-legend").render())  # as much as its width takes
        assert ODD in shown_legend and "\\x1b[31" in shown_legend
        text = screen_text(app)
        assert "your series (6 of 9)" in text and ODD in text and "\\x1b[31" in text and "\x1b" not in text

        assert shown(app, "#scalars") and shown(app, "#loss-plot") and shown(app, "#metric-plot")
        if size[0] < 120:  # the LR plot's place; g switches
            assert not shown(app, "#lr-plot")
            await pilot.press("g")
            await settle(pilot)
            assert shown(app, "#lr-plot") and not shown(app, "#scalars")
            await pilot.press("g")
            await settle(pilot)
            assert shown(app, "#scalars") and not shown(app, "#lr-plot")
        else:  # a fourth plot
            assert shown(app, "#lr-plot")
            await pilot.press("g")
            await settle(pilot)
            assert shown(app, "#lr-plot") and shown(app, "#scalars")

        # interventions are marked on it too, and new values keep coming
        fakes[0].emit(E.ValidationMetrics(step=310, epoch=2, metrics={"loss": 0.3, "accuracy": 0.9}))
        fakes[0].emit(E.Scalars(step=320, epoch=2, values={"grad_norm": 0.5, "extra_9": 1.0}))
        await settle(pilot)
        assert (310.0, "validate") in plot.markers and lines["grad_norm"].xs[-1] == 320.0
        assert "extra_9" in series.left_out and plot.title == "your series (6 of 10)"


@run_async
async def test_a_run_without_series_of_its_own_shows_no_plot_of_them(tmp_path):
    # the look is the snapshots' (tests/functional/test_snapshots.py); here: nothing is drawn for it
    app, fakes = fake_app(tmp_path, script=demo_script())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and app.status == "running", what="run start")
        await settle(pilot)
        dash = app.dashboard
        assert not dash.has_class("-scalars") and not shown(app, "#scalars") and shown(app, "#lr-plot")
        assert dash.query_one(ScalarsPlot).plot.draw_count == 0 and "your series" not in screen_text(app)
        await pilot.press("g")  # says why nothing changes
        await settle(pilot)
        assert shown(app, "#lr-plot") and not shown(app, "#scalars")


# --------------------------------------------------------------------------- a real loop, attached


@pytest.fixture
def quick_idle(monkeypatch):
    """As in test_attach_remote.py: the viewer thread reading the socket keeps Pilot from seeing the
    app idle, so each key would wait the 1 s cap; the tests wait on what they need instead."""
    import asyncio

    async def quick(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr("textual.app.wait_for_idle", quick)
    monkeypatch.setattr("textual.pilot.wait_for_idle", quick)


class Loop:
    """A loop of the user's own in a thread: ``tui_train.init``, loss and grad_norm each step, until told to end."""

    def __init__(self, runs_dir: Path) -> None:
        import tui_train

        self.run = tui_train.init(name="own-loop", runs_dir=runs_dir, log_every=2, system_interval=0, signals=False)
        self.end = threading.Event()
        self.steps = 0
        self.thread = threading.Thread(target=self._train, daemon=True)
        self.thread.start()

    def _train(self) -> None:
        try:
            while not self.end.is_set() and not self.run.should_stop:
                self.steps += 1
                self.run.log({"loss": 1.0 / self.steps, "grad_norm": 2.0 + (self.steps % 5) * 0.1})
                self.end.wait(0.01)
        finally:
            self.run.finish()

    def stop(self) -> None:
        self.end.set()
        self.thread.join(30)


@run_async
async def test_a_real_loop_attached_shows_its_grad_norm_and_its_replay_too(tmp_path, quick_idle):
    runs = tmp_path / "runs"
    loop = Loop(runs)
    try:
        run_dir = Path(loop.run.run_dir)
        app = build_app(runs_dir=runs, attach=run_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.dashboard is not None and app.dashboard.has_class("-scalars"), timeout=TIMEOUT,
                           what="the attached dashboard shows the loop's series")
            series = app.dashboard.query_one(ScalarsPlot)
            await wait_for(pilot, lambda: len(series.plot.lines["s0"].series) >= 3, timeout=TIMEOUT, what="grad_norm points")
            await settle(pilot)
            assert list(series.names) == ["grad_norm"] and not series.left_out
            assert all(2.0 <= y <= 2.5 for y in series.plot.lines["s0"].series.ys)
            assert "grad_norm" in screen_text(app) and shown(app, "#scalars") and not shown(app, "#lr-plot")
            loop.stop()
            await wait_for(pilot, lambda: app.status == "completed", timeout=TIMEOUT, what="the run ended")
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=15, what="exit")
    finally:
        loop.stop()
    assert loop.run.status == "completed"

    # the finished run replayed from its files (Runs screen, Enter): the same plot
    replay = build_app(runs_dir=runs, runs_screen=True)
    async with replay.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(replay.screen, RunsScreen) and replay.screen.shown, what="the runs")
        await pilot.press("enter")  # the one run, finished: replayed
        await wait_for(pilot, lambda: isinstance(replay.screen, ReplayDashboard) and replay.dashboard.has_class("-scalars")
                       and replay.dashboard.status == "completed", timeout=TIMEOUT, what="the replay with its series")
        await settle(pilot)
        series = replay.dashboard.query_one(ScalarsPlot)
        assert list(series.names) == ["grad_norm"] and len(series.plot.lines["s0"].series) >= 3
        assert shown(replay, "#scalars") and shown(replay, "#lr-plot")  # 160 columns: a fourth plot
        assert "grad_norm" in screen_text(replay)
        assert isinstance(replay.dashboard.query_one("#scalars-plot"), MetricPlot)


# --------------------------------------------------------------------------- the legend


def test_the_legend_fits_its_lines_and_a_name_a_step_stays_bounded():
    from tui_train.tui.widgets.scalars_plot import LEGEND_LINES, MAX_LEFT_OUT

    series = ScalarsPlot()
    for step in range(1, 500):  # a loop that logs a new name every step
        assert series.add(E.Scalars(step=step, epoch=0, values={"grad_norm": 1.0, f"loss_{step}": math.nan})) == (step == 1)
    assert len(series.names) == MAX_LINES and len(series.left_out) == MAX_LEFT_OUT and series.more_left_out
    assert series.plot.title == f"your series ({MAX_LINES} of {MAX_LINES + MAX_LEFT_OUT}+)"
    for width in (10, 24, 38, 80, 200):
        lines = series.legend_lines(width)
        assert 1 <= len(lines) <= LEGEND_LINES and all(line.cell_len <= width for line in lines), width
    wide = [line.plain for line in series.legend_lines(2000)]
    assert wide[0].startswith("⠒ grad_norm 1  • loss_1 nan") and wide[0].endswith("and more")  # the latest value said, nan too
    narrow = [line.plain for line in series.legend_lines(24)]
    assert narrow[0] == "⠒ grad_no…  • loss_1"  # an entry is never split across lines; names cut shorter instead
