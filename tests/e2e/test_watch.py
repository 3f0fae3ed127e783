"""`tui-train watch -- python train.py` (issue 23 item 2): the installed command runs a user's script
that calls ``tui_train.init`` itself, and shows its run: progress lines without a terminal, the
dashboard in one (tmux), where d detaches and the script trains on to its end.

The script is a 2-layer MLP on random tensors, written into the test's folder; it prints a line an
epoch, which the run copies into output.log and its event log. Nothing here asserts a duration.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.tmux_helpers import Tmux, is_alive, status, tui_train_exe, wait_until

pytestmark = pytest.mark.slow

EXE = tui_train_exe()
if EXE is None:
    pytest.skip("the tui-train console script is not installed (pip install -e .)", allow_module_level=True)

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from torch import nn
    import tui_train

    epochs = int(sys.argv[1])
    until = Path(sys.argv[2]) if len(sys.argv) > 2 else None  # with it: train until this file exists
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(256, 8), torch.randint(0, 2, (256,))
    print("loaded 256 samples")
    run = tui_train.init(name="watched", config={"lr": 0.1, "epochs": epochs, "batch_size": 32}, model=model,
                         optimizer=opt, runs_dir="runs", system_interval=0)
    for epoch in range(epochs):
        for i in range(0, 256, 32):
            out = model(x[i:i + 32])
            loss = nn.functional.cross_entropy(out, y[i:i + 32])
            opt.zero_grad(); loss.backward(); opt.step()
            run.log({"loss": loss.item(), "acc": (out.argmax(1) == y[i:i + 32]).float().mean().item()})
            if until is not None:
                time.sleep(0.01)
        run.log({"epoch": epoch, "val_loss": loss.item()})
        print(f"epoch {epoch} loss {loss.item():.4f} [/not markup]")
        if until is not None and until.exists():
            print("released")
            break
    run.finish()
    print("after finish: test accuracy 0.5")
""")


def write_script(tmp_path: Path, body: str = SCRIPT) -> None:
    (tmp_path / "train.py").write_text(body)


def watch(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed command, stdout a pipe (so: headless), the script run by this interpreter."""
    return subprocess.run([EXE, "watch", *args], capture_output=True, text=True, cwd=tmp_path, timeout=timeout)


def only_run_dir(tmp_path: Path) -> Path:
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    return run_dir


def trainer_pids(tmp_path: Path) -> list[int]:
    """The processes of the live runs under the test's folder (their endpoint pointers)."""
    pids = []
    for pointer in tmp_path.glob("runs/*/endpoint.json"):
        try:
            pids.append(int(json.loads(pointer.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            pass  # removed, or being replaced, right now
    return pids


def watch_folders(runtime: Path) -> list[Path]:
    """The watcher's private folders left in the test's $XDG_RUNTIME_DIR (conftest.short_runtime)."""
    return list(runtime.glob("tui-train-watch-*"))


def test_headless_watch_streams_the_run_and_its_output_and_exits_with_the_script(tmp_path, short_runtime):
    write_script(tmp_path)
    r = watch(tmp_path, "--", sys.executable, "train.py", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = only_run_dir(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 24 and summary["loop"] == "user"
    printed = ["loaded 256 samples"] + [f"epoch {i} loss" for i in range(3)]
    output_log = (run_dir / "output.log").read_text()
    for line in printed:  # everything the script printed while its run was on, before init too
        assert line in output_log, output_log
        assert f"output: {line}" in r.stdout, r.stdout
    assert "[/not markup]" in r.stdout  # brackets reach the terminal as they are
    assert "finished: completed" in r.stdout and "epoch 3/3" in r.stdout
    # what it printed after run.finish() is in no event: the watcher shows it, once; output.log keeps it
    assert r.stdout.count("output: after finish: test accuracy 0.5") == 1
    assert "after finish: test accuracy 0.5" in (run_dir / "output.log").read_text()
    assert "failed" not in r.stdout, r.stdout
    assert watch_folders(short_runtime) == []


@pytest.mark.parametrize("body, code, last", [
    ("import sys\nprint('reading data.csv')\nsys.stderr.write('cannot read data.csv\\n')\nsys.exit(5)\n", 5,
     "cannot read data.csv"),
    ("print('building the model')\nraise RuntimeError('no GPU [/x]')\n", 1, "RuntimeError: no GPU [/x]"),
])
def test_a_script_that_ends_before_init_shows_its_last_output_and_its_exit_code(tmp_path, short_runtime, body, code, last):
    write_script(tmp_path, body)
    r = watch(tmp_path, "--", sys.executable, "train.py")
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-2].strip() == last, r.stderr  # the script's last line, then ours
    assert lines[-1] == f"tui-train: the script exited with code {code} before tui_train.init started its run"
    assert "cli.py" not in r.stderr  # the script's own traceback at most, never one of ours
    assert not (tmp_path / "runs").exists() and watch_folders(short_runtime) == []


def test_no_command_or_one_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    for args, says in ((["--"], "give the command that runs your script after --"),
                       (["--", str(tmp_path / "no-such-program")], "cannot start"),
                       (["--on-hangup", "explode", "--", "true"], "--on-hangup 'explode'")):
        r = watch(tmp_path, *args, timeout=60)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the CI script installs it)")
def test_the_dashboard_shows_the_run_d_detaches_and_the_script_trains_on_to_its_end(tmp_path, short_runtime):
    write_script(tmp_path)
    release = tmp_path / "release"
    term = Tmux()
    try:
        cmd = " ".join(shlex.quote(a) for a in (EXE, "watch", "--", sys.executable, "train.py", "1000", str(release)))
        term.start(cmd + "; echo EXIT=$?; sleep 60", cwd=tmp_path, width=100, height=30)
        term.wait_for(lambda s: s if status(s) == "RUNNING" and "watched" in s else None, 60, "the dashboard RUNNING")
        run_dir = only_run_dir(tmp_path)
        pid = json.loads((run_dir / "endpoint.json").read_text())["pid"]
        term.keys("d")
        term.wait_for("EXIT=", 20, "the watcher to exit after d")
        screen = term.last_screen.replace("\n", "")
        assert "EXIT=0" in screen and "the script runs on" in screen, term.last_screen
        assert is_alive(pid) and not (run_dir / "summary.json").exists()  # detaching did not stop it
        assert watch_folders(short_runtime) == []
        release.touch()  # the script trains on to its own end, its output still recorded
        assert wait_until(lambda: (run_dir / "summary.json").exists() and not is_alive(pid), 60)
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        assert "released" in (run_dir / "output.log").read_text()
    finally:  # whatever failed: the script ends its run on its own (not killed by conftest's fixture)
        release.touch()
        term.close()
        wait_until(lambda: not any(is_alive(pid) for pid in trainer_pids(tmp_path)), 30)
