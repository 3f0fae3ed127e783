"""Shared fixtures: real MNIST files from ../shared/data, linked (never copied or written) into a tmp root."""

from __future__ import annotations

import importlib.abc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest


class _OursOnlyAsTuiTrain(importlib.abc.MetaPathFinder):
    """pytest puts the repository root on sys.path, where our folders core/, tui/ and presets/
    would import a second time under their bare names. Everything of ours is ``tui_train.*``
    (issue 22): a test that imports ``core...`` would test a copy the product never uses."""

    def find_spec(self, name, path=None, target=None):
        if path is None and name in ("core", "tui", "presets"):
            raise ImportError(f"import tui_train.{name}, not {name}: the bare name is the user's (tests/conftest.py)")
        return None


sys.meta_path.insert(0, _OursOnlyAsTuiTrain())

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def shared_data_dir() -> Path:
    """The folder holding MNIST/raw/*.gz: $TUI_TRAIN_MNIST_DIR, else <repo>/../shared/data."""
    env = os.environ.get("TUI_TRAIN_MNIST_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose MNIST/raw/ holds symlinks to the shared .gz files (torchvision extracts
    into the tmp folder, so the shared folder is never written). Skips when the files are absent."""
    src = shared_data_dir() / "MNIST" / "raw"
    if not all((src / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"real MNIST .gz files not found in {src} (set TUI_TRAIN_MNIST_DIR)")
    root = tmp_path_factory.mktemp("mnist-root")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f).symlink_to(src / f)
    return root


@pytest.fixture(autouse=True)
def short_runtime(monkeypatch) -> Path:
    """Each test's own socket folder, and a caller's environment that cannot change the results.

    - ``XDG_RUNTIME_DIR`` is a fresh folder directly under /tmp (about 14 bytes): a test's trainer
      processes never meet the machine's or another test's, and socket paths stay far below the
      ~100-byte limit whatever TMPDIR, the user name or the pid length (pytest's tmp_path reached
      96 bytes here; issue 21). Child processes and tmux panes inherit it.
    - ``NO_COLOR`` from the caller's shell is cleared (it changes the snapshots); tests that want
      it set it themselves.
    - torch's deterministic-algorithms flag is put back as it was (a run with
      ``train.deterministic = true`` turns it on for the process)."""
    folder = Path(tempfile.mkdtemp(prefix="tt", dir="/tmp" if os.path.isdir("/tmp") else None))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.delenv("NO_COLOR", raising=False)
    torch = sys.modules.get("torch")
    deterministic = torch.are_deterministic_algorithms_enabled() if torch else False
    yield folder
    torch = sys.modules.get("torch")
    if torch is not None and torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_trainer_left_behind(request):
    """A trainer process outlives its viewer by design: a test that leaves one training (a failed
    assertion before it stopped the run) must not leave it eating CI's two cores. After each
    test, every live endpoint under the test's tmp folder is ended (SIGKILL) and reported. A run
    that has ended (its summary.json is written) is given a few seconds to close its endpoint and
    exit by itself first: the test may have seen the summary a moment before the process left."""
    base = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if base is None:
        return
    import json
    import signal

    left = []
    for pointer in base.rglob("endpoint.json"):
        try:
            pid = int(json.loads(pointer.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid == os.getpid():
            continue
        if (pointer.parent / "summary.json").is_file():
            import time

            def alive(pid: int = pid) -> bool:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return False
                return True

            deadline = time.monotonic() + 10.0
            while pointer.exists() and alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not pointer.exists() or not alive():
                continue  # it closed its endpoint and left, as an ended run does (or was gone already)
        try:
            os.kill(pid, signal.SIGKILL)
            left.append(pid)
        except ProcessLookupError:
            pass
    if left:
        pytest.fail(f"the test left trainer process(es) {left} running (killed now): stop the run it started")


@pytest.fixture(autouse=True)
def heap_unfrozen():
    """Each app a test mounts freezes the heap (core.heap.settle_heap, gc.freeze): within one test
    process that would keep every earlier test's garbage for good, so each test starts unfrozen."""
    import gc

    yield
    gc.unfreeze()
