"""Pilot tests with the real engine on a tiny digits run (CPU, a few seconds each)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import tui_train.core.train.engine as engine
from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import load_config
from tui_train.tui.app import build_app
from tui_train.tui.screens.confirm_dialog import ConfirmDialog
from tui_train.tui.screens.learning_rate_dialog import LearningRateDialog
from tui_train.tui.screens.quit_dialog import QuitDialog
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.hyperparameter_panel import HyperparameterPanel
from tui_train.tui.widgets.status_badge import StatusBadge


@pytest.fixture(autouse=True)
def quick_idle(monkeypatch):
    """Pilot waits for the *process* to go idle after each key (textual._wait.wait_for_idle), which
    never happens while the training thread computes, so every key would cost its 1 s cap; the
    tests wait on the events they need instead (helpers.wait_for)."""
    import asyncio

    async def quick(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr("textual.app.wait_for_idle", quick)
    monkeypatch.setattr("textual.pilot.wait_for_idle", quick)


class Tee:
    """Wraps the real Trainer and keeps a copy of every event it emits (for assertions); what the
    app reads of a trainer (core.contract.TrainerLike) is the wrapped one's."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.events: list[E.Event] = []

    detachable = property(lambda self: self.trainer.detachable)
    detached = property(lambda self: self.trainer.detached)
    viewers = property(lambda self: self.trainer.viewers)
    run_dir = property(lambda self: self.trainer.run_dir)

    def submit(self, command: C.Command) -> None:
        self.trainer.submit(command)

    def run(self, stop_event: threading.Event | None = None, sink=None) -> dict:
        def tee(event: E.Event) -> None:
            self.events.append(event)
            sink(event)
        return self.trainer.run(stop_event=stop_event, sink=tee)

    def of(self, kind: type) -> list:
        return [e for e in list(self.events) if isinstance(e, kind)]


def engine_app(tmp_path: Path, *overrides: str):
    cfg = load_config("digits-mlp", overrides=[
        "train.epochs=2000", "train.log_every=5", "schedule.name=constant", "schedule.warmup_steps=0",
        "train.device=cpu", "train.num_threads=1", "checkpoint.save_best=false", *overrides])
    tees: list[Tee] = []

    def factory(config, preset):
        tee = Tee(engine.Trainer(config, runs_dir=tmp_path, preset=preset))
        tees.append(tee)
        return tee

    app = build_app(config=cfg, preset="digits-mlp", runs_dir=tmp_path, trainer_factory=factory, start_immediately=True)
    return app, tees


def badge(app) -> str:
    return str(app.screen.query_one(StatusBadge).render()).strip()


@run_async
async def test_real_engine_pause_lr_save_invalid_and_early_stop(tmp_path):
    app, tees = engine_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status == "running", timeout=60, what="engine start")
        tee = tees[0]
        await wait_for(pilot, lambda: len(tee.of(E.StepMetrics)) >= 2, what="first steps")

        # pause: the engine reports it, then takes no optimizer steps
        await pilot.press("space")
        await wait_for(pilot, lambda: app.status == "paused", what="paused")
        await settle(pilot)
        assert badge(app) == "PAUSED"
        steps_seen = len(tee.of(E.StepMetrics))
        step_at_pause = tee.trainer.state.step
        time.sleep(0.6)
        await settle(pilot)
        assert tee.trainer.state.step == step_at_pause
        assert len(tee.of(E.StepMetrics)) == steps_seen
        await pilot.press("space")
        await wait_for(pilot, lambda: tee.trainer.state.step > step_at_pause, what="steps after resume")
        assert app.status == "running"

        # l: the optimizer's LR changes at the next step
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LearningRateDialog))
        app.screen.query_one("#lr-input").value = "0.005"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(e.key == "lr" and e.new == 0.005 for e in tee.of(E.CommandApplied)), what="lr applied")
        applied = next(e for e in tee.of(E.CommandApplied) if e.key == "lr")
        await wait_for(pilot, lambda: any(s.step > applied.step for s in tee.of(E.StepMetrics)), what="a step after")
        after = next(s for s in tee.of(E.StepMetrics) if s.step > applied.step)
        assert after.lr == pytest.approx(0.005)
        assert tee.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
        await settle(pilot)
        assert app.dashboard.query_one(HyperparameterPanel).values["lr"] == 0.005
        assert "5.00e-03" in screen_text(app)

        # invalid LR text: refused in the dialog, nothing submitted, nothing changed
        n_commands = len(tee.of(E.CommandApplied)) + len(tee.of(E.CommandRejected))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LearningRateDialog))
        app.screen.query_one("#lr-input").value = "-1"
        await pilot.press("enter")
        await settle(pilot)
        assert "must be > 0" in str(app.screen.query_one("#lr-error").render())
        await pilot.press("escape")
        await settle(pilot)
        assert len(tee.of(E.CommandApplied)) + len(tee.of(E.CommandRejected)) == n_commands
        # and the engine itself rejects what the dialog would have refused
        app.submit(C.SetLearningRate(float("nan")))
        await wait_for(pilot, lambda: tee.of(E.CommandRejected), what="rejection")
        assert tee.trainer.state.base_lr == 0.005
        await settle(pilot)
        assert "rejected" in "\n".join(app.dashboard.query_one(EventLog).lines_text)

        # s: a checkpoint file exists at the path the log shows
        await pilot.press("s")
        await wait_for(pilot, lambda: any(c.reason == "manual" for c in tee.of(E.CheckpointSaved)), what="checkpoint")
        saved = next(c for c in tee.of(E.CheckpointSaved) if c.reason == "manual")
        assert Path(saved.path).is_file()
        await settle(pilot)
        assert saved.path in "\n".join(app.dashboard.query_one(EventLog).lines_text)

        # e: confirm, then the run ends as early_stopped
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.status == "early_stopped" and not app.run_active, timeout=30, what="early stop")
        await settle(pilot)
        assert badge(app) == "EARLY STOPPED"
        finished = tee.of(E.RunFinished)
        assert finished and finished[0].status == "early_stopped"
        summary = json.loads((Path(finished[0].run_dir) / "summary.json").read_text())
        assert summary["status"] == "early_stopped"
        await pilot.press("q")  # not active any more: quits without asking
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 0


@run_async
async def test_real_engine_quit_stops_training_and_never_hangs(tmp_path):
    app, tees = engine_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.status == "running", timeout=60, what="engine start")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.stop_training(30), "the stop event must end the training thread"
    app.drain_after_exit()
    assert app.status == "interrupted"
    run_dir = Path(tees[0].of(E.RunStarted)[0].run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


@run_async
async def test_real_engine_nonfinite_loss_pauses_and_offers_rollback(tmp_path):
    from tests.nan_model import SPEC
    from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog

    cfg = load_config("digits-mlp", overrides=[
        f'model.name="{SPEC}"', "model.kwargs={after = 12}", "train.epochs=50", "train.log_every=5", "schedule.name=constant",
        "schedule.warmup_steps=0", "train.device=cpu", "train.num_threads=1"])
    tees: list[Tee] = []

    def factory(config, preset):
        tees.append(Tee(engine.Trainer(config, runs_dir=tmp_path, preset=preset)))
        return tees[-1]

    app = build_app(config=cfg, preset="nan", runs_dir=tmp_path, trainer_factory=factory, start_immediately=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NonFiniteDialog), timeout=60, what="non-finite dialog")
        assert app.status == "paused" and badge_text(app) == "PAUSED"
        tee = tees[0]
        lr_before = tee.trainer.state.base_lr
        await pilot.press("b")
        await wait_for(pilot, lambda: any(e.command == "Rollback" for e in tee.of(E.CommandApplied)), what="rollback")
        ack = next(e for e in tee.of(E.CommandApplied) if e.command == "Rollback")
        assert ack.new == pytest.approx(lr_before / 2)
        # the model keeps producing NaN: the engine pauses again, and this time we stop
        await wait_for(pilot, lambda: isinstance(app.screen, NonFiniteDialog), timeout=60, what="second dialog")
        await pilot.press("e")
        await wait_for(pilot, lambda: app.status == "early_stopped", timeout=60, what="stopped")
        saved = [e for e in tee.of(E.CheckpointSaved)]
        assert saved, "\n".join(describe(e) for e in tee.events[-12:])
        import torch

        from tui_train.core.train.checkpoint import load
        for e in saved:
            assert all(torch.isfinite(t).all() for t in load(Path(e.path))["model"].values())
        await pilot.press("q")


def badge_text(app) -> str:
    return str(app.dashboard.query_one(StatusBadge).render()).strip()


def describe(e) -> str:
    return f"{e.kind}: " + str(getattr(e, "message", getattr(e, "detail", getattr(e, "status", ""))))


@run_async
async def test_a_reached_target_ends_the_run_and_the_dashboard_shows_its_time(tmp_path):
    app, tees = engine_app(tmp_path, "train.target=val_accuracy >= 0.8")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.status == "completed", timeout=60, what="the target")
        await settle(pilot)
        summary = tees[0].of(E.RunFinished)[0].summary
        assert summary["reason"].startswith("target reached") and summary["epochs_completed"] < 2000
        epoch = summary["target"]["epoch"] + 1
        assert f"val_accuracy >= 0.8 in {summary['time_to_target']:.1f}s train" in screen_text(app)
        assert f"wall, epoch {epoch}" in screen_text(app) and "FINISHED" in screen_text(app)


@run_async
async def test_real_engine_lr_range_test_on_a_paused_run(tmp_path):
    import torch

    from tui_train.tui.screens.lr_find_screen import LrFindScreen

    app, tees = engine_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.status == "running", timeout=60, what="engine start")
        tee = tees[0]
        await pilot.press("space")
        await wait_for(pilot, lambda: app.status == "paused", what="paused")
        weights = {k: v.clone() for k, v in tee.trainer.model.state_dict().items()}
        step = tee.trainer.state.step
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen) and app.screen.curve is not None, timeout=60,
                       what="the trainer's curve")
        found = tee.of(E.LearningRateFound)[-1]
        assert app.screen.curve.suggestion == found.suggestions["valley"] and found.step == step
        assert all(torch.equal(weights[k], v) for k, v in tee.trainer.model.state_dict().items())
        await pilot.press("enter")
        await wait_for(pilot, lambda: tee.trainer.state.base_lr == found.suggestions["valley"], what="the suggestion applied")
        lr_change = [e for e in tee.of(E.CommandApplied) if e.key == "lr"][-1]
        assert lr_change.command == "SetLearningRate" and app.status == "paused" and tee.trainer.state.step == step
        assert tee.trainer.state.history[-1]["command"] == "SetLearningRate"  # an intervention like any LR change
        app.exit()
