"""Past and live runs under a runs folder: one row per run, read from its small files only.

A row is built from ``summary.json`` (a finished run), ``config.toml`` (the hyperparameters and
a fork's parent, for runs still going or killed), the first line of ``events.jsonl`` (when it
started), ``endpoint.json`` (live), ``trial.json`` (a sweep's trial: its sweep and parameters)
and ``notes.json`` (its tags and note: :mod:`.notes`). Histories are never read here, so listing
a thousand runs stays fast (BENCHMARKS.md). A folder that is not a run is skipped (a sweep's own
folder among them: it holds ``sweep.json`` only); a partial, old or damaged run is shown with
what it has, never an exception.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui_train.core.headline import headline_value
from tui_train.core.rundir.layout import is_run_dir
from tui_train.core.rundir.notes import read_notes
from tui_train.core.status import run_status

PARENT_PREFIX = "# parent: "
"""How config.toml names a fork's parent (a comment: the config itself stays a plain preset)."""

SORT_KEYS = ("started", "status", "preset", "sweep", "duration", "epochs", "best", "test", "lr", "batch_size", "optimizer",
             "schedule", "interventions", "parent", "tags", "note", "name", "time_to_target")
"""Columns rows can be sorted by (`tui-train runs --sort KEY`; sweep: by sweep folder, then trial number)."""

TRIAL_FILE = "trial.json"
"""A sweep trial's mark in its run directory: ``{"sweep", "number", "params", "metric"}``
(written by :mod:`core.sweep.driver`; read here, below the sweep layer, for the runs list)."""

SWEEP_MARK = "-sweep-"
"""What a sweep folder's name holds between its stamp and its preset (``<stamp>-sweep-<preset>``)."""


@dataclass
class RunRow:
    """One run as the runs list shows it (plain values: ``--json`` writes it as it is)."""

    run_dir: str
    """Absolute path of the run directory."""
    name: str
    """The folder's name (``<stamp>-<preset>``)."""
    status: str
    """Final status from summary.json ('unsaved': it trained to its end but :attr:`not_saved` lists
    what it could not write); 'running'/'paused' while live; 'unfinished' when it ended without one."""
    live: bool
    """A trainer hosts its endpoint now (attachable)."""
    preset: str
    """Preset name."""
    started: float | None
    """Start time (Unix seconds), from the first event."""
    duration: float | None
    """Wall seconds (finished: from the summary; live: so far)."""
    epochs: int | None
    """Epochs completed (finished runs)."""
    epochs_planned: int | None
    """Epochs planned."""
    best: dict = field(default_factory=dict)
    """{metric, value, epoch} of the monitored metric (finished runs)."""
    test: dict = field(default_factory=dict)
    """Test metrics (finished runs)."""
    hyperparameters: dict = field(default_factory=dict)
    """lr, batch_size, optimizer, schedule (from the config)."""
    interventions: int = 0
    """Commands applied during the run (finished runs)."""
    parent: str = ""
    """The run directory a fork started from ('' when none)."""
    parent_step: int | None = None
    """The step of the parent it started from."""
    world_size: int = 1
    """Processes that trained it."""
    time_to_target: float | None = None
    """Training seconds until train.target was reached (None: no target, not reached, or not finished)."""
    not_saved: list = field(default_factory=list)
    """What the run was meant to write and could not (summary.json's ``not_saved``: checkpoints and
    record files, each with ``file`` and ``error``); [] when everything was written or it is unknown."""
    sweep: str = ""
    """A sweep trial's sweep: the sweep folder's name ('' when the run is no trial)."""
    sweep_dir: str = ""
    """The sweep folder's path, as trial.json names it ('' when none)."""
    trial: int | None = None
    """The trial's number in its sweep (from 0)."""
    params: dict = field(default_factory=dict)
    """The trial's parameters: preset key -> value (``{"optim.lr": 0.01}``; {} for a run that is no trial)."""
    tags: list = field(default_factory=list)
    """The run's tags (notes.json)."""
    note: str = ""
    """The run's note (notes.json; '' when none)."""
    notes_error: str = ""
    """Why notes.json could not be read ('' when it was, or there is none)."""

    @property
    def test_metric(self) -> float | None:
        """The headline test number (:func:`core.headline.headline_value`: accuracy, or R² for regression)."""
        return headline_value(None, self.test)[1]

    def sort_value(self, key: str) -> Any:
        """A comparable value for column ``key`` (missing values sort last)."""
        hp = self.hyperparameters
        value = {"started": self.started, "status": self.status, "preset": self.preset,
                 "sweep": (self.sweep, self.trial if self.trial is not None else -1) if self.sweep else None,
                 "duration": self.duration, "epochs": self.epochs, "best": self.best.get("value"), "test": self.test_metric,
                 "lr": hp.get("lr"), "batch_size": hp.get("batch_size"), "optimizer": hp.get("optimizer"),
                 "schedule": hp.get("schedule"), "interventions": self.interventions, "parent": self.parent,
                 "tags": ",".join(self.tags).casefold() or None, "note": self.note.casefold() or None, "name": self.name,
                 "time_to_target": self.time_to_target}[key]  # SORT_KEYS, each named
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return (value is None, value if value is not None else 0)

    @property
    def sweep_name(self) -> str:
        """The sweep's short name: its folder's name after ``-sweep-`` (the preset), or the whole
        folder name when it has no such part ('' for a run that is no trial)."""
        return self.sweep.split(SWEEP_MARK, 1)[1] if SWEEP_MARK in self.sweep else self.sweep

    def to_json(self) -> dict:
        """The ``--json`` object of this row."""
        return asdict(self)


def _json_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _first_record(path: Path) -> dict:
    """The first complete JSON line of a JSONL file ({} when there is none)."""
    try:
        with open(path, "rb") as f:
            line = f.readline(1 << 20)
    except OSError:
        return {}
    try:
        rec = json.loads(line)
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def read_trial_mark(run_dir: Path) -> dict | None:
    """A run directory's trial.json (None when the run is not a trial or the file is unreadable)."""
    data = _json_file(Path(run_dir) / TRIAL_FILE)
    return data or None


def _trial_fields(run_dir: Path) -> dict:
    """RunRow's sweep fields from trial.json ({} for a run that is no trial, or a damaged mark)."""
    mark = read_trial_mark(run_dir)
    if not mark or not isinstance(mark.get("sweep"), str) or not mark["sweep"]:
        return {}
    number, params = mark.get("number"), mark.get("params")
    return {"sweep": Path(mark["sweep"]).name, "sweep_dir": mark["sweep"],
            "trial": number if isinstance(number, int) and not isinstance(number, bool) else None,
            "params": {str(k): v for k, v in params.items()} if isinstance(params, dict) else {}}


def read_parent(run_dir: Path) -> tuple[str, int | None]:
    """(parent run directory, step) from a fork's config.toml, or ('', None)."""
    try:
        with open(Path(run_dir) / "config.toml", encoding="utf-8") as f:
            head = f.readline()
    except (OSError, UnicodeDecodeError):
        return "", None
    if not head.startswith(PARENT_PREFIX):
        return "", None
    text = head[len(PARENT_PREFIX):].strip()
    where, _, step = text.rpartition(" step ")
    try:
        return where, int(step)
    except ValueError:
        return text, None


def _config(run_dir: Path) -> dict:
    try:
        return tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def read_row(run_dir: Path, live: bool | None = None) -> RunRow:
    """The row of one run directory (whatever it holds; ``live`` None: probe the endpoint)."""
    from tui_train.core.run.endpoint import POINTER, probe

    run_dir = Path(run_dir).resolve()
    summary = _json_file(run_dir / "summary.json")
    if live is None:
        live = (run_dir / POINTER).is_file() and probe(run_dir, clean=False)[0] is not None
    first = _first_record(run_dir / "events.jsonl")
    started = first.get("time") if isinstance(first.get("time"), int | float) else None
    hp = summary.get("hyperparameters") if isinstance(summary.get("hyperparameters"), dict) else None
    if hp is None:
        cfg = _config(run_dir)
        get = lambda sec, key: cfg.get(sec, {}).get(key) if isinstance(cfg.get(sec), dict) else None  # noqa: E731
        hp = {"lr": get("optim", "lr"), "batch_size": get("data", "batch_size"), "optimizer": get("optim", "name"),
              "schedule": get("schedule", "name") or "constant"}
        planned = get("train", "epochs")
    else:
        planned = summary.get("epochs_planned")
    parent, parent_step = read_parent(run_dir)
    if isinstance(summary.get("parent"), dict):
        parent = str(summary["parent"].get("run_dir", parent) or "")
        parent_step = summary["parent"].get("step", parent_step)
    status = run_status(summary.get("status"), live=bool(live), announced=_live_status(run_dir) if live else "")
    duration = summary.get("wall_seconds") if isinstance(summary.get("wall_seconds"), int | float) else None
    if live and started is not None:
        duration = max(0.0, time.time() - started)
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    test = summary.get("test") if isinstance(summary.get("test"), dict) else {}
    epochs = summary.get("epochs_completed") if summary else None
    if not summary:  # live, or killed before its summary: the best and the epochs from its epoch lines
        best, epochs = _best_from_epochs(run_dir, best)
    lost = summary.get("not_saved") if isinstance(summary.get("not_saved"), list) else []
    preset = str(summary.get("preset") or first.get("preset") or run_dir.name.split("-", 2)[-1])
    notes = read_notes(run_dir)
    return RunRow(run_dir=str(run_dir), name=run_dir.name, status=status, live=bool(live), preset=preset, started=started,
                  duration=duration, epochs=epochs,
                  epochs_planned=planned if isinstance(planned, int) else None, best=dict(best), test=dict(test),
                  hyperparameters=hp, interventions=int(summary.get("interventions") or 0), parent=parent,
                  parent_step=parent_step if isinstance(parent_step, int) else None,
                  world_size=int(summary.get("world_size") or first.get("world_size") or 1),
                  time_to_target=ttt if isinstance(ttt := summary.get("time_to_target"), int | float) else None,
                  not_saved=[dict(x) for x in lost if isinstance(x, dict)], tags=list(notes.tags), note=notes.note,
                  notes_error=notes.error, **_trial_fields(run_dir))


EPOCHS_LIMIT = 8 << 20
"""Bytes of epochs.jsonl read for a run without a summary (a killed run's best); more is skipped."""


def _best_from_epochs(run_dir: Path, best: dict) -> tuple[dict, int | None]:
    """({metric, value, epoch} of the last epoch marked best, epochs completed) from a run's
    epochs.jsonl (small: one line per epoch, validation and test), for a run killed before its
    summary.json (SIGKILL, out of memory) or still going. The metric is the config's monitor."""
    from tui_train.core.run.runlog import OTHER_METRICS_NAME

    path = run_dir / OTHER_METRICS_NAME
    try:
        if path.stat().st_size > EPOCHS_LIMIT:
            return best, None
        lines = path.read_bytes().splitlines()
    except OSError:
        return best, None
    cfg = _config(run_dir)
    es = cfg.get("early_stopping") if isinstance(cfg.get("early_stopping"), dict) else {}
    monitor = str(es.get("monitor") or "val_loss")
    epochs, found = None, dict(best)
    for line in lines:
        if b'"EpochMetrics"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
            continue
        epochs = rec["epoch"] + 1
        val = rec.get("val") if isinstance(rec.get("val"), dict) else {}
        value = val.get(monitor.removeprefix("val_"))
        if rec.get("is_best") and isinstance(value, int | float):
            found = {"metric": monitor, "value": value, "epoch": rec["epoch"]}
    return found, epochs


def _live_status(run_dir: Path) -> str:
    """The last status a live run announced (the tail of events.jsonl), '' when unknown."""
    try:
        with open(run_dir / "events.jsonl", "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().splitlines()
    except OSError:
        return ""
    for line in reversed(tail):
        if b'"StatusChanged"' in line:
            try:
                return str(json.loads(line).get("status", ""))
            except ValueError:
                continue
    return ""


def list_runs(runs_dir: Path, sort: str = "started", reverse: bool = True) -> list[RunRow]:
    """Every run under ``runs_dir``, live runs first, then by ``sort`` (newest first by default)."""
    from tui_train.core.run.endpoint import POINTER, probe

    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r} (allowed: {', '.join(SORT_KEYS)})")
    root = Path(runs_dir)
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    rows = []
    for path in entries:
        if path.name.startswith(".") or not is_run_dir(path):
            continue
        live = (path / POINTER).is_file() and probe(path, clean=False)[0] is not None
        rows.append(read_row(path, live=live))
    present = [r for r in rows if not r.sort_value(sort)[0]]
    missing = [r for r in rows if r.sort_value(sort)[0]]
    present.sort(key=lambda r: r.sort_value(sort), reverse=reverse)
    ordered = present + missing
    return [r for r in ordered if r.live] + [r for r in ordered if not r.live]


def config_diff(run_dirs: list[Path]) -> dict[str, list[Any]]:
    """``section.key`` -> the value in each run, for the keys whose values differ (absent: None)."""
    flat = []
    for d in run_dirs:
        cfg = _config(Path(d))
        flat.append({f"{sec}.{k}": v for sec, table in cfg.items() if isinstance(table, dict) for k, v in table.items()}
                    | {k: v for k, v in cfg.items() if not isinstance(v, dict)})
    keys = sorted(set().union(*flat)) if flat else []
    return {k: [f.get(k) for f in flat] for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1}


def delete_run(run_dir: Path) -> None:
    """Remove a finished run's folder; a live run is refused (ValueError, one line)."""
    import shutil

    from tui_train.core.run.endpoint import probe

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ValueError(f"{run_dir}: not a run directory")
    if probe(run_dir, clean=False)[0] is not None:
        raise ValueError(f"{run_dir}: the run is live; stop it first (tui-train ctl {run_dir} stop)")
    shutil.rmtree(run_dir)
