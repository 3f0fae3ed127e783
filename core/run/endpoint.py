"""The control endpoint: a run's owner-only Unix socket, hosted by the process that trains it.

Viewers (the TUI, ``tui-train ctl``, scripts) connect, send commands and receive every event, as
newline-delimited JSON (:mod:`core.protocol`; never pickle). Several viewers at once: a command
from any of them is applied once, at a step boundary, and its acknowledgement (naming the viewer
in ``origin``) reaches all of them.

Where it lives. A Unix socket path is limited to about 104 bytes and run directories can be deep,
so the socket is in a private folder (:func:`runtime_dir`: ``$XDG_RUNTIME_DIR/tui-train``, else
``<tmp>/tui-train-<uid>``, else ``/tmp/tui-train-<uid>``, the first where the path fits; mode 0700,
checked to be ours), the socket itself mode 0600, and the
run directory holds a pointer to it (``endpoint.json``: socket, pid, host). Peers are checked
with SO_PEERCRED where the platform has it: only our own user may connect.

Never slow the trainer. :meth:`Endpoint.publish` (called by the training thread for each event)
only queues the event; a server thread encodes it once and copies it into each viewer's bounded
buffer. A viewer that falls more than :data:`OUT_LIMIT` bytes behind is dropped (it can attach
again and reads the history from the run directory).

Never trust a message. A line over the size limit or of another protocol version closes the
connection; a malformed command gets an ``error`` reply; the trainer trains on either way.
A stale endpoint (the trainer is gone) is detected by :func:`probe` and cleaned, never trusted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import selectors
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import protocol as P

POINTER = "endpoint.json"
"""The file in a run directory that points to its live endpoint (removed when the run ends)."""

OUT_LIMIT = 8 * 1024 * 1024
"""Bytes a viewer may fall behind before it is dropped (a log interval's event is ~300 bytes)."""

MAX_VIEWERS = 64
"""Connections beyond this are refused with an error message."""

POLL_S = 0.1
"""The server thread looks at the outbox at least this often (what wakes it sooner: publish)."""

SOCKET_PATH_MAX = 100
"""Longest socket path we create (Linux allows 107 bytes, macOS 103)."""


class EndpointError(RuntimeError):
    """The endpoint cannot be created or reached. ``str(err)`` is one line."""


# --------------------------------------------------------------------------- where sockets live

def _socket_folders() -> list[Path]:
    """Where a socket may go, in order: ``$XDG_RUNTIME_DIR/tui-train`` (when that folder exists),
    ``<TMPDIR>/tui-train-<uid>``, ``/tmp/tui-train-<uid>``."""
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    folders = [Path(base) / "tui-train"] if base and Path(base).is_dir() else []
    folders += [Path(tempfile.gettempdir()) / f"tui-train-{uid}", Path("/tmp") / f"tui-train-{uid}"]
    return list(dict.fromkeys(folders))


def runtime_dir(name_len: int = 0) -> Path:
    """The private folder for sockets: the first of :func:`_socket_folders` in which a socket name
    of ``name_len`` bytes stays within SOCKET_PATH_MAX (a long XDG_RUNTIME_DIR or TMPDIR, a long
    user name, falls back to a shorter folder instead of failing), created mode 0700 and checked
    to be a real folder owned by us that no one else can enter."""
    folders = _socket_folders()
    folder = next((f for f in folders if len(os.fsencode(f)) + 1 + name_len <= SOCKET_PATH_MAX), None)
    if folder is None:
        raise EndpointError(f"{folders[0]}: socket path longer than {SOCKET_PATH_MAX} bytes; "
                            "set XDG_RUNTIME_DIR or TMPDIR to a shorter folder")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError as e:
        raise EndpointError(f"{folder}: cannot create the socket folder ({e.strerror or e})") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise EndpointError(f"{folder}: not a folder owned by this user; refusing to put a control socket there")
    if st.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def socket_path_for(run_dir: Path) -> Path:
    """A short socket path for a run (pid and a hash of the run directory), whatever the length
    of the run directory's own path (the socket is not in it)."""
    digest = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:10]
    name = f"{os.getpid()}-{digest}.sock"
    return runtime_dir(len(os.fsencode(name))) / name


@dataclass(frozen=True)
class Pointer:
    """What ``endpoint.json`` in a run directory says."""

    run_dir: Path
    """The run directory."""
    socket: Path
    """The control socket."""
    pid: int
    """The trainer process."""
    host: str
    """The machine it runs on (a socket is only reachable there)."""
    started: float
    """When the endpoint started (time.time())."""


def read_pointer(run_dir: Path) -> Pointer | None:
    """The run's endpoint pointer, or None when there is none (or it is not one of ours)."""
    path = Path(run_dir) / POINTER
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Pointer(run_dir=Path(run_dir), socket=Path(str(raw["socket"])), pid=int(raw["pid"]),
                       host=str(raw.get("host", "")), started=float(raw.get("started", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    """The process ``pid`` exists (a zombie child counts: reap your own with Popen.poll)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, but not ours to trust
    return True


def probe(run_dir: Path, clean: bool = True) -> tuple[Pointer | None, str]:
    """(pointer, '') when the run has a live endpoint; (None, why) when not. A stale pointer (its
    trainer is gone, or its socket refuses connections) is removed when ``clean``, and ``why``
    says so."""
    ptr = read_pointer(run_dir)
    if ptr is None:
        return None, "no live endpoint"
    if ptr.host and ptr.host != socket.gethostname():
        return None, f"the run is live on another machine ({ptr.host})"
    why = ""
    if not pid_alive(ptr.pid):
        why = f"stale endpoint: trainer pid {ptr.pid} is gone"
    else:
        try:
            connect_unix(ptr.socket, 2.0).close()
        except BlockingIOError:
            return ptr, ""  # its process is alive and its queue of connections full: busy, not stale
        except OSError as e:
            why = f"stale endpoint: {ptr.socket} refuses connections ({e.strerror or e})"
    if not why:
        return ptr, ""
    if clean:
        _unlink(Path(run_dir) / POINTER)
        if not pid_alive(ptr.pid):
            _unlink(ptr.socket)
        why += " (cleaned)"
    return None, why


def live_runs(runs_dir: Path) -> list[Pointer]:
    """Runs under ``runs_dir`` with a live endpoint, newest first (stale pointers are cleaned)."""
    found = []
    for pointer_file in Path(runs_dir).glob(f"*/{POINTER}"):
        ptr, _ = probe(pointer_file.parent)
        if ptr is not None:
            found.append(ptr)
    return sorted(found, key=lambda p: p.started, reverse=True)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid (Linux SO_PEERCRED), or None where it cannot be read."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


# --------------------------------------------------------------------------- the server

class _Viewer:
    """One connection: its id, what it has sent but not yet parsed, what waits to be sent."""

    def __init__(self, sock: socket.socket, number: int):
        self.sock = sock
        self.number = number
        self.id = f"viewer-{number}"
        """Set from its hello: '<kind>-<number>' (e.g. 'tui-2'); what acknowledgements name."""
        self.kind = "viewer"
        """Its hello's kind ('tui', 'ctl', ...): dashboards ('tui') are what the viewers count counts."""
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.greeted = False
        """It said hello and got its welcome: it receives events."""
        self.closing = False
        """Close once the output buffer is sent."""


class Endpoint:
    """Hosts a run's control socket in a thread; see the module docstring."""

    def __init__(self, run_dir: Path, submit: Callable[[C.Command, str], None], *, status: Callable[[], str] = lambda: "",
                 initial_seq: int = 0, out_limit: int = OUT_LIMIT):
        self.run_dir = Path(run_dir)
        """The run directory (holds the pointer)."""
        self.submit = submit
        """Where commands go: ``Trainer.submit(command, origin)``."""
        self.status = status
        """The run's current status, for the welcome."""
        self.out_limit = out_limit
        """Bytes a viewer may fall behind before it is dropped."""
        self.path: Path | None = None
        """The socket, once started."""
        self.dropped: list[str] = []
        """Ids of viewers dropped for falling behind (for tests and the log)."""
        self._seq = initial_seq  # the last seq distributed to viewers (the server thread's)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._poked = False
        self._greeted = False  # some viewer is attached (the server thread keeps it; publish reads it)
        self._viewers: dict[int, _Viewer] = {}
        self._count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1

    @property
    def viewers(self) -> int:
        """Viewers connected now."""
        return sum(1 for v in list(self._viewers.values()) if v.greeted)

    def start(self) -> Path:
        """Bind the socket (0600 in a 0700 folder), write the pointer, start serving. Returns the socket path."""
        path = socket_path_for(self.run_dir)
        _unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600 (the folder is 0700 anyway)
        try:
            listener.bind(str(path))
        except OSError as e:
            listener.close()
            raise EndpointError(f"{path}: cannot create the control socket ({e.strerror or e})") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        listener.listen(16)
        listener.setblocking(False)
        self._listener, self.path = listener, path
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._write_pointer()
        self._thread = threading.Thread(target=self._serve, name="tui-train-endpoint", daemon=True)
        self._thread.start()
        return path

    def publish(self, seq: int, event: E.Event) -> None:
        """Hand one event to every viewer (called by the training thread; never blocks).

        The server thread is woken at once only when a viewer is attached: a wake-up hands the
        GIL to the server thread right in the training loop, so without viewers (a headless run)
        nothing is woken and the events wait for its next poll (at most :data:`POLL_S`). Holding
        back periodic metrics while viewers are attached was tried and made the TUI's key-to-
        acknowledgement p99 185-201 ms instead of 14-20 ms (bench (e), log_every 1)."""
        self._outbox.put((seq, event))
        if not self._poked and self._greeted:
            self._poked = True
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    def close(self, linger: float = 1.0) -> None:
        """Send what is buffered (up to ``linger`` seconds), close every connection, remove the
        socket and the pointer."""
        if self._thread is None:
            return
        self.publish(self._seq, None)  # the end marker: send what is buffered, then stop
        self._thread.join(linger + 1.0)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(2.0)
        self._thread = None

    def __enter__(self) -> Endpoint:
        if self.path is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the server thread -----------------------------------------------------------------------
    def _write_pointer(self) -> None:
        tmp = self.run_dir / f".{POINTER}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"socket": str(self.path), "pid": os.getpid(), "host": socket.gethostname(),
                                   "started": time.time(), "protocol": P.PROTOCOL_VERSION}) + "\n", encoding="utf-8")
        os.replace(tmp, self.run_dir / POINTER)

    def _serve(self) -> None:
        closing_since: float | None = None
        try:
            while not self._stop.is_set():
                for key, mask in self._sel.select(timeout=POLL_S):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            os.read(self._wake_r, 4096)
                    else:
                        viewer = key.data
                        if mask & selectors.EVENT_READ:
                            self._read(viewer)
                        if mask & selectors.EVENT_WRITE and viewer.number in self._viewers:
                            self._write(viewer)
                if self._distribute():
                    closing_since = closing_since or time.monotonic()
                if closing_since is not None and (not any(v.outbuf for v in self._viewers.values())
                                                  or time.monotonic() - closing_since > 1.0):
                    return
        finally:
            self._shutdown()

    def _distribute(self) -> bool:
        """Encode queued events once and buffer them for every greeted viewer; True on the end marker."""
        self._poked = False
        ended = False
        while True:
            try:
                seq, event = self._outbox.get_nowait()
            except queue.Empty:
                break
            if event is None:
                ended = True
                continue
            self._seq = seq
            targets = [v for v in self._viewers.values() if v.greeted and not v.closing]
            if not targets:
                continue
            try:
                line = P.encode(P.event_message(event, seq))
            except (P.ProtocolError, TypeError, ValueError):
                continue  # an event too large for the wire stays in the run directory
            for v in targets:
                v.outbuf += line
                if len(v.outbuf) > self.out_limit:
                    self.dropped.append(v.id)
                    self._drop(v)
                else:
                    self._want_write(v)
        return ended

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            uid = _peer_uid(sock)
            if uid is not None and uid != os.getuid():
                sock.close()  # another user: not even an error message
                continue
            sock.setblocking(False)
            self._count += 1
            viewer = _Viewer(sock, self._count)
            self._viewers[viewer.number] = viewer
            self._sel.register(sock, selectors.EVENT_READ, viewer)
            if len(self._viewers) > MAX_VIEWERS:
                self._reply(viewer, P.error(f"too many viewers (at most {MAX_VIEWERS})"), close=True)

    def _read(self, viewer: _Viewer) -> None:
        try:
            data = viewer.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(viewer)
            return
        if viewer.closing:
            return
        viewer.inbuf += data
        while True:
            i = viewer.inbuf.find(b"\n")
            if i < 0:
                if len(viewer.inbuf) > P.MAX_CLIENT_LINE:
                    self._reply(viewer, P.error(f"message longer than {P.MAX_CLIENT_LINE} bytes; closing"), close=True)
                return
            line = bytes(viewer.inbuf[:i])
            del viewer.inbuf[: i + 1]
            self._handle(viewer, line)
            if viewer.closing:
                return

    def _handle(self, viewer: _Viewer, line: bytes) -> None:
        try:
            msg = P.decode(line, limit=P.MAX_CLIENT_LINE, allowed_types=P.CLIENT_TYPES)
        except P.ProtocolError as e:  # a line over the limit or of another version closes (e.fatal)
            self._reply(viewer, P.error(f"{e}{'; closing' if e.fatal else ''}", e.request), close=e.fatal)
            return
        kind = msg["type"]
        if kind == "bye":
            self._drop(viewer)
        elif kind == "hello":
            self._greet(viewer, msg)
        elif not viewer.greeted:
            self._reply(viewer, P.error("say hello first"))
        else:
            try:
                command, _ = P.command_from_message(msg)
            except P.ProtocolError as e:
                self._reply(viewer, P.error(str(e), e.request))
                return
            self.submit(command, viewer.id)

    def _greet(self, viewer: _Viewer, msg: dict) -> None:
        if viewer.greeted:
            self._reply(viewer, P.error("already said hello"))
            return
        try:
            kind = P.viewer_from_hello(msg)
        except P.ProtocolError:
            kind = "viewer"
        viewer.id, viewer.kind = f"{kind}-{viewer.number}", kind
        # events still queued have seq > self._seq and will reach it: it reads the rest from the files
        self._reply(viewer, P.welcome(viewer.id, str(self.run_dir), self.status(), self._seq))
        viewer.greeted = True
        self._announce()

    def _announce(self) -> None:
        """Tell every greeted viewer how many dashboards (kind 'tui') are attached: they pace their
        redraws by it. A ``ctl`` command or event stream costs no redraws and is not counted."""
        targets = [v for v in self._viewers.values() if v.greeted and not v.closing]
        self._greeted = bool(targets)
        if not targets:
            return
        line = P.encode(P.viewers(sum(v.kind == "tui" for v in targets)))
        for v in targets:
            v.outbuf += line
            self._want_write(v)

    def _reply(self, viewer: _Viewer, message: dict, close: bool = False) -> None:
        viewer.outbuf += P.encode(message)
        if close:
            viewer.closing = True
        self._want_write(viewer)

    def _want_write(self, viewer: _Viewer) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(viewer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, viewer)

    def _write(self, viewer: _Viewer) -> None:
        try:
            sent = viewer.sock.send(viewer.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(viewer)
            return
        del viewer.outbuf[:sent]
        if not viewer.outbuf:
            if viewer.closing:
                self._drop(viewer)
                return
            with contextlib.suppress(KeyError, ValueError):
                self._sel.modify(viewer.sock, selectors.EVENT_READ, viewer)

    def _drop(self, viewer: _Viewer) -> None:
        if self._viewers.pop(viewer.number, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(viewer.sock)
        with contextlib.suppress(OSError):
            viewer.sock.close()
        if viewer.greeted and not self._stop.is_set():
            self._announce()

    def _shutdown(self) -> None:
        for viewer in list(self._viewers.values()):
            with contextlib.suppress(OSError):
                viewer.sock.setblocking(True)
                viewer.sock.settimeout(0.2)
                if viewer.outbuf:
                    viewer.sock.sendall(viewer.outbuf)
            self._drop(viewer)
        with contextlib.suppress(OSError):
            self._listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self._sel.close()
        if self.path is not None:
            _unlink(self.path)
        ptr = read_pointer(self.run_dir)
        if ptr is not None and ptr.pid == os.getpid():
            _unlink(self.run_dir / POINTER)


# --------------------------------------------------------------------------- the client

def connect_unix(path: Path | str, timeout: float) -> socket.socket:
    """A socket connected to the Unix socket ``path``, with ``timeout`` set. A Unix-socket connect
    in timeout mode fails at once with EAGAIN when the listener's queue of pending connections
    is full (a TCP connect would wait): that is retried until ``timeout``, so a busy endpoint (a
    burst of viewers and scripts) is waited for, not taken for a dead one."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            sock.connect(str(path))
        except BlockingIOError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
            continue
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
        return sock


class Connection:
    """A viewer's connection to a run's endpoint: hello/welcome, then commands out, events in."""

    def __init__(self, socket_path: Path, viewer: str = "script", timeout: float = 5.0):
        try:
            self.sock = connect_unix(socket_path, timeout)
        except OSError as e:
            raise EndpointError(f"{socket_path}: cannot connect ({e.strerror or e})") from None
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._request = 0
        self.closed = False
        """The trainer closed the connection (the run ended, or it dropped us)."""
        self._send(P.hello(viewer))
        msg = self.receive(timeout)
        try:
            welcome = P.welcome_from_message(msg) if msg is not None else None
        except P.ProtocolError:
            welcome = None
        if welcome is None:
            reason = msg.get("reason") if isinstance(msg, dict) else "no answer"
            self.close()
            raise EndpointError(f"{socket_path}: the trainer did not welcome us ({reason})")
        self.viewer_id: str = welcome.viewer_id
        """Our id, as acknowledgements name us in ``origin``."""
        self.run_dir = Path(welcome.run_dir)
        """The run directory."""
        self.status: str = welcome.status
        """The run's status when we attached."""
        self.seq: int = welcome.seq
        """Events up to this seq are in the run directory's files; later ones arrive here."""

    def _send(self, message: dict) -> None:
        data = P.encode(message, limit=P.MAX_CLIENT_LINE)
        with self._lock:
            self.sock.sendall(data)

    def send(self, command: C.Command) -> int:
        """Send a command; returns its request number (errors about it carry it)."""
        with self._lock:
            self._request += 1
            request = self._request
        self._send(P.command_message(command, request))
        return request

    def receive(self, timeout: float | None = None) -> dict | None:
        """The next message (a decoded dict), or None on timeout; sets ``closed`` at the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 1]
                return P.decode(line, limit=P.MAX_SERVER_LINE, allowed_types=P.SERVER_TYPES)
            if self.closed:
                return None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                return None
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return None
                data = b""
            if not data:
                self.closed = True
                continue
            self._buf += data

    def events(self, timeout: float = 0.2) -> Iterator[tuple[E.Event | None, int, dict]]:
        """Yield (event, seq, message) as they arrive; (None, -1, error message) for errors, and
        (None, -1, {}) after each ``timeout`` without anything; ends when the trainer closes."""
        while True:
            msg = self.receive(timeout)
            if msg is None:
                if self.closed:
                    return
                yield None, -1, {}
                continue
            if msg["type"] == "event":
                event, seq = P.event_from_message(msg)
                yield event, seq, msg
            else:
                yield None, -1, msg

    def close(self) -> None:
        """Say bye and close (the run goes on)."""
        with contextlib.suppress(OSError, P.ProtocolError):
            if not self.closed:
                self._send(P.bye())
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed = True
