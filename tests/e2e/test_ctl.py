"""`tui-train ctl` and `tui-train attach` against a real headless run, as a script or a cron job would.

The headless run hosts the same control endpoint as the TUI's trainer process; each ctl call is
the installed command in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_headless_signals import tui_cmd, wait_for_steps
from tui_train.core.run.endpoint import POINTER, probe

pytestmark = pytest.mark.slow


def ctl(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(tui_cmd() + ["ctl", "--runs-dir", str(tmp_path / "runs"), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=timeout)


@pytest.fixture
def headless(tmp_path):
    proc = subprocess.Popen(
        tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                       "--set", "train.epochs=500", "--set", "train.log_every=5", "--set", "train.num_threads=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = wait_for_steps(proc, 2)
    assert lines[0].startswith("attach: tui-train attach "), lines[0]
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_ctl_steers_a_headless_run_and_says_what_happened(tmp_path, headless):
    r = ctl(tmp_path, "pause")
    assert r.returncode == 0 and r.stdout.startswith("Pause: paused"), r
    r = ctl(tmp_path, "lr", "0.002")
    assert r.returncode == 0 and "lr 0.001 -> 0.002" in r.stdout, r
    r = ctl(tmp_path, "lr", "50")  # out of range: rejected by the engine, with the reason, exit 1
    assert r.returncode == 1 and "must be > 0 and <= 10" in r.stderr, r
    r = ctl(tmp_path, "set", "patience", "2.5")
    assert r.returncode == 1 and "whole number" in r.stderr, r
    for bad in (["lr", "fast"], ["teleport"], ["lr"], ["set", "momentum"]):
        r = ctl(tmp_path, *bad)  # malformed: one line, exit 2, nothing sent
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tui-train: error:" in r.stderr, (bad, r)
    r = ctl(tmp_path, "validate")
    assert r.returncode == 0 and r.stdout.startswith("validation: {"), r
    r = ctl(tmp_path, "lr-find")  # the paused run's LR range test, in the trainer process
    assert r.returncode == 0 and r.stdout.startswith("FindLearningRate: LR range test: suggested "), r
    run_dir = next((tmp_path / "runs").iterdir())
    records = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    origins = [(x["command"], x["origin"]) for x in records if x["event"] in ("CommandApplied", "CommandRejected")]
    assert [c for c, _ in origins] == ["Pause", "SetLearningRate", "SetLearningRate", "SetHyperparameter", "Validate",
                                       "FindLearningRate"]
    assert all(o.startswith("ctl-") for _, o in origins) and len({o for _, o in origins}) == 6  # one viewer id per call
    found = [x for x in records if x["event"] == "LearningRateFound"]
    assert len(found) == 1 and found[0]["suggestions"]["valley"] > 0 and len(found[0]["lrs"]) == len(found[0]["losses"])

    # --events streams JSON lines until the run ends
    stream = subprocess.Popen(tui_cmd() + ["ctl", str(run_dir), "--events"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(1.0)
    assert ctl(tmp_path, "resume").returncode == 0
    time.sleep(0.5)
    assert ctl(tmp_path, "interrupt").returncode == 0
    out, _ = stream.communicate(timeout=30)
    events = [json.loads(x) for x in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert "StepMetrics" in kinds and kinds[-1] == "RunFinished" and events[-1]["status"] == "interrupted"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert headless.wait(15) == 130
    assert not (run_dir / POINTER).exists()  # the endpoint went with the run


def test_attach_and_ctl_without_a_live_run_say_so_and_exit_2(tmp_path):
    (tmp_path / "runs").mkdir()
    for cmd in (["attach", "--runs-dir", str(tmp_path / "runs")], ["ctl", "--runs-dir", str(tmp_path / "runs"), "pause"]):
        r = subprocess.run(tui_cmd() + cmd, capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no live run under" in r.stderr, r


def test_a_stale_endpoint_of_a_killed_trainer_is_cleaned_and_reported(tmp_path, headless):
    run_dir = next((tmp_path / "runs").iterdir())
    ptr, _ = probe(run_dir, clean=False)
    assert ptr is not None
    os.kill(headless.pid, signal.SIGKILL)
    headless.wait(10)
    assert (run_dir / POINTER).exists() and ptr.socket.exists()  # left behind by kill -9
    r = subprocess.run(tui_cmd() + ["attach", str(run_dir)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and f"trainer pid {ptr.pid} is gone (cleaned)" in r.stderr, r
    assert not (run_dir / POINTER).exists() and not ptr.socket.exists()
    r = ctl(tmp_path, "pause")
    assert r.returncode == 2 and "no live run" in r.stderr
