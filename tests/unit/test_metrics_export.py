"""A run's metrics exported as a CSVLogger-shaped CSV and as TensorBoard event files: every logged step, once."""

from __future__ import annotations

import csv
import math
import struct
import sys
import types
from pathlib import Path

import pytest

from tui_train.core import events as E
from tui_train.core.run.runlog import STEPS_NAME, RunLog
from tui_train.core.rundir.history import read_records
from tui_train.core.rundir.metrics_export import MISSING_TENSORBOARD, ExportError, export_csv, export_tensorboard

HEADER = ["step", "epoch", "train_loss", "train_acc", "lr", "samples_per_second", "train_epoch_loss", "train_epoch_accuracy",
          "val_loss", "val_accuracy", "val_f1", "test_loss", "test_accuracy", "test_precision"]


def started(run_dir: Path, task: str = "classification", start_step: int = 0) -> E.RunStarted:
    return E.RunStarted(run_dir=str(run_dir), preset="p", device="cpu", task=task, epochs=2, steps_per_epoch=4, total_steps=8,
                        train_size=1, val_size=1, test_size=1, num_params=1, model="m", live=("lr",), start_step=start_step)


def step(n: int, loss: float | None = None, accuracy: float | None = 0.5, sps: float = 100.0) -> E.StepMetrics:
    return E.StepMetrics(step=n, epoch=(n - 1) // 4, epoch_progress=((n - 1) % 4 + 1) / 4, loss=1.0 / n if loss is None else loss,
                         lr=1e-3 / n, samples_per_second=sps + n, accuracy=None if accuracy is None else accuracy + n / 100,
                         elapsed=n * 0.01)


def write_run(run_dir: Path, task: str = "classification") -> list[E.Event]:
    """Two epochs of four steps (a NaN loss, an infinite throughput), an on-demand validation, the test; returns the events."""
    acc = 0.5 if task == "classification" else None
    evs: list[E.Event] = [started(run_dir, task)]
    evs += [step(1, accuracy=acc), step(2, accuracy=acc), step(3, loss=math.nan, accuracy=acc), step(4, accuracy=acc)]
    evs.append(E.CommandApplied(command="SetLR", detail="lr", step=4, key="lr", old=1e-3, new=5e-4))
    evs.append(E.EpochMetrics(epoch=0, step=4, train={"loss": 0.4, "accuracy": 0.6}, val={"loss": 0.45, "accuracy": 0.55, "f1": 0.5},
                              lr=2.5e-4, seconds=1.0, is_best=True, patience_left=3))
    evs += [step(5, accuracy=acc), step(6, accuracy=acc, sps=math.inf)]
    evs.append(E.ValidationMetrics(step=6, epoch=1, metrics={"loss": 0.35, "accuracy": 0.65}))
    evs += [step(7, accuracy=acc), step(8, accuracy=acc)]
    evs.append(E.EpochMetrics(epoch=1, step=8, train={"loss": 0.3, "accuracy": 0.7}, val={"loss": 0.32, "accuracy": 0.68, "f1": 0.6},
                              lr=1.25e-4, seconds=1.0, patience_left=3))
    evs.append(E.TestMetrics(metrics={"loss": 0.31, "accuracy": 0.69, "precision": 0.7}, confusion=((3, 1), (0, 4))))
    run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(run_dir)
    log.open("")
    for ev in evs:
        log.write(ev)
    log.close()
    return evs


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def same(cell: str, value: float) -> bool:
    """The CSV cell holds exactly ``value`` (nan reads back as nan)."""
    return math.isnan(value) and cell == "nan" if math.isnan(value) else float(cell) == value


def test_csv_has_a_row_per_log_call_with_the_logged_values_and_empty_cells_elsewhere(tmp_path):
    evs = write_run(tmp_path / "run")
    out = tmp_path / "export" / "metrics.csv"
    assert export_csv(tmp_path / "run", out) == 8 + 2 + 1 + 1  # steps, epoch ends, the validation, the test
    header, rows = read_csv(out)
    assert header == HEADER
    assert len(rows) == 12
    steps = [e for e in evs if isinstance(e, E.StepMetrics)]
    step_rows = [r for r in rows if r["train_loss"] != ""]
    assert [int(r["step"]) for r in step_rows] == [s.step for s in steps]  # every logged step, once, in order
    for s, r in zip(steps, step_rows):
        assert int(r["epoch"]) == s.epoch
        assert same(r["train_loss"], s.loss) and same(r["train_acc"], s.accuracy) and same(r["lr"], s.lr)
        assert same(r["samples_per_second"], s.samples_per_second)
        assert all(r[c] == "" for c in HEADER[6:])  # no epoch, validation or test metric on a step row
    assert step_rows[2]["train_loss"] == "nan" and step_rows[5]["samples_per_second"] == "inf"
    others = [r for r in rows if r["train_loss"] == ""]
    assert [(r["step"], r["epoch"]) for r in others] == [("4", "0"), ("6", "1"), ("8", "1"), ("8", "1")]
    first, val, last, test = others
    assert {c: first[c] for c in HEADER[2:] if first[c]} == {"train_epoch_loss": "0.4", "train_epoch_accuracy": "0.6",
                                                            "val_loss": "0.45", "val_accuracy": "0.55", "val_f1": "0.5"}
    assert {c: val[c] for c in HEADER[2:] if val[c]} == {"val_loss": "0.35", "val_accuracy": "0.65"}
    assert last["train_epoch_loss"] == "0.3" and last["val_f1"] == "0.6" and last["test_loss"] == ""
    assert {c: test[c] for c in HEADER[2:] if test[c]} == {"test_loss": "0.31", "test_accuracy": "0.69", "test_precision": "0.7"}
    assert rows.index(first) == 4 and rows.index(val) == 7 and rows[-1] is test  # each at its place in the log
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.csv"]  # no temporary file left behind


def test_csv_of_a_regression_run_has_no_accuracy_column_and_replaces_an_older_export(tmp_path):
    write_run(tmp_path / "run", task="regression")
    out = tmp_path / "metrics.csv"
    out.write_text("old\n", encoding="utf-8")
    assert export_csv(tmp_path / "run", out) == 12
    header, rows = read_csv(out)
    assert "train_acc" not in header and header[:5] == ["step", "epoch", "train_loss", "lr", "samples_per_second"]
    assert [r["step"] for r in rows[:4]] == ["1", "2", "3", "4"]


def test_a_partial_run_with_a_torn_last_line_exports_what_it_has(tmp_path):
    run = tmp_path / "run"
    log = RunLog(run)
    run.mkdir()
    log.open("")
    log.write(started(run))
    for n in range(1, 6):
        log.write(step(n))
    log.close()
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"event": "StepMetrics", "step": 6, "epoch": 1, "lo')  # the trainer was killed writing it
    assert not (run / "summary.json").exists()
    assert export_csv(run, tmp_path / "m.csv") == 5
    _, rows = read_csv(tmp_path / "m.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"] and same(rows[-1]["train_loss"], 1.0 / 5)
    (run / STEPS_NAME).unlink()  # a run from before steps.f64: metrics.jsonl alone is enough
    assert export_csv(run, tmp_path / "m2.csv") == 5
    assert read_csv(tmp_path / "m2.csv") == read_csv(tmp_path / "m.csv")


def test_steps_a_resume_redid_appear_once_with_the_resumed_values(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    log = RunLog(run)
    log.open("")
    log.write(started(run))
    for n in range(1, 8):  # killed after step 7; the last checkpoint was at step 5
        log.write(step(n))
    log.close()
    log = RunLog(run)
    log.open("")
    log.write(started(run, start_step=5))
    for n in range(6, 10):
        log.write(step(n, loss=10.0 + n))
    log.close()
    assert export_csv(run, tmp_path / "m.csv") == 9
    _, rows = read_csv(tmp_path / "m.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert [float(r["train_loss"]) for r in rows] == [1.0 / n for n in range(1, 6)] + [10.0 + n for n in range(6, 10)]


@pytest.mark.parametrize("make", ["missing", "empty", "other files"])
def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path, make):
    folder = tmp_path / "not-a-run"
    if make != "missing":
        folder.mkdir()
    if make == "other files":
        (folder / "notes.txt").write_text("hello\n", encoding="utf-8")
        (folder / "summary.txt").write_text("{}\n", encoding="utf-8")
    for export, out in ((export_csv, tmp_path / "out.csv"), (export_tensorboard, tmp_path / "tb")):
        with pytest.raises(ExportError) as info:
            export(folder, out)
        text = str(info.value)
        assert "\n" not in text and str(folder) in text and ("not a run directory" in text or "no such run directory" in text)
        assert not out.exists()


def _masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), masked as TFRecord does: written here, independent of the writer's own."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] from every TFRecord event file in ``folder`` (checksums checked)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float, float]]] = {}
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, "no event file written"
    for path in files:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
            body = data[pos + 12:pos + 12 + length]
            (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
            assert header_crc == _masked_crc32c(header) and body_crc == _masked_crc32c(body) and len(body) == length
            pos += 16 + length
            event = event_pb2.Event.FromString(body)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value, event.wall_time))
    return out


def f32(v: float) -> float:
    """``v`` as the float32 TensorBoard stores."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def test_tensorboard_event_files_hold_every_scalar_at_its_step_and_time(tmp_path):
    pytest.importorskip("tensorboardX")
    evs = write_run(tmp_path / "run")
    times = {r["seq"]: r["time"] for r in read_records(tmp_path / "run")}
    seq_of = {id(e): i + 1 for i, e in enumerate(evs)}  # RunLog numbers the records 1, 2, ... in write order
    n = export_tensorboard(tmp_path / "run", tmp_path / "tb")
    got = read_scalars(tmp_path / "tb")
    steps = [e for e in evs if isinstance(e, E.StepMetrics)]
    for tag, field in (("train/loss", "loss"), ("train/accuracy", "accuracy"), ("lr", "lr"), ("samples_per_second", "samples_per_second")):
        series = got[tag]
        assert [s for s, _, _ in series] == [e.step for e in steps], tag
        for (_, value, wall), e in zip(series, steps):
            want = f32(getattr(e, field))
            assert (math.isnan(value) and math.isnan(want)) or value == want, (tag, e.step)
            assert wall == times[seq_of[id(e)]]
    assert math.isnan(got["train/loss"][2][1]) and got["samples_per_second"][5][1] == math.inf
    assert got["epoch/train_loss"] == [(4, f32(0.4), times[7]), (8, f32(0.3), times[13])]
    assert [(s, v) for s, v, _ in got["epoch/train_accuracy"]] == [(4, f32(0.6)), (8, f32(0.7))]
    assert [(s, v) for s, v, _ in got["val/loss"]] == [(4, f32(0.45)), (6, f32(0.35)), (8, f32(0.32))]
    assert [(s, v) for s, v, _ in got["val/f1"]] == [(4, f32(0.5)), (8, f32(0.6))]
    assert [(s, v) for s, v, _ in got["test/accuracy"]] == [(8, f32(0.69))]
    assert set(got) == {"train/loss", "train/accuracy", "lr", "samples_per_second", "epoch/train_loss", "epoch/train_accuracy",
                        "val/loss", "val/accuracy", "val/f1", "test/loss", "test/accuracy", "test/precision"}
    assert n == sum(len(v) for v in got.values()) == 8 * 4 + 2 * 5 + 2 + 3
    with pytest.raises(ExportError, match="already holds TensorBoard event files"):  # a second export would double every curve
        export_tensorboard(tmp_path / "run", tmp_path / "tb")


def test_without_tensorboardx_or_tensorboard_the_error_is_one_line(tmp_path, monkeypatch):
    write_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # an import of a None entry raises ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ExportError) as info:
        export_tensorboard(tmp_path / "run", tmp_path / "tb")
    assert str(info.value) == MISSING_TENSORBOARD and "\n" not in str(info.value)
    assert "tensorboardX" in MISSING_TENSORBOARD and "pip install" in MISSING_TENSORBOARD
    assert not (tmp_path / "tb").exists()


def test_without_tensorboardx_torch_utils_tensorboard_writes(tmp_path, monkeypatch):
    write_run(tmp_path / "run")
    calls: list[tuple] = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("open", log_dir))

        def add_scalar(self, tag, value, global_step=None, walltime=None):
            calls.append((tag, value, global_step, walltime))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    assert export_tensorboard(tmp_path / "run", tmp_path / "tb") == 47
    assert calls[0] == ("open", str(tmp_path / "tb")) and calls[-1] == ("close",) and len(calls) == 49
    assert calls[1][:3] == ("train/loss", 1.0, 1) and isinstance(calls[1][3], float)


def test_the_export_command_writes_csv_and_tensorboard_and_says_what_is_missing(tmp_path):
    from typer.testing import CliRunner

    from tui_train.tui.cli import app

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run(run_dir)
    r = CliRunner().invoke(app, ["export", str(run_dir), "--csv", str(tmp_path / "m.csv"), "--tensorboard", str(tmp_path / "tb")])
    assert r.exit_code == 0, r.output
    assert "rows of" in r.output and "scalars of" in r.output
    header, rows = read_csv(tmp_path / "m.csv")
    assert header[:2] == ["step", "epoch"] and rows
    assert read_scalars(tmp_path / "tb")
    none = CliRunner().invoke(app, ["export", str(run_dir)])
    assert none.exit_code == 2 and "--csv" in none.output and "Traceback" not in none.output
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "nothing"), "--csv", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
