"""Headless, a NaN loss: the last good weights are saved and the command exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from core.checkpoint import load
from tui.cli import app

NAN_LATER = '''
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 10)
        self.calls = 0
    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.lin(x.flatten(1))
        return out * float("nan") if self.calls > 30 else out
'''


def test_headless_nan_saves_the_last_good_weights_and_exits_1(tmp_path):
    model = tmp_path / "nanmodel.py"
    model.write_text(NAN_LATER)
    res = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                   "--set", f'model.name="{model}:Net"', "--set", "train.log_every=5"])
    assert res.exit_code == 1, res.output
    assert "non-finite loss" in res.output
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["reason"]
    saved = list((run_dir / "checkpoints").glob("*nonfinite*.pt"))
    assert saved, sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    for tensor in load(Path(saved[0]))["model"].values():
        assert torch.isfinite(tensor).all()
