"""A run as a place, in real terminals: several tmux sessions stand in for several SSH logins.

Start in one, detach, attach from a second and a third, steer from any, hang one up, end the run;
a headless run attached to and steered by `tui-train ctl` while a TUI watches; a hang-up that
detaches while the run trains on.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_tui_tmux import (
    EXE,
    EXIT_BOUND,
    EXIT_RE,
    STARTUP_TIMEOUT,
    events,
    only_run_dir,
    running,
    shell_line,
    wait_summary,
)
from tests.e2e.tmux_helpers import Tmux, is_alive, status, wait_until
from tui_train.core.run.endpoint import probe

pytestmark = pytest.mark.slow


@pytest.fixture
def logins():
    """Tmux servers made on demand (one per 'SSH login'); all killed at the end."""
    made: list[Tmux] = []

    def new() -> Tmux:
        t = Tmux()
        made.append(t)
        return t

    yield new
    for t in made:
        t.close()


def badge(word: str):
    return lambda s: s if status(s) == word else None


def metrics_lines(run_dir: Path) -> int:
    return sum(1 for _ in open(run_dir / "metrics.jsonl", "rb"))


def grows(run_dir: Path, seconds: float = 1.5) -> bool:
    before = metrics_lines(run_dir)
    return wait_until(lambda: metrics_lines(run_dir) > before + 2, seconds + 5)


def ctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "ctl", "--runs-dir", str(tmp_path / "runs"), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)


def test_detach_attach_from_two_more_logins_steer_hang_one_up_and_stop_early(logins, tmp_path):
    runs = tmp_path / "runs"
    first = logins()
    first.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=3000"), cwd=tmp_path)
    first.wait_for(running(min_step=20), STARTUP_TIMEOUT, "RUNNING")
    run_dir = only_run_dir(runs)
    first.keys("d")  # detach: the viewer ends, the run goes on
    first.wait_for(EXIT_RE, 10, "the TUI to exit after d")
    screen = first.last_screen
    assert f"attach again: tui-train attach {run_dir}" in screen.replace("\n", "") and "EXIT=0" in screen
    assert probe(run_dir)[0] is not None and grows(run_dir), "the run stopped when its viewer detached"

    second = logins()  # another SSH login: the newest live run
    second.start(shell_line("attach", "--runs-dir", runs), cwd=tmp_path)
    second.wait_for(running(), STARTUP_TIMEOUT, "the attached dashboard RUNNING")
    second.keys("space")
    second.wait_for(badge("PAUSED"), 10, "PAUSED after space in the second login")
    pause = events(run_dir, "CommandApplied")[-1]
    assert pause["command"] == "Pause" and pause["origin"].startswith("tui-")

    third = logins()
    third.start(shell_line("attach", run_dir), cwd=tmp_path, width=120, height=40)
    third.wait_for(badge("PAUSED"), STARTUP_TIMEOUT, "the third viewer to show the same pause")
    # the history, read from the run directory: the pause is in its event log too
    third.wait_for(lambda s: s if "Pause: paused" in s else None, 10, "the pause in the third viewer's event log")
    third.keys("l")
    third.wait_for("Set the base learning rate", 5, "the LR dialog")
    third.replace_input("0.005")
    third.keys("Enter")
    second.wait_for(lambda s: s if "5.00e-03" in s else None, 10, "the second viewer to show the third one's LR change")
    lr = [e for e in events(run_dir, "CommandApplied") if e["command"] == "SetLearningRate"][-1]
    assert lr["origin"] != pause["origin"] and lr["new"] == 0.005  # events.jsonl says which viewer sent what

    pid = probe(run_dir)[0].pid
    third.close()  # a hang-up of the third login: its viewer goes, the run does not
    time.sleep(1.0)
    assert is_alive(pid) and probe(run_dir)[0] is not None
    assert status(second.screen()) == "PAUSED"

    second.keys("space")
    second.wait_for(running(), 10, "RUNNING again")
    second.keys("e")
    second.wait_for("Stop early?", 5, "the early-stop question")
    second.keys("y")
    second.wait_for(badge("EARLY STOPPED"), 30, "EARLY STOPPED")
    assert wait_summary(run_dir, "early_stopped", timeout=10)["status"] == "early_stopped"
    assert wait_until(lambda: not is_alive(pid), 10) and probe(run_dir)[0] is None


def test_a_headless_run_attached_paused_and_steered_by_ctl_while_a_tui_watches(logins, tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([EXE, "run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--set", "train.epochs=3000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        assert wait_until(lambda: list(runs.glob("*/endpoint.json")), STARTUP_TIMEOUT)
        run_dir = only_run_dir(runs)
        viewer = logins()
        viewer.start(shell_line("attach", "--runs-dir", runs), cwd=tmp_path)
        viewer.wait_for(running(), STARTUP_TIMEOUT, "RUNNING in the attached TUI")
        viewer.keys("space")
        viewer.wait_for(badge("PAUSED"), 10, "PAUSED")
        r = ctl(tmp_path, "lr", "0.002")
        assert r.returncode == 0 and "lr 0.001 -> 0.002" in r.stdout, r
        viewer.wait_for(lambda s: s if "2.00e-03" in s else None, 10, "the TUI to show ctl's LR change")
        viewer.keys("q")
        viewer.wait_for("Quit while the run is active?", 5, "the quit dialog")
        viewer.keys("s")  # stop: the headless run saves and ends
        assert proc.wait(30) == 130
        assert wait_summary(run_dir, "interrupted", timeout=5)
        origins = {e["origin"][:4] for e in events(run_dir, "CommandApplied")}
        assert origins == {"tui-", "ctl-"}, origins
    finally:
        if proc.poll() is None:
            proc.kill()


def test_closing_the_terminal_detaches_and_the_run_trains_on(logins, tmp_path):
    runs = tmp_path / "runs"
    pane = logins()
    pane.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=3000", exec_=True), cwd=tmp_path)
    pane.wait_for(running(min_step=20), STARTUP_TIMEOUT, "RUNNING")
    run_dir = only_run_dir(runs)
    tui = pane.pane_pid()
    t0 = time.monotonic()
    pane.close()  # the SSH connection drops
    # the README's 5 s is the watchdog's (test_leaving.py hangs Textual's shutdown to see it fire)
    assert wait_until(lambda: not is_alive(tui), EXIT_BOUND), "the viewer outlived its terminal"
    print(f"the viewer exited {time.monotonic() - t0:.1f}s after its terminal closed")
    assert probe(run_dir)[0] is not None and grows(run_dir), "the run stopped with its terminal"
    assert ctl(tmp_path, "interrupt").returncode == 0  # end it from a script
    summary = wait_summary(run_dir, "interrupted", timeout=10)
    assert summary["steps"] > 20
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


def test_the_tui_on_a_two_process_run_pauses_changes_the_lr_and_stops_both_ranks_early(logins, tmp_path):
    runs = tmp_path / "runs"
    login = logins()
    login.start(shell_line("run", "digits-mlp", "--nproc-per-node", "2", "--runs-dir", runs, "--set", "train.epochs=3000",
                           "--set", "train.log_every=5"), cwd=tmp_path, width=120, height=40)
    login.wait_for(running(min_step=10), STARTUP_TIMEOUT * 2, "RUNNING on 2 processes")
    assert "× 2 processes" in login.last_screen
    run_dir = only_run_dir(runs)
    login.keys("space")
    login.wait_for(badge("PAUSED"), 15, "PAUSED on every rank")
    login.keys("l")
    login.wait_for("Set the base learning rate", 5, "the LR dialog")
    login.replace_input("0.004")
    login.keys("Enter")
    login.wait_for(lambda s: s if "4.00e-03" in s else None, 15, "the LR change")
    login.keys("space")
    login.wait_for(running(), 15, "RUNNING again")
    login.keys("e")
    login.wait_for("Stop early?", 5, "the early-stop question")
    login.keys("y")
    login.wait_for(badge("EARLY STOPPED"), 60, "EARLY STOPPED")
    s = wait_summary(run_dir, "early_stopped", timeout=30)
    assert s["world_size"] == 2 and s["ranks_agree"] is True and s["final_lr"] == 0.004
    assert wait_until(lambda: probe(run_dir)[0] is None, 30), "the group did not end"


def test_f_forks_a_paused_run_and_the_parent_stays_paused_and_attachable(logins, tmp_path):
    runs = tmp_path / "runs"
    login = logins()
    login.start(shell_line("run", "digits-mlp", "--runs-dir", runs, "--set", "train.epochs=3000"), cwd=tmp_path, width=120, height=40)
    login.wait_for(running(min_step=20), STARTUP_TIMEOUT, "RUNNING")
    parent = only_run_dir(runs)
    login.keys("space")
    login.wait_for(badge("PAUSED"), 10, "PAUSED")
    login.keys("f")
    login.wait_for("Fork this run at step", 5, "the fork dialog")
    login.replace_input("optim.lr=oops")
    login.keys("Enter")
    login.wait_for(lambda s: s if "optim.lr" in s and "oops" in s and "Fork this run" in s else None, 5, "the refusal in place")
    login.replace_input("optim.lr=0.002")
    login.keys("Enter")
    login.wait_for(running(), STARTUP_TIMEOUT, "the fork RUNNING")
    assert wait_until(lambda: len([p for p in runs.iterdir() if p.is_dir()]) == 2, 10)
    fork = next(p for p in runs.iterdir() if p.is_dir() and p != parent)
    head = (fork / "config.toml").read_text().splitlines()[0]
    assert head.startswith(f"# parent: {parent.resolve()} step "), head
    assert events(fork, "StatusChanged")[0]["reason"].startswith("forked from")
    assert probe(parent)[0] is not None and events(parent, "StatusChanged")[-1]["status"] == "paused"  # left paused, live
    r = ctl(tmp_path, str(parent), "interrupt")
    assert r.returncode == 0, r
    assert wait_summary(parent, "interrupted", timeout=15)
    login.keys("q")
    login.wait_for("Stop", 5, "the quit dialog")
    login.keys("s")
    assert wait_summary(fork, "interrupted", timeout=20)["hyperparameters"]["lr"] == 0.002


def test_tui_train_runs_lists_the_runs_and_opens_a_finished_one_replayed(logins, tmp_path):
    runs = tmp_path / "runs"
    for lr in ("0.001", "0.003"):
        done = subprocess.run([EXE, "run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--set", "train.epochs=2",
                               "--set", f"optim.lr={lr}"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]
    names = sorted(p.name for p in runs.iterdir() if p.is_dir())
    login = logins()
    login.start(shell_line("runs", "--runs-dir", runs), cwd=tmp_path, width=140, height=40)
    login.wait_for(lambda s: s if "3.00e-03" in s and "1.00e-03" in s else None, STARTUP_TIMEOUT, "both runs listed")
    login.keys("Enter")  # the newest (lr 0.003), replayed from its files
    login.wait_for(badge("FINISHED"), 20, "the replayed run's final status")
    screen = login.last_screen
    assert "step 82/82" in screen and names[-1] in screen and "test" in screen
    login.keys("Escape")
    login.wait_for(lambda s: s if "3.00e-03" in s and "1.00e-03" in s else None, 10, "back on the list")
    login.keys("q")
    login.wait_for(EXIT_RE, 10, "the app to exit")
