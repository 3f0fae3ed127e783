"""`tui-train export`: weights alone, loadable with plain torch or safetensors into the user's class."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tui_train.core.config import from_dict
from tui_train.core.train.engine import Trainer
from tui_train.tui.cli import app


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


REPRODUCE = r"""
import json, sys
import pytest
import torch
assert not any(m.split(".")[0] in ("core", "tui", "tui_train") for m in sys.modules), "tui-train was imported"
kind, path, data = sys.argv[1], sys.argv[2], torch.load(sys.argv[3])
x, y = data["x"], data["y"]
if kind == "program":
    model = torch.export.load(path).module()
    outs = [model(x[:1]), model(x[1:8]), model(x)]  # any batch size
    assert outs[0].shape[0] == 1 and outs[1].shape[0] == 7
    out = outs[2]
else:  # the weights, with the preprocessing the sidecar records, in a class of one's own
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(path, "pt") as f:
        card = json.loads(f.metadata()["tui_train"])
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    net.load_state_dict({k.removeprefix("layers."): v for k, v in load_file(path).items()})
    n = card.get("normalize")
    xin = (x - torch.tensor(n["mean"])) / torch.tensor(n["std"]) if n else x
    out = net(xin)
if data["task"] == "classification":
    print(json.dumps({"accuracy": (out.argmax(1) == y).float().mean().item()}))
else:
    res = ((out.view(-1) - y.view(-1)) ** 2).sum().item()
    tot = ((y - y.mean()) ** 2).sum().item()
    print(json.dumps({"r2": 1 - res / tot, "mean_abs_y": y.abs().mean().item(), "mean_abs_pred": out.abs().mean().item()}))
"""


def _raw_test_split(t: Trainer, path: Path) -> None:
    """The test split as the dataset gives it (before tui-train's normalisation), for a fresh interpreter."""
    x, y = t.data.tensors("test")
    if t.data.mean:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = x * torch.tensor(t.data.std).view(shape) + torch.tensor(t.data.mean).view(shape)
    if t.data.task == "regression":
        y = y * t.data.target_std + t.data.target_mean
    torch.save({"x": x.cpu(), "y": y.cpu(), "task": t.data.task}, path)


def _reproduce(tmp_path: Path, kind: str, export: Path, data: Path) -> dict:
    import json
    import subprocess
    import sys

    script = tmp_path / "reproduce.py"
    script.write_text(REPRODUCE)
    r = subprocess.run([sys.executable, "-I", str(script), kind, str(export), str(data)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_program_and_the_weights_reproduce_the_runs_test_accuracy_without_tui_train(tmp_path):
    import json

    t, run_dir = trained(tmp_path)
    accuracy = json.loads((run_dir / "summary.json").read_text())["test"]["accuracy"]
    _raw_test_split(t, tmp_path / "test.pt")
    for kind, name in (("program", "m.pt2"), ("weights", "m.safetensors")):
        r = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        got = _reproduce(tmp_path, kind, tmp_path / name, tmp_path / "test.pt")
        assert abs(got["accuracy"] - accuracy) <= 0.001, (kind, got, accuracy)


def test_a_regression_program_returns_targets_in_the_datasets_units(tmp_path):
    import json

    cfg = from_dict({"data": {"dataset": "regression", "samples": 400}, "model": {"name": "regression", "hidden": [8]},
                     "optim": {"loss": "mse", "lr": 0.05}, "early_stopping": {"monitor": "val_loss"},
                     "train": {"epochs": 3, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path)
    t.run(sink=queue.SimpleQueue().put)
    r2 = json.loads((t.run_dir / "summary.json").read_text())["test"]["r2"]
    _raw_test_split(t, tmp_path / "test.pt")
    assert CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "r.pt2")]).exit_code == 0
    got = _reproduce(tmp_path, "program", tmp_path / "r.pt2", tmp_path / "test.pt")
    assert abs(got["r2"] - r2) <= 0.001, (got, r2)
    assert abs(t.data.target_std - 1.0) > 0.2  # the targets were standardised: the program must undo it
    assert 0.5 < got["mean_abs_pred"] / got["mean_abs_y"] < 2.0, got  # predictions in the dataset's units


def test_a_model_torch_export_cannot_trace_gets_one_line_pointing_to_safetensors(tmp_path, monkeypatch):
    _, run_dir = trained(tmp_path)

    def refuse(*a, **k):
        raise RuntimeError("data-dependent control flow\nmore lines")

    monkeypatch.setattr(torch.export, "export", refuse)
    r = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "m.pt2")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "cannot trace" in r.output and "data-dependent control flow" in r.output and ".safetensors" in r.output
    assert not (tmp_path / "m.pt2").exists()


@pytest.mark.parametrize("model", [{"name": "cnn", "channels": [4, 8], "hidden": [16]}, {"name": "resnet", "channels": [4, 8]}])
def test_conv_models_export_as_programs_that_reproduce_the_test_accuracy(tmp_path, model):
    import json

    cfg = from_dict({"data": {"dataset": "digits"}, "model": model, "train": {"epochs": 1, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path)
    t.run(sink=queue.SimpleQueue().put)
    accuracy = json.loads((t.run_dir / "summary.json").read_text())["test"]["accuracy"]
    _raw_test_split(t, tmp_path / "test.pt")
    assert CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "m.pt2")]).exit_code == 0
    got = _reproduce(tmp_path, "program", tmp_path / "m.pt2", tmp_path / "test.pt")
    assert abs(got["accuracy"] - accuracy) <= 0.001, (got, accuracy)


def test_eval_of_an_export_reports_the_runs_test_metrics(tmp_path):
    import json

    _, run_dir = trained(tmp_path)
    test = json.loads((run_dir / "summary.json").read_text())["test"]
    for name in ("m.pt2", "m.safetensors"):
        assert CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / name)]).exit_code == 0
        r = CliRunner().invoke(app, ["eval", str(tmp_path / name), "--json", "--device", "cpu"])
        assert r.exit_code == 0, r.output
        got = json.loads(r.output)["metrics"]
        assert abs(got["accuracy"] - test["accuracy"]) <= 0.001 and abs(got["loss"] - test["loss"]) <= 1e-4, (name, got, test)
    (tmp_path / "m.safetensors.json").unlink()  # the metadata inside the file is enough
    assert CliRunner().invoke(app, ["eval", str(tmp_path / "m.safetensors"), "--device", "cpu"]).exit_code == 0
    missing = CliRunner().invoke(app, ["eval", str(tmp_path / "none.pt2")])
    assert missing.exit_code == 2 and "no such file" in missing.output and len(missing.output.strip().splitlines()) == 1


USER_FILES = {
    "userdata.py": '''
import torch
from torch.utils.data import TensorDataset

def _split(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)  # pixels in [0, 1], as the new user's dataset had them
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    return TensorDataset(x, y)

def splits():
    return {"train": _split(600, 1), "test": _split(200, 2)}
''',
    "usermodel.py": '''
import torch

class Tiny(torch.nn.Module):
    def __init__(self, input_shape, num_outputs):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, num_outputs))

    def forward(self, x):
        return self.net(x)
''',
}


def test_a_user_model_on_a_user_dataset_exports_a_program_that_needs_neither_file(tmp_path, monkeypatch):
    import json

    for name, text in USER_FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = from_dict({"data": {"dataset": "userdata.py:splits"}, "model": {"name": "usermodel.py:Tiny"},
                     "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": 3, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    t.run(sink=queue.SimpleQueue().put)
    summary = json.loads((t.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary
    assert t.data.mean and t.data.mean != [0.0]  # the engine normalised: the export must carry it
    import userdata

    raw = userdata.splits()["test"].tensors  # the user's own test inputs, pixels in [0, 1]
    torch.save({"x": raw[0], "y": raw[1], "task": "classification"}, tmp_path / "test.pt")
    assert CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "m.pt2")]).exit_code == 0
    elsewhere = tmp_path / "elsewhere"  # neither user file is importable from there
    elsewhere.mkdir()
    for name in USER_FILES:
        (tmp_path / name).rename(elsewhere / f"{name}.moved")
    got = _reproduce(tmp_path, "program", tmp_path / "m.pt2", tmp_path / "test.pt")
    assert abs(got["accuracy"] - summary["test"]["accuracy"]) <= 0.001, (got, summary["test"])


def test_a_tuple_output_two_target_regression_exports_a_program_of_two_outputs(tmp_path, monkeypatch):
    """The output adapter (core.train.models.model_output) is traced into the program: a user model
    that returns (predictions, features) on 2-value targets exports as a program of [N, 2]
    predictions, and `tui-train eval` of it reproduces the run's test metrics."""
    import json

    (tmp_path / "twodata.py").write_text(
        "import torch\nfrom torch.utils.data import TensorDataset\n"
        "def splits():\n    g = torch.Generator().manual_seed(0)\n    x = torch.randn(400, 3, generator=g)\n"
        "    y = torch.stack([x[:, 0] + x[:, 1], 2 * x[:, 2]], 1)\n"
        "    return {'train': TensorDataset(x[:300], y[:300]), 'test': TensorDataset(x[300:], y[300:])}\n")
    (tmp_path / "twonet.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def __init__(self, num_outputs):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(3, num_outputs)\n    def forward(self, x):\n        return self.fc(x), x\n")
    monkeypatch.chdir(tmp_path)
    cfg = from_dict({"data": {"dataset": "twodata.py:splits"}, "model": {"name": "twonet.py:Net"},
                     "optim": {"name": "adam", "lr": 0.05, "loss": "mse"}, "early_stopping": {"monitor": "val_loss"},
                     "train": {"epochs": 3, "device": "cpu"}})
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    t.run(sink=queue.SimpleQueue().put)
    summary = json.loads((t.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary
    out = CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "m.pt2")])
    assert out.exit_code == 0, out.output
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    assert tuple(program(torch.randn(5, 3)).shape) == (5, 2)
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "m.pt2"), "--json", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)["metrics"]
    assert abs(got["mse"] - summary["test"]["mse"]) <= 1e-4 and abs(got["r2"] - summary["test"]["r2"]) <= 1e-4


REPRODUCE_MNIST = r"""
import gzip, json, sys
import numpy as np
import torch
assert not any(m.split(".")[0] in ("core", "tui", "tui_train", "torchvision") for m in sys.modules)
raw = sys.argv[2]
with gzip.open(f"{raw}/t10k-images-idx3-ubyte.gz") as f:  # the published files, parsed here (idx: big-endian header)
    n, rows, cols = np.frombuffer(f.read(16), ">i4")[1:]
    pixels = np.frombuffer(f.read(), np.uint8).reshape(n, 1, rows, cols)
with gzip.open(f"{raw}/t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read()[8:], np.uint8)
x = torch.from_numpy(pixels.astype(np.float32) / 255.0)  # what a user feeds: pixels in [0, 1], nothing else
model = torch.export.load(sys.argv[1]).module()
with torch.no_grad():
    pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
print(json.dumps({"n": len(x), "accuracy": (pred.numpy() == labels).mean().item()}))
"""


@pytest.mark.slow
def test_an_mnist_program_reproduces_the_test_accuracy_on_the_published_raw_files(tmp_path, mnist_root):
    """The exported program on the test set as a user holds it: read from the published idx files
    with numpy, pixels / 255, no tui-train, no torchvision, no statistics of ours (the other export
    tests rebuild "raw" inputs from our normalised tensors with our own mean and std)."""
    import json
    import subprocess
    import sys

    cfg = from_dict({"data": {"dataset": "mnist", "data_dir": str(mnist_root), "subset": 3000, "batch_size": 128},
                     "model": {"name": "mlp", "hidden": [64]}, "train": {"epochs": 1, "device": "cpu", "num_threads": 1}})
    t = Trainer(cfg, runs_dir=tmp_path)
    t.run(sink=queue.SimpleQueue().put)
    summary = json.loads((t.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test"]["accuracy"] > 0.8, summary
    assert CliRunner().invoke(app, ["export", str(t.run_dir), "--out", str(tmp_path / "m.pt2")]).exit_code == 0
    script = tmp_path / "reproduce_mnist.py"
    script.write_text(REPRODUCE_MNIST)
    r = subprocess.run([sys.executable, "-I", str(script), str(tmp_path / "m.pt2"), str(mnist_root / "MNIST" / "raw")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["n"] == 10_000 == t.data.test_size
    assert abs(got["accuracy"] - summary["test"]["accuracy"]) <= 0.001, (got, summary["test"])
