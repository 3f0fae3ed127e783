"""The trainer process: one run, its own session, its control endpoint; outlives the terminal.

``tui-train run`` starts it (:func:`spawn`) and attaches the TUI to it; a hang-up of the terminal
does not reach it (it leaves the terminal's session), and it trains on until the run ends, a
viewer sends ``Interrupt``/``Stop``, or it gets SIGTERM/SIGHUP itself (then it saves and ends as
``interrupted`` within 5 s, as a headless run does: it *is* a headless run, printing its lines
to ``<run_dir>/trainer.log``).

Start-up handshake: the spawner writes a JSON spec to the child's stdin; the child answers with
one JSON line on stdout, ``{"ready": true, "socket", "run_dir", "pid"}`` once the run directory
and the endpoint exist, or ``{"ready": false, "error": "<one line>", "code": 2}`` for bad input;
then its stdout and stderr go to trainer.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from tui_train.core import events as E
from tui_train.core.errors import StartInterrupted, catch_startup_signals, release_startup_signals
from tui_train.core.heap import settle_heap

LOG_NAME = "trainer.log"
"""The trainer process's own output (progress lines, warnings) in its run directory."""

READY_TIMEOUT = 300.0
"""Seconds the spawner waits for the ready line (data loading can take a while on first use)."""


UI_NICE = int(os.environ.get("TUI_TRAIN_UI_NICE", "10") or 0)
"""How much a viewer lowers its own CPU priority (nice), so that on a busy machine its drawing
comes out of idle time and never out of training (0: not at all)."""

_spawner = None  # the thread that starts trainer processes at the priority this process started with


def lower_ui_priority(nice: int = UI_NICE) -> int:
    """Lower the calling thread's CPU priority by ``nice`` (the UI's thread, before the UI starts its
    own threads: they inherit it), after starting the one thread that spawns trainer processes,
    which keeps the original priority, so that a trainer started later never inherits the UI's.
    Returns the new nice value of the calling thread (unchanged where the OS refuses)."""
    global _spawner
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if _spawner is None:
        _spawner = ThreadPoolExecutor(1, thread_name_prefix="tui-train-spawner")
        _spawner.submit(threading.get_native_id).result()  # the thread exists now, at this priority
    tid = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, tid)
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))  # Linux: this thread only
    return os.getpriority(os.PRIO_PROCESS, tid)


@contextlib.contextmanager
def hosting(trainer) -> Iterator:
    """Host the prepared ``trainer``'s control endpoint while the block runs: every record the
    run log writes goes to the viewers, their commands to ``trainer.submit``."""
    from tui_train.core.endpoint import Endpoint

    endpoint = Endpoint(trainer.run_dir, trainer.submit, status=lambda: trainer.status, initial_seq=trainer.run_log.seq)
    endpoint.start()
    trainer.run_log.listeners.append(endpoint.publish)
    try:
        yield endpoint
    finally:
        with contextlib.suppress(ValueError):
            trainer.run_log.listeners.remove(endpoint.publish)
        endpoint.close()


def spec_for(config, *, runs_dir, preset: str | None, resume=None, resume_overrides=(), fork: bool = False,
             fork_config: bool = False) -> dict:
    """The JSON spec a trainer process is started from (plain values only)."""
    from tui_train.core.config import to_dict

    return {"config": to_dict(config), "runs_dir": str(runs_dir), "preset": preset,
            "resume": str(resume) if resume else None, "resume_overrides": list(resume_overrides),
            "fork": bool(fork), "fork_config": bool(fork_config)}


def at_trainer_priority(fn, *args):
    """``fn(*args)`` in the spawner thread after :func:`lower_ui_priority` (a process it starts
    keeps the original priority: the launcher's LR range test), else here."""
    import threading

    if _spawner is not None and not threading.current_thread().name.startswith("tui-train-spawner"):
        return _spawner.submit(fn, *args).result()
    return fn(*args)


def child_env() -> dict:
    """The environment of a child process. Nothing to add: everything of ours is under the one
    name ``tui_train``, which a user's folder or PYTHONPATH (their own ``core``, ``tui``) cannot
    shadow (issue 20, defect 2; issue 22), and the children start with ``-P`` so the working
    folder is not put first on their path."""
    return dict(os.environ)


def spawn(spec: dict, timeout: float = READY_TIMEOUT) -> tuple[subprocess.Popen, dict]:
    """Start a trainer process in a session of its own; return (process, its ready line as a dict:
    ``ready`` true with socket/run_dir/pid, or false with error and code). After
    :func:`lower_ui_priority` the spawner thread starts it, at the original priority."""
    return at_trainer_priority(_spawn, spec, timeout)


def _spawn(spec: dict, timeout: float) -> tuple[subprocess.Popen, dict]:
    env = child_env()
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the child as its stderr, read after
    proc = subprocess.Popen([sys.executable, "-P", "-c", "from tui_train.core.serve import main; main()"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=errors, start_new_session=True, env=env)
    try:
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        proc.stdin.close()
    except OSError:
        pass
    line = _read_line(proc, timeout)
    try:
        answer = json.loads(line) if line else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or "ready" not in answer:
        errors.seek(0)
        tail = [x for x in errors.read().decode(errors="replace").splitlines() if x.strip()]
        code = proc.poll()
        answer = {"ready": False, "code": 1, "error": f"the training process did not start ({tail[-1] if tail else f'exit code {code}'})"}
    errors.close()
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


def _answer(message: dict) -> None:
    """The ready line. A spawner that is gone already (its viewer detached while we started)
    does not stop the run: the run directory and the endpoint are there to attach to."""
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _to_log(run_dir: Path) -> None:
    """From now on fds 1 and 2 (and so print, warnings, the printer) go to trainer.log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(run_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main() -> None:
    """The trainer process (see the module docstring); exits with the headless exit codes."""
    from tui_train.core.checkpoint import CheckpointError
    from tui_train.core.config import ConfigError, from_dict
    from tui_train.core.data import DataError
    from tui_train.core.engine import Trainer
    from tui_train.core.headless import run_headless

    catch_startup_signals()  # a SIGTERM while starting: one line and exit 130, nothing half-made
    try:
        spec = json.loads(sys.stdin.readline())
        config = from_dict(spec["config"], "trainer spec")
        trainer = Trainer(config, runs_dir=spec["runs_dir"], preset=spec.get("preset"), resume=spec.get("resume"),
                          resume_overrides=spec.get("resume_overrides") or (), fork=bool(spec.get("fork")),
                          fork_config=bool(spec.get("fork_config")))
        held: list[E.Event] = []
        warnings.showwarning = _warning_to(trainer, held)
        trainer.prepare()
        settle_heap()  # the start-up's objects: never scanned again by a full collection mid-run
    except (ConfigError, DataError, CheckpointError) as e:
        _answer({"ready": False, "code": 2, "error": str(e)})
        os._exit(2)
    except StartInterrupted as e:  # before or during prepare(): a run directory being made is removed
        _answer({"ready": False, "code": 130, "error": f"{signal.Signals(e.signum).name}: stopped while starting, "
                                                        "before training began"})
        os._exit(130)
    except Exception as e:  # noqa: BLE001 - anything else that stops the start: say it in one line
        from tui_train.core.errors import one_line

        _answer({"ready": False, "code": 1, "error": one_line(e)})
        os._exit(1)
    code = 1
    try:
        with hosting(trainer) as endpoint:
            _answer({"ready": True, "socket": str(endpoint.path), "run_dir": str(trainer.run_dir.resolve()), "pid": os.getpid()})
            _to_log(trainer.run_dir)

            def release_held(seq: int, event: E.Event) -> None:
                """Once RunStarted is written, the warnings of the start-up follow it; then it leaves."""
                if isinstance(event, E.RunStarted):
                    trainer.run_log.listeners.remove(release_held)
                    for ev in held:
                        trainer.report(ev)
                    held.clear()

            trainer.run_log.listeners.append(release_held)
            code = run_headless(trainer)  # its own handlers stop a run that has begun
    except StartInterrupted as e:  # after prepare(), before run_headless took over: the run never began
        trainer.abandon(f"{signal.Signals(e.signum).name} before training began")
        code = 130
    finally:
        release_startup_signals()
        sys.stdout.flush()
        os._exit(code)


def _warning_to(trainer, held: list):
    """Python warnings become RunWarning events (held until the run has started)."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = f"{category.__name__}: {str(message).splitlines()[0] if str(message) else ''} ({Path(filename).name}:{lineno})"
        ev = E.RunWarning(message=text[:300], step=trainer.state.step)
        if trainer.status == "starting":
            held.append(ev)
        else:
            trainer.report(ev)
    return show
