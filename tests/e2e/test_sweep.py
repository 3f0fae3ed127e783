"""`tui-train sweep` end to end, as a person runs it: the installed command in a subprocess on
digits-mlp, trials as real trainer processes; steered with `tui-train ctl`, stopped with signals,
resumed; Optuna's journal shared by two drivers as two machines would share a folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_headless_signals import tui_cmd
from tui_train.core.sweep import record as R

pytestmark = pytest.mark.slow

FAST = ["--set", "train.num_threads=1", "--set", "data.batch_size=128"]


def sweep(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(tui_cmd() + ["sweep", "digits-mlp", "--runs-dir", str(tmp_path / "runs"), *FAST, *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=timeout)


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(tui_cmd() + ["sweep", "digits-mlp", "--runs-dir", str(tmp_path / "runs"), "--headless", *FAST, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def sweep_dir(tmp_path: Path) -> Path:
    found = sorted((tmp_path / "runs").glob("*-sweep-*"))
    assert len(found) == 1, found
    return found[0]


def wait_for(test, timeout: float = 120.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_trial(tmp_path: Path, epochs: int = 1) -> R.Trial | None:
    try:
        rec = R.load(sweep_dir(tmp_path))
    except (AssertionError, ValueError):
        return None
    return next((t for t in rec.trials if t.status == "running" and t.epoch >= epochs), None)


def trial_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "runs").iterdir() if (p / R.TRIAL_FILE).exists())


def test_a_grid_is_every_combination_ranked_with_each_trial_an_ordinary_run(tmp_path):
    res = sweep(tmp_path, "--grid", "optim.lr=0.001,0.1", "--grid", "model.hidden=[32],[16,16]", "--set", "train.epochs=2",
                "--parallel", "2", "--headless")
    assert res.returncode == 0, res.stdout + res.stderr
    rec = R.load(sweep_dir(tmp_path))
    assert rec.state == "completed" and [t.status for t in rec.trials] == ["completed"] * 4
    assert {(t.params["optim.lr"], t.params["model.hidden"]) for t in rec.trials} == {
        ("0.001", "[32]"), ("0.001", "[16,16]"), ("0.1", "[32]"), ("0.1", "[16,16]")}
    best = rec.best()
    assert best.value == max(t.value for t in rec.trials)
    lines = res.stdout.splitlines()
    assert lines[-1] == f"best: val_accuracy={best.value:.6g} optim.lr={best.params['optim.lr']} " \
                        f"model.hidden={best.params['model.hidden']}"
    assert any(line.startswith(f"{best.number} *") for line in lines)  # the leaderboard marks the best
    for t in rec.trials:  # ordinary runs, marked with their sweep and parameters
        run = Path(t.run_dir)
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        mark = json.loads((run / R.TRIAL_FILE).read_text())
        assert mark["number"] == t.number and mark["params"] == t.params and Path(mark["sweep"]) == sweep_dir(tmp_path).resolve()
        assert "hidden = " + t.params["model.hidden"].replace(",", ", ") in (run / "config.toml").read_text()


def test_random_and_json(tmp_path):
    res = sweep(tmp_path, "--random", "optim.lr=1e-4:1e-1:log", "--random", "optim.name=sgd,adam", "--trials", "3",
                "--set", "train.epochs=1", "--seed", "7", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # nothing but the JSON on stdout
    assert out["state"] == "completed" and len(out["trials"]) == 3 and out["metric"] == "val_accuracy"
    lrs = [t["params"]["optim.lr"] for t in out["trials"]]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) == 3
    assert [t["best"] for t in out["trials"]] == [True, False, False]  # best first
    values = [t["value"] for t in out["trials"]]
    assert values == sorted(values, reverse=True)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, expected in ((["--grid", "optim.lr"], "expected KEY=V1,V2"), (["--random", "optim.lr=1:0"], "LO must be below HI"),
                           (["--grid", "optim.nope=1,2"], "nope"), (["--grid", "optim.lr=1,2", "--prune", "mean"], "--prune"),
                           (["--grid", "optim.lr=0.1,-1"], "optim.lr")):
        res = sweep(tmp_path, *args, "--headless")
        assert res.returncode == 2 and "Traceback" not in res.stderr, (args, res.stderr)
        assert expected in res.stderr and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)


def test_median_pruning_stops_a_trial_that_cannot_keep_up(tmp_path):
    res = sweep(tmp_path, "--grid", "optim.lr=0.05,0.04,0.000001", "--set", "train.epochs=100", "--prune", "median", "--headless")
    assert res.returncode == 0, res.stdout + res.stderr
    rec = R.load(sweep_dir(tmp_path))
    slow = rec.trials[2]
    assert slow.status == "pruned" and "worse than the median" in slow.reason and slow.epoch < 100, slow
    assert [t.status for t in rec.trials[:2]] == ["completed", "completed"]
    assert "trial 2 pruned" in res.stdout


def test_sigterm_then_resume_loses_and_repeats_nothing_and_a_trial_takes_ctl(tmp_path):
    # long enough trials that a pause sent after the first epoch finds the trial running on a loaded machine
    proc = start(tmp_path, "--grid", "optim.lr=0.01,0.02", "--set", "train.epochs=150")
    try:
        trial = wait_for(lambda: running_trial(tmp_path), what="trial 0's first epoch")
        paused = subprocess.run(tui_cmd() + ["ctl", trial.run_dir, "pause"], capture_output=True, text=True, timeout=60)
        assert paused.returncode == 0 and "Pause" in paused.stdout, paused.stdout + paused.stderr
        # paused, the trial cannot finish before the signal, however slow the machine: the sweep's
        # Interrupt ends its pause and the run, saved
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    rec = R.load(sweep_dir(tmp_path))
    assert rec.state == "interrupted" and rec.trials[trial.number].status == "interrupted"
    first = Path(rec.trials[trial.number].run_dir)
    assert json.loads((first / "summary.json").read_text())["status"] == "interrupted"
    res = subprocess.run(tui_cmd() + ["sweep", "--resume", str(sweep_dir(tmp_path)), "--headless"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    rec = R.load(sweep_dir(tmp_path))
    assert rec.state == "completed" and [t.status for t in rec.trials] == ["completed"] * 2
    assert Path(rec.trials[trial.number].run_dir) == first and f"trial {trial.number} resumed" in res.stdout  # not started again
    summary = json.loads((first / "summary.json").read_text())
    assert summary["epochs_completed"] == 150 and summary["earlier"][0]["status"] == "interrupted"
    assert len(trial_dirs(tmp_path)) == 2


def test_a_killed_driver_leaves_its_trials_training_and_resume_adopts_them(tmp_path):
    proc = start(tmp_path, "--grid", "optim.lr=0.01,0.02", "--set", "train.epochs=150")  # seen mid-run however loaded
    try:
        trial = wait_for(lambda: running_trial(tmp_path), what="trial 0's first epoch")
        proc.kill()  # kill -9: no chance to stop anything
        proc.wait(30)
        res = subprocess.run(tui_cmd() + ["sweep", "--resume", str(sweep_dir(tmp_path)), "--headless"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    finally:
        proc.kill()
    assert res.returncode == 0, res.stdout + res.stderr
    rec = R.load(sweep_dir(tmp_path))
    seen = f"{[(t.number, t.status, t.epoch, len(t.values), t.run_dir, t.reason) for t in rec.trials]}\n{res.stdout}"
    assert [t.status for t in rec.trials] == ["completed", "completed"], seen
    adopted = rec.trials[trial.number]
    assert adopted.run_dir == trial.run_dir and len(trial_dirs(tmp_path)) == 2, (trial.number, trial.run_dir, seen)
    assert adopted.epoch == 150 and len(adopted.values) == 150, seen  # every epoch's value, read again


def test_optuna_and_a_second_machine_joining_through_a_journal_file(tmp_path):
    pytest.importorskip("optuna")
    journal = tmp_path / "shared" / "study.journal"
    journal.parent.mkdir()
    leader = start(tmp_path, "--optuna", "--random", "optim.lr=1e-3:0.2:log", "--trials", "4", "--set", "train.epochs=6",
                   "--storage", str(journal), "--prune", "median")
    try:
        wait_for(lambda: running_trial(tmp_path, 0), what="the leader's first trial")
        worker = subprocess.run(tui_cmd() + ["sweep", "--join", str(sweep_dir(tmp_path)), "--runs-dir", str(tmp_path / "w"),
                                             "--headless"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        out, _ = leader.communicate(timeout=300)
    finally:
        leader.kill()
    assert leader.returncode == 0 and worker.returncode == 0, out + worker.stdout + worker.stderr
    import optuna

    study = optuna.load_study(study_name=sweep_dir(tmp_path).name,
                              storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))))
    assert len(study.trials) == 4 and all(t.state.is_finished() for t in study.trials)
    mine = R.load(sweep_dir(tmp_path)).trials
    theirs = R.load(next((tmp_path / "w").glob("*-sweep-*"))).trials
    assert len(mine) + len(theirs) == 4 and theirs, (len(mine), len(theirs))  # the worker ran trials of the same study
    assert {t.optuna for t in mine} | {t.optuna for t in theirs} == {0, 1, 2, 3}
