"""`tui-train export`: weights alone, loadable with plain torch or safetensors into the user's class."""

from __future__ import annotations

import queue
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from core.config import from_dict
from core.engine import Trainer
from tui.cli import app


class MyNet(torch.nn.Module):
    """What a user writes by hand for the digits-mlp shape (64 -> 32 -> 10), same layer indices."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.layers(x)


def trained(tmp_path: Path) -> tuple[Trainer, Path]:
    cfg = from_dict({"data": {"dataset": "digits"}, "model": {"name": "mlp", "hidden": [32]},
                     "train": {"epochs": 1, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path)
    q: queue.SimpleQueue = queue.SimpleQueue()
    t.run(sink=q.put)
    return t, t.run_dir


def test_export_safetensors_and_pt_load_into_a_users_model(tmp_path):
    trainer, run_dir = trained(tmp_path)
    runner = CliRunner()
    x = torch.randn(5, 1, 8, 8)
    trainer.model.eval()
    expected = trainer.model(x)
    for name in ("w.safetensors", "w.pt"):
        out = tmp_path / name
        res = runner.invoke(app, ["export", str(run_dir), "--out", str(out)])
        assert res.exit_code == 0, res.output
        state = load_file(str(out)) if name.endswith("safetensors") else torch.load(out, weights_only=True)
        mine = MyNet()
        mine.layers.load_state_dict(state)
        mine.eval()
        assert torch.allclose(mine(x), expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_export_rejects_unknown_format_and_bad_input(tmp_path):
    _, run_dir = trained(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "w.bin")])
    assert res.exit_code == 2 and "allowed: .safetensors, .pt" in res.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    res = runner.invoke(app, ["export", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "w.pt")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not (tmp_path / "w.pt").exists()


def test_every_export_records_what_the_model_needs(tmp_path):
    import json

    from safetensors import safe_open

    t, run_dir = trained(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("w.safetensors", "w.pt"):
        out = tmp_path / name
        r = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
        card = json.loads((tmp_path / f"{name}.json").read_text())  # the sidecar, for every format
        assert card["task"] == "classification" and card["input_shape"] == list(t.data.input_shape)
        assert card["class_names"] == list(t.data.class_names) and card["num_classes"] == 10
        if t.data.mean:
            assert card["normalize"]["mean"] == t.data.mean and card["normalize"]["std"] == t.data.std
        else:
            assert "normalize" not in card
        assert "target" not in card and card["model"]["name"] == "mlp" and card["model"]["hidden"] == [32]
        assert card["test"] == summary["test"] and card["step"] == t.state.step and card["torch"] == torch.__version__
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["tui_train"]) == json.loads((tmp_path / "w.safetensors.json").read_text())


def test_a_regression_export_records_the_target_scaling_to_undo(tmp_path):
    import json

    cfg = from_dict({"data": {"dataset": "regression", "samples": 300}, "model": {"name": "regression", "hidden": [5]},
                     "optim": {"loss": "mse"}, "early_stopping": {"monitor": "val_loss"}, "train": {"epochs": 1, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path)
    t.run(sink=queue.SimpleQueue().put)
    r = CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "r.pt")])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "r.pt.json").read_text())
    assert card["task"] == "regression" and card["class_names"] == []
    assert card["target"]["mean"] == t.data.target_mean and card["target"]["std"] == t.data.target_std
