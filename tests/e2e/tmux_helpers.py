"""Drive a program in a real terminal through tmux, as a person over SSH would, and read the screen.

Each ``Tmux`` has a server of its own (``tmux -L <unique socket> -f /dev/null``), so a test never
touches the user's tmux server or config; ``close()`` kills that server. Reads poll
``capture-pane`` against a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

STATUS_WORDS = ("EARLY STOPPED", "NOT SAVED", "RUNNING", "PAUSED", "STOPPING", "FINISHED", "STOPPED", "FAILED",
                "INTERRUPTED", "STARTING", "READY")
"""Badge texts (tui.format.STATUS_LABELS), longest first so 'EARLY STOPPED' wins over 'STOPPED'."""

KEY_PAUSE = 0.15
"""Seconds after each key: lets the app handle it before the next one (a person's pace)."""


def tui_train_exe() -> str | None:
    """The installed console script: on PATH, else next to this interpreter (the venv's bin)."""
    exe = shutil.which("tui-train") or str(Path(sys.executable).parent / "tui-train")
    return exe if Path(exe).exists() else None


def pane_env() -> dict[str, str]:
    """Environment for the tmux server (the pane inherits it): the default engine path (a child
    process, not TUI_TRAIN_IN_PROCESS), no outer tmux, unbuffered Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "TUI_TRAIN_IN_PROCESS")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TERM", "xterm-256color")  # the tmux client needs one; the pane gets tmux's own
    return env


class Tmux:
    """One tmux server with one session, ``e2e``, of a given size."""

    def __init__(self, name: str = "tui-train-e2e") -> None:
        self.socket = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        """Unique server socket name (``tmux -L``)."""
        self.target = "e2e"
        """Session name."""
        self.env = pane_env()
        """Environment of the server and thus of the pane."""
        self.last_screen = ""
        """The most recent capture (shown when a wait times out)."""
        self.socket_path: Path | None = None
        """The server's socket file, once started (removed by close(): tmux leaves it behind)."""

    # -- tmux ------------------------------------------------------------------------------------
    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run one tmux command against this server."""
        res = subprocess.run(["tmux", "-L", self.socket, "-f", os.devnull, *args], capture_output=True, text=True,
                             env=self.env, timeout=15)
        if check and res.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def start(self, command: str, cwd: Path, width: int = 80, height: int = 24) -> None:
        """A detached session running ``command`` (through the shell) in a width x height pane."""
        self.tmux("new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), "-c", str(cwd), command)
        path = self.tmux("display", "-p", "-t", self.target, "#{socket_path}", check=False).stdout.strip()
        self.socket_path = Path(path) if path else None

    def alive(self) -> bool:
        """The server still has the session."""
        return self.tmux("has-session", "-t", self.target, check=False).returncode == 0

    def pane_pid(self) -> int:
        """PID of the pane's process (the shell, or the program itself when started with exec)."""
        return int(self.tmux("display", "-p", "-t", self.target, "#{pane_pid}").stdout.strip())

    def close(self) -> None:
        """Kill this server (every pane's processes get SIGHUP, like a dropped connection)."""
        self.tmux("kill-server", check=False)
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)

    # -- keys ------------------------------------------------------------------------------------
    def keys(self, *keys: str, pause: float = KEY_PAUSE) -> None:
        """Send tmux key names (Enter, Tab, Escape, C-c, space, l ...), each followed by a pause."""
        for key in keys:
            self.tmux("send-keys", "-t", self.target, key)
            time.sleep(pause)

    def type(self, text: str, pause: float = KEY_PAUSE) -> None:
        """Type literal text."""
        self.tmux("send-keys", "-t", self.target, "-l", text)
        time.sleep(pause)

    def replace_input(self, text: str, tries: int = 3) -> None:
        """Replace the focused Textual Input's text (End, Ctrl+U deletes left of the cursor, type),
        and wait until the screen shows it: keys sent while a dialog is still being mounted on a
        busy machine can reach the screen below it (seen in CI), so the typing is tried again."""
        for _ in range(tries):
            self.keys("End", "C-u")
            self.type(text)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                if text in self.screen():
                    return
                time.sleep(0.05)
        raise AssertionError(f"typed {text!r} {tries} times and the screen never showed it:\n{self.last_screen}")

    # -- screen ----------------------------------------------------------------------------------
    def screen(self) -> str:
        """The pane's visible text now."""
        res = self.tmux("capture-pane", "-p", "-t", self.target, check=False)
        if res.returncode == 0:
            self.last_screen = res.stdout
        return self.last_screen

    def wait_for(self, condition: str | re.Pattern | Callable[[str], object], timeout: float = 20.0,
                 what: str = "", interval: float = 0.1):
        """Poll the screen until ``condition`` holds (a substring, a regex, or a callable on the
        text returning something truthy); return the match (screen text, re.Match or value)."""
        if isinstance(condition, str):
            check = lambda s: s if condition in s else None  # noqa: E731
        elif isinstance(condition, re.Pattern):
            check = condition.search
        else:
            check = condition
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            found = check(screen)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition!r}; "
                                     f"the screen was:\n{screen}")
            time.sleep(interval)


# -- reading the tui-train dashboard ---------------------------------------------------------------
def status(screen: str) -> str | None:
    """The status badge: the last words of the header (first line)."""
    first = screen.splitlines()[0] if screen else ""
    for word in STATUS_WORDS:
        if first.rstrip().endswith(word):
            return word
    return None


STEP_RE = re.compile(r"step (\d+)/(\d+)")


def step(screen: str) -> int | None:
    """The run progress line's step counter."""
    m = STEP_RE.search(screen)
    return int(m.group(1)) if m else None


def panel_value(screen: str, label: str) -> str | None:
    """A row of the hyperparameter panel, e.g. 'base lr' -> '1.00e-03'."""
    m = re.search(rf"│ {re.escape(label)}\s+(\S+)", screen)
    return m.group(1) if m else None


def box_lines(screen: str, title: str) -> list[str]:
    """Inner lines of a bordered box whose top border holds ``─ title``."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        col = line.find(f"╭─ {title}")
        if col < 0:
            continue
        inner = []
        for row in lines[i + 1:]:
            if len(row) <= col or row[col] == "╰":
                break
            inner.append(row[col + 1:].rstrip().removesuffix("│"))
        return inner
    return []


def plot_area(screen: str) -> str:
    """The plots' rows (between the progress lines and the lower panels)."""
    lines = screen.splitlines()
    end = next((i for i, line in enumerate(lines) if "hyperparams" in line), len(lines))
    return "\n".join(lines[3:end])


def plot_inner(screen: str, index: int) -> list[str]:
    """Rows inside the index-th plot frame (0 loss, 1 accuracy, 2 learning rate), top row first.

    The frame's columns come from its top border (``┌`` ... ``┐``): vertical marker lines are
    drawn with ``│`` too, so the rows cannot be split on the frame character."""
    rows = plot_area(screen).splitlines()
    for i, row in enumerate(rows):
        lefts = [j for j, ch in enumerate(row) if ch == "┌"]
        rights = [j for j, ch in enumerate(row) if ch == "┐"]
        if len(lefts) > index and len(rights) > index:
            lo, hi = lefts[index], rights[index]
            inner = []
            for below in rows[i + 1:]:
                if len(below) > lo and below[lo] == "└":
                    break
                inner.append(below[lo + 1:hi])
            return inner
    return []


def descendants(pid: int) -> set[int]:
    """PIDs of every living process below ``pid`` (from /proc, no psutil)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def is_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """A process's command line, spaces between the arguments ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05):
    """Poll ``condition`` until truthy or the deadline; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
