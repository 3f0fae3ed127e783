"""train.target (issue 14): parsed strictly against the metrics the engine records; a run that
reaches it ends completed ("target reached") with its time to target in summary.json."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tests.engine_helpers import run_to_end
from tests.unit.test_cli import assert_bad_input
from tests.unit.test_config import assert_one_line
from tui_train.core import events as E
from tui_train.core.config import ConfigError, from_dict, load_config
from tui_train.core.rundir.runs import read_row
from tui_train.core.target import METRICS, Target, allowed_metrics, parse_target
from tui_train.core.train.engine import Trainer
from tui_train.core.train.meters import EpochTotals
from tui_train.core.train.metrics import classification_metrics, regression_metrics
from tui_train.core.train.runtime import check_task_fit
from tui_train.tui.cli import app


def test_the_names_are_what_the_engine_records():
    cls = classification_metrics(torch.eye(3, dtype=torch.long), 0.0, 3)
    reg = regression_metrics(1.0, 1.0, 1.0, 3.0, 5.0, 3)
    assert tuple(cls) == METRICS["classification"]["val"] and tuple(reg) == METRICS["regression"]["val"]
    assert tuple(EpochTotals(1.0, 1.0, 2).train_metrics(True)) == METRICS["classification"]["train"]
    assert tuple(EpochTotals(1.0, 1.0, 2).train_metrics(False)) == METRICS["regression"]["train"]
    assert "val_r2" not in allowed_metrics("classification") and "val_accuracy" not in allowed_metrics("regression")


@pytest.mark.parametrize("text, task, expected", [
    ("val_accuracy >= 0.99", "classification", Target("val_accuracy", ">=", 0.99)),
    ("val_loss<=0.05", "classification", Target("val_loss", "<=", 0.05)),
    ("  train_accuracy >=1  ", "classification", Target("train_accuracy", ">=", 1.0)),
    ("val_f1 >= 9.5e-1", None, Target("val_f1", ">=", 0.95)),
    ("val_r2 >= -0.5", "regression", Target("val_r2", ">=", -0.5)),
    ("val_mae <= 0.2", "regression", Target("val_mae", "<=", 0.2)),
    ("train_loss <= 0", "regression", Target("train_loss", "<=", 0.0)),
    ("", "classification", None),
    ("   ", None, None),
])
def test_good_targets_parse(text, task, expected):
    assert parse_target(text, task) == expected


@pytest.mark.parametrize("text, task, why", [
    ("val_accuracy > 0.99", "classification", "not a target expression"),
    ("val_accuracy = 0.99", "classification", "not a target expression"),
    ("val_accuracy >= 0.99 and val_loss <= 1", "classification", "not a target expression"),
    ("val_accuracy >=", "classification", "not a target expression"),
    (">= 0.9", "classification", "not a target expression"),
    ("accuracy >= 0.9", "classification", "unknown metric 'accuracy'"),
    ("val_acc >= 0.9", "classification", "unknown metric 'val_acc'"),
    ("test_accuracy >= 0.9", "classification", "unknown metric 'test_accuracy'"),
    ("val_r2 >= 0.9", "classification", "not recorded for a classification task"),
    ("val_accuracy >= 0.9", "regression", "not recorded for a regression task"),
    ("train_accuracy >= 0.9", "regression", "not recorded for a regression task"),
    ("val_accuracy >= ninety", "classification", "'ninety' is not a number"),
    ("val_accuracy >= nan", "classification", "not a finite number"),
    ("val_loss <= inf", "classification", "not a finite number"),
    ("val_accuracy <= 0.5", "classification", "use >="),
    ("val_loss >= 0.5", "classification", "use <="),
    ("val_accuracy >= 99", "classification", "outside 0..1"),
    ("val_r2 >= 1.5", "regression", "at most 1"),
    ("val_loss <= -0.1", "classification", "never negative"),
])
def test_bad_targets_are_one_line_naming_the_key_the_text_and_what_is_allowed(text, task, why):
    with pytest.raises(ConfigError) as e:
        parse_target(text, task)
    msg = str(e.value)
    assert_one_line(msg)
    assert msg.startswith(f"train.target {text!r}: ") and why in msg and "(allowed: " in msg
    if task:  # what is allowed is the task's own list
        allowed = msg.partition("(allowed: ")[2]
        assert all(m in allowed for m in allowed_metrics(task))
        assert not any(m in allowed for m in set(allowed_metrics(None)) - set(allowed_metrics(task)))


def test_a_preset_and_set_are_checked_against_the_datasets_task():
    assert load_config("digits-mlp", ['train.target="val_accuracy >= 0.99"']).train.target == "val_accuracy >= 0.99"
    # the shell has removed the quotes: a comparison is still one bare value
    assert load_config("digits-mlp", ["train.target=val_accuracy >= 0.99"]).train.target == "val_accuracy >= 0.99"
    assert load_config("regression-mlp", ["train.target=val_r2>=0.9"]).train.target == "val_r2>=0.9"
    with pytest.raises(ConfigError) as e:
        load_config("regression-mlp", ["train.target=val_accuracy >= 0.9"])
    assert "regression-mlp.toml" in str(e.value) and "train.target" in str(e.value)
    with pytest.raises(ConfigError, match=r"train\.target"):
        from_dict({"train": {"target": 0.99}})  # a string, not a number


def test_a_user_datasets_target_is_checked_once_its_task_is_known():
    cfg = from_dict({"data": {"dataset": "my_data.py:Data"}, "train": {"target": "val_r2 >= 0.5"}})  # task unknown yet
    check_task_fit(from_dict({"data": {"dataset": "my_data.py:Data"}, "optim": {"loss": "mse"},
                              "train": {"target": "val_r2 >= 0.5"}}), "regression")
    with pytest.raises(ConfigError, match="not recorded for a classification task"):
        check_task_fit(cfg, "classification")


def test_a_validation_target_needs_a_validation_split(tmp_path):
    cfg = tiny("val_accuracy >= 0.9")
    cfg["data"]["val_fraction"] = 0.0
    with pytest.raises(ConfigError, match="no validation split") as e:
        Trainer(from_dict(cfg), runs_dir=tmp_path).prepare()
    assert_one_line(str(e.value))
    cfg["train"]["target"] = "train_accuracy >= 0.9"
    Trainer(from_dict(cfg), runs_dir=tmp_path).prepare()


def test_the_command_line_refuses_a_bad_target_with_exit_2():
    result = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--set", "train.target=val_acc >= 0.9"])
    assert_bad_input(result, "train.target", "'val_acc >= 0.9'", "unknown metric", "val_accuracy")


# --------------------------------------------------------------------------- the engine

def tiny(target: str, **train) -> dict:
    return {"name": "tiny", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": "mlp", "hidden": [32]},
            "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
            "train": {"epochs": 30, "log_every": 5, "device": "cpu", "num_threads": 1, "target": target, **train},
            "checkpoint": {"save_best": False}}


def summary_of(trainer: Trainer) -> dict:
    return json.loads((trainer.run_dir / "summary.json").read_text())


@pytest.mark.parametrize("target, split", [("val_accuracy >= 0.6", "val"), ("train_loss <= 1.5", "train")])
def test_a_reached_target_ends_the_run_completed_with_its_time(tmp_path, target, split):
    trainer = Trainer(from_dict(tiny(target)), runs_dir=tmp_path)
    events = run_to_end(trainer)
    s = summary_of(trainer)
    assert s["status"] == "completed" and s["reason"].startswith("target reached: ")
    assert s["epochs_completed"] < 30  # it stopped early
    t = s["target"]
    assert t["expression"] == target and t["reached"] is True
    assert t["epoch"] == s["epochs_completed"] - 1 and t["step"] == s["steps"]
    epoch = [e for e in events if isinstance(e, E.EpochMetrics)][-1]
    reached = (epoch.val if split == "val" else epoch.train)[target.split("_", 1)[1].split()[0]]
    assert t["reached_value"] == reached
    assert parse_target(target).reached({t["metric"].split("_", 1)[1]: reached}) is not None
    for e in [e for e in events if isinstance(e, E.EpochMetrics)][:-1]:  # not reached before
        assert parse_target(target).reached(e.val if split == "val" else e.train) is None
    # training seconds, as samples/s counts them: all of this run's training, validation excluded
    assert 0 < s["time_to_target"] == s["train_seconds"]
    assert s["time_to_target"] < s["wall_to_target"] <= s["wall_seconds"]
    assert s["test"] is not None  # the run ends as a completed one: tested, last checkpoint saved
    assert (trainer.run_dir / "checkpoints" / "last.pt").is_file()
    status = [e for e in events if isinstance(e, E.StatusChanged)][-1]
    assert (status.status, status.reason, status.cause) == ("completed", s["reason"], "end")
    assert any(isinstance(e, E.RunNote) and e.message.startswith("target reached") for e in events)
    assert read_row(trainer.run_dir, live=False).time_to_target == s["time_to_target"]  # tui-train runs --json


def test_a_target_never_reached_completes_normally_with_no_time(tmp_path):
    trainer = Trainer(from_dict(tiny("val_accuracy >= 1.0", epochs=2, log_every=10, val_every=1) |
                                {"optim": {"name": "sgd", "lr": 1e-4}}), runs_dir=tmp_path)
    run_to_end(trainer)
    s = summary_of(trainer)
    assert (s["status"], s["reason"], s["epochs_completed"]) == ("completed", "all epochs done", 2)
    assert s["time_to_target"] is None and s["wall_to_target"] is None
    assert s["target"] == {"expression": "val_accuracy >= 1", "metric": "val_accuracy", "op": ">=", "value": 1.0,
                           "reached": False, "reached_value": None, "step": None, "epoch": None}
    assert read_row(trainer.run_dir, live=False).time_to_target is None


def test_no_target_leaves_the_summary_fields_null(tmp_path):
    trainer = Trainer(from_dict(tiny("", max_steps=3)), runs_dir=tmp_path)
    run_to_end(trainer)
    s = summary_of(trainer)
    assert s["target"] is None and s["time_to_target"] is None and s["wall_to_target"] is None


def test_the_last_partial_epochs_validation_counts(tmp_path):
    # max_steps ends the run mid-epoch: its final validation reaches the target, and the summary says when
    trainer = Trainer(from_dict(tiny("val_loss <= 100", max_steps=7)), runs_dir=tmp_path)
    run_to_end(trainer)
    s = summary_of(trainer)
    assert (s["status"], s["reason"], s["steps"]) == ("completed", "max_steps reached", 7)
    assert s["target"]["reached"] and s["target"]["step"] == 7 and s["time_to_target"] == s["train_seconds"]


def test_time_and_wall_to_target_go_on_across_a_resume(tmp_path):
    first = Trainer(from_dict(tiny("", epochs=1)), runs_dir=tmp_path)
    run_to_end(first)
    before = summary_of(first)
    resumed = Trainer(first.config, resume=first.run_dir, resume_overrides=["train.epochs=30", "train.target=val_loss <= 100"])
    run_to_end(resumed)
    s = summary_of(resumed)
    assert resumed.run_dir == first.run_dir and s["reason"].startswith("target reached") and s["target"]["epoch"] == 1
    assert s["time_to_target"] > before["train_seconds"] and s["wall_to_target"] > before["wall_seconds"]
    assert s["wall_seconds"] >= s["wall_to_target"]


def test_a_resumed_run_keeps_when_it_reached_its_target_and_a_fork_does_not(tmp_path):
    """The target's hit is in the checkpoint (TargetWatch.state_dict): resumed with more epochs, the
    run trains on (the target does not end it a second time) and its summary keeps the time to
    target; a fork is a run of its own and starts without it."""
    first = Trainer(from_dict(tiny("val_accuracy >= 0.6")), runs_dir=tmp_path)
    run_to_end(first)
    s = summary_of(first)
    done = s["epochs_completed"]
    assert s["target"]["reached"] and done < 30
    again = Trainer(from_dict(tiny("val_accuracy >= 0.6")), runs_dir=tmp_path, resume=first.run_dir,
                    resume_overrides=[f"train.epochs={done + 2}"])
    run_to_end(again)
    r = summary_of(again)
    assert (r["status"], r["reason"], r["epochs_completed"]) == ("completed", "all epochs done", done + 2)
    assert r["time_to_target"] == s["time_to_target"] and r["target"]["epoch"] == s["target"]["epoch"]
    fork = Trainer(from_dict(tiny("val_accuracy >= 0.6")), runs_dir=tmp_path / "forks", resume=first.run_dir, fork=True,
                   fork_config=True)  # 30 epochs: it trains on from the checkpoint
    run_to_end(fork)
    f = summary_of(fork)
    assert f["target"]["reached"] and f["target"]["step"] > s["target"]["step"]  # reached again, in the fork's own time
