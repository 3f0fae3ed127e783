"""The start-up dry run (core/train/dryrun.py): a model that does not fit its data is refused in
Trainer.prepare with one line naming the key, the spec, what came back and what was expected,
before a run directory exists; the common output forms train; and the dry run changes nothing a
run's weights or exact resume depend on."""

from __future__ import annotations

import errno
import textwrap
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import run_to_end
from tui_train.core.config import ConfigError, from_dict
from tui_train.core.run.runlog import RunLog
from tui_train.core.train.engine import Trainer

HEADER = """
import torch
from torch import nn
"""


def write(tmp_path: Path, name: str, body: str) -> str:
    f = tmp_path / name
    f.write_text(textwrap.dedent(HEADER) + textwrap.dedent(body))
    return str(f)


def cfg(model: str = "mlp", dataset: str = "digits", **sections) -> object:
    raw = {"name": "dry", "data": {"dataset": dataset, "batch_size": 64},
           "model": {"name": model, "hidden": [16]}, "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
           "train": {"epochs": 1, "max_steps": 3, "log_every": 1, "device": "cpu", "num_threads": 1}}
    for key, value in sections.items():
        section, _, k = key.partition("__")
        raw.setdefault(section, {})[k] = value
    return from_dict(raw)


REFUSED = {
    "wrong_classes": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 3)
            def forward(self, x):
                return self.fc(x.flatten(1))
        """, ["returned a float32 tensor of shape [64, 3]", "expected shape [64, 10]", "10 classes"]),
    "returns_text": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                return "logits"
        """, ["forward returned a str", "expected a tensor, a tuple or list"]),
    "dict_without_logits": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                return {"out": self.fc(x.flatten(1))}
        """, ["a dict with keys 'out'", "'logits'"]),
    "integer_output": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                return self.fc(x.flatten(1)).argmax(1, keepdim=True).repeat(1, 10)
        """, ["an int64 tensor", "expected floating-point outputs"]),
    "no_parameters": ("""
        class Net(nn.Module):
            def forward(self, x):
                return x.flatten(1)[:, :10]
        """, ["no trainable parameters"]),
    "frozen": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10).requires_grad_(False)
            def forward(self, x):
                return self.fc(x.flatten(1))
        """, ["no trainable parameters"]),
    "refuses_input": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(100, 10)
            def forward(self, x):
                return self.fc(x.flatten(1))
        """, ["refused a train batch of shape [64, 1, 8, 8] (float32 on cpu): RuntimeError"]),
    "float64_model": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10).double()
            def forward(self, x):
                return self.fc(x.flatten(1))
        """, ["refused a train batch", "its parameters are float64, the data float32"]),
    "other_device": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                return self.fc(x.flatten(1)).to("meta")
        """, ["returned its output on meta but the data is on cpu"]),
    "no_gradient": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                with torch.no_grad():
                    return self.fc(x.flatten(1))
        """, ["does not depend on any trainable parameter"]),
    "fails_in_eval_mode": ("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                if not self.training:
                    raise ValueError("no eval mode here")
                return self.fc(x.flatten(1))
        """, ["refused a val batch", "ValueError: no eval mode here"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_model_that_does_not_fit_is_refused_in_one_line_before_a_run_directory_exists(tmp_path, case):
    body, parts = REFUSED[case]
    spec = write(tmp_path, "net.py", body) + ":Net"
    trainer = Trainer(cfg(model=spec), runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError) as info:
        trainer.prepare()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model.name {spec!r}: ")
    for part in parts:
        assert part in message, message
    assert not (tmp_path / "runs").exists()


def test_the_last_partial_batch_is_tried_too(tmp_path):
    """65 samples in batches of 64: the epoch ends with a batch of 1, which BatchNorm refuses in
    training mode; that is knowable at start, so it is refused at start."""
    ds = write(tmp_path, "ds.py", """
        from torch.utils.data import TensorDataset
        def make():
            g = torch.Generator().manual_seed(0)
            pair = lambda n: TensorDataset(torch.randn(n, 4, generator=g), torch.arange(n) % 2)
            return {"train": pair(65), "val": pair(8), "test": pair(8)}
        """)
    net = write(tmp_path, "bn.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
            def forward(self, x):
                return self.body(x)
        """)
    trainer = Trainer(cfg(model=f"{net}:Net", dataset=f"{ds}:make"), runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"refused a train batch of shape \[1, 4\].*Expected more than 1 value"):
        trainer.prepare()


def test_labels_outside_the_classes_are_refused_at_start(tmp_path):
    ds = write(tmp_path, "ds.py", """
        from torch.utils.data import TensorDataset
        def make():
            return TensorDataset(torch.randn(40, 4), torch.arange(40) % 5)
        """)
    trainer = Trainer(cfg(dataset=f"{ds}:make", data__num_classes=3), runs_dir=tmp_path / "runs")
    with pytest.raises(Exception, match=r"label 4 in the train split is outside 0\.\.2 \(data\.num_classes: 3\)"):
        trainer.prepare()


FORMS = {
    "tuple": "return out, x",
    "list": "return [out, x]",
    "dict": "return {'logits': out, 'features': x}",
    "object": "return types.SimpleNamespace(logits=out, hidden=x)",
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_common_output_forms_train_and_evaluate(tmp_path, form):
    spec = write(tmp_path, "net.py", f"""
        import types
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
            def forward(self, x):
                out = self.fc(x.flatten(1))
                {FORMS[form]}
        """) + ":Net"
    trainer = Trainer(cfg(model=spec), runs_dir=tmp_path / "runs")
    run_to_end(trainer)
    assert trainer.status == "completed", trainer.error
    summary = (trainer.run_dir / "summary.json").read_text()
    assert '"accuracy"' in summary  # the test split was evaluated through the same adapter


def test_multi_output_regression_with_a_builtin_model(tmp_path):
    ds = write(tmp_path, "ds.py", """
        from torch.utils.data import TensorDataset
        def make():
            g = torch.Generator().manual_seed(0)
            x = torch.randn(300, 5, generator=g)
            y = torch.stack([x[:, 0] * 2, x[:, 1] - x[:, 2]], dim=1)
            return TensorDataset(x, y)
        """)
    trainer = Trainer(cfg(model="mlp", dataset=f"{ds}:make", optim__loss="mse", optim__name="adam", optim__lr=0.01,
                          early_stopping__monitor="val_loss", train__max_steps=60, train__epochs=20),
                      runs_dir=tmp_path / "runs")
    run_to_end(trainer)
    assert trainer.status == "completed", trainer.error
    assert trainer.data.output_dim == 2 and trainer.model.sizes[-1] == 2
    import json

    test = json.loads((trainer.run_dir / "summary.json").read_text())["test"]
    assert test["r2"] > 0.5 and test["mse"] >= 0 and test["mae"] >= 0
    from tui_train.core.train.checkpoint import load

    saved = sorted((trainer.run_dir / "checkpoints").glob("*.pt"))
    assert saved and load(saved[-1])["output_dim"] == 2


def _user_run(tmp_path: Path, dry_run: bool, steps: int = 7) -> dict:
    """A user dataset read through a DataLoader (its iterator draws from the global RNG) into a
    model with dropout and BatchNorm (RNG and buffers), with augmentation off."""
    ds = write(tmp_path, "ds.py", """
        from torch.utils.data import Dataset
        class Items(Dataset):
            def __init__(self):
                g = torch.Generator().manual_seed(3)
                self.x, self.y = torch.randn(150, 6, generator=g), torch.randint(0, 3, (150,), generator=g)
            def __len__(self):
                return len(self.x)
            def __getitem__(self, i):
                return self.x[i] + 0.01 * torch.randn(6), int(self.y[i])  # a random transform, as torchvision's
        def make():
            return Items()
        """)
    net = write(tmp_path, "net.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
            def forward(self, x):
                return self.body(x)
        """)
    trainer = Trainer(cfg(model=f"{net}:Net", dataset=f"{ds}:make", data__loader="dataloader", data__batch_size=16,
                          train__max_steps=steps, train__epochs=2), runs_dir=tmp_path / ("runs-dry" if dry_run else "runs"))
    trainer.dry_run = dry_run
    run_to_end(trainer)
    assert trainer.status == "completed", trainer.error
    return {k: v.clone() for k, v in trainer.model.state_dict().items()} | {"rng": torch.get_rng_state()}


def test_the_dry_run_changes_no_weight_buffer_or_rng_stream(tmp_path):
    with_check, without = _user_run(tmp_path, True), _user_run(tmp_path, False)
    assert with_check.keys() == without.keys()
    for key in with_check:
        assert torch.equal(with_check[key], without[key]), key


def test_the_dry_run_restores_rng_buffers_and_mode_in_prepare(tmp_path):
    trainer = Trainer(cfg(model="cnn", model__channels=[4], model__dropout=0.2), runs_dir=tmp_path / "runs")
    trainer.dry_run = False
    trainer.prepare()
    from tui_train.core.train.dryrun import dry_run

    rt = trainer.p.rt
    before_rng = torch.get_rng_state()
    before = {k: v.clone() for k, v in rt.model.state_dict().items()}
    seconds = dry_run(trainer.config, rt)
    assert seconds >= 0
    assert torch.equal(torch.get_rng_state(), before_rng)
    assert all(torch.equal(before[k], v) for k, v in rt.model.state_dict().items())
    assert all(p.grad is None for p in rt.model.parameters()) and rt.model.training
    assert not rt.optimizer.state


def test_a_full_disk_at_start_is_one_line_and_leaves_no_run_directory(tmp_path, monkeypatch):
    def full(self, config_toml):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.run_dir / "config.toml"))

    monkeypatch.setattr(RunLog, "open", full)
    trainer = Trainer(cfg(), runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"run directory .*: cannot write there \(No space left on device: .*config\.toml\)"):
        trainer.prepare()
    assert list((tmp_path / "runs").iterdir()) == []
