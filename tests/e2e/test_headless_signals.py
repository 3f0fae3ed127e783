"""The installed `tui-train` in headless mode, as a scheduler or a dropped SSH session treats it:
SIGTERM, SIGHUP or Ctrl+C (SIGINT) save a checkpoint, write an `interrupted` summary and exit
within 5 s; `--resume` then continues the run in the same directory.

The 5 s is the product's to keep, not the test machine's: a watchdog exits the process
core.run.headless.STOP_DEADLINE s after the signal whatever the trainer does, and the last test here
hangs a step on purpose to see it fire. The other tests check the outcome with a generous bound
and print the seconds they measured (a loaded 2-core machine must not fail them; issue 21 item 5).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_train.core.run.headless import STOP_DEADLINE
from tui_train.core.train.checkpoint import load

pytestmark = pytest.mark.slow

EXIT_BOUND = 60.0
"""Seconds a test waits for the exit: the outcome is asserted, not the time (the watchdog test holds
the README's 5 s); the seconds measured are printed."""



def tui_cmd() -> list[str]:
    exe = shutil.which("tui-train") or str(Path(sys.executable).parent / "tui-train")
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "tui_train.tui.cli"]


def start(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                       "--set", "train.epochs=500", "--set", "train.log_every=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_steps(proc: subprocess.Popen, n: int = 3) -> list[str]:
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if sum(1 for x in lines if x.startswith("step")) >= n:
            return lines
    raise AssertionError("no progress lines:\n" + "".join(lines))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_saves_and_exits_130_then_resume_continues(tmp_path, sig):
    proc = start(tmp_path)
    wait_for_steps(proc)
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=EXIT_BOUND)
    print(f"{sig.name}: exited {time.monotonic() - t0:.1f}s after the signal")
    assert proc.returncode == 130, out
    assert "did not stop within" not in out, out  # saved and ended on its own, not by the watchdog
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    interrupt = [p for p in (run_dir / "checkpoints").glob("*interrupt*.pt")]
    assert interrupt and load(interrupt[0])["step"] == summary["steps"] > 0
    stopped_at = summary["steps"]

    res = subprocess.run(tui_cmd() + ["run", "--resume", str(run_dir), "--headless", "--set", f"train.max_steps={stopped_at + 20}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == stopped_at + 20
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run_dir.name]  # same run directory


def test_ssh_drop_with_the_terminal_as_stdout_ends_interrupted_not_failed(tmp_path):
    """The real SSH-drop case: stdout IS the terminal, and it hangs up. Printing to a dead tty
    raises EIO; that must never reach the training loop (it used to end the run as failed)."""
    import fcntl
    import pty
    import select
    import termios

    master, slave = pty.openpty()

    def become_session_leader():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                           "--set", "train.epochs=500", "--set", "train.log_every=100000"],
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=become_session_leader, cwd=tmp_path)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 60
    while b"run directory" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            seen += os.read(master, 4096)
    time.sleep(1.0)
    os.close(master)  # the terminal hangs up: SIGHUP to the session, and stdout is dead
    t0 = time.monotonic()
    rc = proc.wait(EXIT_BOUND)
    print(f"exited {time.monotonic() - t0:.1f}s after the hang-up")
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (rc, summary["status"]) == (130, "interrupted"), summary
    assert not (run_dir / "traceback.txt").exists()
    assert list((run_dir / "checkpoints").glob("*interrupt*.pt"))


HANGING_MODEL = """
import os
import time

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, **_):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        if os.path.exists("hang"):  # the test's cue: this step never ends (a stuck save or NFS would do the same)
            open("hanging", "w").close()
            time.sleep(3600)
        return self.body(x)
"""


def test_the_watchdog_ends_a_run_whose_step_hangs_130_interrupted_after_the_deadline(tmp_path):
    """README: SIGTERM to a headless run exits within 5 s, "a watchdog makes sure". Here the step
    never ends, so only the watchdog can end the process: it does, STOP_DEADLINE s after the signal
    (not before: a healthy save gets the whole grace), with 130 and an ``interrupted`` summary."""
    assert STOP_DEADLINE < 5.0  # the README's deadline, with room for the exit itself
    (tmp_path / "hang_net.py").write_text(HANGING_MODEL)
    proc = subprocess.Popen(
        tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", 'model.name="hang_net.py:Net"',
                     "--set", "train.epochs=500", "--set", "train.log_every=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_steps(proc)
        (tmp_path / "hang").touch()
        deadline = time.monotonic() + EXIT_BOUND
        while not (tmp_path / "hanging").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the step never began to hang"
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=EXIT_BOUND)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"the watchdog ended the hung run {elapsed:.1f}s after SIGTERM (deadline {STOP_DEADLINE}s)")
    assert proc.returncode == 130, out
    assert f"the trainer did not stop within {STOP_DEADLINE:.1f}s; exiting" in out, out
    # ordering, not speed (a loaded machine only makes it later): the graceful path got its grace
    assert elapsed >= STOP_DEADLINE, "the watchdog cut the graceful path short"
    # the deadline it kept is the one it names (a watchdog that hangs is caught by EXIT_BOUND);
    # how late past it a loaded machine lets it fire is printed above, not asserted
    assert out.count("the trainer did not stop within") == 1, out
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "watchdog" in summary["reason"], summary
