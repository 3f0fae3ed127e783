"""`tui-train lr-find` headless, as a person or a script runs it: the summary ends with the
suggestion, --json holds the whole curve (bad input: tests/unit/test_cli.py); and the launcher's
subprocess (core.live.spawn.run_lr_find running core.train.lr_sweep) answers with the curve, or one line."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.e2e.test_headless_signals import tui_cmd
from tui_train.core import config as cfgmod
from tui_train.core import lr_find as L
from tui_train.core.live.spawn import run_lr_find
from tui_train.core.lr_find import SweepError

pytestmark = pytest.mark.slow


def lr_find(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tui_cmd() + ["lr-find", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_headless_lr_find_ends_with_the_suggestion(tmp_path):
    out = lr_find(tmp_path, "digits-mlp", "--headless", "--steps", "30", "--set", "train.num_threads=1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("lr range test: digits-mlp on cpu, lr 1e-07 -> 10 over 30 steps")
    assert "valley" in lines[-2]
    match = re.fullmatch(r"suggested lr: (\S+)", lines[-1])
    assert match and 1e-7 <= float(match.group(1)) <= 10
    assert not (tmp_path / "runs").exists()  # a sweep makes no run directory


def test_json_holds_the_whole_curve_and_every_suggestion(tmp_path):
    out = lr_find(tmp_path, "digits-mlp", "--json", "--steps", "20", "--start-lr", "1e-5", "--end-lr", "1")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["preset"], data["start_lr"], data["end_lr"], data["steps"]) == ("digits-mlp", 1e-5, 1.0, 20)
    assert len(data["lrs"]) == len(data["losses"]) == len(data["raw_losses"]) > 5
    assert set(data["suggestions"]) == {"valley", "steepest", "minimum/10"}
    assert data["suggested_lr"] == data["suggestions"]["valley"]


def test_the_launchers_subprocess_answers_with_the_curve_or_one_line():
    cfg = cfgmod.load_config("digits-mlp", ["train.num_threads=1"])
    curve, device = run_lr_find(cfg, steps=25)
    assert device == "cpu" and L.MIN_POINTS <= len(curve.lrs) <= 25 and curve.suggestion is not None
    bad = cfgmod.replace(cfg, **{"data.dataset": "user"})
    with pytest.raises(SweepError) as err:
        run_lr_find(bad, steps=10)
    assert "\n" not in str(err.value) and "data" in str(err.value)
