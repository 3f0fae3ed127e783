"""The benchmark program still runs end to end (tiny sizes; the figures are not checked here:
performance is measured by `python -m bench`, never asserted in tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MNIST_FILES, shared_data_dir

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_bench_tiny_runs_every_section():
    src = shared_data_dir()
    if not all((src / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"real MNIST not found in {src}")
    only = "abdefgimstuv" + ("chj" if shutil.which("tmux") else "")
    res = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--only", only], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TUI_TRAIN_MNIST_DIR": str(src)})
    assert res.returncode == 0, res.stderr[-3000:]
    tmux_sections = ["## (c)", "## (h)", "## (j)"] if "c" in only else []
    for heading in ["## (a)", "## (b)", "## (d)", "## (e)", "## (f)", "## (g)", "## (i)", "## (m)", "## (s)", "## (t)", "## (u)", "## (v)",
                    *tmux_sections]:
        assert heading in res.stdout, heading
    assert "nan" not in res.stdout.lower().replace("nano", "")
