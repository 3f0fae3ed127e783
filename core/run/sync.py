"""How a run's processes agree: a strategy chosen once, so that no loop asks ``if distributed``.

One process (:class:`Local`) has no one to agree with: its commands come from its own inbox at
every step boundary, a sum is the value itself, and it writes the run directory. Several
processes (:class:`tui_train.core.train.distributed.Ranks`, torchrun) meet at sync points: rank 0's
commands go to every rank as JSON, stop requests are or-ed, sums are all-reduced, and only rank 0
writes. The loop calls the same methods either way (STYLE.md habit 22; Lightning's
``SingleDeviceStrategy``).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Protocol

from tui_train.core import commands as C
from tui_train.core.run.control import CommandQueue

Pending = list[tuple[C.Command, str]]
"""Commands to apply, with who sent each (``origin``), in order."""


class Sync(Protocol):
    """What a loop needs from the strategy (both implement every member)."""

    rank: int
    """This process's rank (0 owns the run)."""
    world_size: int
    """Processes training the run."""
    is_main: bool
    """This process writes the run directory and reports events."""
    solo: bool
    """One process: a step may leave an evaluation early and commands apply at every step."""

    def every(self, log_every: int) -> int:
        """Optimizer steps between two boundaries where commands apply (1: every step)."""

    def exchange(self, inbox: CommandQueue, stop: threading.Event, wait: float = 0.0) -> tuple[Pending, bool]:
        """The commands every rank applies now, in order (waiting up to ``wait`` s for a first
        one), and whether a stop was asked (of any rank)."""

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the ranks."""

    def gather_json(self, value: Any) -> list[Any] | None:
        """Every rank's JSON-able ``value`` in rank order on rank 0 (None elsewhere)."""

    def broadcast_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank."""

    def close(self) -> None:
        """Leave (at the end of the run)."""


def take(inbox: CommandQueue, wait: float = 0.0) -> Pending:
    """Everything queued in ``inbox`` now, in order (waiting up to ``wait`` s for a first item)."""
    if wait <= 0 and inbox.empty():  # the common case, checked without raising queue.Empty
        return []
    pending: Pending = []
    try:
        pending.append(inbox.get(timeout=wait) if wait > 0 else inbox.get_nowait())
        while True:
            pending.append(inbox.get_nowait())
    except queue.Empty:
        pass
    return pending


class Local:
    """One process: nothing to agree on; every method is the identity (the Sync protocol)."""

    rank = 0
    world_size = 1
    is_main = True
    solo = True

    def every(self, log_every: int) -> int:
        return 1

    def exchange(self, inbox: CommandQueue, stop: threading.Event, wait: float = 0.0) -> tuple[Pending, bool]:
        return take(inbox, wait), stop.is_set()

    def all_sum(self, values: list[float]) -> list[float]:
        return values

    def gather_json(self, value: Any) -> list[Any] | None:
        return [value]

    def broadcast_text(self, text: str) -> str:
        return text

    def close(self) -> None:
        pass
