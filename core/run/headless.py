"""The plain-terminal front end: runs a Trainer in the main thread and prints one line per event.

Used by ``tui-train run --headless`` and whenever stdout is not a terminal. SIGINT (Ctrl+C),
SIGTERM and SIGHUP stop the run cooperatively: the step finishes, a checkpoint is saved and the
run ends as ``interrupted`` (a second Ctrl+C aborts at once).
"""

from __future__ import annotations

import math
import os
import queue
import signal
import sys
import threading
from typing import TextIO

from tui_train.core import breakpoints, length
from tui_train.core import events as E
from tui_train.core.lr_find import lr_found
from tui_train.core.status import EXIT_CODES, exit_code, not_saved_text, status_after
from tui_train.core.text import printable

STOP_DEADLINE = 4.5
"""Seconds a signalled run (headless, or a trainer process) has to save and end before its watchdog
writes an ``interrupted`` summary and exits 130: the README promises an exit within 5 s, and the
rest is for the exit itself (tests/e2e/test_headless_signals.py hangs a step to see it fire)."""


def _num(v: float | None, fmt: str = ".4f") -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return format(v, fmt)


def _pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"


def _metrics(d: dict) -> str:
    parts = []
    for k in ("loss", "accuracy", "f1", "mse", "mae", "r2"):
        if k in d:
            parts.append(f"{'acc' if k == 'accuracy' else k} {_pct(d[k]) if k in ('accuracy', 'f1') else _num(d[k])}")
    return " ".join(parts)


class Printer:
    """Formats events as compact lines: one handler per event type (checked exhaustive)."""

    steps_per_epoch = 0
    """Optimizer steps per epoch, from RunStarted (a live length change recomputes the total)."""
    max_steps = 0
    """The run's step limit (0: none), from RunStarted and SetRunLength's acknowledgements."""

    def __init__(self, out: TextIO):
        self.out = out
        """Where lines go (replaced by os.devnull once the terminal is gone)."""
        self.epochs = 0
        """Planned epochs, from RunStarted."""
        self.total_steps = 0
        """Planned steps, from RunStarted."""
        self._handlers = E.exhaustive({
            E.RunStarted: self._started, E.StatusChanged: self._status, E.StepMetrics: self._step,
            E.EpochMetrics: self._epoch,
            E.ValidationMetrics: lambda ev: self.line(f"validation at step {ev.step}: {_metrics(ev.metrics)}"),
            E.TestMetrics: lambda ev: self.line(f"test: {_metrics(ev.metrics)}"),
            E.ConfusionMatrix: E.ignore,  # a grid and images: for the TUI's c screen (metrics.jsonl has it)
            E.CheckpointSaved: lambda ev: self.line(f"checkpoint ({ev.reason}) saved: {ev.path}"),
            E.CommandApplied: self._applied,
            E.CommandRejected: lambda ev: self.line(f"{ev.command} rejected: {ev.reason}"),
            E.RunWarning: lambda ev: self.line(f"warning: {ev.message}"),
            E.RunNote: lambda ev: self.line(f"note: {ev.message}"),
            E.RunError: lambda ev: self.line(f"error: {ev.message}"),
            E.RunFinished: self._finished, E.RunFailed: self._failed,
            E.LearningRateFound: lambda ev: self.line(f"LR range test at step {ev.step}: {lr_found(ev)}"),
            E.SystemSample: E.ignore,  # metrics.jsonl has them; a line every 2 s would drown the progress
            E.Scalars: lambda ev: self.line(f"step {ev.step:>6}  " + "  ".join(f"{k} {_num(v)}" for k, v in ev.values.items())),
            E.BreakpointsChanged: lambda ev: self.line(f"breakpoints pending: {breakpoints.text(ev.pending)}"),
        }, "Printer")

    def line(self, text: str) -> None:
        """Print one line; a closed terminal (EIO after a hang-up, EPIPE) silences the printer
        instead of raising into whoever printed (a signal handler runs in the training thread).
        Control characters (an ANSI escape in an exception message) are written as escapes (habit 23)."""
        try:
            self.out.write(printable(text) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            self.out = open(os.devnull, "w")  # noqa: SIM115

    def __call__(self, ev: E.Event) -> None:
        """Print the line(s) for one event."""
        self._handlers[type(ev)](ev)

    def _applied(self, ev: E.CommandApplied) -> None:
        self.line(f"{ev.command}: {ev.detail}")
        if ev.key in length.KEYS and isinstance(ev.new, int | float) and self.steps_per_epoch:  # the progress lines' totals
            self.max_steps = int(ev.new) if ev.key == "max_steps" else self.max_steps
            self.epochs = int(ev.new) if ev.key == "epochs" else self.epochs
            self.total_steps = length.planned_steps(self.epochs, self.max_steps, self.steps_per_epoch)

    def _started(self, ev: E.RunStarted) -> None:
        self.epochs, self.total_steps = ev.epochs, ev.total_steps
        self.steps_per_epoch, self.max_steps = ev.steps_per_epoch, ev.max_steps
        where = ev.device if ev.world_size <= 1 else f"{ev.device} x {ev.world_size} processes"
        if ev.steps_per_epoch or ev.train_size:
            plan = (f"{ev.train_size} train / {ev.val_size} val / {ev.test_size} test samples; "
                    f"{ev.epochs} epochs x {ev.steps_per_epoch} steps")
        else:  # a loop of the user's own (tui_train.init) need not say its data or steps
            plan = f"{ev.epochs} epochs" if ev.epochs else "its own loop"
        self.line(f"run {ev.preset} on {where}: {ev.model or 'a model'}; {plan}")
        self.line(f"run directory: {ev.run_dir}")

    def _status(self, ev: E.StatusChanged) -> None:
        if ev.status not in ("running", "starting") or ev.reason == "resumed" or ev.reason.startswith("forked"):
            self.line(f"status: {ev.status}" + (f" ({ev.reason})" if ev.reason else ""))

    def _step(self, ev: E.StepMetrics) -> None:
        acc = f"  acc {_pct(ev.accuracy)}" if ev.accuracy is not None else ""
        step = f"step {ev.step:>6}/{self.total_steps}" if self.total_steps else f"step {ev.step:>6}"
        epoch = f"epoch {ev.epoch + 1}/{self.epochs}" if self.epochs else f"epoch {ev.epoch + 1}"
        progress = f" [{100 * ev.epoch_progress:3.0f}%]" if self.total_steps else ""
        self.line(f"{step}  {epoch}{progress}  loss {_num(ev.loss)}{acc}  lr {ev.lr:.2e}  {ev.samples_per_second:,.0f} samples/s")

    def _epoch(self, ev: E.EpochMetrics) -> None:
        val = f"  val {_metrics(ev.val)}" if ev.val else ""
        best = "  *best" if ev.is_best else ""
        pat = f"  patience {ev.patience_left}" if ev.patience_left is not None else ""
        self.line(f"epoch {ev.epoch + 1}/{self.epochs}  train {_metrics(ev.train)}{val}  lr {ev.lr:.2e}  {ev.seconds:.1f}s{best}{pat}")

    def _finished(self, ev: E.RunFinished) -> None:
        s = ev.summary
        self.line(f"finished: {ev.status}; {s['epochs_completed']} epochs, {s['steps']} steps, "
                  f"{s['samples_per_second']:,.0f} samples/s, {s['wall_seconds']:.1f}s; summary: {ev.run_dir}/summary.json")
        if s.get("not_saved"):
            self.line(f"not saved: {not_saved_text(s['not_saved'], limit=10)}")

    def _failed(self, ev: E.RunFailed) -> None:
        self.line(f"failed: {ev.message}")
        if ev.traceback_path:
            self.line(f"traceback saved: {ev.traceback_path}")
        if isinstance(ev.summary, dict) and ev.summary.get("not_saved"):
            self.line(f"not saved: {not_saved_text(ev.summary['not_saved'], limit=10)}")


def run_headless(trainer, out: TextIO | None = None, install_signals: bool = True,
                 grace: float = STOP_DEADLINE) -> int:
    """Run ``trainer`` in this (the main) thread, print its events from a helper thread, return
    the exit code for its final status.

    The trainer runs in the main thread because torch's intra-op thread pool is slower when driven
    from another thread: MNIST 784-128-10 on 2 cores trained at 94k samples/s from the main thread
    and 42k from a background thread (BENCHMARKS.md). Printing is the helper thread's job, so a
    slow terminal never stalls training.

    After SIGINT/SIGTERM/SIGHUP the trainer has ``grace`` seconds to save and finish; then a
    watchdog writes an ``interrupted`` summary and exits the process (130). A second Ctrl+C
    aborts at once (checkpoints are atomic: the newest complete one stays loadable).
    """
    out = out or sys.stdout
    printer = Printer(out)
    events: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    done = threading.Event()
    status = [""]  # the status its events report ("" until the first)
    previous = {}

    def handle(ev: E.Event) -> None:
        printer(ev)  # Printer.line survives a closed terminal
        status[0] = status_after(status[0], ev)

    def pump() -> None:
        while True:
            ev = events.get()
            if ev is None:
                return
            handle(ev)

    def watchdog() -> None:
        if not done.wait(grace):  # a step or a save that does not end must not keep a killed job alive
            trainer.emergency_summary("interrupted", "signal")
            printer.line(f"the trainer did not stop within {grace:.1f}s; exiting (the newest checkpoint is kept)")
            os._exit(EXIT_CODES["interrupted"])

    def on_signal(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            trainer.emergency_summary("interrupted", "aborted by a second Ctrl+C")
            printer.line("aborted")
            os._exit(EXIT_CODES["interrupted"])
        if not stop.is_set():
            stop.set()
            threading.Thread(target=watchdog, name="tui-train-watchdog", daemon=True).start()
            printer.line(f"{signal.Signals(signum).name}: stopping after this step, saving a checkpoint...")

    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, on_signal)
    printer_thread = threading.Thread(target=pump, name="tui-train-printer", daemon=True)
    printer_thread.start()
    try:
        trainer.run(stop_event=stop, sink=events.put)
    finally:
        done.set()
        events.put(None)
        printer_thread.join(timeout=10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # a rank > 0 of a torchrun group reports no events: its trainer's own final status counts
    return exit_code(status[0] if status[0] in E.FINAL_STATUSES else trainer.status)
