"""A run's tags and note (notes.json, issue 24 item 5) and a trial's sweep on its row: read and
written atomically, a damaged file tolerated and reported; `tui-train ctl note/tag/untag`; the
runs list's sweep, tags and note columns and `tui-train runs --filter`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_train.core.rundir import notes as N
from tui_train.core.rundir import runs as R
from tui_train.core.sweep import record
from tui_train.tui.cli import app

SWEEP = "20260105-120000-sweep-digits-mlp"


def make_run(root: Path, name: str, *, lr: float = 1e-3, optimizer: str = "adam", status: str = "completed",
             best: float = 0.9, started: float = 1_767_000_000.0) -> Path:
    """A finished run directory by hand: the first event (its start), a config and a summary."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    preset = name.split("-", 2)[-1]
    (run_dir / "events.jsonl").write_text(json.dumps({"event": "RunStarted", "preset": preset, "time": started}) + "\n")
    (run_dir / "config.toml").write_text(f'name = "{preset}"\n[optim]\nlr = {lr}\nname = "{optimizer}"\n')
    (run_dir / "summary.json").write_text(json.dumps({
        "status": status, "preset": preset, "epochs_completed": 3, "epochs_planned": 3, "wall_seconds": 30.0,
        "best": {"metric": "val_accuracy", "value": best, "epoch": 2}, "test": {"accuracy": best - 0.01},
        "hyperparameters": {"lr": lr, "batch_size": 64, "optimizer": optimizer, "schedule": "constant"}}))
    return run_dir


def make_trial(root: Path, number: int, params: dict, *, sweep: str = SWEEP, **kw) -> Path:
    """A sweep's trial: a run directory with trial.json as the sweep driver writes it."""
    run_dir = make_run(root, f"2026010{number}-00000{number}-digits-mlp", **kw)
    record.write_json(run_dir / R.TRIAL_FILE, {"sweep": str((root / sweep).resolve()), "number": number, "params": params,
                                                "metric": "val_accuracy"})
    return run_dir


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    plain = make_run(root, "20260101-000000-alpha", lr=1e-4, best=0.8)
    t0 = make_trial(root, 2, {"optim.lr": 0.01, "model.hidden": [64]}, lr=0.01, best=0.95)
    t1 = make_trial(root, 3, {"optim.lr": 0.1, "model.hidden": [128, 64]}, lr=0.1, optimizer="sgd", best=0.85)
    (root / SWEEP).mkdir()
    (root / SWEEP / record.SWEEP_FILE).write_text("{}")
    return root, plain, t0, t1


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = getattr(result, "stderr", result.output)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, err
    return lines[0]


# --------------------------------------------------------------------------- notes.json


def test_notes_are_written_atomically_and_read_back(runs):
    _, plain, *_ = runs
    assert N.read_notes(plain) == N.Notes()  # none yet
    written = N.write_notes(plain, tags=["baseline", "Best", "best"], note="lr too high [bold]")
    assert written.tags == ("baseline", "Best") and N.read_notes(plain) == written  # a repeat (any case) once
    assert json.loads((plain / N.NOTES_FILE).read_text()) == {"tags": ["baseline", "Best"], "note": "lr too high [bold]"}
    assert N.write_notes(plain, note="kept tags").tags == ("baseline", "Best")  # None keeps the other part
    assert N.add_tags(plain, ["x1"]).tags == ("baseline", "Best", "x1")
    assert N.remove_tags(plain, ["BEST", "absent"]).tags == ("baseline", "x1")
    assert [p.name for p in plain.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_tag_edited_into_the_file_by_hand_never_blocks_the_others(runs):
    _, plain, *_ = runs
    (plain / N.NOTES_FILE).write_text(json.dumps({"tags": ["two words"], "note": "by hand"}))
    assert N.add_tags(plain, ["x"]).tags == ("two words", "x")
    assert N.remove_tags(plain, ["two words"]) == N.Notes(tags=("x",), note="by hand")
    with pytest.raises(N.NotesError):
        N.add_tags(plain, ["new one"])  # a new tag is checked


def test_a_failed_write_leaves_the_old_notes_whole(runs, monkeypatch):
    _, plain, *_ = runs
    N.write_notes(plain, note="first")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        N.write_notes(plain, note="second")
    monkeypatch.undo()
    assert N.read_notes(plain).note == "first"
    assert [p.name for p in plain.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("content, says", [
    ("{not json", "not JSON"), ("[1, 2]", "not a JSON object"), ('{"tags": "a", "note": ""}', "not a list"),
    (b"\xff\xfe", "not JSON"),
])
def test_a_damaged_notes_file_is_reported_never_raised_and_kept_aside_on_a_write(runs, content, says):
    root, plain, *_ = runs
    path = plain / N.NOTES_FILE
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    notes = N.read_notes(plain)
    assert notes.tags == () and notes.note == "" and says in notes.error and "\n" not in notes.error
    row = next(r for r in R.list_runs(root) if r.name == plain.name)  # the list goes on, and says so
    assert row.notes_error == notes.error and row.tags == []
    N.write_notes(plain, note="fresh")
    assert N.read_notes(plain) == N.Notes(note="fresh")
    assert (plain / (N.NOTES_FILE + N.DAMAGED_SUFFIX)).read_bytes() == (content if isinstance(content, bytes) else content.encode())


def test_tags_and_notes_that_cannot_be_stored_are_refused_in_one_line(runs, tmp_path):
    _, plain, *_ = runs
    for bad in ("", "two words", "a,b", "x" * (N.TAG_LIMIT + 1), "bell\x07"):
        with pytest.raises(N.NotesError):
            N.write_notes(plain, tags=[bad])
    with pytest.raises(N.NotesError, match="at most"):
        N.write_notes(plain, note="x" * (N.NOTE_LIMIT + 1))
    with pytest.raises(N.NotesError, match="at most"):
        N.write_notes(plain, tags=[f"t{i}" for i in range(N.TAGS_LIMIT + 1)])
    with pytest.raises(N.NotesError, match="no such run directory"):
        N.write_notes(tmp_path / "nope", note="x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(N.NotesError, match="not a run directory"):
        N.write_notes(tmp_path / "folder", note="x")
    assert not (tmp_path / "folder" / N.NOTES_FILE).exists() and N.read_notes(plain) == N.Notes()
    assert N.parse_tags("baseline, lr-sweep  best") == ("baseline", "lr-sweep", "best")


# --------------------------------------------------------------------------- rows


def test_a_trials_row_has_its_sweep_number_and_parameters_and_any_row_its_notes(runs):
    root, plain, t0, t1 = runs
    N.write_notes(t0, tags=["keeper"], note="best so far")
    rows = {r.name: r for r in R.list_runs(root)}
    assert set(rows) == {plain.name, t0.name, t1.name}  # the sweep folder is no run
    first = rows[t0.name]
    assert (first.sweep, first.sweep_name, first.trial) == (SWEEP, "digits-mlp", 2)
    assert first.sweep_dir == str((root / SWEEP).resolve()) and first.params == {"optim.lr": 0.01, "model.hidden": [64]}
    assert first.tags == ["keeper"] and first.note == "best so far"
    assert rows[plain.name].sweep == "" and rows[plain.name].trial is None and rows[plain.name].params == {}
    assert record.read_trial_mark(t0)["number"] == 2 and record.TRIAL_FILE == R.TRIAL_FILE  # the sweep layer reads the same
    by_sweep = R.list_runs(root, sort="sweep", reverse=False)
    assert [r.name for r in by_sweep] == [t0.name, t1.name, plain.name]  # by sweep, then trial; no sweep last


def test_a_damaged_trial_mark_never_stops_the_row(runs):
    _root, _plain, t0, _ = runs
    for content in ("{", '{"sweep": 3, "number": "x"}', '{"sweep": "/x/s", "number": true, "params": [1]}'):
        (t0 / R.TRIAL_FILE).write_text(content)
        row = R.read_row(t0, live=False)
        assert row.status == "completed" and isinstance(row.params, dict)
        assert row.trial is None


# --------------------------------------------------------------------------- the command line


def test_runs_filter_keeps_the_matching_rows_and_json_gives_sweep_trial_params_tags_note(runs):
    root, plain, t0, t1 = runs
    N.write_notes(t1, tags=["baseline"], note="diverged after\nepoch 2")
    out = invoke(["runs", "--runs-dir", str(root), "--json", "--filter", "sweep=digits-mlp", "-f", "optim.lr>=0.05"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [d["name"] for d in data] == [t1.name]
    assert data[0]["sweep"] == SWEEP and data[0]["trial"] == 3 and data[0]["params"]["optim.lr"] == 0.1
    assert data[0]["tags"] == ["baseline"] and data[0]["note"] == "diverged after\nepoch 2"
    names = lambda args: [d["name"] for d in json.loads(invoke(["runs", "--runs-dir", str(root), "--json", *args]).output)]  # noqa: E731
    assert names(["-f", "best>0.9"]) == [t0.name]
    assert names(["-f", "tag=baseline"]) == [t1.name] and names(["-f", "sweep="]) == [plain.name]
    assert names(["-f", "sgd"]) == [t1.name] and names(["-f", "diverged"]) == [t1.name]  # plain words, the whole note too
    table = invoke(["runs", "--runs-dir", str(root), "--filter", "optimizer=adam status=completed"])
    lines = table.output.splitlines()
    assert table.exit_code == 0 and lines[0].split()[:3] == ["status", "preset", "sweep"] and len(lines) == 3
    assert "tags" in lines[0] and "note" in lines[0]
    row = next(ln for ln in lines if t0.name in ln)
    assert "#2 digits-mlp" in row
    none = invoke(["runs", "--runs-dir", str(root), "--filter", "best>2"])
    assert none.exit_code == 0 and "no run under" in none.output and "matches the filter" in none.output
    noted = invoke(["runs", "--runs-dir", str(root), "-f", "tag=baseline"]).output
    assert "diverged after…" in noted and "epoch 2" not in noted  # the note's first line, and a sign of more


@pytest.mark.parametrize("expr, fragment", [("lr>=fast", "'fast' is not a number"), ("colour=red", "no key 'colour'"),
                                            ("best<", "needs a value")])
def test_runs_with_a_bad_filter_is_one_line_and_exit_2(runs, expr, fragment):
    root, *_ = runs
    for extra in ([], ["--json"]):
        line = one_error_line(invoke(["runs", "--runs-dir", str(root), "--filter", expr, *extra]))
        assert "--filter" in line and fragment in line


def test_ctl_note_tag_and_untag_write_the_run_directory(runs):
    _, plain, t0, _ = runs
    out = invoke(["ctl", str(plain), "note", "lr too high; see [this]"])
    assert out.exit_code == 0 and "note set" in out.output
    assert invoke(["ctl", str(plain), "tag", "baseline", "keep"]).exit_code == 0
    out = invoke(["ctl", str(plain), "untag", "KEEP"])
    assert out.exit_code == 0 and "tags: baseline" in out.output
    assert N.read_notes(plain) == N.Notes(tags=("baseline",), note="lr too high; see [this]")
    assert invoke(["ctl", str(plain), "note", ""]).exit_code == 0 and N.read_notes(plain).note == ""
    assert invoke(["ctl", str(t0), "note", "two", "words"]).exit_code == 0 and N.read_notes(t0).note == "two words"


def test_ctl_notes_refuse_what_is_no_run_or_no_tag_in_one_line(runs, tmp_path):
    root, plain, *_ = runs
    assert "no such run directory" in one_error_line(invoke(["ctl", str(tmp_path / "gone"), "tag", "x"]))
    assert "not a run directory" in one_error_line(invoke(["ctl", str(root / SWEEP), "note", "x"]))
    assert "expected `ctl tag NAME...`" in one_error_line(invoke(["ctl", str(plain), "tag"]))
    assert "no spaces, commas" in one_error_line(invoke(["ctl", str(plain), "tag", "a,b"]))
    assert "no live run" in one_error_line(invoke(["ctl", "--runs-dir", str(root), "note", "x"]))  # no RUN_DIR: the live one
    assert not (root / SWEEP / N.NOTES_FILE).exists()
