"""Files of a loop of the user's own (:mod:`tui_train.loop`): its checkpoints read back, its
config as TOML, the announce file and the script's output under ``tui-train watch``."""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_train.core import events as E
from tui_train.core.errors import first_line
from tui_train.core.run.announce import OUTPUT_ENV, OUTPUT_LINES_PER_S
from tui_train.core.run.checkpoints import newest

if TYPE_CHECKING:
    from tui_train.loop import Run

FORMAT = "tui_train.loop/1"
"""The ``format`` key of a checkpoint written by :meth:`tui_train.loop.Run.save` (not the built-in loop's format)."""


def load_into(run: Run, resume: Path) -> dict:
    """The newest checkpoint of ``resume`` (a run directory or a checkpoint) into the run's model,
    optimizer and scheduler; the position, live values and ``run.state`` with it. ValueError with
    one line for a folder without checkpoints, an unreadable file or another format."""
    import torch

    file = resume
    if resume.is_dir():
        folder = resume / "checkpoints" if (resume / "checkpoints").is_dir() else resume
        file = newest(folder)
        if file is None:
            raise ValueError(f"tui_train.init(resume={str(resume)!r}): no checkpoint in {folder}")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)  # never unpickles code (STYLE habit 15)
    except Exception as e:  # noqa: BLE001 - any file torch cannot read (unpickling, truncation, I/O) is bad input
        raise ValueError(f"tui_train.init(resume={str(resume)!r}): cannot read {file}: {first_line(e)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"tui_train.init(resume={str(resume)!r}): {file} is not a checkpoint of tui_train.init "
                         "(a built-in run resumes with tui-train resume)")
    for obj, key in ((run.model, "model"), (run.optimizer, "optimizer"), (run.scheduler, "scheduler")):
        if obj is not None and payload.get(key) is not None:
            obj.load_state_dict(payload[key])
    run.place.state.load_state_dict(payload["training"])
    run.state = dict(payload.get("user_state") or {})
    payload["_file"] = file
    return payload


def device_of(model: Any) -> str:
    try:
        return str(next(model.parameters()).device)
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


def config_toml(config: Mapping[str, Any], prefix: str = "") -> str:
    """``config`` as TOML: scalars and lists of scalars as values, mappings as tables; anything
    else as its repr in a string (recorded, never refused)."""
    lines, tables = [], []
    for k, v in config.items():
        key = _key(str(k))
        if isinstance(v, Mapping):
            tables.append((f"{prefix}{key}", v))
        else:
            lines.append(f"{key} = {_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, table in tables:
        out += f"\n[{name}]\n" + config_toml(table, f"{name}.")
    return out


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "-_" for c in k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    s = v if isinstance(v, str) else repr(v)
    return '"' + "".join(_char(c) for c in s) + '"'


def _char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    return f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c


class Output:
    """Under ``tui-train watch``: a daemon thread follows the file the script's stdout and stderr go
    to (:data:`OUTPUT_ENV`; lines printed before :func:`init` too) and appends every byte to
    ``<run_dir>/output.log``; while the run lasts, up to :data:`OUTPUT_LINES_PER_S` lines a second
    also become RunNote events (``output: ...``). After :meth:`Run.finish` it goes on copying into
    output.log until the script exits (a last copy at exit), so what a script prints after its run
    (a final test score) is kept even when the watcher detached long ago. The script writes to a
    file, never to a pipe of the watcher, so a watcher that detaches or dies never blocks nor kills it."""

    def __init__(self, run: Run, source: Path):
        self.run, self.source = run, source
        self._events = True
        self._lock = threading.Lock()
        self._pending, self._window, self._shown, self._left_out = b"", time.monotonic(), 0, 0
        self._src = self._dst = None
        self.copied = 0
        """Bytes of the script's output copied so far (summary.json's ``output_bytes``: what was
        printed before the run ended; the watcher shows what came after)."""
        self._thread = threading.Thread(target=self._follow, name="tui-train-output", daemon=True)

    @classmethod
    def start(cls, run: Run) -> Output:
        out = cls(run, Path(os.environ[OUTPUT_ENV]))
        place = run.place
        try:
            out._src = open(out.source, "rb")  # noqa: SIM115 - held for the process's life
            out._dst = open(place.run_dir / "output.log", "ab")  # noqa: SIM115
        except OSError as e:
            place.emit(E.RunWarning(message=f"script output not recorded: {first_line(e, typed=True)}", step=place.state.step))
            return out
        out._thread.start()
        atexit.register(out._at_exit)
        return out

    def stop(self) -> None:
        """The run ends: what was printed so far becomes events (a last line without its newline
        too); from now on output.log only."""
        _flush_streams()
        self._copy()
        with self._lock:
            if self._pending:
                self._say(self._pending)
                self._pending = b""
            self._events = False

    def _at_exit(self) -> None:
        _flush_streams()
        self._copy()

    def _follow(self) -> None:
        while True:
            if not self._copy():
                time.sleep(0.1)

    def _copy(self) -> bool:
        """Copy what is new; True when there was something."""
        if self._src is None:
            return False
        with self._lock:
            try:
                chunk = self._src.read(65536)
                if not chunk:
                    return False
                self._dst.write(chunk)
                self._dst.flush()
                self.copied += len(chunk)
            except (OSError, ValueError):  # closed at exit, or the disk is full: the script goes on
                return False
            if self._events:
                *lines, self._pending = (self._pending + chunk).split(b"\n")
                for line in lines:
                    self._say(line)
            return True

    def _say(self, line: bytes) -> None:
        place = self.run.place
        if time.monotonic() - self._window >= 1.0:
            if self._left_out:
                place.emit(E.RunNote(message=f"output: {self._left_out} line(s) left out of the event log "
                                             "(all are in output.log)", step=place.state.step))
            self._window, self._shown, self._left_out = time.monotonic(), 0, 0
        if self._shown < OUTPUT_LINES_PER_S:
            self._shown += 1
            place.emit(E.RunNote(message="output: " + line.decode("utf-8", "replace").rstrip("\r")[:500], step=place.state.step))
        else:
            self._left_out += 1


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
