"""The LR range test: sweep the learning rate exponentially on a copy of the model and optimizer,
record the smoothed loss, and suggest a learning rate.

The sweep (Smith 2015; fastai's ``lr_find``) takes one optimizer step per batch at
``start * (end / start) ** (i / (steps - 1))``, smooths the loss with a debiased EMA (beta 0.98,
as fastai) and stops once the smoothed loss passes :data:`DIVERGENCE` times the best one, or at
the first non-finite loss. The suggestion is fastai's "valley" rule (the middle of the longest
descending stretch; fastai PR #3377 found it beat the others); the steepest descent
(Lightning's rule, noisy: Lightning issue #21141) and the minimum / 10 are given for reference.

This module is plain Python, no torch: the options, the schedule, :class:`Curve`, the suggestion
rules and :func:`run_sweep` over any ``step(lr) -> loss`` (the TUI reads a :class:`Curve` and the
fake trainer sweeps :func:`demo_loss` without torch). The sweep on a model is
:mod:`tui_train.core.train.lr_sweep` (copies of a built run; a config's run for ``tui-train lr-find``);
the launcher runs that in a child process through :func:`tui_train.core.live.spawn.run_lr_find`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_train.core import events as E

DEFAULT_START = 1e-7
"""First learning rate of the sweep (fastai's default)."""
DEFAULT_END = 10.0
"""Last learning rate of the sweep."""
DEFAULT_STEPS = 100
"""Optimizer steps of the sweep."""
MAX_STEPS = 1000
"""At most this many steps (the curve travels as one event: its size stays bounded)."""
SMOOTHING = 0.98
"""The EMA's beta (debiased)."""
DIVERGENCE = 4.0
"""The sweep stops once the smoothed loss exceeds this times the best smoothed loss."""
STOP_REASONS = ("completed", "diverged", "non-finite", "interrupted")
"""How a sweep ends: all steps taken, the loss diverged, a non-finite loss, the stop event."""
RULES = ("valley", "steepest", "minimum/10")
"""The suggestion rules, the first one is the suggestion."""
MIN_POINTS = 10
"""Fewer points than this (the loss diverged or went non-finite within a few steps: a model at a
minimum already, or a range that starts too high) give no suggestion."""


class SweepError(ValueError):
    """Bad sweep options (one line)."""


def check_options(start: float, end: float, steps: int) -> str:
    """'' when the sweep options are usable, else why not (one line)."""
    for name, v in (("start_lr", start), ("end_lr", end)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            return f"{name} must be a finite number > 0, got {v!r}"
    if not end > start:
        return f"end_lr ({end:g}) must be greater than start_lr ({start:g})"
    if isinstance(steps, bool) or not isinstance(steps, int) or not 5 <= steps <= MAX_STEPS:
        return f"steps must be a whole number in [5, {MAX_STEPS}], got {steps!r}"
    return ""


def lr_at(i: int, start: float, end: float, steps: int) -> float:
    """The learning rate of sweep step ``i`` (0 .. steps-1): exponential from start to end."""
    return start * (end / start) ** (i / max(1, steps - 1))


@dataclass(frozen=True)
class Curve:
    """One sweep: the learning rates tried and their losses, how it ended, the suggestions."""

    lrs: tuple[float, ...]
    """The learning rate of each step taken (finite losses only)."""
    losses: tuple[float, ...]
    """The smoothed (debiased EMA) loss at each of them."""
    raw_losses: tuple[float, ...]
    """The loss of each step's batch as measured."""
    stopped: str
    """One of :data:`STOP_REASONS`."""
    start_lr: float = DEFAULT_START
    """The sweep's first learning rate."""
    end_lr: float = DEFAULT_END
    """Its last planned one."""
    steps: int = DEFAULT_STEPS
    """The steps planned."""
    suggestions: dict = field(default_factory=dict)
    """Rule name (:data:`RULES`) -> learning rate (a rule that cannot decide is left out)."""

    @property
    def suggestion(self) -> float | None:
        """The valley rule's learning rate, or None when the curve is too short to tell."""
        return self.suggestions.get("valley")

    def to_json(self) -> dict:
        """Plain values: what ``tui-train lr-find --json`` prints (README: lr-find)."""
        return {"start_lr": self.start_lr, "end_lr": self.end_lr, "steps": self.steps, "stopped": self.stopped,
                "suggested_lr": self.suggestion, "suggestions": dict(self.suggestions),
                "lrs": list(self.lrs), "losses": list(self.losses), "raw_losses": list(self.raw_losses)}

    @classmethod
    def from_json(cls, d: dict) -> Curve:
        """The inverse of :meth:`to_json` (ValueError for something else)."""
        try:
            return cls(lrs=tuple(float(v) for v in d["lrs"]), losses=tuple(float(v) for v in d["losses"]),
                       raw_losses=tuple(float(v) for v in d.get("raw_losses", d["losses"])), stopped=str(d["stopped"]),
                       start_lr=float(d["start_lr"]), end_lr=float(d["end_lr"]), steps=int(d["steps"]),
                       suggestions={str(k): float(v) for k, v in dict(d.get("suggestions") or {}).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not an LR range test curve: {e}") from None


def describe(suggestions: dict, points: int, stopped: str) -> str:
    """One line: 'suggested 0.00211 (valley; steepest 0.005, minimum/10 0.0123) · 87 steps, diverged'."""
    if suggestions.get("valley") is None:
        return (f"no suggestion: {points} steps before the sweep stopped ({stopped}), at least {MIN_POINTS} are needed "
                "(a model at a minimum already, or a start_lr too high)")
    others = ", ".join(f"{k} {suggestions[k]:.3g}" for k in RULES[1:] if k in suggestions)
    return f"suggested {suggestions['valley']:.3g} (valley; {others}) · {points} steps, {stopped}"


def lr_found(event: Any) -> str:
    """The curve of a LearningRateFound event in one line (its acknowledgement says the
    suggestions): 'curve of 87 steps, lr 1e-07 -> 0.418 (diverged), smoothed loss 2.3 -> lowest 0.51'."""
    lrs, losses = list(event.lrs), list(event.losses)
    if not lrs:
        return f"no curve ({event.stopped} at the first step)"
    return (f"curve of {len(lrs)} steps, lr {lrs[0]:.3g} -> {lrs[-1]:.3g} ({event.stopped}), "
            f"smoothed loss {losses[0]:.4g} -> lowest {min(losses):.4g}")


def found_event(curve: Curve, step: int) -> Any:
    """The LearningRateFound event of a curve (plain values)."""
    return E.LearningRateFound(step=step, lrs=curve.lrs, losses=curve.losses, raw_losses=curve.raw_losses, stopped=curve.stopped,
                               start_lr=curve.start_lr, end_lr=curve.end_lr, steps=curve.steps, suggestions=dict(curve.suggestions))


def ack_detail(curve: Curve) -> str:
    """The FindLearningRate acknowledgement's detail."""
    return f"LR range test: {describe(curve.suggestions, len(curve.lrs), curve.stopped)}"


def demo_loss(lr: float) -> float:
    """A synthetic loss against the learning rate (no training): flat at 2, falling from about
    1e-5, lowest near 1e-2, exploding past 0.1. For the fake trainer, demos and tests."""
    x = math.log10(lr)
    return 0.5 + 1.5 / (1 + math.exp(2.5 * (x + 3.5))) + math.exp(3 * (x + 1.2))


# -- the suggestion rules (fastai's, on the trimmed curve) ---------------------------------------
def valley(losses: list[float]) -> int:
    """fastai's valley rule: the index ``start + len/3 + len/6`` of the longest strictly
    decreasing subsequence of ``losses`` (the longest valley), i.e. about its middle."""
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max(0, min(n - 1, max_start + int(sections) + int(sections / 2)))


def steepest(lrs: list[float], losses: list[float]) -> int:
    """The index where the loss falls fastest against log(lr)."""
    grads = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return min(range(len(grads)), key=grads.__getitem__)


def suggest(lrs: list[float], losses: list[float], steps: int) -> dict[str, float]:
    """Every rule's learning rate for a curve (fastai drops the first tenth of the planned steps
    and the last 5 points, where the loss has not moved yet or is blowing up; a short curve is
    used whole). {} for fewer than :data:`MIN_POINTS` points."""
    if len(lrs) < MIN_POINTS:
        return {}
    lo, hi = steps // 10, len(lrs) - 5
    if hi - lo >= 5:
        lrs, losses = lrs[lo:hi], losses[lo:hi]
    at_min = min(range(len(losses)), key=losses.__getitem__)
    return {"valley": lrs[valley(losses)], "steepest": lrs[steepest(lrs, losses)], "minimum/10": lrs[at_min] / 10}


# -- the sweep ------------------------------------------------------------------------------------
def run_sweep(step: Callable[[float], float], start: float = DEFAULT_START, end: float = DEFAULT_END,
              steps: int = DEFAULT_STEPS, stop: Callable[[], bool] = lambda: False) -> Curve:
    """Call ``step(lr)`` (one optimizer step at ``lr``, returning that batch's loss) along the
    exponential schedule; smooth, stop at divergence or a non-finite loss, suggest."""
    why = check_options(start, end, steps)
    if why:
        raise SweepError(why)
    lrs: list[float] = []
    smooth: list[float] = []
    raw: list[float] = []
    avg, best, stopped = 0.0, math.inf, "completed"
    for i in range(steps):
        if stop():
            stopped = "interrupted"
            break
        lr = lr_at(i, start, end, steps)
        loss = float(step(lr))
        if not math.isfinite(loss):
            stopped = "non-finite"
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * loss
        smoothed = avg / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        smooth.append(smoothed)
        raw.append(loss)
        if smoothed > DIVERGENCE * best:
            stopped = "diverged"
            break
        best = min(best, smoothed)
    return Curve(lrs=tuple(lrs), losses=tuple(smooth), raw_losses=tuple(raw), stopped=stopped, start_lr=float(start),
                 end_lr=float(end), steps=steps, suggestions=suggest(lrs, smooth, steps))
