"""The Trainer: the supervised training loop, driven by commands, reporting through events.

One thread owns the model: :meth:`Trainer.run` builds the run and trains. Front ends talk to it
only through :meth:`Trainer.submit` (commands, applied at step boundaries) and the ``sink``
callback (frozen events of plain values). This module is the loop itself, read top to bottom:
prepare, epochs, steps, step boundaries, finish. Each concern it uses is its own object:

- building the run (device, seed, data, model, optimizer, loss): :mod:`core.train.runtime`
- what a command does: :func:`core.run.control.decide`, carried out by :class:`core.train.effects.Effects`
- the last good weights and non-finite checks: :mod:`core.train.guard`
- the checkpoint payload and RNG states: :mod:`core.train.checkpoint`; how each rank writes it:
  :mod:`core.train.snapshot`; a resume or a fork from it: :class:`core.train.resume.Resume`
- the run as a place (record, status, inbox and step boundary, acknowledgements, checkpoints on
  request, the sampler, the summary): :class:`core.run.place.RunPlace`, whose client this loop is
- evaluation: :class:`core.train.evaluation.RunEvaluation`; early stopping: :mod:`core.early_stopping`;
  train.target: :class:`core.train.target_watch.TargetWatch`
- the clocks and interval metrics: :mod:`core.train.meters`; the thread count: :mod:`core.train.threads`
- the LR range test of a paused run: :mod:`core.train.lr_sweep` (its rules: :mod:`core.lr_find`);
  system load samples: :mod:`core.run.system`
  (a daemon thread: events are written under one lock, so the run log's order and seqs hold)
- several processes (torchrun): the sync strategy (core.run.sync.Local, core.train.distributed.Ranks)
  chosen once; the loop never asks whether it is distributed: it meets the other ranks at step
  boundaries and in the sums of metrics through the strategy, and only rank 0 writes

The loop syncs the device only at log intervals (STYLE.md habit 6).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import ConfigError, RunConfig, to_dict, to_toml
from tui_train.core.contract import Sink
from tui_train.core.early_stopping import EarlyStopping
from tui_train.core.errors import first_line
from tui_train.core.run import control, system
from tui_train.core.run.breakpoint_watch import BreakpointWatch
from tui_train.core.run.place import END_CHECKPOINTS, EndRun, NoLog, RunPlace
from tui_train.core.run.runlog import RunLog, summary
from tui_train.core.schedule import Plateau, factor_at
from tui_train.core.state import TrainingState
from tui_train.core.status import with_losses
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train import snapshot
from tui_train.core.train.distributed import World, strategy
from tui_train.core.train.dryrun import dry_run
from tui_train.core.train.effects import Effects
from tui_train.core.train.evaluation import RunEvaluation, evaluate
from tui_train.core.train.guard import LastGood, nonfinite_message
from tui_train.core.train.meters import EpochTotals, Interval, Stopwatch, WallClock
from tui_train.core.train.models import model_output
from tui_train.core.train.resume import Resume
from tui_train.core.train.runtime import Runtime, build, settle_threads
from tui_train.core.train.target_watch import TargetWatch


def failure_message(exc: BaseException) -> str:
    """The one line a failed run reports: bad input as its own message, else type and message."""
    if isinstance(exc, ConfigError) or type(exc).__name__ in ("DataError", "CheckpointError"):
        return str(exc)
    return first_line(exc, typed=True)


@dataclass
class _Prepared:
    """What :meth:`Trainer.prepare` makes: one typed place, so nothing is ever half-built."""

    rt: Runtime
    """Device, data, model, optimizer, loss."""
    plateau: Plateau
    """The reduce-on-plateau multiplier."""
    early: EarlyStopping
    """The best epoch and early stopping."""
    clock: Stopwatch
    """Training time (evaluation, checkpoints and pauses excluded)."""
    good: LastGood
    """The last good weights (Rollback, the non-finite stop)."""
    totals: EpochTotals
    """The epoch's train sums so far."""
    interval: Interval
    """The current log interval's device tensors."""
    log: RunLog | NoLog
    """The run directory's files (rank 0's; nothing on the other ranks)."""
    ckpt_dir: Path
    """<run_dir>/checkpoints."""
    last_lr: float
    """The learning rate of the last optimizer step."""
    watch: TargetWatch
    """train.target and when the run reached it."""
    evaluation: RunEvaluation
    """The loop's evaluations of the run (validation and test)."""
    effects: Effects
    """What a command does in this loop (applied at step boundaries and between validation batches)."""
    breaks: BreakpointWatch
    """The run's breakpoints, checked after each step and at each epoch's end."""


class Trainer:
    """Trains one run. Thread-safe entry points: :meth:`submit`; everything else is the owner's."""

    detachable = False
    """A viewer cannot leave an in-thread run going: the run ends with its process (core.live.remote can)."""
    detached = False
    """Never: see :attr:`detachable` (core.contract.TrainerLike)."""
    viewers = 1
    """The one dashboard in this process (core.contract.TrainerLike)."""

    def __init__(self, config: RunConfig, *, runs_dir: str | Path = "runs", preset: str | None = None,
                 resume: str | Path | None = None, resume_overrides: list[str] | tuple = (), world: World | None = None,
                 run_dir: str | Path | None = None, fork: bool = False, fork_config: bool = False):
        self.config = config
        """The resolved config (replaced by the checkpoint's on resume)."""
        self.preset = preset or config.name
        """Preset name, used in the run directory name."""
        self.runs_dir = Path(runs_dir)
        """Where a new run directory is created."""
        self.resume_from = Path(resume) if resume else None
        """Checkpoint file or run directory to continue from."""
        self.resume_overrides = list(resume_overrides)
        """``--set`` style overrides applied to the checkpoint's config on resume (e.g. data.data_dir)."""
        self.run_dir: Path | None = Path(run_dir) if run_dir else None
        """Set by :meth:`prepare` (given: a new run uses this directory, e.g. one torchrun restarts into)."""
        self.world = world or World()
        """This process's rank in the run (``World()``: a single process)."""
        self.place = RunPlace(strategy(self.world))
        """The run layer: record, status, inbox, checkpoints on request (core.run.place); this loop is its client."""
        self.place.summarize = self._summary
        self.error: BaseException | None = None
        """What the training thread raised, when the run failed."""
        self.fork = fork
        """``resume`` starts a new run (a fork) in a new run directory from that checkpoint's
        weights, optimizer and position, with the config's changes applied."""
        self.fork_config = fork_config
        """A fork trains with ``config`` (a preset given with --from) rather than the checkpoint's."""
        self._p: _Prepared | None = None
        self._resume: Resume | None = None  # the checkpoint a resume or a fork continues from, once loaded
        self._wall = WallClock()  # the run's wall seconds (summary.json, checkpoints, time to target)
        self.system_interval = system.INTERVAL
        """Seconds between two SystemSample events of rank 0 (0: no sampler; bench section (s) compares)."""
        self.dry_run = True
        """:meth:`prepare` puts a batch of each split through the model first (core.train.dryrun); tests
        turn it off to show that it changes nothing."""
        self.dry_run_seconds = 0.0
        """What the dry run took."""

    # ------------------------------------------------------------------ public API

    def submit(self, command: C.Command, origin: str = "") -> None:
        """Queue a command; it applies at the next step boundary. Never blocks. ``origin`` (who
        sent it, e.g. a viewer of the control endpoint) is recorded in its acknowledgement."""
        self.place.submit(command, origin)

    status = property(lambda self: self.place.status, doc="The run's status, as last announced (see core.events.STATUSES).")
    state = property(lambda self: self.place.state, doc="Position and live values (replaced by :meth:`prepare`).")

    @property
    def prepared(self) -> bool:
        """:meth:`prepare` has completed."""
        return self._p is not None

    @property
    def p(self) -> _Prepared:
        """What :meth:`prepare` built (RuntimeError before that)."""
        if self._p is None:
            raise RuntimeError("the trainer is not prepared yet: call prepare() or run() first")
        return self._p

    model = property(lambda self: self.p.rt.model, doc="The model being trained.")
    optimizer = property(lambda self: self.p.rt.optimizer, doc="The optimizer.")
    data = property(lambda self: self.p.rt.data, doc="The loaded data (core.train.data.Data).")
    device = property(lambda self: self.p.rt.device, doc="The training device.")
    steps_per_epoch = property(lambda self: self.p.rt.steps_per_epoch, doc="Optimizer steps per epoch.")
    total_steps = property(lambda self: self.p.rt.total_steps, doc="Optimizer steps planned (max_steps applied).")
    ckpt_dir = property(lambda self: self.p.ckpt_dir, doc="<run_dir>/checkpoints.")
    run_log = property(lambda self: self.place.log, doc="The run directory's files (listeners see every record).")
    resume_file = property(lambda self: self._resume.file if self._resume else None,
                           doc="The checkpoint file a resumed run continues (``resume_from`` resolved; None before prepare).")
    parent = property(lambda self: self._resume.parent if self._resume else None,
                      doc="A fork's parent: {run_dir, step} (also on resuming a fork; None for a run of its own).")

    def prepare(self) -> None:
        """Load data, build model and optimizer, put a batch of each split through the model
        (core.train.dryrun, unless ``dry_run`` is off), create (or reopen) the run directory.

        Raises ConfigError / DataError / CheckpointError for bad input (one-line messages); the
        headless CLI calls this first so that bad input exits 2 before training starts.
        """
        if self._p is not None:
            return
        self._wall.restart()  # the run's wall clock (wall_seconds) counts loading the data and building too
        if self.resume_from is not None:  # the checkpoint decides what is built (core.train.resume)
            self._resume = Resume.load(self.resume_from, self.resume_overrides, config=self.config, preset=self.preset,
                                       fork=self.fork, fork_config=self.fork_config)
            self.config, self.preset = self._resume.config, self._resume.preset
        resume, cfg, es, world = self._resume, self.config, self.config.early_stopping, self.world
        rt = build(cfg, world)
        if self.dry_run:  # bad model or data: one line now, before a run directory exists
            self.dry_run_seconds = dry_run(cfg, rt)
        settle_threads(cfg, rt, saved=resume.threads if resume is not None else 0)
        self.place.state = TrainingState(base_lr=cfg.optim.lr, grad_clip=cfg.optim.grad_clip, patience=es.patience)
        plateau = Plateau(cfg.schedule.plateau_factor, cfg.schedule.plateau_patience, cfg.monitor_mode)
        early = EarlyStopping(es.monitor, cfg.monitor_mode, es.min_delta, es.enabled)
        clock, totals = Stopwatch(rt.device), EpochTotals()
        if resume is not None:
            totals = resume.restore(rt, self.state, world, early=early, plateau=plateau, clock=clock)
            self._wall.before = resume.wall_seconds
        place, created = self.place, False  # created: this prepare made the run directory (removed when it cannot finish)
        if resume is None or resume.fork:  # a new run directory
            created = place.make_dir(self.runs_dir, self.preset, self.run_dir)
        else:  # a resume: every rank knows it from the checkpoint
            place.run_dir = resume.run_dir
        self.run_dir = place.run_dir
        place.open((resume.header if resume is not None else "") + to_toml(cfg), created=created)
        good = LastGood()
        self._p = _Prepared(rt=rt, plateau=plateau, early=early, clock=clock, good=good, totals=totals,
                            interval=Interval(rt.task == "classification"), log=place.log, ckpt_dir=place.ckpt_dir, last_lr=0.0,
                            watch=TargetWatch(rt.target, place.sync, clock, self._wall.seconds,
                                              saved=resume.payload if resume is not None and not resume.fork else None),
                            evaluation=RunEvaluation(place, rt, cfg, world, run=evaluate),  # this module's: test_options_effect scripts it
                            effects=Effects(place, rt, cfg, good, clock, checkpoint=self._checkpoint, evaluate=self._evaluate,
                                            set_config=lambda c: setattr(self, "config", c)),  # a new length (SetRunLength)
                            breaks=BreakpointWatch(place, es.monitor, self._step_boundary))
        self._p.last_lr = self.current_lr(max(0, self.state.step - 1))

    def run(self, stop_event: threading.Event | None = None, sink: Sink | None = None) -> dict:
        """Train to the end; return the summary. Errors end as a RunFailed event, not a raise.

        ``stop_event`` (e.g. the TUI worker's cancelled_event) interrupts the run: the current
        step finishes, a checkpoint is saved and the run ends with status ``interrupted``.
        """
        if stop_event is not None:
            self.place.stop = stop_event
        if sink is not None:
            self.place.sink = sink
        try:
            self.prepare()
            self._emit(self.p.rt.run_started(self.config, self.state, preset=self.preset, run_dir=self.run_dir,
                                             hyperparameters=self.hyperparameters(), world_size=self.world.world_size))
            self.p.good.keep(self.model, self.optimizer, self.state.step, force=True)
            resume = self._resume
            self._set_status("running", resume.reason if resume is not None else "started", "start")
            if resume is not None and resume.note:  # another world size than the checkpoint's
                self._emit(E.RunWarning(message=resume.note, step=self.state.step))
            for note in self.p.rt.notes:  # what the build decided (bf16 'auto')
                self._emit(E.RunNote(message=note, step=self.state.step))
            try:
                with self.place.sampling(self.p.rt.device, self.system_interval):
                    self._train()
                status, reason = "completed", "all epochs done"
                if self._ended() and self.state.epoch < self.config.train.epochs:
                    reason = "max_steps reached"
            except EndRun as end:
                status, reason = end.status, end.reason
            return self._finish(status, reason)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a RunFailed event
            return self._fail(exc)
        finally:
            self.place.close()

    def hyperparameters(self) -> dict:
        """Current hyperparameters as plain values (for panels and RunStarted)."""
        group = self._p.rt.optimizer.param_groups[0] if self._p is not None else {}
        return control.hyperparameters(self.config, self.state, group)

    def current_lr(self, step: int) -> float:
        """The learning rate for optimizer step ``step``: base x schedule (as a live length change laid it) x plateau."""
        p, st = self.p, self.state
        return st.base_lr * factor_at(self.config.schedule, step, p.rt.steps_per_epoch, p.rt.total_steps, st.lr_plan,
                                      st.lr_total) * p.plateau.scale

    def report(self, event: E.Event) -> None:
        """Log an event that does not come from the loop (a Python warning, a viewer note, a system
        sample) and hand it to the sink, like the loop's own. Safe from any thread."""
        self.place.emit(event)

    def abandon(self, reason: str) -> None:
        """End a prepared run that never began training (core.run.place.RunPlace.abandon)."""
        self.place.abandon(reason)

    def emergency_summary(self, status: str, reason: str) -> None:
        """summary.json from another thread when the trainer cannot finish in time (core.run.place.RunPlace.emergency_summary)."""
        self.place.emergency_summary(status, reason)

    # ------------------------------------------------------------------ the loop

    def _train(self) -> None:
        st = self.state
        while not self._ended():  # the config's length, which a SetRunLength may change at any boundary
            epoch_t0 = time.perf_counter()
            self._train_epoch()
            # the epoch's last flush may have paused (non-finite loss) or commands may wait: they
            # apply here, before validation and the end of the run, as at any step boundary
            self._step_boundary()
            if st.batch < self.p.rt.batches_per_epoch:
                continue  # the length ended mid-epoch (_finish validates the partial epoch) or grew again here
            self._end_epoch(time.perf_counter() - epoch_t0)

    def _ended(self) -> bool:
        """The run's length is reached: every epoch, or max_steps."""
        t, st = self.config.train, self.state
        return st.epoch >= t.epochs or (bool(t.max_steps) and st.step >= t.max_steps)

    def _train_epoch(self) -> None:
        """One epoch from the saved position; commands apply between optimizer steps."""
        cfg, st, p = self.config, self.state, self.p
        accum = cfg.optim.grad_accum
        p.rt.model.train()
        p.interval = Interval(p.rt.task == "classification")
        p.clock.take_lap()
        p.clock.start()
        micro = 0
        every = self.place.sync.every(cfg.train.log_every)  # one process: 1; several ranks meet every log_every steps
        for x, y in p.rt.data.train_batches(st.epoch, cfg.data.batch_size, start=st.batch):
            if micro == 0 and st.step % every == 0 and self._step_boundary():
                break  # a shorter length ends here
            self._train_batch(x, y)
            st.batch += 1
            micro = (micro + 1) % accum
            if micro == 0:
                self._optimizer_step()
                self._after_step()
                if self._ended():
                    break
        if micro != 0:  # a partial accumulation at the epoch's end still steps
            self._optimizer_step()
            self._after_step()
        p.clock.stop()
        self._flush_interval()

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Forward and backward of one batch; its loss (and predictions) stay on the device."""
        cfg, p = self.config, self._p  # the hot path: no property (a prepared run is guaranteed here)
        rt = p.rt
        if cfg.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.autocast():
            out = model_output(rt.forward(x))
            loss = rt.loss_fn(out.float(), y)
        total = loss
        if cfg.optim.l1 > 0:
            total = total + cfg.optim.l1 * sum(w.abs().sum() for w in rt.model.parameters())
        if cfg.optim.grad_accum > 1:
            total = total / cfg.optim.grad_accum
        total.backward()
        p.interval.add(loss, out, y)

    def _optimizer_step(self) -> None:
        """One optimizer step at the schedule's LR for this step, gradients clipped when asked."""
        st, p = self.state, self._p  # the hot path, as _train_batch
        lr = self.current_lr(st.step)
        for g in p.rt.optimizer.param_groups:
            g["lr"] = lr
        if st.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(p.rt.model.parameters(), st.grad_clip)
        p.rt.optimizer.step()
        p.rt.optimizer.zero_grad(set_to_none=True)
        st.step += 1
        p.last_lr = lr

    def _after_step(self) -> None:
        """The log interval, periodic checkpoints, a ``step=N`` breakpoint (it pauses here)."""
        st, cfg = self.state, self.config
        if st.step % cfg.train.log_every == 0:
            self._flush_interval()
        if cfg.checkpoint.every_steps and st.step % cfg.checkpoint.every_steps == 0:
            self._checkpoint("periodic")
        self.p.breaks.after_step()

    def _step_boundary(self) -> bool:
        """Apply the commands every rank applies now; wait here while paused (the clock stopped); leave the
        loop when a stop was asked (core.run.place.RunPlace.boundary). True: the length is reached (SetRunLength)."""
        self.place.boundary(self.p.effects.apply, self.p.clock.held)
        return self._ended()

    def _end_epoch(self, seconds: float) -> None:
        """Validate (when due), track the best epoch, the plateau and early stopping, report, save."""
        cfg, st, p = self.config, self.state, self.p
        train = p.totals.train_metrics(p.rt.task == "classification")
        p.totals = EpochTotals()
        val: dict = {}
        if ((st.epoch + 1) % cfg.train.val_every == 0 or st.epoch + 1 == cfg.train.epochs) and p.rt.data.val_size:
            t = time.perf_counter()
            val, _ = self._evaluate("val", between=p.effects.apply_mid_evaluation)
            seconds += time.perf_counter() - t
            st.last_val = val
        epoch = st.epoch
        hit = p.watch.check({"train": train, "val": val}, epoch, st.step)
        st.epoch, st.batch = st.epoch + 1, 0
        is_best, patience_left = False, None
        value = p.early.value(val)
        if value is not None:
            is_best = p.early.update(value, epoch)
            if cfg.schedule.name == "plateau" and p.plateau.update(value):
                self._emit(E.RunWarning(message=f"plateau: lr scale reduced to {p.plateau.scale:g}", step=st.step))
            patience_left = p.early.patience_left(st.patience)
        st.epochs.append({"epoch": epoch, "step": st.step, "train": train, "val": val, "lr": p.last_lr,
                          "seconds": seconds, "is_best": is_best})
        self._emit(E.EpochMetrics(epoch=epoch, step=st.step, train=train, val=val, lr=p.last_lr, seconds=seconds,
                                  is_best=is_best, patience_left=patience_left))
        if is_best and cfg.checkpoint.save_best:
            self._checkpoint("best")
        if cfg.checkpoint.every_epochs and st.epoch % cfg.checkpoint.every_epochs == 0:
            self._checkpoint("periodic")
        if hit is not None:  # before early stopping: reaching the target is the better end
            self._emit(E.RunNote(message=p.watch.note, step=st.step))
            raise EndRun("completed", hit)
        if value is not None and p.early.should_stop(st.patience):
            raise EndRun("early_stopped", f"{cfg.early_stopping.monitor} did not improve for {p.early.bad_epochs} epochs")
        p.breaks.at_epoch_end({"train": train, "val": val}, p.early.bad_epochs if value is not None else None)  # may pause here

    # ------------------------------------------------------------------ metrics and evaluation

    def _flush_interval(self, react: bool = True) -> None:
        """Emit StepMetrics for the interval: the one host sync per log interval. ``react``: check
        the loss (non-finite pause or stop) and refresh the last good snapshot."""
        st, p = self.state, self.p
        acc = p.interval
        if acc.n == 0:
            return
        with p.clock.held(interruption=False):
            loss_sum, correct = acc.sums(p.rt.device)  # the host sync
            seconds, n = p.clock.take_lap(), acc.n
            sync = self.place.sync  # the run's sums; rank 0 decides when the last-good snapshot is due
            loss_sum, correct, n, due = sync.all_sum([loss_sum, correct, float(n), float(sync.is_main and p.good.due())])
            n, keep_good = int(n), due > 0
            st.train_samples += n
            p.totals.add(loss_sum, correct, n)
            loss = loss_sum / n
            self._emit(E.StepMetrics(
                step=st.step, epoch=st.epoch, epoch_progress=min(1.0, st.batch / max(1, p.rt.batches_per_epoch)),
                loss=loss, lr=p.last_lr, samples_per_second=n / seconds if seconds > 0 else 0.0,
                accuracy=correct / n if acc.classification else None, elapsed=p.clock.total))
            p.interval = Interval(acc.classification)
            if not react:  # the run is ending: log the interval, decide nothing more
                return
            if not math.isfinite(loss):  # the run's loss: every rank pauses (or stops) at once
                self._nonfinite(loss)
            elif keep_good:
                p.good.keep(p.rt.model, p.rt.optimizer, st.step, force=True)

    def _nonfinite(self, loss: float) -> None:
        """A non-finite loss: pause for the user (TUI) or save the last good state and fail."""
        st, p = self.state, self.p
        msg = nonfinite_message(loss, st.step)
        self._emit(E.RunWarning(message=msg, step=st.step))
        if self.config.train.on_nonfinite == "pause":
            self._set_status("paused", f"{msg}: resume, roll back (lr halved) or stop", "nonfinite")
            return
        if p.good.available:
            good_step = p.good.restore(p.rt.model, p.rt.optimizer)
            if self._checkpoint("nonfinite") is not None:
                msg += f"; the last good weights (step {good_step}) were saved"
        raise EndRun("failed", msg)

    def _evaluate(self, split: str, interruptible: bool = True, between=None) -> tuple[dict, list]:
        """(metrics, confusion) on 'val' or 'test' (core.train.evaluation.RunEvaluation: a validation
        may end the run as interrupted; ``between``, one process only, is called between batches)."""
        return self.p.evaluation(split, interruptible, between)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, reason: str) -> Path | None:
        """Save atomically (core.run.place.RunPlace.save: a failure is reported as RunError,
        remembered for summary.json's ``not_saved`` and the final status, and training goes on).
        Several ranks: every rank hands rank 0 its RNG states (a collective: all ranks checkpoint at
        the same step) and rank 0 writes (core.train.snapshot.writer)."""
        p = self.p
        write = snapshot.writer(p.rt.model, p.rt.device, self.place.sync, lambda rngs: self._payload(reason, rngs))
        with p.clock.held():
            return self.place.save(reason, write, keep_last=self.config.checkpoint.keep_last)

    def not_saved(self) -> list[dict]:
        """What this run was meant to write and could not, so far (core.run.place.RunPlace.not_saved)."""
        return self.place.not_saved()

    def _payload(self, reason: str, rank_rngs: list | None = None) -> dict:
        """The checkpoint of this moment: every concern's state under the format's keys (and, for
        several ranks, the world size and every rank's RNG states)."""
        st, p = self.state, self.p
        training = {**st.state_dict(), **p.early.state_dict(), **p.watch.state_dict(), "plateau": p.plateau.state_dict(),
                    "world_size": self.world.world_size, **({"rank_rng": rank_rngs} if rank_rngs else {}),
                    "train_seconds": p.clock.total, "wall_seconds": self._wall.seconds(), "train_samples": st.train_samples + p.interval.n,
                    "epoch_acc": [0.0, 0.0, 0] if st.batch == 0 else p.totals.with_pending(p.interval, p.rt.device)}
        return ckpt.build_payload(reason, model=p.rt.model, optimizer=p.rt.optimizer, config=to_dict(self.config),
                                  preset=self.preset, data=p.rt.data, training=training, device=p.rt.device)

    # ------------------------------------------------------------------ the end

    def _finish(self, status: str, reason: str) -> dict:
        """Validate a partial epoch, save, test, acknowledge what is left, write the summary."""
        cfg, st, p = self.config, self.state, self.p
        self._flush_interval(react=False)  # the steps since the last log line
        p.clock.stop()
        data = p.rt.data
        if status in ("completed", "early_stopped") and st.batch > 0 and data.val_size:
            st.last_val, _ = self._evaluate("val", interruptible=False)
            self._emit(E.ValidationMetrics(step=st.step, epoch=st.epoch, metrics=st.last_val))
            if p.watch.check({"val": st.last_val}, st.epoch, st.step):  # the run ends anyway: the summary says when
                self._emit(E.RunNote(message=p.watch.note, step=st.step))
        if status in END_CHECKPOINTS:  # early_stop, interrupt, preempt
            self._checkpoint(END_CHECKPOINTS[status])
        if cfg.checkpoint.save_last and status != "failed":
            self._checkpoint("last")
        test: dict = {}
        if status in ("completed", "early_stopped") and data.test_size:
            test, confusion = self._evaluate("test")
            self._emit(E.TestMetrics(metrics=test, confusion=tuple(tuple(r) for r in confusion)))
        self.place.reject_pending()  # every command is acknowledged, also after the last step
        status, reason = with_losses(status, reason, self.not_saved())
        summary = self._summary(status, reason, test)
        if not self.place.sync.solo:  # several ranks (core.train.distributed.Ranks): do they end alike?
            differ = self.place.sync.disagreement(st, p.rt.model, p.rt.optimizer)
            if differ:
                self._emit(E.RunError(message=differ, step=st.step))
            summary["ranks_agree"] = not differ
        self.place.write_summary(summary)
        self._set_status(status, reason, "end")
        if status == "failed":
            self._emit(E.RunFailed(message=reason, traceback="", traceback_path="", summary=summary))
        else:
            self._emit(E.RunFinished(status=status, summary=summary, run_dir=str(self.run_dir.resolve())))
        return summary

    def _fail(self, exc: BaseException) -> dict:
        """The training thread raised: the traceback, a last checkpoint (one process: several ranks
        fail one rank at a time, not at a point they all reach), ``failed`` (core.run.place.RunPlace.fail)."""
        last = self._p is not None and not isinstance(exc, KeyboardInterrupt) and self.place.sync.solo
        summary = self.place.fail(failure_message(exc), "".join(traceback.format_exception(exc)),
                                  (lambda: self._checkpoint("error")) if last else None)
        self.error = exc
        return summary

    def _summary(self, status: str, reason: str, test: dict) -> dict:
        p = self._p
        return summary(status, reason, config=self.config, state=self.state, preset=self.preset, run_dir=self.run_dir,
                       device=p.rt.device if p else None, task=p.rt.task if p else None, early=p.early if p else None,
                       test=test, wall_seconds=self._wall.seconds(), train_seconds=p.clock.total if p else 0.0,
                       world_size=self.world.world_size, parent=self.parent, target=p.watch.summary() if p else None,
                       not_saved=self.not_saved())

    def _emit(self, event: E.Event) -> None:
        """Record, then hand to the sink (core.run.place.RunPlace.emit; rank 0 reports for the run)."""
        self.place.emit(event)

    def _set_status(self, status: str, reason: str, cause: str) -> None:
        self.place.set_status(status, reason, cause)
