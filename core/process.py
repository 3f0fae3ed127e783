"""Run a :class:`core.engine.Trainer` in a child process behind the same interface.

Why: the training loop of a small model is Python-bound, and Python threads share one
interpreter lock, so a UI thread in the same process takes its drawing time straight out of
training (measured on 2 cores, MNIST 784-128-10: the TUI in-thread trained at 0.86-0.94x of
headless; see BENCHMARKS.md, section c). In a child process the trainer has an interpreter of
its own, and the UI process never imports torch at all.

The contract is unchanged: ``submit(command)`` never blocks (a multiprocessing queue), and
``run(stop_event, sink)`` blocks in the caller's thread, handing each event to ``sink`` as it
arrives. Events and commands are frozen dataclasses of plain values, so they pickle.

Never lose a run: the child catches SIGHUP and SIGTERM itself (a closed terminal signals the
whole process group) and stops cooperatively, saving a checkpoint; if the parent disappears,
the child notices within a second and does the same. If the child dies (killed, out of memory),
``run`` reports a RunFailed event instead of hanging.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core import commands as C
from core import events as E
from core.config import RunConfig

_DONE = "__tui_train_done__"


class ProcessTrainer:
    """A Trainer in a spawned child process; same ``submit`` / ``run`` as core.engine.Trainer."""

    def __init__(self, config: RunConfig, *, runs_dir: str | Path = "runs", preset: str | None = None,
                 resume: str | Path | None = None, resume_overrides: list[str] | tuple = ()):
        self.config = config
        """The config to train (a resumed run uses its checkpoint's)."""
        self.kwargs = {"runs_dir": str(runs_dir), "preset": preset, "resume": str(resume) if resume else None,
                       "resume_overrides": list(resume_overrides)}
        """Keyword arguments for the Trainer built in the child."""
        self._ctx = mp.get_context("spawn")  # fork from a threaded process can deadlock (STYLE.md)
        with _real_stderr():  # the queues' locks start multiprocessing's resource tracker
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
            self._commands = self._ctx.Queue()
            self._events = self._ctx.Queue()
            self._child_stop = self._ctx.Event()
        self.process: mp.process.BaseProcess | None = None
        """The child, once started."""
        self.exitcode: int | None = None
        """The child's exit code, once it ended."""

    def submit(self, command: C.Command) -> None:
        """Queue a command for the child; never blocks (a feeder thread writes the pipe)."""
        self._commands.put(command)

    def run(self, stop_event: threading.Event | None = None, sink: Callable[[E.Event], None] | None = None) -> dict:
        """Start the child, forward its events to ``sink`` until it ends; return the summary."""
        sink = sink or (lambda e: None)
        stop_event = stop_event or threading.Event()
        self.process = self._ctx.Process(
            target=_child_main, name="tui-train-trainer", daemon=False,
            args=(self.config, self.kwargs, self._commands, self._events, self._child_stop, os.getpid()))
        with _real_stderr():
            self.process.start()
        summary: dict = {}
        finished = False
        while True:
            if stop_event.is_set() and not self._child_stop.is_set():
                self._child_stop.set()
            try:
                item = self._events.get(timeout=0.05)
            except queue.Empty:
                if not self.process.is_alive():
                    # drain what the child wrote just before it ended
                    try:
                        item = self._events.get(timeout=0.5)
                    except queue.Empty:
                        break
                else:
                    continue
            if isinstance(item, tuple) and item and item[0] == _DONE:
                summary = item[1] or {}
                finished = True
                break
            if isinstance(item, (E.RunFinished, E.RunFailed)):
                summary = dict(item.summary)
            sink(item)
        # The run is saved and reported once _DONE arrived; the child's interpreter teardown
        # (torch's included) need not hold up a UI that must exit within 5 s of a hang-up.
        self.process.join(timeout=10 if not finished else 2)
        self.exitcode = self.process.exitcode
        if not finished:
            code = self.exitcode
            why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            message = f"the training process ended unexpectedly ({why}); the newest checkpoint in the run directory is intact"
            sink(E.StatusChanged(status="failed", reason=message, cause="failure"))
            sink(E.RunFailed(message=message, traceback="", traceback_path="", summary=summary))
        # Commands submitted after the end have no reader: never let them block interpreter exit.
        self._commands.cancel_join_thread()
        return summary


@contextlib.contextmanager
def _real_stderr():
    """multiprocessing passes sys.stderr's fd to its resource tracker; a UI that captures stderr
    (Textual does) has no real fd there ("bad value(s) in fds_to_keep"). Use the process's own."""
    saved = sys.stderr
    try:
        try:
            ok = saved is not None and saved.fileno() >= 0
        except (AttributeError, OSError, ValueError):
            ok = False
        if not ok:
            sys.stderr = sys.__stderr__
        yield
    finally:
        sys.stderr = saved


def _quiet_std_streams() -> None:
    """The child shares the terminal with the UI: anything it printed would tear the screen.
    Python warnings become RunWarning events instead (see _child_main); fds 1 and 2 go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _child_main(config: RunConfig, kwargs: dict, commands, events, stop, parent_pid: int) -> None:
    """The child: build the Trainer, forward commands, stop on signals or when orphaned."""
    _quiet_std_streams()
    import warnings

    from core.engine import Trainer

    def on_signal(signum, frame):
        stop.set()

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, on_signal)
    # Ctrl+C belongs to the UI (it offers to save); a stray SIGINT must not kill the trainer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    trainer = Trainer(config, **kwargs)
    alive = threading.Event()

    held: list[E.Event] = []  # warnings raised while setting up wait for RunStarted (it comes first)

    def sink(event: E.Event) -> None:
        failing = isinstance(event, E.RunFailed) or (isinstance(event, E.StatusChanged) and event.status == "failed")
        if failing:
            while held:  # setup failed: its warnings still come before the end of the run
                events.put(held.pop(0))
        events.put(event)
        if isinstance(event, E.RunStarted):
            while held:
                events.put(held.pop(0))

    def show_warning(message, category, filename, lineno, file=None, line=None):
        text = f"{category.__name__}: {str(message).splitlines()[0] if str(message) else ''} ({Path(filename).name}:{lineno})"
        ev = E.RunWarning(message=text[:300], step=trainer.state.step)
        if trainer.run_dir is None or not trainer.prepared:
            held.append(ev)
        else:
            events.put(ev)

    warnings.showwarning = show_warning

    def forward_commands() -> None:
        while not alive.is_set():
            try:
                cmd = commands.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            if cmd is None:
                return
            trainer.submit(cmd)

    def watch_parent() -> None:
        while not alive.is_set():
            if os.getppid() != parent_pid:  # orphaned: save and stop rather than train unseen
                stop.set()
                return
            time.sleep(0.5)

    local_stop = threading.Event()  # checked every step: a plain Event is cheaper than the shared one

    def relay_stop() -> None:
        while not alive.is_set():
            if stop.wait(0.2):
                local_stop.set()
                return

    for target in (forward_commands, watch_parent, relay_stop):
        threading.Thread(target=target, daemon=True).start()
    summary: dict = {}
    try:
        summary = trainer.run(stop_event=local_stop, sink=sink)
    finally:
        alive.set()
        for ev in held:  # a run that failed before RunStarted still reports its warnings
            events.put(ev)
        events.put((_DONE, summary))
        events.close()
        events.join_thread()  # make sure every event reached the pipe before exiting
