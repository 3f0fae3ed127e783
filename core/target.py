"""``train.target``: end the run once a metric reaches a value (``"val_accuracy >= 0.99"``).

The names a target may use are the metrics the engine records for the task (:data:`METRICS`;
tests/unit/test_target.py checks that evaluation and the epoch's train metrics report exactly
these). ``val_*`` are checked where they are produced, at each scheduled validation (every
``train.val_every`` epochs, and the last partial epoch's); ``train_*`` at each epoch's end, on the
epoch's train metrics (the epoch table's numbers, steadier than one log interval's). The direction
is the metric's own: ``>=`` for the ones where higher is better, ``<=`` for losses and errors.
No torch here: the config validates targets before anything heavy is imported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tui_train.core.errors import ConfigError

METRICS = {"classification": {"val": ("loss", "accuracy", "precision", "recall", "f1"), "train": ("loss", "accuracy")},
           "regression": {"val": ("loss", "mse", "mae", "r2"), "train": ("loss",)}}
"""Per task, the metrics validation reports (core.train.metrics) and the epoch's train metrics report
(core.train.meters.EpochTotals): the names a target may use, with the prefix ``val_`` or ``train_``."""

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "r2")
"""Metrics a target reaches from below (``>=``); the others (loss, mse, mae) from above (``<=``)."""

_EXPRESSION = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(>=|<=)\s*([^\s<>=]+)\s*$")


@dataclass(frozen=True)
class Target:
    """A parsed target: ``metric op value``."""

    metric: str
    """The metric with its split, e.g. 'val_accuracy' or 'train_loss'."""
    op: str
    """'>=' or '<='."""
    value: float
    """The value to reach."""

    @property
    def split(self) -> str:
        """'val' or 'train'."""
        return self.metric.partition("_")[0]

    @property
    def name(self) -> str:
        """The metric without its split: the key in the split's metrics dict ('accuracy')."""
        return self.metric.partition("_")[2]

    @property
    def text(self) -> str:
        """The target as a user writes it: 'val_accuracy >= 0.99'."""
        return f"{self.metric} {self.op} {self.value:g}"

    def reached(self, metrics: dict) -> float | None:
        """The metric's value when ``metrics`` (one split's, e.g. a validation's) reach the target, else None."""
        v = metrics.get(self.name)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return None
        return float(v) if (v >= self.value if self.op == ">=" else v <= self.value) else None


def allowed_metrics(task: str | None) -> tuple[str, ...]:
    """The target metric names for ``task`` (None: a user dataset whose task is not known yet: any task's)."""
    names: list[str] = []
    for t, splits in METRICS.items():
        if task in (None, t):
            names += [f"{split}_{m}" for split, ms in splits.items() for m in ms if f"{split}_{m}" not in names]
    return tuple(names)


def _allowed_text(task: str | None) -> str:
    ups = [m for m in allowed_metrics(task) if m.partition("_")[2] in HIGHER_IS_BETTER]
    downs = [m for m in allowed_metrics(task) if m not in ups]
    for_task = f" for a {task} task" if task else ""
    return (f"'METRIC >= NUMBER' with {', '.join(ups)}, or 'METRIC <= NUMBER' with {', '.join(downs)}{for_task}; "
            "\"\" for none")


def parse_target(text: str, task: str | None = None, where: str = "train.target") -> Target | None:
    """Parse ``text`` strictly (None when it is empty: no target). ``task`` ('classification',
    'regression', or None when not known yet) limits the metric names. Raises ConfigError naming
    ``where`` (the key, after the file it came from), what was given and what is allowed."""
    if not text.strip():
        return None

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{where} {text!r}: {why} (allowed: {_allowed_text(task)})")

    m = _EXPRESSION.match(text)
    if m is None:
        raise bad("not a target expression")
    metric, op, number = m.groups()
    if metric not in allowed_metrics(None):
        raise bad(f"unknown metric {metric!r}")
    if metric not in allowed_metrics(task):
        raise bad(f"{metric} is not recorded for a {task} task")
    try:
        value = float(number)
    except ValueError:
        raise bad(f"{number!r} is not a number") from None
    if not math.isfinite(value):
        raise bad(f"{number!r} is not a finite number")
    name = metric.partition("_")[2]
    want = ">=" if name in HIGHER_IS_BETTER else "<="
    if op != want:
        raise bad(f"{metric} is reached from {'below' if want == '>=' else 'above'}: use {want}")
    if name in ("accuracy", "precision", "recall", "f1") and not 0.0 <= value <= 1.0:
        raise bad(f"{name} is a fraction: {value:g} is outside 0..1 (99% is 0.99)")
    if name == "r2" and value > 1.0:
        raise bad(f"r2 is at most 1, got {value:g}")
    if name in ("loss", "mse", "mae") and value < 0.0:
        raise bad(f"{name} is never negative, got {value:g}")
    return Target(metric, op, value)


__all__ = ["HIGHER_IS_BETTER", "METRICS", "Target", "allowed_metrics", "parse_target"]
