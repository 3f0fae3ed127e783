"""A hang-up of the app's terminal (SIGHUP, SIGTERM), under a watchdog.

Textual handles neither signal, and once its terminal is gone its shutdown can hang forever
(STYLE.md traps). :func:`route_signals` hands both to the app (``TrainApp._on_terminate`` detaches or
stops the run, then quits); :func:`start_watchdog` ends the process by a deadline whatever Textual
does, with the exit code of the run the app shows (:meth:`tui.session.RunSession.exit_code`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_train.tui.app import TrainApp

WATCHDOG_THREAD = "tui-train-watchdog"
"""The watchdog thread's name (tests wait for it)."""


def route_signals(handler: Callable[[], None]) -> None:
    """Call ``handler`` on the running event loop on SIGHUP and SIGTERM (nothing where the loop cannot)."""
    try:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            loop.add_signal_handler(sig, handler)
    except (NotImplementedError, RuntimeError, AttributeError, ValueError):
        pass


def start_watchdog(app: TrainApp, deadline: float, run_ends: threading.Thread | None = None) -> None:
    """A daemon thread that waits for ``run_ends`` (the training thread of a run asked to stop: its
    RunFinished lets the app quit), stops training, and at ``deadline`` (a ``time.monotonic()``)
    ends the process with the app's exit code, as signalled. A healthy shutdown ends the process first."""
    def watch() -> None:
        if run_ends is not None:
            run_ends.join(max(0.0, deadline - time.monotonic() - 1.0))  # RunFinished ends the thread
        app.stop_training(max(0.1, deadline - time.monotonic() - 0.5))
        time.sleep(max(0.0, deadline - time.monotonic()))  # a healthy shutdown ends us before this
        app.drain_after_exit()  # only now: until the deadline the pump must see RunFinished to quit
        os._exit(app.exit_code(signalled=True))

    threading.Thread(target=watch, name=WATCHDOG_THREAD, daemon=True).start()
