"""Starting our own child processes: a trainer process (:mod:`tui_train.core.train.serve`) and the
launcher's LR range test (:mod:`tui_train.core.train.lr_sweep`), written once.

Both are ``python -P -c CODE`` (``-P``: the user's working folder is not put first on the child's
path), handed a JSON spec on stdin, with stderr in a temporary file whose last line is the one
line shown when the child gives no answer. After :func:`lower_ui_priority`, children start from
one spawner thread that kept the viewer's original CPU priority, so a trainer never inherits the
UI's lower one. No torch here: the viewer's process spawns, the child imports torch.

(The torchrun group is started by :func:`tui_train.core.live.launch.start_group`: a different program,
with its output in a log file and no spec.)
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from tui_train.core.config import to_dict
from tui_train.core.lr_find import DEFAULT_END, DEFAULT_START, DEFAULT_STEPS, Curve, SweepError

READY_TIMEOUT = 300.0
"""Seconds the spawner waits for a trainer's ready line (data loading can take a while on first use)."""

UI_NICE = int(os.environ.get("TUI_TRAIN_UI_NICE", "10") or 0)
"""How much a viewer lowers its own CPU priority (nice), so that on a busy machine its drawing
comes out of idle time and never out of training (0: not at all)."""

TRAINER_CODE = "from tui_train.core.train.serve import main; main()"
"""What a trainer process runs (:func:`tui_train.core.train.serve.main`)."""

LR_FIND_CODE = "import sys; from tui_train.core.train.lr_sweep import main; sys.exit(main())"
"""What the launcher's LR range test runs (:func:`tui_train.core.train.lr_sweep.main`)."""

_spawner = None  # the thread that starts child processes at the priority this process started with


def lower_ui_priority(nice: int = UI_NICE) -> int:
    """Lower the calling thread's CPU priority by ``nice`` (the UI's thread, before the UI starts its
    own threads: they inherit it), after starting the one thread that spawns trainer processes,
    which keeps the original priority, so that a trainer started later never inherits the UI's.
    Returns the new nice value of the calling thread (unchanged where the OS refuses)."""
    global _spawner
    if _spawner is None:
        _spawner = ThreadPoolExecutor(1, thread_name_prefix="tui-train-spawner")
        _spawner.submit(threading.get_native_id).result()  # the thread exists now, at this priority
    tid = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, tid)
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))  # Linux: this thread only
    return os.getpriority(os.PRIO_PROCESS, tid)


def at_trainer_priority(fn, *args):
    """``fn(*args)`` in the spawner thread after :func:`lower_ui_priority` (a process it starts
    keeps the original priority), else here."""
    if _spawner is not None and not threading.current_thread().name.startswith("tui-train-spawner"):
        return _spawner.submit(fn, *args).result()
    return fn(*args)


def start_child(code: str, spec: dict, *, stdout: Any, errors: IO[bytes], new_session: bool = False) -> subprocess.Popen:
    """``python -P -c code`` at the trainer's priority, with ``spec`` as one JSON line on its stdin
    (then closed) and its stderr in ``errors``. It inherits this environment as it is: everything
    of ours is under the one name ``tui_train``, which a user's folder or PYTHONPATH (their own
    ``core``, ``tui``) cannot shadow (issue 20 defect 2), and ``-P`` keeps the working folder from
    going first on its path."""
    proc = at_trainer_priority(lambda: subprocess.Popen([sys.executable, "-P", "-c", code], stdin=subprocess.PIPE,
                                                        stdout=stdout, stderr=errors, start_new_session=new_session))
    try:
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        proc.stdin.close()
    except OSError:
        pass
    return proc


def why_no_answer(proc: subprocess.Popen, errors: IO[bytes]) -> str:
    """Why a child gave no answer, in a few words: the last line it wrote to stderr, else its exit code."""
    errors.seek(0)
    tail = [x for x in errors.read().decode(errors="replace").splitlines() if x.strip()]
    return tail[-1] if tail else f"exit code {proc.poll()}"


def _json_dict(line: bytes | str) -> dict:
    try:
        answer = json.loads(line) if line else {}
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


# -- a trainer process ----------------------------------------------------------------------------
def spec_for(config, *, runs_dir, preset: str | None, resume=None, resume_overrides=(), fork: bool = False,
             fork_config: bool = False) -> dict:
    """The JSON spec a trainer process is started from (plain values only)."""
    return {"config": to_dict(config), "runs_dir": str(runs_dir), "preset": preset,
            "resume": str(resume) if resume else None, "resume_overrides": list(resume_overrides),
            "fork": bool(fork), "fork_config": bool(fork_config)}


def spawn(spec: dict, timeout: float = READY_TIMEOUT) -> tuple[subprocess.Popen, dict]:
    """Start a trainer process in a session of its own; return (process, its ready line as a dict:
    ``ready`` true with socket/run_dir/pid, or false with error and code). After
    :func:`lower_ui_priority` the spawner thread starts it, at the original priority."""
    with tempfile.TemporaryFile() as errors:
        proc = start_child(TRAINER_CODE, spec, stdout=subprocess.PIPE, errors=errors, new_session=True)
        answer = _json_dict(_read_line(proc, timeout))
        if "ready" not in answer:
            answer = {"ready": False, "code": 1, "error": f"the training process did not start ({why_no_answer(proc, errors)})"}
    return proc, answer


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf and time.monotonic() < deadline:
        if not sel.select(timeout=0.5):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
    sel.close()
    proc.stdout.close()
    return buf.split(b"\n", 1)[0]


# -- the launcher's LR range test -----------------------------------------------------------------
def run_lr_find(cfg: Any, *, start: float = DEFAULT_START, end: float = DEFAULT_END, steps: int = DEFAULT_STEPS,
                cancel: Any = None) -> tuple[Curve, str]:
    """:func:`tui_train.core.train.lr_sweep.find_lr` in a child process (the launcher's process never
    imports torch, and its UI thread never trains). Returns (curve, device); SweepError with the
    child's one line for bad input or a failure, or "cancelled" once ``cancel`` (an Event) is set."""
    spec = {"config": to_dict(cfg), "start_lr": start, "end_lr": end, "steps": steps}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errors:
        proc = start_child(LR_FIND_CODE, spec, stdout=out, errors=errors)
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.wait()
                raise SweepError("cancelled")
            time.sleep(0.05)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        answer = _json_dict(lines[-1] if lines else "")
        if not answer:
            raise SweepError(f"the LR range test failed ({why_no_answer(proc, errors)})")
    if "error" in answer:
        raise SweepError(str(answer["error"]))
    return Curve.from_json(answer), str(answer.get("device", ""))
