"""Learning-rate schedules as pure functions of the step.

``lr(step) = base_lr * factor(step)``; the engine writes it into every param group before each
optimizer step, so a live edit of ``base_lr`` (SetLearningRate) carries on through the schedule
instead of being undone by it (STYLE.md habit 7). Reduce-on-plateau is the one stateful part: a
multiplier that :class:`Plateau` lowers at epoch ends, saved in checkpoints.
"""

from __future__ import annotations

import math
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
