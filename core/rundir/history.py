"""A run's history, read back from its run directory (metrics.jsonl and events.jsonl).

A viewer that attaches to a live run shows everything so far from the files (the run directory
is the truth: STYLE.md habit 20), then the live stream: the endpoint's welcome says up to which
``seq`` the files are complete, and live events carry the seqs after it. Step metrics are thinned
to a bounded number, keeping each bucket's lowest and highest loss, as the plots would anyway.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tui_train.core import events as E
from tui_train.core import protocol as P

MAX_STEP_EVENTS = 4096
"""At most this many StepMetrics of the history reach a viewer (min/max-preserving buckets)."""


MAX_SYSTEM_SAMPLES = 120
"""At most the newest this many SystemSample records of metrics.jsonl reach a viewer (the panel's
sparklines are shorter; epochs.jsonl holds none, so a run with steps.f64 sends none)."""


STEP_LINE = b'{"event": "StepMetrics"'
"""How every StepMetrics line of metrics.jsonl starts (skipped without parsing when steps.f64 has them)."""


def read_records(run_dir: Path, upto_seq: int | None = None, skip_steps: bool = False) -> list[dict]:
    """Every complete record of both files, in seq order (up to ``upto_seq``); a torn last line
    (the trainer is writing it) and lines that are not records are skipped, and so are the
    StepMetrics lines with ``skip_steps`` (then the other metrics come from epochs.jsonl where the
    run has one, so metrics.jsonl is not read at all)."""
    from tui_train.core.run.runlog import OTHER_METRICS_NAME

    run_dir = Path(run_dir)
    other = run_dir / OTHER_METRICS_NAME
    metrics = other if skip_steps and other.is_file() else run_dir / "metrics.jsonl"
    records: list[tuple[int, int, dict]] = []
    for order, path in enumerate((run_dir / "events.jsonl", metrics)):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for i, line in enumerate(data.split(b"\n")):
            if not line.strip() or (skip_steps and line.startswith(STEP_LINE)):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("event"), str):
                continue
            seq = rec.get("seq")
            key = seq if isinstance(seq, int) else -1
            if upto_seq is not None and key > upto_seq:
                continue
            records.append((key, i * 2 + order, rec))
    records.sort(key=lambda t: (t[0], t[1]) if t[0] >= 0 else (float(t[2].get("time", 0.0)), t[1]))
    return [r for _, _, r in records]


def to_event(record: dict) -> E.Event | None:
    """The event a record holds, or None when it is not one this version knows."""
    fields = {k: v for k, v in record.items() if k not in ("seq", "time")}
    try:
        event, _ = P.event_from_message({"v": P.PROTOCOL_VERSION, "type": "event", "seq": 0, "event": fields})
    except P.ProtocolError:
        return None
    return event


def with_mistakes(run_dir: Path, records: list[dict]) -> list[dict]:
    """``records`` with the latest ConfusionMatrix record given back its mistakes from
    mistakes.json (core.run.runlog.MISTAKES_NAME), when that file holds that record's (same seq) and
    they pass the protocol's checks; the records are otherwise unchanged."""
    from tui_train.core.run.runlog import MISTAKES_NAME

    last = next((i for i in range(len(records) - 1, -1, -1) if records[i].get("event") == "ConfusionMatrix"), None)
    if last is None:
        return records
    try:
        saved = json.loads((Path(run_dir) / MISTAKES_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return records
    if not isinstance(saved, dict) or saved.get("seq") != records[last].get("seq") or not isinstance(saved.get("mistakes"), list):
        return records
    rec = {**records[last], "mistakes": saved["mistakes"]}
    if to_event(rec) is None:  # hostile or stale: the matrix alone
        return records
    return [*records[:last], rec, *records[last + 1:]]


def thin_steps(events: list[E.Event], limit: int = MAX_STEP_EVENTS) -> list[E.Event]:
    """``events`` with StepMetrics thinned to about ``limit``: in each bucket of consecutive steps
    the ones with the lowest and the highest loss (a non-finite loss counts as the highest) and
    the last stay, so spikes and the latest value survive; of the SystemSample records only the
    newest :data:`MAX_SYSTEM_SAMPLES`."""
    events = newest_samples(events)
    steps = [i for i, e in enumerate(events) if isinstance(e, E.StepMetrics)]
    if len(steps) <= limit:
        return events
    per = math.ceil(len(steps) / max(1, limit // 3))
    keep: set[int] = set()
    for b in range(0, len(steps), per):
        bucket = steps[b:b + per]
        losses = [(events[i].loss if math.isfinite(events[i].loss) else math.inf, i) for i in bucket]
        keep.add(min(losses)[1])
        keep.add(max(losses)[1])
        keep.add(bucket[-1])
    return [e for i, e in enumerate(events) if not isinstance(e, E.StepMetrics) or i in keep]


def newest_samples(events: list[E.Event], limit: int = MAX_SYSTEM_SAMPLES) -> list[E.Event]:
    """``events`` with only the newest ``limit`` SystemSample records."""
    samples = [i for i, e in enumerate(events) if isinstance(e, E.SystemSample)]
    if len(samples) <= limit:
        return events
    old = set(samples[:-limit] if limit else samples)
    return [e for i, e in enumerate(events) if i not in old]


def read_steps(path: Path, upto_seq: int | None = None, limit: int = MAX_STEP_EVENTS) -> list[tuple[int, E.StepMetrics]]:
    """(seq, StepMetrics) from steps.f64, thinned to about ``limit`` as :func:`thin_steps` does."""
    import numpy as np

    from tui_train.core.run.runlog import STEP_FIELDS

    width = len(STEP_FIELDS)
    whole_rows = Path(path).stat().st_size // (8 * width)
    if whole_rows == 0:
        return []
    # mapped, not read: only the pages of the columns used are touched (5x faster than np.fromfile
    # on a 72 MB sidecar of 1e6 steps); rows appended after this moment are not seen
    rows = np.memmap(path, dtype="<f8", mode="r", shape=(whole_rows, width))
    if upto_seq is not None:
        rows = rows[rows[:, 0] <= upto_seq]
    n = rows.shape[0]
    if n > limit:
        per = math.ceil(n / max(1, limit // 3))
        pad = (-n) % per
        loss = rows[:, 4]
        low = np.concatenate([np.where(np.isfinite(loss), loss, np.inf), np.full(pad, np.inf)]).reshape(-1, per)
        high = np.concatenate([np.where(np.isfinite(loss), loss, np.inf), np.full(pad, -np.inf)]).reshape(-1, per)
        starts = np.arange(low.shape[0]) * per
        keep = np.unique(np.concatenate([starts + low.argmin(1), starts + high.argmax(1), np.minimum(starts + per, n) - 1]))
        rows = rows[keep[keep < n]]
    rows = np.asarray(rows)
    out = []
    for seq, step, epoch, progress, loss, lr, acc, sps, elapsed in rows.tolist():
        out.append((int(seq), E.StepMetrics(step=int(step), epoch=int(epoch), epoch_progress=progress, loss=loss, lr=lr,
                                            samples_per_second=sps, accuracy=None if math.isnan(acc) else acc, elapsed=elapsed)))
    return out


def read_history(run_dir: Path, upto_seq: int | None = None, step_limit: int = MAX_STEP_EVENTS) -> list[E.Event]:
    """The run's events so far (up to ``upto_seq``), step metrics thinned to ``step_limit``: from
    steps.f64 where the run has one (fast), else from metrics.jsonl."""
    from tui_train.core.run.runlog import STEPS_NAME

    steps_file = Path(run_dir) / STEPS_NAME
    if not steps_file.is_file():
        events = [e for e in (to_event(r) for r in with_mistakes(run_dir, read_records(run_dir, upto_seq))) if e is not None]
        return thin_steps(events, step_limit)
    others = [(int(r.get("seq", -1)), e) for r in with_mistakes(run_dir, read_records(run_dir, upto_seq, skip_steps=True))
              if (e := to_event(r)) is not None]
    steps = read_steps(steps_file, upto_seq, step_limit)
    merged = sorted(others + steps, key=lambda t: t[0])
    return newest_samples([e for _, e in merged])
