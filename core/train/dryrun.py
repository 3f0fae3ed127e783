"""The start-up dry run: one batch of each split through the model, the loss and one backward,
before the first real step, so that a model that does not fit its data is refused with one line
(a ConfigError naming the key, the user's spec, what came back and what was expected) instead of
failing mid-run.

It changes nothing that training or exact resume depends on: the RNG streams are saved and
restored, the model's buffers (BatchNorm statistics) put back, the gradients dropped, the
train/eval mode restored; the optimizer is never touched (tests/unit/test_dryrun.py checks that a
run's weights are bit-identical with and without it). It calls the plain model, not the DDP or
compiled wrapper, so it is no collective and compiles nothing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from tui_train.core.config import ConfigError, RunConfig
from tui_train.core.errors import one_line
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.models import OUTPUT_FORMS, describe_output, model_output

EVAL_PROBE = 8
"""Samples of the val and test splits the dry run evaluates (their shapes are what it checks)."""


def _batch_sizes(data: Any, batch_size: int) -> list[int]:
    """The first training batch's size and, when it differs, the last (partial) one's: a model
    that only takes some batch sizes (BatchNorm and a batch of 1) fails at the epoch's end."""
    count = data.steps_per_epoch(batch_size)
    first = data.batch_span(0, batch_size)
    last = data.batch_span(count - 1, batch_size)
    sizes = [first[1] - first[0]]
    if last[1] - last[0] not in sizes:
        sizes.append(last[1] - last[0])
    return [s for s in sizes if s > 0]


def _expected(data: Any, batch: int) -> tuple[list[int], str]:
    if data.task == "classification":
        return [batch, data.num_classes], f"{data.num_classes} classes in data.dataset {data.name!r}"
    k = int(getattr(data, "output_dim", 1))
    return [batch, k], f"regression targets of {k} value{'s' if k != 1 else ''} in data.dataset {data.name!r}"


def _dtype_hint(model: torch.nn.Module, x: torch.Tensor) -> str:
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    devices = {p.device for p in model.parameters()}
    hints = []
    if dtypes and dtypes != {x.dtype}:
        hints.append(f"its parameters are {', '.join(sorted(str(d).removeprefix('torch.') for d in dtypes))}, "
                     f"the data {str(x.dtype).removeprefix('torch.')}")
    if devices and devices != {x.device}:
        hints.append(f"its parameters are on {', '.join(sorted(map(str, devices)))}, the data on {x.device}")
    return f"; {'; '.join(hints)}" if hints else ""


def _check_batch(cfg: RunConfig, rt: Any, x: torch.Tensor, y: torch.Tensor, split: str, backward: bool) -> None:
    """Forward (and for training, backward) one batch; one-line ConfigError for what does not fit."""
    spec = f"model.name {cfg.model.name!r}"
    shape = f"[{', '.join(map(str, x.shape))}]"
    if cfg.train.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    try:
        with rt.autocast():
            raw = rt.model(x)
    except Exception as e:  # noqa: BLE001 - user code: whatever it raises is the model refusing the input
        raise ConfigError(f"{spec}: the model refused a {split} batch of shape {shape} "
                          f"({str(x.dtype).removeprefix('torch.')} on {x.device}): {one_line(e)}"
                          f"{_dtype_hint(rt.model, x)}") from None
    try:
        out = model_output(raw)
    except TypeError:
        raise ConfigError(f"{spec}: forward returned {describe_output(raw)} for a batch of shape {shape}; "
                          f"expected {OUTPUT_FORMS}") from None
    want, why = _expected(rt.data, x.shape[0])
    got = f"{describe_output(out)} for a batch of shape {shape}"
    if not out.is_floating_point():
        raise ConfigError(f"{spec}: returned {got}; expected floating-point outputs of shape {want} ({why})")
    if out.device != y.device:
        raise ConfigError(f"{spec}: returned its output on {out.device} but the data is on {y.device} "
                          f"(train.device {cfg.train.device!r}): create tensors in forward on the input's device")
    fits = list(out.shape) == want if rt.data.task == "classification" else \
        (out.dim() >= 1 and out.shape[0] == want[0] and out.numel() == want[0] * want[1])
    if not fits:
        raise ConfigError(f"{spec}: returned {got}; expected shape {want} ({why})")
    if rt.data.task == "classification" and y.numel() and not 0 <= int(y.min()) <= int(y.max()) < rt.data.num_classes:
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise ConfigError(f"data.dataset {rt.data.name!r}: label {bad} in the {split} split is outside "
                          f"0..{rt.data.num_classes - 1} (data.num_classes: {rt.data.num_classes})")
    try:
        loss = rt.loss_fn(out.float(), y)
        rt.loss_fn(out.float(), y, "sum")  # as evaluation calls it
    except Exception as e:  # noqa: BLE001 - the loss refusing these outputs and targets
        raise ConfigError(f"optim.loss {cfg.optim.loss!r}: does not fit {spec}'s output {list(out.shape)} and the "
                          f"targets {list(y.shape)} ({str(y.dtype).removeprefix('torch.')}): {one_line(e)}") from None
    if not backward:
        return
    if not loss.requires_grad:
        raise ConfigError(f"{spec}: its output does not depend on any trainable parameter (the loss has no gradient; "
                          f"is forward under torch.no_grad() or detaching its result?)")
    try:
        loss.backward()
    except Exception as e:  # noqa: BLE001 - user code runs in backward too (custom autograd functions, hooks)
        raise ConfigError(f"{spec}: the backward pass failed on a {split} batch of shape {shape}: {one_line(e)}") from None


def dry_run(cfg: RunConfig, rt: Any) -> float:
    """Put one training batch through ``rt.model`` (forward, loss, backward), then the epoch's
    last, partial training batch when its size differs (forward and loss) and a few samples of
    the val and test splits (in eval mode). Returns the seconds
    it took. Raises a one-line ConfigError (or DataError) for a model or data that cannot train,
    and leaves the RNG streams, buffers, gradients and mode as they were."""
    t0 = time.perf_counter()
    model, data = rt.model, rt.data
    rng = ckpt.rng_state(rt.device)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        for i, size in enumerate(_batch_sizes(data, cfg.data.batch_size)):
            x, y = data.probe_batch("train", size)
            with torch.no_grad() if i else contextlib.nullcontext():  # one backward is enough
                _check_batch(cfg, rt, x, y, "train", backward=i == 0)
        model.eval()
        with torch.no_grad():
            for split in ("val", "test"):
                if getattr(data, f"{split}_size"):
                    x, y = data.probe_batch(split, min(EVAL_PROBE, cfg.data.eval_batch_size))
                    if x.shape[0]:
                        _check_batch(cfg, rt, x, y, split, backward=False)
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
        _restore_buffers(model, buffers)
        ckpt.rng_restore(rng, rt.device)
    return time.perf_counter() - t0


def _restore_buffers(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Put every buffer back (in place when it kept its shape, else the saved tensor itself)."""
    with torch.no_grad():
        for name, value in saved.items():
            owner, _, leaf = name.rpartition(".")
            module = model.get_submodule(owner) if owner else model
            current = getattr(module, leaf, None)
            if isinstance(current, torch.Tensor) and current.shape == value.shape and current.dtype == value.dtype:
                current.copy_(value)
            else:
                module._buffers[leaf] = value


__all__ = ["dry_run"]
