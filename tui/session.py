"""One run as the app shows it: :class:`RunSession` owns its trainer, training thread, stop event and
event queue, the status folded from its events, a fork under way, how the app leaves it, and the
exit code that follows.

The app holds one session at a time and makes a fresh one for each run it starts, attaches to,
replays or forks, so nothing of a run is reset field by field. A session knows no screen: the app
drains its queue, routes the events to the dashboard and asks the session what its thread's end
means (:meth:`RunSession.thread_ended`). The status rules are core.status's (:func:`status_after`,
:func:`exit_code`): written once there, for headless, the trainer process and the replay too.
"""

from __future__ import annotations

import enum
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.contract import TrainerLike
from tui_train.core.status import exit_code, status_after
from tui_train.tui.notify_terminal import TerminalNotices


class ThreadDone:
    """Queued by the training thread when trainer.run returns (or raises): its last word, no engine event."""


class Ending(enum.Enum):
    """What the end of a session's training thread means (:meth:`RunSession.thread_ended`)."""

    REPORTED = "reported"
    """The run had reported its end (or a replay has shown all of it: the app is idle again)."""
    FORK = "fork"
    """The parent was left paused for its fork (:attr:`RunSession.fork`): the fork starts now."""
    DROPPED = "dropped"
    """The trainer process dropped this viewer (too slow?): the run goes on without it."""
    UNREPORTED = "unreported"
    """The thread ended with no final status: the session's is now 'interrupted' (its stop event
    was set) or 'stopped'."""


@dataclass(frozen=True)
class Fork:
    """A fork under way (f answered): the new run's changes and, once saved, the checkpoint it starts from."""

    changes: tuple[str, ...]
    """``--set`` texts the fork applies to the parent's config."""
    checkpoint: Path | None = None
    """The parent's 'fork' checkpoint, once CheckpointSaved says so (None: still saving)."""


class RunSession:
    """One run the app shows (started, attached to, replayed or forked): its trainer and training
    thread, the queue between them and the app, the status folded from its events, a fork under
    way, and whether the app left it going or asked it to stop. A session without a trainer to
    make (``make`` None) is the idle app's: status 'ready', nothing active."""

    def __init__(self, make: Callable[[], TrainerLike] | None = None, *, replay: bool = False) -> None:
        self.make = make
        """Builds the trainer (called in the training thread); None for the idle app's session."""
        self.replay = replay
        """A finished run replayed from its files: no run of this app's (a failure is no refusal,
        its end leaves the app idle)."""
        self.trainer: TrainerLike | None = None
        """The trainer, once the thread has built it."""
        self.status = "ready" if make is None else "starting"
        """The engine's last reported status, folded by :func:`core.status.status_after` ('ready': no run)."""
        self.run_dir: str | None = None
        """The run's directory (from RunStarted)."""
        self.refused = ""
        """Why the run was refused before it started (bad input: its one line), for the launcher on n."""
        self.detached = False
        """The app left the run training (d, the quit dialog's Detach, a hang-up): run_tui says how to come back."""
        self.stop_requested = False
        """Stop was asked of a detachable run (the quit dialog, a hang-up with on_hangup 'stop')."""
        self.quit_when_ended = False
        """The app quits once the run has ended (or its thread has): Stop was asked on the way out."""
        self.fork: Fork | None = None
        """The fork under way, if f was answered (see :class:`Fork`)."""
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        """Engine events (and the thread's :class:`ThreadDone`) on their way to the app's pump."""
        self.stop = threading.Event()
        """The trainer's stop event: ends an in-thread run (saved), detaches from a trainer process."""
        self.thread: threading.Thread | None = None
        """The training thread, once started."""
        self.thread_done = True
        """The training thread has ended, as its ThreadDone said (True until it starts)."""
        self.notices = TerminalNotices(enabled=not replay)
        """Desktop notifications through this app's terminal (tui.notify_terminal): the run's end,
        failure, target reached, a pause waiting for a decision; live events only, not its history."""
        self._pending: list[C.Command] = []  # commands sent while the thread was still building the trainer
        self._lock = threading.Lock()
        self._fold = E.exhaustive({
            E.RunStarted: self._on_run_started,
            E.StatusChanged: self._on_status,
            E.RunFinished: self._on_status,
            E.RunFailed: self._on_failed,
            E.CheckpointSaved: self._on_checkpoint,
            **dict.fromkeys((E.StepMetrics, E.EpochMetrics, E.ValidationMetrics, E.TestMetrics, E.ConfusionMatrix,
                             E.CommandApplied, E.CommandRejected, E.RunWarning, E.RunNote, E.RunError,
                             E.LearningRateFound, E.SystemSample, E.Scalars, E.BreakpointsChanged), E.ignore),
        }, "RunSession")

    # -- what the app asks -----------------------------------------------------------------------
    @property
    def run_active(self) -> bool:
        """The run was started and has not reported a final status (nor has its thread ended)."""
        return self.thread is not None and not self.thread_done and self.status not in E.FINAL_STATUSES

    @property
    def detachable(self) -> bool:
        """The trainer can be left going (``TrainerLike.detachable``); False before it is built."""
        return self.trainer is not None and self.trainer.detachable

    @property
    def viewers(self) -> int:
        """Dashboards showing the run now, this one included (1 before the trainer is built)."""
        return self.trainer.viewers if self.trainer is not None else 1

    @property
    def failed(self) -> bool:
        """The run failed."""
        return self.status == "failed"

    def exit_code(self, signalled: bool = False) -> int:
        """What the process exits with (:func:`core.status.exit_code`, as headless): 0 after a
        detach or a finished run, 1 after a failure, 130 after an interrupt, 3 when the run ended
        ``unsaved`` (a checkpoint it was meant to write is missing). A run that has not reported its
        end exits 130 when it was asked to stop (the trainer process is still saving on its own) or
        the process was ``signalled``, else 0 (nothing ran)."""
        return exit_code(self.status, detached=self.detached, not_final=130 if self.stop_requested or signalled else 0)

    def left_running(self) -> bool:
        """The run goes on without this app: it detached, or the trainer process dropped it."""
        if self.status in E.FINAL_STATUSES:
            return False
        return self.detached or (self.trainer is not None and self.trainer.detached and not self.stop_requested)

    # -- the training thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the training thread: it builds the trainer, hands it the commands sent meanwhile and runs it."""
        self.thread_done = False
        # A plain daemon thread rather than a thread worker: Textual runs those in asyncio's
        # default executor, which is joined (up to minutes) when the app's loop closes, so a busy
        # trainer could hold the exit. run_tui joins this one with a timeout instead.
        self.thread = threading.Thread(target=self._train, name="tui-train-trainer", daemon=True)
        self.thread.start()

    def _train(self) -> None:
        """The training thread: build the trainer, run it; never raises, always ends with ThreadDone."""
        sink = self._sink
        try:
            trainer = self.make()
            with self._lock:
                self.trainer = trainer
                pending, self._pending = self._pending, []
            for command in pending:
                trainer.submit(command)
            trainer.run(stop_event=self.stop, sink=sink)
        except BaseException as exc:  # noqa: BLE001 - the engine reports its own failures; this catches setup errors
            sink(E.RunFailed(message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(), traceback_path=""))
        finally:
            sink(ThreadDone())

    def _sink(self, ev: object) -> None:
        """The trainer's sink: marks what happens now for :attr:`notices` (an attached trainer
        hands the run's history over first: its ``live`` is False until it is done), then queues."""
        self.notices.mark(ev, live=getattr(self.trainer, "live", True))
        self.events.put(ev)

    def submit(self, command: C.Command) -> None:
        """Hand ``command`` to the trainer (thread-safe, never blocks); while the thread is still
        building it, the command waits and is submitted first."""
        with self._lock:
            if self.trainer is None:
                self._pending.append(command)
                return
            trainer = self.trainer
        trainer.submit(command)

    def request_stop(self, reason: str) -> None:
        """End a detachable run on the way out: ``Interrupt(reason)`` (it finishes the step, saves
        and ends as interrupted), and the app quits once it has ended."""
        self.stop_requested = self.quit_when_ended = True
        self.submit(C.Interrupt(reason))

    def hang_up(self, stop: bool) -> bool:
        """The app's terminal hung up: an active detachable run is asked to end (``stop``: True is
        returned, and the app quits once it has ended) or left going (detached, unless a stop was
        asked already); an in-thread run is left to the stop event (False)."""
        if not (self.run_active and self.detachable):
            return False
        if stop:
            self.request_stop("hangup")
            return True
        if not self.stop_requested:
            self.detached = True
        return False

    def stop_training(self, timeout: float) -> bool:
        """Set the stop event and wait up to ``timeout`` s for the thread; True if it ended."""
        self.stop.set()
        thread = self.thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # -- its events ------------------------------------------------------------------------------
    def drain(self) -> list:
        """Every event queued so far (ThreadDone included), oldest first."""
        events = []
        while True:
            try:
                events.append(self.events.get_nowait())
            except queue.Empty:
                return events

    def follow(self, ev: E.Event) -> None:
        """Fold one engine event in: the status, the run directory, a refusal, a fork's checkpoint;
        a notification through the terminal when it is worth one."""
        self._fold[type(ev)](ev)
        self.notices.follow(ev)

    def drain_after_exit(self) -> None:
        """After the app has exited: fold the events left in the queue, for the final status."""
        for ev in self.drain():
            if not isinstance(ev, ThreadDone):
                self.follow(ev)

    def thread_ended(self) -> Ending:
        """The thread's ThreadDone arrived: fold its end into the status and say what it means."""
        self.thread_done = True
        if self.fork is not None and self.fork.checkpoint is not None:
            return Ending.FORK
        if self.replay:
            # a replay is no run of this app's: its dashboard keeps what the run's files say, the app is idle again
            self.status, self.run_dir, self.trainer = "ready", None, None
            return Ending.REPORTED
        if self.status in E.FINAL_STATUSES:
            return Ending.REPORTED
        if self.trainer is not None and self.trainer.detached:
            return Ending.DROPPED
        self.status = "interrupted" if self.stop.is_set() else "stopped"
        return Ending.UNREPORTED

    def detach_refusal(self) -> str:
        """Why the app cannot leave the run going; '' when it can (an active run of a process of its own)."""
        if not self.run_active:
            return "no active run"
        if not self.detachable:
            return "this run cannot be left training (it runs inside this app): stop it or quit"
        return ""

    def fork_refusal(self) -> str:
        """Why f cannot fork the run now; '' when it can (a paused run of a process of its own)."""
        if not (self.run_active and self.detachable):
            return "fork: the run must be a process of its own (tui-train run or attach)"
        if self.status != "paused":
            return "fork: pause first (space), then f forks the run from that step"
        return ""

    def ask_fork(self, changes: list[str]) -> None:
        """f answered with ``changes``: save a 'fork' checkpoint; once it is saved the parent is left
        paused (the stop event) and its thread's end starts the fork (:attr:`Ending.FORK`)."""
        if self.fork is None or self.fork.checkpoint is None:  # one already leaving the parent keeps its changes
            self.fork = Fork(tuple(changes))
        self.submit(C.SaveCheckpoint("fork"))

    def _on_run_started(self, ev: E.RunStarted) -> None:
        self.run_dir = ev.run_dir

    def _on_status(self, ev: E.StatusChanged | E.RunFinished) -> None:
        self.status = status_after(self.status, ev)

    def _on_failed(self, ev: E.RunFailed) -> None:
        self.status = status_after(self.status, ev)
        if self.run_dir is None and not self.replay:  # refused before it started (bad input, issue 15)
            self.refused = ev.message

    def _on_checkpoint(self, ev: E.CheckpointSaved) -> None:
        if ev.reason == "fork" and self.fork is not None and self.fork.checkpoint is None:
            self.fork = Fork(self.fork.changes, Path(ev.path))
            self.stop.set()  # leave the parent (paused, attachable); thread_ended says FORK
