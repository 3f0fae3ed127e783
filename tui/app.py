"""The Textual app: holds the current run's session and the screens, pumps events to the dashboard.

One run's state (its trainer, training thread, stop event, event queue, folded status, fork and
exit code) is a :class:`tui.session.RunSession`, a fresh one per run. The engine is injected
(``trainer_factory``), so tests drive the app with ``core.testing.FakeTrainer``. Events travel
engine -> the session's ``queue.SimpleQueue`` -> a 10 Hz timer that drains all of them inside one
``batch_update()`` (STYLE.md habit 4) and hands each to ``DashboardScreen.apply``. Commands travel
the other way: the dashboard calls the ``submit`` the app injected (``TrainApp.submit``; a
message would wait behind a repaint, see ``DashboardScreen.submit_command``), the session hands
them to the trainer. Keys, palette entries and help rows come from ``tui.keys``.

The real trainer is a process of its own (``core.live.remote.RemoteTrainer``: the run outlives this
app). Leaving is then a choice: *detach* (``d``, the quit dialog's Detach, a hang-up by default)
lets the run go on, *stop* (the quit dialog's Stop) submits ``Interrupt`` and quits once the run
has ended (a hang-up: :mod:`tui.hangup`). The in-thread trainer (``TUI_TRAIN_IN_PROCESS=1``, tests)
is not detachable: quitting sets its stop event, which saves and ends the run, as before.
``attach`` opens the dashboard on a run already training, ``live`` on a picker of such runs,
``runs_screen`` on the Runs screen (every run, past and live: a finished one is replayed from its
files on a dashboard of its own). Making a run the current one (started, attached to, replayed,
forked) is a :class:`tui.run_starter.RunStarter`'s (``TrainApp.starter``); the app routes the messages.

``sweep`` (``tui-train sweep`` on a terminal, :func:`run_sweep_tui`) opens on the Sweep screen of a
sweep this app drives: a :class:`tui.sweep_session.SweepSession`, its driver in a daemon thread
(the trials are processes of their own). Its trials open on dashboards of their own (attached or
replayed) from which Esc comes back; quitting asks whether to stop the sweep or leave it going, and
the process exits as headless does (0 completed or stopped, 130 interrupted). A trial's sweep
opened from the Runs screen is shown read-only unless this app drives it. What the app does about
sweeps (their screens, the quit question, a hang-up) is a :class:`tui.sweep_host.SweepHost`'s.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, SystemCommand
from textual.screen import Screen

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import RunConfig
from tui_train.core.contract import TrainerLike
from tui_train.core.heap import settle_heap
from tui_train.tui import hangup, keys
from tui_train.tui.options import AppOptions
from tui_train.tui.run_starter import RunStarter
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.help_screen import HelpScreen
from tui_train.tui.screens.launcher_screen import LauncherScreen, find_live_runs
from tui_train.tui.screens.quit_dialog import DETACH, STOP, QuitDialog
from tui_train.tui.screens.run_picker import RunPicker
from tui_train.tui.screens.runs_screen import ReplayDashboard, RunsScreen
from tui_train.tui.screens.sweep_quit_dialog import SweepQuitDialog
from tui_train.tui.screens.sweep_screen import SweepScreen
from tui_train.tui.screens.trial_dashboard import TrialDashboard, TrialReplay
from tui_train.tui.session import Ending, RunSession, ThreadDone
from tui_train.tui.sweep_host import SweepHost
from tui_train.tui.sweep_session import DriverFactory, SweepSession, default_driver_factory

if TYPE_CHECKING:
    from tui_train.core.sweep.driver import SweepDriver
    from tui_train.core.sweep.record import SweepRecord

SAVE_BEFORE_QUIT_TIMEOUT = 5.0
"""The quit dialog's Stop waits this long for the run to end, then quits anyway (a trainer process
finishes saving on its own)."""

TERMINATE_DEADLINE = 4.5
"""After SIGHUP/SIGTERM the process exits within this many seconds, whatever Textual does."""

JOIN_TIMEOUT = 15.0
"""After the app exits, run_tui waits this long for the training thread to save and end."""


TrainerFactory = Callable[[RunConfig, str], TrainerLike]
"""(config, preset name) -> trainer."""

AttachFactory = Callable[[Path], TrainerLike]
"""(a live run's directory) -> a trainer attached to it."""

NONFINITE_PAUSE = "train.on_nonfinite=pause"
"""Every TUI run, resumed ones too, pauses on a non-finite loss instead of ending, so the dashboard
can offer roll back / resume / stop (NonFiniteDialog). Guarded by
tests/functional/test_dashboard_engine.py::test_real_engine_nonfinite_loss_pauses_and_offers_rollback
and test_dashboard_fake.py::test_launcher_starts_the_run_with_edits (``on_nonfinite == 'pause'``)."""

QUIT_WAITS_FOR = (E.RunFinished, E.RunFailed)
"""The quit dialog's Stop exits on the first of these (the run is over, its checkpoint saved)."""


def default_trainer_factory(runs_dir: Path, resume: Path | None = None, overrides: list[str] | tuple = (),
                            resume_preset: str | None = None, in_process: bool = False, fork: bool = False,
                            fork_config: bool = False) -> TrainerFactory:
    """A factory building the real engine.

    By default the trainer is a process of its own (core.live.remote.RemoteTrainer, core.train.serve), in its
    own session: the run outlives this app and its terminal, the UI costs training no interpreter
    time, and this process never imports torch. ``in_process`` (or TUI_TRAIN_IN_PROCESS=1) trains
    in a thread of this process instead, as the Pilot tests with the real engine do.

    With ``resume``, the first trainer continues that checkpoint or run directory (its own config,
    with ``overrides`` applied); later runs started from the launcher are new runs. With ``fork``
    that first run is a new run started from the checkpoint (``fork_config``: with the config
    given rather than the checkpoint's).
    """
    pending = {"resume": resume}
    in_process = in_process or os.environ.get("TUI_TRAIN_IN_PROCESS", "") not in ("", "0")

    def make(config: RunConfig, preset: str) -> TrainerLike:
        if in_process:
            from tui_train.core.train.engine import Trainer
        else:
            from tui_train.core.live.remote import RemoteTrainer as Trainer

        resume_from, pending["resume"] = pending["resume"], None
        if resume_from is not None:
            return Trainer(config, runs_dir=runs_dir, preset=resume_preset or (preset if fork_config else None), resume=resume_from,
                           resume_overrides=[*overrides, NONFINITE_PAUSE], fork=fork, fork_config=fork_config)
        return Trainer(config, runs_dir=runs_dir, preset=preset)

    return make


def default_attach_factory(run_dir: Path) -> TrainerLike:
    """A trainer attached to the live run in ``run_dir`` (through its control endpoint)."""
    from tui_train.core.live.remote import RemoteTrainer

    return RemoteTrainer(attach=run_dir)


def _of_session(name: str, doc: str, settable: bool = False) -> property:
    """A TrainApp attribute that is the current session's ``name``, an attribute or a method
    (written through when ``settable``): the names the app had before it held a session."""
    def read(app: TrainApp) -> Any:
        return getattr(app.session, name)

    def write(app: TrainApp, value: Any) -> None:
        setattr(app.session, name, value)

    return property(read, write if settable else None, doc=doc)


class TrainApp(App[int]):
    """tui-train's Textual app: the launcher, the dashboards and dialogs, and the current
    :class:`~tui_train.tui.session.RunSession`, whose events it pumps to the dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-train"
    BINDINGS = keys.bindings(keys.APP_KEYS)  # ctrl+c among them: see tui.keys.APP_KEYS

    trainer = _of_session("trainer", "The current run's trainer, once built.")
    status = _of_session("status", "The current run's status ('ready' before any run).", settable=True)
    run_dir = _of_session("run_dir", "The current run's directory (from RunStarted).")
    detached = _of_session("detached", "This app left the current run training.", settable=True)
    stop_requested = _of_session("stop_requested", "Stop was asked of the current (detachable) run.", settable=True)
    replaying = _of_session("replay", "The current dashboard replays a finished run (:meth:`RunStarter.replay`).")
    run_active = _of_session("run_active", "A run was started and has not ended (:attr:`RunSession.run_active`).")
    detachable = _of_session("detachable", "The current run's trainer can be left going.")
    failed = _of_session("failed", "The last run failed.")
    left_running = _of_session("left_running", "Whether the current run goes on without this app (a method).")
    stop_training = _of_session("stop_training", "Set the current run's stop event, wait for its thread (a method).")
    drain_after_exit = _of_session("drain_after_exit", "After the app has exited: fold the events left (a method).")

    def __init__(self, options: AppOptions, *, trainer_factory: TrainerFactory | None = None,
                 attach_factory: AttachFactory | None = None, sweep_driver: DriverFactory | None = None) -> None:
        super().__init__()
        self.options = options
        """What the command line asked: what to open on, where runs live, what a hang-up does."""
        self.starter = RunStarter(
            self, trainer_factory or default_trainer_factory(options.runs_dir, options.resume, options.overrides, options.preset),
            attach_factory or default_attach_factory,
            lambda path, changes: default_trainer_factory(options.runs_dir, resume=path, overrides=changes, fork=True))
        """Starts, attaches to, replays and forks runs (its factories build their trainers)."""
        self.handle_signals = False
        """Install SIGHUP/SIGTERM handlers (run_tui sets it; tests do not)."""
        self.session = RunSession()
        """The current run's session (a fresh one per run started, attached, replayed or forked);
        before any, the idle app's (status 'ready')."""
        self.dashboard: DashboardScreen | None = None
        """The current run's dashboard, while shown."""
        self.last_config: RunConfig | None = options.config
        """Config of the last run started (the launcher shows it again on n)."""
        self.last_preset: str | None = options.preset
        """Preset of the last run started."""
        self.events_handled = 0
        """Events drained so far (tests wait on it)."""
        self.sweep_host = SweepHost(self, None if options.sweep is None else SweepSession(
            options.sweep, sweep_driver or default_driver_factory(options.sweep)))
        """The sweep this app drives (``options.sweep``; its driver built by ``sweep_driver(say, changed)``)
        as the app shows it, and the sweeps it opens read-only."""

    @property
    def sweep(self) -> SweepSession | None:
        """The sweep this app drives, or None (:attr:`SweepHost.session`)."""
        return self.sweep_host.session

    # -- life cycle ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        settle_heap()  # the imports' objects: a full collection mid-run would pause the UI 100+ ms
        self.set_interval(self.options.poll_interval, self.pump_events)
        if self.handle_signals:
            hangup.route_signals(self._on_terminate)
        opt = self.options
        if opt.attach is not None:
            self.starter.attach(opt.attach)
        elif opt.live:
            self.pick_live_run(list(opt.live), on_cancel=lambda: self.exit(0, return_code=0))
        elif self.sweep is not None:
            self.sweep_host.start()
        elif opt.runs_screen:
            self.show_runs(on_back=lambda: self.exit(0, return_code=0))
        elif opt.lr_find is not None:
            launcher = self.new_launcher()
            launcher.lr_options = dict(opt.lr_find)
            self.push_screen(launcher)
            launcher.call_after_refresh(launcher.action_find_lr, opt.config)
        elif opt.config is not None and opt.start_immediately:
            label = opt.preset or (f"resume {opt.resume.name}" if opt.resume else opt.config.name)
            self.starter.start(opt.config, label)
        else:
            self.push_screen(self.new_launcher())

    def on_unmount(self) -> None:
        # quitting the app ends in-thread training (STYLE.md habit 8); a trainer process is left
        # (detached) and goes on, or ends on its own after the Interrupt that Stop sent
        self.session.stop.set()

    # -- starting runs (:class:`RunStarter`) and other screens -------------------------------------
    def on_launcher_screen_start_requested(self, message: LauncherScreen.StartRequested) -> None:
        self.starter.start(message.config, message.preset)

    @on(RunsScreen.OpenRun)
    def _open_run(self, message: RunsScreen.OpenRun) -> None:
        """Enter on the Runs screen: attach to a live run, replay a finished one."""
        (self.starter.attach if message.live else self.starter.replay)(message.run_dir)

    @on(SweepScreen.OpenTrial)
    def _open_trial(self, message: SweepScreen.OpenTrial) -> None:
        """Enter on the Sweep screen: attach to a running trial, replay a finished one; Esc or q there comes back."""
        if message.live:
            self.starter.attach(message.run_dir, TrialDashboard)
        else:
            self.starter.replay(message.run_dir, TrialReplay)

    @on(ReplayDashboard.Closed)
    @on(TrialDashboard.Closed)
    def close_replay(self) -> None:
        """Esc on a replay, Esc, q or d on a trial's dashboard: back to the screen under it (:meth:`RunStarter.close_replay`)."""
        self.starter.close_replay()

    @on(DashboardScreen.ForkRequested)
    def _fork_requested(self) -> None:
        """f: fork the paused run (:meth:`RunStarter.ask_fork`)."""
        self.starter.ask_fork()

    def show_launcher(self, message: str = "") -> None:
        """Back to the launcher (n), with the last run's config selected."""
        if self.run_active:
            self.notify("the run is still active: stop it first (e) or quit (q)", severity="warning")
            return
        self.dashboard = None
        launcher = self.new_launcher(message)
        self.switch_screen(launcher) if len(self.screen_stack) > 1 else self.push_screen(launcher)

    def new_launcher(self, message: str = "") -> LauncherScreen:
        """A launcher showing the last run's config (and ``message``) and the live runs."""
        return LauncherScreen(presets_dirs=self.options.presets_dirs, config=self.last_config, preset=self.last_preset,
                              message=message, overrides=self.options.overrides, live=find_live_runs(self.options.runs_dir))

    def show_runs(self, on_back: Callable[[], object] | None = None) -> None:
        """Show the Runs screen (every run under the runs directory); Esc there: ``on_back``, else the screen under it."""
        query, self.options = self.options.runs_query, dataclasses.replace(self.options, runs_query="")  # the first opening's
        self.push_screen(RunsScreen(self.options.runs_dir, query=query), lambda _: on_back() if on_back is not None else None)

    def pick_live_run(self, runs: list, on_cancel: Callable[[], object] | None = None) -> None:
        """Show the picker of ``runs``; attach to the one chosen (Esc: ``on_cancel``, else stay)."""
        def chosen(run_dir: Path | None) -> None:
            if run_dir is not None:
                self.starter.attach(run_dir)
            elif on_cancel is not None:
                on_cancel()

        self.push_screen(RunPicker(runs), chosen)

    @on(DashboardScreen.NewRunRequested)
    def _new_run_requested(self) -> None:
        refused = "" if self.run_active else self.session.refused
        self.show_launcher(f"not started: {refused}" if refused else "")
        if refused:
            self.session.refused = ""

    @on(LauncherScreen.RunsRequested)
    def _runs_requested(self) -> None:
        self.show_runs()

    @on(RunsScreen.OpenSweep)
    def _open_sweep(self, message: RunsScreen.OpenSweep) -> None:
        """w on the Runs screen: a trial's sweep (:meth:`SweepHost.open`)."""
        self.sweep_host.open(message.sweep_dir)

    @on(LauncherScreen.AttachRequested)
    def _attach_requested(self, message: LauncherScreen.AttachRequested) -> None:
        self.pick_live_run(message.runs)

    # -- commands and events ---------------------------------------------------------------------
    def submit(self, command: C.Command) -> bool:
        """Send a command to the current run's trainer; False (and a notice) when no run is active."""
        if not self.run_active:
            self.notify("no active run", severity="warning")
            return False
        self.session.submit(command)
        return True

    def pump_events(self) -> int:
        """Drain every queued event in one batch_update, then redraw plots that changed."""
        if self.dashboard is not None and not self.dashboard.ready:
            return 0  # the dashboard is being mounted: keep the events for it (the next tick)
        events = self.session.drain()
        if self.dashboard is not None:
            self.dashboard.set_pace(self.session.viewers)
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
        if isinstance(ev, ThreadDone):  # not an engine event: the thread's own last word
            self._thread_ended()
            return
        session = self.session
        session.follow(ev)
        self.push_run_active()
        if self.dashboard is not None and self.dashboard.ready:
            self.dashboard.apply(ev)
        if session.quit_when_ended and type(ev) in QUIT_WAITS_FOR:
            self.exit_now()

    def _thread_ended(self) -> None:
        session = self.session
        ending = session.thread_ended()
        if ending is Ending.FORK:
            self.starter.start_fork(session)
            return
        if ending is Ending.DROPPED and self.dashboard is not None:
            self.dashboard.note("this viewer was disconnected; the run goes on: attach again", style="yellow")
        elif ending is Ending.UNREPORTED and self.dashboard is not None:
            self.dashboard.show_thread_ended(session.status)
        self.push_run_active()
        if session.quit_when_ended:
            self.exit_now()

    def push_run_active(self) -> None:
        """Tell the dashboard whether commands can be sent now, and whether d can leave the run going."""
        if self.dashboard is not None:
            self.dashboard.set_run_active(self.run_active, self.detachable)

    # -- quitting --------------------------------------------------------------------------------
    def action_request_quit(self) -> None:
        """q: quit now when idle; while a run is active ask: stop it, detach (when it can go on) or
        cancel; while this app drives a sweep ask: stop the sweep, leave it going, or cancel."""
        if isinstance(self.screen, QuitDialog | SweepQuitDialog):
            self.screen.dismiss(self.screen.default)  # q (or Ctrl+C) again: Detach or Leave when offered, else Stop
            return
        if self.sweep_host.ask_quit():  # the sweep's question (SweepHost.ask_quit)
            return
        if not self.run_active:
            self.exit_now()
            return

        def answered(choice: str | None) -> None:
            if choice == DETACH:
                self.detach()
            elif choice == STOP:
                self.stop_and_quit()

        self.push_screen(QuitDialog(detachable=self.detachable), answered)

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit go through the same question."""
        self.action_request_quit()

    @on(DashboardScreen.DetachRequested)
    def detach(self) -> bool:
        """Quit and leave the run training (a detachable trainer only; d on the dashboard); False
        (and a notice) otherwise."""
        if refused := self.session.detach_refusal():
            self.notify(refused, severity="warning")
            return False
        self.session.detached = True
        self.exit_now()  # the stop event detaches a trainer process: the connection closes, the run goes on
        return True

    def stop_and_quit(self, reason: str = "quit") -> None:
        """End the run, then quit. A trainer process gets ``Interrupt`` (it finishes the step, saves
        and ends as interrupted) and the app quits once the run has ended, or after
        SAVE_BEFORE_QUIT_TIMEOUT anyway (it finishes saving on its own). An in-thread trainer's stop
        event does the same, so the app quits at once and run_tui waits for the thread."""
        if not (self.run_active and self.detachable):
            self.exit_now()
            return
        self.session.request_stop(reason)
        if self.dashboard is not None:
            self.dashboard.note("stopping: saving a checkpoint…", style="yellow")
        self.notify("stopping: saving a checkpoint…")
        self.set_timer(SAVE_BEFORE_QUIT_TIMEOUT, self.exit_now)

    def exit_now(self) -> None:
        """Quit now with :meth:`exit_code` (the stop event ends an in-thread run, detaches from a process)."""
        self.session.stop.set()
        code = self.exit_code()
        self.exit(code, return_code=code)

    def exit_code(self, signalled: bool = False) -> int:
        """What the process exits with: the driven sweep's (:meth:`SweepSession.exit_code`) when this
        app drives one, else the current run's (:meth:`RunSession.exit_code`)."""
        return (self.sweep or self.session).exit_code(signalled)

    # -- a hang-up -------------------------------------------------------------------------------
    def _on_terminate(self) -> None:
        # Textual cannot be trusted to shut down once its terminal is gone (STYLE.md): the process
        # is gone within TERMINATE_DEADLINE of the signal, whatever Textual does. A detachable run
        # is left going (on_hangup 'detach') or sent Interrupt (on_hangup 'stop': the trainer
        # process saves and ends on its own, and the app quits once the pump sees that end, while
        # the deadline allows); an in-thread run is stopped by the stop event (the engine saves within a step).
        if self.sweep_host.hang_up():  # a sweep this app drives: interrupted, as headless (SweepHost.hang_up)
            return
        deadline = time.monotonic() + TERMINATE_DEADLINE
        stop_remote = self.session.hang_up(stop=self.options.on_hangup == "stop")
        hangup.start_watchdog(self, deadline, self.session.thread if stop_remote else None)
        if not stop_remote:
            self.exit_now()

    # -- help and palette ------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands, the app's keys, and on the dashboard those of its keys that apply now."""
        yield from super().get_system_commands(screen)
        yield from keys.palette_commands(self.run_active, self, self.dashboard if screen is self.dashboard else None)
        if isinstance(screen, SweepScreen):
            yield from keys.screen_commands(keys.SWEEP_KEYS, screen)

def build_app(*, config: RunConfig | None = None, preset: str | None = None, runs_dir: Path = Path("runs"),
              presets_dirs: list[Path] | tuple = (), trainer_factory: TrainerFactory | None = None,
              start_immediately: bool = False, resume: Path | None = None,
              overrides: list[str] | tuple = (), attach: Path | None = None, live: list | None = None,
              on_hangup: str = "detach", attach_factory: AttachFactory | None = None, runs_screen: bool = False,
              lr_find: dict | None = None, sweep: Path | None = None, sweep_driver: DriverFactory | None = None,
              runs_query: str = "") -> TrainApp:
    """The one factory: the app with its engine injected (``trainer_factory(config, preset)``).

    Without a config, or with ``start_immediately=False``, it opens on the launcher; with a config
    and ``start_immediately=True`` it goes straight to the dashboard and starts training.
    ``resume`` (default factory only) makes that first run continue a checkpoint or run directory;
    ``overrides`` (``--set`` texts) are applied to presets loaded in the launcher and on resume.
    ``attach`` (a live run's directory) opens straight on its dashboard, attached through
    ``attach_factory(run_dir)`` (default: ``core.live.remote.RemoteTrainer(attach=run_dir)``); else
    ``live`` (live runs, e.g. ``core.run.endpoint.live_runs()``) opens on a picker of them (Esc quits).
    ``on_hangup`` ('detach' or 'stop') is what SIGHUP/SIGTERM does to a detachable run.
    ``runs_screen`` (``tui-train runs``) opens on the Runs screen of ``runs_dir`` (Esc quits),
    filtered by ``runs_query`` (``--filter``) as it opens.
    ``lr_find`` (``tui-train lr-find``: the sweep options) opens on the launcher with the LR range
    test of ``config`` running; Enter there puts its suggestion in the learning rate field.
    ``sweep`` (a sweep folder; ``tui-train sweep``) opens on its Sweep screen with the sweep driven
    by this app: ``sweep_driver(say, changed)`` builds its driver (default: a
    :class:`core.sweep.driver.SweepDriver` on the folder's sweep.json).
    """
    options = AppOptions(config=config, preset=preset, runs_dir=runs_dir, presets_dirs=presets_dirs,
                         start_immediately=start_immediately, resume=resume, overrides=overrides, attach=attach,
                         live=live or (), on_hangup=on_hangup, runs_screen=runs_screen, lr_find=lr_find, sweep=sweep,
                         runs_query=runs_query)
    return TrainApp(options, trainer_factory=trainer_factory, attach_factory=attach_factory, sweep_driver=sweep_driver)


def run_tui(*, config: RunConfig | None = None, preset: str | None = None, runs_dir: Path = Path("runs"),
            presets_dirs: list[Path] | tuple = (), trainer_factory: TrainerFactory | None = None,
            start_immediately: bool = False, resume: Path | None = None, overrides: list[str] | tuple = (),
            attach: Path | None = None, live: list | None = None, on_hangup: str = "detach",
            attach_factory: AttachFactory | None = None, runs_screen: bool = False, runs_query: str = "", lr_find: dict | None = None,
            sweep: Path | None = None, sweep_driver: DriverFactory | None = None) -> int:
    """Run the app in this terminal until the user quits (see :func:`build_app` for the arguments).

    Prints one line once the app has closed: how the run ended, or after a detach how to attach
    again. Returns 0 (also after a detach), 1 if the last run failed, 130 if it was interrupted.
    With ``sweep``: how the sweep ended, its exit code (0 completed, stopped or left going, 130
    interrupted, 1 when its driver failed); a stopped sweep's driver is waited for first.
    """
    app = build_app(config=config, preset=preset, runs_dir=runs_dir, presets_dirs=presets_dirs,
                    trainer_factory=trainer_factory, start_immediately=start_immediately, resume=resume,
                    overrides=overrides, attach=attach, live=live, on_hangup=on_hangup, attach_factory=attach_factory,
                    runs_screen=runs_screen, lr_find=lr_find, sweep=sweep, sweep_driver=sweep_driver, runs_query=runs_query)
    app.handle_signals = True
    try:
        app.run()
    finally:
        ended = app.stop_training(JOIN_TIMEOUT)
        app.drain_after_exit()
        if app.sweep is not None:
            app.sweep.finish()
    line, code = closing_words(app, ended)
    if line:
        _say(line)
    return code


def run_sweep_tui(sweep_dir: Path, record: SweepRecord) -> int:
    """``tui-train sweep`` on a terminal: the Sweep screen of ``record`` (its folder ``sweep_dir``),
    its :class:`core.sweep.driver.SweepDriver` running in a daemon thread of this process (the trials
    are processes of their own). Returns as headless does: 0 when the sweep completed or was stopped
    from the screen (or left going), 130 when it was interrupted (SIGHUP/SIGTERM), 1 when its driver failed."""
    def make(say: Callable[[str], None], changed: Callable[[], None]) -> SweepDriver:
        from tui_train.core.sweep.driver import SweepDriver

        return SweepDriver(record, Path(sweep_dir), say=say, changed=changed)

    return run_tui(sweep=Path(sweep_dir), sweep_driver=make)


def closing_words(app: TrainApp, thread_ended: bool = True) -> tuple[str, int]:
    """(the line run_tui prints once the app has closed, '' for none; the exit code)."""
    if app.sweep is not None:
        return app.sweep.closing_line(), app.exit_code()
    run_dir = app.run_dir or (app.trainer.run_dir if app.trainer is not None else None) or app.options.attach
    if app.left_running():
        where = run_dir or ""
        return f"tui-train: detached; the run goes on · attach again: tui-train attach {where}".rstrip(), 0
    if not run_dir:
        return "", app.exit_code()
    status, note = app.status, "" if thread_ended else " (training thread still busy; exiting anyway)"
    if app.stop_requested and app.status not in E.FINAL_STATUSES:
        status, note = "stopping", " (the trainer process finishes saving on its own)"
    return f"tui-train: {status} · {run_dir}{note}", app.exit_code()


def _say(line: str) -> None:
    try:
        print(line)
    except OSError:  # the terminal is gone (hang-up): the run is saved or goes on, say nothing
        pass
