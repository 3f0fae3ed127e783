"""A sweep's record: ``<runs_dir>/<stamp>-sweep-<preset>/sweep.json``, and each trial's mark.

The sweep folder sits with the runs, named like a run directory with ``sweep`` in its name (the
runs listing skips it: it holds no run files). ``sweep.json`` holds the space, the plan, the
options and every trial (its number, parameters, run directory, status, metric value, epochs),
replaced atomically at each change, so ``tui-train sweep --resume`` after a SIGTERM or a kill -9
of the driver knows what finished, what was running (its trainer process may still be: it is
adopted again) and what is left. Each trial's run directory gets ``trial.json`` (its sweep, number
and parameters), which ``tui-train runs`` shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# a trial's mark is read by the runs list too, which sits below the sweep layer: defined there, named here
from tui_train.core.run.checkpoints import write_json as atomic_json
from tui_train.core.run.runlog import new_run_dir
from tui_train.core.rundir.runs import TRIAL_FILE as TRIAL_FILE
from tui_train.core.rundir.runs import read_trial_mark as read_trial_mark

SWEEP_FILE = "sweep.json"
"""The sweep's record in its folder."""

TRIAL_STATUSES = ("queued", "running", "completed", "early_stopped", "pruned", "stopped", "interrupted", "preempted", "failed",
                  "unsaved")
"""A trial's status in the record: a run's final status, or queued/running/pruned (stopped by the
pruning rule or by hand from the Sweep screen)."""

DONE = ("completed", "early_stopped", "pruned", "stopped", "failed", "unsaved")
"""Statuses a resumed sweep does not run again (an interrupted or preempted trial is resumed from its checkpoint)."""


@dataclass
class Trial:
    """One trial: a run of the preset with ``params`` as overrides."""

    number: int
    """From 0, in the order trials were planned (or asked of Optuna)."""
    params: dict[str, Any]
    """Preset key -> value (a --set value)."""
    status: str = "queued"
    """One of :data:`TRIAL_STATUSES`."""
    run_dir: str = ""
    """Its run directory once started."""
    value: float | None = None
    """The sweep metric: the best value over the trial's epochs so far (None: none yet)."""
    epoch: int = 0
    """Epochs done."""
    values: list = field(default_factory=list)
    """The metric after each epoch (None where the epoch did not measure it)."""
    pid: int = 0
    """Its trainer process (to adopt it again after a driver was killed)."""
    started: float | None = None
    """Wall time it started (seconds since the epoch)."""
    ended: float | None = None
    """Wall time it ended."""
    reason: str = ""
    """Why it ended as it did (a failure's one line, 'pruned: ...')."""
    optuna: int | None = None
    """Its Optuna trial number (``--optuna``)."""

    @property
    def seconds(self) -> float | None:
        """How long it ran (so far)."""
        if self.started is None:
            return None
        import time

        return (self.ended or time.time()) - self.started

    def overrides(self) -> list[str]:
        """Its parameters as ``--set`` texts."""
        return [f"{k}={_set_text(v)}" for k, v in self.params.items()]


def _set_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


@dataclass
class SweepRecord:
    """What ``sweep.json`` holds (see the module docstring)."""

    preset: str
    """The preset (name or path) every trial runs."""
    overrides: list[str]
    """--set overrides every trial gets."""
    space: dict
    """:meth:`core.sweep.space.Space.to_json`."""
    method: str
    """'grid', 'random' or 'optuna'."""
    metric: str
    """What trials are ranked by, e.g. 'val_accuracy'."""
    mode: str
    """'max' or 'min'."""
    trials_planned: int
    """How many trials the sweep runs in all."""
    parallel: int = 1
    """Trials at once on this machine."""
    prune: str = "none"
    """'median' or 'none'."""
    seed: int = 0
    """The random plan's seed (and the TPE sampler's)."""
    runs_dir: str = "runs"
    """Where the trials' run directories are made."""
    state: str = "running"
    """'running', 'completed', 'interrupted' or 'stopped'."""
    storage: str = ""
    """Optuna's storage (a journal file, or an RDB URL) and study name: ``storage#study``."""
    extra_dirs: list = field(default_factory=list)
    """--presets-dir folders."""
    trials: list[Trial] = field(default_factory=list)
    """Every trial, planned ones included (queued)."""
    created: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    """When the sweep started."""

    def better(self, a: float | None, b: float | None) -> bool:
        """``a`` beats ``b`` for the sweep metric (None never wins; NaN never wins)."""
        if a is None or not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a > b if self.mode == "max" else a < b

    def best(self) -> Trial | None:
        """The trial with the best value (None when none has one)."""
        best = None
        for t in self.trials:
            if self.better(t.value, best.value if best else None):
                best = t
        return best

    def leaderboard(self) -> list[Trial]:
        """Trials with a value, best first, then the others by number."""
        ranked = sorted((t for t in self.trials if t.value is not None and math.isfinite(t.value)),
                        key=lambda t: -t.value if self.mode == "max" else t.value)
        return ranked + [t for t in self.trials if t not in ranked]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SweepRecord:
        trials = [Trial(**t) for t in data.get("trials", [])]
        rec = cls(**{k: v for k, v in data.items() if k != "trials"})
        rec.trials = trials
        return rec


def new_sweep_dir(runs_dir: Path, preset: str) -> Path:
    """Create ``<runs_dir>/<stamp>-sweep-<preset>`` (``-2``... when it exists): a run directory's
    name (:func:`tui_train.core.run.runlog.new_run_dir`) with ``sweep`` in it."""
    return new_run_dir(Path(runs_dir), f"sweep-{Path(preset).stem}")


def write_json(path: Path, value: dict) -> None:
    """Replace ``path`` atomically (:func:`tui_train.core.run.checkpoints.write_json`)."""
    atomic_json(path, value, indent=1, default=str)


def save(sweep_dir: Path, record: SweepRecord) -> None:
    """Write sweep.json."""
    write_json(Path(sweep_dir) / SWEEP_FILE, record.to_json())


def load(sweep_dir: Path) -> SweepRecord:
    """Read sweep.json; ValueError with one line when it is missing or unreadable."""
    path = Path(sweep_dir) / SWEEP_FILE
    try:
        return SweepRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ValueError(f"{sweep_dir}: not a sweep folder (no {SWEEP_FILE})") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: unreadable sweep record ({type(e).__name__}: {e})") from None
