"""The Textual app: owns the training thread and the event pump, routes events to the dashboard.

The engine is injected (``trainer_factory``), so tests drive the app with ``core.testing.FakeTrainer``.
Events travel engine -> ``queue.SimpleQueue`` -> a 10 Hz timer that drains all of them inside one
``batch_update()`` (STYLE.md habit 4) and hands each to ``DashboardScreen.apply``. Commands travel
the other way: the dashboard posts ``DashboardScreen.CommandRequested``, the app submits it
(``TrainApp.submit``) to the trainer. Keys, palette entries and help rows come from ``tui.keys``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, SystemCommand
from textual.screen import Screen

from core import commands as C
from core import config as cfgmod
from core import events as E
from core.config import RunConfig
from core.contract import TrainerLike
from tui import keys
from tui.screens.dashboard_screen import DashboardScreen
from tui.screens.help_screen import HelpScreen
from tui.screens.launcher_screen import LauncherScreen
from tui.screens.quit_dialog import QuitDialog

POLL_INTERVAL = 0.1
"""Seconds between two drains of the event queue (10 Hz)."""

SAVE_BEFORE_QUIT_TIMEOUT = 5.0
"""'Save & quit' waits this long for CheckpointSaved, then quits anyway."""

TERMINATE_DEADLINE = 4.5
"""After SIGHUP/SIGTERM the process exits within this many seconds, whatever Textual does."""

JOIN_TIMEOUT = 15.0
"""After the app exits, run_tui waits this long for the training thread to save and end."""


TrainerFactory = Callable[[RunConfig, str], TrainerLike]
"""(config, preset name) -> trainer."""


class _ThreadDone:
    """Queued by the training thread when trainer.run returns (or raises)."""


NONFINITE_PAUSE = "train.on_nonfinite=pause"
"""Every TUI run, resumed ones too, pauses on a non-finite loss instead of ending, so the dashboard
can offer roll back / resume / stop (NonFiniteDialog). Guarded by
tests/functional/test_dashboard_engine.py::test_real_engine_nonfinite_loss_pauses_and_offers_rollback
and test_dashboard_fake.py::test_launcher_starts_the_run_with_edits (``on_nonfinite == 'pause'``)."""

QUIT_WAITS_FOR = (E.CheckpointSaved, E.RunFinished, E.RunFailed)
"""'Save & quit' exits on the first of these (the checkpoint is written, or the run is over)."""


def default_trainer_factory(runs_dir: Path, resume: Path | None = None, overrides: list[str] | tuple = (),
                            resume_preset: str | None = None, in_process: bool = False) -> TrainerFactory:
    """A factory building the real engine.

    By default the trainer runs in a child process (core.process.ProcessTrainer): the UI then
    costs training no interpreter time, and this process never imports torch. ``in_process``
    (or TUI_TRAIN_IN_PROCESS=1) trains in a thread of this process instead, as the Pilot tests
    with the real engine do.

    With ``resume``, the first trainer continues that checkpoint or run directory (its own config,
    with ``overrides`` applied); later runs started from the launcher are new runs.
    """
    pending = {"resume": resume}
    in_process = in_process or os.environ.get("TUI_TRAIN_IN_PROCESS", "") not in ("", "0")

    def make(config: RunConfig, preset: str) -> TrainerLike:
        if in_process:
            from core.engine import Trainer
        else:
            from core.process import ProcessTrainer as Trainer

        resume_from, pending["resume"] = pending["resume"], None
        if resume_from is not None:
            return Trainer(config, runs_dir=runs_dir, preset=resume_preset, resume=resume_from,
                           resume_overrides=[*overrides, NONFINITE_PAUSE])
        return Trainer(config, runs_dir=runs_dir, preset=preset)

    return make


class TrainApp(App[int]):
    """tui-train's Textual app: launcher, dashboard, dialogs, the training thread."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-train"
    BINDINGS = keys.bindings(keys.APP_KEYS)  # ctrl+c among them: see tui.keys.APP_KEYS

    def __init__(self, *, config: RunConfig | None, preset: str | None, runs_dir: Path,
                 presets_dirs: list[Path] | tuple = (), trainer_factory: TrainerFactory | None = None,
                 start_immediately: bool = False, resume: Path | None = None, overrides: list[str] | tuple = (),
                 poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__()
        self.resume = Path(resume) if resume else None
        """Checkpoint or run directory the first run continues (the default factory only)."""
        self.overrides = list(overrides)
        """``--set`` overrides from the command line: the launcher applies them to the presets it loads."""
        self.initial_config = config
        """Config handed in (from the CLI), or None."""
        self.initial_preset = preset
        """Its preset name."""
        self.runs_dir = Path(runs_dir)
        """Where runs are written."""
        self.presets_dirs = [Path(p) for p in presets_dirs]
        """Extra folders with *.toml presets."""
        self.trainer_factory: TrainerFactory = trainer_factory or default_trainer_factory(
            self.runs_dir, self.resume, self.overrides, preset)
        """Builds the trainer for a run (called in the training thread)."""
        self.start_immediately = start_immediately
        """Go straight to the dashboard when a config is given."""
        self.poll_interval = poll_interval
        """Seconds between event drains."""
        self.handle_signals = False
        """Install SIGHUP/SIGTERM handlers (run_tui sets it; tests do not)."""

        self.trainer: TrainerLike | None = None
        """The current run's trainer, once built."""
        self.dashboard: DashboardScreen | None = None
        """The current run's dashboard, while shown."""
        self.status = "ready"
        """The engine's last reported status for the current run ('ready' before any)."""
        self.run_dir: str | None = None
        """The current run's directory (from RunStarted)."""
        self.last_config: RunConfig | None = config
        """Config of the last run started (the launcher shows it again on n)."""
        self.last_preset: str | None = preset
        """Preset of the last run started."""
        self.events_handled = 0
        """Events drained so far (tests wait on it)."""
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_done = True
        self._pending: list[C.Command] = []
        self._lock = threading.Lock()
        self._quit_after_checkpoint = False
        self._track = E.exhaustive({
            E.RunStarted: self._on_run_started,
            E.StatusChanged: self._on_status,
            E.RunFinished: self._on_status,
            E.RunFailed: self._on_failed,
            **dict.fromkeys((E.StepMetrics, E.EpochMetrics, E.ValidationMetrics, E.TestMetrics, E.CheckpointSaved,
                             E.CommandApplied, E.CommandRejected, E.RunWarning, E.RunNote, E.RunError), E.ignore),
        }, "TrainApp")
        """Event type -> how it changes the app's own state (status, run directory)."""

    # -- life cycle ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.set_interval(self.poll_interval, self.pump_events)
        if self.handle_signals:
            self._install_signal_handlers()
        if self.initial_config is not None and self.start_immediately:
            label = self.initial_preset or (f"resume {self.resume.name}" if self.resume else self.initial_config.name)
            self.start_run(self.initial_config, label)
        else:
            self.push_screen(LauncherScreen(presets_dirs=self.presets_dirs, config=self.initial_config,
                                            preset=self.initial_preset, overrides=self.overrides))

    def on_unmount(self) -> None:
        self._stop.set()  # quitting the app ends training (STYLE.md habit 8)

    @property
    def run_active(self) -> bool:
        """A run was started and has not reported a final status (nor has its thread ended)."""
        return self._thread is not None and not self._thread_done and self.status not in E.FINAL_STATUSES

    @property
    def failed(self) -> bool:
        """The last run failed."""
        return self.status == "failed"

    # -- starting runs ---------------------------------------------------------------------------
    def on_launcher_screen_start_requested(self, message: LauncherScreen.StartRequested) -> None:
        self.start_run(message.config, message.preset)

    def start_run(self, config: RunConfig, preset: str) -> None:
        """Show a fresh dashboard and start training in a daemon thread."""
        if self.run_active:
            self.notify("a run is already active", severity="warning")
            return
        config = cfgmod.replace(config, **{"train.on_nonfinite": "pause"})  # see NONFINITE_PAUSE
        self.last_config, self.last_preset = config, preset
        self.status, self.run_dir, self.trainer = "starting", None, None
        self._events = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending = []
        self._quit_after_checkpoint = False
        self.dashboard = DashboardScreen(preset, config)
        if isinstance(self.screen, LauncherScreen):
            self.switch_screen(self.dashboard)
        else:
            self.push_screen(self.dashboard)
        self._thread_done = False
        # A plain daemon thread rather than a thread worker: Textual runs those in asyncio's
        # default executor, which is joined (up to minutes) when the app's loop closes, so a busy
        # trainer could hold the exit. run_tui joins this one with a timeout instead.
        self._thread = threading.Thread(target=self._train, args=(config, preset, self._stop, self._events.put),
                                        name="tui-train-trainer", daemon=True)
        self._thread.start()
        self._push_run_active()

    def _train(self, config: RunConfig, preset: str, stop: threading.Event, sink: Callable[[E.Event], None]) -> None:
        """The training thread: build the trainer, run it; never raises, always ends with _ThreadDone."""
        try:
            trainer = self.trainer_factory(config, preset)
            with self._lock:
                self.trainer = trainer
                pending, self._pending = self._pending, []
            for command in pending:
                trainer.submit(command)
            trainer.run(stop_event=stop, sink=sink)
        except BaseException as exc:  # noqa: BLE001 - the engine reports its own failures; this catches setup errors
            sink(E.RunFailed(message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(), traceback_path=""))
        finally:
            sink(_ThreadDone())

    def show_launcher(self, message: str = "") -> None:
        """Back to the launcher (n), with the last run's config selected."""
        if self.run_active:
            self.notify("the run is still active: stop it first (e) or quit (q)", severity="warning")
            return
        self.dashboard = None
        launcher = LauncherScreen(presets_dirs=self.presets_dirs, config=self.last_config,
                                  preset=self.last_preset, message=message, overrides=self.overrides)
        self.switch_screen(launcher) if len(self.screen_stack) > 1 else self.push_screen(launcher)

    def _push_run_active(self) -> None:
        """Tell the dashboard whether commands can be sent now (it shows the keys that apply)."""
        if self.dashboard is not None:
            self.dashboard.set_run_active(self.run_active)

    @on(DashboardScreen.NewRunRequested)
    def _new_run_requested(self) -> None:
        self.show_launcher()

    # -- commands --------------------------------------------------------------------------------
    @on(DashboardScreen.CommandRequested)
    def _command_requested(self, message: DashboardScreen.CommandRequested) -> None:
        self.submit(message.command)

    def submit(self, command: C.Command) -> bool:
        """Send a command to the engine; False (and a notice) when no run is active."""
        if not self.run_active:
            self.notify("no active run", severity="warning")
            return False
        with self._lock:
            if self.trainer is None:
                self._pending.append(command)  # the thread is still building the trainer
                return True
            trainer = self.trainer
        trainer.submit(command)
        return True

    # -- the event pump --------------------------------------------------------------------------
    def pump_events(self) -> int:
        """Drain every queued event in one batch_update, then redraw plots that changed."""
        if self.dashboard is not None and not self.dashboard.ready:
            return 0  # the dashboard is being mounted: keep the events for it (the next tick)
        events: list[Any] = []
        q = self._events
        while True:
            try:
                events.append(q.get_nowait())
            except queue.Empty:
                break
        if events:
            with self.batch_update():
                for ev in events:
                    try:
                        self._handle(ev)
                    except Exception as exc:  # noqa: BLE001 - a display bug must not take the run down with it
                        self.log.error(f"cannot show {ev!r}: {exc!r}")
                        if self.dashboard is not None and self.dashboard.ready:
                            self.dashboard.note(f"display error: {type(exc).__name__}: {exc}", style="red")
                if self.dashboard is not None and self.dashboard.ready:
                    self.dashboard.flush()
        elif self.dashboard is not None and self.dashboard.ready:
            self.dashboard.flush()  # updates held back by the rate limits
        self.events_handled += len(events)
        return len(events)

    def _handle(self, ev: Any) -> None:
        if isinstance(ev, _ThreadDone):  # not an engine event: the thread's own last word
            self._thread_ended()
            return
        self._track[type(ev)](ev)
        self._push_run_active()
        if self.dashboard is not None and self.dashboard.ready:
            self.dashboard.apply(ev)
        if self._quit_after_checkpoint and type(ev) in QUIT_WAITS_FOR:
            self._exit_now()

    def _thread_ended(self) -> None:
        self._thread_done = True
        if self.status not in E.FINAL_STATUSES:
            self.status = "interrupted" if self._stop.is_set() else "stopped"
            if self.dashboard is not None:
                self.dashboard.show_thread_ended(self.status)
        self._push_run_active()
        if self._quit_after_checkpoint:
            self._exit_now()

    def _on_run_started(self, ev: E.RunStarted) -> None:
        self.run_dir = ev.run_dir

    def _on_status(self, ev: E.StatusChanged | E.RunFinished) -> None:
        if self.status != "failed":  # a failure is final, whatever is reported after it
            self.status = ev.status

    def _on_failed(self, ev: E.RunFailed) -> None:
        self.status = "failed"

    # -- quitting --------------------------------------------------------------------------------
    def action_request_quit(self) -> None:
        """q: quit now when idle; while a run is active ask, offering to save first."""
        if isinstance(self.screen, QuitDialog):
            self._exit_now()
            return
        if not self.run_active:
            self._exit_now()
            return

        def answered(choice: str | None) -> None:
            if choice == "save" and self.run_active:
                self._quit_after_checkpoint = True
                self.submit(C.SaveCheckpoint(reason="manual"))
                self.notify("saving a checkpoint, then quitting…")
                self.set_timer(SAVE_BEFORE_QUIT_TIMEOUT, self._exit_now)
            elif choice is not None:
                self._exit_now()

        self.push_screen(QuitDialog(), answered)

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit go through the same question."""
        self.action_request_quit()

    def _exit_now(self) -> None:
        self._stop.set()
        code = 1 if self.failed else 0
        self.exit(code, return_code=code)

    def stop_training(self, timeout: float = JOIN_TIMEOUT) -> bool:
        """Set the stop event and wait up to ``timeout`` s for the thread; True if it ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def drain_after_exit(self) -> None:
        """After the app has exited: read the events left in the queue for the final status."""
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                return
            if not isinstance(ev, _ThreadDone):
                self._track[type(ev)](ev)

    def _install_signal_handlers(self) -> None:
        # Textual handles neither SIGHUP nor SIGTERM, and after a hang-up its shutdown can hang:
        # stop training (the engine saves), exit, and let a watchdog end the process (STYLE.md traps).
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_terminate)
        except (NotImplementedError, RuntimeError, AttributeError, ValueError):
            pass

    def _on_terminate(self) -> None:
        # Textual cannot be trusted to shut down once its terminal is gone (STYLE.md): the run is
        # saved by the trainer within a step, and the process is gone within 5 s of the signal.
        deadline = time.monotonic() + TERMINATE_DEADLINE
        self._stop.set()

        def watchdog() -> None:
            self.stop_training(max(0.1, deadline - time.monotonic() - 0.5))
            time.sleep(max(0.0, deadline - time.monotonic()))  # a healthy shutdown ends us before this
            os._exit(1 if self.failed else 0 if self.status in ("completed", "early_stopped") else 130)

        threading.Thread(target=watchdog, name="tui-train-watchdog", daemon=True).start()
        self._exit_now()

    # -- help and palette ------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, the app's keys, and on the dashboard those of its keys that apply now."""
        yield from super().get_system_commands(screen)
        for key in keys.palette_entries(self.run_active, keys.APP_KEYS):
            yield SystemCommand(key.title, key.palette_help, getattr(self, f"action_{key.action}"))
        dash = self.dashboard
        if dash is not None and screen is dash:
            for key in keys.palette_entries(self.run_active):
                yield SystemCommand(key.title, key.palette_help, getattr(dash, f"action_{key.action}"))


def build_app(*, config: RunConfig | None = None, preset: str | None = None, runs_dir: Path = Path("runs"),
              presets_dirs: list[Path] | tuple = (), trainer_factory: TrainerFactory | None = None,
              start_immediately: bool = False, resume: Path | None = None,
              overrides: list[str] | tuple = ()) -> TrainApp:
    """The one factory: the app with its engine injected (``trainer_factory(config, preset)``).

    Without a config, or with ``start_immediately=False``, it opens on the launcher; with a config
    and ``start_immediately=True`` it goes straight to the dashboard and starts training.
    ``resume`` (default factory only) makes that first run continue a checkpoint or run directory;
    ``overrides`` (``--set`` texts) are applied to presets loaded in the launcher and on resume.
    """
    return TrainApp(config=config, preset=preset, runs_dir=Path(runs_dir), presets_dirs=list(presets_dirs),
                    trainer_factory=trainer_factory, start_immediately=start_immediately, resume=resume,
                    overrides=overrides)


def run_tui(*, config: RunConfig | None = None, preset: str | None = None, runs_dir: Path = Path("runs"),
            presets_dirs: list[Path] | tuple = (), trainer_factory: TrainerFactory | None = None,
            start_immediately: bool = False, resume: Path | None = None, overrides: list[str] | tuple = ()) -> int:
    """Run the app in this terminal until the user quits. Returns 0, or 1 if the last run failed."""
    app = build_app(config=config, preset=preset, runs_dir=runs_dir, presets_dirs=presets_dirs,
                    trainer_factory=trainer_factory, start_immediately=start_immediately, resume=resume,
                    overrides=overrides)
    app.handle_signals = True
    try:
        app.run()
    finally:
        ended = app.stop_training(JOIN_TIMEOUT)
        app.drain_after_exit()
    if app.run_dir:
        note = "" if ended else " (training thread still busy; exiting anyway)"
        try:
            print(f"tui-train: {app.status} · {app.run_dir}{note}")
        except OSError:  # the terminal is gone (hang-up): the run is saved, say nothing
            pass
    if app.failed:
        return 1
    return 130 if app.status == "interrupted" else 0  # as headless: see core.headless.EXIT_CODES
