"""tui-train inside a user's own project (issues 20 and 22): a folder with its own ``core``, ``tui``,
``models`` and ``utils`` packages, ``PYTHONPATH=.``, relative paths. Ours live under the one
name ``tui_train``, so neither side shadows the other: the user's model imports the user's
``core``, our workers and child processes import ours, and every promised checkpoint is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.e2e.test_headless_signals import tui_cmd

pytestmark = pytest.mark.slow

PRESET = """\
name = "user-project"

[data]
dataset = "digits"
batch_size = 64

[model]
name = "models/net.py:Net"

[optim]
name = "adam"
lr = 0.003

[train]
epochs = 1
max_steps = 6
log_every = 2
num_threads = 1
"""


def make_project(root: Path) -> Path:
    """A user's project whose packages are named like ours (and like everybody's)."""
    for pkg, body in {
        "core": "MARK = 'user core'\n__version__ = 'not tui-train'\n",
        "tui": "MARK = 'user tui'\n",
        "utils": "",
        "models": "",
    }.items():
        (root / pkg).mkdir()
        (root / pkg / "__init__.py").write_text(body)
    (root / "core" / "layers.py").write_text(
        "import torch.nn as nn\n\n\ndef block(n_in, n_out):\n    return nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU())\n")
    (root / "utils" / "sizes.py").write_text("HIDDEN = 32\n")
    (root / "models" / "net.py").write_text(
        "import torch.nn as nn\n\n"
        "import core\nimport tui\n"
        "from core.layers import block\nfrom utils.sizes import HIDDEN\n\n"
        "assert core.MARK == 'user core' and tui.MARK == 'user tui', 'the user model got our packages'\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Flatten(), block(64, HIDDEN), nn.Linear(HIDDEN, 10))\n\n"
        "    def forward(self, x):\n"
        "        return self.body(x)\n")
    (root / "exp.toml").write_text(PRESET)
    return root


def user_env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": ".", "PYTHONUNBUFFERED": "1"}


def only_run(root: Path) -> Path:
    (run_dir,) = [p for p in (root / "runs").iterdir() if p.is_dir()]
    return run_dir


def check_completed_with_checkpoints(run_dir: Path, out: str) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", (summary, out[-3000:])
    assert not summary.get("not_saved"), summary
    final = run_dir / "checkpoints" / "last.pt"
    assert final.is_file(), sorted(p.name for p in run_dir.rglob("*"))
    payload = torch.load(final, weights_only=True)
    assert any(k.startswith("body.") for k in payload["model"]), list(payload["model"])[:5]


def test_one_process_run_in_a_project_with_its_own_core_and_tui(tmp_path):
    root = make_project(tmp_path)
    r = subprocess.run(tui_cmd() + ["run", "exp.toml", "--headless", "--runs-dir", "runs"], cwd=root, env=user_env(root),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    check_completed_with_checkpoints(only_run(root), r.stdout + r.stderr)


def test_torchrun_run_in_a_project_with_its_own_core_and_tui(tmp_path):
    root = make_project(tmp_path)
    r = subprocess.run(tui_cmd() + ["run", "exp.toml", "--headless", "--runs-dir", "runs", "--nproc-per-node", "2"],
                       cwd=root, env=user_env(root), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    check_completed_with_checkpoints(only_run(root), r.stdout + r.stderr)


def test_a_script_imports_both_its_own_core_and_tui_train(tmp_path):
    root = make_project(tmp_path)
    code = ("import core, tui\nimport tui_train\nfrom tui_train.core.config import load_config\n"
            "from tui_train.tui import cli\n"
            "assert core.MARK == 'user core' and tui.MARK == 'user tui'\n"
            "assert tui_train.__version__ and load_config('digits-mlp').name == 'digits-mlp'\n"
            "print('ok', core.__file__, cli.__name__)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=user_env(root), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok ") and str(root / "core") in r.stdout


def test_nothing_but_tui_train_is_installed_top_level():
    """The wheel's top-level names (pyproject's package list, as setuptools reads it)."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]
    assert {p.split(".")[0] for p in packages} == {"tui_train"}, packages
    assert "core" not in sys.modules and "tui" not in sys.modules, "a test run imported a top-level core/tui"


def test_every_package_folder_is_in_the_wheel():
    """pyproject's explicit package list names every folder with an __init__.py under core/, tui/ and
    tui_train/ (the editable install maps folders and would hide a missing one: `pip install .`
    would then install a package without core/run, core/train...)."""
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    packages = set(tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"tui_train": repo / "tui_train", "tui_train.core": repo / "core", "tui_train.tui": repo / "tui"}
    found = set()
    for name, root in folders.items():
        for init in root.rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                rel = init.parent.relative_to(root).parts
                found.add(".".join((name, *rel)))
    assert found - packages == set(), f"folders missing from pyproject's packages: {sorted(found - packages)}"
