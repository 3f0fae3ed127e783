"""The headline metric: which metric a run, a row, a plot or a table shows first, per task.

One rule for every front end (the dashboard's plot and epoch table, the event log, the overlay,
the runs list's test column): accuracy for classification; R² for regression, or MAE for a
regression run whose metrics hold no R². How a metric is named and formatted on screen is the
UI's (:data:`tui_train.tui.format.METRIC_LABELS`). Plain Python: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping

HEADLINE_METRICS: dict[str, tuple[str, ...]] = {"classification": ("accuracy",), "regression": ("r2", "mae")}
"""Per task, the headline metric's key, then its fallbacks (used when the metrics hold no value for
the keys before them). A task that is not classification is regression, as everywhere in core."""


def _keys(task: str | None) -> tuple[str, ...]:
    if task is None:  # unknown (a row read from a summary): whichever task's metrics these are
        return tuple(k for keys in HEADLINE_METRICS.values() for k in keys)
    return HEADLINE_METRICS["classification" if task == "classification" else "regression"]


def headline_metric(task: str | None, *metrics: Mapping) -> str:
    """The key of ``task``'s headline metric (``accuracy``, ``r2`` or ``mae``). Without ``metrics``:
    the task's first choice. With them: the first of the task's keys that any of them holds, else
    the task's last fallback (a regression epoch without R² shows MAE). ``task`` None: unknown, every
    task's keys are tried in order (accuracy, r2, mae)."""
    keys = _keys(task)
    if not metrics:
        return keys[0]
    for key in keys:
        if any(key in m for m in metrics):
            return key
    return keys[-1]


def headline_in_steps(task: str | None) -> bool:
    """Whether the headline is measured at every logged step (classification's accuracy rides on
    StepMetrics) rather than only per epoch and evaluation (regression's R²: its train value, when
    there is one, comes with EpochMetrics)."""
    return headline_metric(task) == "accuracy"


def headline_value(task: str | None, metrics: Mapping) -> tuple[str, float | None]:
    """(key, value) of the headline metric in ``metrics``: the first of ``task``'s keys that holds a
    number (value None, with the first choice's key, when none does)."""
    keys = _keys(task)
    for key in keys:
        v = metrics.get(key)
        if isinstance(v, int | float):
            return key, float(v)
    return keys[0], None
