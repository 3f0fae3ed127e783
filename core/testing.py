"""A scripted stand-in for :class:`core.engine.Trainer`, for tests, snapshots and demos.

Same interface (``submit(command)``, ``run(stop_event, sink)``), no torch: it emits the events it
is given, records every submitted command, and reacts to commands the way the engine does
(acknowledgement first, then the status change), so the UI can be tested without training.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable

from core import commands as C
from core import events as E


class FakeTrainer:
    """Scripted trainer: emits ``script`` after RunStarted, then serves commands until it ends."""

    def __init__(
        self,
        config: object = None,
        *,
        script: Iterable[E.Event] = (),
        run_dir: str = "runs/fake-run",
        preset: str = "fake",
        task: str = "classification",
        epochs: int = 3,
        steps_per_epoch: int = 100,
        lr: float = 1e-3,
        hyperparameters: dict | None = None,
        auto_finish: bool = False,
        start: bool = True,
    ) -> None:
        self.config = config
        """The config it was built with (unused)."""
        self.script = list(script)
        """Events emitted right after RunStarted and StatusChanged('running')."""
        self.run_dir = run_dir
        """Reported as the run directory."""
        self.preset = preset
        """Reported as the preset name."""
        self.task = task
        """'classification' or 'regression'."""
        self.epochs = epochs
        """Planned epochs."""
        self.steps_per_epoch = steps_per_epoch
        """Optimizer steps per epoch."""
        self.hyperparameters = dict(hyperparameters or {
            "optimizer": "adam", "lr": lr, "batch_size": 64, "momentum": 0.0,
            "weight_decay": 0.0, "grad_clip": 0.0, "patience": 5,
        })
        """Reported in RunStarted; updated by applied commands."""
        self.auto_finish = auto_finish
        """End with RunFinished('completed') right after the script instead of waiting."""
        self.start = start
        """Emit RunStarted and StatusChanged('running') before the script."""
        self.commands: list[C.Command] = []
        """Every command submitted, in order."""
        self.started = threading.Event()
        """Set once run() has its sink and emitted the opening events."""
        self.finished = threading.Event()
        """Set when run() returns."""
        self.step = 0
        """The step reported in acknowledgements (the last scripted StepMetrics step)."""
        self.status = "starting"
        """Current status, as last emitted."""
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sink: Callable[[E.Event], None] | None = None

    # -- the Trainer interface -------------------------------------------------------------
    def submit(self, command: C.Command) -> None:
        """Record the command; run() applies it (thread-safe, never blocks)."""
        self.commands.append(command)
        self._inbox.put(command)

    def run(self, stop_event: threading.Event | None = None, sink: Callable[[E.Event], None] | None = None) -> dict:
        """Emit the script, then apply commands until Stop, ``finish()`` or ``stop_event``."""
        stop_event = stop_event or threading.Event()
        self._sink = sink or (lambda e: None)
        try:
            if self.start:
                self.emit(E.RunStarted(
                    run_dir=self.run_dir, preset=self.preset, device="cpu", task=self.task,
                    epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
                    total_steps=self.epochs * self.steps_per_epoch, train_size=self.steps_per_epoch * 64,
                    val_size=600, test_size=1000, num_params=101_770, model="MLP(784-128-10)",
                    hyperparameters=dict(self.hyperparameters), live=("lr", *C.LIVE_HYPERPARAMETERS),
                ))
                self._status("running")
            for event in self.script:
                self.emit(event)
            self.started.set()
            if self.auto_finish:
                self._status("completed")
                return self._finish("completed")
            while True:
                if stop_event.is_set():
                    self._checkpoint("interrupt")
                    self._status("interrupted")
                    return self._finish("interrupted")
                try:
                    cmd = self._inbox.get(timeout=0.02)
                except queue.Empty:
                    continue
                if cmd is _FINISH:
                    self._status("completed")
                    return self._finish("completed")
                if self._apply(cmd):
                    return self._finish("early_stopped")
        finally:
            self.started.set()
            self.finished.set()

    # -- test helpers ----------------------------------------------------------------------
    def emit(self, event: E.Event) -> None:
        """Send an event to the sink (from any thread, like the engine does)."""
        if isinstance(event, E.StepMetrics | E.EpochMetrics):
            self.step = event.step
        if isinstance(event, E.StatusChanged):
            self.status = event.status
        assert self._sink is not None, "run() has not started"
        self._sink(event)

    def finish(self) -> None:
        """Make run() end with status 'completed' (as if the last epoch finished)."""
        self._inbox.put(_FINISH)

    # -- internals -------------------------------------------------------------------------
    def _status(self, status: str, reason: str = "") -> None:
        self.emit(E.StatusChanged(status=status, reason=reason, step=self.step))

    def _checkpoint(self, reason: str) -> None:
        path = f"{self.run_dir}/checkpoints/step-{self.step:06d}-{reason}.pt"
        self.emit(E.CheckpointSaved(path=path, step=self.step, epoch=self.step // self.steps_per_epoch, reason=reason))

    def _finish(self, status: str) -> dict:
        summary = {"status": status, "preset": self.preset, "steps": self.step}
        self.emit(E.RunFinished(status=status, summary=summary, run_dir=self.run_dir))
        return summary

    def _ack(self, cmd: C.Command, detail: str, key: str = "", old: float | None = None, new: float | None = None) -> None:
        self.emit(E.CommandApplied(command=cmd.name, detail=detail, step=self.step, key=key, old=old, new=new))

    def _set(self, cmd: C.Command, key: str, new: float) -> None:
        if not (isinstance(new, (int, float)) and math.isfinite(new)) or (key == "lr" and new <= 0):
            self.emit(E.CommandRejected(command=cmd.name, reason=f"{key} must be finite and > 0, got {new}", step=self.step))
            return
        old = self.hyperparameters.get(key)
        self.hyperparameters[key] = new
        self._ack(cmd, f"{key} {old:g} -> {new:g}", key=key, old=old, new=new)

    def _apply(self, cmd: C.Command) -> bool:
        """Apply one command; True when the run ends because of it."""
        if isinstance(cmd, C.Pause):
            if self.status != "running":
                self.emit(E.CommandRejected(command=cmd.name, reason=f"not running ({self.status})", step=self.step))
            else:
                self._ack(cmd, "paused")
                self._status("paused", "user")
        elif isinstance(cmd, C.Resume):
            if self.status != "paused":
                self.emit(E.CommandRejected(command=cmd.name, reason=f"not paused ({self.status})", step=self.step))
            else:
                self._ack(cmd, "resumed")
                self._status("running", "user")
        elif isinstance(cmd, C.SetLearningRate):
            self._set(cmd, "lr", cmd.lr)
        elif isinstance(cmd, C.ScaleLearningRate):
            self._set(cmd, "lr", self.hyperparameters["lr"] * cmd.factor)
        elif isinstance(cmd, C.SetHyperparameter):
            self._set(cmd, cmd.key, cmd.value)
        elif isinstance(cmd, C.SaveCheckpoint):
            self._checkpoint(cmd.reason)
            self._ack(cmd, "checkpoint saved")
        elif isinstance(cmd, C.Validate):
            self.emit(E.ValidationMetrics(step=self.step, epoch=self.step // self.steps_per_epoch, metrics={"loss": 0.25, "accuracy": 0.93}))
            self._ack(cmd, "validated")
        elif isinstance(cmd, C.Stop):
            self._ack(cmd, "early stop requested")
            self._status("stopping", cmd.reason)
            self._checkpoint("early_stop")
            self._status("early_stopped", cmd.reason)
            return True
        return False


_FINISH = object()


def demo_script(task: str = "classification", epochs: int = 3, steps_per_epoch: int = 100, log_every: int = 10) -> list[E.Event]:
    """A deterministic run's worth of events (no clocks, no random numbers) for snapshots."""
    out: list[E.Event] = []
    lr = 1e-3
    step = 0
    elapsed = 0.0
    for epoch in range(epochs):
        for i in range(log_every, steps_per_epoch + 1, log_every):
            step = epoch * steps_per_epoch + i
            elapsed = step * 0.01
            loss = 2.3 * math.exp(-step / 60.0) + 0.05 + 0.02 * math.sin(step / 7.0)
            acc = min(0.99, 1.0 - loss / 2.5)
            if task == "classification":
                out.append(E.StepMetrics(step=step, epoch=epoch, epoch_progress=i / steps_per_epoch, loss=loss, lr=lr,
                                         samples_per_second=6400.0, accuracy=acc, elapsed=elapsed))
            else:
                out.append(E.StepMetrics(step=step, epoch=epoch, epoch_progress=i / steps_per_epoch, loss=loss, lr=lr,
                                         samples_per_second=6400.0, elapsed=elapsed))
        val_loss = 2.3 * math.exp(-step / 70.0) + 0.08
        if task == "classification":
            train = {"loss": loss, "accuracy": acc}
            val = {"loss": val_loss, "accuracy": min(0.99, 1.0 - val_loss / 2.4)}
        else:
            train = {"loss": loss, "mse": loss, "mae": loss / 2, "r2": 1 - loss / 2.5}
            val = {"loss": val_loss, "mse": val_loss, "mae": val_loss / 2, "r2": 1 - val_loss / 2.4}
        out.append(E.EpochMetrics(epoch=epoch, step=step, train=train, val=val, lr=lr, seconds=1.5,
                                  is_best=True, patience_left=5))
        out.append(E.CheckpointSaved(path=f"runs/fake-run/checkpoints/best-epoch{epoch:03d}.pt", step=step, epoch=epoch, reason="best"))
        if epoch == 0:
            out.append(E.CommandApplied(command="SetLearningRate", detail="lr 0.001 -> 0.0005", step=step, key="lr", old=lr, new=lr / 2))
            lr /= 2
    return out
