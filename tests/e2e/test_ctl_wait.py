"""`tui-train ctl wait`, `pause-at`, `breakpoints`, `clear-breakpoints` and `set epochs` against a
real headless run, as a script or an agent would (issue 25 items 1-3): every exit code of wait (0
it holds, 1 the run ended without it, 2 bad input, 124 timeout), on the live run and on it finished.
No timing is asserted: every wait has a generous --timeout or ends with the run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_headless_signals import tui_cmd
from tui_train.core.run.endpoint import POINTER

pytestmark = pytest.mark.slow


def ctl(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(tui_cmd() + ["ctl", "--runs-dir", str(tmp_path / "runs"), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=timeout)


def background(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(tui_cmd() + ["ctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


@pytest.fixture
def live(tmp_path):
    """A long headless digits run (its output in a file: a pipe nobody reads would stop it) and its run directory."""
    out = open(tmp_path / "run.out", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", "train.epochs=500",
                     "--set", "train.log_every=5", "--set", "train.num_threads=1", "--set", "checkpoint.save_best=false"],
        stdout=out, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob(f"*/{POINTER}")):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run.out").read_text()[-3000:]
        time.sleep(0.05)
    yield proc, next((tmp_path / "runs").glob(f"*/{POINTER}")).parent
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    out.close()


def test_wait_answers_with_its_exit_codes_live_and_finished(tmp_path, live):
    proc, run_dir = live
    for bad in (["wait"], ["wait", "--for", "val_bogus >= 1"], ["wait", "--status", "sleeping"],
                ["wait", "--for", "val_accuracy >= 0.5", "--status", "paused"], ["pause", "--status", "paused"],
                ["wait", "--for", "val_accuracy >= 1.5"], ["pause-at", "step=soon"], ["clear-breakpoints", "one"]):
        r = ctl(tmp_path, *bad)  # bad input: one line, exit 2, nothing sent
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tui-train: error:" in r.stderr, (bad, r)

    r = ctl(tmp_path, "wait", "--for", "val_accuracy >= 0.05", "--timeout", "120")  # reached at the first validation
    assert r.returncode == 0 and r.stdout.startswith("val_accuracy ") and ">= 0.05 (" in r.stdout, r

    assert ctl(tmp_path, "pause-at", "step=100000000").stdout.startswith("AddBreakpoint: breakpoint #1: step=100000000 (step ")
    r = ctl(tmp_path, "pause-at", "val_loss", "<=", "0")  # the words joined
    assert r.returncode == 0 and r.stdout.startswith("AddBreakpoint: breakpoint #2: val_loss <= 0 (step "), r
    r = ctl(tmp_path, "breakpoints")
    assert r.returncode == 0 and r.stdout == "#1 step=100000000\n#2 val_loss <= 0\n", r
    assert ctl(tmp_path, "clear-breakpoints", "#1").stdout.startswith("ClearBreakpoints: cleared breakpoint #1: step=100000000")
    assert ctl(tmp_path, "breakpoints").stdout == "#2 val_loss <= 0\n"
    assert ctl(tmp_path, "clear-breakpoints").stdout.startswith("ClearBreakpoints: cleared 1 breakpoint(s)")
    r = ctl(tmp_path, "pause-at", "next-epoch")
    assert r.returncode == 0 and r.stdout.startswith("AddBreakpoint: breakpoint #3: epoch="), r
    epoch = int(r.stdout.split("epoch=")[1].split()[0])
    r = ctl(tmp_path, "wait", "--status", "paused", "--timeout", "120")
    assert r.returncode == 0 and r.stdout.startswith("status paused"), r
    r = ctl(tmp_path, "wait", "--status", "paused")  # it holds now: answered from the status at once
    assert r.returncode == 0, r
    records = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    paused = [x for x in records if x["event"] == "StatusChanged" and x.get("cause") == "breakpoint"]
    assert len(paused) == 1 and paused[0]["reason"] == f"breakpoint #3 (epoch={epoch}): {epoch} epoch(s) done"
    assert ctl(tmp_path, "breakpoints").stdout.startswith("no breakpoints pending")

    r = ctl(tmp_path, "wait", "--status", "completed", "--timeout", "1")  # paused: it cannot complete
    assert r.returncode == 124 and "within 1 s" in r.stderr, r
    r = ctl(tmp_path, "set", "epochs", str(epoch - 1))
    assert r.returncode == 1 and "shorter than what is done" in r.stderr, r
    r = ctl(tmp_path, "clear-breakpoints", "5")
    assert r.returncode == 1 and "no breakpoint #5" in r.stderr, r
    r = ctl(tmp_path, "set", "epochs", str(epoch + 1), "--policy", "keep")
    assert r.returncode == 0 and f"epochs 500 -> {epoch + 1} (" in r.stdout and "lr schedule kept" in r.stdout, r

    never = background(tmp_path, str(run_dir), "wait", "--for", "val_loss <= 0")  # never: the run ends without it
    done = background(tmp_path, "wait", str(run_dir), "--status", "completed")
    time.sleep(1.0)  # both have read the files and follow the stream (no assertion rests on it)
    assert ctl(tmp_path, "resume").returncode == 0
    out, err = never.communicate(timeout=120)
    assert never.returncode == 1 and "the run ended completed without val_loss <= 0" in err, (out, err)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0 and out.startswith("status completed"), (out, err)
    assert proc.wait(60) == 0

    # finished: the run directory alone answers
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == epoch + 1
    r = ctl(tmp_path, str(run_dir), "wait", "--status", "completed")
    assert r.returncode == 0, r
    r = ctl(tmp_path, "wait", str(run_dir), "--for", "val_accuracy >= 0.05", "--timeout", "0")
    assert r.returncode == 0 and r.stdout.startswith("val_accuracy "), r
    r = ctl(tmp_path, "wait", str(run_dir), "--status", "paused")
    assert r.returncode == 1 and "the run ended completed without status paused" in r.stderr, r
    r = ctl(tmp_path, str(run_dir), "breakpoints")
    assert r.returncode == 0 and r.stdout.startswith("no breakpoints pending"), r
    r = ctl(tmp_path, "wait", str(tmp_path), "--status", "paused")
    assert r.returncode == 2 and "not a run directory" in r.stderr, r
