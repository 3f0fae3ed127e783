"""SLURM preemption with the installed `tui-train`, no cluster (issue 25 item 5): the environment
says SLURM (SLURM_JOB_ID...) and a fake `scontrol`, first on PATH, records its arguments.

SIGUSR1 (the default save signal inside a SLURM job) saves a checkpoint, ends the run
`preempted` (exit 75) and runs `scontrol requeue <job>`; the restarted job's same command with
`--resume auto` goes on and ends bit-identical to an uninterrupted run on CPU; a missing scontrol
is one line and the run is still `preempted` with its checkpoint; a torchrun group stops every
rank at one step and its launcher (not rank 0) requeues. Outcomes are asserted, never times.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_headless_signals import tui_cmd
from tests.unit.test_resume_more import CLI_SETS, assert_same, last_weights
from tests.unit.test_slurm import calls, fake_scontrol
from tui_train.core.train.checkpoint import load

pytestmark = pytest.mark.slow

JOB = "31337"


def slurm_env(tmp_path: Path, *, scontrol: bool = True, **more: str) -> dict:
    """The environment of a SLURM job (this test's fake scontrol first on PATH, or none at all)."""
    bin_dir = tmp_path / "bin" if scontrol else tmp_path / "no-scontrol"
    if scontrol and not (bin_dir / "scontrol").exists():
        fake_scontrol(bin_dir)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TUI_TRAIN_SIGNAL", "TUI_TRAIN_REQUEUE"))}
    return {**env, "PATH": path, "SLURM_JOB_ID": JOB, "PYTHONUNBUFFERED": "1", **more}


def start(tmp_path: Path, env: dict, *args: str, runs: str = "runs") -> subprocess.Popen:
    return subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / runs), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)


def signal_after_steps(proc: subprocess.Popen, n: int, sig: int = signal.SIGUSR1) -> list[str]:
    """Read progress lines until ``n`` step lines were printed, then send ``sig``."""
    lines, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("step") and sum(x.startswith("step") for x in lines) >= n:
            proc.send_signal(sig)
            return lines
    proc.kill()
    raise AssertionError("no progress lines:\n" + "".join(lines))


def only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def test_sigusr1_saves_ends_preempted_with_exit_75_and_requeues_the_job(tmp_path):
    env = slurm_env(tmp_path, SLURM_ARRAY_JOB_ID="31300", SLURM_ARRAY_TASK_ID="2")
    proc = start(tmp_path, env, "--set", "train.epochs=500", "--set", "train.log_every=5")
    lines = signal_after_steps(proc, 3)
    out, _ = proc.communicate(timeout=120)
    out = "".join(lines) + out
    assert proc.returncode == 75, out
    assert "SIGUSR1: preempted: stopping after this step" in out and "Traceback" not in out
    run = only_run(tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["not_saved"] == []
    (ck,) = (run / "checkpoints").glob("step-*-preempt.pt")
    assert load(ck)["step"] == summary["steps"] > 0
    assert calls(tmp_path / "bin" / "calls") == ["requeue 31300_2"]  # a job array's task: <array job>_<task>
    assert "requeued SLURM job 31300_2 (scontrol requeue 31300_2)" in out
    assert json.loads((run / "slurm.json").read_text())["jobs"][0]["job_id"] == "31300_2"
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    ends = [e for e in events if e.get("event") == "StatusChanged" and e.get("status") == "preempted"]
    assert len(ends) == 1 and ends[0]["cause"] == "end"


def test_a_missing_scontrol_is_one_line_and_the_run_is_still_preempted_with_its_checkpoint(tmp_path):
    proc = start(tmp_path, slurm_env(tmp_path, scontrol=False), "--set", "train.epochs=500", "--set", "train.log_every=5")
    lines = signal_after_steps(proc, 3)
    out, _ = proc.communicate(timeout=120)
    out = "".join(lines) + out
    assert proc.returncode == 75, out
    said = [ln for ln in out.splitlines() if "requeue" in ln]
    assert len(said) == 1 and said[0].startswith(f"scontrol not found: SLURM job {JOB} was not requeued"), said
    assert "Traceback" not in out
    run = only_run(tmp_path / "runs")
    assert json.loads((run / "summary.json").read_text())["status"] == "preempted"
    assert list((run / "checkpoints").glob("step-*-preempt.pt"))


def test_the_same_command_with_resume_auto_starts_then_goes_on_bit_identical(tmp_path):
    """`tui-train run digits-mlp --resume auto` as a requeued job runs it twice: the first start
    finds no run of the job and starts one; SIGUSR1 preempts it mid-epoch; the restart (same
    command, same job id, SLURM_RESTART_COUNT=1) continues it; last.pt's weights equal those of an
    uninterrupted run of the same config (tests/unit/test_resume_more.py's CLI comparison)."""
    sets = [a for s in CLI_SETS for a in ("--set", s)]
    whole = subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "whole"), *sets],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}, "PYTHONUNBUFFERED": "1"})
    env = slurm_env(tmp_path)
    first = start(tmp_path, env, *sets, "--resume", "auto", runs="cut")
    lines = signal_after_steps(first, 15)
    out, _ = first.communicate(timeout=120)
    out = "".join(lines) + out
    assert first.returncode == 75, out  # preempted, not finished before the signal
    assert f"--resume auto: no run of SLURM job {JOB} under {tmp_path / 'cut'}: starting a new one" in out
    run = only_run(tmp_path / "cut")
    (ck,) = (run / "checkpoints").glob("step-*-preempt.pt")
    stopped = load(ck)
    assert 0 < stopped["step"] < 6 * 41, stopped["step"]
    assert calls(tmp_path / "bin" / "calls") == [f"requeue {JOB}"]
    again = subprocess.run(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "cut"), *sets,
                                        "--resume", "auto"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=180, env={**env, "SLURM_RESTART_COUNT": "1"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"--resume auto: continuing {tmp_path / 'cut' / run.name} (SLURM job {JOB}, restart 1)" in again.stdout
    assert only_run(tmp_path / "cut") == run  # the same run directory
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["earlier"][-1]["status"] == "preempted"
    assert [j["restart_count"] for j in json.loads((run / "slurm.json").read_text())["jobs"]] == [0, 1]
    out, _ = whole.communicate(timeout=180)
    assert whole.returncode == 0, out
    assert_same(last_weights(tmp_path / "cut"), last_weights(tmp_path / "whole"),
                f"preempted at step {stopped['step']} (batch {stopped['batch']}), resumed with --resume auto")
    assert calls(tmp_path / "bin" / "calls") == [f"requeue {JOB}"]  # a run that completes requeues nothing


def test_a_run_name_makes_the_folder_stable_and_resume_auto_finds_it_without_slurm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    sets = ["--set", "train.epochs=500", "--set", "train.log_every=5", "--signal-save", "USR2", "--run-name", "exp-7"]
    proc = start(tmp_path, {**env, "PYTHONUNBUFFERED": "1"}, *sets, "--resume", "auto")
    lines = signal_after_steps(proc, 3, signal.SIGUSR2)
    out, _ = proc.communicate(timeout=120)
    out = "".join(lines) + out
    assert proc.returncode == 75, out
    assert "no run named exp-7" in out and "scontrol" not in out  # outside SLURM: nothing to requeue
    run = tmp_path / "runs" / "exp-7"
    stopped = json.loads((run / "summary.json").read_text())["steps"]
    again = subprocess.run(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), *sets,
                                        "--resume", "auto", "--set", f"train.max_steps={stopped + 5}"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"continuing {run} (run name exp-7)" in again.stdout
    assert json.loads((run / "summary.json").read_text())["steps"] == stopped + 5
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["exp-7"]


def test_the_trainer_process_behind_the_tui_takes_the_save_signal_too(tmp_path, monkeypatch):
    """The TUI's trainer process (core.train.serve, started as the TUI starts it) inherits the
    environment: SIGUSR1 to it saves, ends the run preempted (exit 75) and requeues the job."""
    from tui_train.core.config import load_config
    from tui_train.core.live.spawn import spawn, spec_for

    for name, value in slurm_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    config = load_config("digits-mlp", ["train.epochs=500", "train.log_every=5"], [])
    proc, answer = spawn(spec_for(config, runs_dir=tmp_path / "runs", preset="digits-mlp"))
    try:
        assert answer.get("ready") is True, answer
        run = Path(answer["run_dir"])
        deadline = time.monotonic() + 120
        while "step" not in ((run / "trainer.log").read_text() if (run / "trainer.log").exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "the trainer process never trained"
            time.sleep(0.1)
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=120) == 75
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((run / "summary.json").read_text())["status"] == "preempted"
    assert list((run / "checkpoints").glob("step-*-preempt.pt"))
    assert calls(tmp_path / "bin" / "calls") == [f"requeue {JOB}"]
    assert f"requeued SLURM job {JOB}" in (run / "trainer.log").read_text()


def test_sigusr1_to_a_torchrun_launcher_preempts_every_rank_at_one_step_and_the_launcher_requeues(tmp_path):
    from tests.e2e.test_torchrun import BASE, finish, kill_all, wait_endpoint

    env = slurm_env(tmp_path)
    proc = subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--nproc-per-node", "2", "--headless", "--runs-dir",
                                         str(tmp_path / "runs"), *BASE, "--set", "train.epochs=400", "--set", "train.log_every=5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        run = wait_endpoint(tmp_path, proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGUSR1)
        code, out, err = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            kill_all(proc)
    assert code == 75, (out[-2000:], err[-2000:])
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "preempted" and s["ranks_agree"] is True, s
    assert len(list((run / "checkpoints").glob("*preempt*.pt"))) == 1
    assert calls(tmp_path / "bin" / "calls") == [f"requeue {JOB}"]  # once: the launcher, not rank 0 as well
    assert f"requeued SLURM job {JOB}" in out
