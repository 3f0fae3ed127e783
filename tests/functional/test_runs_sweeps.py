"""The Runs screen grows what a sweep needs (issue 24 item 5): filters with comparisons (bad text
named in the info line), the sweep, tags and note columns, g grouping the rows by sweep, w asking
the app for a trial's sweep (RunsScreen.OpenSweep), N editing a run's tags and note, and l a log
y axis on the marked runs' curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual import on
from textual.app import App
from textual.widgets import Input

from tests.functional.helpers import run_async, screen_text, settle, wait_for
from tests.functional.test_runs_screen import SIZE, T0, cursor_to, make_run, names, on_runs, runs_app
from tui_train.core import events as E
from tui_train.core.config import from_dict, to_toml
from tui_train.core.run.runlog import RunLog
from tui_train.core.rundir import notes as N
from tui_train.core.rundir import runs as R
from tui_train.core.sweep import record
from tui_train.tui.screens.notes_dialog import NotesDialog
from tui_train.tui.screens.overlay_screen import OverlayScreen
from tui_train.tui.screens.runs_screen import GROUP_KEY, RunsScreen
from tui_train.tui.widgets.overlay_plot import log_ticks

SWEEP_A = "20260110-120000-sweep-digits-mlp"
SWEEP_B = "20260111-090000-sweep-mnist-cnn"


def mark_trial(run_dir: Path, sweep: Path, number: int, params: dict) -> None:
    """Make ``run_dir`` a trial of ``sweep`` (trial.json as the sweep driver writes it)."""
    record.write_json(run_dir / R.TRIAL_FILE, {"sweep": str(sweep.resolve()), "number": number, "params": params,
                                               "metric": "val_loss"})


@pytest.fixture
def sweeps(tmp_path):
    """plain (adam, lr 1e-3), two trials of sweep A (lr 0.01 adam, lr 0.1 sgd), one of sweep B (lr 0.05 sgd)."""
    root = tmp_path / "runs"
    plain = make_run(root, "20260101-000000-alpha", started=T0)
    a0 = make_run(root, "20260110-120001-digits-mlp", lr=0.01, started=T0 + 10)
    a1 = make_run(root, "20260110-120002-digits-mlp", lr=0.1, optimizer="sgd", started=T0 + 20)
    b0 = make_run(root, "20260111-090001-mnist-cnn", lr=0.05, optimizer="sgd", started=T0 + 30)
    for name in (SWEEP_A, SWEEP_B):
        (root / name).mkdir()
        (root / name / record.SWEEP_FILE).write_text("{}")
    mark_trial(a0, root / SWEEP_A, 0, {"optim.lr": 0.01})
    mark_trial(a1, root / SWEEP_A, 1, {"optim.lr": 0.1, "optim.name": "sgd"})
    mark_trial(b0, root / SWEEP_B, 0, {"optim.lr": 0.05})
    return root, plain, a0, a1, b0


def cell(screen: RunsScreen, run_dir: Path, column: str) -> str:
    keys = [c.key.value for c in screen.table.ordered_columns]
    return str(screen.table.get_row(str(run_dir.resolve()))[keys.index(column)])


async def type_filter(pilot, screen: RunsScreen, text: str) -> None:
    """Put ``text`` in the filter box (as typing does: the box has the focus then) and wait for it to apply."""
    box = screen.query_one("#runs-filter", Input)
    box.focus()
    box.value = text
    await wait_for(pilot, lambda: screen.query_text == text, what=f"the filter {text!r}")
    await settle(pilot)


@run_async
async def test_the_filter_takes_comparisons_and_names_bad_text_in_the_info_line(sweeps):
    root, plain, a0, a1, b0 = sweeps
    app = runs_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        assert cell(screen, a1, "sweep") == "#1 digits-mlp" and cell(screen, plain, "sweep") == ""
        await type_filter(pilot, screen, "lr>=0.05 optimizer=sgd")
        assert sorted(names(screen)) == sorted([a1.name, b0.name]) and "2 of 4 runs" in screen_text(app)
        await type_filter(pilot, screen, "sweep=digits-mlp optim.lr<0.05")
        assert names(screen) == [a0.name]
        await type_filter(pilot, screen, "sweep=digits-mlp lr>=fast")  # no filter: said, and the rows stay
        info = str(screen.query_one("#runs-info").render())
        assert "filter word 'lr>=fast': 'fast' is not a number" in info and "1 of 4 runs" in info
        assert names(screen) == [a0.name] and screen.filter_error
        await type_filter(pilot, screen, "sweep=digits-mlp lr>=0.05")
        assert names(screen) == [a1.name] and not screen.filter_error and "not a number" not in screen_text(app)
        await type_filter(pilot, screen, "sweep= alpha")  # KEY= : the runs that are no trial; and a plain word
        assert names(screen) == [plain.name]


@run_async
async def test_g_groups_the_rows_by_sweep_under_a_heading_each(sweeps):
    root, plain, a0, a1, b0 = sweeps
    app = runs_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        await pilot.press("g")
        await settle(pilot)
        table = screen.table
        keys = [r.key.value for r in table.ordered_rows]
        heading_b, heading_a = GROUP_KEY + str((root / SWEEP_B).resolve()), GROUP_KEY + str((root / SWEEP_A).resolve())
        assert keys == [heading_b, str(b0.resolve()), heading_a, str(a1.resolve()), str(a0.resolve()), GROUP_KEY,
                        str(plain.resolve())]  # the newest sweep first; the runs that are no trial last
        assert [str(c) for c in table.get_row(heading_a) if str(c)] == ["▾ sweep", "digits-mlp", "2 trials",
                                                                            "2026-01-10 12:00", SWEEP_A]
        assert "grouped by sweep" in screen_text(app) and [r.name for r in screen.shown] == [b0.name, a1.name, a0.name,
                                                                                            plain.name]
        while screen.sort_key != "lr":  # within each sweep: the sort
            await pilot.press("o")
        await pilot.press("O")
        await settle(pilot)
        assert [r.key.value for r in table.ordered_rows][2:5] == [heading_a, str(a0.resolve()), str(a1.resolve())]
        table.move_cursor(row=0)  # a heading: no run under the cursor, Enter and space do nothing
        assert screen.selected is None
        await pilot.press("space", "enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen) and not screen.marked
        await type_filter(pilot, screen, "optimizer=sgd")
        assert [r.key.value for r in table.ordered_rows] == [heading_b, str(b0.resolve()), heading_a, str(a1.resolve())]
        await pilot.press("escape", "g")
        await settle(pilot)
        assert not screen.grouped and not any(k.startswith(GROUP_KEY) for k in (r.key.value for r in table.ordered_rows))


class Host(App):
    """A bare app hosting the Runs screen, recording what it asks of an app."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.sweeps: list[Path] = []

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(self.root))

    @on(RunsScreen.OpenSweep)
    def _open_sweep(self, message: RunsScreen.OpenSweep) -> None:
        self.sweeps.append(message.sweep_dir)


@run_async
async def test_w_on_a_trial_or_its_heading_asks_the_app_for_its_sweep(sweeps):
    root, plain, a0, a1, _b0 = sweeps
    app = Host(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, a1)
        await pilot.press("w")
        await wait_for(pilot, lambda: app.sweeps, what="OpenSweep")
        assert app.sweeps == [(root / SWEEP_A).resolve()] and isinstance(app.sweeps[0], Path)
        cursor_to(screen, plain)
        await pilot.press("w")  # no trial: said, nothing asked
        await wait_for(pilot, lambda: any("is no trial of a sweep" in str(n.message) for n in app._notifications))
        await pilot.press("g")
        await settle(pilot)
        screen.table.move_cursor(row=0)  # sweep B's heading
        await pilot.press("w")
        await wait_for(pilot, lambda: len(app.sweeps) == 2)
        assert app.sweeps[1] == (root / SWEEP_B).resolve()
        (root / SWEEP_A / record.SWEEP_FILE).unlink()  # a sweep folder that is gone: said, nothing asked
        cursor_to(screen, a0)
        await pilot.press("w")
        await wait_for(pilot, lambda: any("its folder is gone" in str(n.message) for n in app._notifications))
        assert len(app.sweeps) == 2


@run_async
async def test_a_moved_runs_folder_still_finds_the_sweep_beside_its_trials(sweeps, tmp_path):
    root, _plain, a0, _a1, _b0 = sweeps
    mark_trial(a0, tmp_path / "elsewhere" / SWEEP_A, 0, {"optim.lr": 0.01})  # recorded where the sweep ran before
    app = Host(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, a0)
        await pilot.press("w")
        await wait_for(pilot, lambda: app.sweeps, what="OpenSweep")
        assert app.sweeps == [root / SWEEP_A]


@run_async
async def test_N_edits_the_tags_and_note_shown_literally_in_their_columns(sweeps):
    root, _plain, a0, _a1, _b0 = sweeps
    app = runs_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        cursor_to(screen, a0)
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesDialog), what="the note dialog")
        dialog = app.screen
        assert f"Tags and note of {a0.name}" in screen_text(app)
        dialog.query_one("#notes-tags", Input).value = "ok, " + "x" * (N.TAG_LIMIT + 1)
        dialog.query_one("#notes-note", Input).value = "lr [bold]too high[/bold] after epoch 2, see the curves"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, NotesDialog) and f"longer than {N.TAG_LIMIT}" in screen_text(app)  # refused in place
        dialog.query_one("#notes-tags", Input).value = "baseline, keep"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs")
        await settle(pilot)
        assert N.read_notes(a0) == N.Notes(tags=("baseline", "keep"), note="lr [bold]too high[/bold] after epoch 2, see the curves")
        assert cell(screen, a0, "tags") == "baseline,keep" and cell(screen, a0, "note") == "lr [bold]too high[/bold…"
        assert "lr [bold]too high" in screen_text(app)  # markup shown as typed, never obeyed
        await type_filter(pilot, screen, "tag=keep")
        assert names(screen) == [a0.name]
        await type_filter(pilot, screen, "curves")  # a plain word finds the whole note, not just the column
        assert names(screen) == [a0.name]
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.table.has_focus)
        cursor_to(screen, a0)
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesDialog))
        assert app.screen.query_one("#notes-tags", Input).value == "baseline keep"  # what it has, to edit
        app.screen.query_one("#notes-note", Input).value = "changed my mind"
        await pilot.press("escape")  # cancel: nothing written
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert N.read_notes(a0).note.startswith("lr [bold]")


@run_async
async def test_a_damaged_notes_file_is_shown_and_the_dialog_says_it_is_kept(sweeps):
    root, plain, *_ = sweeps
    (plain / N.NOTES_FILE).write_text("{torn")
    app = runs_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        assert cell(screen, plain, "note") == "notes.json unreadable"
        cursor_to(screen, plain)
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesDialog))
        await settle(pilot)
        assert "notes.json: not JSON" in screen_text(app) and "notes.json.bad" in screen_text(app)
        app.screen.query_one("#notes-note", Input).value = "fresh"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert N.read_notes(plain) == N.Notes(note="fresh") and (plain / "notes.json.bad").read_text() == "{torn"


def make_signed_run(root: Path, name: str, losses: list[float]) -> Path:
    """A finished run whose logged losses are ``losses`` (some may be <= 0: a custom loss)."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    log = RunLog(run_dir)
    log.open(to_toml(from_dict({"name": "signed", "data": {"dataset": "digits"}})))
    log.write(E.RunStarted(run_dir=str(run_dir), preset="signed", device="cpu", task="classification", epochs=1,
                           steps_per_epoch=len(losses), total_steps=len(losses), train_size=10, val_size=2, test_size=2,
                           num_params=1, model="mlp", hyperparameters={"lr": 1e-3}))
    for step, loss in enumerate(losses, 1):
        log.write(E.StepMetrics(step=step, epoch=0, epoch_progress=step / len(losses), loss=loss, lr=1e-3,
                                samples_per_second=1.0, accuracy=0.5, elapsed=step * 0.1))
    log.write(E.EpochMetrics(epoch=0, step=len(losses), train={"loss": 0.1}, val={"loss": -0.2, "accuracy": 0.5}, lr=1e-3,
                             seconds=1.0))
    log.close()
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "preset": "signed", "epochs_completed": 1}))
    return run_dir


@run_async
async def test_l_toggles_a_log_y_axis_for_the_loss_leaving_out_what_is_not_positive(sweeps):
    root, plain, *_ = sweeps
    signed = make_signed_run(root, "20260120-000000-signed", [1.0, 0.1, 0.0, -0.5, 0.01, 0.001])
    app = runs_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        for run in (plain, signed):
            cursor_to(screen, run)
            await pilot.press("space")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen) and app.screen.loaded.is_set(), what="the curves")
        await settle(pilot)
        overlay = app.screen
        loss, metric = overlay.plots
        linear = {name: ys for name, _, ys, _, _ in loss.drawn_lines(10_000)}
        assert min(linear[signed.name]) == -0.5 and "loss y: linear" in screen_text(app) and "log y" not in screen_text(app)
        await pilot.press("l")
        await settle(pilot)
        assert loss.log_y and not metric.log_y  # accuracy (or R², which goes below 0) stays linear
        drawn = {name: (ys, vy) for name, _, ys, _, vy in loss.drawn_lines(10_000)}
        assert drawn[signed.name] == ([1.0, 0.1, 0.01, 0.001], [])  # 0, -0.5 and the validation -0.2 left out
        assert loss.left_out == 3
        text = screen_text(app)
        assert "loss y: log" in text and "log y (3 ≤ 0 left out)" in text and "cannot draw" not in text
        await pilot.press("l")
        await settle(pilot)
        assert not loss.log_y and loss.left_out == 0 and "log y" not in screen_text(app)


def test_log_ticks_are_powers_of_ten_or_one_two_five_steps():
    assert log_ticks(-3.0, 0.0, 5) == ([-3.0, -2.0, -1.0, 0.0], ["0.001", "0.01", "0.1", "1"])
    ticks, labels = log_ticks(-0.5, 0.2, 5)  # under a decade: 0.5, 1
    assert labels == ["0.5", "1"]
    ticks, labels = log_ticks(-12.0, 6.0, 4)
    assert len(ticks) <= 4 and labels[0] == "1e-12"


@run_async
async def test_runs_filter_on_a_terminal_opens_the_screen_filtered(sweeps):
    """`tui-train runs --filter ...` on a terminal: the Runs screen opens with that filter applied
    (AppOptions.runs_query), and shows it in its box."""
    from tui_train.tui.app import build_app

    root, _plain, _a0, a1, b0 = sweeps
    app = build_app(runs_dir=root, runs_screen=True, runs_query="lr>=0.05 optimizer=sgd")
    async with app.run_test(size=SIZE) as pilot:
        screen = await on_runs(pilot)
        await wait_for(pilot, lambda: sorted(names(screen)) == sorted([a1.name, b0.name]), what="the filtered rows")
        assert screen.query_one("#runs-filter", Input).value == "lr>=0.05 optimizer=sgd"
