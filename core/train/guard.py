"""The last good weights, and what a non-finite loss does.

A snapshot of model and optimizer state is taken at log intervals whose loss was finite, at most
once per :data:`GOOD_EVERY_S` (a copy is not free), and only of finite values (the last step may
have broken the weights even though the interval's mean loss was finite). ``Rollback`` and the
non-finite stop restore it; a checkpoint never holds non-finite weights.
"""

from __future__ import annotations

import copy
import time

import torch

GOOD_EVERY_S = 1.0
"""The last-good snapshot (for Rollback and the non-finite stop) is refreshed at most this often."""


def weights_finite(model: torch.nn.Module) -> bool:
    """Every parameter is finite."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def optimizer_finite(optimizer: torch.optim.Optimizer) -> bool:
    """Every floating-point tensor of the optimizer's state is finite."""
    return all(bool(torch.isfinite(v).all()) for s in optimizer.state.values() for v in s.values()
               if torch.is_tensor(v) and v.is_floating_point())


class LastGood:
    """The most recent finite copy of model and optimizer state."""

    def __init__(self) -> None:
        self.step: int | None = None
        """The step the snapshot was taken at (None before the first)."""
        self._model: dict | None = None
        self._optimizer: dict | None = None
        self._time = 0.0

    @property
    def available(self) -> bool:
        """A snapshot exists."""
        return self.step is not None

    def due(self) -> bool:
        """A snapshot would be taken now (none yet, or the last is GOOD_EVERY_S old)."""
        return not self.available or time.monotonic() - self._time >= GOOD_EVERY_S

    def keep(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, force: bool = False) -> None:
        """Take a snapshot, unless one is younger than GOOD_EVERY_S (``force`` ignores that) or
        the weights or optimizer state hold non-finite values."""
        now = time.monotonic()
        if not force and self.available and now - self._time < GOOD_EVERY_S:
            return
        if not weights_finite(model) or not optimizer_finite(optimizer):
            return
        self._time = now
        self.step = step
        self._model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._optimizer = copy.deepcopy(optimizer.state_dict())

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Load the snapshot back (gradients cleared); returns the step it was taken at."""
        if self._model is None or self._optimizer is None or self.step is None:
            raise RuntimeError("no good state to restore")
        model.load_state_dict(self._model)
        optimizer.load_state_dict(copy.deepcopy(self._optimizer))
        optimizer.zero_grad(set_to_none=True)
        return self.step


def nonfinite_message(loss: float, step: int) -> str:
    """The one line that reports a non-finite loss."""
    return f"non-finite loss ({loss}) at step {step}"
