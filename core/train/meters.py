"""How training is measured: the training clock and the metrics of a log interval and an epoch.

The step path never syncs the device: :class:`Interval` keeps per-step device tensors and reduces
them once, at the log flush (STYLE.md habit 6; one argmax kernel per step for classification).
The :class:`Stopwatch` counts training time only: evaluation, checkpoints and pauses stop it; the
:class:`WallClock` counts everything since the run began preparing (summary.json's wall_seconds).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch


class Stopwatch:
    """The training clock. Syncs CUDA before reading the time, so the figure is honest."""

    def __init__(self, device: torch.device, total: float = 0.0):
        self.device = device
        """The training device (CUDA is synchronized before each reading)."""
        self.total = total
        """Training seconds of the whole run (seeded from the checkpoint on resume)."""
        self.lap = 0.0
        """Training seconds since the last :meth:`take_lap` (the log interval's time)."""
        self.interruptions = 0
        """How often evaluation, a save or a pause stopped the clock (the thread tuner restarts its window)."""
        self._t0: float | None = None

    @property
    def running(self) -> bool:
        """The clock is counting."""
        return self._t0 is not None

    def start(self) -> None:
        """Start counting (again)."""
        self._t0 = time.perf_counter()

    def stop(self, interruption: bool = True) -> None:
        """Add the time since :meth:`start`; ``interruption``: evaluation, a save or a pause follows."""
        if self._t0 is None:
            return
        if interruption:
            self.interruptions += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - self._t0
        self.total += dt
        self.lap += dt
        self._t0 = None

    def take_lap(self) -> float:
        """The seconds counted since the last call, and start a new lap."""
        lap, self.lap = self.lap, 0.0
        return lap

    @contextlib.contextmanager
    def held(self, interruption: bool = True) -> Iterator[None]:
        """Stop the clock for the block if it runs, and restart it after (a save, a validation)."""
        was_running = self.running
        if was_running:
            self.stop(interruption)
        try:
            yield
        finally:
            if was_running:
                self.start()


class WallClock:
    """The run's wall seconds: since this process began preparing the run (loading the data and
    building count too), plus those of a resumed run before its checkpoint."""

    def __init__(self) -> None:
        self.before = 0.0
        """Wall seconds of the run before this process (a resume's checkpoint; 0 for a new run)."""
        self._t0 = time.perf_counter()

    def restart(self) -> None:
        """Count this process's part from now (the run begins preparing)."""
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        """Wall seconds of the run so far."""
        return self.before + time.perf_counter() - self._t0


class Interval:
    """Per-step device tensors of one log interval, reduced at the flush with one host transfer."""

    def __init__(self, classification: bool):
        self.classification = classification
        """Count correct predictions too."""
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.n = 0
        """Samples in the interval."""

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """Record one batch (no host sync)."""
        self.losses.append(loss.detach())
        self.sizes.append(y.shape[0])
        self.n += y.shape[0]
        if self.classification:
            self.preds.append(out.detach().argmax(1))
            self.targets.append(y)

    def sums(self, device: torch.device) -> tuple[float, float]:
        """(sum of per-sample losses, correct predictions): the one host sync of the interval."""
        if not self.losses:
            return 0.0, 0.0
        sizes = torch.tensor(self.sizes, dtype=torch.float32).to(device, non_blocking=True)
        parts = [(torch.stack(self.losses).float() * sizes).sum()]
        if self.preds:
            parts.append((torch.cat(self.preds) == torch.cat(self.targets)).sum().float())
        else:
            parts.append(torch.zeros((), device=device))
        loss_sum, correct = torch.stack(parts).tolist()
        return loss_sum, correct


@dataclass
class EpochTotals:
    """The epoch's train sums so far, as host numbers (added at each flush; saved for mid-epoch resume)."""

    loss_sum: float = 0.0
    """Sum of per-sample losses."""
    correct: float = 0.0
    """Correct predictions (classification)."""
    n: int = 0
    """Samples."""

    def add(self, loss_sum: float, correct: float, n: int) -> None:
        """Add one flushed interval."""
        self.loss_sum += loss_sum
        self.correct += correct
        self.n += n

    def train_metrics(self, classification: bool) -> dict:
        """The epoch's train metrics: loss, and accuracy for classification."""
        out = {"loss": self.loss_sum / max(1, self.n)}
        if classification:
            out["accuracy"] = self.correct / max(1, self.n)
        return out

    def with_pending(self, interval: Interval, device: torch.device) -> list:
        """[loss_sum, correct, n] with the interval not yet flushed added (one host sync)."""
        loss, correct = interval.sums(device)
        return [self.loss_sum + loss, self.correct + correct, self.n + interval.n]

    def to_list(self) -> list:
        """[loss_sum, correct, n], the checkpoint's ``epoch_acc``."""
        return [self.loss_sum, self.correct, self.n]

    @classmethod
    def from_list(cls, values: list | tuple) -> EpochTotals:
        """The inverse of :meth:`to_list`."""
        loss, correct, n = values
        return cls(float(loss), float(correct), int(n))
