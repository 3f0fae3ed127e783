"""How the app makes a run its current one: :class:`RunStarter`.

Each run the app shows gets a fresh :class:`tui.session.RunSession` and a fresh dashboard: a run
started from the launcher (the injected ``trainer_factory``), one attached to (``attach_factory``),
a finished one replayed from its files (:class:`core.rundir.replay.ReplayTrainer`) and a fork of a
paused run (``fork_factory``); a trial opened from the Sweep screen is attached or replayed on a
trial's dashboard. Closing a replay (or a trial's dashboard) ends its session and shows the
screen under it again. The app routes the messages here, pumps the session's events and quits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui_train.core import config as cfgmod
from tui_train.core.config import RunConfig
from tui_train.tui.format import printable
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.fork_dialog import ForkDialog
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.runs_screen import ReplayDashboard
from tui_train.tui.screens.trial_dashboard import TrialDashboard
from tui_train.tui.session import RunSession

if TYPE_CHECKING:
    from tui_train.tui.app import AttachFactory, TrainApp, TrainerFactory


class RunStarter:
    """Starts, attaches to, replays and forks runs on ``app``: each a fresh session made the app's
    current one, on a fresh dashboard shown over (or instead of) the screen shown now."""

    def __init__(self, app: TrainApp, trainer_factory: TrainerFactory, attach_factory: AttachFactory,
                 fork_factory: Callable[[Path, list[str]], TrainerFactory]) -> None:
        self.app = app
        """The app whose session and dashboard these become."""
        self.trainer_factory = trainer_factory
        """Builds the trainer for a run (called in the training thread)."""
        self.attach_factory = attach_factory
        """Builds the trainer that attaches to a live run (called in the training thread)."""
        self.fork_factory = fork_factory
        """Builds a fork's trainer factory from (checkpoint, --set changes) (tests inject a fake)."""

    def start(self, config: RunConfig, preset: str) -> None:
        """Show a fresh dashboard and start training in a daemon thread."""
        app = self.app
        if app.run_active:
            app.notify("a run is already active", severity="warning")
            return
        config = cfgmod.replace(config, **{"train.on_nonfinite": "pause"})  # see app.NONFINITE_PAUSE
        app.last_config, app.last_preset = config, preset
        self.begin(DashboardScreen(preset, config, submit=app.submit), RunSession(lambda: self.trainer_factory(config, preset)))

    def attach(self, run_dir: Path, dashboard: type[DashboardScreen] = DashboardScreen) -> None:
        """Show a fresh dashboard attached to the live run in ``run_dir``: its history, then the live
        events (``dashboard``: a trial's, :class:`TrialDashboard`, from the Sweep screen)."""
        run_dir = Path(run_dir)
        self.begin(dashboard(run_dir.name, attached=True, submit=self.app.submit), RunSession(lambda: self.attach_factory(run_dir)))

    def replay(self, run_dir: Path, dashboard: type[ReplayDashboard] = ReplayDashboard) -> None:
        """Show a fresh dashboard replaying the finished run in ``run_dir`` from its files
        (:class:`core.rundir.replay.ReplayTrainer`: its plots, epochs, events and final status; nothing to
        steer); Esc there goes back (:meth:`close_replay`). ``dashboard``: a trial's, :class:`TrialReplay`."""
        from tui_train.core.rundir.replay import ReplayTrainer

        run_dir = Path(run_dir)
        self.begin(dashboard(run_dir.name, submit=self.app.submit), RunSession(lambda: ReplayTrainer(run_dir), replay=True))

    def close_replay(self) -> None:
        """End the replay (it may still be sending), or leave the trial whose dashboard the Sweep
        screen opened training (this viewer's connection closes; the sweep went on meanwhile), and
        show the screen under its dashboard (the runs, the sweep): Esc on either, q or d on a trial's."""
        app = self.app
        dashboard, session = app.dashboard, app.session
        if dashboard is None or not (session.replay or isinstance(dashboard, TrialDashboard)):
            return
        app.dashboard = None
        session.detached = not session.replay  # a trial trains on: the stop event detaches from its process
        session.stop_training(2.0)
        app.pump_events()  # the thread's end: the app is idle again at once
        if session.thread_done:  # else its late end is still taken for a replay's
            app.session = RunSession()
        if app.screen is dashboard:
            app.pop_screen() if len(app.screen_stack) > 2 else app.switch_screen(app.new_launcher())

    def begin(self, dashboard: DashboardScreen, session: RunSession, replace: bool = False) -> None:
        """Make ``session`` the current one, show ``dashboard`` and start the session's thread
        (``replace``: in place of the screen shown now, e.g. a fork's dashboard instead of its parent's);
        a notice instead while a run is active."""
        app = self.app
        if app.run_active:
            app.notify("a run is already active", severity="warning")
            return
        app.session, app.dashboard = session, dashboard
        if replace or isinstance(app.screen, LauncherScreen):
            app.switch_screen(dashboard)
        else:
            app.push_screen(dashboard)
        session.start()
        app.push_run_active()

    # -- forking ---------------------------------------------------------------------------------
    def ask_fork(self) -> None:
        """f: a paused run of a process of its own is forked: ask for the changes, save a checkpoint
        ('fork'), leave this run paused (it stays attachable) and start the fork from that checkpoint."""
        app, session = self.app, self.app.session
        if refused := session.fork_refusal():
            app.notify(refused, severity="warning")
            return

        def answered(changes: list[str] | None) -> None:
            if changes is None or not session.run_active:
                return
            session.ask_fork(changes)  # its checkpoint leaves the parent: its thread's end then starts the fork
            if app.dashboard is not None:
                app.dashboard.note("fork: saving a checkpoint…")

        step = app.dashboard.step if app.dashboard is not None else 0  # the latest step shown
        app.push_screen(ForkDialog(Path(session.run_dir) if session.run_dir else None, step), answered)

    def start_fork(self, parent: RunSession) -> None:
        """The parent's thread has ended (this app left it paused): the fork starts, on a new dashboard."""
        make = self.fork_factory(parent.fork.checkpoint, list(parent.fork.changes))
        self.begin(DashboardScreen(f"fork of {Path(str(parent.run_dir)).name}", submit=self.app.submit),
                   RunSession(lambda: make(cfgmod.from_dict({}), "")), replace=True)
        self.app.notify(printable(f"forked; the parent stays paused: tui-train attach {parent.run_dir}"), markup=False)
