"""A running TUI never imports torch (issue 21, item 4; README: the trainer is a process of its
own, and the viewer stays light). Checked on the real `tui-train` in tmux through what the
process has mapped: importing torch maps libtorch, which the trainer process has and the TUI,
while it trains and after the confusion screen, must not."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.e2e.test_tui_tmux import STARTUP_TIMEOUT, running, shell_line, tmux, tui_process_in  # noqa: F401 - the fixture
from tests.e2e.tmux_helpers import descendants

pytestmark = pytest.mark.slow


def maps_torch(pid: int) -> bool:
    """The process has torch's shared library mapped (``import torch`` loads it)."""
    return any("libtorch" in Path(m.path).name for m in psutil.Process(pid).memory_maps(grouped=True))


def test_the_tui_process_never_maps_torch_while_its_trainer_does(tmux, tmp_path):  # noqa: F811 - the fixture
    runs = tmp_path / "runs"
    tmux.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=1000"), cwd=tmp_path, width=100, height=30)
    tmux.wait_for(running(min_step=20), STARTUP_TIMEOUT, "the run to train")
    tui = tui_process_in(tmux.pane_pid())
    try:
        tmux.keys("c")
        tmux.wait_for("confusion", 15, "the confusion screen")
        tmux.keys("escape")
        tmux.wait_for("events", 15, "the dashboard again")
        trainers = [p for p in descendants(tmux.pane_pid()) if p != tui and maps_torch(p)]
        assert trainers, "no trainer process maps torch: the check could not tell"
        assert not maps_torch(tui), "the TUI process imported torch"
    finally:
        tmux.keys("e")  # early stop: the run ends and its trainer process leaves
        tmux.wait_for("Stop early?", 15, "the early-stop question")
        tmux.keys("y")
        tmux.wait_for("EARLY STOPPED", 60, "the early stop")
        tmux.keys("q")
        tmux.wait_for("EXIT=", 30, "tui-train to quit")
