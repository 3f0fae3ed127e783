"""Watching ``train.target`` in the built-in loop: does a metric just produced reach it, and when.

:class:`TargetWatch` is the loop's one place for the run's target (:mod:`tui_train.core.target`
parses it and knows the metric names). The loop asks it where metrics are produced: at each
epoch's end (the epoch's train metrics and a scheduled validation) and at the last partial epoch's
validation. It remembers the first time the target was reached (value, step, epoch, training and
wall seconds), which gives the run its end reason, the note that says when, and summary.json's
``target``, ``time_to_target`` and ``wall_to_target``.

Several ranks: the metrics are the run's sums on every rank, and rank 0's verdict is the one every
rank takes (one small all-reduce per check, through the sync strategy), so that every rank ends at
the same epoch.

Its :meth:`state_dict` (``target_hit``) goes into checkpoints: a resumed run keeps when it reached
its target (summary.json's time_to_target stays true, and the target does not end the run a
second time); a fork starts without it (it is a run of its own). A checkpoint without the key (an
older one) means not reached.
"""

from __future__ import annotations

from collections.abc import Callable

from tui_train.core.run.sync import Sync
from tui_train.core.target import Target
from tui_train.core.train.meters import Stopwatch


class TargetWatch:
    """``train.target`` and when the run reached it (see the module docstring)."""

    def __init__(self, target: Target | None, sync: Sync, clock: Stopwatch, wall: Callable[[], float],
                 saved: dict | None = None):
        self.target = target
        """train.target, parsed (None: the run has no target)."""
        self.sync = sync
        """How the ranks agree on the verdict (rank 0's is taken)."""
        self.clock = clock
        """The training clock: time to target counts training as samples/s does."""
        self.wall = wall
        """The run's wall seconds so far."""
        self.hit: dict | None = None
        """When the target was reached: value, step, epoch, train_seconds, wall_seconds and the note
        (None: not reached, or no target)."""
        if saved is not None:
            self.load_state_dict(saved)

    def state_dict(self) -> dict:
        """``{"target_hit": ...}``, under the checkpoint's training keys."""
        return {"target_hit": dict(self.hit) if self.hit else None}

    def load_state_dict(self, saved: dict) -> None:
        """From :meth:`state_dict` or a checkpoint payload (no key: not reached)."""
        hit = saved.get("target_hit")
        self.hit = dict(hit) if isinstance(hit, dict) and "note" in hit else None

    @property
    def note(self) -> str:
        """The line that says when the target was reached ('' before)."""
        return self.hit["note"] if self.hit else ""

    def check(self, metrics: dict[str, dict], epoch: int, step: int) -> str | None:
        """The run's end reason when the metrics just produced (``{"train": ..., "val": ...}``, a
        split empty when it was not evaluated) reach the target for the first time, else None;
        records when (training seconds, as samples/s counts them, and wall seconds since the run
        started). Every rank calls it at the same point (a collective when the split is there)."""
        target = self.target
        if target is None or self.hit is not None or not metrics.get(target.split):
            return None
        value = target.reached(metrics[target.split])
        mine = value if self.sync.is_main else None  # rank 0's verdict, on every rank
        flag, shared = self.sync.all_sum([float(mine is not None), mine or 0.0])
        value = shared if flag > 0 else None
        if value is None:
            return None
        self.hit = hit = {"value": value, "step": step, "epoch": epoch, "train_seconds": self.clock.total,
                          "wall_seconds": self.wall()}
        reason = f"target reached: {target.metric} {value:.4g} {target.op} {target.value:g}"
        hit["note"] = (f"{reason} after {hit['train_seconds']:.1f} s of training ({hit['wall_seconds']:.1f} s wall), "
                       f"epoch {epoch + 1}, step {step}")
        return reason

    def summary(self) -> dict:
        """summary.json's target, time_to_target and wall_to_target (null when there is no target
        or it was not reached)."""
        target, hit = self.target, self.hit or {}
        return {"target": None if target is None else {
                    "expression": target.text, "metric": target.metric, "op": target.op, "value": target.value,
                    "reached": bool(hit), "reached_value": hit.get("value"), "step": hit.get("step"), "epoch": hit.get("epoch")},
                "time_to_target": hit.get("train_seconds"), "wall_to_target": hit.get("wall_seconds")}
