"""Notifications end to end (issue 25 item 4), with the installed ``tui-train``:

- the dashboard in a terminal we hold (a pty whose bytes we read ourselves: tmux's capture-pane
  shows the screen, never an OSC) writes the run's end as OSC 9 + OSC 777 + the bell, whole,
  between two frames; ``--no-notify-terminal`` writes none;
- inside a real tmux with ``allow-passthrough on`` the outer terminal (our pty) receives them
  unwrapped: what a laptop's terminal receives over SSH;
- a headless run with ``--notify`` reaches a local HTTP endpoint through the real apprise, and a URL
  nobody listens on costs one warning, the run completing; a headless run writes no escape sequence.

No timing is asserted: each wait has a generous bound and fails with what was read.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.tmux_helpers import tui_train_exe
from tests.unit.test_notify import Hook, dead_url

pytestmark = pytest.mark.slow

BOUND = 180.0
"""Seconds a wait may take (a loaded 2-core machine imports torch slowly); never asserted."""

END_OSC9 = re.compile(rb"\x1b\]9;tui-train: digits-mlp completed: all epochs done \xc2\xb7 test accuracy [0-9.]+% "
                      rb"\xc2\xb7 1 epoch, [^\x00-\x1f]*\x07")
END_OSC777 = re.compile(rb"\x1b\]777;notify;tui-train: digits-mlp completed;all epochs done [^\x00-\x1f]*\x07")


def exe() -> str:
    path = tui_train_exe()
    if path is None:
        pytest.skip("the tui-train console script is not installed")
    return path


def terminal_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "TUI_TRAIN_IN_PROCESS",
                                                           "TUI_TRAIN_NOTIFY_TERMINAL", "TUI_TRAIN_NOTIFY")}
    for k in ("KITTY_WINDOW_ID", "TERM_PROGRAM", "LC_TERMINAL", "VTE_VERSION", "WT_SESSION", "WEZTERM_PANE"):
        env.pop(k, None)
    return {**env, "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1", **extra}


def in_a_pty(argv: list[str], env: dict, cwd: Path, ready: Callable[[bytes], bool]) -> tuple[int | None, bytes]:
    """Run ``argv`` with a pty of 120x40 as its terminal, read everything it writes; once ``ready``
    (what was read so far), press q. Returns (exit code, the bytes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True)
    os.close(slave)
    out, pressed, deadline = b"", False, time.monotonic() + BOUND
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the last process holding the terminal has gone
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
            if not pressed and ready(out):
                time.sleep(0.3)
                os.write(master, b"q")
                pressed = True
        assert pressed, f"not ready within {BOUND:.0f} s; the last bytes read: {out[-3000:]!r}"
        return proc.wait(timeout=60), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def ended(runs: Path, settle: float = 2.0) -> Callable[[bytes], bool]:
    """Ready ``settle`` s after the run's summary.json is written: the dashboard has had its end by
    then (q on a run still active would ask stop / detach / cancel)."""
    seen: list[float] = []

    def ready(out: bytes) -> bool:
        if not seen and any(runs.glob("*/summary.json")):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] > settle

    return ready


@pytest.mark.parametrize("off", [False, True], ids=["notify", "no-notify-terminal"])
def test_the_dashboard_notifies_its_terminal_between_frames(tmp_path, off):
    runs = tmp_path / "runs"
    argv = [exe(), "run", "digits-mlp", "--set", "train.epochs=1", "--runs-dir", str(runs)] + (["--no-notify-terminal"] if off else [])
    ready = ended(runs) if off else lambda out: bool(END_OSC777.search(out))
    code, out = in_a_pty(argv, terminal_env(), tmp_path, ready)
    assert code == 0, out[-2000:]
    if off:
        assert b"\x1b]9;" not in out and b"\x1b]777;" not in out
        return
    osc9 = END_OSC9.findall(out)
    assert len(osc9) == 1, out[-3000:]  # whole: no frame's bytes inside it (no ESC before its BEL)
    at = out.index(osc9[0])
    # OSC 9, then OSC 777, then the bell, one write between two frames
    assert END_OSC777.match(out, at + len(osc9[0])), out[at:at + 600]
    assert out[at + len(osc9[0]):].split(b"\x07", 1)[1].startswith(b"\x07")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the CI script installs it)")
def test_through_tmux_with_passthrough_the_outer_terminal_gets_them(tmp_path):
    version = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout  # "tmux 3.3a"
    m = re.search(r"(\d+)\.(\d+)", version)
    if not m or (int(m.group(1)), int(m.group(2))) < (3, 3):
        pytest.skip(f"allow-passthrough needs tmux 3.3 ({version.strip()})")
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g allow-passthrough on\nset -g status off\n")
    socket = f"tt-notify-{os.getpid()}"
    runs = tmp_path / "runs"
    command = shlex.join([exe(), "run", "digits-mlp", "--set", "train.epochs=1", "--runs-dir", str(runs)])
    try:
        code, out = in_a_pty(["tmux", "-L", socket, "-f", str(conf), "new-session", "-x", "120", "-y", "40", command],
                             terminal_env(), tmp_path, lambda out: bool(END_OSC777.search(out)))
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert code == 0, out[-2000:]
    assert len(END_OSC9.findall(out)) == 1 and b"Ptmux;" not in out  # tmux unwrapped them for the terminal outside


def test_a_headless_run_notifies_a_local_endpoint_and_a_dead_one_costs_one_warning(tmp_path):
    pytest.importorskip("apprise")
    hook, dead = Hook(), dead_url()
    try:
        proc = subprocess.run([exe(), "run", "digits-mlp", "--headless", "--set", "train.epochs=1", "--runs-dir", str(tmp_path),
                               "--notify", hook.url, "--notify", dead], capture_output=True, text=True, timeout=BOUND,
                              env={**terminal_env(), "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    finally:
        hook.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [b["title"] for b in hook.bodies] == ["tui-train: digits-mlp completed"], hook.bodies
    assert re.match(r"all epochs done · test accuracy [0-9.]+% · 1 epoch, 41 steps, ", hook.bodies[0]["message"])
    assert hook.bodies[0]["type"] == "success"
    warnings = [ln for ln in proc.stdout.splitlines() if ln.startswith("warning: notify:")]
    assert len(warnings) == 1, proc.stdout
    assert warnings[0].startswith("warning: notify: json://… did not take the 'end' notification (")
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout  # headless: no escape sequence, no bell
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "summary.json").is_file()]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    port = hook.url.split(":")[2].split("/")[0]
    for text in [proc.stdout, proc.stderr] + [p.read_text() for p in run_dir.glob("*.*") if p.suffix in (".json", ".jsonl", ".toml")]:
        assert f"127.0.0.1:{port}" not in text and "/nobody" not in text  # only a URL's scheme is ever shown
