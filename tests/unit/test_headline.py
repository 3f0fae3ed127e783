"""The headline metric per task, written once (core.headline, issue 22 item 6): the dashboard's
metric plot and epoch table, the event log, the overlay and the runs list's test column use it."""

from __future__ import annotations

from tui_train.core.headline import HEADLINE_METRICS, headline_in_steps, headline_metric, headline_value
from tui_train.core.rundir.runs import RunRow
from tui_train.tui import format as fmt
from tui_train.tui.screens.runs_screen import COLUMNS, cells


def test_each_task_has_a_headline_and_every_headline_a_name():
    assert headline_metric("classification") == "accuracy"
    assert headline_metric("regression") == "r2"
    assert headline_metric("anything else") == "r2"  # not classification: regression, as in core
    for keys in HEADLINE_METRICS.values():
        for key in keys:
            assert key in fmt.METRIC_TITLES and key in fmt.METRIC_SHORT


def test_regression_falls_back_to_mae_when_its_metrics_hold_no_r2():
    assert headline_metric("regression", {"loss": 1.0, "r2": 0.5}) == "r2"
    assert headline_metric("regression", {"loss": 1.0}, {"r2": 0.5}) == "r2"  # any of them
    assert headline_metric("regression", {"loss": 1.0, "mae": 0.3}) == "mae"
    assert headline_metric("regression", {"loss": 1.0}) == "mae"  # as the epoch table: r2, else mae
    assert headline_metric("classification", {"loss": 1.0}) == "accuracy"


def test_the_value_for_an_unknown_task_is_the_first_headline_it_holds():
    assert headline_value(None, {"loss": 0.3, "accuracy": 0.9}) == ("accuracy", 0.9)
    assert headline_value(None, {"loss": 0.3, "mse": 0.1, "r2": 0.8}) == ("r2", 0.8)
    assert headline_value(None, {"loss": 0.3, "accuracy": "n/a", "r2": 0.8}) == ("r2", 0.8)
    assert headline_value(None, {"loss": 0.3}) == ("accuracy", None)
    assert headline_value("regression", {"accuracy": 0.9}) == ("r2", None)


def test_the_runs_list_shows_the_headline_test_number():
    def test_cell(test: dict) -> str:
        row = RunRow(run_dir="/r/x", name="x", status="completed", live=False, preset="p", started=None, duration=None,
                     epochs=1, epochs_planned=1, best={}, test=test, hyperparameters={})
        return str(cells(row)[[key for _, key, _ in COLUMNS].index("test")])  # by name: columns come and go

    assert test_cell({"accuracy": 0.91, "loss": 0.3}) == "91.00%"
    assert test_cell({"r2": 0.5, "mae": 0.2}) == fmt.num(0.5)
    assert test_cell({"loss": 0.3}) == fmt.DASH
    assert RunRow(run_dir="/r/x", name="x", status="completed", live=False, preset="p", started=None, duration=None,
                  epochs=1, epochs_planned=1, best={}, test={"r2": 0.5}, hyperparameters={}).test_metric == 0.5


def test_only_classification_measures_its_headline_at_every_step():
    assert headline_in_steps("classification") and not headline_in_steps("regression")
