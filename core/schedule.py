"""Learning-rate schedules as pure functions of the step.

``lr(step) = base_lr * factor(step)``; the engine writes it into every param group before each
optimizer step, so a live edit of ``base_lr`` (SetLearningRate) carries on through the schedule
instead of being undone by it (STYLE.md habit 7). Reduce-on-plateau is the one stateful part: a
multiplier that :class:`Plateau` lowers at epoch ends, saved in checkpoints. A live change of the
run's length (core.length) either keeps the schedule or stretches its rest over the new total
(:func:`stretch`); :func:`factor_at` reads the schedule through that plan, which checkpoints keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tui_train.core.config import ScheduleConfig


def factor(cfg: ScheduleConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The schedule's multiplier for optimizer step ``step`` (0-based), warmup included."""
    spe = max(1, steps_per_epoch)
    warm = cfg.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    s = step - warm  # the schedule proper starts after warmup
    span = max(1, total_steps - warm)
    epoch = s // spe
    name = cfg.name
    if name in ("constant", "plateau"):
        return 1.0
    if name == "step":
        return cfg.gamma ** (epoch // cfg.step_epochs)
    if name == "exponential":
        return cfg.gamma ** epoch
    if name == "inverse_sqrt":
        return (1.0 + epoch) ** -0.5
    if name == "cosine":
        t = min(1.0, s / span)
        return cfg.min_factor + (1.0 - cfg.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "onecycle":
        t = min(1.0, s / span)
        lo = 1.0 / cfg.onecycle_div
        end = lo / cfg.onecycle_final_div
        if t < cfg.onecycle_pct:
            u = t / cfg.onecycle_pct
            return lo + (1.0 - lo) * 0.5 * (1.0 - math.cos(math.pi * u))
        u = (t - cfg.onecycle_pct) / (1.0 - cfg.onecycle_pct)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * u))
    raise ValueError(f"unknown schedule {name!r}")  # config validation prevents this


def schedule_step(step: int, plan: Sequence[Sequence[float]] = ()) -> float:
    """Where optimizer step ``step`` is on the schedule after live length changes: ``plan`` holds
    [step, schedule_step, rate] segments in step order (core.state.TrainingState.lr_plan), each
    continuing the one before it; before the first, and with none, the step itself."""
    for start, at, rate in reversed(plan):
        if step >= start:
            return at + (step - start) * rate
    return step


def factor_at(cfg: ScheduleConfig, step: int, steps_per_epoch: int, total_steps: int, plan: Sequence[Sequence[float]] = (),
              laid_total: int = 0) -> float:
    """:func:`factor` on the run's plan as it is now: with ``laid_total`` 0 (the length never
    changed) the schedule over ``total_steps``, exactly as :func:`factor`; else the schedule laid
    over ``laid_total`` steps, read at :func:`schedule_step`, and held at its last step's value past
    it (a run made longer under the ``keep`` policy)."""
    if not laid_total:
        return factor(cfg, step, steps_per_epoch, total_steps)
    return factor(cfg, min(schedule_step(step, plan), laid_total - 1), steps_per_epoch, laid_total)


def stretch(plan: Sequence[Sequence[float]], laid_total: int, step: int, new_total: int, warmup_steps: int = 0) -> list[list[float]]:
    """The ``stretch`` policy: ``plan`` with the rest of the schedule, from optimizer step ``step``
    on, re-laid over the steps up to ``new_total``: the schedule step at ``step`` stays (the LR does
    not jump) and the run's last step falls on the schedule's last (a cosine still ends at its floor).
    A warmup under way keeps its pace; a schedule already at its end stays there."""
    at = schedule_step(step, plan)
    out = [list(s) for s in plan if s[0] < step]  # what a change at this step supersedes goes
    end = laid_total - 1
    if at >= end:
        return out + [[step, float(end), 0.0]]
    start = step
    if at < warmup_steps:  # the warmup goes on step for step; the stretch begins where it ends
        out.append([step, at, 1.0])
        ahead = math.ceil(warmup_steps - at)
        start, at = step + ahead, at + ahead
    last = new_total - 1
    rate = max(0.0, (end - at) / (last - start)) if last > start else 0.0
    return out + [[start, at, rate]]


@dataclass
class Plateau:
    """Reduce-on-plateau multiplier, updated once per validated epoch."""

    factor: float
    """Multiply the scale by this on a plateau."""
    patience: int
    """Epochs without improvement tolerated."""
    mode: str
    """'min' or 'max'."""
    scale: float = 1.0
    """Current multiplier on top of the schedule."""
    best: float | None = None
    """Best metric value seen."""
    bad_epochs: int = 0
    """Epochs since the last improvement."""

    def update(self, value: float) -> bool:
        """Feed one epoch's metric; return True when the scale was just reduced."""
        if not math.isfinite(value):
            return False
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.bad_epochs = value, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale *= self.factor
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict) -> None:
        self.scale, self.best, self.bad_epochs = float(d["scale"]), d["best"], int(d["bad_epochs"])
