"""Issue 20, defects 5 and 7: user code found from anywhere, one line instead of a traceback.

User code is imported as ``python -m`` would import it from the working directory; a relative
user file is recorded where it resolved, so eval, export and --resume work from any folder; an
oversized model, a torch.export failure and a resume with another preset are one line, exit 2;
a resumed early-stopped run keeps that outcome in its summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_cli import assert_bad_input, invoke
from tui_train.core.config import from_dict, load_config

NET = '''
import torch
from utils.sizes import HIDDEN  # a sibling package of the project, found as python -m finds it


class Net(torch.nn.Module):
    def __init__(self, num_outputs):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(),
                                        torch.nn.Linear(HIDDEN, num_outputs))

    def forward(self, x):
        return self.body(x)
'''

QUICK = ["--set", "train.max_steps=3", "--set", "train.device=\"cpu\"", "--set", "train.num_threads=1"]


def project(root: Path) -> Path:
    """A user's project with packages named like everybody's (core, utils, models) and no PYTHONPATH."""
    for pkg in ("core", "utils", "mypkg", "models"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "utils" / "sizes.py").write_text("HIDDEN = 16\n")
    (root / "mypkg" / "nets.py").write_text(NET)
    (root / "models" / "net.py").write_text(NET)
    (root / "net.py").write_text(NET)
    (root / "lib").mkdir()  # a plain folder, no __init__.py: its file imports the project's utils
    (root / "lib" / "net.py").write_text(NET)
    return root


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def test_a_relative_user_file_is_recorded_where_it_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config("digits-mlp", ['model.name="net.py:Net"', 'data.dataset="sub/ds.py:make"'])
    assert cfg.model.name == f"{tmp_path / 'net.py'}:Net"
    assert cfg.data.dataset == f"{tmp_path / 'sub' / 'ds.py'}:make"
    same = from_dict({"model": {"name": "pkg.mod:Net"}, "data": {"dataset": "digits"}})
    assert same.model.name == "pkg.mod:Net" and same.data.dataset == "digits"  # modules and built-ins as typed


@pytest.mark.parametrize("spec", ["mypkg.nets:Net", "models/net.py:Net", "net.py:Net", "lib/net.py:Net"])
def test_user_code_imports_as_python_m_would_and_eval_export_resume_work_from_elsewhere(tmp_path, monkeypatch, spec):
    """Every checkpoint records where user code was found (the working folder, PYTHONPATH): eval,
    export and resume from another folder find a ``package.module`` spec and the project packages
    a file imports there, as the run did."""
    from tui_train.core import plugins

    monkeypatch.setattr(plugins, "RUN_ROOTS", [])  # this process's, as a new one's
    root = project(tmp_path / "proj")
    monkeypatch.chdir(root)
    clean_path = [p for p in sys.path if p not in ("", ".")]  # as the console script has it: no cwd entry
    monkeypatch.setattr(sys, "path", list(clean_path))  # the working directory stays on it afterwards
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", f'model.name="{spec}"', *QUICK])
    assert r.exit_code == 0, r.output
    run_dir = only_run(tmp_path / "runs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sys.path[:] = clean_path  # as a new process there: nothing of the project imported, nor on sys.path
    for name in [m for m in sys.modules if m.split(".")[0] in ("utils", "mypkg", "models") or m.startswith("_tui_train_user_")]:
        monkeypatch.delitem(sys.modules, name)
    recorded = f'"{root / spec.split(":")[0]}:Net"' if spec.endswith(".py:Net") else f'"{spec}"'  # a file: made absolute
    assert recorded in (run_dir / "config.toml").read_text()
    r = invoke(["eval", str(run_dir), "--json", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = invoke(["export", str(run_dir), "--out", str(tmp_path / "m.pt2")])
    assert r.exit_code == 0, r.output
    r = invoke(["run", "--resume", str(run_dir), "--headless", "--set", "train.max_steps=4"])
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 4


def test_export_from_another_folder_of_a_missing_user_file_is_one_line(tmp_path, monkeypatch):
    root = project(tmp_path / "proj")
    monkeypatch.chdir(root)
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", 'model.name="net.py:Net"', *QUICK])
    assert r.exit_code == 0, r.output
    (root / "net.py").unlink()  # the file moved away: every command says so in one line
    run_dir = only_run(tmp_path / "runs")
    assert_bad_input(invoke(["export", str(run_dir), "--out", str(tmp_path / "m.pt2")]), "net.py", "not found")
    assert_bad_input(invoke(["eval", str(run_dir)]), "net.py", "not found")


def test_an_oversized_model_is_refused_in_one_line_before_any_allocation(tmp_path):
    # 2e10 parameters (80 GB of weights): refused from a count on the meta device, nothing allocated
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                "--set", "model.hidden=[100000, 100000, 100000]"])
    line = assert_bad_input(r, "20,007,700,010 parameters", "80.0 GB", "available")
    assert "hidden [100000, 100000, 100000]" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_model_larger_than_the_memory_available_is_refused(monkeypatch):
    import tui_train.core.train.models as M
    from tui_train.core.config import ConfigError, ModelConfig

    monkeypatch.setattr(M, "available_memory", lambda: 1000)  # 1 KB left
    with pytest.raises(ConfigError, match=r"resnet.*channels \[8, 16\].*parameters need .* more than the 0 MB"):
        M.build_model(ModelConfig(name="resnet", channels=[8, 16]), (1, 8, 8), 10)
    monkeypatch.setattr(M, "available_memory", lambda: 10_000)
    assert M.build_model(ModelConfig(name="mlp", hidden=[4]), (1, 8, 8), 10) is not None  # 310 params: 1,240 bytes fit


def test_a_torch_export_failure_prints_one_line_and_keeps_torchs_report_in_a_file(tmp_path):
    (tmp_path / "branchy.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def __init__(self, num_outputs):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(64, num_outputs)\n    def forward(self, x):\n        x = x.flatten(1)\n"
        "        return self.fc(x) if x.sum() > 0 else -self.fc(x)\n")
    exe = [sys.executable, "-m", "tui_train"]
    r = subprocess.run(exe + ["run", "digits-mlp", "--headless", "--runs-dir", "runs", "--set", 'model.name="branchy.py:Net"', *QUICK],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(exe + ["export", str(only_run(tmp_path / "runs")), "--out", "m.pt2"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and r.stdout == "", (r.stdout[-3000:], r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot trace" in lines[0] and "m.pt2.log" in lines[0], r.stderr[-3000:]
    report = (tmp_path / "m.pt2.log").read_text()
    assert "def forward" in report and "GuardOnDataDependentSymNode" in report  # torch's words kept for whoever asks
    assert not (tmp_path / "m.pt2").exists()


def test_resume_with_another_preset_is_refused_and_the_same_one_is_accepted(tmp_path):
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), *QUICK])
    assert r.exit_code == 0, r.output
    run_dir = only_run(tmp_path / "runs")
    assert_bad_input(invoke(["run", "mnist-mlp", "--resume", str(run_dir), "--headless"]),
                     "'digits-mlp'", "'mnist-mlp' would be ignored", f"--from {run_dir}")
    assert_bad_input(invoke(["run", "mnist-mlp", "--resume", str(run_dir), "--headless", "--nproc-per-node", "2"]),
                     "would be ignored")
    r = invoke(["run", "digits-mlp", "--resume", str(run_dir), "--headless", "--set", "train.max_steps=4"])
    assert r.exit_code == 0, r.output


def test_resuming_an_early_stopped_run_keeps_that_outcome(tmp_path):
    stop = ["--set", "early_stopping.enabled=true", "--set", "early_stopping.patience=1", "--set", "early_stopping.min_delta=5",
            "--set", "train.epochs=3", "--set", "train.device=\"cpu\"", "--set", "train.num_threads=1"]
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), *stop])
    assert r.exit_code == 0, r.output
    run_dir = only_run(tmp_path / "runs")
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["status"] == "early_stopped" and "earlier" not in first
    r = invoke(["run", "--resume", str(run_dir), "--headless", "--set", "early_stopping.enabled=false"])
    assert r.exit_code == 0, r.output
    assert "resuming a run that ended early_stopped" in r.output
    now = json.loads((run_dir / "summary.json").read_text())
    assert now["status"] == "completed" and now["epochs_completed"] == 3
    assert now["earlier"] == [{"status": "early_stopped", "reason": first["reason"], "steps": first["steps"],
                               "epochs_completed": first["epochs_completed"]}]
