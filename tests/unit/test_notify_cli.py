"""``tui-train run --notify URL`` / ``--no-notify-terminal`` and a preset's ``[notify]`` table (issue 25
item 4): where the URLs go (TUI_TRAIN_NOTIFY, which the trainer process and torchrun's workers inherit),
and bad input as one line that never shows the URL."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from tui_train.core.run.notify import NOTIFY_ENV
from tui_train.tui import cli
from tui_train.tui.notify_terminal import TERMINAL_ENV


def bad_input(args: list[str]) -> str:
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    try:
        err = result.stderr
    except (ValueError, AttributeError):
        err = result.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_notify_that_is_not_a_url_is_one_line_without_it(tmp_path, monkeypatch):
    monkeypatch.delenv(NOTIFY_ENV, raising=False)
    line = bad_input(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path), "--notify", "my-secret-token"])
    assert line.startswith("tui-train: error: --notify: item 1 is not a URL") and "secret" not in line
    monkeypatch.setenv(NOTIFY_ENV, "ntfy://fine hunter2")
    line = bad_input(["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path)])
    assert line.startswith(f"tui-train: error: {NOTIFY_ENV}: item 2 is not a URL") and "hunter2" not in line
    assert not list(tmp_path.iterdir())  # refused before anything was made


def test_a_presets_malformed_notify_table_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(NOTIFY_ENV, raising=False)
    preset = tmp_path / "mine.toml"
    preset.write_text('description = "mine"\n[notify]\nurls = ["token-without-scheme"]\n')
    line = bad_input(["run", str(preset), "--headless", "--runs-dir", str(tmp_path / "runs")])
    assert "notify.urls: item 1 is not a URL" in line and "token-without" not in line
    preset.write_text('description = "mine"\n[notify]\nurl = "ntfy://x"\n')
    assert "[notify] takes one key, urls" in bad_input(["run", str(preset), "--headless", "--runs-dir", str(tmp_path / "runs")])


def test_the_urls_join_the_environment_the_trainer_inherits(tmp_path, monkeypatch):
    preset = tmp_path / "mine.toml"
    preset.write_text('description = "mine"\n[notify]\nurls = ["ntfy://from-preset", "json://both/x"]\n')
    monkeypatch.setenv(NOTIFY_ENV, "json://from-env/x")
    cli._notifications(["json://both/x", "slack://a/b/c"], str(preset), [tmp_path])
    assert os.environ[NOTIFY_ENV] == "json://from-env/x ntfy://from-preset json://both/x slack://a/b/c"
    monkeypatch.delenv(NOTIFY_ENV)
    cli._notifications(None, None, [])
    assert NOTIFY_ENV not in os.environ  # nothing given: nothing set


@pytest.mark.parametrize("off", [True, False])
def test_no_notify_terminal_turns_the_terminals_off(monkeypatch, off):
    monkeypatch.delenv(TERMINAL_ENV, raising=False)
    cli._terminal_notifications(off)
    assert os.environ.get(TERMINAL_ENV) == ("0" if off else None)


@pytest.mark.parametrize("args", [["run"], ["attach"], ["watch"]])
def test_the_options_are_in_the_help(args):
    out = CliRunner().invoke(cli.app, [*args, "--help"]).output
    assert "--no-notify-terminal" in out
    assert ("--notify" in out.replace("--no-notify-terminal", "")) == (args == ["run"])
