"""The ``tui-train`` command through Typer's test runner, plus two subprocess checks."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_train.core.config import DEFAULT_PRESET, PRESETS_DIR, load_config
from tui_train.tui.cli import app

REPO = Path(__file__).resolve().parents[2]
MALFORMED = Path(__file__).resolve().parent / "malformed"
BUNDLED = sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))
VENV_BIN = Path(sys.executable).parent


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def err_text(result) -> str:
    """stderr when the runner keeps it apart (Typer >= 0.15 / Click 8.2), else the mixed output."""
    try:
        return result.stderr
    except (ValueError, AttributeError):  # older Click: stderr not separately captured
        return result.output


def assert_bad_input(result, *fragments: str) -> str:
    """Exit 2, one line on stderr, no traceback; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = err_text(result)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert "Traceback" not in result.output and "Traceback" not in err
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    # the CLI searches the working directory for presets: keep the repo's own *.toml out of it
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- --help

def _option_entries(help_text: str) -> dict[str, str]:
    """Option name -> its whole help entry (continuation lines joined), from the Options: section."""
    entries: dict[str, str] = {}
    section = None
    current = None
    for line in help_text.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line[:-1]
            current = None
            continue
        if section != "Options":
            continue
        m = re.match(r"^\s{2}(-[\w-]*(?:,\s*--[\w-]+)?)", line)
        if m:
            current = m.group(1).split(",")[-1].strip()
            entries[current] = line
        elif current and line.strip():
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("args, expected", [
    ([], set()),
    (["run"], {"--set", "--headless", "--data-dir", "--runs-dir", "--device", "--seed"}),
    (["eval"], {"--data-dir", "--json"}),
    (["presets"], {"--presets-dir"}),
    (["presets", "show"], {"--presets-dir"}),
])
def test_help_lists_every_option_with_its_default(args, expected):
    result = invoke([*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    entries = _option_entries(result.output)
    assert "--help" in entries
    assert expected <= set(entries), (expected - set(entries), result.output)
    for name, text in entries.items():
        if name == "--help":
            continue
        assert re.search(r"default", text, re.I), f"{' '.join(args)} {name}: no default stated in {text!r}"


def test_top_level_help_lists_the_commands():
    out = invoke(["--help"]).output
    for cmd in ("run", "eval", "presets"):
        assert re.search(rf"^\s+{cmd}\s", out, re.M), cmd


# --------------------------------------------------------------------------- presets

def test_presets_lists_all_with_descriptions_and_marks_the_default():
    result = invoke(["presets"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in BUNDLED:
        desc = load_config(name).description
        line = next((ln for ln in lines if ln.split()[:1] == [name]), None)
        assert line is not None, f"{name} not listed"
        assert desc in line
    marked = [ln for ln in lines if "default" in ln.lower()]
    assert len(marked) == 1 and marked[0].split()[0] == DEFAULT_PRESET


def test_presets_ignores_toml_files_that_are_not_presets(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    result = invoke(["presets"])
    assert result.exit_code == 0
    assert "pyproject" not in result.output


def test_presets_show_prints_the_toml():
    result = invoke(["presets", "show", "mnist-mlp"])
    assert result.exit_code == 0, result.output
    assert result.output == (PRESETS_DIR / "mnist-mlp.toml").read_text()
    import tomllib

    assert tomllib.loads(result.output)["data"]["dataset"] == "mnist"


def test_presets_show_unknown_preset():
    line = assert_bad_input(invoke(["presets", "show", "nope"]), "nope")
    for name in BUNDLED:
        assert name in line


def test_run_unknown_preset():
    line = assert_bad_input(invoke(["run", "no-such-preset", "--headless"]), "no-such-preset")
    for name in BUNDLED:
        assert name in line


@pytest.mark.parametrize("case, key", [("lr_zero", "optim.lr"), ("syntax_unclosed_table", "malformed TOML"),
                                       ("unknown_section", "optimizer"), ("hflip_on_digits", "hflip")])
def test_run_malformed_preset_file(case, key):
    path = MALFORMED / f"{case}.toml"
    assert_bad_input(invoke(["run", str(path), "--headless"]), str(path), key)


@pytest.mark.parametrize("override, fragment", [
    ("optim.lr", "optim.lr"),              # no '='
    ("optim.lr=", "optim.lr"),             # no value
    ("model.hidden=[1,", "model.hidden"),  # does not parse
    ("train.epochs=abc", "train.epochs"),  # wrong type
    ("optim.lr=nan", "optim.lr"),
    ("optim.bogus=1", "optim.bogus"),
])
def test_run_bad_set(override, fragment):
    assert_bad_input(invoke(["run", "digits-mlp", "--headless", "--set", override]), fragment)


def test_run_bad_device_option():
    assert_bad_input(invoke(["run", "digits-mlp", "--headless", "--device", "quantum"]), "train.device")


def test_run_huge_integer_is_bad_input_not_a_crash():
    assert_bad_input(invoke(["run", "digits-mlp", "--headless", "--set", "optim.lr=1" + "0" * 400]), "optim.lr")


# --------------------------------------------------------------------------- real runs

def _read_jsonl(path: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    assert all(isinstance(r, dict) for r in rows)
    return rows


def _single_run_dir(runs: Path, preset: str) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}-{re.escape(preset)}", dirs[0].name), dirs[0].name
    return dirs[0]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(runs)
        result = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(runs),
                                          "--device", "cpu", "--set", "train.epochs=2"])
    return result, _single_run_dir(runs, "digits-mlp") if result.exit_code == 0 else None


def test_run_digits_headless_writes_the_run_directory(digits_run):
    result, run_dir = digits_run
    assert result.exit_code == 0, (result.output, result.exception)
    assert "epoch 1/2" in result.output and "epoch 2/2" in result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["preset"] == "digits-mlp"
    assert summary["epochs_completed"] == 2
    assert isinstance(summary["steps"], int) and summary["steps"] > 0
    assert set(summary["best"]) >= {"metric", "value", "epoch"}
    assert summary["best"]["metric"] == "val_accuracy" and 0 < summary["best"]["value"] <= 1
    assert summary["test"]["accuracy"] > 0.5  # two epochs on digits: far above chance (0.1)
    assert "loss" in summary["test"]
    assert summary["wall_seconds"] > 0 and summary["samples_per_second"] > 0
    cfg = load_config(str(run_dir / "config.toml"))
    assert cfg.train.epochs == 2 and cfg.data.dataset == "digits" and cfg.train.device == "cpu"
    metrics = _read_jsonl(run_dir / "metrics.jsonl")
    assert metrics, "metrics.jsonl is empty"
    _read_jsonl(run_dir / "events.jsonl")
    ckpts = list((run_dir / "checkpoints").glob("*.pt"))
    assert ckpts, "no checkpoint written"


def test_eval_checkpoint_json_matches_the_summary(digits_run):
    result, run_dir = digits_run
    assert result.exit_code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    last = run_dir / "checkpoints" / "last.pt"
    assert last.is_file()
    ev = invoke(["eval", str(last), "--json", "--device", "cpu"])
    assert ev.exit_code == 0, (ev.output, ev.exception)
    out = json.loads(ev.stdout)
    assert out["metrics"]["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-9)
    assert out["metrics"]["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)
    assert out["test_size"] > 0


def test_eval_run_directory_uses_its_newest_checkpoint(digits_run):
    _, run_dir = digits_run
    ev = invoke(["eval", str(run_dir), "--device", "cpu"])
    assert ev.exit_code == 0, (ev.output, ev.exception)
    assert "accuracy" in ev.output


GARBAGE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"PK\x03\x04" + bytes(60), id="truncated-zip"),
    pytest.param(b"\x80\x02K\x05.", id="pickled-int"),
    pytest.param(b"[optim]\nlr = 0.1\n", id="toml-text"),
    pytest.param(random.Random(0).randbytes(256), id="random-seed0"),
    pytest.param(b"hello world not a checkpoint\n", id="plain-text"),  # KeyError: 101
    pytest.param(random.Random(2).randbytes(256), id="random-seed2"),  # IndexError
]


@pytest.mark.parametrize("content", GARBAGE)
def test_eval_garbage_file(tmp_path, content):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(content)
    assert_bad_input(invoke(["eval", str(bad), "--json"]), str(bad))


def test_eval_missing_file(tmp_path):
    assert_bad_input(invoke(["eval", str(tmp_path / "nope.pt")]), "nope.pt")


def test_run_regression_headless_reports_regression_metrics(tmp_path):
    result = invoke(["run", "regression-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                     "--device", "cpu", "--set", "train.epochs=3"])
    assert result.exit_code == 0, (result.output, result.exception)
    run_dir = _single_run_dir(tmp_path / "runs", "regression-mlp")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert set(summary["test"]) >= {"loss", "mse", "mae", "r2"}
    assert "accuracy" not in summary["test"]
    test = summary["test"]
    assert test["r2"] > 0.8, test  # three epochs of the classic 10-5-1 MLP explain most of the variance
    # The same figures computed here from the saved weights' predictions, with numpy formulas
    # (not core.train.metrics): a wrong reduction, a swapped mae/mse or a mean over the wrong axis fails.
    import numpy as np
    import torch

    from tui_train.core.config import from_dict
    from tui_train.core.train import checkpoint as ckpt
    from tui_train.core.train.evaluation import _test_data
    from tui_train.core.train.runtime import build_model_for

    payload = ckpt.load(run_dir / "checkpoints" / "last.pt")
    cfg, dev, data = _test_data(from_dict(payload["config"]), None, "cpu")
    model = build_model_for(cfg, data, dev)
    model.load_state_dict(payload["model"])
    model.eval()
    with torch.no_grad():
        pairs = [(model(x).reshape(len(y), -1).double().numpy(), y.reshape(len(y), -1).double().numpy())
                 for x, y in data.eval_batches("test", 256)]
    pred, true = np.concatenate([p for p, _ in pairs]), np.concatenate([t for _, t in pairs])
    assert len(true) == data.test_size > 0
    mse, mae = float(((pred - true) ** 2).mean()), float(np.abs(pred - true).mean())
    r2 = float(1 - ((pred - true) ** 2).sum(0).mean() / ((true - true.mean(0)) ** 2).sum(0).mean())
    assert test["mse"] == pytest.approx(mse, rel=1e-5) and test["mae"] == pytest.approx(mae, rel=1e-5)
    assert test["r2"] == pytest.approx(r2, rel=1e-5)


# --------------------------------------------------------------------------- subprocesses

def _tui_train() -> str:
    exe = VENV_BIN / "tui-train"
    return str(exe) if exe.exists() else "tui-train"


def test_installed_command_help_runs():
    proc = subprocess.run([_tui_train(), "--help"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "presets" in proc.stdout and "eval" in proc.stdout


def test_cli_import_and_help_do_not_import_torch():
    code = (
        "import sys\n"
        "import tui.cli\n"
        "assert 'torch' not in sys.modules, 'import tui.cli imported torch'\n"
        "from typer.testing import CliRunner\n"
        "for args in (['--help'], ['run', '--help'], ['eval', '--help'], ['presets'], ['presets', 'show', 'mnist-mlp']):\n"
        "    r = CliRunner().invoke(tui.cli.app, args)\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "    assert 'torch' not in sys.modules, f'{args} imported torch'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("args,fragment", [
    (["run", "digits-mlp", "--on-hangup", "explode"], "--on-hangup 'explode'"),
    (["attach", "--on-hangup", "explode"], "--on-hangup 'explode'"),
    (["ctl", "--events", "pause"], "--events streams"),
    (["ctl", "lr", "fast"], "'fast' is not a number"),
    (["ctl", "warp"], "unknown action 'warp'"),
])
def test_endpoint_commands_refuse_bad_input_in_one_line(args, fragment):
    assert_bad_input(invoke(args), fragment)


def test_attach_and_ctl_name_a_missing_runs_dir_or_run_dir(tmp_path):
    assert_bad_input(invoke(["attach", "--runs-dir", str(tmp_path / "nope")]), "no such directory")
    assert_bad_input(invoke(["ctl", "--runs-dir", str(tmp_path / "nope"), "pause"]), "no such directory")
    (tmp_path / "run").mkdir()
    assert_bad_input(invoke(["attach", str(tmp_path / "run")]), "no live endpoint")


def test_attach_to_a_finished_run_says_so_and_how_to_see_it(tmp_path):
    """issue 20 defect 9: a finished run got "no live endpoint", with no word of `tui-train runs`."""
    runs = tmp_path / "runs"
    run = runs / "20260101-000000-alpha"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": "early_stopped", "preset": "alpha"}))
    line = assert_bad_input(invoke(["attach", str(run)]), "has finished (early_stopped)", "tui-train runs")
    assert f"--runs-dir {runs}" in line
    unfinished = runs / "20260102-000000-beta"  # killed: no summary, no endpoint
    unfinished.mkdir()
    assert_bad_input(invoke(["attach", str(unfinished)]), "not live", "tui-train runs")
    assert_bad_input(invoke(["attach", "--runs-dir", str(runs)]), "no live run", "tui-train runs")


def test_a_runs_dir_that_is_a_file_or_epochs_0_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from tui_train.tui.cli import app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(blocker)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert str(blocker) in r.output and "cannot create a run directory" in r.output
    z = CliRunner().invoke(app, ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", "train.epochs=0"])
    assert z.exit_code == 2 and "train.epochs" in z.output and ">= 1" in z.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing half-made


@pytest.mark.parametrize(("args", "says"), [
    (["no-such-preset"], "unknown preset 'no-such-preset'"),
    (["digits-mlp", "--set", "optim.lr=fast"], "optim.lr: expected a number"),
    (["digits-mlp", "--steps", "3"], "--steps must be a whole number in [5, 1000]"),
    (["digits-mlp", "--start-lr", "1", "--end-lr", "0.1"], "--end-lr (0.1) must be greater than --start-lr (1)"),
])
def test_lr_find_bad_input_is_one_line_and_exit_2(args, says):
    assert_bad_input(invoke(["lr-find", *args, "--headless"]), says)


# --------------------------------------------------------------------------- issue 15: the user's files and folders

def test_a_model_that_does_not_fit_the_data_is_one_line_and_exit_2_before_training(tmp_path):
    (tmp_path / "net.py").write_text("import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n"
                                     "        super().__init__()\n        self.fc = torch.nn.Linear(64, 3)\n"
                                     "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    r = invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--set", 'model.name="net.py:Net"'])
    # the relative path is recorded where it resolved (issue 20 defect 7)
    assert_bad_input(r, f"model.name '{tmp_path / 'net.py'}:Net'", "shape [32, 3]", "expected shape [32, 10]", "10 classes")
    assert not (tmp_path / "runs").exists()


def test_a_preset_path_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "presets.toml").mkdir()
    (tmp_path / "mine").mkdir()
    assert_bad_input(invoke(["run", "presets.toml", "--headless"]), "presets.toml: is a folder, not a preset file")
    assert_bad_input(invoke(["run", "./mine", "--headless"]), "./mine: is a folder, not a preset file")


def test_an_unwritable_runs_dir_and_a_data_dir_that_is_a_file_are_one_line(tmp_path, monkeypatch):
    import errno

    import tui_train.core.run.place

    def refuse(runs_dir, preset):
        raise PermissionError(errno.EACCES, "Permission denied", str(runs_dir))

    monkeypatch.setattr(tui_train.core.run.place, "new_run_dir", refuse)  # root ignores chmod: refuse as the OS would
    assert_bad_input(invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "ro")]),
                     f"runs directory {tmp_path / 'ro'}: cannot create a run directory there (Permission denied")
    monkeypatch.undo()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert_bad_input(invoke(["run", "mnist-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(blocker)]),
                     "MNIST not found in", "Not a directory")
    assert not (tmp_path / "runs").exists()


def test_a_signal_after_the_run_directory_was_made_marks_it_interrupted(tmp_path, monkeypatch):
    """The window between Trainer.prepare and the headless handlers (hosting the endpoint): the
    run directory exists, so it says `interrupted` rather than being left half-made."""
    import signal

    import tui_train.core.train.serve
    from tui_train.core.errors import StartInterrupted

    def interrupted(trainer):
        raise StartInterrupted(signal.SIGTERM)

    monkeypatch.setattr(tui_train.core.train.serve, "hosting", interrupted)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(StartInterrupted):
        invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs")])
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "SIGTERM before training began" in summary["reason"]
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the start-up handlers were given back


def test_outside_text_reaches_the_terminal_as_escapes_never_as_control_codes(tmp_path):
    """A user model whose error carries an ANSI escape, a carriage return and a bell: the one line
    on stderr shows them as escapes (habit 23); the terminal is never told to obey them."""
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        raise ValueError('bad \\x1b[2J\\x1b[31mred\\r overwritten \\x07 [/x]')\n")
    line = assert_bad_input(invoke(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                    "--set", f"model.name={tmp_path / 'net.py'}:Net"]), "[/x]")
    assert "\x1b" not in line and "\r" not in line and "\x07" not in line, repr(line)
    assert "\\x1b[2J" in line and "\\x07" in line, line
