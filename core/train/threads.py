"""Choose torch's intra-op thread count by measuring, not guessing (``train.num_threads = 0``).

The count is measured once, before the first step, on a scratch copy of the model, and every
step of the run trains at that one count: CPU results depend on it (digits-mlp's weights after
two epochs differ by ~1e-5 between 1 and 2 threads), so a count that changed mid-run, or one
measured again on resume, would change the numerics. The chosen count is recorded in every
checkpoint (``threads``) and a resumed run reuses it (tests/unit/test_threads.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch

from tui_train.core.config import RunConfig
from tui_train.core.train.models import model_output

NOISE = 0.05
"""Relative difference below which two measured thread counts are the same speed (a shared
machine's step rate swings more than this between windows)."""


def choose_threads(candidates: list[int], step: Callable[[], None], min_seconds: float = 0.05,
                   min_steps: int = 3, rounds: int = 2) -> tuple[int, dict[int, float]]:
    """(the fastest count, {count: best steps per second}) from timing ``step`` at each candidate.

    The best count depends on the model and on the thread that drives torch: on 2 cores a
    784-128-10 MLP trained at 96k samples/s on 2 threads and 80k on 1 from the main thread, but
    at 42k on 2 and 85k on 1 from a background thread; the classic CNN ~1.8x faster on 2; with
    ``train.deterministic`` digits-mlp from a background thread 3.7k samples/s on 2 and 36k on 1
    (issue 20, defect 8). Each candidate runs one warm-up step, then ``step`` until
    ``min_seconds`` and ``min_steps`` have passed, in alternating ``rounds`` (a noisy moment
    cannot decide alone; a slow model, whose first window took over 10x ``min_seconds``, gets
    one round). Counts within :data:`NOISE` of the fastest are a tie, which goes to the fewest
    threads (one thread leaves a core to the dashboard, the data and the rest of the machine).
    Leaves torch at the chosen count.
    """
    rates: dict[int, float] = {}
    for r in range(rounds):
        for n in candidates:
            torch.set_num_threads(n)
            step()  # warm-up: the thread pool spins up
            steps, t0 = 0, time.perf_counter()
            while True:
                step()
                steps += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= min_seconds and steps >= min_steps:
                    break
            rates[n] = max(rates.get(n, 0.0), steps / elapsed)
        if r == 0 and min(rates.values()) * min_seconds * 10 < min_steps:  # slow steps: one round
            break
    fastest = max(rates.values())
    best = min(n for n, v in rates.items() if v >= fastest * (1.0 - NOISE))
    torch.set_num_threads(best)
    return best, rates


def thread_candidates(device: torch.device, cfg: RunConfig) -> list[int]:
    """Thread counts worth trying, or [] when the count is fixed (set, GPU, one core).
    Deterministic mode measures too: a pinned default count cost it up to 10x (issue 20, defect 8),
    and a run is bit-identical whatever the count as long as the count is the same (it is recorded)."""
    default = torch.get_num_threads()
    if cfg.train.num_threads or device.type != "cpu" or default <= 1:
        return []
    return sorted({default, max(1, default // 2), 1}, reverse=True)


def training_step_probe(model: torch.nn.Module, optimizer_for: Callable, loss_fn: Callable,
                        x: torch.Tensor, y: torch.Tensor, autocast: Callable) -> Callable[[], None]:
    """A training step (forward, loss, backward, optimizer step) on a deep copy of ``model``, for
    :func:`choose_threads`: the run's weights, buffers, gradients and optimizer are untouched, and
    the torch RNG (dropout) is put back after each call."""
    scratch = copy.deepcopy(model)
    scratch.train()
    opt = optimizer_for(scratch.parameters())

    def step() -> None:
        with torch.random.fork_rng(devices=[]):
            with autocast():
                loss = loss_fn(model_output(scratch(x)).float(), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    return step
