"""Past runs: listing (live first, sorted by any column), partial and old runs shown with what they
have, folders that are not runs skipped, config diffs, deletion (never of a live run), and forks
(a new run from a checkpoint, its parent recorded and its steps going on from the parent's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine_helpers import run_to_end
from tui_train.core import events as E
from tui_train.core.config import from_dict, to_toml
from tui_train.core.run.runlog import RunLog
from tui_train.core.rundir import runs as R
from tui_train.core.train.engine import Trainer


def make_run(root: Path, name: str, *, lr: float = 1e-3, status: str | None = "completed", best: float = 0.9,
             test: float = 0.88, started: float = 1_700_000_000.0, parent: str = "", torn: bool = False) -> Path:
    """A run directory as the engine writes it (RunLog), finished with a summary unless ``status`` is None."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    cfg = from_dict({"name": name.split("-", 2)[-1], "optim": {"lr": lr}, "data": {"dataset": "digits", "batch_size": 16}})
    log = RunLog(run_dir)
    log.open((f"{R.PARENT_PREFIX}{parent} step 40\n" if parent else "") + to_toml(cfg))
    log.write(E.RunStarted(run_dir=str(run_dir), preset=cfg.name, device="cpu", task="classification", epochs=3,
                           steps_per_epoch=10, total_steps=30, train_size=160, val_size=20, test_size=20, num_params=10,
                           model="mlp", hyperparameters={"lr": lr}))
    log.write(E.StepMetrics(step=10, epoch=0, epoch_progress=1.0, loss=0.5, lr=lr, samples_per_second=1e3, accuracy=0.8,
                            elapsed=1.0))
    log.close()
    events = run_dir / "events.jsonl"
    first, *rest = events.read_text().splitlines(keepends=True)
    rec = json.loads(first)
    rec["time"] = started
    events.write_text(json.dumps(rec) + "\n" + "".join(rest))
    if torn:
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write('{"event": "StepMetrics", "step": 2')
    if status is not None:
        (run_dir / "summary.json").write_text(json.dumps({
            "status": status, "preset": cfg.name, "epochs_completed": 3, "epochs_planned": 3, "wall_seconds": 12.5,
            "best": {"metric": "val_accuracy", "value": best, "epoch": 2}, "test": {"accuracy": test, "loss": 0.3},
            "interventions": 2, "world_size": 1}))
    return run_dir


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    a = make_run(root, "20260101-000000-alpha", lr=1e-3, best=0.90, test=0.85, started=1_700_000_000)
    b = make_run(root, "20260102-000000-beta", lr=3e-4, best=0.95, test=0.93, started=1_700_100_000, parent=str(a))
    c = make_run(root, "20260103-000000-gamma", status=None, started=1_700_200_000, torn=True)  # killed: no summary
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a run")
    (root / "stray.txt").write_text("x")
    return root, a, b, c


def test_one_row_per_run_newest_first_with_what_each_has(runs):
    root, a, b, c = runs
    rows = R.list_runs(root)
    assert [r.name for r in rows] == [c.name, b.name, a.name]  # the folder that is not a run is skipped
    gamma, beta, alpha = rows
    assert gamma.status == "unfinished" and gamma.best == {} and gamma.epochs is None and gamma.hyperparameters["lr"] == 1e-3
    assert beta.status == "completed" and beta.best["value"] == 0.95 and beta.test_metric == 0.93
    assert beta.hyperparameters == {"lr": 3e-4, "batch_size": 16, "optimizer": "adam", "schedule": "constant"}
    assert beta.parent == str(a) and beta.parent_step == 40 and alpha.parent == ""
    assert alpha.started == 1_700_000_000 and alpha.duration == 12.5 and alpha.interventions == 2


def test_rows_sort_by_any_column_and_missing_values_go_last(runs):
    root, a, b, c = runs
    assert [r.name for r in R.list_runs(root, sort="best")] == [b.name, a.name, c.name]
    assert [r.name for r in R.list_runs(root, sort="best", reverse=False)] == [a.name, b.name, c.name]
    assert next(r.name for r in R.list_runs(root, sort="lr", reverse=False)) == b.name
    for key in R.SORT_KEYS:
        assert len(R.list_runs(root, sort=key)) == 3
    with pytest.raises(ValueError, match="allowed"):
        R.list_runs(root, sort="colour")


def test_live_runs_come_first(runs, monkeypatch):
    root, a, _b, _c = runs
    (a / "endpoint.json").write_text("{}")
    monkeypatch.setattr("tui_train.core.run.endpoint.probe",
                        lambda run_dir, clean=True: (object(), "") if Path(run_dir) == a else (None, "no"))
    rows = R.list_runs(root)
    assert rows[0].name == a.name and rows[0].live and rows[0].status == "running"


def test_an_old_or_damaged_run_is_shown_never_raised(tmp_path):
    root = tmp_path / "runs"
    old = root / "20250101-000000-old"
    old.mkdir(parents=True)
    (old / "summary.json").write_text("{not json")
    (old / "config.toml").write_text("this is = = not toml")
    (old / "events.jsonl").write_bytes(b"\xff\xfe garbage\n")
    row = R.read_row(old, live=False)
    assert row.status == "unfinished" and row.preset == "old" and row.hyperparameters["lr"] is None
    assert R.list_runs(tmp_path / "missing") == []


def test_a_config_diff_shows_only_the_keys_that_differ(runs):
    _root, a, b, _c = runs
    diff = R.config_diff([a, b])
    assert diff["optim.lr"] == [1e-3, 3e-4] and diff["name"] == ["alpha", "beta"]
    assert "data.batch_size" not in diff and "data.dataset" not in diff


def test_deleting_a_run_removes_it_and_never_a_live_one(runs, monkeypatch):
    root, a, _b, c = runs
    R.delete_run(c)
    assert not c.exists()
    monkeypatch.setattr("tui_train.core.run.endpoint.probe",
                        lambda run_dir, clean=True: (object(), ""))
    with pytest.raises(ValueError, match="live"):
        R.delete_run(a)
    assert a.exists()
    with pytest.raises(ValueError, match="not a run"):
        R.delete_run(root / "notes")


def test_runs_json_for_scripts_and_a_plain_table(runs):
    from typer.testing import CliRunner

    from tui_train.tui.cli import app

    root, a, b, c = runs
    out = CliRunner().invoke(app, ["runs", "--runs-dir", str(root), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [d["run_dir"] for d in data] == [str(c.resolve()), str(b.resolve()), str(a.resolve())]
    for d in data:
        assert {"run_dir", "status", "preset", "started", "best", "test", "hyperparameters", "parent"} <= set(d)
        assert "lr" in d["hyperparameters"]
    assert data[1]["parent"] == str(a) and data[2]["parent"] == ""
    plain = CliRunner().invoke(app, ["runs", "--runs-dir", str(root), "--sort", "test"])
    lines = plain.output.splitlines()
    assert plain.exit_code == 0 and lines[0].split()[:2] == ["status", "preset"] and "beta" in lines[1] and "gamma" in lines[3]
    bad = CliRunner().invoke(app, ["runs", "--runs-dir", str(root), "--sort", "colour"])
    assert bad.exit_code == 2 and "allowed" in bad.output


def tiny(**train):
    return from_dict({"name": "tiny", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": "mlp", "hidden": [16]},
                      "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
                      "train": {"epochs": 2, "log_every": 5, "device": "cpu", **train}})


def test_a_fork_is_a_new_run_from_the_checkpoint_with_its_parent_and_the_changes(tmp_path):
    parent = Trainer(tiny(), runs_dir=tmp_path)
    run_to_end(parent)
    last = parent.run_dir / "checkpoints" / "last.pt"
    fork = Trainer(tiny(), runs_dir=tmp_path, resume=last, fork=True,
                   resume_overrides=["optim.lr=0.01", "optim.momentum=0.5", "train.epochs=3"])
    run_to_end(fork)
    summary = json.loads((fork.run_dir / "summary.json").read_text())
    assert fork.run_dir != parent.run_dir and parent.run_dir.exists()
    assert summary["parent"] == {"run_dir": str(parent.run_dir.resolve()), "step": parent.state.step}
    assert (fork.run_dir / "config.toml").read_text().startswith(f"# parent: {parent.run_dir.resolve()} step {parent.state.step}")
    assert summary["steps"] == parent.state.step + parent.steps_per_epoch  # the position goes on: one more epoch
    assert summary["final_lr"] == 0.01 and fork.optimizer.param_groups[0]["momentum"] == 0.5
    row = R.read_row(fork.run_dir, live=False)
    assert row.parent == str(parent.run_dir.resolve()) and row.parent_step == parent.state.step
    assert json.loads((parent.run_dir / "summary.json").read_text())["parent"] is None
    # resuming a fork keeps its lineage
    again = Trainer(tiny(), runs_dir=tmp_path, resume=fork.run_dir, resume_overrides=["train.epochs=4"])
    run_to_end(again)
    assert again.run_dir == fork.run_dir and R.read_row(fork.run_dir, live=False).parent == str(parent.run_dir.resolve())


def test_fork_from_the_command_line_and_its_one_line_errors(tmp_path):
    from typer.testing import CliRunner

    from tui_train.tui.cli import app

    parent = Trainer(tiny(), runs_dir=tmp_path / "runs")
    run_to_end(parent)
    r = CliRunner().invoke(app, ["run", "--headless", "--runs-dir", str(tmp_path / "runs"), "--from", str(parent.run_dir),
                                 "--set", "train.epochs=3"])
    assert r.exit_code == 0, r.output
    assert f"forked from {parent.run_dir.resolve()} at step {parent.state.step}" in r.output
    assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir()]) == 2
    missing = CliRunner().invoke(app, ["run", "--headless", "--runs-dir", str(tmp_path / "runs"), "--from", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "nope" in missing.output and "Traceback" not in missing.output
    both = CliRunner().invoke(app, ["run", "--headless", "--from", str(parent.run_dir), "--resume", str(parent.run_dir)])
    assert both.exit_code == 2 and "--from and --resume" in both.output
