"""SIGINT, SIGTERM or SIGHUP while `tui-train run --headless` is still starting (here: while the
user's dataset file loads, after torch was imported) exit 130 with one line on stderr, no
traceback, and no run directory left behind (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest

from tests.e2e.test_headless_signals import tui_cmd

SLOW_DATASET = """
import sys, time
import torch
from torch.utils.data import TensorDataset

def make():
    print("dataset: loading", file=sys.stderr, flush=True)
    time.sleep(60)  # the test signals this process while it waits here
    return TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
"""


def _default_signals() -> None:
    """The child starts as from a terminal: a test runner started in the background (SIGINT
    ignored, as a shell does for `cmd &`) or under nohup must not decide the outcome; a signal
    that was ignored stays ignored by design (core/errors.py catch_startup_signals)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_while_starting_exits_130_with_one_line_and_no_run_directory(tmp_path, sig):
    (tmp_path / "slow_ds.py").write_text(textwrap.dedent(SLOW_DATASET))
    proc = subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                           "--set", 'data.dataset="slow_ds.py:make"'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_signals)
    try:
        first = proc.stderr.readline()  # the dataset is loading: the command has not begun training
        assert first.strip() == "dataset: loading", first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"tui-train: {sig.name}: stopped while starting, before training began"], err
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


PID_DATASET = """
import os, sys, time
from pathlib import Path
import torch
from torch.utils.data import TensorDataset

def make():
    Path(__file__).with_name("loading.pid").write_text(str(os.getpid()))
    time.sleep(60)  # the test signals this process while it waits here
    return TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
"""


def test_the_tui_s_trainer_process_signalled_while_starting_answers_130(tmp_path):
    """The trainer process that `tui-train run` spawns (core.train.serve) says the same one line to the
    TUI (its ready answer), exits 130, and leaves no run directory."""
    import threading
    import time

    from tui_train.core.config import load_config, to_dict
    from tui_train.core.live.spawn import spawn

    (tmp_path / "slow_ds.py").write_text(textwrap.dedent(PID_DATASET))
    cfg = load_config("digits-mlp", [f'data.dataset="{tmp_path / "slow_ds.py"}:make"'])
    spec = {"config": to_dict(cfg), "runs_dir": str(tmp_path / "runs"), "preset": "digits-mlp"}
    result: dict = {}
    spawner = threading.Thread(target=lambda: result.update(out=spawn(spec, timeout=60)), daemon=True)
    spawner.start()
    pid_file = tmp_path / "loading.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    spawner.join(60)
    proc, answer = result["out"]
    assert proc.wait(30) == 130
    assert answer == {"ready": False, "code": 130, "error": "SIGTERM: stopped while starting, before training began"}
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
