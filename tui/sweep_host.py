"""The app's side of sweeps: :class:`SweepHost` shows the sweep the app drives (``tui-train sweep``
on a terminal) and the sweeps it opens read-only from the Runs screen.

The sweep itself (its driver thread, its record's copies, its exit code) is a
:class:`tui.sweep_session.SweepSession`, which knows no screen; this is what the app does about it:
its Sweep screen at the start, the quit question while it runs (stop the sweep, or leave it going)
and the quit once a sweep stopped on the way out has ended, a hang-up (interrupted, as headless),
and the Sweep screen of a trial's sweep (``RunsScreen.OpenSweep``). The app routes the messages here
and keeps the run's own concerns (its session, dashboard and quitting).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from tui_train.tui import hangup
from tui_train.tui.format import printable
from tui_train.tui.screens.sweep_quit_dialog import LEAVE, SweepQuitDialog
from tui_train.tui.screens.sweep_screen import SweepScreen
from tui_train.tui.sweep_session import STOP_WAIT, SweepSession

if TYPE_CHECKING:
    from tui_train.tui.app import TrainApp

SWEEP_WATCH = 0.25
"""Seconds between two looks at a sweep this app drives, once asked to quit when it has stopped."""


class SweepHost:
    """The sweep ``app`` drives (``session``, None when it drives none) as the app shows it, and the
    sweeps it shows read-only."""

    def __init__(self, app: TrainApp, session: SweepSession | None) -> None:
        self.app = app
        """The app whose screens, notices and exit these are."""
        self.session = session
        """The sweep this app drives (``AppOptions.sweep``), or None."""

    @property
    def running(self) -> bool:
        """This app drives a sweep whose driver is still going."""
        return self.session is not None and self.session.running

    def start(self) -> None:
        """On mount: start the driven sweep, show its Sweep screen, and watch for its end."""
        assert self.session is not None
        self.session.start()
        self.app.push_screen(SweepScreen(self.session))
        self.app.set_interval(SWEEP_WATCH, self._ended)

    def ask_quit(self) -> bool:
        """q while the driven sweep runs: ask whether to stop it, leave it going, or cancel (asked to
        stop already: quit now, the trials end on their own). False when no sweep runs here (the
        run's question applies)."""
        sweep = self.session
        if sweep is None or not sweep.running:
            return False
        if sweep.quit_when_ended:
            self.app.exit_now()
        else:
            self.app.push_screen(SweepQuitDialog(sweep.sweep_dir), self._quit_answered)
        return True

    def _quit_answered(self, choice: str | None) -> None:
        sweep = self.session
        if sweep is None or choice is None:
            return
        if choice == LEAVE or not sweep.running:
            sweep.left = sweep.running
            self.app.exit_now()  # an attached trial's connection closes with the stop event: it trains on
        elif refused := sweep.request_stop(quit_after=True):  # Stop sweep
            self.app.notify(printable(refused), severity="warning", markup=False)
        else:
            self.app.notify("stopping the sweep: its running trials save and end; quitting once they have")

    def _ended(self) -> None:
        """The sweep's timer: quit once a sweep asked to stop on the way out has ended."""
        if self.session is not None and self.session.quit_when_ended and self.session.ended:
            self.app.exit_now()

    def hang_up(self) -> bool:
        """SIGHUP/SIGTERM while the driven sweep runs: as headless, the sweep is interrupted (its
        trials save and end; 130) and the process waits for its driver, which waits for them, up to
        STOP_WAIT; an attached trial is left to the driver's Interrupt. False when no sweep runs here."""
        if not self.running:
            return False
        assert self.session is not None
        self.session.hang_up()
        self.app.session.hang_up(stop=False)
        hangup.start_watchdog(self.app, time.monotonic() + STOP_WAIT + 2.0)
        self.app.exit_now()
        return True

    def open(self, sweep_dir: Path) -> None:
        """A trial's sweep, from the Runs screen: the one this app drives, else read-only from its
        sweep.json (refreshed every second; the keys that need a driver say how to drive it)."""
        sweep_dir = Path(sweep_dir)
        session = self.session if self.session is not None and same_path(self.session.sweep_dir, sweep_dir) else None
        if session is None:
            session = SweepSession(sweep_dir)
            if not session.poll():
                self.app.notify(printable(session.error or f"{sweep_dir}: no sweep record"), severity="error", markup=False)
                return
        self.app.push_screen(SweepScreen(session, closable=True))


def same_path(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name the same folder (as given when either cannot be resolved)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, ValueError):
        return Path(a) == Path(b)
