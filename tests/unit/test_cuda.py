"""The CUDA path (skipped without a GPU; run on the lent GPU machine, see BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine_helpers import run_to_end as events_of
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cfg(**train):
    return from_dict({"name": "cuda", "data": {"dataset": "digits", "batch_size": 64, "augment": {"rotation": 10.0}},
                      "model": {"name": "cnn", "channels": [8, 16], "hidden": [32]},
                      "train": {"epochs": 2, "log_every": 5, "device": "cuda", **train}})




@pytest.mark.parametrize("train", [{}, {"bf16": True, "channels_last": True}, {"deterministic": True}])
def test_trains_on_cuda_and_checkpoints_load_on_cpu(tmp_path, train):
    t = Trainer(cfg(**train), runs_dir=tmp_path)
    evs = events_of(t, [C.SetLearningRate(2e-3), C.SaveCheckpoint()])
    assert evs[0].device.startswith("cuda")
    fin = evs[-1]
    assert isinstance(fin, E.RunFinished) and fin.summary["test"]["accuracy"] > 0.5, fin
    ck = next(e.path for e in evs if isinstance(e, E.CheckpointSaved) and e.reason == "last")
    payload = load(Path(ck))  # map_location cpu
    assert all(v.device.type == "cpu" for v in payload["model"].values())
    assert "cuda" in payload["rng"]


def test_resume_on_cuda(tmp_path):
    t = Trainer(cfg(max_steps=7), runs_dir=tmp_path)
    events_of(t)
    t2 = Trainer(cfg(), runs_dir=tmp_path, resume=t.run_dir, resume_overrides=["train.max_steps=0"])
    evs = events_of(t2)
    assert evs[0].start_step == 7 and evs[-1].summary["status"] == "completed"


def test_the_dry_run_on_cuda_refuses_an_output_on_the_cpu_and_changes_no_weight(tmp_path):
    """A model that moves its output off the device is refused at start; with dropout, the run's
    weights are the same with and without the dry run (its CUDA RNG state is restored too)."""
    from tui_train.core.config import ConfigError

    (tmp_path / "net.py").write_text("import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n"
                                     "        super().__init__()\n        self.fc = torch.nn.Linear(64, 10)\n"
                                     "    def forward(self, x):\n        return self.fc(x.flatten(1)).cpu()\n")
    bad = from_dict({**_plain(cfg()), "model": {"name": f"{tmp_path / 'net.py'}:Net"}})
    with pytest.raises(ConfigError, match=r"returned its output on cpu but the data is on cuda"):
        Trainer(bad, runs_dir=tmp_path / "bad").prepare()
    weights = []
    for dry_run in (True, False):
        t = Trainer(cfg(max_steps=6, bf16=True), runs_dir=tmp_path / str(dry_run))
        t.config = from_dict({**_plain(t.config), "model": {"name": "mlp", "hidden": [32], "dropout": 0.3}})
        t.dry_run = dry_run
        events_of(t)
        weights.append({k: v.cpu() for k, v in t.model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def _plain(config) -> dict:
    from tui_train.core.config import to_dict

    return to_dict(config)
