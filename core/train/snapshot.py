"""How each rank writes the built-in loop's checkpoint (:meth:`core.run.place.RunPlace.save`'s writer).

A checkpoint is never written with non-finite weights (the writer says why instead, and the run
layer reports it and lists it under summary.json's ``not_saved``). With several ranks every rank
hands rank 0 its RNG states (a collective, so every rank checkpoints at the same step) and only
rank 0 builds the payload and writes; one process (core.run.sync.Local) gathers nothing. What
the payload holds is the loop's (:meth:`core.train.engine.Trainer._payload`,
:func:`core.train.checkpoint.build_payload`); :class:`core.train.resume.Resume` reads it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import torch

from tui_train.core.run.sync import Sync
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.distributed import rng_to_json
from tui_train.core.train.guard import weights_finite

Writer = Callable[[], "Callable[[IO[bytes]], None] | str | None"]
"""What RunPlace.save calls: the file's filler, or why it cannot be written, or None (a rank that writes nothing)."""


def writer(model: torch.nn.Module, device: torch.device, sync: Sync, payload: Callable[[list | None], dict]) -> Writer:
    """The writer of the loop's checkpoint on this rank. ``payload(rank_rngs)``: the checkpoint of
    this moment (``rank_rngs``: every rank's RNG states, None for one process), built on rank 0
    only, after the gather."""

    def write():
        if not weights_finite(model):
            return "the weights hold non-finite values"
        rngs = None if sync.solo else sync.gather_json(rng_to_json(ckpt.rng_state(device)))
        if not sync.is_main:
            return None
        data = payload(rngs)
        return lambda f: torch.save(data, f)

    return write
