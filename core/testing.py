"""A scripted stand-in for :class:`core.train.engine.Trainer`, for tests, snapshots and demos.

Same interface (``submit(command)``, ``run(stop_event, sink)``, see :class:`core.contract.TrainerLike`),
no torch: it emits the events it is given, records every submitted command, and answers each
command with the events the engine sends for it, in the engine's order: it decides with the
engine's own :func:`core.run.control.decide` (rules, reasons, limits) and then sends what
``Trainer._apply`` sends (the status change first, then the acknowledgement).
``tests/unit/test_contract.py`` runs one command script against both and compares what comes back.
"""

from __future__ import annotations

import base64
import math
import queue
import re
import threading
from collections.abc import Callable, Iterable

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import lr_find
from tui_train.core.length import Length
from tui_train.core.run import control
from tui_train.core.state import TrainingState

_ENDED = "the run has ended"
"""The reason every command still queued when the run ends is rejected with (as the engine does)."""


class FakeTrainer:
    """Scripted trainer: emits ``script`` after RunStarted, then serves commands until the run ends.

    The run ends on Stop (early_stopped), on Interrupt or ``stop_event`` (interrupted), on
    :meth:`finish` or right after the script with ``auto_finish`` (completed). With
    ``detachable``, ``stop_event`` instead makes run() return {} with the run still going (as
    :class:`core.live.remote.RemoteTrainer` does: the viewer detaches), and ``detached`` says so. It
    takes no steps of its own: the step it reports is the last scripted StepMetrics/EpochMetrics step.
    """

    max_steps = 0
    """The run's step limit (0: none); with ``epochs``, the length a SetRunLength changes."""
    breakpoints: tuple = ()
    """Pending breakpoints, {id, spec} each, as AddBreakpoint and ClearBreakpoints leave them."""
    breakpoint_ids = 0
    """Breakpoint ids given so far."""

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
        detachable: bool = False,
    ) -> None:
        self.config = config
        """The config it was built with; only ``checkpoint.save_last`` is read (default True)."""
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
        """Reported in RunStarted; updated by applied commands (``lr`` is the base learning rate;
        a true ``nesterov`` entry makes momentum 0 rejected, as with the engine's SGD)."""
        self.auto_finish = auto_finish
        """End as completed right after the script instead of serving commands."""
        self.start = start
        """Emit RunStarted and StatusChanged('running') before the script."""
        self.detachable = detachable
        """Setting run()'s stop_event leaves the run going (a trainer process of its own) instead
        of ending it as interrupted (an in-thread trainer): see :class:`core.contract.TrainerLike`."""
        self.detached = False
        """run() returned because stop_event was set while the run went on (``detachable`` only)."""
        self.viewers = 1
        """Dashboards showing the run, this one included (a test sets more; RemoteTrainer's from the endpoint)."""
        self.commands: list[C.Command] = []
        """Every command submitted, in order."""
        self.started = threading.Event()
        """Set once run() has its sink and emitted the opening events and the script."""
        self.finished = threading.Event()
        """Set when run() returns."""
        self.step = 0
        """The step reported in events (the last scripted StepMetrics/EpochMetrics step)."""
        self.status = "starting"
        """Current status, as last emitted."""
        self.good_step: int | None = None
        """The step Rollback returns to: where run() started, then the last scripted StepMetrics
        with a finite loss (the engine keeps a last-good snapshot the same way); None before run()."""
        save_last = getattr(getattr(config, "checkpoint", None), "save_last", True)
        self._save_last = bool(save_last)
        self._paused_for_nonfinite = False
        self._stop_reason = ""
        self._interrupted = ""
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sink: Callable[[E.Event], None] | None = None

    # -- the Trainer interface -------------------------------------------------------------
    def submit(self, command: C.Command, origin: str = "") -> None:
        """Record the command; run() applies it (thread-safe, never blocks); ``origin`` is echoed
        in its acknowledgement, as the engine does."""
        self.commands.append(command)
        self._inbox.put((command, origin))

    def run(self, stop_event: threading.Event | None = None, sink: Callable[[E.Event], None] | None = None) -> dict:
        """Emit the opening events and the script, then apply commands until the run ends; return the summary."""
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
                    max_steps=self.max_steps, breakpoints=self.breakpoints,
                ))
                self._status("running", "started", "start")
            self.good_step = self.step  # the engine snapshots the weights it starts from
            for event in self.script:
                self.emit(event)
            self.started.set()
            if self.auto_finish:
                return self._end("completed")
            while True:  # one pass = one step boundary of the engine
                if stop_event.is_set():
                    return self._leave()
                try:
                    cmd = self._inbox.get(timeout=0.02)
                except queue.Empty:
                    continue
                finish = cmd is _FINISH
                if not finish:
                    self._apply(*cmd)
                    finish = self._drain()  # what is queued behind it applies at the same boundary
                if self._interrupted:
                    return self._end("interrupted", self._interrupted)
                if stop_event.is_set():
                    return self._leave()
                if self.status == "stopping":
                    return self._end("early_stopped", self._stop_reason)
                if finish:
                    return self._end("completed")
        finally:
            self.started.set()
            self.finished.set()

    # -- test helpers ----------------------------------------------------------------------
    def emit(self, event: E.Event) -> None:
        """Send an event to the sink (from any thread, like the engine does); the fake follows
        what it says (step, status, a non-finite pause, the last good step)."""
        if isinstance(event, E.StepMetrics | E.EpochMetrics):
            self.step = event.step
        if isinstance(event, E.StepMetrics) and math.isfinite(event.loss):
            self.good_step = event.step
        if isinstance(event, E.StatusChanged):
            self.status = event.status
            self._paused_for_nonfinite = event.status == "paused" and event.cause == "nonfinite"
        assert self._sink is not None, "run() has not started"
        self._sink(event)

    def finish(self) -> None:
        """Make run() end as completed once the commands submitted before it are applied.

        Only the final StatusChanged (no reason) and RunFinished are sent: a script that wants the
        engine's other closing events (last checkpoint, TestMetrics) carries them itself.
        """
        self._inbox.put(_FINISH)

    # -- internals -------------------------------------------------------------------------
    def _leave(self) -> dict:
        """stop_event is set: a detachable fake detaches (the run goes on), another one ends interrupted."""
        if self.detachable:
            self.detached = True
            return {}
        return self._end("interrupted", "stop requested")

    def _status(self, status: str, reason: str, cause: str) -> None:
        self.emit(E.StatusChanged(status=status, reason=reason, step=self.step, cause=cause))

    def _epoch(self) -> int:
        return self.step // max(1, self.steps_per_epoch)

    def _checkpoint(self, reason: str) -> str:
        # the engine's file names (core.train.checkpoint.checkpoint_name, not imported: it needs torch)
        name = f"{reason}.pt" if reason in ("best", "last") else f"step-{self.step:08d}-{re.sub(r'[^a-z0-9_]+', '_', reason.lower())}.pt"
        path = f"{self.run_dir}/checkpoints/{name}"
        self.emit(E.CheckpointSaved(path=path, step=self.step, epoch=self._epoch(), reason=reason))
        return path

    def _validate(self) -> None:
        """What the engine sends for a validation: its matrix (classification), then its metrics."""
        if self.task == "classification":
            self.emit(self._confusion())
        self.emit(E.ValidationMetrics(step=self.step, epoch=self._epoch(), metrics=self._validation()))

    def _confusion(self) -> E.ConfusionMatrix:
        """A two-class matrix matching :meth:`_validation`'s accuracy, with one misclassified 4x4 image."""
        stroke = bytes([0, 255, 255, 0] * 4)
        mistake = {"index": 3, "true": 0, "pred": 1, "height": 4, "width": 4, "channels": 1,
                   "pixels": base64.b64encode(stroke).decode("ascii")}
        return E.ConfusionMatrix(step=self.step, epoch=self._epoch(), num_classes=2, confusion=((93, 7), (7, 93)),
                                 classes=("even", "odd"), mistakes=(mistake,))

    def _validation(self) -> dict:
        if self.task == "classification":
            return {"loss": 0.25, "accuracy": 0.93, "precision": 0.93, "recall": 0.93, "f1": 0.93}
        return {"loss": 0.25, "mse": 0.25, "mae": 0.4, "r2": 0.8}

    def _drain(self) -> bool:
        """Apply what is queued; True when finish() was asked (what follows it is left for _end to reject)."""
        while True:
            try:
                cmd = self._inbox.get_nowait()
            except queue.Empty:
                return False
            if cmd is _FINISH:
                return True
            self._apply(*cmd)

    def _end(self, status: str, reason: str = "") -> dict:
        """What the engine's finish sends for ``status`` (a completed run: see :meth:`finish`)."""
        if status == "early_stopped" and self.step % max(1, self.steps_per_epoch):
            self._validate()  # the partial epoch
        if status in ("early_stopped", "interrupted"):
            self._checkpoint("early_stop" if status == "early_stopped" else "interrupt")
            if self._save_last:
                self._checkpoint("last")
        if status == "early_stopped":
            self.emit(E.TestMetrics(metrics=self._validation()))
        while True:  # every command is acknowledged, also after the last step
            try:
                cmd = self._inbox.get_nowait()
            except queue.Empty:
                break
            if cmd is not _FINISH:
                self._reject(cmd[0], _ENDED, cmd[1])
        summary = {"status": status, "reason": reason, "preset": self.preset, "steps": self.step,
                   "final_lr": self.hyperparameters.get("lr")}
        self._status(status, reason, "end")
        self.emit(E.RunFinished(status=status, summary=summary, run_dir=self.run_dir))
        return summary

    def _ack(self, cmd: C.Command, detail: str, key: str = "", old: float | None = None, new: float | None = None,
             origin: str = "") -> None:
        self.emit(E.CommandApplied(command=cmd.name, detail=detail, step=self.step, key=key, old=old, new=new, origin=origin))

    def _reject(self, cmd: C.Command, reason: str, origin: str = "") -> None:
        self.emit(E.CommandRejected(command=cmd.name, reason=reason, step=self.step, origin=origin))

    def _apply(self, cmd: C.Command, origin: str = "") -> None:
        """Apply one command as the engine does: the same decision (core.run.control.decide), then the
        engine's events in the engine's order (Trainer._apply)."""
        hp = self.hyperparameters
        state = TrainingState(step=self.step, epoch=self._epoch(), base_lr=float(hp.get("lr", 0.0)),
                              grad_clip=float(hp.get("grad_clip", 0.0)), patience=int(hp.get("patience", 0)),
                              breakpoints=list(self.breakpoints), breakpoint_ids=self.breakpoint_ids)
        group = {"momentum": float(hp.get("momentum", 0.0)), "weight_decay": float(hp.get("weight_decay", 0.0)),
                 "nesterov": bool(hp.get("nesterov", False))}
        d = control.decide(cmd, self.status, state, group, good_step=self.good_step,
                           nonfinite_pause=self.status == "paused" and self._paused_for_nonfinite,
                           length=Length(self.epochs, self.max_steps, self.steps_per_epoch))
        if d.rejected:
            return self._reject(cmd, d.rejected, origin)
        detail = d.applied
        if d.effect == "save":
            detail = f"saved {self._checkpoint(getattr(cmd, 'reason', '') or 'manual')}"
        elif d.effect == "validate":
            self._validate()
        elif d.effect == "interrupt":
            self._interrupted = f"stop requested ({getattr(cmd, 'reason', '') or 'user'})"
        elif d.effect == "lr_find":  # no model: the sweep runs on a synthetic loss curve
            curve = lr_find.run_sweep(lr_find.demo_loss, cmd.start_lr, cmd.end_lr, cmd.steps)
            self.emit(lr_find.found_event(curve, self.step))
            detail = lr_find.ack_detail(curve)
        elif d.effect == "length":
            setattr(self, d.key, int(d.new))
        changes = dict(d.changes)  # the breakpoints and the schedule's plan are the run's, not hyperparameters
        marks = {k: changes.pop(k) for k in ("breakpoints", "breakpoint_ids", "lr_plan", "lr_total") if k in changes}
        for name, value in {**changes, **d.optimizer}.items():
            hp[{"base_lr": "lr", "beta1": "momentum"}.get(name, name)] = value
        if d.status and not d.status_after_ack:
            if d.status[0] == "stopping":
                self._stop_reason = d.status[1]
            self._status(*d.status)
        self._ack(cmd, detail, key=d.key, old=d.old, new=d.new, origin=origin)
        if d.status and d.status_after_ack:
            self._status(*d.status)
        if "breakpoints" in marks:  # as the run layer announces them (core.run.place.RunPlace.apply)
            self.breakpoints = tuple(marks["breakpoints"])
            self.breakpoint_ids = marks.get("breakpoint_ids", self.breakpoint_ids)
            self.emit(E.BreakpointsChanged(step=self.step, pending=self.breakpoints))
        return None


_FINISH = object()


def sample_events() -> list[E.Event]:
    """One instance of every type in :data:`core.events.EVENT_TYPES`, in that order, holding plain
    values only (for dispatch tests: every consumer must handle each)."""
    summary = {"status": "completed", "reason": "all epochs done", "preset": "fake", "steps": 300}
    samples: dict[type[E.Event], E.Event] = {
        E.RunStarted: E.RunStarted(
            run_dir="runs/fake-run", preset="fake", device="cpu", task="classification", epochs=3,
            steps_per_epoch=100, total_steps=300, train_size=6400, val_size=600, test_size=1000,
            num_params=101_770, model="MLP(784-128-10)", hyperparameters={"lr": 1e-3, "optimizer": "adam"},
            live=("lr", *C.LIVE_HYPERPARAMETERS)),
        E.StatusChanged: E.StatusChanged(status="running", reason="started", step=0, cause="start"),
        E.StepMetrics: E.StepMetrics(step=10, epoch=0, epoch_progress=0.1, loss=1.5, lr=1e-3,
                                     samples_per_second=6400.0, accuracy=0.5, elapsed=0.1),
        E.EpochMetrics: E.EpochMetrics(epoch=0, step=100, train={"loss": 0.5, "accuracy": 0.85},
                                       val={"loss": 0.4, "accuracy": 0.88}, lr=1e-3, seconds=1.5,
                                       is_best=True, patience_left=5),
        E.ValidationMetrics: E.ValidationMetrics(step=150, epoch=1, metrics={"loss": 0.3, "accuracy": 0.9}),
        E.TestMetrics: E.TestMetrics(metrics={"loss": 0.25, "accuracy": 0.93}, confusion=((5, 1), (0, 6))),
        E.ConfusionMatrix: E.ConfusionMatrix(step=150, epoch=1, num_classes=2, confusion=((5, 1), (0, 6)), classes=("cat", "dog"),
                                             mistakes=({"index": 3, "true": 0, "pred": 1, "height": 2, "width": 2,
                                                        "channels": 1, "pixels": "AP8A/w=="},)),
        E.CheckpointSaved: E.CheckpointSaved(path="runs/fake-run/checkpoints/step-00000150-manual.pt", step=150,
                                             epoch=1, reason="manual"),
        E.CommandApplied: E.CommandApplied(command="SetLearningRate", detail="lr 0.001 -> 0.0005", step=150,
                                           key="lr", old=1e-3, new=5e-4),
        E.CommandRejected: E.CommandRejected(command="Pause", reason="cannot pause while paused", step=150),
        E.RunWarning: E.RunWarning(message="non-finite loss (nan) at step 160", step=160),
        E.RunNote: E.RunNote(message="threads: using 1 intra-op thread(s)", step=5),
        E.RunError: E.RunError(message="checkpoint (manual) not saved: OSError: disk full", step=170),
        E.RunFinished: E.RunFinished(status="completed", summary=summary, run_dir="runs/fake-run"),
        E.RunFailed: E.RunFailed(message="RuntimeError: boom", traceback="Traceback...\nRuntimeError: boom",
                                 traceback_path="runs/fake-run/traceback.txt", summary={**summary, "status": "failed"}),
        E.LearningRateFound: lr_find.found_event(lr_find.run_sweep(lr_find.demo_loss, steps=20), 150),
        E.SystemSample: E.SystemSample(step=150, cpu_percent=97.5, rss_bytes=812_000_000, mem_percent=41.0,
                                       mem_total_bytes=16_000_000_000, gpu_percent=88.0, gpu_mem_bytes=6_000_000_000,
                                       gpu_mem_total_bytes=24_000_000_000, gpu_temp_c=64.0, gpu_power_w=210.5),
        E.Scalars: E.Scalars(step=150, epoch=1, values={"grad_norm": 1.25, "[/bold] \x1b[31m": 2.0}),
        E.BreakpointsChanged: E.BreakpointsChanged(step=150, pending=({"id": 2, "spec": "val_accuracy >= 0.98"},
                                                                      {"id": 3, "spec": "epoch=[/bold]5"})),
    }
    missing = [t.__name__ for t in E.EVENT_TYPES if t not in samples]
    if missing:  # a new event type: add its sample here
        raise TypeError(f"sample_events() has no sample of {', '.join(missing)}")
    return [samples[t] for t in E.EVENT_TYPES]


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
