"""Breakpoints: pause the run where a person asks to look (``ctl pause-at epoch=5``, the ``p`` dialog).

A breakpoint is written as one of

- ``epoch=K``: paused once K epochs are done, after that epoch's validation;
- ``next-epoch``: "pause after this epoch" (``epoch=K`` for the epoch under way, resolved when added);
- ``step=N``: paused once N optimizer steps are done;
- ``plateau=K``: paused at a validation after which the monitored metric (``early_stopping.monitor``)
  has not improved for K validations;
- a metric condition in ``train.target``'s grammar (core.target): ``val_accuracy >= 0.98``, checked
  where the target is (each scheduled validation; ``train_*`` at each epoch's end).

A run keeps its pending breakpoints in its training state as ``{id, spec}`` (ids count from 1 and
are never reused), so checkpoints keep them and a resume goes on with them. One that is hit pauses
the run (``StatusChanged(status='paused', cause='breakpoint')``) and is removed: one-shot. Pure:
:func:`add` and :func:`clear` are what :func:`core.run.control.decide` asks; :func:`due_at_step`
and :func:`hits_at_epoch_end` what the loop asks (core.run.breakpoint_watch).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from tui_train.core.errors import ConfigError
from tui_train.core.state import TrainingState
from tui_train.core.target import Target, parse_target

MAX_BREAKPOINTS = 32
"""Breakpoints a run holds pending at most."""

MAX_SPEC_CHARS = 100
"""Characters of one breakpoint as written."""

FORMS = "epoch=K, step=N, next-epoch, plateau=K, or a metric condition such as 'val_accuracy >= 0.98'"
"""What may be written, for messages."""

_COUNTED = re.compile(r"^\s*(epoch|step|plateau)\s*=\s*([^\s]+)\s*$")


class BreakpointError(ValueError):
    """A breakpoint that cannot be set: ``str(err)`` is one line saying why."""


@dataclass(frozen=True)
class Breakpoint:
    """A parsed breakpoint."""

    kind: str
    """'epoch', 'step', 'plateau' or 'metric'."""
    at: int = 0
    """Epochs done, steps done, or validations without improvement (0 for a metric)."""
    target: Target | None = None
    """The metric condition (kind 'metric')."""

    @property
    def spec(self) -> str:
        """As written back: 'epoch=3', 'val_accuracy >= 0.98'."""
        return self.target.text if self.target is not None else f"{self.kind}={self.at}"


def parse(text: str, task: str | None = None, *, epoch: int | None = None) -> Breakpoint:
    """``text`` as a :class:`Breakpoint` (BreakpointError, one line, when it is none). ``task``
    limits the metric names (None: any task's); ``epoch``, the run's current epoch (0-based),
    resolves ``next-epoch``."""
    text = str(text).strip()
    if not text or len(text) > MAX_SPEC_CHARS:
        raise BreakpointError(f"a breakpoint is {FORMS} (at most {MAX_SPEC_CHARS} characters), got {text[:40]!r}")
    if text == "next-epoch":
        if epoch is None:
            raise BreakpointError("next-epoch: the run's epoch is not known yet")
        return Breakpoint("epoch", epoch + 1)
    m = _COUNTED.match(text)
    if m is not None:
        kind, number = m.groups()
        try:
            at = int(number)
        except ValueError:
            raise BreakpointError(f"{kind}={number}: a whole number, e.g. {kind}=3") from None
        if at < 1:
            raise BreakpointError(f"{kind}={at}: at least 1")
        return Breakpoint(kind, at)
    try:
        target = parse_target(text, task, where="breakpoint")
    except ConfigError as e:
        raise BreakpointError(f"{e} (or {FORMS.rsplit(', or', 1)[0]})") from None
    assert target is not None  # text is not empty
    return Breakpoint("metric", target=target)


def add(state: TrainingState, text: str) -> tuple[str, dict, str]:
    """(why not, state changes, what it did) for adding the breakpoint ``text`` now."""
    try:
        bp = parse(text, epoch=state.epoch)
    except BreakpointError as e:
        return str(e), {}, ""
    if len(state.breakpoints) >= MAX_BREAKPOINTS:
        return f"{MAX_BREAKPOINTS} breakpoints are pending already (clear some first)", {}, ""
    if bp.kind == "epoch" and bp.at <= state.epoch:
        return f"epoch={bp.at}: {state.epoch} epoch(s) are done already", {}, ""
    if bp.kind == "step" and bp.at <= state.step:
        return f"step={bp.at}: {state.step} step(s) are done already", {}, ""
    number = state.breakpoint_ids + 1
    pending = [*state.breakpoints, {"id": number, "spec": bp.spec}]
    return "", {"breakpoints": pending, "breakpoint_ids": number}, f"breakpoint #{number}: {bp.spec}"


def clear(state: TrainingState, number: int) -> tuple[str, dict, str]:
    """(why not, state changes, what it did) for clearing breakpoint ``number`` (0: all of them)."""
    pending = state.breakpoints
    if number == 0:
        return "", {"breakpoints": []}, f"cleared {len(pending)} breakpoint(s)" if pending else "no breakpoints to clear"
    if not any(b["id"] == number for b in pending):
        listed = ", ".join(f"#{b['id']}" for b in pending) or "none"
        return f"no breakpoint #{number} (pending: {listed})", {}, ""
    spec = next(b["spec"] for b in pending if b["id"] == number)
    return "", {"breakpoints": [b for b in pending if b["id"] != number]}, f"cleared breakpoint #{number}: {spec}"


def text(pending: list[dict] | tuple) -> str:
    """'#1 epoch=3 · #2 val_accuracy >= 0.98' ('none' when there are none)."""
    return " · ".join(f"#{b['id']} {b['spec']}" for b in pending) or "none"


def due_at_step(pending: list[dict], step: int) -> list[str]:
    """The reason of each ``step=N`` breakpoint that ``step`` steps reach, '' for the others (in order)."""
    out = []
    for b in pending:
        bp = _parsed(b["spec"])
        out.append(f"breakpoint #{b['id']} ({b['spec']}): step {step}" if bp.kind == "step" and step >= bp.at else "")
    return out


def hits_at_epoch_end(pending: list[dict], *, epochs_done: int, metrics: dict[str, dict], monitor: str,
                      bad_validations: int | None) -> list[str]:
    """The reason of each breakpoint an epoch's end reaches, '' for the others (in order).
    ``metrics``: {"train": ..., "val": ...} (a split empty when not evaluated); ``bad_validations``:
    validations since the monitored metric last improved, None when this epoch was not validated."""
    out = []
    for b in pending:
        bp, why = _parsed(b["spec"]), ""
        if bp.kind == "epoch" and epochs_done >= bp.at:
            why = f"{epochs_done} epoch(s) done"
        elif bp.kind == "plateau" and bad_validations is not None and bad_validations >= bp.at:
            why = f"{monitor} has not improved for {bad_validations} validation(s)"
        elif bp.kind == "metric" and bp.target is not None and metrics.get(bp.target.split):
            value = bp.target.reached(metrics[bp.target.split])
            why = f"{bp.target.metric} {value:.4g} {bp.target.op} {bp.target.value:g}" if value is not None else ""
        out.append(f"breakpoint #{b['id']} ({b['spec']}): {why}" if why else "")
    return out


@functools.lru_cache(maxsize=4 * MAX_BREAKPOINTS)
def _parsed(spec: str) -> Breakpoint:
    """A pending breakpoint's spec, parsed (it was checked when added); the loop asks at every step."""
    return parse(spec)


__all__ = ["FORMS", "MAX_BREAKPOINTS", "Breakpoint", "BreakpointError", "add", "clear", "due_at_step", "hits_at_epoch_end",
           "parse", "text"]
