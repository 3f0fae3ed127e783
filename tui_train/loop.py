"""Steer any PyTorch loop: ``tui_train.init / log / finish`` (issue 23).

A user's own training loop gets what a built-in run has: a run directory (config, metrics,
events, summary, checkpoints), the control endpoint (``tui-train attach``, ``ctl``, several
viewers), pause, live learning rate, momentum and weight decay, checkpoint on request, early stop,
the runs browser and replay. It is the run layer's second client (:class:`tui_train.core.run.place.RunPlace`;
the built-in loop is the first), so nothing here is a second implementation::

    import tui_train
    run = tui_train.init(name="my-exp", config={"lr": 1e-3, "epochs": 10},
                         model=model, optimizer=optimizer, runs_dir="runs")
    for epoch in range(10):
        for x, y in loader:
            ...; loss.backward(); optimizer.step()
            run.log({"loss": loss.item(), "accuracy": acc})   # the step boundary
            if run.should_stop: break
        run.log({"val_loss": vl, "val_accuracy": va, "epoch": epoch})
        if run.should_stop: break
    run.finish()

:meth:`Run.log` is the step boundary: commands apply there (a pause blocks inside it), and it is
cheap: numbers are summed in Python and written once per ``log_every`` steps or per second, the
way the built-in loop writes once per log interval (bench (u) measures it against the bare loop).
No Textual, no torch at import; torch is imported when a checkpoint is written or read.
"""

from __future__ import annotations

import atexit
import math
import numbers
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tui_train._loop_files import FORMAT, Output, config_toml, device_of, load_into
from tui_train._loop_steering import LIVE_KEYS, Steering
from tui_train.core import events as E
from tui_train.core.errors import ConfigError, first_line
from tui_train.core.protocol import MAX_ARG_CHARS, MAX_SCALARS
from tui_train.core.run.announce import ANNOUNCE_ENV, OUTPUT_ENV
from tui_train.core.run.checkpoints import run_dir_of, write_json
from tui_train.core.run.endpoint import Endpoint, EndpointError
from tui_train.core.run.headless import STOP_DEADLINE
from tui_train.core.run.notify import Notifier, check_urls, from_env, merged
from tui_train.core.run.notify import attach as attach_notifier
from tui_train.core.run.notify import detach as detach_notifier
from tui_train.core.run.place import EndRun, RunPlace
from tui_train.core.run.system import INTERVAL
from tui_train.core.state import TrainingState
from tui_train.core.status import EXIT_CODES

TRAIN_KEYS = {"loss": "loss", "accuracy": "accuracy", "acc": "accuracy"}
"""Keys of :meth:`Run.log` that feed the standard train plots (``acc`` is ``accuracy``)."""



def init(name: str = "run", *, config: Mapping[str, Any] | None = None, model: Any = None, optimizer: Any = None,
         scheduler: Any = None, runs_dir: str | os.PathLike = "runs", resume: str | os.PathLike | None = None,
         task: str = "classification", log_every: int = 20, endpoint: bool = True, signals: bool = True,
         system_interval: float = INTERVAL, save_hook: Callable[[str], str] | None = None,
         notify: Sequence[str] | str | None = None) -> Run:
    """Start (or, with ``resume``, continue) a run of your own loop; see the module docstring.

    ``config``: plain values (numbers, strings, lists, nested tables) recorded in config.toml and
    shown as hyperparameters (``epochs`` and ``max_steps`` also size the progress bars).
    ``model``/``optimizer``/``scheduler``: what a checkpoint holds and what live changes act on
    (without an optimizer, a live LR change is rejected with the reason). ``resume``: a run
    directory or one of its checkpoints: its newest checkpoint is loaded into the given objects and
    the run goes on in the same directory. ``task``: 'classification' or 'regression' (which
    headline metric the viewers show). ``log_every``: logged steps summed into one record (a
    record is also written at least once a second). ``endpoint``: host the control socket.
    ``signals``: SIGTERM/SIGHUP save a checkpoint and end the run ``interrupted`` (installed only
    in the main thread, and only over the default handlers). ``save_hook(reason)``: saves in the
    loop's own way instead of :meth:`Run.save`'s payload (Lightning's ``trainer.save_checkpoint``)
    and returns the acknowledgement's text; an exception is reported and listed as not saved.
    ``notify``: apprise URLs (``"ntfy://topic"``, ``"json://host/path"``...; ``pip install
    'tui-train[notify]'``) told when the run ends or fails, from a background thread
    (core.run.notify); ``TUI_TRAIN_NOTIFY``'s are added. Only their schemes are ever shown.
    Bad input raises ValueError with one line.

    Under ``tui-train watch`` (:data:`ANNOUNCE_ENV` set) the run tells the watcher where its
    endpoint is, and the script's output (:data:`OUTPUT_ENV`) is copied into ``output.log`` in the
    run directory and into the event log."""
    return Run(name, config=dict(config or {}), model=model, optimizer=optimizer, scheduler=scheduler,
               runs_dir=Path(runs_dir), resume=Path(resume) if resume else None, task=task, log_every=log_every,
               endpoint=endpoint, signals=signals, system_interval=system_interval, save_hook=save_hook,
               notify=[notify] if isinstance(notify, str) else list(notify) if isinstance(notify, list | tuple)
               else [] if notify is None else [notify])


class Run:
    """One run of a user's loop (made by :func:`init`). The loop's thread calls :meth:`log`,
    :meth:`save` and :meth:`finish`; viewers talk to it through its control endpoint."""

    def __init__(self, name: str, *, config: dict, model: Any, optimizer: Any, scheduler: Any, runs_dir: Path,
                 resume: Path | None, task: str, log_every: int, endpoint: bool, signals: bool, system_interval: float,
                 save_hook: Callable[[str], str] | None = None, notify: list | None = None):
        if task not in ("classification", "regression"):
            raise ValueError(f"tui_train.init: task must be 'classification' or 'regression', got {task!r}")
        if not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"tui_train.init: log_every must be a whole number >= 1, got {log_every!r}")
        self.name, self.config, self.task, self.log_every = str(name), config, task, log_every
        urls = merged(from_env(), check_urls(notify or (), "tui_train.init(notify=...)"))
        batch = config.get("batch_size")
        self._batch = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.save_hook = save_hook
        """The loop's own way to save (see :func:`init`), or None."""
        self.state: dict = {}
        """Yours: plain values and tensors you want in every checkpoint (and back on resume); checkpoints
        are read with ``torch.load(weights_only=True)``, which refuses arbitrary objects."""
        self.should_stop = False
        """A viewer asked to stop (early stop, ``ctl stop``, a signal): break out of the loop and call :meth:`finish`."""
        self.should_validate = False
        """A viewer asked for a validation (``v``, ``ctl validate``): run yours and log ``val_*``; it resets then."""
        self.place = RunPlace()
        """The run layer (core.run.place): record, status, inbox, checkpoints on request."""
        self.place.summarize = self._summary
        self._steering = Steering(self)
        self.finished = False
        """:meth:`finish` has run."""
        self._end: tuple[str, str] | None = None  # (status, reason) once a viewer or a signal decided the run ends
        self._signal = ""  # the name of a signal that asked the run to end
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._epoch_sums: dict[str, float] = {}
        self._epoch_counts: dict[str, int] = {}
        self._n = 0  # logged train steps in the current interval
        self._samples = 0  # the samples they stand for
        self._other: dict[str, float] = {}  # the loop's own names: sums and counts since the last record
        self._other_n: dict[str, int] = {}
        self._wall0 = self._t_flush = self._t_epoch = time.perf_counter()
        self._wall_before = 0.0
        self._best: float | None = None
        self._best_epoch: int | None = None
        self._endpoint: Endpoint | None = None
        self._previous: dict = {}
        self._sampling = None
        self._output: Output | None = None
        self._notifier: Notifier | None = None
        self._start(resume, runs_dir, endpoint, signals, system_interval, urls)

    # ------------------------------------------------------------------ start

    def _start(self, resume: Path | None, runs_dir: Path, endpoint: bool, signals: bool, interval: float,
               urls: list[str]) -> None:
        place = self.place
        lr = self._group().get("lr", 0.0) if self.optimizer is not None else 0.0
        place.state = TrainingState(base_lr=float(lr or 0.0))
        payload = self._load(resume) if resume is not None else None
        created = False
        try:
            if payload is None:
                created = place.make_dir(runs_dir, self.name)
            else:
                place.run_dir = run_dir_of(payload["_file"])
            place.open(config_toml(self.config), created=created)
        except ConfigError as e:
            raise ValueError(f"tui_train.init: {e}") from None
        if endpoint:
            self._host()
        self._notifier = attach_notifier(place.log, place.emit, urls)  # after the endpoint: viewers hear the end first
        self._install(signals)
        place.emit(self._run_started())  # first in the record: a viewer's history starts with it
        self._output = Output.start(self) if os.environ.get(OUTPUT_ENV) else None
        place.set_status("running", "resumed" if payload is not None else "started", "start")
        self._sampling = place.sampling(device_of(self.model), interval)
        self._sampling.__enter__()
        atexit.register(self._at_exit)

    def _host(self) -> None:
        place, log = self.place, self.place.log
        try:
            ep = Endpoint(place.run_dir, place.submit, status=lambda: place.status, initial_seq=log.seq)
            ep.start()
        except EndpointError as e:
            place.emit(E.RunWarning(message=f"no control endpoint: {e}", step=place.state.step))
            return
        log.listeners.append(ep.publish)
        self._endpoint = ep
        announce = os.environ.get(ANNOUNCE_ENV)
        if announce:
            write_json(Path(announce), {"socket": str(ep.path), "run_dir": str(place.run_dir.resolve()), "pid": os.getpid()})

    def _install(self, signals: bool) -> None:
        """SIGTERM and SIGHUP end the run at the next :meth:`log` (saved, ``interrupted``), where
        nobody else handles them: a default handler in the main thread is replaced, and put back at the end."""
        if not signals or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self._signal:
            return
        self._signal = signal.Signals(signum).name
        self.place.stop.set()
        threading.Thread(target=self._watchdog, name="tui-train-watchdog", daemon=True).start()

    def _watchdog(self) -> None:
        """A loop that does not reach :meth:`log` within the grace (a long validation, a hung
        data loader) must not keep a killed job alive: summary ``interrupted``, exit 130."""
        deadline = time.monotonic() + STOP_DEADLINE
        while time.monotonic() < deadline:
            if self.finished:
                return
            time.sleep(0.05)
        if not self.finished:
            self.place.emergency_summary("interrupted", f"{self._signal}: the loop did not reach run.log in time")
            os._exit(EXIT_CODES["interrupted"])

    # ------------------------------------------------------------------ the step boundary

    def log(self, metrics: Mapping[str, Any], step: int | None = None, samples: int | None = None) -> None:
        """Record numbers and apply the viewers' commands (the step boundary; a pause blocks here).

        ``loss`` and ``accuracy`` (or ``acc``) are train metrics (a call holding one is a train
        step: the step count goes on by one, or to ``step``); ``val_*`` keys are a validation;
        ``epoch`` (the epoch just finished, from 0) closes an epoch with the train means since the
        last one and the validation of the same call. Values: numbers (a 0-d tensor works: it is
        read with ``.item()``). ``samples``: training samples this call stands for (throughput;
        default: the config's ``batch_size``, else 1; a framework logging the mean of k steps passes
        k batches' worth). After a SIGTERM/SIGHUP the run is saved and ended here, and
        SystemExit(130) leaves the loop."""
        if self.finished:
            raise RuntimeError("tui_train: run.log after run.finish()")
        values = _numbers(metrics)
        st = self.place.state
        train = [k for k in values if k in TRAIN_KEYS]
        if train:
            st.step = step if step is not None else st.step + 1
            for k in train:
                key = TRAIN_KEYS[k]
                self._sums[key] = self._sums.get(key, 0.0) + values[k]
                self._counts[key] = self._counts.get(key, 0) + 1
            self._n += 1
            self._samples += self._batch if samples is None else int(samples)
        elif step is not None:
            st.step = step
        for k, v in values.items():  # a loop's own names: one series each (Scalars)
            if k not in TRAIN_KEYS and k != "epoch" and not k.startswith("val_"):
                self._other[k] = self._other.get(k, 0.0) + v
                self._other_n[k] = self._other_n.get(k, 0) + 1
        val = {k[4:]: v for k, v in values.items() if k.startswith("val_")}
        if "epoch" in values or val:
            self._flush()
        if val and "epoch" not in values:
            st.last_val = val
            self.should_validate = False
            self.place.emit(E.ValidationMetrics(step=st.step, epoch=st.epoch, metrics=val))
        if "epoch" in values:
            self._end_epoch(int(values["epoch"]), val)
        elif self._n >= self.log_every or ((self._n or self._other) and time.perf_counter() - self._t_flush >= 1.0):
            self._flush()
        self._boundary()

    def _boundary(self) -> None:
        if self._end is not None:
            return self._leave_if_signalled()
        try:
            self.place.boundary(self._steering.apply)
        except EndRun as end:
            self._end = (end.status, end.reason)
            self.should_stop = True
            self._leave_if_signalled()
        return None

    def _leave_if_signalled(self) -> None:
        if self._signal:
            self.finish()
            raise SystemExit(EXIT_CODES["interrupted"])

    def _flush(self) -> None:
        """One StepMetrics for the steps logged since the last one (their means), and Scalars for
        the loop's own names (at most MAX_SCALARS names an event)."""
        st = self.place.state
        if self._other:
            names = list(self._other)
            for i in range(0, len(names), MAX_SCALARS):
                self.place.emit(E.Scalars(step=st.step, epoch=st.epoch,
                                          values={k: self._other[k] / self._other_n[k] for k in names[i:i + MAX_SCALARS]}))
            self._other, self._other_n = {}, {}
        if not self._n:
            self._t_flush = time.perf_counter()
            return
        now = time.perf_counter()
        means = {k: self._sums[k] / self._counts[k] for k in self._sums}
        for k, v in self._sums.items():
            self._epoch_sums[k] = self._epoch_sums.get(k, 0.0) + v
            self._epoch_counts[k] = self._epoch_counts.get(k, 0) + self._counts[k]
        seconds, samples = now - self._t_flush, self._samples
        self.place.emit(E.StepMetrics(step=st.step, epoch=st.epoch, epoch_progress=0.0, loss=means.get("loss", math.nan),
                                      lr=self._lr(), samples_per_second=samples / seconds if seconds > 0 else 0.0,
                                      accuracy=means.get("accuracy"), elapsed=self._wall()))
        st.train_samples += samples
        self._sums, self._counts, self._n, self._samples, self._t_flush = {}, {}, 0, 0, now

    def _end_epoch(self, epoch: int, val: dict) -> None:
        st = self.place.state
        train = {k: self._epoch_sums[k] / self._epoch_counts[k] for k in self._epoch_sums}
        self._epoch_sums, self._epoch_counts = {}, {}
        monitor = val.get("loss")
        is_best = monitor is not None and math.isfinite(monitor) and (self._best is None or monitor < self._best)
        if is_best:
            self._best, self._best_epoch = monitor, epoch
        now = time.perf_counter()
        if val:
            st.last_val = val
            self.should_validate = False
        st.epoch = epoch + 1
        st.epochs.append({"epoch": epoch, "step": st.step, "train": train, "val": val, "lr": self._lr(),
                          "seconds": now - self._t_epoch, "is_best": is_best})
        self.place.emit(E.EpochMetrics(epoch=epoch, step=st.step, train=train, val=val, lr=self._lr(),
                                       seconds=now - self._t_epoch, is_best=is_best, patience_left=None))
        self._t_epoch = now

    # ------------------------------------------------------------------ checkpoints

    def save(self, reason: str = "manual") -> Path | None:
        """Write a checkpoint now (model, optimizer, scheduler, :attr:`state`, position) into the
        run's checkpoints folder, atomically; returns its path, or None when it could not be written
        (the run's summary then lists it under ``not_saved``, and a RunError says why)."""
        if self.model is None:
            return None

        def writer():
            import torch

            payload = {"format": FORMAT, "reason": reason, "name": self.name, "config": self.config,
                       "model": self.model.state_dict(),
                       "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                       "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                       "user_state": self.state, "training": self.place.state.state_dict(),
                       "best": [self._best, self._best_epoch], "wall_seconds": self._wall()}
            return lambda f: torch.save(payload, f)

        return self.place.save(reason, writer)

    def _load(self, resume: Path) -> dict:
        """The newest checkpoint of ``resume`` into the given objects (:func:`tui_train._loop_files.load_into`)."""
        payload = load_into(self, resume)
        self._best, self._best_epoch = (payload.get("best") or [None, None])[:2]
        self._wall_before = float(payload.get("wall_seconds") or 0.0)
        return payload

    # ------------------------------------------------------------------ the end

    def finish(self, status: str | None = None, reason: str = "") -> dict:
        """End the run: the last numbers, a checkpoint (``last``; ``early_stop`` or ``interrupt``
        when a viewer or a signal ended it), summary.json, the final status. ``status``: force one
        ('completed', 'failed'...); by default 'completed', or how a viewer ended it. Returns the
        summary. Calling it again does nothing."""
        if self.finished:
            return {}
        self._flush()
        end_status, end_reason = self._end or ("completed", "the loop finished")
        if self._signal:
            end_status, end_reason = "interrupted", f"{self._signal}: stopped, saved"
        status = status or end_status
        reason = reason or end_reason
        # the end's checkpoints are always this API's own format (model, optimizer, scheduler, state,
        # loadable with torch.load): a save_hook's format may not be writable once the loop is over
        # (the Hugging Face Trainer saves only between its steps)
        if self.model is not None and status != "failed":
            if status in ("early_stopped", "interrupted"):
                self.save("early_stop" if status == "early_stopped" else "interrupt")
            self.save("last")
        return self._close(status, reason)

    def _close(self, status: str, reason: str) -> dict:
        from tui_train.core.status import with_losses

        place = self.place
        place.reject_pending()
        if self._output is not None:  # the script's output so far becomes events before the end
            self._output.stop()
        status, reason = with_losses(status, reason, place.not_saved())
        summary = self._summary(status, reason, {})
        try:
            place.write_summary(summary)
        except OSError as e:
            place.emit(E.RunError(message=f"summary.json not written: {first_line(e, typed=True)}", step=place.state.step))
        place.set_status(status, reason, "end")
        if status == "failed":
            place.emit(E.RunFailed(message=reason, traceback="", traceback_path="", summary=summary))
        else:
            place.emit(E.RunFinished(status=status, summary=summary, run_dir=str(place.run_dir.resolve())))
        self._shut()
        return summary

    def _shut(self) -> None:
        self.finished = True
        if self._sampling is not None:
            self._sampling.__exit__(None, None, None)
        detach_notifier(self.place.log, self._notifier)
        if self._endpoint is not None:
            log = self.place.log
            if log is not None and self._endpoint.publish in log.listeners:
                log.listeners.remove(self._endpoint.publish)
            self._endpoint.close()
        self.place.close()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        atexit.unregister(self._at_exit)

    def fail(self, exc: BaseException) -> dict:
        """End the run ``failed`` with ``exc``'s traceback in traceback.txt (the context manager
        does this for you)."""
        if self.finished:
            return {}
        self._flush()
        if self._output is not None:
            self._output.stop()
        summary = self.place.fail(first_line(exc, typed=True), "".join(traceback.format_exception(exc)),
                                  (lambda: self.save("error")) if self.model is not None else None)
        self._shut()
        return summary

    def _at_exit(self) -> None:
        """The script ended without :meth:`finish`: end the run so that it does not stay 'running'."""
        if not self.finished:
            exc = getattr(sys, "last_value", None)
            if exc is not None:
                self.fail(exc)
            else:
                self.finish()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or (isinstance(exc, SystemExit) and (self.finished or exc.code in (0, None))):
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", "KeyboardInterrupt (Ctrl+C)")
        else:
            self.fail(exc)
        return False

    # ------------------------------------------------------------------ what viewers and the summary read

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        assert self.place.run_dir is not None
        return self.place.run_dir

    @property
    def status(self) -> str:
        """The run's status (running, paused, stopping, then its final one)."""
        return self.place.status

    @property
    def step(self) -> int:
        """Train steps logged so far."""
        return self.place.state.step

    @property
    def epoch(self) -> int:
        """Epochs closed so far (``epoch`` keys logged)."""
        return self.place.state.epoch

    def _group(self) -> dict:
        return self.optimizer.param_groups[0] if self.optimizer is not None and self.optimizer.param_groups else {}

    def _lr(self) -> float:
        return float(self._group().get("lr", 0.0) or 0.0)

    def _wall(self) -> float:
        return self._wall_before + time.perf_counter() - self._wall0

    def _planned_steps(self) -> int:
        c = self.config
        return int(c.get("max_steps") or 0) if isinstance(c.get("max_steps"), int) else 0

    def _hyperparameters(self) -> dict:
        hp = {k: v for k, v in self.config.items() if isinstance(v, int | float | str | bool)}
        g = self._group()
        for k in LIVE_KEYS:
            if k in g and isinstance(g[k], int | float):
                hp[k] = float(g[k])
        if self.optimizer is not None:
            hp.setdefault("optimizer", type(self.optimizer).__name__.lower())
        return hp

    def _run_started(self) -> E.RunStarted:
        st, c = self.place.state, self.config
        epochs = c.get("epochs") if isinstance(c.get("epochs"), int) else 0
        params = sum(p.numel() for p in self.model.parameters()) if self.model is not None else 0
        return E.RunStarted(run_dir=str(self.run_dir.resolve()), preset=self.name, device=device_of(self.model), task=self.task,
                            epochs=epochs, steps_per_epoch=0, total_steps=self._planned_steps(), train_size=0, val_size=0,
                            test_size=0, num_params=params, model=type(self.model).__name__ if self.model is not None else "",
                            hyperparameters=self._hyperparameters(),
                            live=LIVE_KEYS if self.optimizer is not None else (), start_step=st.step, start_epoch=st.epoch,
                            world_size=1)

    def _summary(self, status: str, reason: str, test: dict) -> dict:
        st = self.place.state
        train_seconds = self._wall()
        return {"status": status, "reason": reason, "not_saved": self.place.not_saved(), "preset": self.name,
                "run_dir": str(self.run_dir.resolve()), "device": device_of(self.model), "task": self.task, "loop": "user",
                "epochs_completed": st.epoch, "epochs_planned": self.config.get("epochs"), "steps": st.step,
                "best": {"metric": "val_loss", "value": self._best, "epoch": self._best_epoch},
                "val": st.last_val, "test": None, "wall_seconds": self._wall(), "train_seconds": train_seconds,
                "samples_per_second": st.train_samples / train_seconds if train_seconds > 0 else 0.0,
                "final_lr": self._lr(), "interventions": len(st.history), "world_size": 1,
                "hyperparameters": self._hyperparameters(), "parent": None,
                "target": None, "time_to_target": None, "wall_to_target": None,
                **({"output_bytes": self._output.copied} if self._output is not None else {})}


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics`` as floats (0-d tensors read with ``.item()``); anything else: TypeError naming the
    key. Floats, the common case, pass without a check (the hot path: bench (u))."""
    if type(metrics) is not dict and not isinstance(metrics, Mapping):
        raise TypeError(f"run.log takes a dict of numbers, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        name = k if type(k) is str else str(k)
        if len(name) > MAX_ARG_CHARS:
            raise ValueError(f"run.log: a name of {len(name)} characters (at most {MAX_ARG_CHARS})")
        out[name] = v if type(v) is float else _number(k, v)
    return out


def _number(k: Any, v: Any) -> float:
    if hasattr(v, "item") and callable(v.item):
        try:
            v = v.item()
        except (ValueError, RuntimeError):
            raise TypeError(f"run.log: {k!r} must be a number or a one-element tensor") from None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"run.log: {k!r} must be a number, got {type(v).__name__}")
    return float(v)
