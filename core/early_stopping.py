"""The best epoch on the monitored metric, and early stopping when it stops improving."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Tracks the best validated epoch (for ``best.pt``, always) and says when to stop (when enabled).

    Patience counts as Keras and Lightning count it: training stops after ``patience`` validated
    epochs without improvement (0 behaves as 1). The patience is live (``SetHyperparameter``), so
    it is passed in rather than held here.
    """

    monitor: str
    """The metric, e.g. 'val_loss' (looked up without the 'val_' prefix in validation metrics)."""
    mode: str
    """'min' or 'max'."""
    min_delta: float = 0.0
    """Smallest change that counts as an improvement."""
    enabled: bool = False
    """Stop when the metric stops improving (else only the best epoch is tracked)."""
    best_value: float | None = None
    """Best monitored value so far."""
    best_epoch: int | None = None
    """Epoch of the best value."""
    bad_epochs: int = 0
    """Validated epochs since the best."""

    def value(self, val: dict) -> float | None:
        """The monitored metric in one epoch's validation metrics, or None (missing or not finite)."""
        v = val.get(self.monitor.removeprefix("val_"))
        return v if v is not None and math.isfinite(v) else None

    def update(self, value: float, epoch: int) -> bool:
        """Feed one validated epoch's value; True when it is the best so far."""
        best = self.best_value
        better = best is None or (value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta)
        if better:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return better

    def patience_left(self, patience: int) -> int | None:
        """Epochs of patience left (None when early stopping is off)."""
        return max(0, max(1, patience) - self.bad_epochs) if self.enabled else None

    def should_stop(self, patience: int) -> bool:
        """Early stopping is on and the metric did not improve for ``patience`` epochs."""
        return self.enabled and self.bad_epochs >= max(1, patience)

    def state_dict(self) -> dict:
        """What a checkpoint keeps (the format's top-level keys best_value, best_epoch, bad_epochs)."""
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict) -> None:
        """Restore from :meth:`state_dict` (or a checkpoint payload holding those keys)."""
        self.best_value, self.best_epoch, self.bad_epochs = d["best_value"], d["best_epoch"], int(d["bad_epochs"])
