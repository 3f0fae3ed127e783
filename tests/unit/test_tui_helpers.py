"""Pure helpers of the TUI: decimation, bounded series, number formatting, dialog parsing."""

from __future__ import annotations

import math

import pytest

from tui_train.core.config import ConfigError, from_dict
from tui_train.tui import format as fmt
from tui_train.tui.screens.hyperparameter_dialog import parse_hyperparameter
from tui_train.tui.screens.launcher_screen import edit_config
from tui_train.tui.screens.learning_rate_dialog import parse_learning_rate
from tui_train.tui.series import Series, decimate
from tui_train.tui.widgets.metric_plot import x_ticks, y_ticks


def test_decimate_keeps_short_series_and_drops_non_finite():
    xs, ys = decimate([0, 1, 2, 3], [1.0, math.nan, math.inf, 2.0], 10)
    assert (xs, ys) == ([0, 3], [1.0, 2.0])


def test_decimate_bounds_points_and_keeps_extremes_and_ends():
    n = 10_000
    xs = list(range(n))
    ys = [math.sin(i / 50) for i in xs]
    ys[4321] = 50.0   # a spike a plain stride would skip
    ys[7777] = -50.0
    dx, dy = decimate(xs, ys, 200)
    assert len(dx) <= 200
    assert dx == sorted(dx)
    assert (dx[0], dx[-1]) == (0, n - 1)
    assert 50.0 in dy and -50.0 in dy
    assert max(dy) == 50.0 and min(dy) == -50.0


@pytest.mark.parametrize("max_points", [0, 1, 2, 3, 4, 5, 17])
def test_decimate_small_budgets(max_points):
    dx, dy = decimate(list(range(100)), [float(i % 7) for i in range(100)], max_points)
    assert len(dx) == len(dy) <= max_points


def test_series_memory_is_bounded_and_shape_kept():
    s = Series(capacity=256)
    for i in range(100_000):
        s.append(i, 1.0 if i != 55_555 else 9.0)
    assert len(s) <= 256
    assert 9.0 in s.ys
    assert s.xs[-1] == 99_999
    assert not s.append(1, math.nan) and not s.append(math.inf, 1.0) and not s.append(2, None)


def test_format_never_shows_raw_non_finite():
    assert fmt.num(math.nan) == "nan"
    assert fmt.num(math.inf) == "inf"
    assert fmt.pct(math.nan) == fmt.DASH
    assert fmt.lr(3e-4) == "3.00e-04"
    assert fmt.duration(math.inf) == fmt.DASH
    assert fmt.duration(3725) == "1:02:05"
    assert fmt.rate(12345.0) == "12.3k/s"
    assert fmt.status_label("early_stopped") == "EARLY STOPPED"
    assert fmt.status_label("completed") == "FINISHED"


@pytest.mark.parametrize("text,value", [("3e-4", 3e-4), ("0.001", 0.001), (" 1 ", 1.0), ("1E-2", 0.01)])
def test_parse_learning_rate_accepts(text, value):
    assert parse_learning_rate(text) == value


@pytest.mark.parametrize("text", ["", "abc", "0", "-1e-3", "nan", "inf", "-inf", "1e-3x"])
def test_parse_learning_rate_rejects(text):
    with pytest.raises(ValueError):
        parse_learning_rate(text)


def test_parse_hyperparameter():
    assert parse_hyperparameter("momentum", "0.9") == 0.9
    assert parse_hyperparameter("patience", "3") == 3.0
    for key, text in [("momentum", "1"), ("momentum", "nan"), ("weight_decay", "-0.1"), ("patience", "2.5"),
                      ("grad_clip", "abc"), ("lr", "0.1")]:
        with pytest.raises(ValueError):
            parse_hyperparameter(key, text)


def test_edit_config_validates_through_core_config():
    base = from_dict({"name": "tiny", "description": "tiny test run", "data": {"dataset": "digits"}})
    cfg = edit_config(base, lr="3e-4", batch_size="16", epochs="2", optimizer="sgd")
    assert (cfg.optim.lr, cfg.data.batch_size, cfg.train.epochs, cfg.optim.name) == (3e-4, 16, 2, "sgd")
    for kwargs in [dict(lr="nan"), dict(lr="-1"), dict(lr="x"), dict(batch_size="0"), dict(epochs="-3"), dict(epochs="1.5")]:
        args = dict(lr="1e-3", batch_size="8", epochs="1", optimizer="adam") | kwargs
        with pytest.raises(ConfigError):
            edit_config(base, **args)


def test_axis_ticks_are_round_and_short():
    _, labels, unit = y_ticks(5e-4, 1e-3, 3)
    assert unit == "×1e-3" and labels == ["0.6", "0.8", "1"]
    _, labels, unit = y_ticks(0.000589, 2.29, 5)
    assert unit == "" and labels == ["0.5", "1", "1.5", "2"]
    assert x_ticks(10, 1082.5, 4)[1] == ["500", "1000"]
    _, labels = x_ticks(0, 300, 4)
    assert labels == ["0", "100", "200", "300"]
    assert x_ticks(0, 50_000, 3)[1] == ["0", "20k", "40k"]


def _styles_per_char(text):
    from rich.console import Console

    console = Console(width=400, color_system="256", force_terminal=True)
    out = []
    for line in text.split("\n"):
        for seg in line.render(console):
            out.extend((ch, seg.style) for ch in seg.text)
    return out


def test_fast_ansi_decoder_matches_rich_on_plotext_output():
    import plotext as plt
    from rich.text import Text

    from tui_train.tui.widgets.metric_plot import fast_from_ansi

    for theme in ("default", "dark", "clear"):
        plt.clf()
        plt.theme(theme)
        plt.plotsize(60, 15)
        plt.plot([1, 2, 3, 4, 5], [1, 3, 2, 5, 4], marker="braille", color="blue")
        plt.plot([1, 3, 5], [2, 2, 3], marker="•", color="orange")
        plt.vline(3, "red")
        plt.text("L", 3, 5, color="red")
        plt.title("loss")
        canvas = plt.build()
        fast, rich = fast_from_ansi(canvas), Text.from_ansi(canvas)
        assert fast.plain == rich.plain
        assert _styles_per_char(fast) == _styles_per_char(rich)
