"""The LR range test: sweep the learning rate exponentially on a copy of the model and optimizer,
record the smoothed loss, and suggest a learning rate.

The sweep (Smith 2015; fastai's ``lr_find``) takes one optimizer step per batch at
``start * (end / start) ** (i / (steps - 1))``, smooths the loss with a debiased EMA (beta 0.98,
as fastai) and stops once the smoothed loss passes :data:`DIVERGENCE` times the best one, or at
the first non-finite loss. The suggestion is fastai's "valley" rule (the middle of the longest
descending stretch; fastai PR #3377 found it beat the others); the steepest descent
(Lightning's rule, noisy: Lightning issue #21141) and the minimum / 10 are given for reference.

The run is untouched: the sweep trains deep copies of the model and the optimizer (its state
copied too, never shared), draws batches from the data's pure ``(seed, epoch)`` order without
advancing anything, and restores every RNG state (dropout draws from them) when it ends.

:func:`run_sweep` and the suggestion rules are plain Python (the TUI reads a :class:`Curve`
without torch); :func:`sweep_runtime` trains a built run's copy, :func:`find_lr` builds a run from
a config first (``tui-train lr-find``). ``python -m core.lr_find`` is the launcher's subprocess: a
JSON spec on stdin, the curve as JSON on stdout (``{"error": ...}`` and exit 2 for bad input).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    from tui_train.core import events as E

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


def _batches(data: Any, epoch: int, batch_size: int) -> Iterable:
    """Training batches from ``epoch`` on, epoch after epoch: the data's order is a pure function
    of (seed, epoch), so reading it moves nothing of the run's."""
    while True:
        empty = True
        for batch in data.train_batches(epoch, batch_size):
            empty = False
            yield batch
        if empty:
            return
        epoch += 1


def sweep_runtime(rt: Any, cfg: Any, *, epoch: int = 0, grad_clip: float | None = None, start: float = DEFAULT_START,
                  end: float = DEFAULT_END, steps: int = DEFAULT_STEPS, stop: Callable[[], bool] = lambda: False) -> Curve:
    """The range test on copies of a built run's model and optimizer (core.runtime.Runtime),
    from ``epoch``'s batches; the run's weights, optimizer state, data order and RNG states are
    as before afterwards (tests/unit/test_lr_find.py)."""
    import copy

    import torch

    from tui_train.core.checkpoint import rng_restore, rng_state
    from tui_train.core.models import model_output

    why = check_options(start, end, steps)
    if why:
        raise SweepError(why)
    clip = cfg.optim.grad_clip if grad_clip is None else grad_clip
    rng = rng_state(rt.device)
    model = copy.deepcopy(rt.model)
    model.train()
    optimizer = type(rt.optimizer)(model.parameters(), **rt.optimizer.defaults)
    # a deep copy: load_state_dict keeps tensors that need no cast, so the copy would share them
    optimizer.load_state_dict(copy.deepcopy(rt.optimizer.state_dict()))
    batches = iter(_batches(rt.data, epoch, cfg.data.batch_size))
    channels_last = cfg.train.channels_last

    def step(lr: float) -> float:
        try:
            x, y = next(batches)
        except StopIteration:
            return math.nan
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        for g in optimizer.param_groups:
            g["lr"] = lr
        with rt.autocast():
            loss = rt.loss_fn(model_output(model(x)).float(), y)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    try:
        return run_sweep(step, start, end, steps, stop)
    finally:
        rng_restore(rng, rt.device)


def find_lr(cfg: Any, *, start: float = DEFAULT_START, end: float = DEFAULT_END, steps: int = DEFAULT_STEPS,
            stop: Callable[[], bool] = lambda: False) -> tuple[Curve, str]:
    """Build the config's run (data, model, optimizer; no run directory) and sweep it from its
    first epoch. Returns (curve, device). ConfigError / DataError for bad input."""
    from tui_train.core.dryrun import dry_run
    from tui_train.core.runtime import build

    why = check_options(start, end, steps)
    if why:
        raise SweepError(why)
    rt = build(cfg)
    dry_run(cfg, rt)  # a model that does not fit its data: the one line a run would give, before any sweep
    return sweep_runtime(rt, cfg, start=start, end=end, steps=steps, stop=stop), str(rt.device)


def run_subprocess(cfg: Any, *, start: float = DEFAULT_START, end: float = DEFAULT_END, steps: int = DEFAULT_STEPS,
                   cancel: Any = None) -> tuple[Curve, str]:
    """:func:`find_lr` in a child process (``python -m core.lr_find``: the launcher's process never
    imports torch, and its UI thread never trains). Returns (curve, device); SweepError with the
    child's one line for bad input or a failure, or "cancelled" once ``cancel`` (an Event) is set."""
    import json
    import subprocess
    import tempfile
    import time

    from tui_train.core.config import to_dict
    from tui_train.core.serve import at_trainer_priority, child_env

    spec = json.dumps({"config": to_dict(cfg), "start_lr": start, "end_lr": end, "steps": steps}) + "\n"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = at_trainer_priority(lambda: subprocess.Popen(
            [sys.executable, "-P", "-c", "import sys; from tui_train.core.lr_find import main; sys.exit(main())"],
            stdin=subprocess.PIPE, stdout=out, stderr=err, env=child_env()))
        try:
            proc.stdin.write(spec.encode())
            proc.stdin.close()
        except OSError:
            pass
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.wait()
                raise SweepError("cancelled")
            time.sleep(0.05)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict) or not answer:
            err.seek(0)
            tail = [x for x in err.read().decode(errors="replace").splitlines() if x.strip()]
            raise SweepError(f"the LR range test failed ({tail[-1] if tail else f'exit code {proc.returncode}'})")
    if "error" in answer:
        raise SweepError(str(answer["error"]))
    return Curve.from_json(answer), str(answer.get("device", ""))


def main() -> int:
    """The launcher's subprocess: ``{"config": <core.config.to_dict>, "start_lr", "end_lr", "steps"}``
    on stdin; the curve's JSON (with "device") on stdout, or ``{"error": "<one line>"}`` and exit 2."""
    import json

    from tui_train.core import config as cfgmod
    from tui_train.core.data import DataError
    from tui_train.core.errors import first_line

    try:
        spec = json.loads(sys.stdin.readline())
        cfg = cfgmod.from_dict(spec["config"], "lr-find")
        curve, device = find_lr(cfg, start=float(spec.get("start_lr", DEFAULT_START)),
                                end=float(spec.get("end_lr", DEFAULT_END)), steps=int(spec.get("steps", DEFAULT_STEPS)))
    except (cfgmod.ConfigError, DataError, SweepError) as e:  # bad input: its own one line
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    except Exception as e:  # noqa: BLE001 - a failing user model or a malformed spec: one line for the launcher
        print(json.dumps({"error": first_line(e, typed=True)}), flush=True)
        return 1
    print(json.dumps({**curve.to_json(), "device": device}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
