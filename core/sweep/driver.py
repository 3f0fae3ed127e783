"""The sweep driver: trials as ordinary runs, a few at once, ranked, pruned, resumable.

Each trial is a trainer process of its own (:func:`tui_train.core.live.spawn.spawn`, exactly what
``tui-train run`` starts): a normal run directory with its control endpoint, so ``attach``, ``ctl``,
the dashboard keys, fork, replay and export all work on it. The driver never imports torch: it
reads each trial's ``epochs.jsonl`` as it grows (the metric after each epoch) and its
``summary.json`` at the end, and talks to a trial only through its endpoint (Stop to prune it,
Interrupt when the sweep itself is stopped). Trials outlive the driver: a driver that is killed
leaves them training, and ``--resume`` adopts them again (or resumes an interrupted one from its
checkpoint), so no finished trial is repeated and no running one's results are lost.

Search: the plan of a grid or a random search is written into ``sweep.json`` at the start; with
``--optuna``, Optuna's ask-and-tell interface proposes each trial (TPE), hears each epoch's value
(``trial.report``; its MedianPruner decides pruning) and the final value (``study.tell``), and its
storage (a journal file by default, or ``--storage``) lets other machines join the study
(``tui-train sweep --join``). Grid and random searches prune with the same median rule built in:
a trial whose value after epoch k is worse than the median of the other trials' values after
epoch k (at least two of them) is stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_train.core import commands as C
from tui_train.core.config import ConfigError, load_config
from tui_train.core.errors import first_line
from tui_train.core.live.spawn import spawn, spec_for
from tui_train.core.run.endpoint import Connection, EndpointError, pid_alive, probe
from tui_train.core.sweep import record as R
from tui_train.core.sweep.space import Choice, Range, Space

RESUMABLE = ("queued", "interrupted", "preempted")
"""Trials the driver (re)starts: planned ones, and stopped ones with a checkpoint (resumed in their run directory)."""

POLL = 0.5
"""Seconds between two looks at the running trials' files."""

MIN_OTHERS = 2
"""The median rule prunes only where at least this many other trials measured the same epoch."""

STOP_GRACE = 20.0
"""Seconds a stopped sweep waits for its running trials to save and end before it leaves them."""


def mode_of(metric: str) -> str:
    """'max' for accuracies, F1 and R², 'min' for losses and errors (as the presets' monitor)."""
    return "max" if any(k in metric for k in ("accuracy", "acc", "f1", "r2")) else "min"


def metric_value(rec: dict, metric: str) -> float | None:
    """The sweep metric in an EpochMetrics record: ``val_<k>`` from its validation, ``train_<k>``
    (or a bare ``<k>``) from its train metrics; None when the epoch did not measure it."""
    split, key = ("val", metric[4:]) if metric.startswith("val_") else ("train", metric.removeprefix("train_"))
    part = rec.get(split)
    v = part.get(key) if isinstance(part, dict) else None
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass
class _Live:
    """What the driver keeps about a running trial between two polls."""

    trial: R.Trial
    proc: Any = None
    """Its Popen (None for a trial adopted after a restart: its pid is watched instead)."""
    offset: int = 0
    """Bytes of epochs.jsonl read so far."""
    pending: bytes = b""
    asked_stop: str = ""
    """'pruned' or 'stopped' once the driver asked it to stop."""
    gone_since: float | None = None
    replaying: bool = False
    """Reading a trial's earlier epochs again (a resumed sweep): no lines, no pruning."""
    optuna_trial: Any = None
    extra: dict = field(default_factory=dict)


class SweepDriver:
    """Runs one sweep (see the module docstring). ``say(line)`` hears a line per trial event;
    ``changed()`` is called after each change of the record (the Sweep screen redraws). Thread-safe
    requests from a screen: :meth:`request` (prune, stop a trial, add a trial, extend, stop the sweep)."""

    def __init__(self, record: R.SweepRecord, sweep_dir: Path, *, say: Callable[[str], None] = lambda s: None,
                 changed: Callable[[], None] = lambda: None, cores: int | None = None):
        self.record = record
        self.sweep_dir = Path(sweep_dir)
        self.say, self.changed = say, changed
        self.cores = cores or os.cpu_count() or 1
        self.space = Space.from_json(record.space)
        self._live: dict[int, _Live] = {}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._starting: dict[int, tuple[_Live, Future, str | None]] = {}
        self._pool = ThreadPoolExecutor(max(1, record.parallel), thread_name_prefix="tui-train-sweep-start")
        self._pending_optuna = None
        self._study = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> int:
        """Run trials until the plan is done (0), or ``stop`` is set (the running trials are
        interrupted, saved, and the sweep is recorded ``interrupted``: 130)."""
        rec = self.record
        if rec.method == "optuna":
            self._study = self._open_study()
        self._adopt()
        rec.state = "running"
        self._save()
        while True:
            self._handle_requests()
            if stop.is_set() or rec.state == "stopped":
                self._stop_all("interrupted" if stop.is_set() else "stopped")
                self._save()
                return 130 if stop.is_set() else 0
            self._poll()
            self._started()
            while len(self._live) + len(self._starting) < rec.parallel:
                trial = self._next()
                if trial is None:
                    break
                self._start(trial)
            if not self._live and not self._starting and self._next(peek=True) is None:
                break
            stop.wait(POLL)
        rec.state = "completed"
        self._save()
        return 0

    def request(self, action: str, number: int | None = None, params: dict | None = None, count: int = 0) -> None:
        """Ask the loop (any thread): 'prune' or 'stop' trial ``number``, 'add' a trial with
        ``params``, 'extend' the plan by ``count`` trials, 'stop' the sweep."""
        self._requests.put((action, number, params, count))

    # ------------------------------------------------------------------ trials

    def _next(self, peek: bool = False) -> R.Trial | None:
        """The next trial to start: an interrupted one first (resumed), then the plan's next; with
        Optuna a new one asked of the study while the plan has room."""
        rec = self.record
        for t in rec.trials:
            if t.status in RESUMABLE and t.number not in self._live and t.number not in self._starting:
                return t
        if rec.method != "optuna" or len(rec.trials) >= rec.trials_planned or self._study_full():
            return None
        if peek:
            return R.Trial(number=-1, params={})
        ot = self._study.ask(self._distributions())
        trial = R.Trial(number=len(rec.trials), params=dict(ot.params), optuna=ot.number)
        rec.trials.append(trial)
        self._pending_optuna = ot
        return trial

    def _start(self, trial: R.Trial) -> None:
        """Start a trial's trainer process: its config checked here, the process started by a
        thread of its own (a start takes seconds: Python, torch, the data; several start at once)."""
        rec = self.record
        resume = trial.run_dir if trial.status in RESUMABLE and trial.run_dir and _has_checkpoint(trial.run_dir) else None
        overrides = list(rec.overrides) + trial.overrides()
        if rec.parallel > 1 and not any(o.startswith("train.num_threads=") for o in overrides):
            overrides.append(f"train.num_threads={max(1, self.cores // rec.parallel)}")  # the cores split between trials
        live = _Live(trial, optuna_trial=self._pending_optuna if trial.optuna is not None else None)
        self._pending_optuna = None
        try:
            cfg = load_config(rec.preset, overrides, [Path(d) for d in rec.extra_dirs])
        except ConfigError as e:
            return self._end(live, "failed", first_line(e))
        spec = spec_for(cfg, runs_dir=rec.runs_dir, preset=cfg.name, resume=resume)
        self._starting[trial.number] = (live, self._pool.submit(spawn, spec), resume)
        return None

    def _started(self) -> None:
        """Trials whose trainer answered: running (followed from now on), or failed with its one line."""
        for number, (live, future, resume) in list(self._starting.items()):
            if not future.done():
                continue
            del self._starting[number]
            trial, rec = live.trial, self.record
            try:
                proc, answer = future.result()
            except OSError as e:
                self._end(live, "failed", first_line(e))
                continue
            if not answer.get("ready"):
                self._end(live, "failed", str(answer.get("error") or "the trainer did not start"))
                continue
            trial.run_dir, trial.pid, trial.started, trial.ended = str(answer["run_dir"]), int(answer["pid"]), time.time(), None
            trial.status, trial.reason = "running", ""
            live.proc = proc
            if resume:  # epochs.jsonl already holds the earlier epochs: read on from its end
                live.offset = _size(Path(trial.run_dir) / "epochs.jsonl")
            R.write_json(Path(trial.run_dir) / R.TRIAL_FILE, {"sweep": str(self.sweep_dir.resolve()), "number": trial.number,
                                                              "params": trial.params, "metric": rec.metric})
            self._live[number] = live
            self.say(f"trial {number} {'resumed' if resume else 'started'}: {_params(trial.params)} ({trial.run_dir})")
            self._save()

    def _adopt(self) -> None:
        """A resumed sweep: trials recorded as running are read again from their epochs.jsonl (the
        record may be behind: the driver was killed), then settled from their summary.json, followed
        again when their trainer is still alive, or else resumed (interrupted)."""
        for t in self.record.trials:
            if t.status != "running":
                continue
            live = _Live(t, replaying=True)
            t.values, t.epoch, t.value = [], 0, None
            self._read_epochs(live)
            live.replaying = False
            summary = _summary(t)
            if summary is not None:
                self._read_epochs(live)  # the last epoch may have come since the read above
                self._end(live, _final(summary, ""), str(summary.get("reason", "")), summary)
            elif t.pid and pid_alive(t.pid):
                self._live[t.number] = live
                self.say(f"trial {t.number} adopted: still training, {t.epoch} epoch(s) done ({t.run_dir})")
            else:
                t.status, t.reason = "interrupted", "its trainer was gone when the sweep resumed"

    def _poll(self) -> None:
        for live in list(self._live.values()):
            self._read_epochs(live)
            t = live.trial
            summary = _summary(t)
            if summary is not None:  # the summary is written after the last epoch: that epoch may have come since the read
                self._read_epochs(live)
                self._end(live, _final(summary, live.asked_stop), str(summary.get("reason", "")), summary)
                continue
            running = live.proc.poll() is None if live.proc is not None else pid_alive(t.pid)
            if not running:
                live.gone_since = live.gone_since or time.monotonic()
                if time.monotonic() - live.gone_since > 2.0:  # a last look for the summary first
                    self._end(live, "failed", "the trainer process ended without a summary (see its trainer.log)")

    def _read_epochs(self, live: _Live) -> None:
        path = Path(live.trial.run_dir) / "epochs.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(live.offset)
                data = f.read()
        except OSError:
            return
        live.offset += len(data)
        *lines, live.pending = (live.pending + data).split(b"\n")
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("event") == "EpochMetrics":
                self._epoch(live, rec)

    def _epoch(self, live: _Live, rec: dict) -> None:
        t, sweep = live.trial, self.record
        value = metric_value(rec, sweep.metric)
        t.epoch = int(rec.get("epoch", t.epoch)) + 1
        t.values.append(value)
        if sweep.better(value, t.value):
            t.value = value
        if live.replaying:  # epochs read again after a restart: said and judged already
            return
        self.say(f"trial {t.number} epoch {t.epoch}: {sweep.metric} {_num(value)}")
        if value is not None and not live.asked_stop:
            why = self._prune_reason(live, value)
            if why:
                self._ask_stop(live, "pruned", why)
        self._save()

    def _prune_reason(self, live: _Live, value: float) -> str:
        rec, t = self.record, live.trial
        if rec.prune != "median":
            return ""
        if live.optuna_trial is not None:  # Optuna's MedianPruner decides
            live.optuna_trial.report(value, t.epoch)
            return f"Optuna's MedianPruner at epoch {t.epoch}" if live.optuna_trial.should_prune() else ""
        k = t.epoch - 1
        others = [o.values[k] for o in rec.trials if o is not t and len(o.values) > k and o.values[k] is not None]
        if len(others) < MIN_OTHERS:
            return ""
        median = statistics.median(others)
        if rec.better(median, value):
            return f"{rec.metric} {_num(value)} worse than the median {_num(median)} of {len(others)} trials at epoch {t.epoch}"
        return ""

    def _ask_stop(self, live: _Live, as_status: str, why: str) -> None:
        """Stop a running trial through its endpoint (Stop: it validates, saves, ends early_stopped)."""
        live.asked_stop, live.trial.reason = as_status, f"{as_status}: {why}"
        self.say(f"trial {live.trial.number} {as_status}: {why}")
        _send(live.trial.run_dir, C.Stop(f"sweep: {as_status}"))

    def _end(self, live: _Live, status: str, reason: str, summary: dict | None = None) -> None:
        t, rec = live.trial, self.record
        if summary is not None and rec.metric == (summary.get("best") or {}).get("metric"):
            best = (summary.get("best") or {}).get("value")
            if isinstance(best, int | float) and rec.better(best, t.value):
                t.value = float(best)
        t.status, t.ended = status, time.time()
        t.reason = t.reason if status == "pruned" and t.reason else reason
        self._live.pop(t.number, None)
        self._tell(live, status)
        mark = " *best" if rec.best() is t else ""
        self.say(f"trial {t.number} {status}: {rec.metric} {_num(t.value)}{mark}" + (f" ({t.reason})" if status == "failed" else ""))
        self._save()

    def _stop_all(self, how: str) -> None:
        """Interrupt every running trial (each saves a checkpoint and ends ``interrupted``: a
        resumed sweep continues it) and wait a little for them to end."""
        self.record.state = how
        for _live, future, _resume in list(self._starting.values()):  # a trial starting now: let it answer first
            with contextlib.suppress(Exception):
                future.result(timeout=STOP_GRACE)
        self._started()
        for live in self._live.values():
            _send(live.trial.run_dir, C.Interrupt(f"sweep {how}"))
        deadline = time.monotonic() + STOP_GRACE
        while self._live and time.monotonic() < deadline:
            self._poll()
            time.sleep(0.2)
        for live in list(self._live.values()):  # still going: recorded as running, adopted by --resume
            self.say(f"trial {live.trial.number} did not end within {STOP_GRACE:.0f}s: left running ({live.trial.run_dir})")

    def _handle_requests(self) -> None:
        while True:
            try:
                action, number, params, count = self._requests.get_nowait()
            except queue.Empty:
                return
            live = self._live.get(number) if number is not None else None
            if action in ("prune", "stop") and live is not None:
                self._ask_stop(live, "pruned" if action == "prune" else "stopped", "by hand")
            elif action == "add" and params is not None:
                self.record.trials.append(R.Trial(number=len(self.record.trials), params=dict(params)))
                self.record.trials_planned += 1
            elif action == "extend" and count > 0:
                self._extend(count)
            elif action == "stop":
                self.record.state = "stopped"
            self._save()

    def _extend(self, count: int) -> None:
        rec = self.record
        rec.trials_planned += count
        if rec.method == "random":
            more = self.space.plan("random", len(rec.trials) + count, rec.seed)[len(rec.trials):]
            rec.trials += [R.Trial(number=len(rec.trials) + i, params=p) for i, p in enumerate(more)]

    # ------------------------------------------------------------------ Optuna

    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens

        storage_text, _, name = self.record.storage.rpartition("#")
        if storage_text.startswith(("sqlite:", "postgresql:", "mysql:")):
            storage = storage_text
        else:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            storage = JournalStorage(JournalFileBackend(storage_text))
        pruner = optuna.pruners.MedianPruner(n_startup_trials=MIN_OTHERS) if self.record.prune == "median" \
            else optuna.pruners.NopPruner()
        return optuna.create_study(study_name=name, storage=storage, load_if_exists=True, pruner=pruner,
                                   sampler=optuna.samplers.TPESampler(seed=self.record.seed),
                                   direction="maximize" if self.record.mode == "max" else "minimize")

    def _distributions(self) -> dict:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {k: CategoricalDistribution(list(v)) for k, v in self.space.grid.items()}
        for k, d in self.space.random.items():
            if isinstance(d, Choice):
                out[k] = CategoricalDistribution(list(d.values))
            elif isinstance(d, Range) and d.integer:
                out[k] = IntDistribution(int(d.low), int(d.high), log=d.log)
            else:
                out[k] = FloatDistribution(d.low, d.high, log=d.log)
        return out

    def _study_full(self) -> bool:
        """Every trial of the study (all machines) planned: ``trials_planned`` asked in all."""
        return self._study is not None and len(self._study.trials) >= self.record.trials_planned

    def _tell(self, live: _Live, status: str) -> None:
        t = live.trial
        if self._study is None or t.optuna is None:
            return
        import optuna

        state = {"pruned": optuna.trial.TrialState.PRUNED, "failed": optuna.trial.TrialState.FAIL}.get(status)
        with contextlib.suppress(Exception):  # an already finished Optuna trial (a resumed sweep) is not told twice
            if state is None and t.value is not None and math.isfinite(t.value):
                self._study.tell(t.optuna, t.value)
            else:
                self._study.tell(t.optuna, state=state or optuna.trial.TrialState.FAIL)

    def _save(self) -> None:
        with self._lock:
            R.save(self.sweep_dir, self.record)
        self.changed()


def _params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def _summary(t: R.Trial) -> dict | None:
    """The trial's summary.json written since it (re)started (an older one is the interrupted run's)."""
    path = Path(t.run_dir) / "summary.json" if t.run_dir else None
    try:
        if path is None or (t.started and path.stat().st_mtime < t.started - 1):
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") in R.TRIAL_STATUSES else None


def _final(summary: dict, asked: str) -> str:
    status = str(summary.get("status"))
    return asked if asked and status in ("early_stopped", "completed") else status


def _send(run_dir: str, command: C.Command) -> bool:
    ptr, _ = probe(Path(run_dir))
    if ptr is None:
        return False
    try:
        conn = Connection(ptr.socket, viewer="sweep")
    except EndpointError:
        return False
    try:
        conn.send(command)
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _has_checkpoint(run_dir: str) -> bool:
    folder = Path(run_dir) / "checkpoints"
    return folder.is_dir() and any(folder.glob("*.pt"))
