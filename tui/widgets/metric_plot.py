"""A live line plot of one or more metric series against the step, with interventions marked.

Redraws only when its data or size changed, at most every ``min_interval`` seconds, from a
min/max-preserving view about twice the widget's width (STYLE.md habit 5).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui_train.tui.series import Series, is_finite

MARKERS: dict[str, tuple[str, str]] = {
    "lr": ("L", "yellow"),
    "pause": ("P", "cyan"),
    "resume": ("R", "cyan"),
    "checkpoint": ("C", "green"),
    "early_stop": ("E", "red"),
    "nonfinite": ("!", "red"),
    "validate": ("V", "blue"),
}
"""Intervention kind -> (letter drawn at the top of its vertical line, colour)."""

LEGEND_MARKS = {"braille": "⠒", "dot": "•", "hd": "▞", "fhd": "▞", "sd": "█"}
"""How a plotext marker looks, for the legend written into the title."""

MAX_MARKERS = 64
"""Only the most recent interventions are drawn (the event log and events.jsonl keep them all)."""


@dataclass
class Line:
    """One series on a plot."""

    label: str
    """Legend text."""
    marker: str
    """plotext marker: 'braille' for dense step data, a character for sparse epoch data."""
    color: str
    """plotext colour name."""
    series: Series
    """The bounded data."""


def _nice_step(span: float, count: int) -> float:
    raw = span / count
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * mag >= raw * 0.999:
            return m * mag
    return 10.0 * mag


def nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    """About ``count`` round-numbered ticks inside [lo, hi] (0, 0.5, 1, 1.5 rather than 0.0006, 0.57...)."""
    count = max(2, count)
    if not (hi > lo):
        return [lo]
    step = _nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    ticks = [round(k * step, 12) for k in range(first, last + 1)]
    return ticks if len(ticks) >= 2 else [lo, hi]


def y_ticks(lo: float, hi: float, count: int) -> tuple[list[float], list[str], str]:
    """Round ticks with short labels; tiny or huge values get a common unit
    (0.0003 .. 0.001 -> labels 0.4 .. 1 with unit '×1e-3'), so the y axis stays narrow."""
    top = max(abs(lo), abs(hi)) or 1.0
    exp = math.floor(math.log10(top))
    scale = 1.0 if -2 <= exp <= 3 else 10.0 ** exp
    ticks = nice_ticks(lo / scale, hi / scale, count)
    labels = [f"{t:.4g}" for t in ticks]
    return [t * scale for t in ticks], labels, ("" if scale == 1.0 else f"×1e{exp}")


def x_ticks(lo: float, hi: float, count: int) -> tuple[list[float], list[str]]:
    """Round step numbers for the x axis: 0, 500, 1000 (ints when the spacing allows)."""
    ticks = nice_ticks(lo, hi, count)
    labels = [f"{t:.0f}" if abs(t) >= 1 and float(t).is_integer() else f"{t:.3g}" for t in ticks]
    labels = [lab if abs(t) < 10_000 else f"{t / 1000:.4g}k" for t, lab in zip(ticks, labels)]
    return ticks, labels


class MetricPlot(PlotextPlot):
    """Series of (step, value) drawn with plotext; interventions as lettered vertical lines."""

    LEGEND_IN_TITLE = True
    """The lines are named in the title when it has room (False: a widget around the plot names them)."""

    def __init__(self, title: str, *, min_interval: float = 1.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        """Shown above the plot."""
        self.min_interval = min_interval
        """Seconds between two redraws at least (a bounded redraw rate)."""
        self.lines: dict[str, Line] = {}
        """Series name -> line."""
        self.markers: list[tuple[float, str]] = []
        """(step, kind) of the most recent interventions."""
        self._markers_version = 0
        self._drawn_key: tuple | None = None
        self._last_draw = 0.0
        self.draw_count = 0
        """How many times the plot data was rebuilt (tests check that idle plots do not redraw)."""

    def add_line(self, name: str, label: str, *, marker: str = "braille", color: str = "blue", capacity: int = 1024) -> None:
        """Declare a series (before adding points to it)."""
        self.lines[name] = Line(label, marker, color, Series(capacity))

    def set_title(self, title: str) -> None:
        """Change the title (e.g. 'R²' for a regression run)."""
        if title != self.title:
            self.title = title
            self._drawn_key = None

    def add(self, name: str, x: float, y: float | None) -> None:
        """Append a point; non-finite values are dropped here, before any widget sees them."""
        line = self.lines.get(name)
        if line is not None:
            line.series.append(x, y)

    def mark(self, step: float, kind: str) -> None:
        """Mark an intervention at ``step`` (kinds: see :data:`MARKERS`)."""
        if not is_finite(step):
            return
        self.markers.append((float(step), kind))
        del self.markers[:-MAX_MARKERS]
        self._markers_version += 1

    def clear(self) -> None:
        """Forget all data and markers."""
        for line in self.lines.values():
            line.series.clear()
        self.markers.clear()
        self._markers_version += 1

    def _key(self) -> tuple:
        return (self.title, self.size.width, self.size.height, self._markers_version,
                tuple(line.series.version for line in self.lines.values()))

    @property
    def dirty(self) -> bool:
        """Data, markers or size changed since the last redraw."""
        return self._key() != self._drawn_key

    def redraw(self, force: bool = False) -> bool:
        """Rebuild the plot if something changed and the rate limit allows; True if it did."""
        if not self.dirty:
            return False
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return False
        self._last_draw = now
        self._drawn_key = self._key()
        self._build()
        self.draw_count += 1
        self.refresh()
        return True

    def on_resize(self) -> None:
        self.redraw(force=True)

    def _build(self) -> None:
        plt = self.plt
        plt.clear_data()
        legend = " ".join(f"{LEGEND_MARKS.get(line.marker, line.marker)}{line.label}" for line in self.lines.values()
                          if len(line.series) and len(self.lines) > 1 and self.LEGEND_IN_TITLE)
        max_points = max(16, 2 * self.size.width)
        xs_all: list[float] = []
        ys_all: list[float] = []
        for line in self.lines.values():
            xs, ys = line.series.view(max_points)
            if not xs:
                continue
            # no plotext legend: it covers the data in small plots; the title names the lines
            plt.plot(xs, ys, marker=line.marker, color=line.color)
            xs_all += (xs[0], xs[-1])
            ys_all += (min(ys), max(ys))
        span = self._axes(xs_all, ys_all, self.title)
        if span is None:
            return
        x_lo, x_hi, y_hi, unit = span
        title = self.title + (f" {unit}" if unit else "")
        if legend and len(title) + len(legend) + 4 <= self.size.width - 8:
            title += f"  {legend}"
        plt.title(title)
        for step, kind in self.markers:
            if x_lo <= step <= x_hi:
                letter, color = MARKERS.get(kind, ("|", "gray"))
                plt.vline(step, color)
                plt.text(letter, step, y_hi, color=color)

    def _axes(self, xs_all: list[float], ys_all: list[float], empty_title: str) -> tuple[float, float, float, str] | None:
        """Limits and ticks for points spanning ``xs_all`` / ``ys_all``; (x_lo, x_hi, y_hi, the y
        ticks' unit), or None with no points (then the plot is titled ``empty_title``)."""
        plt = self.plt
        if not xs_all:
            plt.title(empty_title)
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            return None
        x_lo, x_hi = min(xs_all), max(xs_all)
        y_lo, y_hi = min(ys_all), max(ys_all)
        if x_hi <= x_lo:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        if y_hi <= y_lo:  # a flat series (constant LR): give plotext a range to draw in
            pad = abs(y_lo) * 0.1 or 1.0
            y_lo, y_hi = y_lo - pad, y_hi + pad
        plt.xlim(x_lo, x_hi)
        plt.ylim(y_lo, y_hi)
        ticks, labels, unit = y_ticks(y_lo, y_hi, max(2, min(5, (self.size.height - 3) // 2)))
        plt.yticks(ticks, labels)
        plt.xticks(*x_ticks(x_lo, x_hi, max(3, min(6, self.size.width // 10))))
        return x_lo, x_hi, y_hi, unit

    def render(self) -> RenderResult:
        if self.size.width < 12 or self.size.height < 5:
            return Text(self.title, no_wrap=True, overflow="ellipsis")
        if self._drawn_key is None:
            self._drawn_key = self._key()
            self._build()
        try:
            # PlotextPlot.render, with a decoder specialised for plotext's output: Rich's generic
            # ANSI decoder took about half of a frame (bench section d).
            plt = self.plt
            plt.plotsize(self.size.width, self.size.height)
            plt._set_size(self.size.width, self.size.height)  # see textual-plotext issue 5
            plt.theme(self._get_plotext_theme_name(self.app.theme))
            return fast_from_ansi(plt.build())
        except Exception as exc:  # noqa: BLE001 - plotext edge cases must never take the dashboard down
            return Text(f"{self.title}: cannot draw ({type(exc).__name__})", no_wrap=True, overflow="ellipsis")


_TOKENS = re.compile(r"((?:\x1b\[[0-9;]*m)+)|([^\x1b]+)|(\x1b)")


@lru_cache(maxsize=1024)
def _style_after(run: str) -> Style | None:
    """The style set by a run of SGR sequences, starting from plotext's reset state."""
    text = Text.from_ansi(run + "x")
    return text.spans[0].style if text.spans else None


def fast_from_ansi(ansi: str) -> Text:
    """``Text.from_ansi`` for plotext's canvas, where every styled segment starts after a reset
    (``ESC[0m``): each run of SGR codes maps to one cached Style (tests check the equivalence)."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    style: Style | None = None
    for m in _TOKENS.finditer(ansi):
        run, plain = m.group(1), m.group(2)
        if run is not None:
            style = _style_after(run)
        elif plain is not None:
            parts.append(plain)
            end = pos + len(plain)
            if style is not None:
                spans.append(Span(pos, end, style))
            pos = end
    return Text("".join(parts), spans=spans, end="")
