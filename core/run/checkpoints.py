"""Checkpoint files as files: names, the atomic write, stale temporaries, pruning, the newest.

The run layer saves a checkpoint on request for any loop; what goes into one (a model's and an
optimizer's state, RNG states) is the loop's business (:mod:`tui_train.core.train.checkpoint` for the
built-in loop, :mod:`tui_train.loop` for a user's). Here only the file: written to a temporary file in
the same folder, flushed and fsynced, then ``os.replace``d onto its final name, so no partial file
ever carries a final name. No torch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

TMP_PREFIX = ".tmp-"
"""Temporary files start with this; stale ones are removed by :func:`clean_stale`."""


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file beside it, which is fsynced
    and renamed onto ``path``; on any failure the temporary file is removed and the error raised
    (a full disk makes torch.save raise RuntimeError, not OSError: STYLE.md, known traps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    return path


def write_json(path: Path, value: dict, **dumps) -> Path:
    """``value`` as a JSON file at ``path``, replaced atomically (:func:`write_atomic`): a reader
    never sees half of it. ``dumps``: json.dumps options (indent, default...)."""
    text = json.dumps(value, **dumps) + "\n"
    return write_atomic(Path(path), lambda f: f.write(text.encode("utf-8")))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files left by an interrupted save. Returns what was removed."""
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(f"{TMP_PREFIX}*"):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def prune(folder: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` periodic checkpoints; best, last, manual, interrupt,
    early-stop, error and non-finite ones are never pruned."""
    periodic = sorted(Path(folder).glob("step-*-periodic.pt"), key=lambda p: p.stat().st_mtime_ns)
    for p in periodic[: max(0, len(periodic) - keep_last)]:
        try:
            p.unlink()
        except OSError:
            pass


def checkpoint_name(step: int, reason: str) -> str:
    """File name for a checkpoint: ``step-000123-manual.pt`` (best/last have fixed names)."""
    if reason in ("best", "last"):
        return f"{reason}.pt"
    return f"step-{step:08d}-{re.sub(r'[^a-z0-9_]+', '_', reason.lower())}.pt"


def newest(folder: Path) -> Path | None:
    """The most recently written complete checkpoint in ``folder``."""
    folder = Path(folder)
    files = [p for p in folder.glob("*.pt") if not p.name.startswith(TMP_PREFIX)]
    return max(files, key=lambda p: p.stat().st_mtime_ns, default=None)


def run_dir_of(checkpoint_file: Path) -> Path:
    """The run directory a checkpoint belongs to (the folder above ``checkpoints/``)."""
    f = Path(checkpoint_file).resolve()
    return f.parent.parent if f.parent.name == "checkpoints" else f.parent
