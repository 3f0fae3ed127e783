"""``kill -9`` of a training run at random moments (issue 21, item 4): whatever moment the process
dies, every checkpoint that carries a final name loads, and ``--resume`` goes on from the newest.
(``save_atomic`` alone is tested in test_checkpoint_faults; this is the whole trainer, saving a
checkpoint at every step while it trains, writes its metrics and serves its endpoint.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_headless_signals import tui_cmd
from tui_train.core.train.checkpoint import TMP_PREFIX, load

pytestmark = pytest.mark.slow


def start(runs: Path) -> subprocess.Popen:
    return subprocess.Popen(tui_cmd() + ["run", "digits-mlp", "--headless", "--runs-dir", str(runs),
                                         "--set", "train.epochs=200", "--set", "train.log_every=1", "--set", "train.num_threads=1",
                                         "--set", "checkpoint.every_steps=1", "--set", "checkpoint.keep_last=3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_checkpoints(runs: Path, proc: subprocess.Popen, timeout: float = 90) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(runs.glob("*/checkpoints/step-*.pt"))
        if found:
            return found[0].parent.parent
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")


def test_every_checkpoint_with_a_final_name_loads_after_kill_9_at_any_moment(tmp_path):
    rng = random.Random(int(os.environ.get("TUI_TRAIN_KILL_SEED", "0")))
    checked = 0
    for attempt in range(3):
        runs = tmp_path / f"runs{attempt}"
        proc = start(runs)
        try:
            run_dir = wait_for_checkpoints(runs, proc)
            time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of steps, saves and prunes
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finals = [p for p in (run_dir / "checkpoints").iterdir() if not p.name.startswith(TMP_PREFIX)]
        assert finals
        for path in finals:
            payload = load(path)  # raises on a partial or corrupt file
            assert payload["step"] >= 1 and payload["model"], path
            checked += 1
    assert checked >= 3

    # and the last run resumes from its newest checkpoint, two more steps
    newest = max(load(p)["step"] for p in finals)
    res = subprocess.run(tui_cmd() + ["run", "--headless", "--resume", str(run_dir), "--set", f"train.max_steps={newest + 2}"],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0 and "Traceback" not in res.stderr, (res.stdout[-2000:], res.stderr[-3000:])
    assert f"step {newest + 2}" in res.stdout or f"{newest + 2} steps" in res.stdout, res.stdout[-2000:]
