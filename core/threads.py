"""Choose torch's intra-op thread count by measuring, not guessing (``train.num_threads = 0``)."""

from __future__ import annotations

import time

import torch

from tui_train.core.config import RunConfig

NOISE = 0.05
"""Relative difference below which two measured thread counts are the same speed (a shared
machine's step rate swings more than this between windows)."""


class ThreadTuner:
    """Chooses torch's intra-op thread count by timing real training steps (train.num_threads = 0).

    The best count depends on the model and on the thread that drives torch: on 2 cores a
    784-128-10 MLP trained at 96k samples/s on 2 threads and 80k on 1 from the main thread, but
    at 42k on 2 and 85k on 1 from a background thread (the TUI's in-process mode); the classic CNN
    ~1.8x faster on 2. So the count is not guessed: after a short warm-up each candidate trains
    for at least ``min_seconds`` (two alternating rounds), and the fastest is kept for the run.
    Noise does not decide: counts within :data:`NOISE` of the fastest are a tie, and a tie goes
    to the fewest threads (2 vs 1 measured 113.7k vs 111.0k samples/s on an MLP: the same speed,
    and one thread leaves a core to the dashboard, the data and the rest of the machine).
    """

    def __init__(self, candidates: list[int], warmup: int = 3, min_seconds: float = 0.2, min_steps: int = 5, rounds: int = 2):
        self.candidates = candidates * rounds  # alternating rounds: a noisy moment cannot decide alone
        """Thread counts to try, in order (the default first, each ``rounds`` times)."""
        self.rates: dict[int, float] = {}
        """Thread count -> best measured optimizer steps per second."""
        self.warmup, self.min_seconds, self.min_steps = warmup, min_seconds, min_steps
        self._i, self._skip, self._t0, self._steps, self._stops = 0, warmup, 0.0, 0, -1
        torch.set_num_threads(candidates[0])

    def after_step(self, clock_stops: int) -> int | None:
        """Call after each optimizer step; returns the chosen count once decided, else None."""
        now = time.perf_counter()
        if clock_stops != self._stops:  # evaluation, a pause or a save happened: restart the window
            self._stops, self._skip = clock_stops, max(self._skip, 1)
        if self._skip:
            self._skip -= 1
            self._t0, self._steps = now, 0
            return None
        self._steps += 1
        elapsed = now - self._t0
        if elapsed < self.min_seconds or self._steps < self.min_steps:
            return None
        n = self.candidates[self._i]
        self.rates[n] = max(self.rates.get(n, 0.0), self._steps / elapsed)
        self._i += 1
        if self._i < len(self.candidates):
            torch.set_num_threads(self.candidates[self._i])
            self._skip = 2  # let the new thread pool spin up
            return None
        fastest = max(self.rates.values())
        best = min(n for n, r in self.rates.items() if r >= fastest * (1.0 - NOISE))
        torch.set_num_threads(best)
        return best


def thread_candidates(device: torch.device, cfg: RunConfig) -> list[int]:
    """Thread counts worth trying, or [] when the count is fixed (set, deterministic, GPU)."""
    default = torch.get_num_threads()
    if cfg.train.num_threads or cfg.train.deterministic or device.type != "cpu" or default <= 1:
        return []
    return sorted({default, max(1, default // 2), 1}, reverse=True)
