"""Leaving a run (issue 9) on a scripted fake: d detaches, q asks (stop / detach / cancel), a hang-up
detaches or stops; the launcher shows live runs first and attaches to one; an attached dashboard
replays the history it is fed.

A detachable fake stands for a trainer process of its own (core.live.remote.RemoteTrainer: setting the
stop event leaves the run going); the default fake for the in-thread engine (it ends the run).
test_attach_remote.py does the same with a real trainer process.
"""

from __future__ import annotations

import os
import threading
import time
import types
from pathlib import Path

import pytest

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.run.endpoint import Pointer
from tui_train.core.testing import FakeTrainer
from tui_train.tui import app as appmod
from tui_train.tui.app import build_app, closing_words
from tui_train.tui.screens import run_picker
from tui_train.tui.screens.help_screen import HelpScreen
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog
from tui_train.tui.screens.quit_dialog import QuitDialog
from tui_train.tui.screens.run_picker import RunPicker
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.hyperparameter_panel import HyperparameterPanel
from tui_train.tui.widgets.status_badge import StatusBadge

SIZE = (120, 40)
ENDING = (C.Interrupt, C.Stop)
DEADLINE = appmod.TERMINATE_DEADLINE
"""The product's hang-up deadline, read before the ``watchdog`` fixture shortens it."""


async def started(pilot, fakes):
    await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and pilot.app.status == "running"
                   and pilot.app.trainer is not None, what="run start")
    await settle(pilot)


def badge(app) -> str:
    return str(app.screen.query_one(StatusBadge).render()).strip()


def log_text(app) -> str:
    return "\n".join(app.dashboard.query_one(EventLog).lines_text)


def assert_detached(app, fake: FakeTrainer) -> None:
    assert fake.finished.wait(5), "run() must return once detached"
    assert fake.detached and fake.status == "running", "the run goes on"
    assert not any(isinstance(c, ENDING) for c in fake.commands)
    assert app.stop_training(5)
    app.drain_after_exit()
    assert app.detached and app.left_running() and app.exit_code() == 0
    assert closing_words(app) == (f"tui-train: detached; the run goes on · attach again: tui-train attach {fake.run_dir}", 0)


# --------------------------------------------------------------------------- d and q


@run_async
async def test_d_detaches_and_the_run_goes_on(tmp_path):
    app, fakes = fake_app(tmp_path, detachable=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        assert "d Detach" in screen_text(app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Detach" in titles
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "detach: leave the run training; `tui-train attach` comes back" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("d")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 0
    assert_detached(app, fakes[0])


@run_async
async def test_d_is_not_offered_when_the_run_cannot_go_on(tmp_path):
    app, fakes = fake_app(tmp_path)  # the in-thread engine's stand-in: not detachable
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        assert "Detach" not in screen_text(app)
        assert "Detach" not in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("d")
        await settle(pilot)
        assert app.is_running and not fakes[0].finished.is_set()
        assert not app.detach()  # asked directly: refused, with a notice
        assert app.is_running and not app.detached


@pytest.mark.parametrize("keys", [("q", "d"), ("q", "q"), ("ctrl+c", "ctrl+c")])
@run_async
async def test_q_then_detach_leaves_the_run_going(tmp_path, keys):
    app, fakes = fake_app(tmp_path, detachable=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press(keys[0])
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        text = screen_text(app)
        assert "Stop (s)" in text and "Detach (d)" in text and "Cancel (c)" in text
        await pilot.press(keys[1])  # d, or q/ctrl+c again: Detach (nothing is lost)
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert_detached(app, fakes[0])


@run_async
async def test_q_then_stop_interrupts_and_quits_when_the_run_has_ended(tmp_path):
    app, fakes = fake_app(tmp_path, detachable=True)
    seen: list[E.Event] = []
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fake = fakes[0]
        fake.submit(C.Pause())  # Stop works from a pause too
        await wait_for(pilot, lambda: app.status == "paused")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        real_handle = app._handle
        app._handle = lambda ev: (seen.append(ev), real_handle(ev))  # what the app saw before it quit
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="exit after RunFinished")
    assert fake.commands[-1] == C.Interrupt("quit")
    seen = [e for e in seen if type(e) in E.EVENT_TYPES]  # not the thread's own last word
    assert isinstance(seen[-1], E.RunFinished) and seen[-1].status == "interrupted"
    assert any(isinstance(e, E.CheckpointSaved) and e.reason == "interrupt" for e in seen)
    assert not fake.detached and fake.status == "interrupted"
    assert app.stop_training(5)
    app.drain_after_exit()
    assert app.status == "interrupted" and not app.left_running() and app.exit_code() == 130
    assert closing_words(app) == ("tui-train: interrupted · runs/fake-run", 130)


@run_async
async def test_stop_quits_anyway_when_the_trainer_does_not_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(appmod, "SAVE_BEFORE_QUIT_TIMEOUT", 0.3)
    app, fakes = fake_app(tmp_path, detachable=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fake = fakes[0]
        fake.submit = lambda command, origin="": fake.commands.append(command)  # recorded, never applied
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, timeout=5, what="exit after the timeout")
    assert fake.commands == [C.Interrupt("quit")]
    assert app.stop_training(5)
    assert app.stop_requested and not app.left_running()  # a trainer process would finish saving on its own
    assert closing_words(app) == ("tui-train: stopping · runs/fake-run (the trainer process finishes saving on its own)", 130)


@pytest.mark.parametrize("cancel", ["c", "escape"])
@run_async
async def test_cancel_stays(tmp_path, cancel):
    app, fakes = fake_app(tmp_path, detachable=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.press(cancel)
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitDialog))
        await settle(pilot)
        assert app.is_running and app.run_active and not fakes[0].finished.is_set()
        assert fakes[0].commands == [] and not app.detached


# --------------------------------------------------------------------------- hang-up


@pytest.fixture
def watchdog(monkeypatch):
    """_on_terminate's watchdog ends the process with os._exit: record the code instead, and make
    every test wait for the watchdog so that it cannot outlive the patch (and kill pytest)."""
    codes: list[int] = []
    monkeypatch.setattr(appmod, "TERMINATE_DEADLINE", 1.5)
    monkeypatch.setattr(os, "_exit", codes.append)
    yield codes
    for thread in threading.enumerate():
        if thread.name == "tui-train-watchdog":
            thread.join(10)
            assert not thread.is_alive()


@run_async
async def test_hangup_detaches_by_default(tmp_path, watchdog):
    app, fakes = fake_app(tmp_path, detachable=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        assert app.options.on_hangup == "detach"
        app._on_terminate()
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert_detached(app, fakes[0])
    next(t for t in threading.enumerate() if t.name == "tui-train-watchdog").join(10)
    assert watchdog == [0]


@run_async
async def test_hangup_with_on_hangup_stop_interrupts_first(tmp_path, watchdog, monkeypatch):
    fakes: list[FakeTrainer] = []

    def factory(config, preset):
        fakes.append(FakeTrainer(config, preset=preset, detachable=True))
        return fakes[-1]

    from tests.functional.helpers import tiny_config

    app = build_app(config=tiny_config(), preset="tiny", runs_dir=tmp_path, trainer_factory=factory,
                    start_immediately=True, on_hangup="stop")
    # the product's deadline, not the fixture's 1.5 s: a busy machine may take longer than that to
    # end the run, and a watchdog firing first would take the RunFinished the app quits on
    monkeypatch.setattr(appmod, "TERMINATE_DEADLINE", DEADLINE)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        t0 = time.monotonic()
        app._on_terminate()
        await wait_for(pilot, lambda: not app.is_running, timeout=DEADLINE, what="exit once the run has ended")
        assert watchdog == [], "the app waited for the watchdog instead of quitting when the run ended"
        print(f"quit {time.monotonic() - t0:.1f}s after the hang-up, once the run had ended")
    fake = fakes[0]
    assert fake.commands == [C.Interrupt("hangup")]
    assert fake.finished.wait(5) and fake.status == "interrupted" and not fake.detached
    assert app.stop_training(5)
    app.drain_after_exit()
    assert app.status == "interrupted" and app.exit_code() == 130 and not app.left_running()
    next(t for t in threading.enumerate() if t.name == "tui-train-watchdog").join(10)
    assert watchdog == [130]


@run_async
async def test_hangup_stops_an_in_thread_run_whatever_on_hangup_says(tmp_path, watchdog):
    app, fakes = fake_app(tmp_path)  # not detachable: the stop event ends the run, saving
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        app._on_terminate()
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert fakes[0].finished.wait(5) and fakes[0].status == "interrupted"
    assert app.stop_training(5)
    app.drain_after_exit()
    assert not app.detached and app.exit_code() == 130
    next(t for t in threading.enumerate() if t.name == "tui-train-watchdog").join(10)
    assert watchdog == [130]


@pytest.mark.parametrize(("on_hangup", "code"), [("detach", 0), ("stop", 130)])
@run_async
async def test_the_watchdog_ends_the_process_when_the_shutdown_hangs(tmp_path, watchdog, on_hangup, code):
    """README: after a hang-up the viewer exits within 5 s (tui.app.TERMINATE_DEADLINE), whatever
    Textual does (STYLE.md traps: its shutdown can hang once the terminal is gone). Here Textual
    never exits and, with ``stop``, the trainer process never ends either: only the watchdog can
    end the process. It does, at the deadline and not before, with the README's code: 0 for a
    viewer that detached (the run goes on), 130 for a run it meant to stop."""
    assert DEADLINE < 5.0  # the README's deadline, with room for the exit itself
    fakes: list[FakeTrainer] = []

    def factory(config, preset):
        fakes.append(FakeTrainer(config, preset=preset, detachable=True))
        return fakes[-1]

    from tests.functional.helpers import tiny_config

    app = build_app(config=tiny_config(), preset="tiny", runs_dir=tmp_path, trainer_factory=factory,
                    start_immediately=True, on_hangup=on_hangup)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        app.exit = lambda *args, **kwargs: None  # the hang: Textual never shuts down
        fakes[0].submit = lambda *args, **kwargs: None  # and the trainer never hears the Interrupt
        t0 = time.monotonic()
        app._on_terminate()
        # a generous bound: a busy machine may be slow to notice, a broken watchdog never fires
        await wait_for(pilot, lambda: watchdog, timeout=appmod.TERMINATE_DEADLINE + 10, what="the watchdog")
        elapsed = time.monotonic() - t0
        assert app.is_running, "Textual exited: the watchdog was not what ended the process"
        del app.exit
    print(f"the watchdog fired {elapsed:.1f}s after the hang-up (deadline {appmod.TERMINATE_DEADLINE}s)")
    assert watchdog == [code]
    assert elapsed >= appmod.TERMINATE_DEADLINE, "the watchdog cut the graceful path short"
    assert fakes[0].status == "running"  # nothing ended the run behind the viewer's back


def test_on_hangup_must_be_detach_or_stop(tmp_path):
    with pytest.raises(ValueError, match="on_hangup"):
        build_app(runs_dir=tmp_path, on_hangup="ignore")


# --------------------------------------------------------------------------- live runs, the picker


NOW = 1_800_000_000.0
"""The clock the picker reads in these tests (its ages are then exact, however busy the machine)."""


def pointers(tmp_path: Path, *names: str) -> list[Pointer]:
    now = NOW
    return [Pointer(run_dir=tmp_path / name, socket=tmp_path / f"{name}.sock", pid=1000 + i, host="",
                    started=now - 60 * (i + 1)) for i, name in enumerate(names)]


def attach_app(tmp_path: Path, monkeypatch, live_now: list[Pointer], **kwargs):
    """An app whose live_runs() finds ``live_now`` and whose attached trainers are detachable fakes."""
    monkeypatch.setattr("tui_train.core.run.endpoint.live_runs", lambda runs_dir: list(live_now))
    monkeypatch.setattr(run_picker, "time", types.SimpleNamespace(time=lambda: NOW))
    made: list[tuple[Path, FakeTrainer]] = []

    def attach_factory(run_dir: Path) -> FakeTrainer:
        fake = FakeTrainer(run_dir=str(run_dir), preset="tiny", detachable=True)
        made.append((run_dir, fake))
        return fake

    return build_app(runs_dir=tmp_path, attach_factory=attach_factory, **kwargs), made


@run_async
async def test_launcher_shows_live_runs_first_and_a_attaches(tmp_path, monkeypatch):
    live = pointers(tmp_path, "20250101-120000-mnist-cnn", "20250101-110000-digits-mlp")
    app, made = attach_app(tmp_path, monkeypatch, live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await settle(pilot)
        text = screen_text(app)
        assert text.splitlines()[0].strip().startswith("2 runs training · a: attach")
        assert "a Attach" in text
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        text = screen_text(app)
        assert "20250101-120000-mnist-cnn · pid 1000 · started 1m 00s ago" in text
        assert "20250101-110000-digits-mlp · pid 1001 · started 2m 00s ago" in text
        await pilot.press("escape")  # back to the launcher
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: made and app.status == "running", what="attached")
        assert made[0][0] == live[1].run_dir
        await settle(pilot)
        assert badge(app) == "RUNNING" and app.detachable
        assert f"attaching to {live[1].run_dir.name}" in log_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert made[0][1].detached


@run_async
async def test_launcher_names_a_single_live_run_and_hides_a_without_any(tmp_path, monkeypatch):
    live = pointers(tmp_path, "20250101-120000-mnist-cnn")
    app, _ = attach_app(tmp_path, monkeypatch, live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await settle(pilot)
        assert screen_text(app).splitlines()[0].strip().startswith("20250101-120000-mnist-cnn is training · a: attach")
    app, made = attach_app(tmp_path, monkeypatch, [])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await settle(pilot)
        text = screen_text(app)
        assert "training" not in text.splitlines()[0] and "Attach" not in text
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, LauncherScreen) and made == []


@run_async
async def test_live_opens_on_the_picker_and_esc_quits(tmp_path, monkeypatch):
    live = pointers(tmp_path, "run-a", "run-b")
    app, made = attach_app(tmp_path, monkeypatch, [], live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        await pilot.press("enter")
        await wait_for(pilot, lambda: made and app.status == "running", what="attached")
        assert made[0][0] == live[0].run_dir
    app, made = attach_app(tmp_path, monkeypatch, [], live=live)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunPicker))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 0 and made == []


# --------------------------------------------------------------------------- an attached dashboard


def history(nonfinite_then_resumed: bool = False, end_in_nonfinite: bool = False) -> list[E.Event]:
    """What an attached viewer is fed first (after RunStarted and 'running'): many steps, a
    hyperparameter change, a pause; optionally a non-finite pause that was answered."""
    out: list[E.Event] = [E.StepMetrics(step=s, epoch=s // 100, epoch_progress=(s % 100) / 100, loss=2.0 / (1 + s / 50),
                                        lr=1e-3, samples_per_second=6400.0, accuracy=0.5, elapsed=s / 100)
                          for s in range(5, 4000, 5)]
    out.append(E.CommandApplied(command="SetHyperparameter", detail="momentum 0 -> 0.9", step=3995, key="momentum",
                                old=0.0, new=0.9, origin="ctl-3"))
    if nonfinite_then_resumed:
        out.append(E.StatusChanged(status="paused", reason="non-finite loss (nan) at step 3995", step=3995, cause="nonfinite"))
        out.append(E.CommandApplied(command="Rollback", detail="rolled back", step=3995, key="lr", old=1e-3, new=5e-4))
        out.append(E.StatusChanged(status="running", reason="rolled back", step=3995, cause="command"))
    if end_in_nonfinite:
        out.append(E.StatusChanged(status="paused", reason="non-finite loss (inf) at step 3995", step=3995, cause="nonfinite"))
    else:
        out.append(E.StatusChanged(status="paused", reason="paused by ctl-3", step=3995, cause="command"))
    return out


@run_async
async def test_an_attached_dashboard_shows_the_state_the_history_ends_in(tmp_path):
    fakes: list[FakeTrainer] = []

    def attach_factory(run_dir):
        fakes.append(FakeTrainer(run_dir=str(run_dir), detachable=True, script=history(nonfinite_then_resumed=True)))
        return fakes[-1]

    app = build_app(runs_dir=tmp_path, attach=tmp_path / "run-x", attach_factory=attach_factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and app.status == "paused", what="history")
        await settle(pilot)
        assert badge(app) == "PAUSED"
        assert not isinstance(app.screen, NonFiniteDialog)  # that pause was answered: no stale dialog
        panel = app.dashboard.query_one(HyperparameterPanel)
        assert panel.values["momentum"] == 0.9 and panel.values["lr"] == 5e-4
        log = log_text(app)
        assert "paused by ctl-3" in log and "momentum 0 -> 0.9" in log
        await pilot.press("space")  # every key works: resume
        await wait_for(pilot, lambda: app.status == "running")
        assert fakes[0].commands == [C.Resume()]


@run_async
async def test_an_attached_run_still_in_a_nonfinite_pause_asks_once(tmp_path):
    fakes: list[FakeTrainer] = []

    def attach_factory(run_dir):
        fakes.append(FakeTrainer(run_dir=str(run_dir), detachable=True,
                                 script=history(nonfinite_then_resumed=True, end_in_nonfinite=True)))
        return fakes[-1]

    app = build_app(runs_dir=tmp_path, attach=tmp_path / "run-x", attach_factory=attach_factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NonFiniteDialog), what="the dialog")
        await settle(pilot)
        assert sum(isinstance(s, NonFiniteDialog) for s in app.screen_stack) == 1
        assert "(inf)" in screen_text(app)
        # another viewer answers it: the dialog goes away by itself
        fakes[0].emit(E.StatusChanged(status="running", reason="resumed by ctl-4", step=3995, cause="command"))
        await wait_for(pilot, lambda: not isinstance(app.screen, NonFiniteDialog), what="dialog closed")
        await settle(pilot)
        assert badge(app) == "RUNNING" and fakes[0].commands == []


@run_async
async def test_a_long_history_costs_one_table_and_log_write_per_drain(tmp_path, monkeypatch):
    # an attached viewer is handed thousands of events at once: each drain writes the epoch table
    # and the event log once (not once per epoch), and the log keeps only what it can show
    from tui_train.tui.widgets.epoch_table import MAX_ROWS, EpochTable

    calls = {"table": 0, "pump": 0}
    real_flush, real_pump = EpochTable.flush, appmod.TrainApp.pump_events

    def counting_flush(self, force=False):
        calls["table"] += 1
        return real_flush(self, force)

    def counting_pump(self):
        calls["pump"] += 1
        return real_pump(self)

    monkeypatch.setattr(EpochTable, "flush", counting_flush)
    monkeypatch.setattr(appmod.TrainApp, "pump_events", counting_pump)
    script: list[E.Event] = []
    for epoch in range(600):
        for i in range(1, 8):
            step = epoch * 7 + i
            script.append(E.StepMetrics(step=step, epoch=epoch, epoch_progress=i / 7, loss=1.0 / (1 + step), lr=1e-3,
                                        samples_per_second=1e4, accuracy=0.5, elapsed=float(step)))
        script.append(E.EpochMetrics(epoch=epoch, step=epoch * 7 + 7, train={"loss": 0.5, "accuracy": 0.8},
                                     val={"loss": 0.4, "accuracy": 0.85}, lr=1e-3, seconds=1.0, is_best=False))
        script.append(E.CheckpointSaved(path=f"runs/x/checkpoints/e{epoch}.pt", step=epoch * 7 + 7, epoch=epoch, reason="last"))
    fakes: list[FakeTrainer] = []

    def attach_factory(run_dir):
        fakes.append(FakeTrainer(run_dir=str(run_dir), detachable=True, script=script, epochs=600, steps_per_epoch=7))
        return fakes[-1]

    app = build_app(runs_dir=tmp_path, attach=tmp_path / "run-x", attach_factory=attach_factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set()
                       and app.dashboard.query_one(EpochTable).row_count == MAX_ROWS, timeout=20, what="the history shown")
        await settle(pilot)
        assert calls["table"] <= calls["pump"] + 2
        table = app.dashboard.query_one(EpochTable)  # the newest MAX_ROWS epochs, in order
        assert [table.get_row_at(i)[0] for i in (0, MAX_ROWS - 1)] == [str(600 - MAX_ROWS + 1), "600"]
        log = app.dashboard.query_one(EventLog)
        assert len(log.lines) <= 1000 and log_text(app).splitlines()[-1].endswith("e599.pt")
        assert badge(app) == "RUNNING"
