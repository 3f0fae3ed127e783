"""The marked runs' curves on shared axes (v on the Runs screen): loss, and accuracy or R², with a
legend; x toggles step / epoch / time, s the smoothing, l a log y axis for the loss, Esc goes back.

The runs' histories are read in a thread (a run from before steps.f64 parses its metrics.jsonl),
once per run (:func:`tui.widgets.overlay_plot.load_curves` caches them); the plots redraw only on
a toggle or a resize.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_train.core.headline import HEADLINE_METRICS, headline_metric
from tui_train.core.rundir.runs import RunRow
from tui_train.tui import format as fmt
from tui_train.tui import keys
from tui_train.tui.format import printable
from tui_train.tui.widgets.overlay_plot import AXES, OverlayPlot, RunCurves, load_curves, run_colors

SWATCH = "━━"
"""A run's line in the legend, in its colour."""


class OverlayScreen(Screen[None]):
    """Loss and accuracy (R² for regression runs) of several runs, one colour each."""

    BINDINGS = keys.bindings(keys.OVERLAY_KEYS)

    DEFAULT_CSS = """
    OverlayScreen { layout: vertical; }
    #overlay-info { height: 1; padding: 0 1; background: $panel; }
    #overlay-plots { height: 1fr; min-height: 6; }
    #overlay-legend { height: auto; max-height: 10; padding: 0 1; border-top: solid $panel-lighten-2; }
    """

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = list(rows)
        """The runs shown, in legend order."""
        self.line_colors: dict[str, int] = run_colors([r.name for r in self.rows])
        """Run folder name -> its colour (the same in every session)."""
        self.axis = "step"
        """The x axis: one of :data:`tui.widgets.overlay_plot.AXES`."""
        self.smooth = False
        """The train lines are smoothed."""
        self.log_y = False
        """The loss plot's y axis is logarithmic (its values <= 0 left out, and counted in its title)."""
        self.curves: list[RunCurves] = []
        """The runs' curves, once read."""
        self.errors: dict[str, str] = {}
        """Run name -> why its history could not be read."""
        self.loaded = threading.Event()
        """Set once every run's curves are read (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="overlay-info")
        with Horizontal(id="overlay-plots"):
            yield OverlayPlot("loss", "loss", id="overlay-loss")
            yield OverlayPlot(self._metric_title(), "metric", id="overlay-metric")
        yield Static(self.legend(), id="overlay-legend")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._info()
        threading.Thread(target=self._load, name="tui-train-overlay", daemon=True).start()

    @property
    def plots(self) -> tuple[OverlayPlot, OverlayPlot]:
        """The loss plot and the metric plot."""
        return self.query_one("#overlay-loss", OverlayPlot), self.query_one("#overlay-metric", OverlayPlot)

    def _metric_title(self, tasks: set[str] | None = None) -> str:
        shown = {headline_metric(task) for task in tasks or {"classification"}}
        return " · ".join(fmt.METRIC_TITLES[k] for k in (headline_metric(t) for t in HEADLINE_METRICS) if k in shown)

    def _load(self) -> None:
        """The loading thread: every run's curves, then back to the UI."""
        curves, errors = [], {}
        for row in self.rows:
            try:
                curves.append(load_curves(Path(row.run_dir)))
            except Exception as exc:  # noqa: BLE001 - an unreadable run is named in the legend, the others drawn
                errors[row.name] = f"{type(exc).__name__}: {exc}"
        try:
            self.app.call_from_thread(self._loaded, curves, errors)
        except RuntimeError:  # the app has gone
            pass

    def _loaded(self, curves: list[RunCurves], errors: dict[str, str]) -> None:
        self.curves, self.errors = curves, errors
        if self.is_attached:
            loss, metric = self.plots
            metric.set_title(self._metric_title({c.task for c in curves} or None))
            for plot in (loss, metric):
                plot.set_runs(curves, self.line_colors)
            self.query_one("#overlay-legend", Static).update(self.legend())
        self.loaded.set()

    def legend(self) -> Text:
        """One line per run: its colour, its folder name, status and lineage."""
        text = Text(no_wrap=True, overflow="ellipsis")
        shown_dirs = {_resolved(r.run_dir) for r in self.rows}
        for i, row in enumerate(self.rows):
            if i:
                text.append("\n")
            text.append(f"{SWATCH} ", style=Style(color=f"color({self.line_colors[row.name]})", bold=True))
            text.append(printable(row.name), style="bold")  # names and statuses from the run's files: literal
            text.append(printable(f"  {row.preset} · {row.status}"))
            if row.parent:
                shown = " (shown)" if _resolved(row.parent) in shown_dirs else ""
                step = f" at step {row.parent_step}" if row.parent_step is not None else ""
                text.append(printable(f" · fork of {Path(row.parent).name}{step}{shown}"), style="italic")
            if row.name in self.errors:
                text.append(printable(f" · cannot read: {self.errors[row.name]}"), style="red")
        return text

    def _info(self) -> None:
        smooth = "smoothing on" if self.smooth else "smoothing off"
        self.query_one("#overlay-info", Static).update(
            Text(f"{len(self.rows)} run{'s' if len(self.rows) != 1 else ''} · x: {self.axis} · {smooth} · "
                 f"loss y: {'log' if self.log_y else 'linear'} · lines: train · dots: validation", no_wrap=True,
                 overflow="ellipsis"))

    def _view(self) -> None:
        loss, metric = self.plots
        loss.set_view(self.axis, self.smooth, self.log_y)
        metric.set_view(self.axis, self.smooth)  # accuracy and R² stay linear (R² goes below 0)
        self._info()

    def action_cycle_axis(self) -> None:
        """x: step -> epoch -> time -> step."""
        self.axis = AXES[(AXES.index(self.axis) + 1) % len(AXES)]
        self._view()

    def action_toggle_smoothing(self) -> None:
        """s: the time-weighted EMA on or off."""
        self.smooth = not self.smooth
        self._view()

    def action_toggle_log_y(self) -> None:
        """l: the loss plot's y axis logarithmic, or linear again."""
        self.log_y = not self.log_y
        self._view()

    def action_back(self) -> None:
        """Esc: back to the runs."""
        self.dismiss(None)


def _resolved(path: str) -> Path:
    """``path`` resolved; as it is when it cannot be (a parent's path read from a file may hold a NUL)."""
    try:
        return Path(path).resolve()
    except (OSError, ValueError):
        return Path(path)
