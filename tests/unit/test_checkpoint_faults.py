"""Checkpoints under fault injection: kill -9 mid-save, malicious pickles, corrupt files, a full or
unwritable disk. The previous checkpoints must always survive and load."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import run_to_end
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.engine import Trainer

REPO = Path(__file__).resolve().parents[2]


def tiny(hidden=32, epochs=1, **train):
    return from_dict({"name": "ck", "data": {"dataset": "digits", "batch_size": 64},
                      "model": {"name": "mlp", "hidden": [hidden]}, "optim": {"name": "adam"},
                      "train": {"epochs": epochs, "log_every": 5, "device": "cpu", **train}})




KILL_LOOP = r"""
import json, os, random, select, signal, sys, time
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[1])
from tui_train.core.train import checkpoint as ckpt

folder, rounds = Path(sys.argv[2]), int(sys.argv[3])
random.seed(1234)
torch.set_num_threads(1)  # forked children and OpenMP pools do not mix
weights = torch.randn(400_000)  # ~1.6 MB: a save takes long enough to be killed in the middle
report = {"rounds": 0, "killed_mid_save": 0, "loaded": 0}
for r in range(rounds):
    saved_r, saved_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: save as fast as it can until killed
        os.close(saved_r)
        i = 0
        while True:
            ckpt.save_atomic({"model": {"w": weights + i}, "step": i, "round": r}, folder / f"step-{i % 3}.pt")
            if i == 0:  # tell the parent one save completed in this round
                os.write(saved_w, b"1")
                os.close(saved_w)
            i += 1
    os.close(saved_w)
    # Kill only after this round's first save completed, so that the count of loadable newest
    # checkpoints does not depend on how fast a loaded machine forks and writes.
    ready, _, _ = select.select([saved_r], [], [], 60)
    assert ready and os.read(saved_r, 1) == b"1", "the writer never completed a save"
    os.close(saved_r)
    time.sleep(random.uniform(0.0, 0.03))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if any(p.name.startswith(ckpt.TMP_PREFIX) for p in folder.iterdir()):
        report["killed_mid_save"] += 1
    finals = sorted(folder.glob("step-*.pt"))
    for p in finals:  # every file with a final name is complete
        payload = ckpt.load(p)
        assert torch.equal(payload["model"]["w"], weights + payload["step"]), p
    newest = ckpt.newest(folder)
    if newest is not None:
        ckpt.load(newest)
        report["loaded"] += 1
    ckpt.clean_stale(folder)
    assert not any(p.name.startswith(ckpt.TMP_PREFIX) for p in folder.iterdir())
    report["rounds"] += 1
print(json.dumps(report))
"""


@pytest.mark.slow
def test_kill_9_at_random_moments_during_saves_never_leaves_a_broken_checkpoint(tmp_path):
    script = tmp_path / "kill_loop.py"
    script.write_text(KILL_LOOP)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    out = subprocess.run([sys.executable, str(script), str(REPO), str(folder), "220"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["rounds"] == 220
    assert report["killed_mid_save"] >= 20, report  # the kills really landed inside saves
    assert report["loaded"] == 220, report  # after any kill, the newest checkpoint loads


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    bad = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil()}, bad)
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(bad)
    msg = str(err.value)
    assert "refused" in msg and "\n" not in msg and str(bad) in msg
    assert not sentinel.exists()
    # and through the command line: exit 2, one line, payload still not run
    res = subprocess.run([sys.executable, "-m", "tui_train.tui.cli", "eval", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and "refused" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr and not sentinel.exists()


def test_corrupt_truncated_and_foreign_files_get_one_line_errors(tmp_path):
    good = ckpt.save_atomic({"model": {"w": torch.randn(1000)}, "step": 1}, tmp_path / "good.pt")
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pt").write_bytes(os.urandom(4096))
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"w": torch.zeros(2)}, tmp_path / "foreign.pt")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"model": 1}, f)
    for name, words in [("trunc.pt", "corrupt"), ("noise.pt", ""), ("empty.pt", ""), ("foreign.pt", "not a tui-train checkpoint"),
                        ("plain.pkl", ""), ("missing.pt", "no such")]:
        with pytest.raises(ckpt.CheckpointError) as err:
            ckpt.load(tmp_path / name)
        msg = str(err.value)
        assert "\n" not in msg and name in msg and words in msg, msg


def test_incompatible_architecture_names_the_parameter_and_shapes(tmp_path):
    events = run_to_end(Trainer(tiny(hidden=32, max_steps=2), runs_dir=tmp_path))
    last = next(e.path for e in events if isinstance(e, E.CheckpointSaved) and e.reason == "last")
    other = Trainer(tiny(hidden=64), runs_dir=tmp_path, resume=last, resume_overrides=["model.hidden=[64]"])
    with pytest.raises(ckpt.CheckpointError) as err:
        other.prepare()
    msg = str(err.value)
    assert "1.weight" in msg and "(32, 64)" in msg and "(64, 64)" in msg and "\n" not in msg


def test_failed_save_keeps_the_old_checkpoints_and_training_goes_on(tmp_path, monkeypatch):
    trainer = Trainer(tiny(epochs=2), runs_dir=tmp_path)
    real_save = torch.save
    calls = {"n": 0}

    def flaky_save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] >= 2:  # write part of the file, then fail as a full disk does
            f.write(b"PK\x03\x04 partial")
            raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", flaky_save)
    events = run_to_end(trainer, [C.SaveCheckpoint(), C.Pause(), C.SaveCheckpoint(), C.Resume()])
    saved = [e for e in events if isinstance(e, E.CheckpointSaved)]
    errors = [e for e in events if isinstance(e, E.RunError)]
    assert len(saved) == 1 and errors and "file write failed" in errors[0].message
    # the run trained to its end, but a requested checkpoint is missing: not plain "completed" (habit 24)
    assert isinstance(events[-1], E.RunFinished) and events[-1].status == "unsaved"
    assert [x["checkpoint"] for x in events[-1].summary["not_saved"]] == ["manual", "best", "last"]  # every later save fails
    folder = Path(saved[0].path).parent
    assert [p.name for p in folder.iterdir()] == [Path(saved[0].path).name]  # no partial, no temp file
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert ckpt.load(Path(saved[0].path))["step"] == 0


def test_unwritable_checkpoint_folder_reports_and_goes_on(tmp_path, monkeypatch):
    trainer = Trainer(tiny(), runs_dir=tmp_path)
    trainer.prepare()
    first = ckpt.save_atomic({"model": {}, "step": 0}, trainer.ckpt_dir / "step-00000000-manual.pt")
    real_open = open

    def no_write(path, mode="r", *a, **k):
        if "w" in mode and Path(path).parent == trainer.ckpt_dir:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", no_write)
    events = run_to_end(trainer, [C.SaveCheckpoint()])
    monkeypatch.setattr("builtins.open", real_open)
    errs = [e.message for e in events if isinstance(e, E.RunError)]
    assert any("Permission denied" in m for m in errs)
    assert events[-1].status == "unsaved" and "Permission denied" in events[-1].summary["not_saved"][0]["error"]
    assert sorted(p.name for p in trainer.ckpt_dir.iterdir()) == [first.name]


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tiny tmpfs")
def test_really_full_disk_keeps_the_previous_checkpoint(tmp_path):
    trainer = Trainer(tiny(hidden=256), runs_dir=tmp_path)
    trainer.prepare()
    size = len(ckpt.to_bytes(trainer._payload("manual")))
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size * 1.5)}", "tmpfs", str(trainer.ckpt_dir)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {mount.stderr.decode().strip()}")
    try:
        events = run_to_end(trainer, [C.SaveCheckpoint(), C.SaveCheckpoint("again")])
        saved = [e for e in events if isinstance(e, E.CheckpointSaved)]
        errors = [e for e in events if isinstance(e, E.RunError)]
        assert len(saved) == 1 and errors, [e.kind for e in events]
        assert events[-1].status == "unsaved"
        names = sorted(p.name for p in trainer.ckpt_dir.iterdir())
        assert names == [Path(saved[0].path).name]
        ckpt.load(Path(saved[0].path))
    finally:
        subprocess.run(["umount", str(trainer.ckpt_dir)])


def test_stale_temp_files_are_cleaned_on_start(tmp_path):
    trainer = Trainer(tiny(max_steps=1), runs_dir=tmp_path)
    events = run_to_end(trainer)
    folder = trainer.ckpt_dir
    (folder / f"{ckpt.TMP_PREFIX}last.pt.999").write_bytes(b"partial")
    resumed = Trainer(tiny(), runs_dir=tmp_path, resume=trainer.run_dir)
    resumed.prepare()
    assert not any(p.name.startswith(ckpt.TMP_PREFIX) for p in folder.iterdir())
    assert isinstance(events[-1], E.RunFinished)


def test_checkpoint_is_self_describing(tmp_path):
    events = run_to_end(Trainer(tiny(max_steps=3), runs_dir=tmp_path), [C.SetLearningRate(0.002)])
    p = ckpt.load(Path(next(e.path for e in events if isinstance(e, E.CheckpointSaved))))
    for key in ("model", "optimizer", "config", "epoch", "batch", "step", "base_lr", "rng", "history", "epochs",
                "versions", "plateau", "best_value", "bad_epochs", "patience"):
        assert key in p, key
    assert set(p["rng"]) >= {"python", "numpy", "torch"}
    assert p["history"][0]["command"] == "SetLearningRate" and p["base_lr"] == 0.002
    assert p["versions"]["torch"] == str(torch.__version__)
