"""Text formatting for engine values: every number shown passes through here, so nan/inf and
None become a dash or a word and never reach a widget as a float (STYLE.md known traps); every
text from outside (the engine, the user's code, torch, a file, the socket) reaches a widget as
:func:`literal`, never as markup (STYLE.md habit 23)."""

from __future__ import annotations

from rich.text import Text

from tui_train.core.text import printable
from tui_train.tui.series import is_finite

DASH = "–"
"""Shown where a value is missing or not finite."""

STATUS_LABELS = {
    "ready": "READY",
    "starting": "STARTING",
    "running": "RUNNING",
    "paused": "PAUSED",
    "stopping": "STOPPING",
    "completed": "FINISHED",
    "early_stopped": "EARLY STOPPED",
    "stopped": "STOPPED",
    "unsaved": "NOT SAVED",
    "failed": "FAILED",
    "interrupted": "INTERRUPTED",
    "preempted": "PREEMPTED",
}
"""Engine status -> badge text."""


def literal(text: object, style: str = "", **kwargs) -> Text:
    """Text shown as it is: a Rich ``Text`` (a widget, a table cell or a DataTable cell never parses
    it as markup, as it would a ``str``: ``[/x]`` would raise MarkupError, ``[bold]`` vanish) with
    its control characters written as escapes (:func:`core.text.printable`). ``kwargs`` go to
    ``Text`` (``no_wrap``, ``overflow``...). Notifications take ``printable(text)`` with
    ``markup=False``."""
    return Text(printable(text), style=style, **kwargs)


def num(value: object, digits: int = 4) -> str:
    """A compact number: 0.0003 -> '3.000e-04', 0.1234 -> '0.1234'; non-finite -> '–' or 'nan'."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if not is_finite(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            return f"{value:.{max(1, digits - 1)}e}"
        return f"{value:.{digits}g}"
    return str(value)


def lr(value: object) -> str:
    """A learning rate, always in the same short exponent form: 3.00e-04."""
    if not is_finite(value):
        return num(value)
    return f"{float(value):.2e}"


def pct(value: object) -> str:
    """A fraction 0..1 as a percentage: 0.9712 -> '97.12%'."""
    if not is_finite(value):
        return DASH
    return f"{100.0 * float(value):.2f}%"


def duration(seconds: object) -> str:
    """Seconds as 'h:mm:ss' or 'm:ss'."""
    if not is_finite(seconds) or float(seconds) < 0:
        return DASH
    s = round(float(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def seconds(value: object) -> str:
    """A time a person compares (time to target): '0.9s', '42.3s', then 'm:ss'."""
    if not is_finite(value) or float(value) < 0:
        return DASH
    return f"{float(value):.1f}s" if float(value) < 60 else duration(value)


def rate(value: object) -> str:
    """Samples per second: 12345.6 -> '12.3k/s'."""
    if not is_finite(value):
        return DASH
    v = float(value)
    if v >= 1e6:
        return f"{v / 1e6:.1f}M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k/s"
    return f"{v:.0f}/s"


METRIC_TITLES = {"accuracy": "accuracy", "r2": "R²", "mae": "MAE"}
"""A headline metric's name over a plot (which metric is the headline: core.headline)."""
METRIC_SHORT = {"accuracy": "acc", "r2": "R²", "mae": "MAE"}
"""A headline metric's name in a table column or a log line."""


def metric(key: str, value: object) -> str:
    """A metric's value as shown: accuracy as a percentage, any other as a number."""
    return pct(value) if key == "accuracy" else num(value)


def status_label(status: str) -> str:
    """The badge text for an engine status."""
    return STATUS_LABELS.get(status, status.upper().replace("_", " "))


def count(n: int, noun: str, plural: str = "") -> str:
    """``n`` and the noun in the number it takes: (1, 'mistake') -> '1 mistake', (0, 'mistake') -> '0 mistakes'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def first_line(text: str, width: int) -> str:
    """A note as a table cell: its first line, cut to ``width`` characters; an ellipsis says there is more."""
    lines = str(text).strip().splitlines()
    if not lines:
        return ""
    first = lines[0].strip()
    if len(first) > width:
        return first[:max(0, width - 1)] + "…"
    return first + ("…" if len(lines) > 1 else "")


def trial(sweep_name: str, number: int | None) -> str:
    """A sweep trial as a table cell: ``#3 digits-mlp`` ('' for a run that is no trial)."""
    if not sweep_name:
        return ""
    return f"#{number if number is not None else '?'} {sweep_name}"
