"""A trainer in its own long-lived process, driven through the run's control endpoint.

:class:`RemoteTrainer` keeps the trainer contract (``submit``, ``run(stop_event, sink)``), so the
TUI drives it as it drives an in-thread Trainer. ``run`` starts the trainer process (or attaches
to a live run), hands the run's history from its run directory to the sink, then every live
event. Setting ``stop_event`` *detaches*: the connection closes, the run goes on. To end the run,
submit ``Interrupt`` (save and end) or ``Stop`` (early stop) and wait for RunFinished.

If the trainer process dies, ``run`` reports StatusChanged('failed') and RunFailed instead of
hanging. This module imports no torch: the viewer's process stays light.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import protocol as P
from tui_train.core.contract import Sink
from tui_train.core.live.spawn import spawn, spec_for
from tui_train.core.run.endpoint import Connection, EndpointError, pid_alive, probe


class RemoteTrainer:
    """The trainer contract over a control endpoint (a new trainer process, or ``attach`` to a live run)."""

    detachable = True
    """Setting run()'s stop_event leaves the run going (a viewer detaches)."""

    def __init__(self, config=None, *, runs_dir: str | Path = "runs", preset: str | None = None,
                 resume: str | Path | None = None, resume_overrides: list[str] | tuple = (),
                 attach: str | Path | None = None, viewer: str = "tui", fork: bool = False, fork_config: bool = False):
        self.config = config
        """The config to train (unused when attaching)."""
        self.spec_args = {"runs_dir": str(runs_dir), "preset": preset, "resume": resume, "resume_overrides": list(resume_overrides),
                          "fork": fork, "fork_config": fork_config}
        """How the trainer process is started."""
        self.attach_to = Path(attach) if attach else None
        """A live run's directory to attach to instead of starting one."""
        self.viewer = viewer
        """The kind of viewer we are ('tui', 'ctl'), in our id on the endpoint."""
        self.run_dir: Path | None = None
        """The run directory, once known."""
        self.pid: int | None = None
        """The trainer process."""
        self.viewer_id = ""
        """Our id on the endpoint (acknowledgements of our commands name it in ``origin``)."""
        self.detached = False
        """run() returned because stop_event was set while the run went on."""
        self.finished = False
        """The run ended (RunFinished or RunFailed arrived)."""
        self.viewers = 1
        """Dashboards attached to the run now, this one included (the endpoint says when it changes)."""
        self.live = False
        """run() has handed the run's history (read from its files) to the sink: the events from then
        on happen now (a dashboard notifies its terminal of these only: tui.notify_terminal)."""
        self._prefetched = None  # a Future of (Connection, history) from prefetch(), used by the first run()
        self._conn: Connection | None = None
        self._pending: list[C.Command] = []
        self._lock = threading.Lock()
        self._proc = None

    def submit(self, command: C.Command, origin: str = "") -> None:
        """Send a command to the trainer (queued until connected); never blocks for long."""
        with self._lock:
            conn = self._conn
            if conn is None:
                self._pending.append(command)
                return
        try:
            conn.send(command)
        except OSError:
            pass  # the connection is gone: run() reports how the run ended

    def run(self, stop_event: threading.Event | None = None, sink: Sink | None = None) -> dict:
        """Start or attach, forward history and live events to ``sink`` until the run ends or
        ``stop_event`` is set (detach); return the summary ({} when detached)."""
        stop_event = stop_event or threading.Event()
        sink = sink or (lambda e: None)
        try:
            if self._prefetched is not None:
                conn, history = self._prefetched.result()
                self.run_dir, self.viewer_id, self._prefetched = conn.run_dir, conn.viewer_id, None
            else:
                conn = self._connect(sink)
                history = None
        except EndpointError as e:
            return _failed(sink, str(e))
        if conn is None:
            return {}
        if history is None:
            from tui_train.core.rundir.history import read_history

            history = read_history(conn.run_dir, conn.seq)
        summary: dict = {}
        for event in history:
            sink(event)
            if isinstance(event, E.RunStarted):  # a resumed run starts again: only an ending after it counts
                self.finished, summary = False, {}
            elif isinstance(event, E.RunFinished | E.RunFailed):  # the run ended while we attached
                self.finished, summary = True, dict(event.summary)
        self.live = True
        with self._lock:
            self._conn, pending, self._pending = conn, self._pending, []
        for command in pending:
            self.submit(command)
        summary = self._follow(conn, stop_event, sink) or summary
        conn.close()
        return summary

    def prefetch(self) -> None:
        """Attach and read the history in a thread now, so that run() finds them ready: a viewer
        that starts by importing its UI (0.6 s for Textual) overlaps the two (attach only)."""
        if self.attach_to is None or self._prefetched is not None:
            return
        from concurrent.futures import Future

        future: Future = Future()

        def fetch() -> None:
            try:
                from tui_train.core.rundir.history import read_history

                conn = self._connect(lambda e: None)
                future.set_result((conn, read_history(conn.run_dir, conn.seq)))
            except BaseException as e:  # noqa: BLE001 - handed to run(), which reports it
                future.set_exception(e)

        self._prefetched = future
        threading.Thread(target=fetch, name="tui-train-prefetch", daemon=True).start()

    # -- internals -------------------------------------------------------------------------------
    def _connect(self, sink: Sink) -> Connection | None:
        if self.attach_to is not None:
            ptr, why = probe(self.attach_to)
            if ptr is None:
                raise EndpointError(f"{self.attach_to}: {why}")
            socket_path, self.pid = ptr.socket, ptr.pid
        else:
            self._proc, ready = spawn(spec_for(self.config, **self.spec_args))
            if not ready.get("ready"):
                message = str(ready.get("error", "the training process did not start"))
                _failed(sink, message)
                return None
            socket_path, self.pid = Path(ready["socket"]), int(ready["pid"])
        conn = Connection(socket_path, viewer=self.viewer)
        self.run_dir, self.viewer_id = conn.run_dir, conn.viewer_id
        return conn

    def _follow(self, conn: Connection, stop_event: threading.Event, sink: Sink) -> dict:
        summary: dict = {}
        for event, seq, msg in conn.events(timeout=0.05):
            if stop_event.is_set() and not self.finished:
                self.detached = True
                return {}
            if event is None:
                if msg.get("type") == "viewers":
                    try:
                        self.viewers = max(1, P.viewers_from_message(msg))  # this dashboard counts itself
                    except P.ProtocolError as e:
                        sink(E.RunWarning(message=f"the trainer sent a malformed viewers message: {e}"))
                    continue
                if msg.get("type") == "error":
                    sink(E.RunWarning(message=f"the trainer refused a message: {msg.get('reason', '')}"))
                continue
            if seq <= conn.seq:
                continue  # already in the history read from the files
            sink(event)
            if isinstance(event, E.RunFinished | E.RunFailed):
                self.finished = True
                summary = dict(event.summary)
        if not self.finished and not stop_event.is_set():
            return self._lost(sink)
        return summary

    def _lost(self, sink: Sink) -> dict:
        """The connection ended without the end of the run: the trainer died, or dropped us."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and self.pid and _alive(self.pid, self._proc):
            time.sleep(0.05)
        if self.pid and _alive(self.pid, self._proc):
            sink(E.RunWarning(message="the trainer closed this viewer's connection (too slow?); the run goes on: attach again"))
            self.detached = True
            return {}
        code = self._proc.poll() if self._proc is not None else None
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}" if code is not None else "it is gone"
        return _failed(sink, f"the training process ended unexpectedly ({why}); the newest checkpoint in the run directory is intact")


def _alive(pid: int, proc) -> bool:
    """Our own child by its Popen (a zombie is dead), another process by its pid."""
    return proc.poll() is None if proc is not None else pid_alive(pid)


def _failed(sink: Sink, message: str) -> dict:
    sink(E.StatusChanged(status="failed", reason=message, cause="failure"))
    sink(E.RunFailed(message=message, traceback="", traceback_path=""))
    return {}
