"""``tui-train watch -- python train.py ARGS``: run a script that calls ``tui_train.init`` with its
run's dashboard open (issue 23 item 2).

The watcher starts the script and follows it; the run itself lives in the script (tui_train.loop):
- The script runs in a session of its own (a hang-up of this terminal does not reach it), with no
  stdin (the dashboard reads the keys), and its stdout and stderr in a file, never a pipe of ours,
  so that a watcher that detaches or dies never blocks nor kills it. ``PYTHONUNBUFFERED=1`` (unless
  set already) makes its prints reach that file, and so the run's output.log, as they happen.
- ``TUI_TRAIN_ANNOUNCE`` names a file where ``tui_train.init`` writes ``{"socket", "run_dir", "pid"}``
  once its endpoint serves; ``TUI_TRAIN_OUTPUT`` names the output file, which init copies into
  ``<run_dir>/output.log`` and the event log. Both files are in a private folder (0700) removed when
  the watcher ends; the script keeps its open file.
- Once the run is announced the CLI opens the same dashboard as ``tui-train attach`` (d detaches,
  the script runs on), or, without a terminal, prints the run's events as the headless printer does.
  Either way it ends by waiting for the script, and exits with the script's exit code.

This module imports no torch and no Textual.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

POLL = 0.05
"""Seconds between two looks at the announcement file (and at whether the script is alive)."""

TAIL_LINES = 20
"""Lines of the script's output shown when it ends before announcing a run."""

SLOW_EXIT = 2.0
"""Seconds after its run ended before the watcher says it is still waiting for the script to exit."""


class StartError(Exception):
    """The command could not be started (one line: why)."""


class HungUp(BaseException):
    """SIGHUP reached the watcher (its terminal is gone): leave now, the script runs on. A
    BaseException, so that nothing on the way out takes it for an error of its own."""


@dataclass
class Script:
    """The user's script, started by :func:`start`, and the watcher's private folder."""

    proc: subprocess.Popen
    """The script's process (its own session)."""
    folder: Path
    """The private folder (0700) holding the two files below; removed by :meth:`close`."""
    announce: Path
    """Where tui_train.init announces its run (``TUI_TRAIN_ANNOUNCE``)."""
    output: Path
    """The script's stdout and stderr (``TUI_TRAIN_OUTPUT``)."""

    @property
    def pid(self) -> int:
        """The script's process id."""
        return self.proc.pid

    def exit_code(self) -> int | None:
        """The script's exit code as a shell reports it (128 + N when signal N ended it), or None while it runs."""
        code = self.proc.poll()
        return None if code is None else shell_code(code)

    def close(self) -> None:
        """Remove the private folder (the script keeps writing to its open output file)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def shell_code(returncode: int) -> int:
    """A Popen return code as a shell's ``$?`` (a signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def private_folder() -> Path:
    """A new folder only we can enter, under ``$XDG_RUNTIME_DIR`` when there is one (tempfile's otherwise)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    base = runtime if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="tui-train-watch-", dir=base))  # mkdtemp makes it 0700


def start(command: list[str]) -> Script:
    """Start ``command`` in a session of its own, its output in a file of a private folder, with
    the two variables of core.run.announce set. StartError when it cannot start."""
    from tui_train.core.run.announce import ANNOUNCE_ENV, OUTPUT_ENV

    folder = private_folder()
    announce, output = folder / "announce.json", folder / "output.log"
    env = {**os.environ, ANNOUNCE_ENV: str(announce), OUTPUT_ENV: str(output)}
    env.setdefault("PYTHONUNBUFFERED", "1")  # a print reaches the file (and the dashboard) when it is printed
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                    start_new_session=True)
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise StartError(f"cannot start {command[0]!r}: {e.strerror or e}") from None
    # Reap it as soon as it exits: a dead script must not look alive (a zombie answers kill(pid, 0))
    # to the dashboard's RemoteTrainer, which then says "ended unexpectedly" instead of "too slow".
    threading.Thread(target=proc.wait, name="tui-train-watch-reaper", daemon=True).start()
    return Script(proc=proc, folder=folder, announce=announce, output=output)


def wait_for_announcement(script: Script) -> dict | None:
    """``{"socket", "run_dir", "pid"}`` once tui_train.init has announced the run; None when the
    script exits first (it crashed, or never called init)."""
    while True:
        found = read_announcement(script.announce)
        if found is not None:
            return found
        if script.proc.poll() is not None:
            return read_announcement(script.announce)  # announced just before it exited
        time.sleep(POLL)


def read_announcement(path: Path) -> dict | None:
    """The announcement in ``path`` (written atomically by tui_train.init), or None while there is
    none or it is not one (then the wait goes on)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("run_dir"), str) or not found["run_dir"]:
        return None
    return found


def tail(path: Path, lines: int = TAIL_LINES, limit: int = 65536) -> list[str]:
    """The last ``lines`` non-blank lines of ``path`` (its last ``limit`` bytes); each as a terminal
    shows it after carriage returns (a progress bar's last state)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in _lines(text) if line.strip()][-lines:]


def after_the_run(output: Path, run_dir: Path, limit: int = 16 << 20) -> list[str]:
    """The last lines the script wrote after its run ended (``run.finish()``): what it printed then
    (a final test score) is in output.log but in no event. summary.json's ``output_bytes`` says how
    much of ``output`` the run had copied when it ended. [] when unknown or over ``limit`` bytes."""
    import json

    try:
        done = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("output_bytes")
        if not isinstance(done, int) or output.stat().st_size - done > limit:
            return []
        with open(output, "rb") as f:
            f.seek(done)
            rest = f.read()
    except (OSError, ValueError, AttributeError):
        return []
    return [line for line in _lines(rest.decode("utf-8", "replace")) if line.strip()][-TAIL_LINES:]


def _lines(text: str) -> list[str]:
    """``text``'s lines as a terminal shows them after carriage returns (a progress bar's last state)."""
    return [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]


def ended_early(script: Script, code: int) -> str:
    """The one line for a script that ended before its run was announced."""
    if code == 0:
        return ("tui-train: the script ended (exit 0) without starting a run: it did not call tui_train.init "
                "(or called it with endpoint=False)")
    how = f"was killed by {_signal_name(code - 128)}" if code > 128 else f"exited with code {code}"
    return f"tui-train: the script {how} before tui_train.init started its run"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Forwarding:
    """While the watcher waits on the script (its announcement, its run's events, its exit):
    SIGINT (Ctrl+C) and SIGTERM are sent on to the script as SIGTERM (a run of tui_train.init then
    saves a checkpoint and ends ``interrupted``, exit 130); a second Ctrl+C kills it (SIGKILL).
    SIGHUP (the terminal is gone) raises :class:`HungUp`: the watcher leaves and the script runs on,
    or, with ``on_hangup='stop'``, it is sent SIGTERM first. A signal that was ignored (nohup's
    SIGHUP) stays ignored. A context manager; the handlers from before come back at its end."""

    def __init__(self, script: Script, on_hangup: str = "detach", out: TextIO | None = None):
        self.script, self.on_hangup, self.out = script, on_hangup, out
        self.forwarded = 0
        """Signals sent on to the script so far."""
        self._previous: dict = {}

    def __enter__(self) -> Forwarding:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        while self._previous:
            sig, handler = self._previous.popitem()
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame) -> None:
        if signum == signal.SIGHUP:
            if self.on_hangup == "stop":
                self._send(signal.SIGTERM)
            raise HungUp()
        second = self.forwarded and signum == signal.SIGINT
        self._send(signal.SIGKILL if second else signal.SIGTERM)
        self._say(f"tui-train: {signal.Signals(signum).name}: "
                  + ("killed the script (SIGKILL)" if second else "sent SIGTERM to the script (a run saves and ends "
                                                                   "interrupted; Ctrl+C again kills it)"))

    def _send(self, sig: int) -> None:
        self.forwarded += 1
        with contextlib.suppress(ProcessLookupError):
            if self.script.proc.poll() is None:
                os.kill(self.script.pid, sig)

    def _say(self, line: str) -> None:
        if self.out is not None:
            with contextlib.suppress(OSError, ValueError):
                self.out.write(line + "\n")
                self.out.flush()


def stream(run_dir: Path, out: TextIO) -> None:
    """Print the run's events (all of them, from the run directory, then live) as the headless
    printer does, until the run ends. A run that ended before the watcher could attach (a short
    script) is printed from its files alone."""
    from tui_train.core import events as E
    from tui_train.core.live.remote import RemoteTrainer
    from tui_train.core.run.endpoint import probe
    from tui_train.core.run.headless import Printer

    printer = Printer(out)
    ended = False

    def sink(event) -> None:
        # A run ends once (until a resume starts it again). RemoteTrainer reports a failure ("ended
        # unexpectedly") when the connection closes without a RunFinished *live*: a short script's
        # RunFinished can already be in the history it read from the files (tests/e2e/test_watch.py,
        # the fast headless run).
        nonlocal ended
        if ended and isinstance(event, E.StatusChanged | E.RunFinished | E.RunFailed):
            return
        ended = (ended or isinstance(event, E.RunFinished | E.RunFailed)) and not isinstance(event, E.RunStarted)
        printer(event)

    from tui_train.core.rundir.history import read_history

    if probe(run_dir)[0] is None:
        for event in read_history(run_dir):
            sink(event)
        return
    connected: list[bool] = []  # whether the first event was the run's history (RunStarted) or a connection failure

    def first(event) -> None:
        if not connected:
            connected.append(isinstance(event, E.RunStarted))
        if connected[0]:
            sink(event)

    RemoteTrainer(attach=run_dir, viewer="watch").run(sink=first)
    if connected == [False]:  # the run ended between the probe and the connection: its files tell it all
        for event in read_history(run_dir):
            sink(event)


def wait_for_exit(script: Script, say) -> int:
    """Wait for the script to exit (saying so once when it takes a while); its exit code."""
    deadline = time.monotonic() + SLOW_EXIT
    while script.proc.poll() is None:
        if deadline is not None and time.monotonic() > deadline:
            say(f"tui-train: waiting for the script (pid {script.pid}) to exit (Ctrl+C stops it)")
            deadline = None
        time.sleep(POLL)
    return shell_code(script.proc.returncode)
