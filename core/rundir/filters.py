"""Filter words for the runs list (``tui-train runs --filter``, the Runs screen's filter box).

A filter is words, all of which must hold (AND)::

    lr>=1e-3 optimizer=adam status=completed best>0.9 sweep=digits-mlp tag=baseline optim.lr<0.1 note=warmup

A word ``KEY OP VALUE`` compares one value of the run (:data:`FILTER_KEYS`, or a sweep trial's
parameter by its preset key, such as ``optim.lr``) with ``OP`` one of ``= != < <= > >=``
(spaces around the operator are allowed: ``lr >= 1e-3``; quotes keep spaces in a value:
``note="new data"``). Numbers are compared as numbers (``1e-3`` equals ``0.001``; ``test>90%``;
durations take ``s``, ``m``, ``h``: ``duration<5m``; ``started`` takes a date: ``started>=2026-01-02``).
Text is compared case-insensitively: ``=`` on a word-like key (status, preset, optimizer, tag...)
matches the whole value, ``*`` standing for any characters (``preset=mnist*``); on a free-text
key (note, name, parent) it matches anywhere in the text. ``!=`` is the opposite of ``=``;
``KEY=`` (no value) keeps the runs without one (``sweep=``: the runs that are no trial), and
``KEY!=`` those with one. A run without the value never passes ``< <= > >=``.

Any other word (no ``=``, ``<`` or ``>``) keeps the rows that have it somewhere in their text, as
the filter always did. Bad filter text raises :class:`FilterError` with one line naming the word
and what is allowed. Plain Python, no torch and no UI: the Runs screen and the CLI both use it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_train.core.rundir.runs import RunRow

OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
"""Comparison operators, longest first (the order words are split by)."""

ORDERING = ("<", "<=", ">", ">=")
"""Operators that need a value and never pass a run without one."""

NUMBER, SECONDS, TIME, WORD, TEXT = "number", "seconds", "time", "word", "text"
"""How a key's value is compared: a number; seconds (a number with s/m/h); a point in time (Unix
seconds, or an ISO date); a word (``=``: the whole value, ``*`` wildcards); free text (``=``: anywhere in it)."""


KIND_HELP = {NUMBER: ("a number", "numbers: 0.001, 1e-3, 90%"), SECONDS: ("a duration", "durations: 90, 90s, 5m, 2h"),
             TIME: ("a date", "dates: 2026-01-02, 2026-01-02T13:00, or Unix seconds")}
"""Kind -> (one value, the values it takes), for the error line."""


@dataclass(frozen=True)
class FilterKey:
    """One key a filter word can compare."""

    kind: str
    """:data:`NUMBER`, :data:`SECONDS`, :data:`TIME`, :data:`WORD` or :data:`TEXT`."""
    get: Callable[[RunRow], Any]
    """The row's value (None when it has none; a tuple for several, e.g. tags)."""
    help: str
    """What it is, for the README and the error that lists the keys."""


def _finite(value: Any) -> Any:
    """``value``, or None when it is a float that is not finite (never compared)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


FILTER_KEYS: dict[str, FilterKey] = {
    "status": FilterKey(WORD, lambda r: r.status,
                        "completed, early_stopped, stopped, unsaved, failed, interrupted, unfinished, running, paused"),
    "preset": FilterKey(WORD, lambda r: r.preset, "the preset's name"),
    "sweep": FilterKey(WORD, lambda r: (r.sweep, r.sweep_name) if r.sweep else None,
                       "a trial's sweep: its folder's name, or the name after -sweep- (a path names its folder)"),
    "trial": FilterKey(NUMBER, lambda r: r.trial, "a trial's number in its sweep"),
    "started": FilterKey(TIME, lambda r: r.started, "start time: a date (2026-01-02, 2026-01-02T13:00) or Unix seconds"),
    "duration": FilterKey(SECONDS, lambda r: r.duration, "wall time: seconds, or 90s, 5m, 2h"),
    "epochs": FilterKey(NUMBER, lambda r: r.epochs, "epochs completed"),
    "best": FilterKey(NUMBER, lambda r: r.best.get("value"), "the best value of the monitored metric"),
    "test": FilterKey(NUMBER, lambda r: r.test_metric, "the headline test metric (accuracy, or R²): 0.9 or 90%"),
    "lr": FilterKey(NUMBER, lambda r: r.hyperparameters.get("lr"), "the configured learning rate"),
    "batch_size": FilterKey(NUMBER, lambda r: r.hyperparameters.get("batch_size"), "the batch size"),
    "optimizer": FilterKey(WORD, lambda r: r.hyperparameters.get("optimizer"), "sgd, adam, adamw..."),
    "schedule": FilterKey(WORD, lambda r: r.hyperparameters.get("schedule"), "constant, cosine, step..."),
    "interventions": FilterKey(NUMBER, lambda r: r.interventions, "commands applied during the run"),
    "parent": FilterKey(TEXT, lambda r: Path(r.parent).name if r.parent else None, "a fork's parent run (its folder name)"),
    "tags": FilterKey(WORD, lambda r: tuple(r.tags) or None, "the run's tags (= : it has that tag)"),
    "note": FilterKey(TEXT, lambda r: r.note or None, "the run's note"),
    "name": FilterKey(TEXT, lambda r: r.name, "the run's folder name"),
    "time_to_target": FilterKey(SECONDS, lambda r: r.time_to_target, "training seconds until train.target was reached"),
}
"""Key -> how it is read and compared; every :data:`core.rundir.runs.SORT_KEYS` column is one."""

ALIASES = {"tag": "tags", "batch": "batch_size", "run": "name", "optim": "optimizer", "interv": "interventions"}
"""Other names of keys (the table's headers among them)."""

HP_PARAMS = {"optim.lr": "lr", "data.batch_size": "batch_size", "optim.name": "optimizer", "schedule.name": "schedule"}
"""Preset keys a run that is no trial still answers, from its configured hyperparameters."""

_KEY = r"[A-Za-z_][\w.]*"
_COMPARISON = re.compile(rf"({_KEY})(!=|<=|>=|=|<|>)(.*)", re.S)
_BARE_KEY = re.compile(_KEY)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


class FilterError(ValueError):
    """Filter text that cannot be read: one line naming the word and what is allowed."""


@dataclass(frozen=True)
class Condition:
    """One word of a filter."""

    word: str
    """The word as typed (after joining ``lr >= 1``)."""
    key: str = ""
    """A :data:`FILTER_KEYS` key, a preset key (a trial's parameter, with a dot), or '' for a plain word."""
    op: str = ""
    """One of :data:`OPERATORS` ('' for a plain word)."""
    value: str = ""
    """The text after the operator, quotes removed (a plain word: the word, case-folded)."""
    number: float | None = None
    """``value`` as a number, when it reads as one for the key."""

    def matches(self, row: RunRow, text: str) -> bool:
        """Whether ``row`` passes this word (``text``: its searchable text, case-folded)."""
        if not self.key:
            return self.value in text
        return _compare(self, _value_of(row, self.key))


@dataclass(frozen=True)
class Filter:
    """Filter words, all of which must hold."""

    conditions: tuple[Condition, ...] = ()
    """The words, in the order typed."""

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def matches(self, row: RunRow, text: str | None = None) -> bool:
        """Whether ``row`` passes every word. ``text`` is what a plain word is looked for in
        (case-folded; the Runs screen passes its cells' text); default :func:`search_text`."""
        if text is None and any(not c.key for c in self.conditions):
            text = search_text(row)
        return all(c.matches(row, text or "") for c in self.conditions)

    def apply(self, rows: Iterable[RunRow], text: Callable[[RunRow], str] | None = None) -> list[RunRow]:
        """The rows that pass, in their order (``text``: a row's searchable text, as in :meth:`matches`)."""
        return [r for r in rows if self.matches(r, text(r) if text is not None else None)]


def search_text(row: RunRow) -> str:
    """What a plain word is looked for in, case-folded: the names, status, preset, hyperparameters,
    sweep, parameters, tags and note (not the folders' paths, whose common part would match every run)."""
    hp = row.hyperparameters
    parts = [row.name, row.status, row.preset, Path(row.parent).name if row.parent else "", row.sweep,
             *(str(hp.get(k)) for k in ("lr", "batch_size", "optimizer", "schedule") if hp.get(k) is not None),
             *(f"{k}={_param_text(v)}" for k, v in row.params.items()), *row.tags, row.note]
    return " ".join(p for p in parts if p).casefold()


def key_names() -> str:
    """The keys a filter word can name, for an error line."""
    return ", ".join(FILTER_KEYS) + ", or a sweep trial's preset key (optim.lr, model.hidden...)"


def parse_filter(text: str | Iterable[str]) -> Filter:
    """The filter of ``text`` (or of several texts, all of whose words must hold); FilterError
    with one line for a word that cannot be read."""
    texts = [text] if isinstance(text, str) else list(text)
    words = [w for t in texts for w in _join_operators(_split(t))]
    return Filter(tuple(_condition(w) for w in words if w))


def _split(text: str) -> list[str]:
    """Words of ``text`` split at spaces outside double quotes (the quotes kept for :func:`_condition`)."""
    words: list[str] = []
    current: list[str] = []
    quoted = started = False
    for ch in text:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch.isspace() and not quoted:
            if started:
                words.append("".join(current))
            current, started = [], False
            continue
        else:
            started = True
        current.append(ch)
    if quoted:
        raise FilterError(f"filter: a quote (\") is not closed in {text.strip()!r}")
    if started:
        words.append("".join(current))
    return words


def _join_operators(words: list[str]) -> list[str]:
    """``lr >= 1e-3``, ``lr>= 1e-3`` and ``lr >=1e-3`` as the one word ``lr>=1e-3``."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        bare_key = bool(out) and _BARE_KEY.fullmatch(out[-1]) is not None
        if word in OPERATORS and bare_key:
            out[-1] += word + (words[i + 1] if i + 1 < len(words) else "")
            i += 2
            continue
        if word[:1] in "=<>!" and not word.startswith('"') and bare_key and len(word) > 1:
            out[-1] += word
        elif ((m := _COMPARISON.fullmatch(word)) and m.group(2) in ORDERING and not m.group(3) and i + 1 < len(words)
              and not any(c in words[i + 1] for c in "=<>")):
            out.append(word + words[i + 1])  # lr>= 1e-3 (KEY= alone is a word of its own: the runs without one)
            i += 1
        else:
            out.append(word)
        i += 1
    return out


def _unquote(text: str) -> str:
    return text.replace('"', "")


def _condition(word: str) -> Condition:
    """One word as a condition; FilterError when it has an operator but is no ``KEY OP VALUE``."""
    if word.startswith('"') or not any(c in word for c in "=<>"):
        return Condition(word=word, value=_unquote(word).casefold())
    m = _COMPARISON.fullmatch(word)
    if m is None:
        raise FilterError(f"filter word {word!r}: not KEY OP VALUE (OP: {' '.join(OPERATORS)}; "
                          "quote a word to look for it as it is)")
    key, op, value = m.group(1), m.group(2), _unquote(m.group(3))
    if "." not in key:
        key = ALIASES.get(key.lower(), key.lower())
        if key not in FILTER_KEYS:
            raise FilterError(f"filter word {word!r}: no key {m.group(1)!r} (keys: {key_names()})")
    if not value and op in ORDERING:
        raise FilterError(f"filter word {word!r}: {op} needs a value after it")
    kind = FILTER_KEYS[key].kind if key in FILTER_KEYS else ""
    number = None
    if value:
        number = _read_number(value, kind)
        if number is None and kind in (NUMBER, SECONDS, TIME):
            one, many = KIND_HELP[kind]
            raise FilterError(f"filter word {word!r}: {value!r} is not {one} ({key} compares {many})")
    return Condition(word=word, key=key, op=op, value=value, number=number)


def _read_number(value: str, kind: str) -> float | None:
    """``value`` as the key's kind of number (None when it is not one)."""
    text = value.strip()
    if kind == TIME:
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    scale = 1.0
    if kind == SECONDS:
        m = re.fullmatch(r"(.*?)(min|s|m|h)?", text)
        text, scale = (m.group(1), _UNITS[m.group(2) or ""]) if m else (text, 1.0)
    elif text.endswith("%") and kind in (NUMBER, ""):
        text, scale = text[:-1], 0.01
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text) * scale
    return number if math.isfinite(number) else None


def _value_of(row: RunRow, key: str) -> Any:
    """The row's value for ``key`` (None when it has none)."""
    spec = FILTER_KEYS.get(key)
    if spec is not None:
        return _finite(spec.get(row))
    if key in row.params:
        return _finite(row.params[key])
    return _finite(row.hyperparameters.get(HP_PARAMS[key])) if key in HP_PARAMS else None


def _param_text(value: Any) -> str:
    """A parameter as a filter value is written: true/false, 0.01, [128,64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _compare(cond: Condition, value: Any) -> bool:
    """``value OP cond.value`` as the key's kind says; ``!=`` is the opposite of ``=``."""
    if cond.op == "!=":
        return not _compare(Condition(cond.word, cond.key, "=", cond.value, cond.number), value)
    values = value if isinstance(value, tuple) else (value,)
    values = tuple(v for v in values if v is not None and v != "")
    if not values:
        return cond.op == "=" and not cond.value  # KEY= keeps the runs without a value
    if not cond.value:
        return False  # KEY= on a run that has one
    return any(_compare_one(cond, v) for v in values)


def _compare_one(cond: Condition, value: Any) -> bool:
    op = cond.op
    if isinstance(value, int | float) and not isinstance(value, bool):
        if cond.number is None:
            return False  # a number against text (a trial's parameter): never equal, never ordered
        a, b = float(value), cond.number
        equal = math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)  # 1e-3 is 0.001, and 0.1 + 0.2 is 0.3
        return {"=": equal, "<": a < b and not equal, "<=": a < b or equal, ">": a > b and not equal,
                ">=": a > b or equal}[op]
    text = (_param_text(value) if not isinstance(value, str) else value).casefold()
    want = cond.value.casefold()
    if op == "=":
        if FILTER_KEYS.get(cond.key, FilterKey(WORD, _finite, "")).kind == TEXT:
            return _pattern(want).search(text) is not None
        if cond.key == "sweep" and ("/" in want or "\\" in want):
            want = Path(cond.value).name.casefold()  # a sweep folder given by its path
        if isinstance(value, list | dict):
            want = want.replace(" ", "")
        return _pattern(want).fullmatch(text) is not None
    return {"<": text < want, "<=": text <= want, ">": text > want, ">=": text >= want}[op]


def _pattern(text: str) -> re.Pattern[str]:
    """``text`` as a regular expression where ``*`` stands for any characters."""
    return re.compile(".*".join(re.escape(p) for p in text.split("*")), re.S)
