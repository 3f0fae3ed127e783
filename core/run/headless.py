"""The plain-terminal front end: runs a Trainer in the main thread and prints one line per event.

Used by ``tui-train run --headless`` and whenever stdout is not a terminal. SIGINT (Ctrl+C),
SIGTERM and SIGHUP stop the run cooperatively: the step finishes, a checkpoint is saved and the
run ends as ``interrupted`` (a second Ctrl+C aborts at once). The run's save signal
(``--signal-save``, SIGUSR1 inside a SLURM job: core.run.slurm) does the same but ends it
``preempted``, and then requeues the SLURM job.
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
from tui_train.core.run import slurm
from tui_train.core.status import EXIT_CODES, exit_code, not_saved_text, status_after
from tui_train.core.text import printable

STOP_DEADLINE = 4.5
"""Seconds a signalled run (headless, or a trainer process) has to save and end before its watchdog
writes an ``interrupted`` summary and exits 130: the README promises an exit within 5 s, and the
rest is for the exit itself (tests/e2e/test_headless_signals.py hangs a step to see it fire)."""

PREEMPT_DEADLINE = 60.0
"""Seconds a run stopped by its save signal has to save and end before the watchdog writes a
``preempted`` summary and exits: the signal comes ahead of the end (``--signal=B:USR1@90`` warns
90 s ahead), so a long step or a large checkpoint is given time."""


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


class _Signals:
    """What SIGINT, SIGTERM, SIGHUP and the save signal do to a headless run (:func:`run_headless`):
    the first one stops it at the next step boundary (the save signal as ``preempted``, the others
    as ``interrupted``) under a watchdog; a second Ctrl+C aborts at once."""

    def __init__(self, trainer, printer: Printer, grace: float, save: signal.Signals | None, requeue: bool):
        self.trainer, self.printer, self.grace, self.save, self.requeue = trainer, printer, grace, save, requeue
        self.stop = slurm.Stop()
        """The run's stop event (core.run.slurm.Stop: it knows whether the save signal set it)."""
        self.done = threading.Event()
        """Set once the trainer's run() has returned (the watchdog stands down)."""
        self.previous: dict = {}

    def install(self) -> None:
        """Take the signals over (the main thread only: Python allows no other)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None), self.save):
            if sig is not None and sig not in self.previous:
                self.previous[sig] = signal.signal(sig, self.on_signal)
        if self.save is not None and slurm.ASKED.is_set():  # it came while starting: stop at the first boundary
            self.on_signal(self.save, None)

    def restore(self) -> None:
        """Give the signals back."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def on_signal(self, signum, frame) -> None:
        stop, name = self.stop, signal.Signals(signum).name
        if stop.is_set() and signum == signal.SIGINT:
            self.trainer.emergency_summary("interrupted", "aborted by a second Ctrl+C")
            self.printer.line("aborted")
            os._exit(EXIT_CODES["interrupted"])
        if stop.is_set():
            return
        if signum == self.save:
            stop.preempt()
            self.printer.line(f"{name}: preempted: stopping after this step, saving a checkpoint...")
        else:
            stop.set()
            self.printer.line(f"{name}: stopping after this step, saving a checkpoint...")
        status = "preempted" if stop.preempted else "interrupted"
        threading.Thread(target=self.watchdog, args=(status,), name="tui-train-watchdog", daemon=True).start()

    def watchdog(self, status: str) -> None:
        """A step or a save that does not end must not keep a killed job alive: after the grace
        (:data:`STOP_DEADLINE`; :data:`PREEMPT_DEADLINE` for the save signal, which comes ahead of
        the end) write the summary and exit with the status's code (a preempted job is still requeued)."""
        grace = self.grace if status == "interrupted" else max(self.grace, PREEMPT_DEADLINE)
        if not self.done.wait(grace):
            self.trainer.emergency_summary(status, "signal")
            self.printer.line(f"the trainer did not stop within {grace:.1f}s; exiting (the newest checkpoint is kept)")
            said = slurm.requeue() if status == "preempted" and self.requeue else ""
            if said:
                self.printer.line(said)
            os._exit(EXIT_CODES[status])


def run_headless(trainer, out: TextIO | None = None, install_signals: bool = True,
                 grace: float = STOP_DEADLINE, requeue: bool = True) -> int:
    """Run ``trainer`` in this (the main) thread, print its events from a helper thread, return
    the exit code for its final status.

    The trainer runs in the main thread because torch's intra-op thread pool is slower when driven
    from another thread: MNIST 784-128-10 on 2 cores trained at 94k samples/s from the main thread
    and 42k from a background thread (BENCHMARKS.md). Printing is the helper thread's job, so a
    slow terminal never stalls training.

    After SIGINT/SIGTERM/SIGHUP the trainer has ``grace`` seconds to save and finish; then a
    watchdog writes an ``interrupted`` summary and exits the process (130). A second Ctrl+C
    aborts at once (checkpoints are atomic: the newest complete one stays loadable). The save
    signal (core.run.slurm.save_signal) ends the run ``preempted`` instead; then, with
    ``requeue`` (rank 0), the SLURM job is requeued (core.run.slurm.requeue: one line).
    """
    printer = Printer(out or sys.stdout)
    events: queue.SimpleQueue = queue.SimpleQueue()
    signals = _Signals(trainer, printer, grace, slurm.save_signal() if install_signals else None, requeue)
    status = [""]  # the status its events report ("" until the first)

    def pump() -> None:
        while True:
            ev = events.get()
            if ev is None:
                return
            printer(ev)  # Printer.line survives a closed terminal
            status[0] = status_after(status[0], ev)

    if install_signals:
        signals.install()
    printer_thread = threading.Thread(target=pump, name="tui-train-printer", daemon=True)
    printer_thread.start()
    try:
        trainer.run(stop_event=signals.stop, sink=events.put)
    finally:
        signals.done.set()
        events.put(None)
        printer_thread.join(timeout=10)
        signals.restore()
    # a rank > 0 of a torchrun group reports no events: its trainer's own final status counts
    final = status[0] if status[0] in E.FINAL_STATUSES else trainer.status
    if final == "preempted" and requeue:
        said = slurm.requeue()  # the checkpoint and summary.json are on disk: now the job may go
        if said:
            printer.line(said)
    return exit_code(final)
