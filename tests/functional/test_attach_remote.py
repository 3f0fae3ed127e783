"""The TUI on a real trainer process (core.live.remote.RemoteTrainer, the default trainer): start, pause,
detach with d (the run goes on, paused), attach a second app (the history shows the pause), steer it
through the socket, and q -> Stop ends the run as interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core.config import from_dict
from tui_train.core.run.endpoint import POINTER, probe
from tui_train.tui.app import build_app
from tui_train.tui.screens.learning_rate_dialog import LearningRateDialog
from tui_train.tui.screens.quit_dialog import QuitDialog
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.hyperparameter_panel import HyperparameterPanel
from tui_train.tui.widgets.status_badge import StatusBadge

TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def quick_idle(monkeypatch):
    """Pilot waits for the process to go idle after each key (textual._wait.wait_for_idle); the
    viewer thread reading the socket keeps it from looking idle, so each key would cost the 1 s cap.
    The tests wait on what they need instead (helpers.wait_for). Also: the real trainer process,
    not the in-thread one."""
    import asyncio

    async def quick(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr("textual.app.wait_for_idle", quick)
    monkeypatch.setattr("textual.pilot.wait_for_idle", quick)
    monkeypatch.delenv("TUI_TRAIN_IN_PROCESS", raising=False)


def tiny():
    """A digits run that keeps training until told otherwise (tests/unit/test_remote.py's tiny())."""
    return from_dict({
        "name": "tiny", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.05},
        "train": {"epochs": 500, "log_every": 5, "device": "cpu", "num_threads": 1},
        "checkpoint": {"save_best": False},
    })


def badge(app) -> str:
    return str(app.screen.query_one(StatusBadge).render()).strip()


def log_text(app) -> str:
    return "\n".join(app.dashboard.query_one(EventLog).lines_text)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (the first app spawned it: pytest is its parent)."""
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@run_async
async def test_detach_with_d_then_attach_steer_and_stop(tmp_path):
    runs = tmp_path / "runs"
    pid = None
    try:
        app = build_app(config=tiny(), preset="tiny", runs_dir=runs, start_immediately=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.status == "running" and app.trainer is not None, timeout=TIMEOUT,
                           what="the trainer process runs")
            pid = app.trainer.pid
            assert app.detachable and pid != os.getpid()
            await pilot.press("space")
            await wait_for(pilot, lambda: app.status == "paused", what="paused")
            await settle(pilot)
            assert "d Detach" in screen_text(app)
            await pilot.press("d")
            await wait_for(pilot, lambda: not app.is_running, what="exit on d")
        assert app.stop_training(10)
        assert app.trainer.detached and app.left_running() and app.exit_code() == 0
        run_dir = Path(app.run_dir)
        ptr, why = probe(run_dir)
        assert ptr is not None and ptr.pid == pid and alive(pid), why  # the run goes on, paused

        # a second app attaches: the history (the pause) first, then it steers the run through the socket
        again = build_app(runs_dir=runs, attach=run_dir)
        async with again.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: again.status == "paused" and again.trainer is not None
                           and getattr(again.trainer, "viewer_id", ""), timeout=TIMEOUT, what="attached, paused")
            await settle(pilot)
            assert badge(again) == "PAUSED"
            log = log_text(again)
            assert "run started: tiny" in log and "status: PAUSED" in log
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(again.screen, LearningRateDialog))
            again.screen.query_one("#lr-input").value = "0.02"
            await pilot.press("enter")
            panel = again.dashboard.query_one(HyperparameterPanel)
            await wait_for(pilot, lambda: panel.values.get("lr") == 0.02, what="lr applied")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(again.screen, QuitDialog))
            assert "Detach (d)" in screen_text(again)
            await pilot.press("s")
            await wait_for(pilot, lambda: not again.is_running, timeout=15, what="exit after the run ended")
        assert again.stop_training(10)
        again.drain_after_exit()
        assert again.status == "interrupted" and again.exit_code() == 130 and not again.left_running()
        records = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
        applied = [(r["command"], r["origin"]) for r in records if r["event"] == "CommandApplied"]
        assert applied == [("Pause", app.trainer.viewer_id), ("SetLearningRate", again.trainer.viewer_id),
                           ("Interrupt", again.trainer.viewer_id)]
        assert any(r["event"] == "CheckpointSaved" and r["reason"] == "interrupt" for r in records)
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (alive(pid) or (run_dir / POINTER).exists()):
            time.sleep(0.05)
        assert not (run_dir / POINTER).exists() and not alive(pid)
    finally:
        if pid is not None and alive(pid):  # never leave a trainer process behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
