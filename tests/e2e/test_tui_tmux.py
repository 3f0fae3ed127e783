"""The installed `tui-train` in a real 80x24 terminal (tmux), driven as a person over SSH would:
keys sent with send-keys, the screen read with capture-pane: one session from the launcher to
quit, then the faults a run over SSH meets: a closed terminal (SIGHUP), SIGTERM, and Ctrl+C
(with --on-hangup stop; detaching and attaching are in test_attach_tmux.py).

Each test has a tmux server of its own (``tmux -L <unique>``), killed when it ends. The runs use
the offline preset digits-mlp, which trains on the CPU fast enough that the step counter moves
between two reads of the screen.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.tmux_helpers import (
    Tmux,
    box_lines,
    cmdline,
    descendants,
    is_alive,
    panel_value,
    plot_area,
    plot_inner,
    status,
    step,
    tui_train_exe,
    wait_until,
)
from tui_train.core.train.checkpoint import load

if shutil.which("tmux") is None:
    pytest.skip("tmux is not installed (the CI script installs it)", allow_module_level=True)
EXE = tui_train_exe()
if EXE is None:
    pytest.skip("the tui-train console script is not installed (pip install -e .)", allow_module_level=True)

pytestmark = pytest.mark.slow

EXIT_RE = re.compile(r"EXIT=(\d+)")
"""What the pane's shell prints once tui-train has ended (``cmd; echo EXIT=$?; sleep 60``)."""

STARTUP_TIMEOUT = 45.0
"""Seconds for tui-train to import, start the training process and report RUNNING (2 busy cores)."""

EXIT_BOUND = 60.0
"""Seconds to wait for an exit after a hang-up or SIGTERM: the outcome is asserted and the seconds
printed; the README's 5 s is held by the product's watchdogs, whose tests make the graceful path
hang (tests/functional/test_leaving.py, tests/e2e/test_headless_signals.py; issue 21 item 5)."""


def shell_line(*args: str | Path, exec_: bool = False) -> str:
    """The pane's command: tui-train with ``args``. With ``exec_`` the pane's process IS
    tui-train (it gets the hang-up directly); otherwise the shell prints EXIT=<code> afterwards
    and keeps the pane open to be read."""
    cmd = " ".join(shlex.quote(str(a)) for a in (EXE, *args))
    return "exec " + cmd if exec_ else cmd + "; echo EXIT=$?; sleep 60"


@pytest.fixture
def tmux():
    """A tmux server of this test's own; killed at the end, whatever happened."""
    t = Tmux()
    yield t
    t.close()


def running(min_step: int = 1):
    """Condition: the dashboard's badge says RUNNING and the step counter reached ``min_step``."""
    return lambda s: s if status(s) == "RUNNING" and (step(s) or 0) >= min_step else None


def only_run_dir(runs: Path) -> Path:
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"expected one run directory in {runs}, found {dirs}"
    return dirs[0]


def read_summary(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):  # not written yet (it is replaced atomically, but be patient)
        return None


def wait_summary(run_dir: Path, wanted: str, timeout: float = 10.0) -> dict:
    summary = wait_until(lambda: (s := read_summary(run_dir)) and s.get("status") == wanted and s, timeout)
    assert summary, f"summary.json in {run_dir} never said {wanted!r}: {read_summary(run_dir)}"
    return summary


def events(run_dir: Path, kind: str) -> list[dict]:
    out = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if ev.get("event") == kind:
            out.append(ev)
    return out


def event_log_text(screen: str) -> str:
    """The event log's visible text with all whitespace removed, so that a path wrapped over
    several rows reads as one word again."""
    return re.sub(r"\s+", "", "".join(box_lines(screen, "events")))


def lr_value(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return float("nan")


def tui_process_in(pane_pid: int) -> int:
    """The tui-train process under the pane's shell."""
    found = wait_until(lambda: [p for p in descendants(pane_pid) if "tui-train" in cmdline(p)
                                and "multiprocessing" not in cmdline(p)], 5)
    assert len(found) == 1, f"expected one tui-train process under pane {pane_pid}: {found}"
    return found[0]


def no_process_mentions(text: str) -> bool:
    """pgrep -f finds no process whose command line holds ``text``."""
    if shutil.which("pgrep") is None:
        return True
    res = subprocess.run(["pgrep", "-f", text], capture_output=True, text=True)
    return not [p for p in res.stdout.split() if int(p) != os.getpid()]


# ------------------------------------------------------------------------------------------------
# a person in an 80x24 pane, from the launcher to quit
# ------------------------------------------------------------------------------------------------
def test_launcher_run_pause_lr_save_early_stop_quit_in_80x24(tmux, tmp_path):
    runs = tmp_path / "runs"
    tmux.start(shell_line("run", "--runs-dir", runs), cwd=tmp_path)  # no preset: the launcher

    # The launcher, digits-mlp selected; epochs raised in the form so that the run keeps going.
    screen = tmux.wait_for("Start (Enter)", STARTUP_TIMEOUT, "the launcher")
    assert "Run: digits-mlp" in screen and re.search(r"epochs\s+25\b", screen), screen
    tmux.keys("Tab", "Tab", "Tab", pause=0.3)  # preset list -> lr -> batch size -> epochs
    tmux.replace_input("5000")
    tmux.wait_for(re.compile(r"epochs\s+5000\b"), 5, "epochs 5000 typed into the form")
    tmux.keys("Enter")

    # The dashboard: RUNNING, the launcher's epochs, and the step counter and plots moving.
    first = tmux.wait_for(running(), STARTUP_TIMEOUT, "the dashboard RUNNING")
    assert re.search(r"epoch \d+/5000\b", first), first
    assert all(w in first for w in ("loss", "accuracy", "learning rate", "hyperparams", "events")), first
    tmux.wait_for(lambda s: (step(s) or 0) > step(first) and plot_area(s) != plot_area(first), 10,
                  "the step counter and the plots to move")
    run_dir = only_run_dir(runs)

    # The LR dialog refuses text that is not a number and changes nothing.
    assert panel_value(tmux.screen(), "base lr") == "1.00e-03"
    tmux.keys("l")
    tmux.wait_for("Set the base learning rate", 5, "the LR dialog")
    tmux.replace_input("abc")
    tmux.keys("Enter")
    screen = tmux.wait_for("is not a number", 5, "the LR dialog's error")
    assert "'abc'" in screen and "Set the base learning rate" in screen  # the dialog stays open
    tmux.keys("Escape")
    screen = tmux.wait_for(lambda s: s if "Set the base learning rate" not in s else None, 5, "the dialog to close")
    assert panel_value(screen, "base lr") == "1.00e-03", screen

    # A valid LR: the panel shows the new base, the current LR follows it, the LR plot is marked.
    tmux.keys("l")
    tmux.wait_for("Set the base learning rate", 5, "the LR dialog")
    tmux.replace_input("0.0005")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: panel_value(s, "base lr") == "5.00e-04", 10, "base lr 5.00e-04 in the panel")
    screen = tmux.wait_for(lambda s: s if lr_value(panel_value(s, "lr now")) <= 5.0e-4 else None, 10,
                           "lr now <= 5e-4 (cosine schedule times the new base)")
    screen = tmux.wait_for(lambda s: s if "L" in (plot_inner(s, 2) or [""])[0] else None, 10,
                           "the L marker on the learning-rate plot")
    changes = events(run_dir, "CommandApplied")
    lr_changes = [e for e in changes if e["command"] == "SetLearningRate"]
    assert [(e["old"], e["new"]) for e in lr_changes] == [(0.001, 0.0005)], lr_changes  # 'abc' sent nothing
    assert not [e for e in events(run_dir, "CommandRejected") if e["command"] == "SetLearningRate"]

    # Pause: the badge says PAUSED and the step counter stops.
    tmux.keys("space")
    tmux.wait_for(lambda s: status(s) == "PAUSED", 10, "PAUSED")
    time.sleep(0.5)  # a status change draws the last step's progress line at once (the panel's own rate is 1 s)
    paused_at = step(tmux.screen())
    time.sleep(1.0)  # a negative check needs a window: no step may be taken in it
    assert step(tmux.screen()) == paused_at and status(tmux.screen()) == "PAUSED", tmux.last_screen

    # s while paused: the event log shows the checkpoint's path, and that file exists.
    tmux.keys("s")
    found = tmux.wait_for(lambda s: re.search(r"checkpoint\(manual\):(/\S+?\.pt)", event_log_text(s))
                          or re.search(r"SaveCheckpoint:saved(/\S+?\.pt)", event_log_text(s)),
                          10, "the checkpoint path in the event log")
    ckpt = Path(found.group(1))
    assert ckpt.is_file(), f"the event log names {ckpt}, which does not exist"
    assert ckpt.parent == run_dir / "checkpoints" and "manual" in ckpt.name
    pauses = [e for e in events(run_dir, "CommandApplied") if e["command"] == "Pause"]
    assert len(pauses) == 1 and paused_at <= pauses[0]["step"], (pauses, paused_at)
    assert load(ckpt)["step"] == pauses[0]["step"]  # saved where it paused: no step taken since

    # space again: RUNNING, and the steps move again.
    tmux.keys("space")
    tmux.wait_for(lambda s: status(s) == "RUNNING" and (step(s) or 0) > paused_at, 10, "RUNNING again, steps moving")

    # e, confirmed: EARLY STOPPED on the badge, early_stopped in summary.json, test metrics shown.
    tmux.keys("e")
    tmux.wait_for("Stop early?", 5, "the early-stop question")
    tmux.keys("y")
    screen = tmux.wait_for(lambda s: s if status(s) == "EARLY STOPPED" else None, 30, "EARLY STOPPED")
    summary = wait_summary(run_dir, "early_stopped")
    assert summary["steps"] > paused_at and summary["test"], summary
    tmux.wait_for("test loss", 10, "the final test metrics on the dashboard")

    # q quits (no run active: no question) and the process ends with 0.
    tmux.keys("q")
    exit_code = int(tmux.wait_for(EXIT_RE, 15, "tui-train to exit").group(1))
    assert exit_code == 0, tmux.last_screen
    assert f"early_stopped · {run_dir}" in tmux.last_screen.replace("\n", "")


# ------------------------------------------------------------------------------------------------
# closing the terminal, SIGTERM, Ctrl+C: the README's table of what happens when (its 5 s: see EXIT_BOUND)
# ------------------------------------------------------------------------------------------------
def test_closing_the_terminal_with_on_hangup_stop_saves_and_resume_continues(tmux, tmp_path):
    """--on-hangup stop: a hang-up ends the run as before (the default detaches: test_attach_tmux.py)."""
    runs = tmp_path / "runs"
    tmux.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=1000", "--on-hangup", "stop", exec_=True),
               cwd=tmp_path)
    tmux.wait_for(running(min_step=50), STARTUP_TIMEOUT, "RUNNING with a few steps done")
    pid = tmux.pane_pid()
    assert "tui-train" in cmdline(pid)
    procs = {pid} | descendants(pid)  # the app and its training process
    assert len(procs) >= 2, [cmdline(p) for p in procs]
    run_dir = only_run_dir(runs)

    t0 = time.monotonic()
    tmux.close()  # the server goes: every pane's processes get SIGHUP, as when SSH drops
    summary = wait_summary(run_dir, "interrupted", timeout=EXIT_BOUND)
    saved_after = time.monotonic() - t0
    gone = wait_until(lambda: not [p for p in procs if is_alive(p)], EXIT_BOUND)
    elapsed = time.monotonic() - t0
    assert gone, f"still alive {elapsed:.1f}s after the hang-up: {[cmdline(p) for p in procs if is_alive(p)]}"
    # the README's 5 s is the watchdogs' (test_leaving.py's watchdog tests): here the outcome, and the time seen
    print(f"after the hang-up: interrupted summary in {saved_after:.1f}s, every process gone in {elapsed:.1f}s")
    assert no_process_mentions(str(runs))

    interrupt = sorted((run_dir / "checkpoints").glob("*interrupt*.pt"))
    assert interrupt, sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    stopped_at = summary["steps"]
    assert load(interrupt[-1])["step"] == stopped_at > 0

    res = subprocess.run([EXE, "run", "--resume", str(run_dir), "--headless", "--set", f"train.max_steps={stopped_at + 20}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["steps"] == stopped_at + 20, summary
    assert [p.name for p in runs.iterdir()] == [run_dir.name]  # continued in the same run directory


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory):
    """One TUI run in tmux (--on-hangup stop): Ctrl+C pressed while it trains, then SIGTERM sent to
    tui-train. Returns what was seen, for the tests below (one run, several contracts)."""
    tmp = tmp_path_factory.mktemp("sigterm")
    runs = tmp / "runs"
    pane = Tmux()
    try:
        pane.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=1000", "--on-hangup", "stop"), cwd=tmp)
        before = pane.wait_for(running(min_step=50), STARTUP_TIMEOUT, "RUNNING with a few steps done")
        tui = tui_process_in(pane.pane_pid())
        procs = {tui} | descendants(tui)

        # Ctrl+C is a key in raw mode, not SIGINT: the app asks (see the quit-dialog test below)
        # and training goes on behind the question; nothing is killed.
        pane.keys("C-c")
        after_ctrl_c = pane.wait_for(lambda s: s if status(s) == "RUNNING" and (step(s) or 0) > step(before) + 100 else None,
                                     10, "training to go on after Ctrl+C")
        alive_after_ctrl_c = is_alive(tui) and not EXIT_RE.search(after_ctrl_c)

        t0 = time.monotonic()
        os.kill(tui, signal.SIGTERM)
        exit_code = int(pane.wait_for(EXIT_RE, EXIT_BOUND, "tui-train to exit after SIGTERM", interval=0.05).group(1))
        exited_after = time.monotonic() - t0
        print(f"tui-train exited {exited_after:.1f}s after SIGTERM")
        wait_until(lambda: not [p for p in procs if is_alive(p)], EXIT_BOUND)
        yield {
            "runs": runs, "run_dir": only_run_dir(runs), "before": before, "after_ctrl_c": after_ctrl_c,
            "alive_after_ctrl_c": alive_after_ctrl_c, "exit_code": exit_code, "exited_after": exited_after,
            "left": [cmdline(p) or str(p) for p in procs if is_alive(p)], "final_screen": pane.last_screen,
        }
    finally:
        pane.close()


def test_sigterm_saves_an_interrupt_checkpoint_and_exits(sigterm_run):
    """The outcome of SIGTERM; its 5 s deadline is the watchdog's (test_leaving.py hangs the shutdown to see it fire)."""
    r = sigterm_run
    assert not r["left"], r["left"]
    summary = wait_summary(r["run_dir"], "interrupted", timeout=1)
    interrupt = sorted((r["run_dir"] / "checkpoints").glob("*interrupt*.pt"))
    assert interrupt and load(interrupt[-1])["step"] == summary["steps"] > 0
    assert f"interrupted · {r['run_dir']}" in r["final_screen"].replace("\n", "")


def test_ctrl_c_does_not_kill_a_running_run(sigterm_run):
    """Ctrl+C reaches a Textual app as a key, not SIGINT: the run (and its child) carries on
    while the quit question is open."""
    assert sigterm_run["alive_after_ctrl_c"], sigterm_run["after_ctrl_c"]


def test_sigterm_exit_code_is_130_like_headless(sigterm_run):
    """README: exit codes of a run: 0 completed or early stopped, 1 failed, 130 interrupted."""
    assert sigterm_run["exit_code"] == 130, sigterm_run["final_screen"]


def test_header_shows_the_run_directory_at_80x24(sigterm_run):
    """The header names the run directory even when its full path does not fit in 80 columns
    (pytest's tmp paths do not): at least its last part, which names the run."""
    header = sigterm_run["before"].splitlines()[0]
    assert sigterm_run["run_dir"].name in header, header


def test_ctrl_c_opens_the_quit_dialog_and_stop_saves_and_ends_the_run(tmux, tmp_path):
    """README: Ctrl+C in the TUI is the quit dialog (stop, detach, cancel), not SIGINT; Stop saves
    an interrupt checkpoint and ends the run."""
    runs = tmp_path / "runs"
    tmux.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=1000"), cwd=tmp_path)
    tmux.wait_for(running(min_step=50), STARTUP_TIMEOUT, "RUNNING with a few steps done")
    tmux.keys("C-c")
    screen = tmux.wait_for("Quit while the run is active?", 5, "the quit dialog after Ctrl+C")
    assert "Stop (s)" in screen and "Detach (d)" in screen and "Cancel (c)" in screen, screen
    tmux.keys("s")  # stop: save and end
    exit_code = int(tmux.wait_for(EXIT_RE, 15, "tui-train to exit").group(1))
    run_dir = only_run_dir(runs)
    summary = wait_summary(run_dir, "interrupted", timeout=5)
    interrupt = sorted((run_dir / "checkpoints").glob("*interrupt*.pt"))
    assert interrupt and load(interrupt[-1])["step"] == summary["steps"] > 0, sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert exit_code == 130, tmux.last_screen  # interrupted, as the README's exit codes say
    assert wait_until(lambda: not (run_dir / "endpoint.json").exists(), 5)  # the trainer process ended with the run


# ------------------------------------------------------------------------------------------------
# c: the confusion matrix and the misclassified digits, drawn with half blocks in 80x24
# ------------------------------------------------------------------------------------------------
def test_c_shows_the_confusion_matrix_and_the_mistakes_in_80x24(tmux, tmp_path):
    runs = tmp_path / "runs"
    # one epoch of digits: done in seconds, and still wrong on some validation digits
    tmux.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=1"), cwd=tmp_path)
    tmux.wait_for(lambda s: s if status(s) == "FINISHED" else None, STARTUP_TIMEOUT, "the run FINISHED")
    tmux.keys("c")
    screen = tmux.wait_for("confusion matrix (rows: true class)", 10, "the confusion screen")
    grid = box_lines(screen, "confusion matrix")
    assert "predicted" in grid[0] and "recall" in grid[1], screen
    assert re.match(r"\s*0\s+\d+\s+\d+", grid[2]) and re.search(r"\d+\.\d%$", grid[2].rstrip()), screen  # class 0: counts, recall
    gallery = "\n".join(box_lines(screen, "misclassified validation samples"))
    assert re.search(r"\d → \d", gallery) and "▀" in gallery, screen  # true → predicted over a half-block digit
    assert "validation at step" in screen.splitlines()[0], screen
    tmux.keys("Escape")
    tmux.wait_for(lambda s: s if "hyperparams" in s and status(s) == "FINISHED" else None, 10, "back to the dashboard")
    tmux.keys("q")
    assert int(tmux.wait_for(EXIT_RE, 15, "tui-train to exit").group(1)) == 0, tmux.last_screen
