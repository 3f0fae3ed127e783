"""A finished run, replayed from its run directory: the trainer contract with no trainer behind it.

:class:`ReplayTrainer` keeps :class:`core.contract.TrainerLike`, so the TUI shows a past run on the
dashboard a live one gets: ``run`` hands every event of the run's history
(:func:`core.rundir.history.read_history`, step metrics thinned) to the sink, so the plots, the epoch
table, the event log, the interventions, the final metrics and the final status are the ones the
run recorded. Commands are answered with CommandRejected: there is nothing to steer.

A run whose record has no ending is shown as its files end: one with a summary.json but without
its last events (the watchdog wrote the summary) ends with the summary's status; one without a
summary (killed, or going on somewhere this viewer cannot reach) keeps the last status it
recorded and gets a RunWarning that says so. No status is made up. Imports no torch.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.contract import Sink
from tui_train.core.rundir.history import MAX_STEP_EVENTS, read_history
from tui_train.core.status import status_after

REJECTED = "a finished run is replayed from its files; it cannot be steered"
"""The reason every command sent to a replay is rejected with."""

NO_SUMMARY = "the run ended without a summary"
"""How the warning at the end of a replayed run without summary.json begins."""

STOP_CHECK_EVERY = 512
"""Events handed to the sink between two looks at the stop event."""


def read_summary(run_dir: Path) -> dict:
    """The content of summary.json ({} when there is none, or it cannot be read)."""
    try:
        data = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class ReplayTrainer:
    """A finished run's history, sent once to ``run``'s sink; every command is rejected."""

    detachable = False
    """Nothing goes on after the viewer leaves (see :class:`core.contract.TrainerLike`)."""
    detached = False
    """Never: see :attr:`detachable`."""
    viewers = 1
    """The one dashboard replaying it."""

    def __init__(self, run_dir: str | Path, *, step_limit: int = MAX_STEP_EVENTS) -> None:
        self.run_dir = Path(run_dir)
        """The run directory replayed."""
        self.step_limit = step_limit
        """At most about this many StepMetrics are replayed (thinned, spikes kept: see core.rundir.history)."""
        self.commands: list[C.Command] = []
        """Every command submitted, in order (each one rejected)."""
        self.step = 0
        """The latest step replayed so far (rejections carry it)."""
        self.status = "starting"
        """The last status replayed."""
        self.ended = False
        """The history had its ending: RunFinished or RunFailed, recorded or built from summary.json."""
        self.finished = threading.Event()
        """Set when run() returns."""
        self._lock = threading.Lock()
        self._sink: Sink | None = None
        self._pending: list[tuple[C.Command, str]] = []

    # -- the Trainer interface -------------------------------------------------------------
    def submit(self, command: C.Command, origin: str = "") -> None:
        """Answer ``command`` with CommandRejected (through run()'s sink; queued until run() has one)."""
        with self._lock:
            self.commands.append(command)
            sink = self._sink
            if sink is None:
                self._pending.append((command, origin))
                return
        self._reject(sink, command, origin)

    def run(self, stop_event: threading.Event | None = None, sink: Sink | None = None) -> dict:
        """Send the run's events to ``sink`` (until ``stop_event``); return its summary ({} when none)."""
        stop_event = stop_event or threading.Event()
        sink = sink or (lambda e: None)
        try:
            history = read_history(self.run_dir, step_limit=self.step_limit)
            summary = read_summary(self.run_dir)
            with self._lock:
                self._sink, pending, self._pending = sink, self._pending, []
            sink(E.RunNote(message=f"replaying {self.run_dir.name} from its files (a finished run: nothing to steer)"))
            for command, origin in pending:
                self._reject(sink, command, origin)
            for i, event in enumerate(history):
                if i % STOP_CHECK_EVERY == 0 and stop_event.is_set():
                    return summary
                self._follow(event)
                sink(event)
            if not self.ended:
                for event in self._ending(summary):
                    self._follow(event)
                    sink(event)
            return summary
        finally:
            self.finished.set()

    # -- internals -------------------------------------------------------------------------
    def _reject(self, sink: Sink, command: C.Command, origin: str) -> None:
        sink(E.CommandRejected(command=command.name, reason=REJECTED, step=self.step, origin=origin))

    def _follow(self, event: E.Event) -> None:
        step = getattr(event, "step", None)
        if isinstance(step, int) and not isinstance(step, bool):
            self.step = max(self.step, step)
        self.status = status_after(self.status, event)
        if isinstance(event, E.RunFinished | E.RunFailed):
            self.ended = True

    def _ending(self, summary: dict) -> list[E.Event]:
        """The events that end a history without RunFinished/RunFailed (see the module docstring)."""
        status = summary.get("status")
        if status not in E.FINAL_STATUSES:
            where = f"its files end at step {self.step}, last status {self.status}"
            return [E.RunWarning(message=f"{NO_SUMMARY}: {where} (the trainer was killed, or it goes on where this "
                                         "viewer cannot reach it)", step=self.step)]
        reason = str(summary.get("reason") or "")
        out: list[E.Event] = [E.RunNote(message="the run's last events are not in its files: its end is summary.json's",
                                        step=self.step)]
        if self.status != status:
            out.append(E.StatusChanged(status=status, reason=reason, step=self.step,
                                       cause="failure" if status == "failed" else "end"))
        if status == "failed":
            tb = self.run_dir / "traceback.txt"
            try:
                text = tb.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            out.append(E.RunFailed(message=reason or "the run failed", traceback=text,
                                   traceback_path=str(tb.resolve()) if text else "", summary=dict(summary)))
        else:
            out.append(E.RunFinished(status=status, summary=dict(summary),
                                     run_dir=str(summary.get("run_dir") or self.run_dir.resolve())))
        return out
