"""SIGINT, SIGTERM or SIGHUP while `tui-train run --headless` is still starting (here: while the
user's dataset file loads, after torch was imported) exit 130 with one line on stderr, no
traceback, and no run directory left behind (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest

from tests.e2e.test_headless_signals import tui_train

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
    that was ignored stays ignored by design (tui/cli.py _catch_startup_signals)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_while_starting_exits_130_with_one_line_and_no_run_directory(tmp_path, sig):
    (tmp_path / "slow_ds.py").write_text(textwrap.dedent(SLOW_DATASET))
    proc = subprocess.Popen(tui_train() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
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
