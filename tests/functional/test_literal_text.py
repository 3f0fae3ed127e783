"""Text from outside is shown literally (STYLE.md habit 23, issue 20 defect 1).

Every text field of every event type, a run directory's files and the user's code carry markup
(``[/x]``, ``[bold]``, ``[link=...]``, unbalanced brackets) and control characters (ANSI escapes,
BEL, CR, NUL, a C1 CSI, a bidi override). Through the dashboard, a replay opened from the Runs
screen, the Runs screen and its dialogs, the launcher and the other dialogs: nothing crashes, the
bracket text appears as it was sent, and no control character reaches the terminal.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from textual.widgets import Static
from textual.widgets._data_table import default_cell_formatter
from textual.widgets._toast import Toast

from tests.functional.helpers import screen_text, settle, tiny_config, wait_for
from tui_train.core import config as cfgmod
from tui_train.core import events as E
from tui_train.core.config import load_config, to_toml
from tui_train.core.run.headless import Printer
from tui_train.core.run.runlog import RunLog
from tui_train.core.testing import FakeTrainer
from tui_train.tui.app import build_app
from tui_train.tui.screens.confirm_dialog import ConfirmDialog
from tui_train.tui.screens.confusion_screen import ConfusionScreen
from tui_train.tui.screens.fork_dialog import ForkDialog
from tui_train.tui.screens.help_screen import HelpScreen
from tui_train.tui.screens.hyperparameter_dialog import HyperparameterDialog
from tui_train.tui.screens.launcher_screen import LauncherScreen
from tui_train.tui.screens.lr_find_screen import LrFindScreen
from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog
from tui_train.tui.screens.overlay_screen import OverlayScreen
from tui_train.tui.screens.run_picker import RunPicker
from tui_train.tui.screens.runs_screen import ConfigDiffScreen, ReplayDashboard, RunsScreen
from tui_train.tui.widgets.event_log import EventLog

MARKUP = ["[/x]", "[bold]", "[link=https://x]", "[", "]", "[/]", "[b]x[/i]", "[optim]", "[@click=app.quit]", "[$accent]",
          "[red", "x]", "\\", "[/__w/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545]", "[/src/kernel.cu:12]"]
"""Bracket texts that Rich or Textual markup would read as tags (or fail on)."""

CONTROL = ["\x1b[31m", "\x1b]0;title\x07", "\x07", "\r", "\x00", "\x08", "\x9b2J", "\u202e", "\x7f"]
"""Control characters: an ANSI colour, an OSC title, BEL, CR, NUL, BS, a C1 CSI, a bidi override, DEL."""

SIZE = (160, 50)
"""Large enough that the dashboard shows the epochs, the event log and the system panel at once.
The apps run with ``notifications=True``: a Pilot test shows no toasts otherwise, and a toast's
markup is where the failure message crashed the viewer."""

QUICK = settings(max_examples=1, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
"""A handful of examples per screen: each one builds and drives a whole app (no shrinking: a
failing example is already small, and shrinking would rebuild the app hundreds of times)."""


@st.composite
def nasty(draw) -> tuple[str, str]:
    """(the bracket part, the whole text: the bracket part then control characters)."""
    marks = "".join(draw(st.lists(st.sampled_from(MARKUP), min_size=2, max_size=4)))
    marks = "m" + marks + "[/x]"  # never empty, always one closing tag with no opener
    controls = "".join(draw(st.lists(st.sampled_from(CONTROL), min_size=1, max_size=3)))
    return marks, marks + " " + controls + " end"


EVERY = ("m" + "".join(MARKUP) + "[/x]", "m" + "".join(MARKUP) + "[/x] " + "".join(CONTROL) + " end")
"""An example with every fragment at once (run first, whatever is drawn)."""


def raw_controls(text: str) -> list[str]:
    """The control characters (Unicode Cc, bidi controls) in text that reached the screen."""
    return sorted({repr(c) for c in text if (unicodedata.category(c) == "Cc" and c != "\n")
                   or unicodedata.bidirectional(c) in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")})


def toasts(app) -> str:
    """The notifications shown, as their text."""
    return "\n".join(str(t.render()) for t in app.screen.query(Toast))


def static_text(widget: Static) -> str:
    """What a Static shows, as plain text."""
    return str(widget.render())


def cell_text(cell: object) -> str:
    """A DataTable cell as the table renders it."""
    return default_cell_formatter(cell).plain


def assert_clean(app) -> str:
    """The screen renders (no MarkupError) and holds no control character; returns its text."""
    text = screen_text(app)
    assert raw_controls(text) == [], raw_controls(text)
    return text


def toml_str(text: str) -> str:
    """A TOML basic string holding ``text`` exactly."""
    return json.dumps(text).replace("\x7f", "\\u007f")


def run(coro) -> None:
    asyncio.run(coro)


def every_event(marks: str, text: str) -> list[E.Event]:
    """One event of every type but RunFailed and RunFinished, every text field ``text``."""
    hp = {"optimizer": text, "lr": 1e-3, "momentum": 0.0, "schedule": text, text: 1.0}
    mistake = {"index": 0, "true": 0, "pred": 1, "features": [0.5, 1.5]}
    return [
        E.RunStarted(run_dir=text, preset=text, device=text, task="classification", epochs=3, steps_per_epoch=10,
                     total_steps=30, train_size=64, val_size=8, test_size=8, num_params=10, model=text,
                     hyperparameters=hp, live=("lr", "momentum")),
        E.StatusChanged(status="running", reason=text, step=0, cause="start"),
        E.StepMetrics(step=1, epoch=0, epoch_progress=0.1, loss=1.0, lr=1e-3, samples_per_second=100.0, accuracy=0.5),
        E.EpochMetrics(epoch=0, step=10, train={"loss": 1.0, "accuracy": 0.5}, val={"loss": 1.1, "accuracy": 0.4},
                       lr=1e-3, seconds=1.0, is_best=True, patience_left=2),
        E.ValidationMetrics(step=10, epoch=0, metrics={"loss": 1.1, "accuracy": 0.4}),
        E.ConfusionMatrix(step=10, epoch=0, num_classes=2, confusion=((3, 1), (2, 2)), classes=(text, marks),
                          mistakes=(mistake,)),
        E.CheckpointSaved(path=text, step=10, epoch=0, reason=text),
        E.CheckpointSaved(path=text, step=10, epoch=0, reason="manual"),
        E.CommandApplied(command=text, detail=text, step=10, key=text, old=1.0, new=2.0, origin=text),
        E.CommandApplied(command="SetHyperparameter", detail=text, step=10, key="momentum", old=0.0, new=0.5, origin=text),
        E.CommandRejected(command=text, reason=text, step=10, origin=text),
        E.CommandRejected(command="FindLearningRate", reason=text, step=10),
        E.RunWarning(message=text, step=10),
        E.RunNote(message=text, step=10),
        E.RunError(message=text, step=10),
        E.LearningRateFound(step=10, lrs=(1e-4, 1e-3, 1e-2), losses=(1.0, 0.8, 1.5), raw_losses=(1.0, 0.8, 1.5),
                            stopped=text, suggestions={"valley": 1e-3, text: 1e-3}),
        E.SystemSample(step=10, cpu_percent=50.0, rss_bytes=10**8, mem_percent=40.0, mem_total_bytes=10**9),
        E.TestMetrics(metrics={"loss": 1.0, "accuracy": 0.5}, confusion=((3, 1), (2, 2))),
        E.StatusChanged(status="paused", reason=text, step=10, cause="nonfinite"),
    ]


# --------------------------------------------------------------------------- the dashboard
@given(nasty())
@example(EVERY)
@QUICK
def test_dashboard_shows_every_event_text_literally(sample):
    marks, text = sample
    fakes: list[FakeTrainer] = []

    def factory(config, preset):
        fakes.append(FakeTrainer(config, start=False, script=every_event(marks, text)))
        return fakes[-1]

    app = build_app(config=tiny_config(), preset="tiny", runs_dir=Path(tempfile.mkdtemp()), trainer_factory=factory,
                    start_immediately=True)

    async def drive():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            # the non-finite pause asks what to do, with the engine's reason as it was sent
            await wait_for(pilot, lambda: isinstance(app.screen, NonFiniteDialog), what="the non-finite dialog")
            await settle(pilot)
            shown = "\n".join(static_text(s) for s in app.screen.query(Static))
            assert marks in shown
            assert_clean(app)
            await pilot.press("escape")  # stay paused: a notification says so
            await wait_for(pilot, lambda: app.screen is app.dashboard, what="back on the dashboard")

            fakes[0].emit(E.RunFailed(message=f"RuntimeError: {text}", traceback=text, traceback_path=text))
            await wait_for(pilot, lambda: app.status == "failed", what="the failure")
            await settle(pilot)
            await wait_for(pilot, lambda: "Run failed" in toasts(app), what="the failure's notification")
            assert f"RuntimeError: {marks}" in toasts(app)
            assert raw_controls(toasts(app)) == []
            log = app.dashboard.query_one(EventLog)
            assert any(marks in line for line in log.lines_text)
            assert all(raw_controls(line) == [] for line in log.lines_text)
            screen = assert_clean(app)
            assert "FAILED" in screen
            assert app.is_running  # the viewer survived

    run(drive())


# --------------------------------------------------------------------------- the Runs screen and a replay
def write_run(root: Path, name: str, marks: str, text: str, *, failed: bool, description: str) -> Path:
    """A run directory as the engine writes it, every text in it ``text`` (a failure's message too)."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    cfg = cfgmod.replace(load_config("digits-mlp"), description=description)
    log = RunLog(run_dir)
    log.open(to_toml(cfg))
    for ev in every_event(marks, text)[:-1]:  # not the non-finite pause: the run ends
        log.write(ev)
    status = "failed" if failed else "completed"
    summary = {"status": status, "reason": text, "preset": text, "epochs_completed": 1, "epochs_planned": 3, "steps": 10,
               "wall_seconds": 3.0, "best": {"metric": text, "value": 1.1, "epoch": 0}, "test": {"accuracy": text},
               "interventions": 1, "run_dir": str(run_dir), "hyperparameters": {"lr": 1e-3, "batch_size": 16,
                                                                                "optimizer": text, "schedule": text},
               "parent": {"run_dir": str(root / text), "step": 3}}
    log.write(E.StatusChanged(status=status, reason=text, step=10, cause="failure" if failed else "end"))
    if failed:
        log.write(E.RunFailed(message=f"RuntimeError: {text}", traceback=text, traceback_path=text, summary=summary))
    else:
        log.write(E.RunFinished(status=status, summary=summary, run_dir=text))
    log.close()
    log.write_summary(summary)
    return run_dir


@given(nasty())
@example(EVERY)
@QUICK
def test_runs_screen_and_replay_show_file_texts_literally(sample):
    marks, text = sample
    root = Path(tempfile.mkdtemp()) / "runs"
    # folder names: brackets (a file name can hold anything but / and NUL)
    write_run(root, "20260101-000000-" + marks.replace("/", "|"), marks, text, failed=True, description=text)
    write_run(root, "20260102-000000-ok", marks, text, failed=False, description="plain")
    app = build_app(runs_dir=root, runs_screen=True)

    async def drive():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.reloads, what="the runs")
            await settle(pilot)
            runs = app.screen
            cells = [cell_text(c) for i in range(runs.table.row_count) for c in runs.table.get_row_at(i)]
            assert any(marks in c for c in cells)  # preset, optimizer, schedule, parent
            assert any(marks.replace("/", "|") in c for c in cells)  # the folder's name
            assert all(raw_controls(c) == [] for c in cells)
            assert_clean(app)

            # c: where the configs differ (the description: markup and control characters)
            await pilot.press("space", "space", "c")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfigDiffScreen), what="the config diff")
            await settle(pilot)
            assert marks in assert_clean(app).replace("\n", "") or marks[:20] in assert_clean(app)
            await pilot.press("escape")
            # v: their curves; the legend names them
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen) and app.screen.loaded.is_set(), what="curves")
            await settle(pilot)
            assert_clean(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back")

            # x: the question names the run as it is
            failed = next(r for r in runs.shown if r.status == "failed")
            runs.table.move_cursor(row=runs.shown.index(failed))
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete question")
            await settle(pilot)
            assert any(marks.replace("/", "|") in static_text(s) for s in app.screen.query(Static))
            assert_clean(app)
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back")

            # Enter: the failed run is replayed, its failure shown as it was sent
            runs.table.move_cursor(row=runs.shown.index(failed))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ReplayDashboard) and app.screen.status == "failed",
                           what="replay")
            await settle(pilot)
            await wait_for(pilot, lambda: "Run failed" in toasts(app), what="the failure's notification")
            assert f"RuntimeError: {marks}" in toasts(app)
            log = app.screen.query_one(EventLog)
            assert any(marks in line for line in log.lines_text)
            assert "FAILED" in assert_clean(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs")
            assert_clean(app)

    run(drive())


# --------------------------------------------------------------------------- the launcher and the dialogs
@given(nasty())
@example(EVERY)
@QUICK
def test_launcher_and_dialogs_show_texts_literally(sample):
    marks, text = sample
    presets = Path(tempfile.mkdtemp())
    (presets / "brackets[1].toml").write_text(
        f"name = {toml_str(marks)}\ndescription = {toml_str(text)}\n[data]\ndataset = \"digits\"\n", encoding="utf-8")
    app = build_app(runs_dir=presets / "runs", presets_dirs=[presets])

    async def drive():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen), what="the launcher")
            launcher = app.screen
            launcher._select("brackets[1]")
            await settle(pilot)
            assert marks in static_text(launcher.query_one("#preset-description", Static))
            assert "brackets[1]" in screen_text(app)
            assert_clean(app)

            # why the last run did not start, from the engine (as after n on a refused run's dashboard)
            app.last_config, app.last_preset = tiny_config(), "tiny"
            app.show_launcher(f"not started: {text}")
            await wait_for(pilot, lambda: isinstance(app.screen, LauncherScreen) and app.screen is not launcher)
            await settle(pilot)
            assert f"not started: {marks}" in static_text(app.screen.query_one("#launch-error", Static))
            assert_clean(app)

            # the fork dialog keeps the brackets of what was typed
            app.push_screen(ForkDialog(None, 3))
            await wait_for(pilot, lambda: isinstance(app.screen, ForkDialog))
            app.screen.query_one("#fork-input").value = "[optim] lr=1"
            await pilot.press("enter")
            await settle(pilot)
            assert "[optim]" in static_text(app.screen.query_one("#fork-error", Static))
            assert_clean(app)
            app.pop_screen()

            # the LR range test: where it runs, why it failed (on the screen and in a notification)
            screen = LrFindScreen(text, "put it somewhere")
            app.push_screen(screen)
            await wait_for(pilot, lambda: app.screen is screen)
            screen.show_error(text)
            screen.action_apply()
            await settle(pilot)
            assert marks in "\n".join(static_text(s) for s in screen.query(Static))
            await wait_for(pilot, lambda: marks in toasts(app), what="the notification")
            assert_clean(app)
            app.pop_screen()

            # a live run's name in the picker, class names on the confusion screen, values in the h dialog
            for dialog in (RunPicker([Path("/runs") / marks.replace("/", "|")]),
                           ConfusionScreen(E.ConfusionMatrix(step=1, epoch=0, num_classes=2, confusion=((1, 0), (0, 1)),
                                                             classes=(text, marks)), "classification"),
                           HyperparameterDialog({"momentum": text}), HelpScreen(),
                           NonFiniteDialog(text), ConfirmDialog(text, text)):
                app.push_screen(dialog)
                await wait_for(pilot, lambda d=dialog: app.screen is d)
                await settle(pilot)
                assert raw_controls(screen_text(app)) == [], dialog
                app.pop_screen()

    run(drive())


# --------------------------------------------------------------------------- headless
@given(nasty())
@example(EVERY)
@QUICK
def test_headless_printer_writes_no_control_characters(sample):
    import io

    marks, text = sample
    out = io.StringIO()
    printer = Printer(out)
    for ev in every_event(marks, text):
        printer(ev)
    printer(E.RunFailed(message=text, traceback=text, traceback_path=text))
    lines = out.getvalue().split("\n")
    assert any(marks in line for line in lines)
    assert all(raw_controls(line) == [] for line in lines)


# --------------------------------------------------------------------------- the real engine
BOOM = '''
import torch


class Boom(torch.nn.Module):
    """Raises in its third training forward, as a CUDA kernel's assertion would."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("CUDA error at [/src/kernel.cu:12] bad thing")
        return self.lin(x.flatten(1))
'''


def test_real_engine_user_error_with_brackets_is_shown_literally(tmp_path):
    import tui_train.core.train.engine as engine

    model = tmp_path / "boom_model.py"
    model.write_text(BOOM, encoding="utf-8")
    cfg = load_config("digits-mlp", overrides=[
        f'model.name="{model}:Boom"', "train.epochs=2", "train.log_every=1", "train.device=cpu", "train.num_threads=1",
        "checkpoint.save_best=false"])
    app = build_app(config=cfg, preset="boom", runs_dir=tmp_path / "runs", start_immediately=True,
                    trainer_factory=lambda config, preset: engine.Trainer(config, runs_dir=tmp_path / "runs", preset=preset))

    async def drive():
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for(pilot, lambda: app.status == "failed", timeout=60, what="the failure")
            await settle(pilot)
            await wait_for(pilot, lambda: "Run failed" in toasts(app), what="the failure's notification")
            assert "CUDA error at [/src/kernel.cu:12] bad thing" in toasts(app)
            log = app.dashboard.query_one(EventLog)
            assert any("[/src/kernel.cu:12]" in line for line in log.lines_text)
            assert "FAILED" in assert_clean(app)
            assert app.is_running

    run(drive())
