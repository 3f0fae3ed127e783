"""The LR range test on a model (the rules and the curve are :mod:`tui_train.core.lr_find`'s).

The run is untouched: the sweep trains deep copies of the model and the optimizer (its state
copied too, never shared), draws batches from the data's pure ``(seed, epoch)`` order without
advancing anything, and restores every RNG state (dropout draws from them) when it ends.

:func:`sweep_runtime` trains a built run's copy (the engine's ``FindLearningRate``), :func:`find_lr`
builds a run from a config first (``tui-train lr-find``). :func:`main` is the launcher's child
process (:func:`tui_train.core.live.spawn.run_lr_find`): a JSON spec on stdin, the curve as JSON on
stdout (``{"error": ...}`` and exit 2 for bad input).
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch

from tui_train.core import config as cfgmod
from tui_train.core.errors import first_line
from tui_train.core.lr_find import DEFAULT_END, DEFAULT_START, DEFAULT_STEPS, Curve, SweepError, check_options, run_sweep
from tui_train.core.train.checkpoint import rng_restore, rng_state
from tui_train.core.train.data import DataError
from tui_train.core.train.dryrun import dry_run
from tui_train.core.train.models import model_output
from tui_train.core.train.runtime import build


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
    """The range test on copies of a built run's model and optimizer (core.train.runtime.Runtime),
    from ``epoch``'s batches; the run's weights, optimizer state, data order and RNG states are
    as before afterwards (tests/unit/test_lr_find.py)."""
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
    why = check_options(start, end, steps)
    if why:
        raise SweepError(why)
    rt = build(cfg)
    dry_run(cfg, rt)  # a model that does not fit its data: the one line a run would give, before any sweep
    return sweep_runtime(rt, cfg, start=start, end=end, steps=steps, stop=stop), str(rt.device)


def main() -> int:
    """The launcher's subprocess: ``{"config": <core.config.to_dict>, "start_lr", "end_lr", "steps"}``
    on stdin; the curve's JSON (with "device") on stdout, or ``{"error": "<one line>"}`` and exit 2."""
    try:
        spec = json.loads(sys.stdin.readline())
        cfg = cfgmod.from_dict(spec["config"], "lr-find")
        curve, device = find_lr(cfg, start=float(spec.get("start_lr", DEFAULT_START)),
                                end=float(spec.get("end_lr", DEFAULT_END)), steps=int(spec.get("steps", DEFAULT_STEPS)))
    except (cfgmod.ConfigError, DataError, SweepError) as e:  # bad input: its own one line
        _answer({"error": str(e)})
        return 2
    except Exception as e:  # noqa: BLE001 - a failing user model or a malformed spec: one line for the launcher
        _answer({"error": first_line(e, typed=True)})
        return 1
    _answer({**curve.to_json(), "device": device})
    return 0


def _answer(message: dict) -> None:
    """The child's one answer: a JSON line on its stdout, a pipe to the launcher that reads it
    (this process has no terminal and no Textual: the events rule is for the trainer's viewers)."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
