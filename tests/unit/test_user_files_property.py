"""Property: whatever shapes, labels, output sizes and return types a user's model and dataset
files have, the run either trains to its end or is refused before the first step with one line
(ConfigError / DataError; exit 2 from the CLI). Never a traceback, never a failure mid-run that
was knowable at start (issue 15). Which of the two is also predicted here, from the combination
alone, so that a refusal of something that would train fails the test as well.

In-process through the engine (a few hundred ms an example); one subprocess checks the exit code
and the single line of the installed command.
"""

from __future__ import annotations

import math
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.test_headless_signals import tui_cmd
from tests.engine_helpers import run_to_end
from tui_train.core.config import ConfigError, from_dict
from tui_train.core.train.data import DataError
from tui_train.core.train.engine import Trainer

DATASET = """
import torch
from torch.utils.data import TensorDataset

def make(shape, task, lo, hi, target, n=48):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, *shape, generator=g)
    if task == "classification":
        y = lo + torch.arange(n) % (hi - lo + 1)  # every label from lo to hi occurs
    else:
        y = torch.randn(n, *target, generator=g)
    return TensorDataset(x, y)
"""

MODEL = """
import types
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, in_features, out, form):
        super().__init__()
        self.fc = nn.Linear(in_features, out)
        self.form = form

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return {
            "tensor": lambda: out, "tuple": lambda: (out, x), "list": lambda: [out], "dict": lambda: {"logits": out},
            "object": lambda: types.SimpleNamespace(logits=out), "text": lambda: "out", "int": lambda: out.long(),
        }[self.form]()
"""

ACCEPTED_FORMS = ("tensor", "tuple", "list", "dict", "object")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("userfiles")
    (folder / "ds.py").write_text(textwrap.dedent(DATASET))
    (folder / "net.py").write_text(textwrap.dedent(MODEL))
    return folder


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
combos = st.fixed_dictionaries({
    "shape": shapes,
    "task": st.sampled_from(["classification", "regression"]),
    "lo": st.integers(-1, 1),
    "span": st.integers(0, 4),
    "num_classes": st.sampled_from([0, 0, 2, 3, 5]),
    "target": st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    "builtin": st.booleans(),
    "in_delta": st.sampled_from([0, 0, 0, 1]),
    "out": st.integers(1, 6),
    "form": st.sampled_from([*ACCEPTED_FORMS, "text", "int"]),
    "batch": st.integers(1, 20),
})


def expected_to_train(c: dict) -> bool:
    """Whether the combination can train: the oracle the engine's verdict is checked against."""
    if c["task"] == "classification":
        lo, hi = c["lo"], c["lo"] + c["span"]
        classes = c["num_classes"] or hi + 1
        if lo < 0 or classes < 2 or hi >= classes:
            return False
        outputs = classes
    else:
        outputs = math.prod(c["target"]) if c["target"] else 1
    if c["builtin"]:
        return True
    return c["in_delta"] == 0 and c["out"] == outputs and c["form"] in ACCEPTED_FORMS


def config(files: Path, c: dict):
    regression = c["task"] == "regression"
    model = {"name": "mlp", "hidden": [4]} if c["builtin"] else {
        "name": f"{files / 'net.py'}:Net",
        "kwargs": {"in_features": math.prod(c["shape"]) + c["in_delta"], "out": c["out"], "form": c["form"]}}
    return from_dict({
        "name": "prop",
        "data": {"dataset": f"{files / 'ds.py'}:make", "batch_size": c["batch"], "num_classes": 0 if regression else c["num_classes"],
                 "kwargs": {"shape": list(c["shape"]), "task": c["task"], "lo": c["lo"], "hi": c["lo"] + c["span"],
                            "target": list(c["target"])}},
        "model": model,
        "optim": {"name": "sgd", "lr": 0.01, "loss": "mse" if regression else "cross_entropy"},
        "early_stopping": {"monitor": "val_loss"},
        "train": {"epochs": 1, "max_steps": 2, "log_every": 1, "device": "cpu", "num_threads": 1},
    })


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(c=combos)
def test_every_combination_trains_or_is_refused_at_start_in_one_line(files, tmp_path_factory, c):
    runs = tmp_path_factory.mktemp("runs")
    trainer = Trainer(config(files, c), runs_dir=runs)
    try:
        trainer.prepare()
    except (ConfigError, DataError) as e:
        message = str(e)
        assert "\n" not in message and message, message
        assert not expected_to_train(c), f"refused what would train: {message} ({c})"
        assert not any(runs.iterdir())  # refused before a run directory was made
        event(f"refused: {message.split(':')[0].split(' ')[0]}")  # --hypothesis-show-statistics
        return
    assert expected_to_train(c), f"accepted what cannot train: {c}"
    events = run_to_end(trainer)
    assert trainer.status == "completed", (trainer.error, c)
    assert not any(e.kind == "run_failed" for e in events)
    event("trained")


def test_the_installed_command_refuses_a_bad_combination_with_exit_2_and_one_line(files, tmp_path):
    c = {"shape": (3,), "task": "classification", "lo": 0, "span": 2, "num_classes": 0, "target": (), "builtin": False,
         "in_delta": 0, "out": 5, "form": "tuple", "batch": 8}
    assert not expected_to_train(c)
    cfg = config(files, c)
    from tui_train.core.config import to_toml

    (tmp_path / "prop.toml").write_text(to_toml(cfg))
    r = subprocess.run(tui_cmd() + ["run", str(tmp_path / "prop.toml"), "--headless", "--runs-dir", str(tmp_path / "runs")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    assert "returned a float32 tensor of shape [8, 5]" in lines[0] and "expected shape [8, 3] (3 classes" in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()
