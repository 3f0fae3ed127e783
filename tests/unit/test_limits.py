"""One table of live limits, and everyone agrees with it: at each limit, just beyond it, and on
values that are no number at all.

The judges: ``core.limits.check``; the config loader (the value at the field's dotted key); the
TUI dialogs' parse functions (given the text a person would type); the fake trainer; the real
engine (one paused run that answers every case). The config-only cross rule (nesterov needs
momentum > 0) is kept out of the way: SGD without nesterov.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import pytest

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import limits
from tui_train.core.config import ConfigError, from_dict
from tui_train.core.testing import FakeTrainer
from tui_train.core.train.engine import Trainer
from tui_train.tui.screens.hyperparameter_dialog import parse_hyperparameter
from tui_train.tui.screens.learning_rate_dialog import parse_learning_rate

WATCHDOG_S = 30.0
"""A run that stalls ends as interrupted after this (the test then fails on missing answers)."""

BASE = {
    "name": "limits",
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {"name": "mlp", "hidden": [16]},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.5, "nesterov": False},
    "train": {"epochs": 1, "max_steps": 4, "log_every": 1, "device": "cpu", "num_threads": 1},
}
"""The config every case is loaded into, and the engine's run."""

INSIDE = {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.01, "grad_clip": 1.0, "patience": 3}
"""A plainly valid value of each key."""


@dataclass(frozen=True)
class Case:
    """One value to judge."""

    key: str
    """The live key."""
    label: str
    """What the case probes, for messages."""
    value: object
    """The value, as a command carries it and a preset holds it."""
    text: str
    """The same value as typed in a dialog."""
    ok: bool
    """Whether it must be accepted."""

    def command(self) -> C.Command:
        return C.SetLearningRate(self.value) if self.key == "lr" else C.SetHyperparameter(self.key, self.value)


def _text(v: object) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def cases_for(key: str) -> list[Case]:
    """Each limit, one step (one ulp, or 1 for whole numbers) on either side, and the non-numbers."""
    lim = limits.LIMITS[key]
    step = (lambda v, d: v + d) if lim.integer else (lambda v, d: math.nextafter(v, d * math.inf))
    out: list[tuple[str, object, bool]] = [("inside", INSIDE[key], True)]
    if lim.lo is not None:
        lo = int(lim.lo) if lim.integer else float(lim.lo)
        out += [("at the lower limit", lo, not lim.lo_exclusive), ("just below the lower limit", step(lo, -1), False),
                ("just above the lower limit", step(lo, 1), True)]
    if lim.hi is not None:
        hi = int(lim.hi) if lim.integer else float(lim.hi)
        out += [("at the upper limit", hi, not lim.hi_exclusive), ("just above the upper limit", step(hi, 1), False),
                ("just below the upper limit", step(hi, -1), True)]
    else:
        out.append(("huge", 10**9 if lim.integer else 1e300, True))
    out += [("nan", math.nan, False), ("inf", math.inf, False), ("-inf", -math.inf, False),
            ("bool", True, False), ("text", "abc", False), ("none", None, False)]
    if lim.integer:
        out += [("not whole", 2.5, False), ("a whole float", 3.0, True)]
    return [Case(key, label, v, _text(v), ok) for label, v, ok in out]


CASES = [c for key in limits.LIVE_KEYS for c in cases_for(key)]

SCALES = [  # (base lr set first, factor, accepted)
    (5.0, 2.0, True),  # exactly the cap
    (5.0, math.nextafter(2.0, math.inf), False),  # just past it
    (5.0, 4.0, False),
    (1e-3, 0.5, True),
    (1e-3, 0.0, False),
    (1e-3, -1.0, False),
    (1e-3, math.nan, False),
    (1e-3, math.inf, False),
]
"""ScaleLearningRate: the resulting lr is what is checked."""


def scale_commands() -> list[C.Command]:
    out: list[C.Command] = []
    for base, factor, _ in SCALES:
        out += [C.SetLearningRate(base), C.ScaleLearningRate(factor)]
    return out


ALL_COMMANDS = [c.command() for c in CASES] + scale_commands()
"""What the fake and the engine are sent, in this order; each is acknowledged once."""


def acknowledgements(events: list[E.Event]) -> list[E.CommandApplied | E.CommandRejected]:
    """The answers to ALL_COMMANDS (the opening Pause's left out), checked to be one per command."""
    acks = [e for e in events if isinstance(e, E.CommandApplied | E.CommandRejected)]
    errors = [e.message for e in events if isinstance(e, E.RunError)]
    assert not errors, errors
    acks = acks[1:]  # the Pause
    assert [a.command for a in acks] == [c.name for c in ALL_COMMANDS]
    return acks


@pytest.fixture(scope="module")
def engine_acks(tmp_path_factory) -> list:
    """One paused engine run answers every command, then is interrupted."""
    trainer = Trainer(from_dict(BASE), runs_dir=tmp_path_factory.mktemp("limits-runs"))
    stop = threading.Event()
    events: list[E.Event] = []

    def sink(ev: E.Event) -> None:
        events.append(ev)
        if isinstance(ev, E.CommandApplied) and ev.command == "Pause":  # paused at the first step boundary
            for cmd in ALL_COMMANDS:
                trainer.submit(cmd)
        if sum(isinstance(e, E.CommandApplied | E.CommandRejected) for e in events) == 1 + len(ALL_COMMANDS):
            stop.set()

    trainer.submit(C.Pause())
    watchdog = threading.Timer(WATCHDOG_S, stop.set)
    watchdog.start()
    try:
        trainer.run(stop, sink)
    finally:
        watchdog.cancel()
    return acknowledgements(events)


@pytest.fixture(scope="module")
def fake_acks() -> list:
    fake = FakeTrainer(hyperparameters={"optimizer": "sgd", "lr": 0.05, "momentum": 0.5, "weight_decay": 0.0,
                                        "grad_clip": 0.0, "patience": 5})
    for cmd in [C.Pause(), *ALL_COMMANDS]:
        fake.submit(cmd)
    fake.finish()
    events: list[E.Event] = []
    fake.run(sink=events.append)
    return acknowledgements(events)


def _by_check(case: Case) -> bool:
    try:
        limits.check(case.key, case.value)
    except limits.LimitError:
        return False
    return True


def _by_config(case: Case) -> bool:
    value = case.value
    if limits.LIMITS[case.key].integer and isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)  # a preset writes 3, not 3.0 (the loader's type rule, not a limit)
    section, key = limits.LIVE_FIELDS[case.key].split(".")
    raw = {**BASE, section: {**BASE.get(section, {}), key: value}}
    try:
        from_dict(raw)
    except ConfigError:
        return False
    return True


def _by_dialog(case: Case) -> bool:
    try:
        if case.key == "lr":
            parse_learning_rate(case.text)
        else:
            parse_hyperparameter(case.key, case.text)
    except ValueError:
        return False
    return True


def _disagreements(key: str, accepted) -> list[str]:
    """The cases of ``key`` where ``accepted(index, case)`` differs from what the table says."""
    return [f"{c.label} ({c.value!r}): must be {'accepted' if c.ok else 'rejected'}"
            for i, c in enumerate(CASES) if c.key == key and bool(accepted(i, c)) != c.ok]


def test_the_table_is_the_config_ranges():
    """The limits as they are today (issue 8 changes none of them)."""
    assert limits.LIVE_KEYS == ("lr", "momentum", "weight_decay", "grad_clip", "patience")
    assert [(k, lim.lo, lim.lo_exclusive, lim.hi, lim.hi_exclusive, lim.integer) for k, lim in limits.LIMITS.items()] == [
        ("lr", 0.0, True, 10.0, False, False),
        ("momentum", 0.0, False, 1.0, True, False),
        ("weight_decay", 0.0, False, 1.0, False, False),
        ("grad_clip", 0.0, False, None, False, False),
        ("patience", 0, False, None, False, True),
    ]


@pytest.mark.parametrize("key", limits.LIVE_KEYS)
def test_check(key):
    assert _disagreements(key, lambda i, c: _by_check(c)) == []


@pytest.mark.parametrize("key", limits.LIVE_KEYS)
def test_config_loader_agrees(key):
    assert _disagreements(key, lambda i, c: _by_config(c)) == []


@pytest.mark.parametrize("key", limits.LIVE_KEYS)
def test_dialogs_agree(key):
    assert _disagreements(key, lambda i, c: _by_dialog(c)) == []


@pytest.mark.parametrize("key", limits.LIVE_KEYS)
def test_fake_agrees(key, fake_acks):
    assert _disagreements(key, lambda i, c: isinstance(fake_acks[i], E.CommandApplied)) == []


@pytest.mark.parametrize("key", limits.LIVE_KEYS)
def test_engine_agrees(key, engine_acks):
    assert _disagreements(key, lambda i, c: isinstance(engine_acks[i], E.CommandApplied)) == []


@pytest.mark.parametrize("who", ["engine", "fake"])
def test_rejections_give_the_limit_message(who, engine_acks, fake_acks):
    acks = {"engine": engine_acks, "fake": fake_acks}[who]
    wrong = []
    for case, ack in zip(CASES, acks):
        if isinstance(ack, E.CommandRejected):
            try:
                limits.check(case.key, case.value)
                want = "(accepted by check)"
            except limits.LimitError as err:
                want = str(err)
            if ack.reason != want:
                wrong.append((case.key, case.label, ack.reason, want))
    assert wrong == []


def test_accepted_values_are_stored_as_checked(engine_acks, fake_acks):
    """An accepted value is acknowledged as check returns it (whole numbers for patience)."""
    for case, e_ack, f_ack in zip(CASES, engine_acks, fake_acks):
        if case.ok:
            want = float(limits.check(case.key, case.value))
            assert (e_ack.key, e_ack.new) == (f_ack.key, f_ack.new) == (case.key, want), case


@pytest.mark.parametrize("who", ["engine", "fake"])
def test_scaling_past_the_cap_is_rejected(who, engine_acks, fake_acks):
    acks = {"engine": engine_acks, "fake": fake_acks}[who][len(CASES):]
    assert all(isinstance(a, E.CommandApplied) for a in acks[0::2])  # the base lr set before each
    assert [(base, factor, isinstance(a, E.CommandApplied)) for (base, factor, _), a in zip(SCALES, acks[1::2])] == SCALES


def test_scaling_rejections_give_the_same_reasons(engine_acks, fake_acks):
    def reasons(acks):
        return [a.reason for a in acks[len(CASES) + 1::2] if isinstance(a, E.CommandRejected)]
    assert reasons(fake_acks) == reasons(engine_acks)
