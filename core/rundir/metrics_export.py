"""A run's metrics exported for other tools: a CSV in the shape of PyTorch Lightning's CSVLogger
(``metrics.csv``), and TensorBoard event files.

Every logged step is exported (never the thinned history a viewer gets): the records come from
metrics.jsonl, read in full with :func:`core.rundir.history.read_records`, so a partial run (no
summary.json, a torn last line) exports what it has. A run resumed in its own directory rewinds
to the checkpoint's step (its RunStarted says where), so the steps it redid appear once, with the
values of the resumed run (TensorBoard's purge on restart does the same).
"""

from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tui_train.core.errors import first_line
from tui_train.core.rundir.history import read_records

MISSING_TENSORBOARD = "--tensorboard needs tensorboardX or tensorboard: pip install 'tui-train[tensorboard]' (or pip install tensorboardX)"
"""The one-line message of :class:`ExportError` when no TensorBoard writer can be imported."""

STEP_COLUMNS = (("loss", "train_loss", "train/loss"), ("accuracy", "train_acc", "train/accuracy"), ("lr", "lr", "lr"),
                ("samples_per_second", "samples_per_second", "samples_per_second"))
"""StepMetrics field, CSV column, TensorBoard tag: the metrics of every logged step."""


class ExportError(Exception):
    """The run's metrics cannot be exported (not a run directory, no writer, an unwritable output); one line."""


@dataclass
class _Row:
    """One log call: the metrics one record logged at one step."""

    step: int
    epoch: int
    time: float | None
    values: list[tuple[str, str, float]] = field(default_factory=list)
    """(CSV column, TensorBoard tag, value) of every metric the record logged."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _from_dict(metrics, column: str, tag: str) -> list[tuple[str, str, float]]:
    if not isinstance(metrics, dict):
        return []
    return [(f"{column}{k}", f"{tag}{k}", v) for k, v in metrics.items() if _number(v)]


def _int(v, default: int = 0) -> int:
    return int(v) if _number(v) and v == v and abs(v) != float("inf") else default


def _rows(run_dir: Path) -> list[_Row]:
    """The run's metrics as rows, one per metrics record, in log order (steps redone by a resume once)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"no such run directory: {run_dir}")
    if not any((run_dir / name).is_file() for name in ("metrics.jsonl", "events.jsonl")):
        raise ExportError(f"not a run directory (no metrics.jsonl or events.jsonl): {run_dir}")
    rows: list[_Row] = []
    last_step = last_epoch = 0
    for rec in read_records(run_dir):
        kind = rec["event"]
        t = rec.get("time")
        t = float(t) if _number(t) else None
        if kind == "RunStarted":
            start = _int(rec.get("start_step"))
            rows = [r for r in rows if r.step <= start]  # a resume in this directory redoes what came after its checkpoint
            continue
        if kind == "StepMetrics":
            row = _Row(_int(rec.get("step")), _int(rec.get("epoch")), t)
            row.values = [(col, tag, rec[name]) for name, col, tag in STEP_COLUMNS if _number(rec.get(name))]
        elif kind == "EpochMetrics":
            row = _Row(_int(rec.get("step"), last_step), _int(rec.get("epoch"), last_epoch), t)
            row.values = _from_dict(rec.get("train"), "train_epoch_", "epoch/train_") + _from_dict(rec.get("val"), "val_", "val/")
        elif kind == "ValidationMetrics":
            row = _Row(_int(rec.get("step"), last_step), _int(rec.get("epoch"), last_epoch), t)
            row.values = _from_dict(rec.get("metrics"), "val_", "val/")
        elif kind == "Scalars":  # a loop's own names (tui_train.init)
            row = _Row(_int(rec.get("step"), last_step), _int(rec.get("epoch"), last_epoch), t)
            row.values = _from_dict(rec.get("values"), "", "")
        elif kind == "TestMetrics":  # no step of its own: the run's last
            row = _Row(last_step, last_epoch, t, _from_dict(rec.get("metrics"), "test_", "test/"))
        else:
            continue
        last_step, last_epoch = row.step, row.epoch
        if row.values:
            rows.append(row)
    return rows


def export_csv(run_dir: Path, out: Path) -> int:
    """Write the run's metrics to ``out`` as CSV in the shape of Lightning's CSVLogger: columns
    ``step``, ``epoch``, then one per metric (``train_loss``, ``train_acc``, ``lr``,
    ``samples_per_second``, ``train_epoch_<k>``, ``val_<k>``, ``test_<k>``); one row per log call
    (each logged step, each epoch end, validation and test), a cell left empty where that call did
    not log the metric; non-finite values as ``nan``/``inf``. Written atomically (a temporary file,
    then os.replace). Returns the rows written; ExportError when ``run_dir`` is not a run or
    ``out`` cannot be written."""
    rows = _rows(run_dir)
    columns: dict[str, None] = {}
    for _, col, _ in STEP_COLUMNS:  # the step metrics first, in their fixed order, when logged at all
        if any(c == col for r in rows for c, _, _ in r.values):
            columns[col] = None
    for r in rows:
        for col, _, _ in r.values:
            columns.setdefault(col, None)
    out = Path(out)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", "epoch", *columns], restval="")
            writer.writeheader()
            for r in rows:
                writer.writerow({"step": r.step, "epoch": r.epoch, **{col: v for col, _, v in r.values}})
        os.replace(tmp, out)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ExportError(f"cannot write {out}: {first_line(exc)}") from exc
    return len(rows)


def _summary_writer():
    """The SummaryWriter class: tensorboardX's, else torch.utils.tensorboard's (which needs tensorboard)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ExportError(MISSING_TENSORBOARD) from None
    return SummaryWriter


def export_tensorboard(run_dir: Path, out_dir: Path) -> int:
    """Write the run's metrics as TensorBoard event files in ``out_dir``: tags ``train/loss``,
    ``train/accuracy``, ``lr``, ``samples_per_second`` for each logged step, ``epoch/train_<k>``
    and ``val/<k>`` at each epoch end (``val/<k>`` for on-demand validations too), ``test/<k>``;
    global_step the step, walltime the record's time. Returns the scalars written; ExportError when
    no writer is installed (:data:`MISSING_TENSORBOARD`), ``run_dir`` is not a run, or ``out_dir``
    already holds event files (TensorBoard would show both exports as one run)."""
    writer_class = _summary_writer()
    rows = _rows(run_dir)
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.glob("events.out.tfevents.*")):
        raise ExportError(f"{out_dir} already holds TensorBoard event files: export into an empty folder")
    try:
        writer = writer_class(str(out_dir))
    except OSError as exc:
        raise ExportError(f"cannot write {out_dir}: {first_line(exc)}") from exc
    n = 0
    try:
        for r in rows:
            for _, tag, v in r.values:
                writer.add_scalar(tag, float(v), global_step=r.step, walltime=r.time)
                n += 1
    finally:
        writer.close()
    return n


__all__ = ["MISSING_TENSORBOARD", "ExportError", "export_csv", "export_tensorboard"]
