"""The limits of every live-editable value: one table, derived from the config fields.

The learning rate and the live hyperparameters can be changed while training (``l``, ``h``,
``SetLearningRate``, ``SetHyperparameter``). What each accepts is the range its config field
declares in :mod:`core.config` (``optim.lr``, ``optim.momentum``...), so a preset, a dialog, the
engine and the test fake can never disagree: all of them call :func:`check` (dialogs through
:func:`parse`). ``tests/unit/test_limits.py`` proves it for every key, at and beyond each limit.
The run's length (``epochs``, ``max_steps``: ``E``, ``SetRunLength``) is in the same table
(:data:`LENGTH_LIMITS`), apart from :data:`LIVE_KEYS`: it has a command of its own (core.length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tui_train.core import config as cfgmod

LIVE_FIELDS: dict[str, str] = {
    "lr": "optim.lr",
    "momentum": "optim.momentum",
    "weight_decay": "optim.weight_decay",
    "grad_clip": "optim.grad_clip",
    "patience": "early_stopping.patience",
}
"""Live key -> the config field whose declared range it keeps (``lr`` has its own command)."""

LABELS = {"lr": "learning rate"}
"""How a key is named in messages, where its name is not plain enough."""


class LimitError(ValueError):
    """A live value is not allowed. ``str(err)`` is one line naming the key, the value and the range."""


@dataclass(frozen=True)
class Limit:
    """What one live key accepts."""

    key: str
    """The live name (``lr``, ``momentum``...)."""
    field: str
    """The dotted config field it comes from."""
    integer: bool
    """Whole numbers only (patience)."""
    lo: float | None
    """Lower bound, or None."""
    hi: float | None
    """Upper bound, or None."""
    lo_exclusive: bool = False
    """The lower bound itself is not allowed."""
    hi_exclusive: bool = False
    """The upper bound itself is not allowed."""
    doc: str = ""
    """The config field's one-line doc."""

    @property
    def label(self) -> str:
        """The key as a message names it."""
        return LABELS.get(self.key, self.key)

    @property
    def allowed(self) -> str:
        """The range in words, e.g. '> 0 and <= 10' or 'a whole number >= 0'."""
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_exclusive else '>='} {_g(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_exclusive else '<='} {_g(self.hi)}")
        text = " and ".join(parts) or "any finite number"
        return f"a whole number {text}" if self.integer else text

    def contains(self, value: float) -> bool:
        """True when ``value`` (a finite number) lies within the range."""
        if self.lo is not None and (value < self.lo or (self.lo_exclusive and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_exclusive and value == self.hi)))


def _g(v: float) -> str:
    return format(v, "g")


def _limit(key: str, dotted: str) -> Limit:
    tp, meta = cfgmod.field_spec(dotted)
    return Limit(key=key, field=dotted, integer=tp is int,
                 lo=meta.get("min"), hi=meta.get("max"), lo_exclusive=bool(meta.get("min_exclusive")),
                 hi_exclusive=bool(meta.get("max_exclusive")), doc=meta.get("doc", ""))


LIMITS: dict[str, Limit] = {key: _limit(key, dotted) for key, dotted in LIVE_FIELDS.items()}
"""Live key -> its :class:`Limit`, read from the config fields once at import."""

LIVE_KEYS: tuple[str, ...] = tuple(LIMITS)
"""Every live-editable key, the learning rate first."""

LENGTH_FIELDS: dict[str, str] = {"epochs": "train.epochs", "max_steps": "train.max_steps"}
"""The run's length, changed live by its own command (``SetRunLength``; core.length says what
else a change must respect: not shorter than what is done) -> the config field whose range it keeps."""

LENGTH_LIMITS: dict[str, Limit] = {key: _limit(key, dotted) for key, dotted in LENGTH_FIELDS.items()}
"""Length key -> its :class:`Limit` (``max_steps`` 0: no limit)."""

_ALL: dict[str, Limit] = {**LIMITS, **LENGTH_LIMITS}


def check(key: str, value: object) -> float | int:
    """``value`` as the engine stores it (int for whole-number keys), or LimitError saying why."""
    limit = _ALL.get(key)
    if limit is None:
        raise LimitError(f"{key!r} cannot be changed live (allowed: {', '.join(_ALL)})")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LimitError(f"{limit.label} must be a number ({limit.allowed}), got {value!r}")
    if not math.isfinite(value):
        raise LimitError(f"{limit.label} must be a finite number ({limit.allowed}), got {value}")
    if limit.integer and value != int(value):
        raise LimitError(f"{limit.label} must be {limit.allowed}, got {_g(value)}")
    if not limit.contains(value):
        raise LimitError(f"{limit.label} must be {limit.allowed}, got {_g(value)}")
    return int(value) if limit.integer else float(value)


def parse(key: str, text: str) -> float | int:
    """Typed text (a dialog's input) -> the checked value, or LimitError with a one-line reason."""
    limit = _ALL.get(key)
    if limit is None:
        return check(key, text)  # raises: not a live key
    text = text.strip()
    if not text:
        raise LimitError(f"type a {limit.label} ({limit.allowed})" + (", e.g. 3e-4 or 0.001" if key == "lr" else ""))
    try:
        value = float(text)
    except ValueError:
        raise LimitError(f"{text!r} is not a number: the {limit.label} must be {limit.allowed}") from None
    return check(key, value)
