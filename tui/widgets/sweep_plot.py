"""The sweep metric per epoch of several trials on shared axes, one colour per trial (the Sweep screen).

The values come from the sweep's record (``Trial.values``: the metric after each epoch), never
from the trials' files; the plot is rebuilt only when a curve or the widget's size changed, from at
most about twice the widget's width of points per curve (STYLE.md habit 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_train.tui.series import decimate
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.overlay_plot import PALETTE


def trial_color(number: int) -> int:
    """A trial's colour (256-colour code): the same in the plot and the legend, distinct for any
    :data:`~tui_train.tui.widgets.overlay_plot.PALETTE`-many consecutive trials."""
    return PALETTE[number % len(PALETTE)]


@dataclass(frozen=True)
class TrialCurve:
    """One trial's line: its metric after each epoch."""

    number: int
    """The trial's number (its colour)."""
    values: tuple
    """The metric after epoch 1, 2, ... (None or a non-finite value where there is none: skipped)."""


class SweepPlot(MetricPlot):
    """The metric of several trials against the epoch: a braille line per trial in its colour, with
    a dot at each epoch while there are few."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(title, min_interval=0.0, id=id, classes=classes)
        self.curves: tuple[TrialCurve, ...] = ()
        """The curves drawn, in legend order."""
        self._version = 0

    def set_curves(self, curves: list[TrialCurve] | tuple[TrialCurve, ...]) -> bool:
        """Draw these curves (at once); True when they differ from those drawn."""
        curves = tuple(curves)
        if curves == self.curves:
            return False
        self.curves = curves
        self._version += 1
        self.redraw(force=True)
        return True

    def _key(self) -> tuple:
        return (self.title, self.size.width, self.size.height, self._version)

    def _build(self) -> None:
        plt = self.plt
        plt.clear_data()
        max_points = max(16, 2 * self.size.width)
        xs_all: list[float] = []
        ys_all: list[float] = []
        for curve in self.curves:
            xs, ys = decimate(list(range(1, len(curve.values) + 1)), [v for v in curve.values], max_points)
            if not xs:
                continue
            color = trial_color(curve.number)
            plt.plot(xs, ys, marker="braille", color=color)
            if len(xs) * 4 <= self.size.width:  # few epochs: each one a dot
                plt.scatter(xs, ys, marker="dot", color=color)
            xs_all += (xs[0], xs[-1])
            ys_all += (min(ys), max(ys))
        span = self._axes(xs_all, ys_all, f"{self.title}: no epoch yet")
        if span is not None:
            plt.title(f"{self.title} · x: epoch" + (f" {span[3]}" if span[3] else ""))
