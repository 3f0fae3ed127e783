"""`tui-train sweep` in a real terminal (tmux), as a person over SSH runs it: the Sweep screen's
leaderboard as the sweep goes, the best marked once it is over, q to quit (the leaderboard stays
in the terminal); SIGTERM interrupts the sweep as headless does (exit 130, --resume continues)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.e2e.test_tui_tmux import EXE, EXIT_BOUND, EXIT_RE, STARTUP_TIMEOUT, shell_line, tmux, tui_process_in  # noqa: F401 - the fixture
from tests.e2e.tmux_helpers import wait_until
from tui_train.core.sweep import record as R

pytestmark = pytest.mark.slow

SWEEP_TIMEOUT = 180.0
"""Seconds for two trials of two epochs each, one after the other (each start takes seconds on 2 busy cores)."""


def sweep_dir(tmp_path: Path) -> Path | None:
    found = sorted((tmp_path / "runs").glob("*-sweep-*")) if (tmp_path / "runs").is_dir() else []
    return found[0] if len(found) == 1 else None


def record(tmp_path: Path) -> R.SweepRecord | None:
    folder = sweep_dir(tmp_path)
    try:
        return R.load(folder) if folder is not None else None
    except ValueError:  # being replaced right now
        return None


def board_row(screen: str, number: int) -> str | None:
    """The leaderboard's line of trial ``number`` (mark, number, lr, status...)."""
    return next((line for line in screen.splitlines() if re.match(rf"^\s*[★ ]?\s*{number}\s+0\.", line)), None)


def test_the_leaderboard_marks_the_best_once_the_sweep_is_over_and_q_quits(tmux, tmp_path):  # noqa: F811 - the fixture
    tmux.start(shell_line("sweep", "digits-mlp", "--grid", "optim.lr=0.01,0.1", "--set", "train.epochs=2",
                          "--set", "train.num_threads=1"), cwd=tmp_path)
    tmux.wait_for("trials done", STARTUP_TIMEOUT, "the Sweep screen")
    screen = tmux.wait_for("COMPLETED", SWEEP_TIMEOUT, "the sweep to complete")
    rec = record(tmp_path)
    assert rec is not None and rec.state == "completed" and [t.status for t in rec.trials] == ["completed"] * 2
    best = rec.best()
    other = next(t for t in rec.trials if t is not best)
    screen = tmux.wait_for(lambda s: s if (row := board_row(s, best.number)) and "★" in row else None, 10,
                           "the best trial marked")
    assert "2/2 trials done" in screen
    assert "★" not in (board_row(screen, other.number) or "★"), screen
    lines = [line for line in screen.splitlines() if board_row(line, 0) or board_row(line, 1)]
    assert len(lines) == 2 and "★" in lines[0], screen  # best first

    tmux.keys("q")  # the sweep is over: q quits without asking
    tmux.wait_for(EXIT_RE, 30, "tui-train to quit")
    text = tmux.last_screen
    assert "EXIT=0" in text, text
    assert f"best: val_accuracy={best.value:.6g} optim.lr={best.params['optim.lr']}" in text, text


def test_sigterm_interrupts_the_sweep_exit_130_and_its_trial_saves(tmux, tmp_path):  # noqa: F811 - the fixture
    tmux.start(shell_line("sweep", "digits-mlp", "--grid", "optim.lr=0.01,0.1", "--set", "train.epochs=200",
                          "--set", "train.num_threads=1"), cwd=tmp_path)
    tmux.wait_for("1 running", STARTUP_TIMEOUT + 30, "a trial to run")
    assert wait_until(lambda: (r := record(tmp_path)) and r.trials[0].epoch >= 1, 60), "trial 0 never finished an epoch"
    tui = tui_process_in(tmux.pane_pid())
    os.kill(tui, signal.SIGTERM)
    tmux.wait_for(EXIT_RE, EXIT_BOUND, "tui-train to exit after SIGTERM")
    assert "EXIT=130" in tmux.last_screen, tmux.last_screen
    assert "go on: tui-train sweep --resume" in tmux.last_screen.replace("\n", "")
    rec = record(tmp_path)
    assert rec is not None and rec.state == "interrupted"
    assert rec.trials[0].status == "interrupted" and rec.trials[1].status == "queued"
    assert (Path(rec.trials[0].run_dir) / "checkpoints").is_dir()
