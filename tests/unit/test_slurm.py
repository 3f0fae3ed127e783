"""SLURM and preemption without a cluster (issue 25 item 5): core.run.slurm's rules (the save
signal, the job id, ``scontrol requeue`` through a fake scontrol first on PATH, the record and
``--resume auto``), the ``preempted`` status where every front end knows statuses, and the CLI's
bad input. The processes themselves (SIGUSR1 to a headless run, a torchrun group): tests/e2e/test_preemption.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_train.core import events as E
from tui_train.core.run import slurm
from tui_train.core.run.place import END_CHECKPOINTS, RunPlace
from tui_train.core.status import EXIT_CODES, exit_code, status_after, with_losses
from tui_train.tui.cli import app, worker_exit_code


def fake_scontrol(folder: Path, code: int = 0, said: str = "") -> Path:
    """An executable ``scontrol`` in ``folder`` that appends its arguments to ``folder/calls`` and
    exits ``code`` (saying ``said`` on stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "scontrol"
    exe.write_text(f'#!/bin/sh\necho "$@" >> "{folder / "calls"}"\n' + (f'echo "{said}" >&2\n' if said else "") + f"exit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder / "calls"


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# --------------------------------------------------------------------------- the save signal

@pytest.mark.parametrize("text, want", [("USR1", signal.SIGUSR1), ("sigusr2", signal.SIGUSR2), ("SIGTERM", signal.SIGTERM),
                                        (str(int(signal.SIGUSR1)), signal.SIGUSR1), ("none", None), ("off", None)])
def test_a_save_signal_is_named_with_or_without_sig_or_by_number(text, want):
    assert slurm.parse_signal(text) == want


@pytest.mark.parametrize("text", ["KILL", "SIGSTOP", "FOO", "9", "-1", "CHLD"])
def test_a_signal_that_cannot_save_is_refused_with_what_is_allowed(text):
    with pytest.raises(ValueError, match="allowed: USR1, USR2"):
        slurm.parse_signal(text)


def test_the_default_save_signal_is_usr1_inside_slurm_and_none_outside():
    assert slurm.save_signal({}) is None
    assert slurm.save_signal({"SLURM_JOB_ID": "12"}) == signal.SIGUSR1
    assert slurm.save_signal({"SLURM_JOB_ID": "12", slurm.SIGNAL_ENV: "none"}) is None
    assert slurm.save_signal({slurm.SIGNAL_ENV: "USR2"}) == signal.SIGUSR2  # outside SLURM when asked


def test_the_job_id_is_the_array_task_form_for_a_job_array():
    assert slurm.job_id({}) == ""
    assert slurm.job_id({"SLURM_JOB_ID": "77"}) == "77"
    assert slurm.job_id({"SLURM_JOB_ID": "78", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "3"}) == "70_3"
    assert slurm.restart_count({"SLURM_RESTART_COUNT": "2"}) == 2 and slurm.restart_count({}) == 0


def test_a_stop_knows_whether_the_save_signal_set_it():
    stop = slurm.Stop()
    stop.set()
    assert not stop.preempted
    stop = slurm.Stop()
    stop.preempt()
    assert stop.is_set() and stop.preempted


def test_the_place_ends_a_save_signal_stop_preempted_and_any_other_interrupted():
    place = RunPlace()
    place.stop = slurm.Stop()
    place.stop.preempt()
    end = place.end_asked()
    assert (end.status, END_CHECKPOINTS[end.status]) == ("preempted", "preempt")
    place.stop = threading.Event()  # the TUI worker's cancelled_event, SIGTERM
    place.stop.set()
    assert place.end_asked(" during validation").status == "interrupted"
    assert place.end_asked(" during validation").reason == "stop requested during validation"


# --------------------------------------------------------------------------- scontrol requeue

def test_requeue_runs_scontrol_requeue_with_the_job_id(tmp_path):
    log = fake_scontrol(tmp_path / "bin")
    env = {"PATH": str(tmp_path / "bin"), "SLURM_JOB_ID": "4242"}
    said = slurm.requeue(env)
    assert calls(log) == ["requeue 4242"]
    assert said.startswith("requeued SLURM job 4242")
    env.update(SLURM_ARRAY_JOB_ID="40", SLURM_ARRAY_TASK_ID="7")
    slurm.requeue(env)
    assert calls(log)[-1] == "requeue 40_7"


def test_requeue_is_not_asked_outside_slurm_nor_when_turned_off(tmp_path):
    log = fake_scontrol(tmp_path / "bin")
    assert slurm.requeue({"PATH": str(tmp_path / "bin")}) == ""
    assert slurm.requeue({"PATH": str(tmp_path / "bin"), "SLURM_JOB_ID": "1", slurm.REQUEUE_ENV: "0"}) == ""
    assert calls(log) == []


def test_a_missing_or_failing_scontrol_is_one_line_never_an_exception(tmp_path):
    missing = slurm.requeue({"PATH": str(tmp_path / "nothing-here"), "SLURM_JOB_ID": "5"})
    assert "scontrol not found" in missing and "\n" not in missing and "checkpoint is saved" in missing
    fake_scontrol(tmp_path / "bin", code=1, said="scontrol: error: Requested operation is presently disabled for job 5")
    failing = slurm.requeue({"PATH": str(tmp_path / "bin"), "SLURM_JOB_ID": "5"})
    assert failing.startswith("scontrol requeue 5 failed (scontrol: error: Requested operation is presently disabled")
    assert "\n" not in failing and "not requeued" in failing


# --------------------------------------------------------------------------- the record and --resume auto

def a_run(runs: Path, name: str, *, checkpoint: bool = True) -> Path:
    run = runs / name
    (run / "checkpoints").mkdir(parents=True)
    if checkpoint:
        (run / "checkpoints" / "last.pt").write_bytes(b"x")
    return run


def test_a_run_records_each_slurm_job_that_starts_it_and_auto_finds_it_again(tmp_path):
    runs = tmp_path / "runs"
    mine, other = a_run(runs, "20250101-000000-digits-mlp"), a_run(runs, "20250101-000001-digits-mlp")
    assert slurm.remember(mine, {"SLURM_JOB_ID": "31", "SLURMD_NODENAME": "n1"}) == ""
    assert slurm.remember(mine, {"SLURM_JOB_ID": "31", "SLURM_RESTART_COUNT": "1"}) == ""
    slurm.remember(other, {"SLURM_JOB_ID": "32"})
    jobs = json.loads((mine / slurm.RECORD).read_text())["jobs"]
    assert [(j["job_id"], j["restart_count"]) for j in jobs] == [("31", 0), ("31", 1)] and jobs[0]["node"] == "n1"
    found, new_dir, note = slurm.resume_auto(runs, None, {"SLURM_JOB_ID": "31", "SLURM_RESTART_COUNT": "1"})
    assert (found, new_dir) == (mine, None)
    assert note == f"--resume auto: continuing {mine} (SLURM job 31, restart 1) from its newest checkpoint"
    assert slurm.remember(mine, {}) == "" and len(json.loads((mine / slurm.RECORD).read_text())["jobs"]) == 2  # outside SLURM: nothing


def test_auto_starts_a_new_run_when_no_run_of_the_job_has_a_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    empty = a_run(runs, "20250101-000000-digits-mlp", checkpoint=False)
    slurm.remember(empty, {"SLURM_JOB_ID": "8"})
    assert slurm.resume_auto(runs, None, {"SLURM_JOB_ID": "8"}) == (
        None, None, f"--resume auto: no run of SLURM job 8 under {runs}: starting a new one")
    assert slurm.resume_auto(tmp_path / "none", None, {"SLURM_JOB_ID": "8"})[:2] == (None, None)  # no runs folder yet
    found, new_dir, note = slurm.resume_auto(runs, None, {})
    assert (found, new_dir) == (None, None) and "no SLURM job (SLURM_JOB_ID) and no --run-name" in note


def test_auto_with_a_run_name_finds_that_folder_or_starts_the_run_there(tmp_path):
    runs = tmp_path / "runs"
    assert slurm.resume_auto(runs, "exp1", {"SLURM_JOB_ID": "8"})[:2] == (None, runs / "exp1")
    a_run(runs, "exp1", checkpoint=False)
    found, new_dir, note = slurm.resume_auto(runs, "exp1", {})
    assert (found, new_dir) == (None, runs / "exp1") and "holds no checkpoint yet" in note
    (runs / "exp1" / "checkpoints" / "step-00000003-preempt.pt").write_bytes(b"x")
    assert slurm.resume_auto(runs, "exp1", {"SLURM_JOB_ID": "99"})[:2] == (runs / "exp1", None)  # the name wins over the job


@pytest.mark.parametrize("name", ["exp-1", "a.b_c", "2025"])
def test_a_run_name_is_one_folder_name(name):
    assert slurm.check_run_name(name) == ""


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "../x", "-x", "a b", "x" * 129])
def test_a_run_name_that_is_not_one_folder_is_refused(name):
    assert "is not a folder name" in slurm.check_run_name(name)


# --------------------------------------------------------------------------- the status everywhere

def test_preempted_is_final_with_its_own_exit_code_and_label():
    from tui_train.tui.format import STATUS_LABELS, status_label
    from tui_train.tui.screens.runs_screen import STATUS_STYLES

    assert "preempted" in E.STATUSES and "preempted" in E.FINAL_STATUSES
    assert EXIT_CODES["preempted"] == 75 and 75 not in {v for k, v in EXIT_CODES.items() if k != "preempted"} | {2}
    assert exit_code("preempted") == 75 and status_label("preempted") == STATUS_LABELS["preempted"] == "PREEMPTED"
    assert "preempted" in STATUS_STYLES
    assert status_after("running", E.StatusChanged(status="preempted", reason="the save signal")) == "preempted"
    assert status_after("preempted", E.RunFinished(status="preempted", summary={}, run_dir="")) == "preempted"
    lost = [{"file": "last.pt", "error": "RuntimeError: disk full"}]
    assert with_losses("preempted", "x", lost)[0] == "preempted"  # not 'unsaved': it did not train to its end


def test_a_preempted_worker_of_our_launcher_exits_0_and_the_launcher_says_75(monkeypatch):
    monkeypatch.setenv("TUI_TRAIN_RUN_DIR", "/somewhere")
    assert worker_exit_code(75, enabled=True) == 0  # torchrun would take 75 for a crashed worker
    monkeypatch.delenv("TUI_TRAIN_RUN_DIR")
    assert worker_exit_code(75, enabled=True) == 75  # a group started by hand keeps it


def test_the_printer_says_preempted_and_the_run_directory_reads_back_as_preempted(tmp_path):
    import io

    from tui_train.core.run.headless import Printer
    from tui_train.core.rundir.runs import list_runs

    out = io.StringIO()
    Printer(out)(E.StatusChanged(status="preempted", reason="preempted: the save signal", step=9, cause="end"))
    assert out.getvalue() == "status: preempted (preempted: the save signal)\n"
    run = a_run(tmp_path / "runs", "20250101-000000-digits-mlp")
    (run / "summary.json").write_text(json.dumps({"status": "preempted", "reason": "preempted: the save signal", "steps": 9}))
    (row,) = list_runs(tmp_path / "runs")
    assert row.status == "preempted"


# --------------------------------------------------------------------------- the command line

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """The CLI hands its settings on through os.environ (and takes SIGUSR1 over): both put back."""
    monkeypatch.chdir(tmp_path)
    for name in (slurm.SIGNAL_ENV, slurm.REQUEUE_ENV, "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for s, h in before.items():
        signal.signal(s, h)
    os.environ.pop(slurm.SIGNAL_ENV, None)
    os.environ.pop(slurm.REQUEUE_ENV, None)


def one_line_exit_2(args: list[str], *fragments: str) -> None:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    try:
        err = r.stderr
    except (ValueError, AttributeError):
        err = r.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.parametrize("args, fragments", [
    (["--signal-save", "KILL"], ("--signal-save 'KILL' is not a signal", "allowed: USR1")),
    (["--run-name", "../up"], ("--run-name '../up' is not a folder name",)),
    (["--run-name", "x", "--resume", "runs/a"], ("--run-name names a new run",)),
    (["--run-name", "x", "--from", "runs/a"], ("--run-name names a new run",)),
    (["--resume", "auto", "--from", "runs/a"], ("--from and --resume",)),
])
def test_bad_preemption_options_are_one_line_and_exit_2(clean_env, args, fragments):
    one_line_exit_2(["run", "digits-mlp", "--headless", *args], *fragments)


def test_a_bad_save_signal_in_the_environment_is_named(clean_env, monkeypatch):
    monkeypatch.setenv(slurm.SIGNAL_ENV, "NOPE")
    one_line_exit_2(["run", "digits-mlp", "--headless"], f"{slurm.SIGNAL_ENV}: 'NOPE' is not a signal")


def test_a_run_name_that_exists_already_points_to_resume_auto(clean_env, tmp_path):
    (tmp_path / "runs" / "exp").mkdir(parents=True)
    one_line_exit_2(["run", "digits-mlp", "--headless", "--runs-dir", "runs", "--run-name", "exp"],
                    "runs/exp exists; continue it with --resume auto")


def test_help_states_the_defaults_of_the_preemption_options():
    out = CliRunner().invoke(app, ["run", "--help"]).output
    for option in ("--signal-save", "--requeue", "--run-name"):
        assert option in out
    assert "USR1 inside a SLURM" in " ".join(out.split())
