"""A run that continues from a checkpoint: a resume (the same run, its directory going on) or a
fork (a new run in a new directory, from that checkpoint's weights, optimizer and position).

:class:`Resume` is made once from the checkpoint (:meth:`Resume.load`), before anything is built,
because the checkpoint decides what is built: its config (with ``--set`` overrides) and preset,
unless a fork was given a config of its own. Once the run is built, :meth:`Resume.restore` puts the
checkpoint's state back into each concern of the loop: weights, optimizer and RNG states, the
position and live values, early stopping, the plateau, the training clock and a mid-epoch's train
sums; a fork then takes its config's live values. It reads the keys
:meth:`tui_train.core.train.engine.Trainer._payload` writes and writes none (the checkpoint format
is that method's).

It also says what the new run records about where it came from: its parent (a fork's checkpoint's
run; a resumed fork keeps the parent its run directory names), the status reason the run starts
with, and, when the world size is not the checkpoint's, the warning that the run goes on but is no
longer bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui_train.core.config import RunConfig
from tui_train.core.early_stopping import EarlyStopping
from tui_train.core.plugins import use_run_roots
from tui_train.core.schedule import Plateau
from tui_train.core.state import TrainingState
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.distributed import World, rng_from_json
from tui_train.core.train.meters import EpochTotals, Stopwatch
from tui_train.core.train.runtime import Runtime


@dataclass
class Resume:
    """A checkpoint the run continues from, and what the run trains with (see the module docstring)."""

    file: Path
    """The checkpoint file (a run directory given resolves to its newest checkpoint)."""
    payload: dict
    """The checkpoint's content (core.train.checkpoint.load_for_resume)."""
    config: RunConfig
    """The config the run trains with: the checkpoint's with the overrides applied, or a fork's own."""
    preset: str | None
    """The preset name the run records (the checkpoint's, unless a fork has its own config)."""
    fork: bool
    """A new run from the checkpoint (a fork), rather than the same run going on."""
    parent: dict | None
    """The run's parent, {run_dir, step}: a fork's checkpoint's run, or a resumed fork's (None otherwise)."""
    note: str = ""
    """Said once the run has started (a RunWarning): resumed with another world size ('' otherwise)."""

    @classmethod
    def load(cls, source: Path, overrides: list[str], *, config: RunConfig, preset: str | None, fork: bool = False,
             fork_config: bool = False) -> Resume:
        """Load the checkpoint at ``source`` (a file or a run directory; ``overrides``: ``--set``
        style, applied to its config) and make its user code importable from wherever this runs.
        A fork given its own config (``fork_config``) trains with ``config`` and ``preset``.
        Raises CheckpointError / ConfigError with one line."""
        file, payload, saved = ckpt.load_for_resume(source, overrides)
        use_run_roots(payload.get("import_roots"))  # its user code, from wherever the resume runs
        if not (fork and fork_config):
            config, preset = saved, payload.get("preset", preset)
        if fork:
            parent = {"run_dir": str(ckpt.run_dir_of(file)), "step": int(payload.get("step", 0))}
        else:
            from tui_train.core.rundir.runs import read_parent

            where, step = read_parent(ckpt.run_dir_of(file))
            parent = {"run_dir": where, "step": step} if where else None
        return cls(file, payload, config, preset, fork, parent)

    @property
    def run_dir(self) -> Path:
        """The checkpoint's run directory (where a resume goes on; a fork makes a new one)."""
        return ckpt.run_dir_of(self.file)

    @property
    def threads(self) -> int:
        """The thread count the checkpoint was trained with (0: not recorded; core.train.threads)."""
        return int(self.payload.get("threads", 0) or 0)

    @property
    def wall_seconds(self) -> float:
        """Wall seconds of the run before the checkpoint."""
        return float(self.payload.get("wall_seconds", 0.0) or 0.0)

    @property
    def reason(self) -> str:
        """The reason of the status the run starts with."""
        if self.fork and self.parent:
            return f"forked from {self.parent['run_dir']} at step {self.parent['step']}"
        return "resumed"

    @property
    def header(self) -> str:
        """The line config.toml starts with when the run has a parent ('' otherwise)."""
        return f"# parent: {self.parent['run_dir']} step {self.parent['step']}\n" if self.parent else ""

    def restore(self, rt: Runtime, state: TrainingState, world: World, *, early: EarlyStopping, plateau: Plateau,
                clock: Stopwatch) -> EpochTotals:
        """Put the checkpoint's state into a freshly built run (CheckpointError when the weights or
        the optimizer do not fit); returns the epoch's train sums so far (a mid-epoch checkpoint's
        go on; empty at an epoch's start). A fork then takes its config's live values."""
        payload = self.payload
        ckpt.restore_payload(payload, rt.model, rt.optimizer, rt.device, self.file)
        state.load_state_dict(payload)
        self._world(payload, rt, state, world)
        early.load_state_dict(payload)
        plateau.load_state_dict(payload["plateau"])
        clock.total = float(payload["train_seconds"])
        totals = EpochTotals()
        if state.batch:  # mid-epoch: the epoch's train metrics go on
            totals = EpochTotals.from_list(payload.get("epoch_acc", [0.0, 0.0, 0]))
        if self.fork:
            self._fork_values(rt, state)
        return totals

    def _world(self, payload: dict, rt: Runtime, state: TrainingState, world: World) -> None:
        """Resuming with several ranks: each takes its own RNG states when the world size is the
        checkpoint's (then resume is exact); with another world size the position in the epoch is
        kept by samples seen (a few samples may be seen twice, and the run is not bit-identical)."""
        saved = int(payload.get("world_size", 1) or 1)
        rank_rng = payload.get("rank_rng")
        if saved == world.world_size:
            if isinstance(rank_rng, list) and len(rank_rng) == world.world_size:  # several ranks' states
                ckpt.rng_restore(rng_from_json(rank_rng[world.rank]), rt.device)
            return
        if state.batch:
            batch = self.config.data.batch_size
            state.batch = min(state.batch * batch * saved // (batch * world.world_size), rt.batches_per_epoch)
        self.note = (f"resumed with {world.world_size} process(es) from a checkpoint of {saved}: "
                     "training goes on, not bit-identical to an uninterrupted run")

    def _fork_values(self, rt: Runtime, state: TrainingState) -> None:
        """A fork trains with its config's live values, not the parent's latest ones: the base LR,
        grad clip, patience, momentum and weight decay (the optimizer state itself goes on)."""
        cfg = self.config
        state.base_lr, state.grad_clip, state.patience = cfg.optim.lr, cfg.optim.grad_clip, cfg.early_stopping.patience
        for g in rt.optimizer.param_groups:
            g["weight_decay"] = cfg.optim.weight_decay
            if "momentum" in g:
                g["momentum"] = cfg.optim.momentum
            if "betas" in g and cfg.optim.momentum > 0:
                g["betas"] = (cfg.optim.momentum, g["betas"][1])
