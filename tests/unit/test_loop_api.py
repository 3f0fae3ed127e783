"""The any-loop API (tui_train.init / log / finish, issue 23): a user's own loop steered as a built-in run.

Commands are submitted the way the endpoint does (``run.place.submit``, from another thread or
between two ``log`` calls) and apply at the next ``run.log``; the process tests run a real script
and steer it through ``tui-train ctl`` and signals, as a person would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

import tui_train
from tui_train.core import commands as C
from tui_train.core.rundir.runs import read_row


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def _acks(run_dir: Path) -> list[tuple[str, str]]:
    return [(e["event"], e["command"]) for e in _events(run_dir) if e["event"] in ("CommandApplied", "CommandRejected")]


def _model_and_opt(lr=0.1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _step(model, opt, run, i):
    x = torch.randn(16, 4)
    y = (x[:, 0] > 0).long()
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    run.log({"loss": loss.item(), "acc": (out.argmax(1) == y).float().mean().item()})


def test_a_loop_records_a_complete_run(tmp_path):
    model, opt = _model_and_opt()
    cfg = {"lr": 0.1, "epochs": 2, "batch_size": 16, "note": 'a "quoted" [/path] \x1b[31m', "net": {"hidden": [8]}}
    with tui_train.init(name="mine", config=cfg, model=model, optimizer=opt, runs_dir=tmp_path, log_every=5,
                        system_interval=0) as run:
        for epoch in range(2):
            for i in range(12):
                _step(model, opt, run, i)
            run.log({"val_loss": 0.5 - epoch * 0.1, "val_accuracy": 0.7, "epoch": epoch})
    d = run.run_dir
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 24 and summary["epochs_completed"] == 2
    assert summary["best"] == {"metric": "val_loss", "value": 0.4, "epoch": 1} and summary["not_saved"] == []
    assert tomllib.loads((d / "config.toml").read_text()) == cfg  # brackets, quotes and escapes kept exactly
    metrics = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if m["event"] == "StepMetrics"]
    assert [m["step"] for m in steps] == [5, 10, 12, 17, 22, 24]  # every 5 steps, and at each epoch's end
    epochs = [m for m in metrics if m["event"] == "EpochMetrics"]
    assert [(e["epoch"], e["val"]["loss"], e["is_best"]) for e in epochs] == [(0, 0.5, True), (1, 0.4, True)]
    assert 0 < epochs[0]["train"]["loss"] < 10 and 0 <= epochs[0]["train"]["accuracy"] <= 1
    payload = torch.load(d / "checkpoints" / "last.pt", weights_only=False)
    assert payload["format"] == "tui_train.loop/1" and payload["training"]["step"] == 24
    assert all(torch.equal(payload["model"][k], v) for k, v in model.state_dict().items())
    row = read_row(d)
    assert row.status == "completed" and row.preset == "mine"


def test_commands_apply_at_the_log_boundary(tmp_path):
    model, opt = _model_and_opt(lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)
    run = tui_train.init(name="steer", model=model, optimizer=opt, scheduler=sched, runs_dir=tmp_path, system_interval=0)
    _step(model, opt, run, 0)
    for cmd in (C.SetLearningRate(0.02), C.SetHyperparameter("momentum", 0.5), C.SetHyperparameter("grad_clip", 1.0),
                C.SaveCheckpoint(), C.Validate(), C.Rollback(0.5), C.FindLearningRate()):
        run.place.submit(cmd)
    _step(model, opt, run, 1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02) and sched.base_lrs == [pytest.approx(0.02)]
    assert opt.param_groups[0]["momentum"] == 0.5
    assert run.should_validate
    run.log({"val_loss": 0.3})
    assert not run.should_validate  # a validation logged answers the request
    assert _acks(run.run_dir) == [("CommandApplied", "SetLearningRate"), ("CommandApplied", "SetHyperparameter"),
                                  ("CommandRejected", "SetHyperparameter"), ("CommandApplied", "SaveCheckpoint"),
                                  ("CommandApplied", "Validate"), ("CommandRejected", "Rollback"),
                                  ("CommandRejected", "FindLearningRate")]
    rejected = [e["reason"] for e in _events(run.run_dir) if e["event"] == "CommandRejected"]
    assert "grad_clip is your loop's own" in rejected[0] and "last good weights" in rejected[1]
    assert list((run.run_dir / "checkpoints").glob("step-*-manual.pt"))
    history = run.place.state.history
    assert [h["command"] for h in history] == ["SetLearningRate", "SetHyperparameter", "SaveCheckpoint", "Validate"]
    run.place.submit(C.Stop())
    _step(model, opt, run, 2)
    assert run.should_stop
    summary = run.finish()
    assert summary["status"] == "early_stopped" and summary["interventions"] == 5
    assert (run.run_dir / "checkpoints" / "last.pt").exists() and list((run.run_dir / "checkpoints").glob("*-early_stop.pt"))


def test_a_pause_blocks_inside_log_until_resumed(tmp_path):
    model, opt = _model_and_opt()
    run = tui_train.init(name="pause", model=model, optimizer=opt, runs_dir=tmp_path, system_interval=0)
    run.place.submit(C.Pause())
    seen = []

    def resume_later():
        deadline = time.monotonic() + 10
        while run.status != "paused" and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append((run.status, run.step))
        run.place.submit(C.Resume())

    t = threading.Thread(target=resume_later)
    t.start()
    _step(model, opt, run, 0)  # blocks here until the Resume
    t.join()
    assert seen == [("paused", 1)] and run.status == "running"
    _step(model, opt, run, 1)
    assert run.finish()["status"] == "completed"


def test_without_an_optimizer_live_values_are_refused_with_the_reason(tmp_path):
    run = tui_train.init(name="bare", runs_dir=tmp_path, system_interval=0)
    run.log({"loss": 1.0})
    run.place.submit(C.SetLearningRate(0.1))
    run.place.submit(C.SaveCheckpoint())
    run.log({"loss": 0.9})
    reasons = [e["reason"] for e in _events(run.run_dir) if e["event"] == "CommandRejected"]
    assert "no optimizer was given" in reasons[0] and "no model was given" in reasons[1]
    assert run.finish()["status"] == "completed"


def test_an_exception_in_the_loop_ends_the_run_failed_and_propagates(tmp_path):
    model, opt = _model_and_opt()
    with pytest.raises(ZeroDivisionError), tui_train.init(name="boom", model=model, optimizer=opt, runs_dir=tmp_path,
                                                          system_interval=0) as run:
        _step(model, opt, run, 0)
        raise ZeroDivisionError("at [/src/x.py:3] \x1b[31mred")
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"].startswith("ZeroDivisionError: at [/src/x.py:3]")
    assert "ZeroDivisionError" in (run.run_dir / "traceback.txt").read_text()
    assert list((run.run_dir / "checkpoints").glob("*-error.pt"))


def test_resume_loads_the_newest_checkpoint_and_goes_on_in_the_same_directory(tmp_path):
    model, opt = _model_and_opt()
    run = tui_train.init(name="long", config={"epochs": 4}, model=model, optimizer=opt, runs_dir=tmp_path, system_interval=0)
    run.state["seen"] = 7
    for i in range(5):
        _step(model, opt, run, i)
    run.place.submit(C.Interrupt())
    _step(model, opt, run, 5)
    assert run.should_stop
    assert run.finish()["status"] == "interrupted"
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model2, opt2 = _model_and_opt(lr=0.5)
    again = tui_train.init(name="long", model=model2, optimizer=opt2, resume=run.run_dir, system_interval=0)
    assert again.run_dir == run.run_dir and again.step == 6 and again.state == {"seen": 7}
    assert all(torch.equal(model2.state_dict()[k], v) for k, v in weights.items())
    assert opt2.param_groups[0]["lr"] == 0.1  # the optimizer's state came back too
    _step(model2, opt2, again, 6)
    summary = again.finish()
    assert summary["status"] == "completed" and summary["steps"] == 7
    assert summary["earlier"][0]["status"] == "interrupted"


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="task must be"):
        tui_train.init(task="segmentation", runs_dir=tmp_path)
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot read .*x\.pt"):
        tui_train.init(resume=tmp_path / "x.pt", runs_dir=tmp_path)
    torch.save({"model": {}}, tmp_path / "y.pt")  # a checkpoint, not of this API (a built-in run's, say)
    with pytest.raises(ValueError, match=r"not a checkpoint of tui_train\.init"):
        tui_train.init(resume=tmp_path / "y.pt", runs_dir=tmp_path)
    run = tui_train.init(runs_dir=tmp_path, system_interval=0)
    with pytest.raises(TypeError, match="'loss' must be a number"):
        run.log({"loss": "low"})
    run.finish()


SCRIPT = textwrap.dedent("""
    import sys, time, torch, tui_train
    import core, tui  # the user's own packages of these names (issue 23: the example in a user project)
    from torch import nn
    from core.model import Net
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = tui_train.init(name="proc", model=model, optimizer=opt, runs_dir="runs", system_interval=0)
    print("textual" in sys.modules, "plotext" in sys.modules, flush=True)
    print(run.run_dir, flush=True)
    for step in range(100000):
        x = torch.randn(8, 4)
        loss = nn.functional.cross_entropy(model(x), (x[:, 0] > 0).long())
        opt.zero_grad(); loss.backward(); opt.step()
        run.log({"loss": loss.item()})
        open("steps.txt", "w").write(str(run.step))  # the user's own progress file: is the loop held?
        if run.should_stop:
            break
        time.sleep(0.002)
    run.finish()
    print("finished", run.status, core.WHO, tui.WHO, flush=True)
""")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "train.py").write_text(SCRIPT)
    for pkg in ("core", "tui"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text(f"WHO = {'the user' + chr(39) + 's ' + pkg!r}\n")
    (tmp_path / "core" / "model.py").write_text("from torch import nn\n\n\nclass Net(nn.Sequential):\n"
                                                "    def __init__(self):\n        super().__init__(nn.Linear(4, 2))\n")
    proc = subprocess.Popen([sys.executable, "train.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": "."})
    assert proc.stdout.readline().split() == ["False", "False"]  # init imports no UI library
    run_dir = tmp_path / proc.stdout.readline().strip()
    return proc, run_dir


def _ctl(tmp_path: Path, *words: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tui-train")
    return subprocess.run([str(exe), "ctl", *words], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def _steps(tmp_path: Path) -> int:
    for _ in range(50):
        try:
            return int((tmp_path / "steps.txt").read_text())
        except (OSError, ValueError):  # being rewritten
            time.sleep(0.01)
    raise AssertionError("steps.txt unreadable")


def test_a_script_in_a_user_project_is_steered_with_ctl(tmp_path):
    proc, run_dir = _start(tmp_path)
    try:
        assert _ctl(tmp_path, "pause").returncode == 0
        held = _steps(tmp_path)
        time.sleep(0.5)
        assert _steps(tmp_path) == held  # pause holds the loop inside run.log
        lr = _ctl(tmp_path, "lr", "0.02")
        assert lr.returncode == 0 and "lr 0.1 -> 0.02" in lr.stdout
        clip = _ctl(tmp_path, "set", "grad_clip", "1")
        assert clip.returncode == 1 and "your loop's own" in clip.stdout + clip.stderr
        saved = _ctl(tmp_path, "save")
        assert saved.returncode == 0, saved.stdout + saved.stderr
        assert _ctl(tmp_path, "resume").returncode == 0
        deadline = time.monotonic() + 30
        while _steps(tmp_path) == held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _steps(tmp_path) > held  # it trains again
        assert _ctl(tmp_path, "stop").returncode == 0
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "finished early_stopped the user's core the user's tui" in out and proc.returncode == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "early_stopped" and summary["final_lr"] == pytest.approx(0.02)
    manual = next((run_dir / "checkpoints").glob("*-manual.pt"))
    payload = torch.load(manual, weights_only=True)  # safe to load: plain values and tensors
    import importlib.util  # the user's class, from their project's file (a bare `import core` is theirs, not the test's)

    spec = importlib.util.spec_from_file_location("users_core_model", tmp_path / "core" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net()
    net.load_state_dict(payload["model"])
    assert payload["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.02)


def test_a_killed_script_leaves_a_run_listed_unfinished_and_attach_says_stale(tmp_path):
    proc, run_dir = _start(tmp_path)
    proc.kill()  # kill -9: nothing is finished for it
    proc.wait(30)
    exe = str(Path(sys.executable).with_name("tui-train"))
    listed = subprocess.run([exe, "runs", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["status"]) for r in rows] == [(run_dir.name, "unfinished")]
    attach = subprocess.run([exe, "attach", str(run_dir)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert attach.returncode == 2 and "stale" in attach.stderr and "Traceback" not in attach.stderr, attach.stderr


def test_sigterm_saves_and_ends_interrupted_with_130(tmp_path):
    proc, run_dir = _start(tmp_path)
    try:
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["reason"].startswith("SIGTERM")
    assert list((run_dir / "checkpoints").glob("*-interrupt.pt"))


def test_a_loops_own_names_are_series_of_their_own(tmp_path):
    from tui_train.core.rundir.history import read_history
    from tui_train.core.rundir.metrics_export import export_csv

    run = tui_train.init(name="extra", runs_dir=tmp_path, log_every=2, system_interval=0)
    for i in range(4):
        run.log({"loss": 1.0, "grad_norm": float(i), "[/bold]": 5.0})
    run.log({"temperature": 0.7})  # alone: written at the next record
    run.log({"val_loss": 0.5, "val_f1": 0.25, "epoch": 0})
    run.finish()
    scalars = [e for e in read_history(run.run_dir) if e.kind == "Scalars"]  # what a late viewer gets
    assert [(e.step, e.values) for e in scalars] == [(2, {"grad_norm": 0.5, "[/bold]": 5.0}),
                                                    (4, {"grad_norm": 2.5, "[/bold]": 5.0}), (4, {"temperature": 0.7})]
    export_csv(run.run_dir, tmp_path / "m.csv")
    header = (tmp_path / "m.csv").read_text().splitlines()[0].split(",")
    assert {"grad_norm", "[/bold]", "temperature", "val_f1"} <= set(header)
