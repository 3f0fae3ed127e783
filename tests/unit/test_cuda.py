"""The CUDA path (skipped without a GPU; run on the lent GPU machine, see BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import commands as C
from core import events as E
from core.checkpoint import load
from core.config import from_dict
from core.engine import Trainer
from tests.engine_helpers import run_to_end as events_of

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
