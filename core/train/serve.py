"""The trainer process: one run, its own session, its control endpoint; outlives the terminal.

``tui-train run`` starts it (:func:`tui_train.core.live.spawn.spawn`) and attaches the TUI to it; a
hang-up of the terminal does not reach it (it leaves the terminal's session), and it trains on
until the run ends, a viewer sends ``Interrupt``/``Stop``, or it gets SIGTERM/SIGHUP itself (then it saves and ends as
``interrupted`` within 5 s, as a headless run does: it *is* a headless run, printing its lines
to ``<run_dir>/trainer.log``), or its save signal (``--signal-save``: then ``preempted``, and a
SLURM job is requeued; core.run.slurm).

Start-up handshake: the spawner writes a JSON spec to the child's stdin; the child answers with
one JSON line on stdout, ``{"ready": true, "socket", "run_dir", "pid"}`` once the run directory
and the endpoint exist, or ``{"ready": false, "error": "<one line>", "code": 2}`` for bad input;
then its stdout and stderr go to trainer.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from tui_train.core import events as E
from tui_train.core.config import ConfigError, from_dict
from tui_train.core.errors import StartInterrupted, catch_startup_signals, one_line, release_startup_signals
from tui_train.core.heap import settle_heap
from tui_train.core.run import slurm
from tui_train.core.run.endpoint import Endpoint, EndpointError
from tui_train.core.run.headless import run_headless
from tui_train.core.run.notify import notifying
from tui_train.core.train.checkpoint import CheckpointError
from tui_train.core.train.data import DataError
from tui_train.core.train.engine import Trainer

LOG_NAME = "trainer.log"
"""The trainer process's own output (progress lines, warnings) in its run directory."""


@contextlib.contextmanager
def hosting(trainer) -> Iterator:
    """Host the prepared ``trainer``'s control endpoint while the block runs: every record the
    run log writes goes to the viewers, their commands to ``trainer.submit``."""
    endpoint = Endpoint(trainer.run_dir, trainer.submit, status=lambda: trainer.status, initial_seq=trainer.run_log.seq)
    endpoint.start()
    trainer.run_log.listeners.append(endpoint.publish)
    try:
        yield endpoint
    finally:
        with contextlib.suppress(ValueError):
            trainer.run_log.listeners.remove(endpoint.publish)
        endpoint.close()


def run_hosted(trainer, on_hosted: Callable[[Endpoint], None], *,
               without_endpoint: Callable[[EndpointError], None] | None = None) -> int:
    """Train the prepared ``trainer`` headless in this process behind its control endpoint, and
    return the exit code: the one way a run starts hosted (the trainer process's :func:`main`,
    the headless CLI, a headless fork).

    ``on_hosted(endpoint)`` runs once the endpoint serves (to announce it). The URLs of
    ``TUI_TRAIN_NOTIFY`` are told the run's end, failure, target and pauses (core.run.notify). When the endpoint
    cannot be made, ``without_endpoint(error)`` is told and the run trains without one; without
    that callback the EndpointError propagates. A signal before run_headless's own handlers take
    over (StartInterrupted) abandons the prepared run, which never began, while the endpoint is
    still open for its viewers, and propagates. The start-up signal handlers are released at the end."""
    with contextlib.ExitStack() as stack:
        try:
            try:
                endpoint = stack.enter_context(hosting(trainer))
            except EndpointError as e:
                if without_endpoint is None:
                    raise
                without_endpoint(e)
            else:
                on_hosted(endpoint)
            why = slurm.remember(trainer.run_dir)  # a SLURM job: --resume auto finds the run by its id
            if why:
                sys.stderr.write(f"tui-train: warning: {why}\n")
            # after the endpoint: its viewers get each event before a notification is waited for (the run's end)
            stack.enter_context(notifying(trainer.run_log, trainer.report))
            return run_headless(trainer)  # its own handlers stop a run that has begun
        except StartInterrupted as e:
            trainer.abandon(f"{signal.Signals(e.signum).name} before training began")
            raise
        finally:
            release_startup_signals()


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
    catch_startup_signals()  # a SIGTERM while starting: one line and exit 130, nothing half-made
    slurm.catch_early(slurm.save_signal())  # the save signal (the spawner's environment says which): kept for the run
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
        _answer({"ready": False, "code": 1, "error": one_line(e)})
        os._exit(1)
    code = 1

    def announce(endpoint: Endpoint) -> None:
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

    try:
        code = run_hosted(trainer, announce)
    except StartInterrupted:  # after prepare(), before run_headless took over: run_hosted abandoned the run
        code = 130
    finally:
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
