"""A user dataset is held as tensors only when that cannot change what the model sees: one whose
items differ between two reads (a random transform) goes through the DataLoader path, and the
event log says which path and why (issue 20, defect 3)."""

from __future__ import annotations

import textwrap

import pytest
import torch

from tests.engine_helpers import run_to_end
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train.engine import Trainer

COUNTING = """
    import torch
    from torch.utils.data import Dataset

    READS = []

    class Counting(Dataset):
        '''200 items; x is the item's index, plus a fresh random draw when ``random``.'''

        def __init__(self, random=False, sometimes=0.0):
            self.random, self.sometimes = random, sometimes

        def __len__(self):
            return 200

        def __getitem__(self, i):
            READS.append(i)
            x = torch.full((4,), float(i))
            if self.random or torch.rand(()) < self.sometimes:
                x[1:] += torch.randn(3)  # x[0] keeps the index
            return x, i % 3

    def make(random=False, sometimes=0.0):
        return Counting(random, sometimes)
"""


@pytest.fixture
def counting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "counting.py").write_text(textwrap.dedent(COUNTING))
    return tmp_path


def _train(tmp_path, **kwargs):
    raw = {"name": "random-data",
           "data": {"dataset": "counting.py:make", "kwargs": kwargs, "batch_size": 32, "normalize": False},
           "model": {"name": "mlp", "hidden": [8]},
           "train": {"epochs": 3, "log_every": 1, "device": "cpu", "num_threads": 1},
           "checkpoint": {"save_best": False, "save_last": False}}
    trainer = Trainer(from_dict(raw), runs_dir=tmp_path / "runs")
    seen: list[torch.Tensor] = []
    real = trainer._train_batch

    def spy(x, y):  # what the model is given, batch by batch
        seen.append(x.detach().clone())
        return real(x, y)

    trainer._train_batch = spy
    events = run_to_end(trainer)
    assert isinstance(events[-1], E.RunFinished), events[-1]
    import sys
    mod = next(m for n, m in sys.modules.items()
               if n.startswith("_tui_train_user_counting") and str(tmp_path) in str(getattr(m, "__file__", "")))
    notes = [e.message for e in events if isinstance(e, E.RunNote) and e.message.startswith("data:")]
    return trainer, seen, list(mod.READS), notes


def _per_epoch_values(trainer, seen):
    """{item index: [the x the model saw for it, one per epoch]} (x's first value rounds to the index)."""
    out: dict[int, list[torch.Tensor]] = {}
    for xb in seen:
        for x in xb:
            out.setdefault(int(x[0].round()), []).append(x)
    return out


def test_a_random_transform_is_drawn_afresh_every_epoch(counting):
    trainer, seen, reads, notes = _train(counting, random=True)
    assert trainer.data.loader == "dataloader"
    values = _per_epoch_values(trainer, seen)
    assert len(values) == trainer.data.train_size
    assert all(reads.count(i) >= 3 for i in values)  # every epoch reads its items again
    assert all(len(v) == 3 for v in values.values())
    fresh = sum(not torch.equal(v[0], v[1]) and not torch.equal(v[1], v[2]) for v in values.values())
    assert fresh == len(values)  # a new draw for every item in every epoch
    assert len(notes) == 1 and "DataLoader" in notes[0] and "differed between two reads" in notes[0], notes


def test_a_rarely_random_dataset_is_caught_too(counting):
    trainer, _, _, notes = _train(counting, sometimes=0.1)
    assert trainer.data.loader == "dataloader", notes


def test_a_deterministic_dataset_is_still_held_as_tensors(counting):
    trainer, seen, reads, notes = _train(counting)
    assert trainer.data.loader == "tensor"
    assert len(reads) <= 200 + 1 + 64  # once each, the first item to learn shapes, the re-read sample
    values = _per_epoch_values(trainer, seen)
    assert all(torch.equal(v[0], v[-1]) for v in values.values())
    assert len(notes) == 1 and "tensor" in notes[0] and "identical" in notes[0], notes


def test_a_torchvision_random_transform_is_a_signal_without_reading(counting):
    import torchvision.transforms as T

    from tui_train.core.train.data import random_transform

    class WithTransform(torch.utils.data.Dataset):
        transform = T.Compose([T.RandomRotation(10), T.ToTensor()])

        def __len__(self):
            return 1

        def __getitem__(self, i):
            raise AssertionError("not read")

    assert "RandomRotation" in random_transform(WithTransform())
    assert random_transform(torch.utils.data.Subset(WithTransform(), [0])) != ""
    assert random_transform(torch.utils.data.TensorDataset(torch.zeros(2, 1), torch.zeros(2))) == ""
