"""The Trainer: the whole supervised training flow, driven by commands, reporting through events.

One thread owns the model: :meth:`Trainer.run` (called in a worker thread by the TUI, in a
background thread by the headless front end) builds data, model and optimizer and trains.
Front ends talk to it only through :meth:`Trainer.submit` (commands, applied at step boundaries)
and the ``sink`` callback (frozen events of plain values). The loop syncs the device only at log
intervals (STYLE.md habit 6) and writes the run directory:

    <runs_dir>/<YYYYmmdd-HHMMSS>-<preset>/
        config.toml  metrics.jsonl  events.jsonl  summary.json  checkpoints/  traceback.txt (on failure)
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import queue
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from core import checkpoint as ckpt
from core import commands as C
from core import events as E
from core.config import ConfigError, RunConfig, apply_overrides, check_monitor, from_dict, replace, to_dict, to_toml
from core.metrics import ClassificationAccumulator, RegressionAccumulator
from core.schedule import Plateau, factor

Sink = Callable[[E.Event], None]


GOOD_EVERY_S = 1.0
"""The last-good snapshot (for Rollback and the non-finite stop) is refreshed at most this often."""


class _EndRun(Exception):
    """Raised inside the loop to leave it; ``status`` says how the run ends."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class _State:
    """Everything that changes while training; saved in checkpoints for exact resume."""

    epoch: int = 0
    """Current epoch (0-based)."""
    batch: int = 0
    """Next batch index within the epoch."""
    step: int = 0
    """Optimizer steps done."""
    base_lr: float = 0.0
    """The base LR the schedule multiplies (live-editable)."""
    grad_clip: float = 0.0
    """Live gradient clip norm (0 = off)."""
    patience: int = 0
    """Live early-stopping patience."""
    best_value: float | None = None
    """Best monitored metric so far."""
    best_epoch: int | None = None
    """Epoch of the best monitored metric."""
    bad_epochs: int = 0
    """Validated epochs since the best (early stopping)."""
    history: list = field(default_factory=list)
    """Live interventions: {step, epoch, command, detail}."""
    epochs: list = field(default_factory=list)
    """One record per finished epoch (train/val metrics, lr, seconds)."""
    train_seconds: float = 0.0
    """Pure training time (evaluation, checkpoints and pauses excluded)."""
    train_samples: int = 0
    """Training samples processed."""
    last_val: dict = field(default_factory=dict)
    """Most recent validation metrics."""


def pick_device(name: str) -> torch.device:
    """Resolve train.device; a requested device that is missing is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device 'cuda': CUDA is not available on this machine (allowed here: auto, cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ConfigError("train.device 'mps': MPS is not available on this machine (allowed here: auto, cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    o = cfg.optim
    betas = (o.momentum if o.momentum > 0 else o.betas[0], o.betas[1])
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.name {o.name!r} is not supported")  # validation prevents this


def make_loss(cfg: RunConfig) -> Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]:
    """loss(output, target, reduction) for the configured loss."""
    o = cfg.optim
    if o.loss == "cross_entropy":
        return lambda out, y, red="mean": F.cross_entropy(out, y, label_smoothing=o.label_smoothing, reduction=red)
    if o.loss == "mse":
        return lambda out, y, red="mean": F.mse_loss(out, y.view_as(out), reduction=red)
    if o.loss == "l1":
        return lambda out, y, red="mean": F.l1_loss(out, y.view_as(out), reduction=red)
    return lambda out, y, red="mean": F.huber_loss(out, y.view_as(out), delta=o.huber_delta, reduction=red)


class ThreadTuner:
    """Chooses torch's intra-op thread count by timing real training steps (train.num_threads = 0).

    The best count depends on the model and on the thread that drives torch: on 2 cores a
    784-128-10 MLP trained at 96k samples/s on 2 threads and 80k on 1 from the main thread, but
    at 42k on 2 and 85k on 1 from a background thread (the TUI's in-process mode); the classic CNN
    ~1.8x faster on 2. So the count is not guessed: after a short warm-up each candidate trains
    for at least ``min_seconds`` (two alternating rounds), and the fastest is kept for the run.
    """

    def __init__(self, candidates: list[int], warmup: int = 3, min_seconds: float = 0.2, min_steps: int = 5, rounds: int = 2):
        self.candidates = candidates * rounds  # alternating rounds: a noisy moment cannot decide alone
        """Thread counts to try, in order (the default first, each ``rounds`` times)."""
        self.rates: dict[int, float] = {}
        """Thread count -> best measured optimizer steps per second."""
        self.warmup, self.min_seconds, self.min_steps = warmup, min_seconds, min_steps
        self._i, self._skip, self._t0, self._steps, self._stops = 0, warmup, 0.0, 0, -1
        torch.set_num_threads(candidates[0])

    def after_step(self, clock_stops: int) -> int | None:
        """Call after each optimizer step; returns the chosen count once decided, else None."""
        now = time.perf_counter()
        if clock_stops != self._stops:  # evaluation, a pause or a save happened: restart the window
            self._stops, self._skip = clock_stops, max(self._skip, 1)
        if self._skip:
            self._skip -= 1
            self._t0, self._steps = now, 0
            return None
        self._steps += 1
        elapsed = now - self._t0
        if elapsed < self.min_seconds or self._steps < self.min_steps:
            return None
        n = self.candidates[self._i]
        self.rates[n] = max(self.rates.get(n, 0.0), self._steps / elapsed)
        self._i += 1
        if self._i < len(self.candidates):
            torch.set_num_threads(self.candidates[self._i])
            self._skip = 2  # let the new thread pool spin up
            return None
        best = max(self.rates, key=self.rates.get)
        torch.set_num_threads(best)
        return best


def thread_candidates(device: torch.device, cfg: RunConfig) -> list[int]:
    """Thread counts worth trying, or [] when the count is fixed (set, deterministic, GPU)."""
    default = torch.get_num_threads()
    if cfg.train.num_threads or cfg.train.deterministic or device.type != "cpu" or default <= 1:
        return []
    return sorted({default, max(1, default // 2), 1}, reverse=True)


class Trainer:
    """Trains one run. Thread-safe entry points: :meth:`submit`; everything else is the owner's."""

    def __init__(self, config: RunConfig, *, runs_dir: str | Path = "runs", preset: str | None = None,
                 resume: str | Path | None = None, resume_overrides: list[str] | tuple = ()):
        self.config = config
        """The resolved config (replaced by the checkpoint's on resume)."""
        self.preset = preset or config.name
        """Preset name, used in the run directory name."""
        self.runs_dir = Path(runs_dir)
        self.resume_from = Path(resume) if resume else None
        """Checkpoint file or run directory to continue from."""
        self.resume_overrides = list(resume_overrides)
        """``--set`` style overrides applied to the checkpoint's config on resume (e.g. data.data_dir)."""
        self.run_dir: Path | None = None
        """Set by :meth:`prepare`."""
        self._commands: queue.SimpleQueue[C.Command] = queue.SimpleQueue()
        self._sink: Sink = lambda e: None
        self._stop = threading.Event()
        self._prepared = False
        self._files: dict[str, Any] = {}
        self._resumed_epoch_acc: tuple[float, float, int] | None = None
        self._tuner: ThreadTuner | None = None
        self._clock_stops = 0
        self._good: dict | None = None
        self._good_time = 0.0
        self._paused_for_nonfinite = False
        self._summary_written = False
        self.status = "starting"
        self.state = _State()

    # ------------------------------------------------------------------ public API

    def submit(self, command: C.Command) -> None:
        """Queue a command; it applies at the next step boundary. Never blocks."""
        self._commands.put(command)

    def prepare(self) -> None:
        """Load data, build model and optimizer, create the run directory.

        Raises ConfigError / DataError / CheckpointError for bad input (one-line messages); the
        headless CLI calls this first so that bad input exits 2 before training starts.
        """
        if self._prepared:
            return
        from core.data import load_data
        from core.models import build_model, count_params, describe_model

        payload = None
        if self.resume_from is not None:
            payload = self._load_resume_payload()
        cfg = self.config
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        self.device = pick_device(cfg.train.device)
        candidates = thread_candidates(self.device, cfg)
        self._tuner = ThreadTuner(candidates) if len(candidates) > 1 else None
        if cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(cfg.train.seed)
        self.data = load_data(cfg.data, self.device, cfg.train.seed)
        self.task = self.data.task
        n_out = self.data.num_classes if self.task == "classification" else int(getattr(self.data, "output_dim", 1))
        if self.task == "classification" and cfg.optim.loss != "cross_entropy":
            raise ConfigError(f"optim.loss {cfg.optim.loss!r} does not fit a classification dataset (allowed: cross_entropy)")
        if self.task == "regression" and cfg.optim.loss == "cross_entropy":
            raise ConfigError("optim.loss 'cross_entropy' does not fit a regression dataset (allowed: mse, l1, huber)")
        check_monitor(cfg, self.task, "early_stopping.monitor")
        self.model = build_model(cfg.model, tuple(self.data.input_shape), n_out).to(self.device)
        if cfg.train.channels_last and len(self.data.input_shape) == 3:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if cfg.train.compile else self.model
        self.optimizer = build_optimizer(cfg, self.model.parameters())
        self.loss_fn = make_loss(cfg)
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if cfg.train.bf16 else contextlib.nullcontext
        self.batches_per_epoch = self.data.steps_per_epoch(cfg.data.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.optim.grad_accum)
        total = cfg.train.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
        self.plateau = Plateau(cfg.schedule.plateau_factor, cfg.schedule.plateau_patience, cfg.monitor_mode)
        self.state = _State(base_lr=cfg.optim.lr, grad_clip=cfg.optim.grad_clip, patience=cfg.early_stopping.patience)
        self.model_summary = describe_model(self.model)
        self.num_params = count_params(self.model)
        if payload is not None:
            self._restore(payload)
        else:
            self.run_dir = self._new_run_dir()
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_stale(self.ckpt_dir)
        (self.run_dir / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
        self._files = {
            "metrics": open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8"),
            "events": open(self.run_dir / "events.jsonl", "a", encoding="utf-8"),
        }
        self._prepared = True

    def run(self, stop_event: threading.Event | None = None, sink: Sink | None = None) -> dict:
        """Train to the end; return the summary. Errors end as a RunFailed event, not a raise.

        ``stop_event`` (e.g. the TUI worker's cancelled_event) interrupts the run: the current
        step finishes, a checkpoint is saved and the run ends with status ``interrupted``.
        """
        self._stop = stop_event if stop_event is not None else threading.Event()
        if sink is not None:
            self._sink = sink
        self._wall0 = time.perf_counter()
        try:
            self.prepare()
            self._emit(E.RunStarted(
                run_dir=str(self.run_dir.resolve()), preset=self.preset, device=str(self.device), task=self.task,
                epochs=self.config.train.epochs, steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps,
                train_size=self.data.train_size, val_size=self.data.val_size, test_size=self.data.test_size,
                num_params=self.num_params, model=self.model_summary, hyperparameters=self.hyperparameters(),
                live=("lr",) + C.LIVE_HYPERPARAMETERS, start_step=self.state.step, start_epoch=self.state.epoch))
            self._keep_good(force=True)
            self._set_status("running", "resumed" if self.resume_from else "started")
            try:
                self._train()
                status, reason = "completed", "all epochs done"
                if self._steps_done() and self.state.epoch < self.config.train.epochs:
                    reason = "max_steps reached"
            except _EndRun as end:
                status, reason = end.status, end.reason
            return self._finish(status, reason)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a RunFailed event
            return self._fail(exc)
        finally:
            for f in self._files.values():
                f.close()
            self._files = {}

    def hyperparameters(self) -> dict:
        """Current hyperparameters as plain values (for panels and RunStarted)."""
        cfg, st = self.config, self.state
        g = self.optimizer.param_groups[0] if hasattr(self, "optimizer") else {}
        momentum = g["momentum"] if "momentum" in g else g["betas"][0] if "betas" in g else cfg.optim.momentum
        return {
            "lr": st.base_lr, "optimizer": cfg.optim.name, "momentum": float(momentum),
            "weight_decay": float(g.get("weight_decay", cfg.optim.weight_decay)), "grad_clip": st.grad_clip,
            "patience": st.patience, "batch_size": cfg.data.batch_size, "epochs": cfg.train.epochs,
            "schedule": cfg.schedule.name, "loss": cfg.optim.loss, "early_stopping": cfg.early_stopping.enabled,
            "monitor": cfg.early_stopping.monitor,
        }

    # ------------------------------------------------------------------ the loop

    def _train(self) -> None:
        cfg, st = self.config, self.state
        while st.epoch < cfg.train.epochs and not self._steps_done():
            epoch_t0 = time.perf_counter()
            self._train_epoch()
            # the epoch's last flush may have paused (non-finite loss) or commands may wait: they
            # apply here, before validation and the end of the run, as at any step boundary
            self._step_boundary(clock=False)
            if self._steps_done() and st.batch < self.batches_per_epoch:
                return  # max_steps reached mid-epoch: _finish validates the partial epoch
            self._end_epoch(time.perf_counter() - epoch_t0)

    def _steps_done(self) -> bool:
        return bool(self.config.train.max_steps) and self.state.step >= self.config.train.max_steps

    def _train_epoch(self) -> None:
        """One epoch from the saved position; commands apply between optimizer steps."""
        cfg, st = self.config, self.state
        accum = cfg.optim.grad_accum
        self.model.train()
        self._interval = self._new_interval()
        self._epoch_acc = [0.0, 0.0, 0]  # loss sum, correct, samples: host floats, added at each flush
        if self._resumed_epoch_acc is not None:  # mid-epoch resume: the epoch's train metrics go on
            self._epoch_acc = list(self._resumed_epoch_acc)
            self._resumed_epoch_acc = None
        self._clock_start()
        micro = 0
        for x, y in self.data.train_batches(st.epoch, cfg.data.batch_size, start=st.batch):
            if micro == 0:
                self._step_boundary()
            self._train_batch(x, y, last=(micro == accum - 1))
            st.batch += 1
            micro = (micro + 1) % accum
            if micro == 0:
                self._after_step()
                if self._steps_done():
                    break
        if micro != 0:  # a partial accumulation at the epoch's end still steps
            self._optimizer_step()
            self._after_step()
        self._clock_stop()
        self._flush_interval(force=True)

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor, last: bool) -> None:
        cfg = self.config
        if cfg.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.forward(x)
            loss = self.loss_fn(out.float(), y)
        total = loss
        if cfg.optim.l1 > 0:
            total = total + cfg.optim.l1 * sum(p.abs().sum() for p in self.model.parameters())
        if cfg.optim.grad_accum > 1:
            total = total / cfg.optim.grad_accum
        total.backward()
        # Keep device tensors until the log interval: one kernel (argmax) per step, no host sync.
        acc = self._interval
        acc["losses"].append(loss.detach())
        acc["sizes"].append(y.shape[0])
        acc["n"] += y.shape[0]
        if self.task == "classification":
            acc["preds"].append(out.detach().argmax(1))
            acc["targets"].append(y)
        if last:
            self._optimizer_step()

    def _optimizer_step(self) -> None:
        st = self.state
        lr = self.current_lr(st.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        if st.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), st.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        st.step += 1
        self._last_lr = lr

    def current_lr(self, step: int) -> float:
        """The learning rate for optimizer step ``step``: base x schedule x plateau."""
        return self.state.base_lr * factor(self.config.schedule, step, self.steps_per_epoch, self.total_steps) * self.plateau.scale

    def _after_step(self) -> None:
        st, cfg = self.state, self.config
        if self._tuner is not None:
            chosen = self._tuner.after_step(self._clock_stops)
            if chosen is not None:
                rates = ", ".join(f"{n}: {r * cfg.data.batch_size:,.0f} samples/s" for n, r in self._tuner.rates.items())
                self._emit(E.RunNote(message=f"threads: using {chosen} intra-op thread(s) (measured {rates})", step=st.step))
                self._tuner = None
        if st.step % cfg.train.log_every == 0:
            self._flush_interval()
        if cfg.checkpoint.every_steps and st.step % cfg.checkpoint.every_steps == 0:
            self._checkpoint("periodic")

    def _step_boundary(self, clock: bool = True) -> None:
        """Apply queued commands; wait here while paused; honour the stop event.
        ``clock``: the training clock runs here (False at an epoch's end, where it is stopped)."""
        self._drain_commands()
        if self.status == "paused":
            if clock:
                self._clock_stop()
            while self.status == "paused" and not self._stop.is_set():
                try:
                    self._apply(self._commands.get(timeout=0.1))
                except queue.Empty:
                    pass
                # what was queued behind the command that ended the pause (e.g. Rollback, Stop)
                # applies before the next step, not after it
                self._drain_commands()
            if clock:
                self._clock_start()
        if self._stop.is_set():
            raise _EndRun("interrupted", "stop requested")
        if self.status == "stopping":
            raise _EndRun("early_stopped", self._stop_reason)

    def _drain_commands(self) -> None:
        if self._commands.empty():  # the common case, checked without raising queue.Empty
            return
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            self._apply(cmd)

    # ------------------------------------------------------------------ commands

    def _apply(self, cmd: C.Command) -> None:
        st = self.state
        try:
            if isinstance(cmd, C.Pause):
                if self.status != "running":
                    return self._reject(cmd, f"cannot pause while {self.status}")
                self._set_status("paused", "user")
                self._paused_for_nonfinite = False
                return self._applied(cmd, "paused")
            if isinstance(cmd, C.Resume):
                if self.status != "paused":
                    return self._reject(cmd, f"not paused (status {self.status})")
                self._set_status("running", "resumed")
                return self._applied(cmd, "resumed")
            if isinstance(cmd, C.Stop):
                self._stop_reason = f"early stop ({cmd.reason})"
                self._set_status("stopping", self._stop_reason)
                return self._applied(cmd, "early stop requested: finishing the step, evaluating, saving")
            if isinstance(cmd, (C.SetLearningRate, C.ScaleLearningRate)):
                new = cmd.lr if isinstance(cmd, C.SetLearningRate) else st.base_lr * cmd.factor
                value = cmd.lr if isinstance(cmd, C.SetLearningRate) else cmd.factor
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                    return self._reject(cmd, f"learning rate must be a finite number > 0, got {value!r}")
                if not (0 < new <= 10):
                    return self._reject(cmd, f"learning rate {new:g} out of range (allowed: > 0 and <= 10)")
                old, st.base_lr = st.base_lr, float(new)
                return self._applied(cmd, f"lr {old:.6g} -> {new:.6g}", key="lr", old=old, new=float(new))
            if isinstance(cmd, C.SetHyperparameter):
                return self._set_hyperparameter(cmd)
            if isinstance(cmd, C.Rollback):
                f = cmd.lr_factor
                if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f <= 0:
                    return self._reject(cmd, f"lr_factor must be a finite number > 0, got {f!r}")
                if self._good is None:
                    return self._reject(cmd, "no good state to roll back to yet")
                good_step = self._restore_good()
                old, st.base_lr = st.base_lr, st.base_lr * f
                self._applied(cmd, f"rolled back to the weights of step {good_step}; lr {old:.6g} -> {st.base_lr:.6g}",
                              key="lr", old=old, new=st.base_lr)
                if self.status == "paused" and self._paused_for_nonfinite:
                    self._set_status("running", "rolled back")  # the answer to the non-finite pause
                # a pause the user asked for stays: they resume when they choose
                return None
            if isinstance(cmd, C.SaveCheckpoint):
                path = self._checkpoint(cmd.reason or "manual")
                if path is not None:
                    self._applied(cmd, f"saved {path}")
                return None
            if isinstance(cmd, C.Validate):
                self._clock_stop_if_running()  # a pause keeps its clock stopped
                metrics = self._evaluate("val")
                self._clock_start_if_was_running()
                self._emit(E.ValidationMetrics(step=st.step, epoch=st.epoch, metrics=metrics))
                return self._applied(cmd, "validated")
            return self._reject(cmd, f"unknown command {type(cmd).__name__}")
        except _EndRun:
            raise
        except Exception as e:  # noqa: BLE001 - a failing command is reported, never silently dropped
            self._emit(E.RunError(message=f"{cmd.name} failed: {type(e).__name__}: {e}", step=st.step))

    def _set_hyperparameter(self, cmd: C.SetHyperparameter) -> None:
        key, v, st = cmd.key, cmd.value, self.state
        if key not in C.LIVE_HYPERPARAMETERS:
            return self._reject(cmd, f"unknown hyperparameter {key!r} (allowed: {', '.join(C.LIVE_HYPERPARAMETERS)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return self._reject(cmd, f"{key} must be a finite number, got {v!r}")
        groups = self.optimizer.param_groups
        if key == "momentum":
            if not 0 <= v < 1:
                return self._reject(cmd, f"momentum {v:g} out of range (allowed: >= 0 and < 1)")
            if "momentum" in groups[0]:
                old = groups[0]["momentum"]
                if groups[0].get("nesterov") and v == 0:
                    return self._reject(cmd, "momentum 0 is not allowed with nesterov")
                for g in groups:
                    g["momentum"] = float(v)
            else:  # Adam / AdamW: momentum is beta1
                old = groups[0]["betas"][0]
                for g in groups:
                    g["betas"] = (float(v), g["betas"][1])
        elif key == "weight_decay":
            if not 0 <= v <= 1:
                return self._reject(cmd, f"weight_decay {v:g} out of range (allowed: >= 0 and <= 1)")
            old = groups[0]["weight_decay"]
            for g in groups:
                g["weight_decay"] = float(v)
        elif key == "grad_clip":
            if v < 0:
                return self._reject(cmd, f"grad_clip {v:g} out of range (allowed: >= 0, 0 = off)")
            old, st.grad_clip = st.grad_clip, float(v)
        else:  # patience
            if v < 0 or v != int(v):
                return self._reject(cmd, f"patience must be a whole number >= 0, got {v:g}")
            old, st.patience = st.patience, int(v)
        self._applied(cmd, f"{key} {old:g} -> {v:g}", key=key, old=float(old), new=float(v))

    def _applied(self, cmd: C.Command, detail: str, key: str = "", old: float | None = None, new: float | None = None) -> None:
        st = self.state
        st.history.append({"step": st.step, "epoch": st.epoch, "command": cmd.name, "detail": detail})
        self._emit(E.CommandApplied(command=cmd.name, detail=detail, step=st.step, key=key, old=old, new=new))

    def _reject(self, cmd: C.Command, reason: str) -> None:
        self._emit(E.CommandRejected(command=cmd.name, reason=reason, step=self.state.step))

    def _set_status(self, status: str, reason: str = "") -> None:
        self.status = status
        self._emit(E.StatusChanged(status=status, reason=reason, step=self.state.step))

    # ------------------------------------------------------------------ metrics

    def _new_interval(self) -> dict:
        """Per-step device tensors of the current log interval, reduced at the flush."""
        return {"losses": [], "sizes": [], "preds": [], "targets": [], "n": 0, "t": 0.0}

    def _interval_sums(self, acc: dict) -> tuple[float, float]:
        """(sum of per-sample losses, correct predictions) of an interval: one host transfer."""
        if not acc["losses"]:
            return 0.0, 0.0
        sizes = torch.tensor(acc["sizes"], dtype=torch.float32).to(self.device, non_blocking=True)
        parts = [(torch.stack(acc["losses"]).float() * sizes).sum()]
        if acc["preds"]:
            parts.append((torch.cat(acc["preds"]) == torch.cat(acc["targets"])).sum().float())
        else:
            parts.append(torch.zeros((), device=self.device))
        loss_sum, correct = torch.stack(parts).tolist()
        return loss_sum, correct

    def _clock_start(self) -> None:
        self._t0 = time.perf_counter()

    def _clock_stop(self, interruption: bool = True) -> None:
        """Account training time up to now; syncs the device so the figure is honest.
        ``interruption``: evaluation, a save or a pause follows (the thread tuner restarts its window)."""
        if self._t0 is None:
            return
        if interruption:
            self._clock_stops += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - self._t0
        self.state.train_seconds += dt
        self._interval["t"] += dt
        self._t0 = None

    _t0: float | None = None

    def _flush_interval(self, force: bool = False, react: bool = True) -> None:
        """Emit StepMetrics for the interval: the one host sync per log interval."""
        acc = self._interval
        if acc["n"] == 0:
            return
        running = self._t0 is not None
        if running:
            self._clock_stop(interruption=False)
        loss_sum, correct = self._interval_sums(acc)  # the host sync
        st, n = self.state, acc["n"]
        st.train_samples += n
        self._epoch_acc[0] += loss_sum
        self._epoch_acc[1] += correct
        self._epoch_acc[2] += n
        loss = loss_sum / n
        ev = E.StepMetrics(
            step=st.step, epoch=st.epoch, epoch_progress=min(1.0, st.batch / max(1, self.batches_per_epoch)),
            loss=loss, lr=getattr(self, "_last_lr", self.current_lr(max(0, st.step - 1))),
            samples_per_second=n / acc["t"] if acc["t"] > 0 else 0.0,
            accuracy=correct / n if self.task == "classification" else None, elapsed=st.train_seconds)
        self._emit(ev)
        self._interval = self._new_interval()
        if not react:  # the run is ending: log the interval, decide nothing more
            pass
        elif not math.isfinite(loss):
            self._nonfinite(loss)
        else:
            self._keep_good()
        if running:
            self._clock_start()

    def _keep_good(self, force: bool = False) -> None:
        """Remember the weights and optimizer state at a log interval with a finite loss: at most
        once per GOOD_EVERY_S seconds (a copy of model and optimizer state is not free), and only
        when the weights themselves are finite (the last step may have broken them)."""
        now = time.monotonic()
        if not force and self._good is not None and now - self._good_time < GOOD_EVERY_S:
            return
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            return
        opt_tensors = [v for st in self.optimizer.state.values() for v in st.values()
                       if torch.is_tensor(v) and v.is_floating_point()]
        if not all(bool(torch.isfinite(v).all()) for v in opt_tensors):
            return
        self._good_time = now
        self._good = {
            "step": self.state.step,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _restore_good(self) -> int:
        """Load the last good weights back; returns the step they were taken at."""
        good = self._good
        self.model.load_state_dict(good["model"])
        self.optimizer.load_state_dict(copy.deepcopy(good["optimizer"]))
        self.optimizer.zero_grad(set_to_none=True)
        return good["step"]

    def _nonfinite(self, loss: float) -> None:
        """A non-finite loss: pause for the user (TUI) or save the last good state and fail."""
        st = self.state
        msg = f"non-finite loss ({loss}) at step {st.step}"
        self._emit(E.RunWarning(message=msg, step=st.step))
        if self.config.train.on_nonfinite == "pause":
            self._set_status("paused", f"{msg}: resume, roll back (lr halved) or stop")
            self._paused_for_nonfinite = True
            return
        if self._good is not None:
            good_step = self._restore_good()
            if self._checkpoint("nonfinite") is not None:
                msg += f"; the last good weights (step {good_step}) were saved"
        raise _EndRun("failed", msg)

    def _evaluate(self, split: str, interruptible: bool = True) -> dict:
        """Loss and metrics on 'val' or 'test'. Validation checks the stop event between batches
        and, when it is set, ends the run as interrupted: metrics of a cut-short pass must never
        feed best checkpoints, early stopping or the plateau schedule (the resumed run redoes it)."""
        size = self.data.val_size if split == "val" else self.data.test_size
        if size == 0:
            return {}
        was_training = self.model.training
        self.model.eval()
        acc = (ClassificationAccumulator(self.data.num_classes, self.device) if self.task == "classification"
               else RegressionAccumulator(self.device))
        with torch.inference_mode():
            for x, y in self.data.eval_batches(split, self.config.data.eval_batch_size):
                if interruptible and self._stop.is_set() and split != "test":
                    self.model.train(was_training)
                    raise _EndRun("interrupted", "stop requested during validation")
                if self.config.train.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self._autocast():
                    out = self.forward(x)
                out = out.float()
                acc.update(out, y, self.loss_fn(out, y, "sum"))
        metrics, confusion = acc.compute()
        self._last_confusion = confusion
        if was_training:
            self.model.train()
        return metrics

    def _end_epoch(self, seconds: float) -> None:
        cfg, st = self.config, self.state
        loss_sum, correct, n = self._epoch_acc
        train = {"loss": loss_sum / max(1, n)}
        if self.task == "classification":
            train["accuracy"] = correct / max(1, n)
        val: dict = {}
        validated = (st.epoch + 1) % cfg.train.val_every == 0 or st.epoch + 1 == cfg.train.epochs
        if validated and self.data.val_size:
            t = time.perf_counter()
            val = self._evaluate("val")
            seconds += time.perf_counter() - t
            st.last_val = val
        epoch = st.epoch
        st.epoch += 1
        st.batch = 0
        is_best, patience_left = False, None
        value = self._monitored(val)
        if value is not None:
            is_best = self._update_best(value, epoch)
            if cfg.schedule.name == "plateau" and self.plateau.update(value):
                self._emit(E.RunWarning(message=f"plateau: lr scale reduced to {self.plateau.scale:g}", step=st.step))
            if cfg.early_stopping.enabled:
                patience_left = max(0, max(1, st.patience) - st.bad_epochs)
        record = {"epoch": epoch, "step": st.step, "train": train, "val": val, "lr": getattr(self, "_last_lr", st.base_lr),
                  "seconds": seconds, "is_best": is_best}
        st.epochs.append(record)
        self._emit(E.EpochMetrics(epoch=epoch, step=st.step, train=train, val=val, lr=record["lr"], seconds=seconds,
                                  is_best=is_best, patience_left=patience_left))
        if is_best and cfg.checkpoint.save_best:
            self._checkpoint("best")
        if cfg.checkpoint.every_epochs and st.epoch % cfg.checkpoint.every_epochs == 0:
            self._checkpoint("periodic")
        # patience = validated epochs without improvement after which training stops (as Keras
        # and Lightning count it: patience 0 stops at the first epoch that does not improve)
        if cfg.early_stopping.enabled and value is not None and st.bad_epochs >= max(1, st.patience):
            raise _EndRun("early_stopped", f"{cfg.early_stopping.monitor} did not improve for {st.bad_epochs} epochs")

    def _monitored(self, val: dict) -> float | None:
        key = self.config.early_stopping.monitor.removeprefix("val_")
        v = val.get(key)
        return v if v is not None and math.isfinite(v) else None

    def _update_best(self, value: float, epoch: int) -> bool:
        st, es = self.state, self.config.early_stopping
        mode = self.config.monitor_mode
        better = st.best_value is None or (
            value < st.best_value - es.min_delta if mode == "min" else value > st.best_value + es.min_delta)
        if better:
            st.best_value, st.best_epoch, st.bad_epochs = value, epoch, 0
        else:
            st.bad_epochs += 1
        return better

    # ------------------------------------------------------------------ checkpoints

    def _payload(self, reason: str) -> dict:
        st = self.state
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format_version": ckpt.FORMAT_VERSION, "kind": "tui-train-checkpoint", "reason": reason,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "config": to_dict(self.config), "preset": self.preset, "task": self.task,
            "input_shape": list(self.data.input_shape), "num_classes": self.data.num_classes,
            "data_mean": list(self.data.mean), "data_std": list(self.data.std),
            "epoch": st.epoch, "batch": st.batch, "step": st.step, "base_lr": st.base_lr,
            "grad_clip": st.grad_clip, "patience": st.patience, "best_value": st.best_value,
            "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs, "plateau": self.plateau.state_dict(),
            "history": list(st.history), "epochs": list(st.epochs), "train_seconds": st.train_seconds,
            "train_samples": st.train_samples + (self._interval["n"] if hasattr(self, "_interval") else 0),
            "last_val": dict(st.last_val),
            "epoch_acc": self._epoch_acc_plain(),
            "rng": _rng_to_plain(rng), "versions": ckpt.versions(), "saved_at": time.time(),
        }

    def _epoch_acc_plain(self) -> list:
        """The epoch's train sums so far (flushed intervals plus the pending one)."""
        if st_batch_zero(self.state):
            return [0.0, 0.0, 0]
        if not hasattr(self, "_epoch_acc"):  # resumed, and nothing trained since
            return list(self._resumed_epoch_acc or [0.0, 0.0, 0])
        acc = self._interval
        loss, correct = self._interval_sums(acc)
        e = self._epoch_acc
        return [e[0] + loss, e[1] + correct, e[2] + acc["n"]]

    def _checkpoint(self, reason: str) -> Path | None:
        """Save atomically; a failure is reported as RunError and training goes on."""
        st = self.state
        self._clock_stop_if_running()
        try:
            if not all(torch.isfinite(p).all() for p in self.model.parameters()):
                self._emit(E.RunError(message=f"checkpoint ({reason}) not saved: the weights hold non-finite values", step=st.step))
                return None
            path = ckpt.save_atomic(self._payload(reason), self.ckpt_dir / ckpt.checkpoint_name(st.step, reason))
        except Exception as e:  # noqa: BLE001 - disk full is RuntimeError, permissions OSError
            self._emit(E.RunError(message=f"checkpoint ({reason}) not saved: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", step=st.step))
            return None
        finally:
            self._clock_start_if_was_running()
        self._prune()
        self._emit(E.CheckpointSaved(path=str(path.resolve()), step=st.step, epoch=st.epoch, reason=reason))
        return path

    def _clock_stop_if_running(self) -> None:
        self._was_running = self._t0 is not None
        if self._was_running:
            self._clock_stop()

    def _clock_start_if_was_running(self) -> None:
        if getattr(self, "_was_running", False):
            self._clock_start()

    def _prune(self) -> None:
        """Keep the newest ``keep_last`` periodic checkpoints; best, last, manual, interrupt,
        early-stop, error and non-finite ones are never pruned."""
        others = sorted(self.ckpt_dir.glob("step-*-periodic.pt"), key=lambda p: p.stat().st_mtime_ns)
        for p in others[: max(0, len(others) - self.config.checkpoint.keep_last)]:
            try:
                p.unlink()
            except OSError:
                pass

    def _load_resume_payload(self) -> dict:
        src = ckpt.resolve(self.resume_from)
        payload = ckpt.load(src)
        self.resume_file = src
        raw = payload["config"]
        if self.resume_overrides:
            raw = apply_overrides(raw, self.resume_overrides)
        self.config = from_dict(raw, f"{src} (saved config)")
        self.preset = payload.get("preset", self.preset)
        return payload

    def _restore(self, p: dict) -> None:
        from core.checkpoint import load_model_state
        load_model_state(self.model, p["model"], self.resume_file)
        try:
            self.optimizer.load_state_dict(p["optimizer"])
        except (ValueError, KeyError) as e:
            raise ckpt.CheckpointError(f"{self.resume_file}: optimizer state does not fit ({e})") from None
        st = self.state
        st.epoch, st.batch, st.step, st.base_lr = int(p["epoch"]), int(p["batch"]), int(p["step"]), float(p["base_lr"])
        st.grad_clip, st.patience = float(p["grad_clip"]), int(p["patience"])
        st.best_value, st.best_epoch, st.bad_epochs = p["best_value"], p["best_epoch"], int(p["bad_epochs"])
        st.history, st.epochs = list(p["history"]), list(p["epochs"])
        st.train_seconds, st.train_samples, st.last_val = float(p["train_seconds"]), int(p["train_samples"]), dict(p["last_val"])
        self.plateau.load_state_dict(p["plateau"])
        if st.batch:
            loss, correct, n = p.get("epoch_acc", [0.0, 0.0, 0])
            self._resumed_epoch_acc = (float(loss), float(correct), int(n))
        _rng_restore(p["rng"], self.device)
        ckfile = self.resume_file.resolve()
        self.run_dir = ckfile.parent.parent if ckfile.parent.name == "checkpoints" else ckfile.parent

    # ------------------------------------------------------------------ run directory and ending

    def _new_run_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.preset)
        base = self.runs_dir / f"{stamp}-{safe}"
        path, i = base, 1
        while True:
            try:
                path.mkdir(parents=True, exist_ok=False)
                return path
            except FileExistsError:
                i += 1
                path = Path(f"{base}-{i}")

    def _emit(self, event: E.Event) -> None:
        """Log to the run directory, then hand to the sink (never blocks: a queue put)."""
        f = self._files.get("metrics" if isinstance(event, (E.StepMetrics, E.EpochMetrics, E.ValidationMetrics, E.TestMetrics)) else "events")
        if f is not None:
            rec = E.to_json(event)
            rec["time"] = round(time.time(), 3)
            f.write(json.dumps(rec, default=_json_default, allow_nan=True) + "\n")
            f.flush()
        self._sink(event)

    def _finish(self, status: str, reason: str) -> dict:
        cfg, st = self.config, self.state
        if hasattr(self, "_interval"):
            self._flush_interval(force=True, react=False)  # the steps since the last log line
        self._clock_stop_if_running()
        if status in ("completed", "early_stopped") and 0 < st.batch and self.data.val_size:
            st.last_val = self._evaluate("val", interruptible=False)
            self._emit(E.ValidationMetrics(step=st.step, epoch=st.epoch, metrics=st.last_val))
        saved = None
        if status in ("early_stopped", "interrupted"):
            saved = self._checkpoint("early_stop" if status == "early_stopped" else "interrupt")
        if cfg.checkpoint.save_last and status != "failed":
            saved = self._checkpoint("last") or saved
        test: dict = {}
        if status in ("completed", "early_stopped") and self.data.test_size:
            test = self._evaluate("test")
            self._emit(E.TestMetrics(metrics=test, confusion=tuple(tuple(r) for r in getattr(self, "_last_confusion", []))))
        while not self._commands.empty():  # every command is acknowledged, also after the last step
            try:
                self._reject(self._commands.get_nowait(), "the run has ended")
            except queue.Empty:
                break
        summary = self._summary(status, reason, test)
        self._write_summary(summary)
        self._set_status(status, reason)
        if status == "failed":
            self._emit(E.RunFailed(message=reason, traceback="", traceback_path="", summary=summary))
        else:
            self._emit(E.RunFinished(status=status, summary=summary, run_dir=str(self.run_dir.resolve())))
        return summary

    def _summary(self, status: str, reason: str, test: dict) -> dict:
        st, cfg = self.state, self.config
        keep = ("loss", "accuracy", "precision", "recall", "f1") if getattr(self, "task", "") == "classification" else ("loss", "mse", "mae", "r2")
        return {
            "status": status, "reason": reason, "preset": self.preset,
            "run_dir": str(self.run_dir.resolve()) if self.run_dir else None,
            "device": str(getattr(self, "device", "")), "task": getattr(self, "task", None),
            "epochs_completed": st.epoch, "epochs_planned": cfg.train.epochs, "steps": st.step,
            "best": {"metric": cfg.early_stopping.monitor, "value": st.best_value, "epoch": st.best_epoch},
            "val": st.last_val, "test": {k: v for k, v in test.items() if k in keep} or None,
            "wall_seconds": time.perf_counter() - self._wall0,
            "train_seconds": st.train_seconds,
            "samples_per_second": st.train_samples / st.train_seconds if st.train_seconds > 0 else 0.0,
            "final_lr": st.base_lr, "interventions": len(st.history), "threads": torch.get_num_threads(),
        }

    def emergency_summary(self, status: str, reason: str) -> None:
        """Write summary.json from another thread when the trainer cannot finish in time (the
        headless watchdog after SIGTERM/SIGHUP). Touches no model state."""
        if self.run_dir is None or self._summary_written:
            return
        try:
            self._write_summary(self._summary(status, reason + " (watchdog: the trainer did not stop in time)", {}))
        except OSError:
            pass

    def _write_summary(self, summary: dict) -> None:
        if self.run_dir is None:
            return
        tmp = self.run_dir / f".summary.json.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n", encoding="utf-8")
        os.replace(tmp, self.run_dir / "summary.json")
        self._summary_written = True

    def _fail(self, exc: BaseException) -> dict:
        """The training thread raised: save the traceback, try a last checkpoint, report."""
        tb = "".join(traceback.format_exception(exc))
        if isinstance(exc, (ConfigError,)) or type(exc).__name__ in ("DataError", "CheckpointError"):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        tb_path = ""
        summary: dict = {}
        if self.run_dir is not None:
            tb_file = self.run_dir / "traceback.txt"
            try:
                tb_file.write_text(tb, encoding="utf-8")
                tb_path = str(tb_file.resolve())
            except OSError:
                pass
            if self._prepared and not isinstance(exc, KeyboardInterrupt):
                try:
                    self._checkpoint("error")
                except Exception:  # noqa: BLE001 - best effort; the failure itself is reported below
                    pass
            summary = self._summary("failed", message, {})
            try:
                self._write_summary(summary)
            except OSError:
                pass
        self.status = "failed"
        self._emit(E.StatusChanged(status="failed", reason=message, step=self.state.step))
        self._emit(E.RunFailed(message=message, traceback=tb, traceback_path=tb_path, summary=summary))
        self.error = exc
        return summary


def st_batch_zero(st: _State) -> bool:
    """True at an epoch boundary (no partial-epoch metrics to carry)."""
    return st.batch == 0


def _rng_to_plain(rng: dict) -> dict:
    """RNG states as tensors and plain values, so weights_only loading accepts them."""
    py = rng["python"]
    out = {"python": [py[0], list(py[1]), py[2]], "torch": rng["torch"]}
    np_state = rng["numpy"]
    out["numpy"] = [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])]
    if "cuda" in rng:
        out["cuda"] = list(rng["cuda"])
    return out


def _rng_restore(rng: dict, device: torch.device) -> None:
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = rng["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state_all(rng["cuda"])


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def evaluate_checkpoint(path: str | Path, data_dir: str | None = None, device: str = "auto") -> dict:
    """Evaluate a checkpoint (file, or run directory meaning its newest) on the test split.

    Returns {checkpoint, preset, step, epoch, test_size, metrics}. Raises CheckpointError,
    ConfigError or DataError with one-line messages.
    """
    from core.data import load_data
    from core.models import build_model

    path = ckpt.resolve(Path(path))
    payload = ckpt.load(path)
    cfg = from_dict(payload["config"], f"{path} (saved config)")
    changes = {"train.device": device}
    if data_dir:
        changes["data.data_dir"] = data_dir
    cfg = replace(cfg, **changes)
    dev = pick_device(cfg.train.device)
    data = load_data(cfg.data, dev, cfg.train.seed)
    n_out = data.num_classes if data.task == "classification" else int(getattr(data, "output_dim", 1))
    model = build_model(cfg.model, tuple(data.input_shape), n_out).to(dev)
    ckpt.load_model_state(model, payload["model"], path)
    model.eval()
    loss_fn = make_loss(cfg)
    acc = ClassificationAccumulator(data.num_classes, dev) if data.task == "classification" else RegressionAccumulator(dev)
    with torch.inference_mode():
        for x, y in data.eval_batches("test", cfg.data.eval_batch_size):
            out = model(x).float()
            acc.update(out, y, loss_fn(out, y, "sum"))
    metrics, confusion = acc.compute()
    return {"checkpoint": str(path.resolve()), "preset": payload.get("preset"), "step": payload.get("step"),
            "epoch": payload.get("epoch"), "test_size": data.test_size, "metrics": metrics, "confusion": confusion}
