"""Several runs' curves on shared axes: one colour per run, x by step, epoch or relative time, smoothing,
a log y axis.

Each run's curves are read once from its files (:func:`core.rundir.history.read_history`, step metrics
thinned to :data:`MAX_POINTS`) and cached per run (:func:`load_curves`); a redraw only picks the
x column, smooths when asked (cached too) and decimates to about twice the widget's width, so eight
overlaid runs cost a plotext build on a few thousand points. A fork continues its parent's step
count, so the two line up by step as they are.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from tui_train.core import events as E
from tui_train.core.headline import headline_in_steps, headline_metric
from tui_train.tui.series import decimate, is_finite
from tui_train.tui.widgets.metric_plot import MetricPlot

PALETTE: tuple[int, ...] = (33, 208, 34, 197, 135, 178, 37, 167, 99, 142, 45, 205)
"""256-colour codes, distinct on dark and light themes (plotext takes the number, Rich ``color(N)``)."""

AXES = ("step", "epoch", "time")
"""What the x axis can show: optimizer steps, epochs (fractional), training time since the start."""

MAX_POINTS = 2000
"""Step metrics read per run (thinned, spikes kept) and the most points a run's line is drawn with."""

SMOOTHING = 0.02
"""The smoothing time constant, as a fraction of the x span shown (about TensorBoard's weight 0.95
on 1000 evenly spaced points)."""

SERIES = ("train_loss", "val_loss", "train_metric", "val_metric")
"""The curves read for each run ('metric': accuracy, or R² for regression)."""

CACHE_SIZE = 32
"""Runs whose curves stay in memory (:func:`load_curves`)."""


def run_color(name: str) -> int:
    """The colour a run gets: from a stable hash of its folder name (the same in every session)."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]


def run_colors(names: list[str]) -> dict[str, int]:
    """A colour per run: its own (:func:`run_color`) unless a run before it in name order took it,
    then the next free one; the same set of runs gets the same colours every time."""
    taken: set[int] = set()
    out: dict[str, int] = {}
    for name in sorted(set(names)):
        i = PALETTE.index(run_color(name))
        if len(taken) < len(PALETTE):
            while PALETTE[i] in taken:
                i = (i + 1) % len(PALETTE)
        out[name] = PALETTE[i]
        taken.add(PALETTE[i])
    return out


def ema(xs: list[float], ys: list[float], tau: float) -> list[float]:
    """TensorBoard's debiased exponential moving average, weighted by the gaps between the points:
    each point decays the average by ``exp(-gap / tau)``, so thinned or unevenly logged points count
    for the x span they cover, not for their number. The first point gets the first gap's weight."""
    if not ys or not tau > 0:
        return list(ys)
    first_gap = xs[1] - xs[0] if len(xs) > 1 else tau
    num = den = 0.0
    prev = xs[0] - first_gap
    out = []
    for x, y in zip(xs, ys):
        decay = math.exp(-max(0.0, x - prev) / tau)
        num = num * decay + (1.0 - decay) * y
        den = den * decay + (1.0 - decay)
        out.append(num / den if den > 0 else y)
        prev = x
    return out


@dataclass
class RunCurves:
    """One run's curves: points (step, epoch, seconds, value) per series of :data:`SERIES`."""

    name: str
    """The run's folder name (its legend label and its colour's seed)."""
    task: str = "classification"
    """From RunStarted: which metric the second plot shows."""
    points: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=lambda: {s: [] for s in SERIES})
    """Series -> (step, epoch, training seconds, value), finite values only, in step order."""
    _xy: dict[tuple, tuple[list[float], list[float]]] = field(default_factory=dict, repr=False)

    def xy(self, series: str, axis: str, smooth_tau: float = 0.0) -> tuple[list[float], list[float]]:
        """(xs, ys) of ``series`` against ``axis`` (one of :data:`AXES`), smoothed when ``smooth_tau`` > 0;
        computed once per combination."""
        key = (series, axis, round(smooth_tau, 12))
        cached = self._xy.get(key)
        if cached is None:
            col = AXES.index(axis)
            pts = self.points.get(series, [])
            xs, ys = [p[col] for p in pts], [p[3] for p in pts]
            cached = (xs, ema(xs, ys, smooth_tau) if smooth_tau > 0 else ys)
            self._xy[key] = cached
        return cached

    def span(self, axis: str) -> tuple[float, float] | None:
        """(first, last) x of the run's points on ``axis``, None when it has none."""
        col = AXES.index(axis)
        xs = [p[col] for s in SERIES for p in self.points[s][:1] + self.points[s][-1:]]
        return (min(xs), max(xs)) if xs else None


def curves_from_events(name: str, events: list[E.Event]) -> RunCurves:
    """A run's curves from its history (train loss and accuracy per logged step, validation per
    epoch or on demand; regression: R² from the epochs)."""
    run = RunCurves(name)
    epoch_x = elapsed = 0.0

    def add(series: str, step: int, epoch: float, value: object) -> None:
        if is_finite(value) and is_finite(step) and is_finite(epoch) and is_finite(elapsed):
            run.points[series].append((float(step), float(epoch), float(elapsed), float(value)))

    for ev in events:
        if isinstance(ev, E.RunStarted):
            run.task = ev.task
        elif isinstance(ev, E.StepMetrics):
            epoch_x, elapsed = ev.epoch + ev.epoch_progress, ev.elapsed if is_finite(ev.elapsed) else elapsed
            add("train_loss", ev.step, epoch_x, ev.loss)
            if headline_in_steps(run.task):
                add("train_metric", ev.step, epoch_x, ev.accuracy)
        elif isinstance(ev, E.EpochMetrics):
            epoch_x = float(ev.epoch + 1)
            if not headline_in_steps(run.task):  # else the train curve came with the steps
                add("train_metric", ev.step, epoch_x, ev.train.get(headline_metric(run.task)))
            add("val_loss", ev.step, epoch_x, ev.val.get("loss"))
            add("val_metric", ev.step, epoch_x, ev.val.get(headline_metric(run.task)))
        elif isinstance(ev, E.ValidationMetrics):
            add("val_loss", ev.step, epoch_x, ev.metrics.get("loss"))
            add("val_metric", ev.step, epoch_x, ev.metrics.get(headline_metric(run.task)))
    for pts in run.points.values():
        pts.sort(key=lambda p: p[0])  # a resumed run may log a step twice: keep the order by step
    return run


_cache: OrderedDict[str, tuple[tuple, RunCurves]] = OrderedDict()
_cache_lock = threading.Lock()


def _files_key(run_dir: Path) -> tuple:
    from tui_train.core.run.runlog import OTHER_METRICS_NAME, STEPS_NAME

    key = []
    for name in ("events.jsonl", "metrics.jsonl", STEPS_NAME, OTHER_METRICS_NAME):
        try:
            st = (run_dir / name).stat()
            key.append((st.st_size, st.st_mtime_ns))
        except OSError:
            key.append(None)
    return tuple(key)


def load_curves(run_dir: Path) -> RunCurves:
    """A run's curves, read from its files once and cached (read again when its files changed)."""
    from tui_train.core.rundir.history import read_history

    run_dir = Path(run_dir)
    key = _files_key(run_dir)
    with _cache_lock:
        hit = _cache.get(str(run_dir))
        if hit is not None and hit[0] == key:
            _cache.move_to_end(str(run_dir))
            return hit[1]
    curves = curves_from_events(run_dir.name, read_history(run_dir, step_limit=MAX_POINTS))
    with _cache_lock:
        _cache[str(run_dir)] = (key, curves)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return curves


def log_ticks(lo: float, hi: float, count: int) -> tuple[list[float], list[str]]:
    """Ticks of a log y axis spanning [lo, hi] in log10 units: the powers of ten inside (every
    k-th when there are more than ``count``), or 1-2-5 steps when fewer than two fit; labels in the
    data's units (0.01, 0.1, 1)."""
    count = max(2, count)
    ticks = [float(e) for e in range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)]
    if len(ticks) > count:
        ticks = ticks[::math.ceil(len(ticks) / count)]
    if len(ticks) < 2:
        ticks = [t for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)
                 if lo - 1e-9 <= (t := e + math.log10(m)) <= hi + 1e-9]
        if len(ticks) > count:
            ticks = ticks[::math.ceil(len(ticks) / count)]
    if len(ticks) < 2:
        ticks = [lo, hi]
    return ticks, [f"{10.0 ** t:.3g}" for t in ticks]


def positive(xs: list[float], ys: list[float]) -> tuple[list[float], list[float], int]:
    """The points of (xs, ys) with y > 0 (what a log axis can show), and how many were left out."""
    if all(y > 0 for y in ys):
        return xs, ys, 0
    kept = [(x, y) for x, y in zip(xs, ys) if y > 0]
    return [x for x, _ in kept], [y for _, y in kept], len(ys) - len(kept)


def time_unit(seconds: float) -> tuple[str, float]:
    """('s' | 'min' | 'h', divisor) for an x axis of training time reaching ``seconds``."""
    if seconds >= 3 * 3600:
        return "h", 3600.0
    if seconds >= 300:
        return "min", 60.0
    return "s", 1.0


class OverlayPlot(MetricPlot):
    """One metric of several runs: each run's train line (braille) and validation points (dots),
    in the run's colour, against a shared x axis."""

    def __init__(self, title: str, kind: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(title, min_interval=0.0, id=id, classes=classes)
        self.kind = kind
        """'loss' or 'metric' (accuracy, or R² for regression runs)."""
        self.runs: list[RunCurves] = []
        """The runs drawn, in legend order."""
        self.line_colors: dict[str, int] = {}
        """Run name -> plotext colour (:func:`run_colors`)."""
        self.axis = "step"
        """The x axis: one of :data:`AXES`."""
        self.smooth = False
        """Draw the train lines smoothed (:func:`ema`)."""
        self.log_y = False
        """A log10 y axis (points with y <= 0 are left out: :attr:`left_out`)."""
        self.left_out = 0
        """Points with y <= 0 that the last :meth:`drawn_lines` left out for the log axis."""
        self._version = 0

    def set_runs(self, runs: list[RunCurves], colors: dict[str, int]) -> None:
        """The runs to draw and their colours."""
        self.runs, self.line_colors = list(runs), dict(colors)
        self._version += 1
        self.redraw(force=True)

    def set_view(self, axis: str, smooth: bool, log_y: bool | None = None) -> None:
        """Change the x axis, the smoothing and (not None) the log y axis (redraws at once)."""
        if axis not in AXES:
            raise ValueError(f"axis: {axis!r} is not one of {', '.join(AXES)}")
        self.axis, self.smooth = axis, smooth
        if log_y is not None:
            self.log_y = log_y
        self.redraw(force=True)

    def _key(self) -> tuple:
        return (self.title, self.size.width, self.size.height, self.axis, self.smooth, self.log_y, self._version)

    def x_span(self) -> tuple[float, float] | None:
        """The x range every drawn run fits in (None with no points)."""
        spans = [s for s in (r.span(self.axis) for r in self.runs) if s is not None]
        return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None

    def drawn_lines(self, max_points: int) -> list[tuple[str, list[float], list[float], list[float], list[float]]]:
        """(run name, train xs, train ys, val xs, val ys) as drawn, x in the axis' unit, y in the
        data's (on a log axis: the points with y > 0 only, the others counted in :attr:`left_out`)."""
        span = self.x_span()
        tau = SMOOTHING * (span[1] - span[0]) if self.smooth and span and span[1] > span[0] else 0.0
        scale = time_unit(span[1])[1] if self.axis == "time" and span else 1.0
        out = []
        self.left_out = 0
        for run in self.runs:
            xs, ys = run.xy(f"train_{self.kind}", self.axis, tau)
            vx, vy = run.xy(f"val_{self.kind}", self.axis)
            if self.log_y:  # before decimating: a dropped point must not take a kept one's place
                xs, ys, n = positive(xs, ys)
                vx, vy, m = positive(vx, vy)
                self.left_out += n + m
            xs, ys = decimate(xs, ys, max_points)
            vx, vy = decimate(vx, vy, max_points)
            out.append((run.name, [x / scale for x in xs], ys, [x / scale for x in vx], vy))
        return out

    def axis_label(self) -> str:
        """How the x axis is named in the title."""
        if self.axis != "time":
            return self.axis
        span = self.x_span()
        return f"time ({time_unit(span[1] if span else 0.0)[0]})"

    def _build(self) -> None:
        plt = self.plt
        plt.clear_data()
        max_points = min(MAX_POINTS, max(16, 2 * self.size.width))
        xs_all: list[float] = []
        ys_all: list[float] = []
        for name, xs, ys, vx, vy in self.drawn_lines(max_points):
            color = self.line_colors.get(name, PALETTE[0])
            if self.log_y:  # drawn as log10 of the values, the ticks labelled in the values (log_ticks)
                ys, vy = [math.log10(y) for y in ys], [math.log10(y) for y in vy]
            if xs:
                plt.plot(xs, ys, marker="braille", color=color)
            if vx:
                plt.scatter(vx, vy, marker="dot", color=color)
            for x in (xs, vx):
                if x:
                    xs_all += (x[0], x[-1])
            for y in (ys, vy):
                if y:
                    ys_all += (min(y), max(y))
        title = f"{self.title} · x: {self.axis_label()}" + (" · smoothed" if self.smooth else "")
        if self.log_y:
            title += " · log y" + (f" ({self.left_out:,} ≤ 0 left out)" if self.left_out else "")
        empty = f"{self.title}: no values > 0 for a log y axis" if self.log_y and self.left_out else f"{self.title}: no data"
        span = self._axes(xs_all, ys_all, empty)
        if span is not None and self.log_y:
            lo, hi = min(ys_all), max(ys_all)
            lo, hi = (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)  # one value: half a decade either side
            plt.ylim(lo, hi)
            plt.yticks(*log_ticks(lo, hi, max(2, min(5, (self.size.height - 3) // 2))))
            plt.title(title)
        elif span is not None:
            plt.title(title + (f" {span[3]}" if span[3] else ""))
