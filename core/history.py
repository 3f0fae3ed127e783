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

from core import events as E
from core import protocol as P

MAX_STEP_EVENTS = 4096
"""At most this many StepMetrics of the history reach a viewer (min/max-preserving buckets)."""


def read_records(run_dir: Path, upto_seq: int | None = None) -> list[dict]:
    """Every complete record of both files, in seq order (up to ``upto_seq``); a torn last line
    (the trainer is writing it) and lines that are not records are skipped."""
    records: list[tuple[int, int, dict]] = []
    for order, name in enumerate(("events", "metrics")):
        path = Path(run_dir) / f"{name}.jsonl"
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except OSError:
            continue
        for i, line in enumerate(lines):
            if not line.strip():
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


def thin_steps(events: list[E.Event], limit: int = MAX_STEP_EVENTS) -> list[E.Event]:
    """``events`` with StepMetrics thinned to about ``limit``: in each bucket of consecutive steps
    the ones with the lowest and the highest loss (a non-finite loss counts as the highest) and
    the last stay, so spikes and the latest value survive."""
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


def read_history(run_dir: Path, upto_seq: int | None = None, step_limit: int = MAX_STEP_EVENTS) -> list[E.Event]:
    """The run's events so far (up to ``upto_seq``), step metrics thinned to ``step_limit``."""
    events = [e for e in (to_event(r) for r in read_records(run_dir, upto_seq)) if e is not None]
    return thin_steps(events, step_limit)
