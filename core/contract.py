"""What a front end needs from a trainer: the one contract every trainer keeps.

:class:`core.train.engine.Trainer` (in a thread), :class:`core.live.remote.RemoteTrainer` (a trainer process
of its own, over the run's control endpoint) and :class:`core.testing.FakeTrainer` (scripted, for
tests) all satisfy it;
``tests/unit/test_contract.py`` runs one command script against the fake and the real engine and
compares the events they send back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tui_train.core import commands as C
from tui_train.core import events as E

Sink = Callable[[E.Event], None]
"""Where a trainer hands its events; it must never block (e.g. ``queue.SimpleQueue.put``). It is
called from the training thread and from the engine's system sampler thread, one event at a time."""


class TrainerLike(Protocol):
    """Commands in (``submit``, thread-safe, never blocks), events out (``run``'s sink), and the
    few attributes a front end reads (every one of them, so the app needs no ``getattr`` guard;
    ``tests/unit/test_contract.py`` checks that each trainer has them)."""

    detachable: bool
    """True when setting run()'s stop_event leaves the run going (a trainer process of its own);
    False when it ends the run as interrupted (an in-thread trainer)."""

    detached: bool
    """run() returned while the run went on (a detachable trainer whose viewer left, or was dropped
    by the trainer process); always False for a trainer that is not detachable."""

    viewers: int
    """Dashboards showing the run now, this one included (1 for an in-thread trainer or a replay)."""

    run_dir: Path | str | None
    """The run directory, once known (None before the run has one)."""

    def submit(self, command: C.Command, origin: str = "") -> None:
        """Queue a command; it applies at the next step boundary and is acknowledged by an event
        (CommandApplied or CommandRejected, carrying ``origin``: who sent it)."""

    def run(self, stop_event: threading.Event | None = None, sink: Sink | None = None) -> dict:
        """Train to the end (or until ``stop_event``), reporting through ``sink``; return the summary."""
