"""The run as a place: what every run has, whichever loop trains it (issue 22; STYLE.md "One run
layer, any loop").

A :class:`RunPlace` owns one run's directory and record (:class:`tui_train.core.run.runlog.RunLog`),
its status and the cause of each change, its inbox of commands applied at step boundaries (with a
pause that waits there), the acknowledgement and the interventions record of every command,
checkpoints on request and what could not be saved, the system sampler, and the summary. It knows
no loop: the built-in :class:`tui_train.core.train.engine.Trainer` is its first client, the any-loop
API (:mod:`tui_train.loop`: ``tui_train.init``) its second. A client gives it

- its position and live values (a :class:`tui_train.core.state.TrainingState`: step, epoch, base LR,
  the interventions record), and
- what a command's effect is in that loop (``carry_out``), what it cannot honour (``refuse``), and
  the bytes of a checkpoint (``save``'s writer);

the sync strategy (:mod:`tui_train.core.run.sync`) decides how several processes agree.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.contract import Sink
from tui_train.core.errors import ConfigError, first_line
from tui_train.core.length import Length
from tui_train.core.run import control, system
from tui_train.core.run.checkpoints import checkpoint_name, clean_stale, prune, write_atomic
from tui_train.core.run.runlog import RunLog, new_run_dir
from tui_train.core.run.sync import Local, Sync, take
from tui_train.core.state import TrainingState

SLOT_CHECKPOINTS = ("best", "last", "periodic")
"""Checkpoints a later save of the same kind supersedes: a failed one stops counting as not saved
once a later one is written (best.pt then holds the best, the newest periodic one is there). Every
other failed save (manual, interrupt, early_stop, fork...) stays in summary.json's ``not_saved``."""

END_CHECKPOINTS = {"early_stopped": "early_stop", "interrupted": "interrupt", "preempted": "preempt"}
"""The checkpoint a run that ends with this status saves at its last step (besides ``last.pt``)."""

CarryOut = Callable[[C.Command, control.Decision, str], "str | None"]
"""A client's effect of a decided command (save, validate, roll back...): returns the
acknowledgement's detail (None: no acknowledgement, e.g. a save that failed and said why)."""


class EndRun(Exception):
    """Raised at a step boundary to leave the loop; ``status`` says how the run ends."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class NoLog:
    """The run log of a rank > 0: rank 0 writes the run directory, the other ranks write nothing."""

    summary_written = True
    lost: dict = {}
    seq = 0
    listeners: list = []

    def open(self, config_toml: str) -> None: ...
    def write(self, event: E.Event) -> None: ...
    def write_summary(self, summary: dict) -> None: ...
    def write_traceback(self, text: str) -> str:
        return ""
    def close(self) -> None: ...


class RunPlace:
    """One run's place (see the module docstring). Thread-safe: :meth:`submit`, :meth:`emit`
    (the sampler's thread emits too) and :attr:`stop`; everything else is the training thread's."""

    def __init__(self, sync: Sync | None = None):
        self.sync: Sync = sync or Local()
        """How the run's processes agree (:class:`Local`: one process)."""
        self.state = TrainingState()
        """The client's position and live values (replaced when it prepares)."""
        self.run_dir: Path | None = None
        """The run directory, once made (or reopened)."""
        self.log: RunLog | NoLog | None = None
        """The run directory's files (rank 0's; :class:`NoLog` on the other ranks), once open."""
        self.status = "starting"
        """The run's status, as last announced (see core.events.STATUSES)."""
        self.status_reason = ""
        """Why (the last StatusChanged's reason)."""
        self.status_cause = ""
        """What changed it: 'start', 'user', 'nonfinite', 'end', 'failure'..."""
        self.inbox = control.CommandQueue()
        """Commands waiting for the next step boundary, with their origin."""
        self.sink: Sink = lambda e: None
        """Where events go after the run log (the viewers; never blocks)."""
        self.stop = threading.Event()
        """A stop asked from outside the commands (a signal, the TUI's worker): the run ends
        ``interrupted`` at the next step boundary (``preempted`` when it is a core.run.slurm.Stop
        the save signal set: :meth:`end_asked`)."""
        self.stop_agreed = False
        """The stop as every rank saw it at the last boundary (one process: as :attr:`stop` then)."""
        self.interrupted = ""
        """The reason of an Interrupt command, once applied (the run ends at the boundary)."""
        self.save_error = ""
        """Why the last checkpoint was not saved ('' when it was)."""
        self.summarize: Callable[[str, str, dict], dict] = lambda status, reason, test: {"status": status, "reason": reason}
        """The client's summary.json for (status, reason, test metrics)."""
        self._not_saved: dict[str, dict] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the directory and record

    def make_dir(self, runs_dir: Path, name: str, run_dir: Path | None = None) -> bool:
        """Rank 0 creates the run directory (``run_dir`` when given, else a new
        ``<runs_dir>/<stamp>-<name>``); every rank learns it. True when this call created it.
        A folder that cannot be made is bad input: ConfigError, one line, nothing half-made."""
        created = False
        if self.sync.is_main:
            try:
                if run_dir is not None:
                    created = not Path(run_dir).exists()
                    Path(run_dir).mkdir(parents=True, exist_ok=True)
                    self.run_dir = Path(run_dir)
                else:
                    self.run_dir = new_run_dir(Path(runs_dir), name)
                    created = True
            except OSError as e:
                where = run_dir if run_dir is not None else runs_dir
                raise ConfigError(f"runs directory {where}: cannot create a run directory there "
                                  f"({e.strerror or type(e).__name__}: {e.filename or where})") from None
        self.run_dir = Path(self.sync.broadcast_text(str(self.run_dir) if self.sync.is_main else ""))
        return created

    @property
    def ckpt_dir(self) -> Path:
        """<run_dir>/checkpoints."""
        assert self.run_dir is not None
        return self.run_dir / "checkpoints"

    def open(self, config_toml: str, *, created: bool = False) -> None:
        """Open the record: checkpoints/ (stale temporaries removed), config.toml, the JSONL files.
        On failure nothing half-made stays (a directory this run ``created`` is removed) and an
        OSError becomes a one-line ConfigError."""
        assert self.run_dir is not None
        self.log = log = RunLog(self.run_dir) if self.sync.is_main else NoLog()
        try:
            if self.sync.is_main:
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
                clean_stale(self.ckpt_dir)
            log.open(config_toml)
        except BaseException as e:  # a full disk, no permission, or a signal
            log.close()
            self.log = None
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            if not isinstance(e, OSError):
                raise
            raise ConfigError(f"run directory {self.run_dir}: cannot write there "
                              f"({e.strerror or type(e).__name__}: {e.filename or self.run_dir})") from None

    def close(self) -> None:
        """Close the record (later events reach the sink only) and leave the other ranks."""
        if self.log is not None:
            self.log.close()
        self.sync.close()

    def emit(self, event: E.Event) -> None:
        """Record an event, then hand it to the sink (never blocks). Rank 0 reports for the run;
        the other ranks report nothing. Safe from any thread: one event at a time, so seqs in the
        files and the stream stay in order."""
        if not self.sync.is_main:
            return
        with self._lock:
            if self.log is not None:
                self.log.write(event)
            self.sink(event)

    # ------------------------------------------------------------------ status and commands

    def set_status(self, status: str, reason: str, cause: str) -> None:
        """Announce a status (StatusChanged at the current step)."""
        self.status, self.status_reason, self.status_cause = status, reason, cause
        self.emit(E.StatusChanged(status=status, reason=reason, step=self.state.step, cause=cause))

    def submit(self, command: C.Command, origin: str = "") -> None:
        """Queue a command for the next step boundary; never blocks."""
        self.inbox.put((command, origin))

    def reject(self, cmd: C.Command, reason: str, origin: str = "") -> None:
        """Acknowledge ``cmd`` as refused, with the reason."""
        self.emit(E.CommandRejected(command=cmd.name, reason=reason, step=self.state.step, origin=origin))

    def apply(self, cmd: C.Command, origin: str, *, group: Mapping[str, Any], optimizer: Any, carry_out: CarryOut,
              refuse: Callable[[C.Command], str] = lambda cmd: "", good_step: int | None = None,
              length: Length | None = None) -> None:
        """Decide what ``cmd`` does (:func:`core.run.control.decide`, on the live values, the
        optimizer's first param ``group`` and the run's ``length``: None when the loop's own), carry
        it out and acknowledge it either way; record it in the interventions; a change of the pending
        breakpoints is announced (BreakpointsChanged). ``refuse(cmd)``: why this loop cannot honour
        it ('' when it can). Every command of a run passes here, at a step boundary; a failing one
        is reported and answered, never dropped."""
        st = self.state
        try:
            why = refuse(cmd)
            if why:
                return self.reject(cmd, why, origin)
            d = control.decide(cmd, self.status, st, group, good_step=good_step, length=length,
                               nonfinite_pause=self.status == "paused" and self.status_cause == "nonfinite")
            if d.rejected:
                return self.reject(cmd, d.rejected, origin)
            if d.effect == "interrupt":
                self.interrupted = f"stop requested ({getattr(cmd, 'reason', '') or 'user'})"
                detail = d.applied
            else:
                detail = carry_out(cmd, d, origin)
            if optimizer is not None:
                control.write_optimizer(optimizer, d.optimizer)
            for name, value in d.changes.items():
                setattr(st, name, value)
            if d.status and not d.status_after_ack:
                self.set_status(*d.status)
            if detail is not None:
                st.history.append({"step": st.step, "epoch": st.epoch, "command": cmd.name, "detail": detail, "origin": origin})
                self.emit(E.CommandApplied(command=cmd.name, detail=detail, step=st.step, key=d.key, old=d.old, new=d.new,
                                           origin=origin))
            if d.status and d.status_after_ack:
                self.set_status(*d.status)
            if "breakpoints" in d.changes:
                self.emit(E.BreakpointsChanged(step=st.step, pending=tuple(dict(b) for b in st.breakpoints)))
        except EndRun:
            raise
        except Exception as e:  # noqa: BLE001 - a failing command is reported, never silently dropped
            self.emit(E.RunError(message=f"{cmd.name} failed: {type(e).__name__}: {e}", step=st.step))
            # and answered: a viewer waiting for its acknowledgement (ctl, the LR range test's screen) hears why
            self.reject(cmd, f"failed: {type(e).__name__}: {e}", origin)
        return None

    def boundary(self, apply: Callable[[C.Command, str], None], held: Callable[[], contextlib.AbstractContextManager]
                 = contextlib.nullcontext) -> None:
        """A step boundary: the commands every rank applies now go to ``apply``; while the run is
        paused, wait here (inside ``held()``: the client's clock stopped) applying what comes;
        then raise :class:`EndRun` when a stop was asked (``interrupted``) or an early stop was
        decided (``early_stopped``)."""
        self._exchange(apply)
        if self.status == "paused":
            with held():
                while self.status == "paused" and not self.stop_agreed and not self.interrupted:
                    self._exchange(apply, wait=0.1)
        if self.stop_agreed or self.interrupted:
            raise self.end_asked()
        if self.status == "stopping":
            raise EndRun("early_stopped", self.status_reason)

    def end_asked(self, where: str = "") -> EndRun:
        """How a stop asked from outside (or an Interrupt command) ends the run: ``preempted`` when
        the save signal reached any rank (core.run.slurm.Stop), else ``interrupted``. Every rank
        asks at the same boundary (on several it is one collective, so every rank ends alike)."""
        mine = float(bool(getattr(self.stop, "preempted", False)) and self.stop.is_set())
        asked = self.stop_agreed or self.sync.solo  # several ranks: only where all of them saw the stop
        if asked and self.sync.all_sum([mine])[0] > 0:
            return EndRun("preempted", "preempted: the save signal" + where)
        return EndRun("interrupted", (self.interrupted or "stop requested") + where)

    def _exchange(self, apply: Callable[[C.Command, str], None], wait: float = 0.0) -> None:
        """One process: until the inbox is empty, so that what was queued while a command applied
        (a Stop behind the Resume that ended a pause, a Pause sent on an acknowledgement) applies
        before the next step, not after it. Several ranks: one sync (the next boundary takes the rest)."""
        while True:
            pending, stop = self.sync.exchange(self.inbox, self.stop, wait)
            self.stop_agreed = self.stop_agreed or stop
            if stop:
                self.stop.set()
            for cmd, origin in pending:
                apply(cmd, origin)
            if not pending or not self.sync.solo:
                return
            wait = 0.0

    def reject_pending(self, reason: str = "the run has ended") -> None:
        """Acknowledge every command still queued as refused (at the end: none goes unanswered)."""
        for cmd, origin in take(self.inbox):  # rank 0's inbox (the other ranks' is empty): no collective
            self.reject(cmd, reason, origin)

    # ------------------------------------------------------------------ checkpoints

    def save(self, reason: str, writer: Callable[[], Callable[[IO[bytes]], None] | str | None], *, keep_last: int = 0) -> Path | None:
        """Save a checkpoint ``<run_dir>/checkpoints/<name>`` atomically. ``writer()`` returns what
        fills the file, or a str saying why it cannot be written (non-finite weights), or None on a
        rank that writes nothing. A failure is reported (RunError), remembered for summary.json's
        ``not_saved`` (:meth:`not_saved`) and in :attr:`save_error`; training goes on. Periodic
        checkpoints beyond ``keep_last`` are pruned."""
        st = self.state
        try:
            made = writer()
            if isinstance(made, str):
                self.not_written(reason, made)
                return None
            if made is None:
                return None
            path = write_atomic(self.ckpt_dir / checkpoint_name(st.step, reason), made)
        except Exception as e:  # noqa: BLE001 - disk full is RuntimeError (torch.save), permissions OSError
            self.not_written(reason, first_line(e, typed=True))
            return None
        self.save_error = ""
        if reason in SLOT_CHECKPOINTS:
            self._not_saved.pop(reason, None)
        if keep_last:
            prune(self.ckpt_dir, keep_last)
        self.emit(E.CheckpointSaved(path=str(path.resolve()), step=st.step, epoch=st.epoch, reason=reason))
        return path

    def not_written(self, reason: str, why: str) -> None:
        """A checkpoint that could not be written: the RunError now, the entry for ``not_saved``."""
        st = self.state
        self.save_error = why
        self.emit(E.RunError(message=f"checkpoint ({reason}) not saved: {why}", step=st.step))
        key = reason if reason in SLOT_CHECKPOINTS else f"{reason}#{len(self._not_saved)}@{st.step}"
        self._not_saved.pop(key, None)  # the latest failure of a kind goes last
        self._not_saved[key] = {"kind": "checkpoint", "checkpoint": reason, "file": checkpoint_name(st.step, reason),
                                "step": st.step, "epoch": st.epoch, "error": why}

    def not_saved(self) -> list[dict]:
        """What this run was meant to write and could not, so far: checkpoints (``kind``
        'checkpoint': which, its file name, step, epoch, error) and record files (``kind`` 'record':
        core.run.runlog.RunLog.lost). summary.json's ``not_saved``."""
        log = self.log
        return [dict(x) for x in self._not_saved.values()] + [dict(x) for x in (log.lost.values() if log is not None else ())]

    # ------------------------------------------------------------------ the sampler and the end

    @contextlib.contextmanager
    def sampling(self, device: Any, interval: float) -> Iterator[None]:
        """The system sampler (rank 0, a daemon thread) while the block runs; off when
        ``interval`` <= 0, and said once (a RunNote) when psutil is missing or refuses."""
        sampler = None
        if self.sync.is_main and interval > 0:
            try:
                sampler = system.SystemSampler(self.emit, lambda: self.state.step, device, interval)
            except ImportError as e:
                self.emit(E.RunNote(message=f"system panel: off ({e}; pip install psutil)", step=self.state.step))
            except Exception as e:  # noqa: BLE001 - psutil refused (a restricted /proc): the side panel must not fail the run
                self.emit(E.RunNote(message=f"system panel: off ({type(e).__name__}: {e})", step=self.state.step))
            else:
                sampler.start()
        try:
            yield
        finally:
            if sampler is not None:
                sampler.stop()

    def write_summary(self, summary: dict) -> None:
        """summary.json (atomic)."""
        if self.log is not None:
            self.log.write_summary(summary)

    def fail(self, message: str, tb: str, checkpoint: Callable[[], object] | None = None) -> dict:
        """The loop raised: traceback.txt, a last checkpoint (``checkpoint``, best effort), the
        summary, ``failed``, RunFailed. Returns the summary."""
        tb_path, summary = "", {}
        if self.run_dir is not None:
            log = self.log or RunLog(self.run_dir)
            tb_path = log.write_traceback(tb)
            if checkpoint is not None:
                try:
                    checkpoint()
                except Exception:  # noqa: BLE001 - best effort; the failure itself is reported below
                    pass
            summary = self.summarize("failed", message, {})
            try:
                log.write_summary(summary)
            except OSError:
                pass
        self.set_status("failed", message, "failure")
        self.emit(E.RunFailed(message=message, traceback=tb, traceback_path=tb_path, summary=summary))
        return summary

    def abandon(self, reason: str) -> None:
        """End a run that never began training (a signal while it was starting): summary.json says
        ``interrupted`` with ``reason``, and the record is closed."""
        if self.log is None or self.log.summary_written:
            return
        try:
            self.log.write_summary(self.summarize("interrupted", reason, {}))
        except OSError:  # best effort on the way out of a signal: the exit line says it
            pass
        self.log.close()

    def emergency_summary(self, status: str, reason: str) -> None:
        """Write summary.json from another thread when the loop cannot finish in time (the
        headless watchdog after SIGTERM/SIGHUP). Touches no model state."""
        if self.log is None or self.log.summary_written:
            return
        try:
            self.log.write_summary(self.summarize(status, reason + " (watchdog: the trainer did not stop in time)", {}))
        except OSError:
            pass
