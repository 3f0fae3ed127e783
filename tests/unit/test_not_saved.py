"""Nothing lost silently (STYLE.md habit 24, issue 20 defect 2): a run whose final, best or
requested checkpoint (or a file of its record) could not be written does not end as plain
``completed`` with exit 0. Its status is ``unsaved``, summary.json lists what was not saved
(``not_saved``), the exit code is EXIT_CODES["unsaved"], and ``runs`` shows it. Also issue 20
defect 9: a killed run's best from its epoch lines, and torchrun's report's real reason line."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.engine_helpers import run_to_end
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict, to_dict, to_toml
from tui_train.core.live import launch
from tui_train.core.run.headless import EXIT_CODES
from tui_train.core.run.runlog import RunLog
from tui_train.core.rundir import runs as R
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.engine import Trainer
from tui_train.tui.cli import app

FULL = "PytorchStreamWriter failed writing file data/0: file write failed: No space left on device"


def tiny(epochs=2, **train):
    return from_dict({"name": "ns", "data": {"dataset": "digits", "batch_size": 64},
                      "model": {"name": "mlp", "hidden": [16]}, "optim": {"name": "adam"},
                      "train": {"epochs": epochs, "log_every": 5, "device": "cpu", "num_threads": 1, **train}})


def failing_save(monkeypatch, names=("last.pt",), exc=None):
    """torch.save raises (a full disk) while writing a checkpoint whose final name is in ``names``
    (None: every checkpoint)."""
    real = torch.save

    def save(obj, f, *a, **k):
        target = Path(getattr(f, "name", "")).name
        if names is None or any(target.startswith(f"{ckpt.TMP_PREFIX}{n}.") for n in names):
            f.write(b"PK\x03\x04 partial")
            raise exc or RuntimeError(FULL)
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", save)


def summary_of(trainer) -> dict:
    return json.loads((trainer.run_dir / "summary.json").read_text())


def test_a_lost_final_checkpoint_ends_unsaved_not_completed(tmp_path, monkeypatch):
    failing_save(monkeypatch)
    trainer = Trainer(tiny(), runs_dir=tmp_path)
    events = run_to_end(trainer)
    s = summary_of(trainer)
    assert s["status"] == "unsaved", s["status"]
    assert [x["checkpoint"] for x in s["not_saved"]] == ["last"]
    lost = s["not_saved"][0]
    assert lost["file"] == "last.pt" and "No space left on device" in lost["error"] and lost["step"] == s["steps"]
    assert "all epochs done" in s["reason"] and "not saved: last.pt" in s["reason"]
    assert isinstance(events[-1], E.RunFinished) and events[-1].status == "unsaved"
    assert events[-1].summary["not_saved"] == s["not_saved"]
    final = [e for e in events if isinstance(e, E.StatusChanged)][-1]
    assert final.status == "unsaved" and final.cause == "end"
    assert trainer.status == "unsaved" and EXIT_CODES["unsaved"] not in (0, 1, 2, 130)
    assert not (trainer.ckpt_dir / "last.pt").exists()


def test_a_run_that_saved_everything_says_not_saved_empty(tmp_path):
    trainer = Trainer(tiny(epochs=1, max_steps=3), runs_dir=tmp_path)
    run_to_end(trainer)
    s = summary_of(trainer)
    assert s["status"] == "completed" and s["not_saved"] == []


def test_a_lost_best_is_listed_unless_a_later_best_was_saved(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = torch.save

    def first_best_fails(obj, f, *a, **k):
        if Path(f.name).name.startswith(f"{ckpt.TMP_PREFIX}best.pt."):
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", first_best_fails)
    # two epochs on digits: the second is better, so its best.pt supersedes the lost one
    trainer = Trainer(tiny(epochs=3), runs_dir=tmp_path)
    run_to_end(trainer)
    s = summary_of(trainer)
    if calls["n"] >= 2:
        assert s["status"] == "completed" and s["not_saved"] == [], s["not_saved"]
    calls["n"] = 0

    def every_best_fails(obj, f, *a, **k):
        if Path(f.name).name.startswith(f"{ckpt.TMP_PREFIX}best.pt."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", every_best_fails)
    other = Trainer(tiny(epochs=2), runs_dir=tmp_path / "b")
    run_to_end(other)
    s = summary_of(other)
    assert s["status"] == "unsaved" and [x["checkpoint"] for x in s["not_saved"]] == ["best"]
    assert "No space left on device" in s["not_saved"][0]["error"]


def test_a_requested_checkpoint_that_fails_is_listed_and_answered(tmp_path, monkeypatch):
    failing_save(monkeypatch, names=None, exc=PermissionError(13, "Permission denied"))
    trainer = Trainer(tiny(epochs=1, max_steps=4), runs_dir=tmp_path)
    events = run_to_end(trainer, [C.SaveCheckpoint()])
    rejected = [e for e in events if isinstance(e, E.CommandRejected) and e.command == "SaveCheckpoint"]
    assert rejected and "Permission denied" in rejected[0].reason  # a viewer waiting for the answer hears it
    s = summary_of(trainer)
    assert s["status"] == "unsaved"
    assert [x["checkpoint"] for x in s["not_saved"]] == ["manual", "last"]


def test_an_interrupted_run_keeps_its_status_and_lists_the_lost_checkpoint(tmp_path, monkeypatch):
    failing_save(monkeypatch, names=None)
    trainer = Trainer(tiny(epochs=1), runs_dir=tmp_path)
    events = run_to_end(trainer, [C.Interrupt("test")])
    s = summary_of(trainer)
    assert s["status"] == "interrupted" and events[-1].status == "interrupted"
    assert [x["checkpoint"] for x in s["not_saved"]] == ["interrupt", "last"]
    assert "not saved" in s["reason"]


def test_a_record_file_that_cannot_be_written_is_listed(tmp_path, monkeypatch):
    real_write = RunLog.write

    class Full:
        """metrics.jsonl once the disk is full: every write fails."""

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    def write(self, event):
        real_write(self, event)
        if isinstance(event, E.EpochMetrics) and "metrics" in self._files:  # the disk fills up after the first epoch
            self._files["metrics"].close()
            self._files["metrics"] = Full()

    monkeypatch.setattr(RunLog, "write", write)
    trainer = Trainer(tiny(epochs=2), runs_dir=tmp_path)
    events = run_to_end(trainer)
    assert isinstance(events[-1], E.RunFinished), [e.kind for e in events[-4:]]  # the run goes on to its end
    s = summary_of(trainer)
    assert s["status"] == "unsaved"
    lost = [x for x in s["not_saved"] if x.get("file") == "metrics.jsonl"]
    assert lost and "No space left on device" in lost[0]["error"] and lost[0]["records"] >= 1


# --------------------------------------------------------------------------- the command line

def test_headless_cli_exit_code_summary_and_runs_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failing_save(monkeypatch)
    runs = tmp_path / "runs"
    r = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--device", "cpu",
                                 "--set", "train.epochs=1", "--set", "train.max_steps=4"])
    assert r.exit_code == EXIT_CODES["unsaved"] == 3, (r.exit_code, r.output, r.exception)
    assert "not saved: last.pt" in r.output and "No space left on device" in r.output
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "unsaved" and s["not_saved"][0]["checkpoint"] == "last"
    listed = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs), "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "unsaved"
    assert row["not_saved"] and row["not_saved"][0]["file"] == "last.pt"
    plain = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs)], env={"TUI_TRAIN_RUNS_PLAIN": "1"})
    assert "unsaved" in plain.output


def test_a_torchrun_worker_under_the_launcher_leaves_the_exit_code_to_it(monkeypatch):
    from tui_train.tui import cli

    monkeypatch.setenv(launch.RUN_DIR_ENV, "/somewhere")
    assert cli.worker_exit_code(EXIT_CODES["unsaved"], enabled=True) == 0  # the launcher reads summary.json
    assert cli.worker_exit_code(EXIT_CODES["unsaved"], enabled=False) == 3
    assert cli.worker_exit_code(1, enabled=True) == 1
    monkeypatch.delenv(launch.RUN_DIR_ENV)
    assert cli.worker_exit_code(EXIT_CODES["unsaved"], enabled=True) == 3  # torchrun started by hand: not 0


# --------------------------------------------------------------------------- issue 20 defect 9

def test_a_killed_run_lists_its_best_from_its_epoch_lines(tmp_path):
    run_dir = tmp_path / "20250101-000000-killed"
    run_dir.mkdir()
    cfg = from_dict({**to_dict(tiny(epochs=5)), "early_stopping": {"monitor": "val_accuracy"}})
    log = RunLog(run_dir)
    log.open(to_toml(cfg))
    for epoch, acc in enumerate((0.5, 0.7, 0.6)):
        log.write(E.EpochMetrics(epoch=epoch, step=10 * (epoch + 1), train={"loss": 1.0}, val={"loss": 1 - acc, "accuracy": acc},
                                 lr=1e-3, seconds=1.0, is_best=acc == 0.7, patience_left=None))
    log.close()  # then SIGKILL: no summary.json
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"x")
    row = R.read_row(run_dir, live=False)
    assert row.status == "unfinished"
    assert row.best == {"metric": "val_accuracy", "value": 0.7, "epoch": 1}
    assert row.epochs == 3


TORCHRUN_REPORT = """\
W0101 00:00:00.000000 123 torch/distributed/run.py:793] Setting OMP_NUM_THREADS environment variable
Traceback (most recent call last):
  File "/x/torch/distributed/run.py", line 892, in main
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
tui_train.tui.cli FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2025-01-01_00:00:00
  host      : box
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
============================================================
"""


def test_a_torchrun_report_gives_its_root_cause_not_a_row_of_equals(tmp_path):
    (tmp_path / "launcher.log").write_text(TORCHRUN_REPORT)
    line = launch.last_line(tmp_path)
    assert set(line) - set("=- ") and "Signal 9 (SIGKILL)" in line and "rank 1" in line, line
    (tmp_path / "launcher.log").write_text("[rank0]: tui-train: error: data.dataset: unknown 'x'\n" + TORCHRUN_REPORT)
    assert launch.last_line(tmp_path) == "error: data.dataset: unknown 'x'"


def test_a_failed_group_says_the_summary_reason_first(tmp_path):
    (tmp_path / "launcher.log").write_text(TORCHRUN_REPORT)
    (tmp_path / "summary.json").write_text(json.dumps({"status": "failed", "reason": "DistributedError: rank 1 is gone"}))
    assert launch.failure_reason(tmp_path) == "DistributedError: rank 1 is gone"
    (tmp_path / "summary.json").unlink()
    assert "Signal 9" in launch.failure_reason(tmp_path)


@pytest.mark.parametrize("status", ["completed", "early_stopped", "unsaved", "failed", "interrupted"])
def test_every_final_status_has_an_exit_code_and_a_label(status):
    from tui_train.tui.format import STATUS_LABELS

    assert status in E.FINAL_STATUSES and status in EXIT_CODES and status in STATUS_LABELS
