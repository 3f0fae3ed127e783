"""The status rules, each written once (issue 22 item 6): the event fold, the run directory's
status, and the exit code per final status, used by headless, the trainer process, the TUI, the
replay and the runs list alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_train.core import events as E
from tui_train.core.status import EXIT_CODES, UNFINISHED, exit_code, not_saved_text, run_status, status_after, with_losses
from tui_train.tui.app import build_app


def test_every_final_status_has_an_exit_code():
    assert set(EXIT_CODES) == set(E.FINAL_STATUSES)
    assert EXIT_CODES == {"completed": 0, "early_stopped": 0, "stopped": 0, "unsaved": 3, "failed": 1, "interrupted": 130,
                          "preempted": 75}


@pytest.mark.parametrize("status", E.FINAL_STATUSES)
def test_a_final_status_exits_with_its_code_whatever_the_default(status):
    for not_final in (0, 1, 130):
        assert exit_code(status, not_final=not_final) == EXIT_CODES[status]
    assert exit_code(status, detached=True) == 0  # the viewer left the run going


def test_a_status_that_is_not_final_exits_with_the_callers_default():
    assert exit_code("running") == 1  # headless, a torchrun group: the run never reported its end
    assert exit_code("ready", not_final=0) == 0 and exit_code("running", not_final=130) == 130


def test_the_fold_takes_status_changes_and_ends_and_a_failure_is_final():
    s = ""
    for ev, want in [(E.StatusChanged(status="running", reason="started"), "running"),
                     (E.RunNote(message="x"), "running"),
                     (E.StatusChanged(status="paused", reason="user"), "paused"),
                     (E.RunFinished(status="completed", summary={}, run_dir=""), "completed")]:
        s = status_after(s, ev)
        assert s == want
    s = status_after("running", E.RunFailed(message="boom", traceback="", traceback_path=""))
    assert s == "failed"
    assert status_after(s, E.StatusChanged(status="running", reason="later")) == "failed"
    assert status_after(s, E.RunFinished(status="completed", summary={}, run_dir="")) == "failed"


def test_the_run_directory_status():
    assert run_status("completed", live=False) == "completed"
    assert run_status("", live=False) == run_status(None, live=False) == UNFINISHED == "unfinished"
    assert run_status("completed", live=True, announced="paused") == "paused"  # live: what it said last
    assert run_status("", live=True) == "running"


def _app(tmp_path: Path):
    return build_app(config=None, preset=None, runs_dir=tmp_path)


@pytest.mark.parametrize("status, stop_requested, want", [
    ("completed", False, 0), ("early_stopped", False, 0), ("unsaved", False, 3), ("failed", False, 1),
    ("interrupted", False, 130), ("stopped", False, 0), ("ready", False, 0), ("running", True, 130),
])
def test_the_app_exit_code_is_the_rule(tmp_path, status, stop_requested, want):
    app = _app(tmp_path)
    app.status, app.stop_requested = status, stop_requested
    assert app.exit_code() == want
    app.detached = True
    assert app.exit_code() == 0


@pytest.mark.parametrize("status, want", [("completed", 0), ("unsaved", 3), ("failed", 1), ("interrupted", 130),
                                          ("stopped", 0), ("running", 130), ("ready", 130)])
def test_the_hangup_watchdog_uses_the_same_rule(tmp_path, status, want):
    """The watchdog's code (a SIGHUP/SIGTERM): a run that ended ``stopped`` exits 0 there too. It
    once had a copy of the table of its own that gave 130 for ``stopped`` (issue 22 item 6)."""
    app = _app(tmp_path)
    app.status = status
    assert app.exit_code(signalled=True) == want


def test_a_replayed_failure_stays_failed(tmp_path):
    """The replay folds with the same rule as the app: it once let a status reported after
    RunFailed replace ``failed``, where the app kept the failure (issue 22 item 6)."""
    from tui_train.core.rundir.replay import ReplayTrainer

    replay = ReplayTrainer(tmp_path)
    for ev in (E.StatusChanged(status="running", reason="started"),
               E.RunFailed(message="boom", traceback="", traceback_path=""),
               E.StatusChanged(status="interrupted", reason="signal")):
        replay._follow(ev)
    assert replay.status == "failed"


def test_a_run_that_lost_something_never_ends_plainly_well():
    lost = [{"kind": "checkpoint", "file": "last.pt", "error": "RuntimeError: No space left on device"}]
    for ok in ("completed", "early_stopped", "stopped"):
        status, reason = with_losses(ok, "all epochs done", lost)
        assert status == "unsaved" and reason == "all epochs done; not saved: last.pt (RuntimeError: No space left on device)"
    assert with_losses("failed", "boom", lost)[0] == "failed" and with_losses("interrupted", "signal", lost)[0] == "interrupted"
    assert with_losses("completed", "all epochs done", []) == ("completed", "all epochs done")
    assert not_saved_text(lost * 5) == ", ".join(["last.pt (RuntimeError: No space left on device)"] * 3) + " and 2 more"
