"""Headless, a NaN loss: the last good weights are saved and the command exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from tests.nan_model import SPEC as NAN_SPEC
from tui_train.core.train.checkpoint import load
from tui_train.tui.cli import app


def test_headless_nan_saves_the_last_good_weights_and_exits_1(tmp_path):
    res = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                   "--set", f'model.name="{NAN_SPEC}"', "--set", "model.kwargs={after = 30}", "--set", "train.log_every=5"])
    assert res.exit_code == 1, res.output
    assert "non-finite loss" in res.output
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["reason"]
    saved = list((run_dir / "checkpoints").glob("*nonfinite*.pt"))
    assert saved, sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    for tensor in load(Path(saved[0]))["model"].values():
        assert torch.isfinite(tensor).all()
