"""Small helpers shared by engine tests."""

from __future__ import annotations

import queue
import threading
import time

from tui_train.core import events as E

TIMEOUT = 60.0
"""Seconds a test waits for an event before it fails (a hang is a failure, not a slow test)."""


def run_to_end(trainer, commands=()) -> list[E.Event]:
    """Queue ``commands``, run ``trainer`` in this thread to the end, return every event."""
    for c in commands:
        trainer.submit(c)
    q: queue.SimpleQueue = queue.SimpleQueue()
    trainer.run(sink=q.put)
    out = []
    while not q.empty():
        out.append(q.get())
    return out


class Running:
    """Any trainer (core.contract.TrainerLike) running in a thread, its events collected."""

    def __init__(self, trainer, stop_event: threading.Event | None = None):
        self.trainer = trainer
        """The trainer being run."""
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.events: list[E.Event] = []
        """Every event taken from the queue so far, in order."""
        self.stop = stop_event or threading.Event()
        """The stop event run() was given."""
        self.result: dict = {}
        """What run() returned, once it has."""
        self.thread = threading.Thread(target=lambda: self.result.update(trainer.run(self.stop, self.q.put)), daemon=True)
        self.thread.start()

    def wait_for(self, pred, timeout: float = TIMEOUT) -> E.Event:
        """The first event (seen or still to come) for which ``pred`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if pred(ev):
                return ev
        while time.monotonic() < deadline:
            try:
                ev = self.q.get(timeout=0.05)
            except queue.Empty:
                if not self.thread.is_alive() and self.q.empty():
                    break
                continue
            self.events.append(ev)
            if pred(ev):
                return ev
        raise AssertionError(f"event not seen; last events: {[e.kind for e in self.events[-8:]]}")

    def finish(self, timeout: float = TIMEOUT) -> list[E.Event]:
        """Wait for run() to return; every event."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the trainer did not finish"
        while not self.q.empty():
            self.events.append(self.q.get())
        return self.events

    def of(self, kind) -> list:
        """The events of one type."""
        return [e for e in self.events if isinstance(e, kind)]
