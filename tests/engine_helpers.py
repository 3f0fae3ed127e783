"""Small helpers shared by engine tests."""

from __future__ import annotations

import queue

from core import events as E


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
