"""What the integrations share: a framework's settings as plain config, its validation metrics
under the names the viewers plot, and the checkpoint event of a save the framework did itself."""

from __future__ import annotations

import enum
import numbers
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tui_train.core import events as E

VAL_NAMES = {"acc": "accuracy", "accuracy": "accuracy", "loss": "loss"}
"""Validation metric names the standard plots know (``val_acc`` is ``val_accuracy``); any other
``val_*`` metric is kept under its own name."""


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as config: numbers, strings, booleans, paths (as strings), enums (their value),
    lists of those, and nested mappings; None, empty tables and objects (a model, a tokenizer, a
    callable) are left out: the config is a record to read back, not a pickle."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        value = _plain(v)
        if value is not None and value != {}:
            out[str(k)] = value
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, bool | str):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, Mapping):
        return plain(v)
    if isinstance(v, list | tuple):
        items = [_plain(x) for x in v]
        return items if all(x is not None and not isinstance(x, dict | list) for x in items) else None
    return None


def scalar(v: Any) -> float | None:
    """A finite-or-not float from a number or a one-element tensor; None for anything else."""
    if hasattr(v, "numel") and callable(v.numel):
        if v.numel() != 1:
            return None
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return None
    return float(v)


def val_metrics(metrics: Mapping[str, Any], prefixes: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The validation metrics among ``metrics`` as ``val_<name>`` (what :meth:`tui_train.loop.Run.log`
    reads as a validation): keys starting with one of ``prefixes`` ('val_', 'val/', 'eval_'), the
    prefix replaced, Lightning's ``_epoch`` suffix dropped, ``acc`` as ``accuracy``; non-numbers
    and the ``skip`` names (timings) left out."""
    out: dict[str, float] = {}
    for key, v in metrics.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            continue
        name = key[len(prefix):].removesuffix("_epoch")
        value = scalar(v)
        if not name or name in skip or value is None:
            continue
        out["val_" + VAL_NAMES.get(name, name)] = value
    return out


def checkpoint_saved(run: Any, path: Path, reason: str) -> None:
    """Tell the viewers that the framework saved a checkpoint (what ``Run.save`` says for its own)."""
    st = run.place.state
    run.place.emit(E.CheckpointSaved(path=str(Path(path).resolve()), step=st.step, epoch=st.epoch, reason=reason))


def several_processes(what: str, world_size: int) -> bool:
    """True (with a warning, once per run) when the framework trains in several processes: each
    rank would start a run of its own and apply commands on its own, so the ranks' learning
    rates would part; the callback then stays out of the way and training goes on unsteered."""
    if world_size <= 1:
        return False
    warnings.warn(f"tui_train: {what} runs in {world_size} processes; its TuiTrainCallback steers one process only "
                  "and does nothing here (train in one process to steer it)", RuntimeWarning, stacklevel=3)
    return True
