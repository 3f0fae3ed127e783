"""core.schedule: factor(step) for every schedule against hand-computed values; Plateau."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from tui_train.core.config import ScheduleConfig
from tui_train.core.schedule import Plateau, factor

SPE = 10  # steps per epoch
TOTAL = 100  # 10 epochs


def f(step: int, spe: int = SPE, total: int = TOTAL, **cfg) -> float:
    return factor(ScheduleConfig(**cfg), step, spe, total)


def test_constant_is_one_everywhere():
    assert [f(s, name="constant") for s in (0, 1, 50, 99, 500)] == [1.0] * 5


def test_plateau_schedule_factor_is_one():
    # plateau's reduction lives in Plateau.scale, not in factor()
    assert [f(s, name="plateau") for s in (0, 37, 99)] == [1.0] * 3


def test_step():
    cfg = dict(name="step", step_epochs=2, gamma=0.1)
    assert f(0, **cfg) == 1.0
    assert f(19, **cfg) == 1.0            # epoch 1
    assert f(20, **cfg) == pytest.approx(0.1)   # epoch 2
    assert f(39, **cfg) == pytest.approx(0.1)
    assert f(40, **cfg) == pytest.approx(0.01)  # epoch 4
    assert f(99, **cfg) == pytest.approx(1e-4)  # epoch 9 -> 9 // 2 = 4 decays


def test_exponential():
    cfg = dict(name="exponential", gamma=0.5)
    assert f(0, **cfg) == 1.0
    assert f(9, **cfg) == 1.0
    assert f(10, **cfg) == pytest.approx(0.5)
    assert f(35, **cfg) == pytest.approx(0.125)
    assert f(99, **cfg) == pytest.approx(0.5**9)


@pytest.mark.parametrize("epoch", [0, 1, 2, 3, 8, 99])
def test_inverse_sqrt_is_one_over_sqrt_of_one_plus_epoch(epoch):
    for within in (0, SPE - 1):
        assert f(epoch * SPE + within, total=1000, name="inverse_sqrt") == pytest.approx((1 + epoch) ** -0.5)


def test_inverse_sqrt_values():
    assert f(0, name="inverse_sqrt") == 1.0
    assert f(30, name="inverse_sqrt") == pytest.approx(0.5)    # epoch 3 -> 4^-0.5
    assert f(80, name="inverse_sqrt") == pytest.approx(1 / 3)  # epoch 8 -> 9^-0.5


def test_cosine_endpoints_and_midpoint():
    assert f(0, name="cosine") == pytest.approx(1.0)
    assert f(50, name="cosine") == pytest.approx(0.5)
    assert f(25, name="cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f(100, name="cosine") == pytest.approx(0.0, abs=1e-12)
    assert f(150, name="cosine") == pytest.approx(0.0, abs=1e-12)  # clamped past the end
    # the floor
    assert f(0, name="cosine", min_factor=0.1) == pytest.approx(1.0)
    assert f(50, name="cosine", min_factor=0.1) == pytest.approx(0.55)
    assert f(100, name="cosine", min_factor=0.1) == pytest.approx(0.1)


def test_cosine_is_monotone_non_increasing():
    vals = [f(s, name="cosine") for s in range(TOTAL + 1)]
    assert all(a >= b for a, b in pairwise(vals))


def test_onecycle_start_peak_end():
    cfg = dict(name="onecycle", onecycle_pct=0.3, onecycle_div=25.0, onecycle_final_div=1e4)
    assert f(0, **cfg) == pytest.approx(1 / 25)
    assert f(30, **cfg) == pytest.approx(1.0)  # peak at pct of the run
    assert f(15, **cfg) == pytest.approx(1 / 25 + (1 - 1 / 25) * 0.5)  # halfway up the cosine rise
    assert f(100, **cfg) == pytest.approx(1 / 25 / 1e4)
    assert f(65, **cfg) == pytest.approx(1 / 25 / 1e4 + (1 - 1 / 25 / 1e4) * 0.5)  # halfway down
    vals = [f(s, **cfg) for s in range(TOTAL + 1)]
    assert max(vals) == pytest.approx(1.0)
    assert vals.index(max(vals)) == 30
    assert all(a <= b for a, b in pairwise(vals[:31]))
    assert all(a >= b for a, b in pairwise(vals[30:]))


def test_warmup_ramp_then_schedule():
    cfg = dict(name="constant", warmup_steps=4)
    assert [f(s, **cfg) for s in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_warmup_before_cosine_starts_the_cosine_at_one():
    cfg = dict(name="cosine", warmup_steps=10)
    assert f(0, **cfg) == pytest.approx(0.1)
    assert f(9, **cfg) == pytest.approx(1.0)
    assert f(10, **cfg) == pytest.approx(1.0)       # cosine proper starts after warmup
    assert f(55, **cfg) == pytest.approx(0.5)       # midpoint of the remaining 90 steps
    assert f(100, **cfg) == pytest.approx(0.0, abs=1e-12)


def test_warmup_never_exceeds_one_and_is_positive():
    for name in ("constant", "step", "exponential", "cosine", "onecycle", "inverse_sqrt"):
        vals = [f(s, name=name, warmup_steps=7) for s in range(TOTAL)]
        assert all(0 < v <= 1.0 + 1e-12 for v in vals), name


def test_degenerate_sizes_do_not_divide_by_zero():
    for name in ("constant", "step", "exponential", "cosine", "onecycle", "inverse_sqrt"):
        assert math.isfinite(factor(ScheduleConfig(name=name), 0, 0, 0))
        assert math.isfinite(factor(ScheduleConfig(name=name, warmup_steps=5), 5, 1, 5))


def test_factor_is_pure():
    """A pure function of the step: asked in any order, interleaved with other schedules (a
    version that kept the previous step, or state shared between configs, gives other values)."""
    import random

    cfgs = [ScheduleConfig(name=n, warmup_steps=5) for n in ("constant", "step", "exponential", "cosine", "onecycle", "inverse_sqrt")]
    in_order = {(i, s): factor(c, s, SPE, TOTAL) for i, c in enumerate(cfgs) for s in range(TOTAL)}
    asks = list(in_order)
    random.Random(0).shuffle(asks)
    assert {(i, s): factor(cfgs[i], s, SPE, TOTAL) for i, s in asks} == in_order
    assert len({v for (i, _), v in in_order.items() if cfgs[i].name == "cosine"}) > TOTAL // 2  # it does vary with the step


# --------------------------------------------------------------------------- Plateau

def test_plateau_reduces_after_patience_epochs_without_improvement():
    p = Plateau(factor=0.5, patience=2, mode="min")
    assert p.update(1.0) is False and p.best == 1.0
    assert p.update(0.9) is False and p.best == 0.9
    assert p.update(0.95) is False and p.bad_epochs == 1
    assert p.update(0.95) is False and p.bad_epochs == 2
    assert p.update(0.91) is True  # third bad epoch > patience 2
    assert p.scale == 0.5 and p.bad_epochs == 0
    assert p.update(0.92) is False
    assert p.update(0.92) is False
    assert p.update(0.92) is True and p.scale == 0.25
    assert p.update(0.5) is False and p.best == 0.5 and p.bad_epochs == 0 and p.scale == 0.25


def test_plateau_max_mode_and_zero_patience():
    p = Plateau(factor=0.1, patience=0, mode="max")
    assert p.update(0.5) is False
    assert p.update(0.6) is False and p.best == 0.6
    assert p.update(0.6) is True and p.scale == pytest.approx(0.1)  # equal is not an improvement
    assert p.update(0.55) is True and p.scale == pytest.approx(0.01)


def test_plateau_ignores_non_finite_values():
    p = Plateau(factor=0.5, patience=0, mode="min")
    p.update(1.0)
    for v in (math.nan, math.inf, -math.inf):
        assert p.update(v) is False
    assert p.scale == 1.0 and p.best == 1.0 and p.bad_epochs == 0


def test_plateau_state_roundtrip():
    p = Plateau(factor=0.5, patience=1, mode="min")
    for v in (1.0, 1.1, 1.2, 1.3):
        p.update(v)
    q = Plateau(factor=0.5, patience=1, mode="min")
    q.load_state_dict(p.state_dict())
    assert (q.scale, q.best, q.bad_epochs) == (p.scale, p.best, p.bad_epochs)
    assert [q.update(v) for v in (1.4, 1.5)] == [p.update(v) for v in (1.4, 1.5)]
