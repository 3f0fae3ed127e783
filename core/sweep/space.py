"""A sweep's search space: from the command line (``--grid``, ``--random``) and a preset's
``[sweep]`` table, checked before anything runs (one line per mistake: which key, what is allowed).

Every parameter is a preset key (``optim.lr``) and every value a ``--set`` value, so a trial is an
ordinary run of the preset with overrides, validated by the preset schema like any other.

- ``--grid KEY=V1,V2,...``: every combination of the grid values, one trial each.
- ``--random KEY=LO:HI[:log]``: a number drawn uniformly (on a log scale with ``:log``); integers
  when LO and HI are both integers. ``--random KEY=A,B,C``: one of the choices.
- ``--optuna``: Optuna's TPE sampler draws from the same space (grid values become choices).

In a preset::

    [sweep]
    metric = "val_accuracy"     # default: the preset's early_stopping.monitor
    trials = 8                  # random and optuna
    grid = { "optim.lr" = [0.01, 0.1] }
    random = { "optim.lr" = { low = 1e-4, high = 0.3, log = true }, "optim.name" = ["sgd", "adam"] }
"""

from __future__ import annotations

import itertools
import math
import random as _random
from dataclasses import dataclass, field
from typing import Any

from tui_train.core.config import ConfigError

MAX_TRIALS = 10_000
"""The most trials one sweep plans (a grid's product included)."""


@dataclass(frozen=True)
class Range:
    """A number drawn from [low, high] (log-uniform when ``log``); whole numbers when ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: _random.Random) -> int | float:
        """One value."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.integer else float(f"{value:.6g}")

    def to_json(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log, "integer": self.integer}


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (``--set`` texts: numbers stay numbers in the preset)."""

    values: tuple[str, ...]

    def draw(self, rng: _random.Random) -> str:
        return rng.choice(self.values)

    def to_json(self) -> list[str]:
        return list(self.values)


@dataclass
class Space:
    """The parameters of a sweep: a grid (key -> values) and random dimensions (key -> Range or Choice)."""

    grid: dict[str, tuple[str, ...]] = field(default_factory=dict)
    random: dict[str, Range | Choice] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Every parameter, grid first."""
        return list(self.grid) + [k for k in self.random if k not in self.grid]

    def is_empty(self) -> bool:
        return not self.grid and not self.random

    def grid_points(self) -> list[dict[str, str]]:
        """Every combination of the grid (one empty point when there is no grid)."""
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def plan(self, method: str, trials: int, seed: int) -> list[dict[str, Any]]:
        """The trials' parameters for 'grid' (every point) or 'random' (``trials`` draws, seeded:
        the plan is written down at the start, so a resumed sweep goes on with the same one)."""
        if method == "grid":
            return [dict(p) for p in self.grid_points()]
        rng = _random.Random(seed)
        points = self.grid_points()
        return [{**points[i % len(points)], **{k: d.draw(rng) for k, d in self.random.items()}} for i in range(trials)]

    def to_json(self) -> dict:
        return {"grid": {k: list(v) for k, v in self.grid.items()}, "random": {k: d.to_json() for k, d in self.random.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Space:
        space = cls()
        for k, v in (data.get("grid") or {}).items():
            space.grid[k] = tuple(str(x) for x in v)
        for k, v in (data.get("random") or {}).items():
            space.random[k] = Choice(tuple(v)) if isinstance(v, list) else Range(float(v["low"]), float(v["high"]),
                                                                                 bool(v.get("log")), bool(v.get("integer")))
        return space


def _key(key: str, where: str) -> str:
    key = key.strip()
    if not key or any(not part.isidentifier() for part in key.split(".")):
        raise ConfigError(f"{where}: {key!r} is not a preset key (section.key, e.g. optim.lr)")
    return key


def _text(value: Any) -> str:
    """A value as a ``--set`` text (TOML: strings bare when they are words, numbers as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def split_values(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes: ``[32,64],[128]`` is two values."""
    out, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    return out + [text[start:]]


def parse_grid(text: str) -> tuple[str, tuple[str, ...]]:
    """``KEY=V1,V2,...`` -> (key, values)."""
    key, sep, rest = text.partition("=")
    where = f"--grid {text!r}"
    if not sep or not rest.strip():
        raise ConfigError(f"{where}: expected KEY=V1,V2,... (e.g. optim.lr=0.01,0.1)")
    values = tuple(v.strip() for v in split_values(rest))
    if any(not v for v in values):
        raise ConfigError(f"{where}: an empty value")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: a value given twice")
    return _key(key, where), values


def parse_random(text: str) -> tuple[str, Range | Choice]:
    """``KEY=LO:HI[:log]`` -> a Range; ``KEY=A,B,...`` -> a Choice."""
    key, sep, rest = text.partition("=")
    where = f"--random {text!r}"
    rest = rest.strip()
    if not sep or not rest:
        raise ConfigError(f"{where}: expected KEY=LO:HI[:log] or KEY=A,B,... (e.g. optim.lr=1e-4:1e-1:log)")
    key = _key(key, where)
    if ":" not in rest:
        choices = tuple(v.strip() for v in split_values(rest))
        if len(choices) < 2 or any(not c for c in choices):
            raise ConfigError(f"{where}: a choice needs two or more values (A,B,...), or a range LO:HI")
        return key, Choice(choices)
    parts = rest.split(":")
    log = len(parts) == 3 and parts[2].strip() == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        raise ConfigError(f"{where}: expected LO:HI or LO:HI:log")
    return key, _range(parts[0].strip(), parts[1].strip(), log, where)


def _range(lo_text: Any, hi_text: Any, log: bool, where: str) -> Range:
    try:
        lo, hi = float(lo_text), float(hi_text)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: LO and HI must be numbers, got {lo_text!r} and {hi_text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ConfigError(f"{where}: LO must be below HI (finite numbers)")
    if log and lo <= 0:
        raise ConfigError(f"{where}: a log range needs LO > 0")
    integer = all(isinstance(x, int) or (isinstance(x, str) and x.lstrip("-").isdigit()) for x in (lo_text, hi_text))
    return Range(lo, hi, log, integer)


def from_table(table: Any, source: str) -> tuple[Space, dict]:
    """A preset's ``[sweep]`` table -> (space, options: metric, trials, method, parallel, prune)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [sweep] must be a table")
    allowed = {"grid", "random", "metric", "trials", "method", "parallel", "prune"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{source}: [sweep] has unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    space = Space()
    for key, values in (table.get("grid") or {}).items():
        where = f"{source}: [sweep] grid {key!r}"
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: expected a list of values")
        space.grid[_key(key, where)] = tuple(_text(v) for v in values)
    for key, spec in (table.get("random") or {}).items():
        where = f"{source}: [sweep] random {key!r}"
        if isinstance(spec, list) and len(spec) >= 2:
            space.random[_key(key, where)] = Choice(tuple(_text(v) for v in spec))
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
            space.random[_key(key, where)] = _range(spec["low"], spec["high"], bool(spec.get("log")), where)
        else:
            raise ConfigError(f"{where}: expected a list of two or more choices or {{ low = ..., high = ..., log = true }}")
    options = {k: table[k] for k in ("metric", "trials", "method", "parallel", "prune") if k in table}
    return space, options


def check_plan_size(space: Space, method: str, trials: int) -> None:
    """Refuse a sweep that would plan nothing or too much (one line)."""
    if space.is_empty():
        raise ConfigError("sweep: no parameters to search (give --grid, --random or a [sweep] table in the preset)")
    if method == "grid" and space.random:
        raise ConfigError("sweep: --random needs --trials N (random search) or --optuna; a grid alone is searched exhaustively")
    count = len(space.grid_points()) if method == "grid" else trials
    if count < 1:
        raise ConfigError("sweep: --trials must be at least 1")
    if count > MAX_TRIALS:
        raise ConfigError(f"sweep: {count} trials planned (at most {MAX_TRIALS})")
