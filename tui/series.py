"""Bounded, plot-ready metric series: min/max-preserving decimation (STYLE.md habit 5).

The full history is on disk (metrics.jsonl); the UI keeps a bounded view of it. Pure Python, no
Textual, so the functions are unit-tested directly (tests/unit/test_tui_helpers.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def is_finite(value: object) -> bool:
    """True for a real, finite number (bools excluded); nan, inf and None are not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def decimate(xs: Sequence[float], ys: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points of (xs, ys), keeping each bucket's minimum and maximum.

    Points whose x or y is not finite are dropped first. The input is split into consecutive
    buckets of (nearly) equal size; each bucket contributes its min and max y in x order, so
    spikes survive (a plain stride would skip them). The first and last points are always kept.
    """
    return _decimate_points([(x, y) for x, y in zip(xs, ys) if is_finite(x) and is_finite(y)], max_points)


def _decimate_points(pts: list[tuple[float, float]], max_points: int) -> tuple[list[float], list[float]]:
    """:func:`decimate` on points already known to be finite."""
    if max_points <= 0 or not pts:
        return [], []
    if len(pts) <= max_points:
        return [p[0] for p in pts], [p[1] for p in pts]
    if max_points < 4:
        picked = [pts[0], pts[-1]][:max_points]
        return [p[0] for p in picked], [p[1] for p in picked]
    first, last = pts[0], pts[-1]
    inner = pts[1:-1]
    buckets = (max_points - 2) // 2
    out = [first]
    n = len(inner)
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = inner[lo:hi]
        if not chunk:
            continue
        ys_chunk = [p[1] for p in chunk]
        lo_y, hi_y = min(ys_chunk), max(ys_chunk)
        i_min, i_max = ys_chunk.index(lo_y), ys_chunk.index(hi_y)
        for i in sorted({i_min, i_max}):
            out.append(chunk[i])
    out.append(last)
    return [p[0] for p in out], [p[1] for p in out]


class Series:
    """An append-only (x, y) series whose memory stays bounded.

    When it grows past ``capacity`` points it is decimated in place to half of that, so appending
    costs O(1) amortized and the shape (extremes included) is kept, like a bucketed reservoir.
    Non-finite values are never stored.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = max(8, capacity)
        """Most points held before the series is compacted."""
        self.xs: list[float] = []
        """x values (steps), increasing."""
        self.ys: list[float] = []
        """y values, all finite."""
        self.version = 0
        """Incremented on every change, so a plot knows when to redraw."""
        self._view_key: tuple[int, int] | None = None
        self._view: tuple[list[float], list[float]] = ([], [])

    def __len__(self) -> int:
        return len(self.xs)

    def append(self, x: float, y: float | None) -> bool:
        """Add a point; returns False (and stores nothing) when x or y is not finite."""
        if not (is_finite(x) and is_finite(y)):
            return False
        self.xs.append(float(x))
        self.ys.append(float(y))
        if len(self.xs) > self.capacity:
            self.xs, self.ys = decimate(self.xs, self.ys, self.capacity // 2)
        self.version += 1
        return True

    def clear(self) -> None:
        """Forget every point."""
        self.xs, self.ys = [], []
        self.version += 1

    def view(self, max_points: int) -> tuple[list[float], list[float]]:
        """A decimated copy with at most ``max_points`` points, for plotting (cached until the
        series or ``max_points`` changes). Costs O(capacity), whatever the history's length."""
        key = (self.version, max_points)
        if key != self._view_key:
            self._view = _decimate_points(list(zip(self.xs, self.ys)), max_points)
            self._view_key = key
        return self._view

    @property
    def last(self) -> float | None:
        """The most recent y, or None when empty."""
        return self.ys[-1] if self.ys else None
