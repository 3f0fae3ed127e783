"""Waiting for a run: ``tui-train ctl wait --for EXPR | --status S`` (scripts and agents), and the
run's pending breakpoints as its files say (``ctl breakpoints``).

A :class:`Condition` is a metric condition in ``train.target``'s grammar (core.target:
``val_accuracy >= 0.98``), checked on every EpochMetrics (its train and val metrics) and
ValidationMetrics, or a status (``paused``, ``completed``...), matched by the run's status. :func:`wait`
reads the run directory first (the run directory is the truth: a condition that already held, or a
status the run has now, answers at once), then, for a live run, follows the endpoint's event stream
from the seq its welcome names, until the condition holds or the run ends. It works on finished runs
(their files alone) and live ones alike. What it answers is an exit code and one line:
:data:`HELD` (0), :data:`ENDED` (1: the run ended, or is not live, without it), :data:`TIMED_OUT` (124).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tui_train.core import events as E
from tui_train.core.errors import ConfigError
from tui_train.core.rundir.history import read_records, to_event
from tui_train.core.target import Target, parse_target

HELD, ENDED, TIMED_OUT = 0, 1, 124
"""Exit codes of ``ctl wait``: the condition holds; the run ended (or is not live) without it; --timeout passed."""

_WATCHED = ("StatusChanged", "EpochMetrics", "ValidationMetrics", "RunFinished", "RunFailed", "RunStarted", "BreakpointsChanged")


@dataclass(frozen=True)
class Condition:
    """What ``ctl wait`` waits for: a metric condition or a status (one of them)."""

    target: Target | None = None
    """The metric condition (``--for``), or None."""
    status: str = ""
    """The status (``--status``), or ''."""

    @classmethod
    def parse(cls, expression: str | None, status: str | None) -> Condition:
        """From ``--for`` and ``--status`` (exactly one); ValueError with one line otherwise."""
        if bool(expression) == bool(status):
            raise ValueError("ctl wait: give one of --for EXPR (e.g. 'val_accuracy >= 0.98') or --status S (e.g. paused)")
        if status:
            if status not in E.STATUSES:
                raise ValueError(f"ctl wait --status {status!r}: not a status (allowed: {', '.join(E.STATUSES)})")
            return cls(status=status)
        try:
            return cls(target=parse_target(str(expression), where="ctl wait --for"))
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @property
    def text(self) -> str:
        """What is waited for, in words."""
        return self.target.text if self.target is not None else f"status {self.status}"

    def holds(self, ev: E.Event) -> str | None:
        """The line to print when ``ev`` makes the condition hold, else None."""
        t = self.target
        if t is None:
            status = ev.status if isinstance(ev, E.StatusChanged | E.RunFinished) else "failed" if isinstance(ev, E.RunFailed) else ""
            if status == self.status:
                reason = getattr(ev, "reason", "") or getattr(ev, "message", "")
                return f"status {status}" + (f" ({reason})" if reason else "") + (f" at step {ev.step}" if hasattr(ev, "step") else "")
            return None
        if isinstance(ev, E.EpochMetrics):
            metrics, where = (ev.train if t.split == "train" else ev.val), f"epoch {ev.epoch + 1}, step {ev.step}"
        elif isinstance(ev, E.ValidationMetrics) and t.split == "val":
            metrics, where = ev.metrics, f"validation at step {ev.step}"
        else:
            return None
        value = t.reached(metrics)
        return None if value is None else f"{t.metric} {value:.4g} {t.op} {t.value:g} ({where})"


def final_status(run_dir: Path) -> str:
    """The status summary.json says the run ended with ('' when it has none: live, or killed)."""
    try:
        status = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8")).get("status", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return status if isinstance(status, str) else ""


def history(run_dir: Path, upto_seq: int | None = None) -> list[E.Event]:
    """The run's status, epoch, validation and breakpoint events from its files (no step metrics), in order."""
    out = []
    for rec in read_records(Path(run_dir), upto_seq, skip_steps=True):
        if rec.get("event") in _WATCHED:
            ev = to_event(rec)
            if ev is not None:
                out.append(ev)
    return out


def read_breakpoints(run_dir: Path) -> tuple[dict, ...]:
    """The run's pending breakpoints as its files say ({id, spec} each): the latest RunStarted's or
    BreakpointsChanged's (a finished run's are those it ended with)."""
    pending: tuple = ()
    for ev in history(run_dir):
        if isinstance(ev, E.RunStarted):
            pending = ev.breakpoints
        elif isinstance(ev, E.BreakpointsChanged):
            pending = ev.pending
    return tuple(pending)


def wait(run_dir: Path, condition: Condition, timeout: float | None = None, *, connect=None) -> tuple[int, str]:
    """Block until ``condition`` holds for the run in ``run_dir`` or the run ends (or ``timeout``
    seconds pass); (exit code, one line). ``connect(run_dir)``: the live run's
    core.run.endpoint.Connection, or None when it is not live (default: probe its endpoint)."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    conn = (connect or _connect)(run_dir)
    try:
        seen = history(run_dir, conn.seq if conn is not None else None)
        for ev in seen:
            line = condition.holds(ev) if condition.target is not None else None
            if line:
                return HELD, line
        status = conn.status if conn is not None else final_status(run_dir) or _last_status(seen)
        if condition.target is None and status == condition.status:
            return HELD, f"status {status}"
        if conn is None:
            return ENDED, _ended(run_dir, condition, status)
        return _follow(conn, run_dir, condition, deadline, timeout)
    finally:
        if conn is not None:
            conn.close()


def _follow(conn, run_dir: Path, condition: Condition, deadline: float | None, timeout: float | None) -> tuple[int, str]:
    """The live stream, after the files: each event checked until the condition holds, the run ends or the deadline."""
    for ev, _, _ in conn.events(timeout=0.2):
        if ev is not None:
            line = condition.holds(ev)
            if line:
                return HELD, line
            if isinstance(ev, E.RunFinished | E.RunFailed):
                return ENDED, _ended(run_dir, condition, ev.status if isinstance(ev, E.RunFinished) else "failed")
        if deadline is not None and time.monotonic() >= deadline:
            return TIMED_OUT, f"{run_dir}: no {condition.text} within {timeout:g} s (the run goes on)"
    status = final_status(run_dir)  # the trainer went away: its files say how the run ended
    if condition.target is None and status == condition.status:
        return HELD, f"status {status}"
    return ENDED, _ended(run_dir, condition, status)


def _last_status(events: list[E.Event]) -> str:
    return next((ev.status for ev in reversed(events) if isinstance(ev, E.StatusChanged)), "")


def _ended(run_dir: Path, condition: Condition, status: str) -> str:
    how = f"ended {status}" if status in E.FINAL_STATUSES else f"is not live ({status or 'no summary'})"
    return f"{run_dir}: the run {how} without {condition.text}"


def _connect(run_dir: Path):
    from tui_train.core.run.endpoint import Connection, EndpointError, probe

    ptr, _ = probe(run_dir)
    if ptr is None:
        return None
    try:
        return Connection(ptr.socket, viewer="ctl")
    except EndpointError:  # it ended between the probe and the hello: its files say how
        return None
