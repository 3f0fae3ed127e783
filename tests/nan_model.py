"""A user model (loaded by path, as `model.name = "<this file>:NanAfter"`) whose output turns NaN
after ``after`` training forwards, and stays NaN after a rollback: the non-finite tests' fault."""

from __future__ import annotations

from pathlib import Path

import torch

SPEC = f"{Path(__file__).resolve()}:NanAfter"
"""The value for model.name."""


class NanAfter(torch.nn.Module):
    """A linear classifier for 8x8 digits that outputs NaN from training forward ``after + 1`` on."""

    def __init__(self, after: int = 3):
        super().__init__()
        self.lin = torch.nn.Linear(64, 10)
        self.after, self.calls = after, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.lin(x.flatten(1))
        return out * float("nan") if self.calls > self.after else out


RANK_SPEC = f"{Path(__file__).resolve()}:NanOnRankOne"
"""A model whose output turns NaN on torchrun rank 1 only (the collective non-finite check's fault)."""


class NanOnRankOne(NanAfter):
    """As NanAfter (after 12 training forwards), but only in the process whose RANK is 1."""

    def __init__(self, after: int = 12):
        import os

        super().__init__(after if os.environ.get("RANK") == "1" else 10**9)
