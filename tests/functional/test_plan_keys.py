"""The dashboard's keys for the run's plan (issue 25): E changes the length (with the LR schedule's
policy), p adds and clears breakpoints; the header and the progress follow the engine's events."""

from __future__ import annotations

from textual.widgets import Input, Select, Static

from tests.functional.helpers import fake_app, run_async, screen_text, settle, wait_for
from tui_train.core import commands as C
from tui_train.tui.screens.breakpoints_dialog import BreakpointsDialog, parse_breakpoint_line
from tui_train.tui.screens.length_dialog import LengthDialog, parse_length
from tui_train.tui.widgets.run_header import RunHeader
from tui_train.tui.widgets.run_progress import RunProgress

SIZE = (120, 40)


def header(app) -> str:
    return str(app.dashboard.query_one(RunHeader).query_one("#run-info", Static).render())


async def started(pilot, fakes):
    await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and pilot.app.status == "running", what="run start")


def test_the_dialogs_parse_what_the_engine_takes():
    assert parse_length("epochs", " 30 ") == 30 and parse_length("max_steps", "0") == 0
    for key, text, why in [("epochs", "0", ">= 1"), ("epochs", "2.5", "whole number"), ("lr", "3", "not a length")]:
        try:
            parse_length(key, text)
        except ValueError as e:
            assert why in str(e)
        else:
            raise AssertionError((key, text))
    assert parse_breakpoint_line("val_accuracy >= 0.98") == C.AddBreakpoint("val_accuracy >= 0.98")
    assert parse_breakpoint_line("next-epoch") == C.AddBreakpoint("next-epoch")
    assert parse_breakpoint_line("clear") == C.ClearBreakpoints(0)
    assert parse_breakpoint_line("clear #3") == C.ClearBreakpoints(3)


@run_async
async def test_e_changes_the_length_and_p_adds_and_clears_breakpoints(tmp_path):
    app, fakes = fake_app(tmp_path, epochs=3, steps_per_epoch=100)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        fake = fakes[0]

        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, LengthDialog))
        assert "stretch (the run default)" in screen_text(app)
        app.screen.query_one("#length-value", Input).value = "0"
        await pilot.press("enter")
        await settle(pilot)
        assert ">= 1" in str(app.screen.query_one("#length-error", Static).render()) and not fake.commands
        app.screen.query_one("#length-policy", Select).value = "keep"
        app.screen.query_one("#length-value", Input).value = "9"
        app.screen.query_one("#length-value", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: fake.commands == [C.SetRunLength("epochs", 9, "keep")])
        progress = app.dashboard.query_one(RunProgress)
        await wait_for(pilot, lambda: (progress.epochs, progress.total_steps) == (9, 900), what="the new plan")

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, BreakpointsDialog))
        assert "none pending" in screen_text(app)
        await pilot.press(*"epoch=2", "enter")
        await wait_for(pilot, lambda: fake.commands[-1] == C.AddBreakpoint("epoch=2"))
        await wait_for(pilot, lambda: "⏸ #1 epoch=2" in header(app), what="the header's breakpoints")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, BreakpointsDialog))
        assert "#1  epoch=2" in screen_text(app)
        await pilot.press(*"lunch", "enter")
        await settle(pilot)
        assert "not a target expression" in str(app.screen.query_one("#bp-error", Static).render())
        app.screen.query_one("#bp-input", Input).value = "clear"
        await pilot.press("enter")
        await wait_for(pilot, lambda: fake.commands[-1] == C.ClearBreakpoints(0))
        await wait_for(pilot, lambda: "⏸" not in header(app), what="no breakpoints pending")


@run_async
async def test_n_on_the_dashboard_edits_the_runs_tags_and_note(tmp_path):
    """N (issue 24: 'a key in the dashboard and the Runs screen'): the run's notes.json, written by
    core.rundir.notes; text from outside stays literal, a bad tag is refused in the dialog."""
    from tui_train.core.rundir.notes import read_notes
    from tui_train.tui.screens.notes_dialog import NotesDialog

    run_dir = tmp_path / "runs" / "20260101-000000-tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text("")
    app, fakes = fake_app(tmp_path, epochs=3, steps_per_epoch=100, run_dir=str(run_dir))
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, fakes)
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesDialog))
        app.screen.query_one("#notes-tags", Input).value = "baseline " + "x" * 200  # longer than a tag may be
        app.screen.query_one("#notes-tags", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, NotesDialog)
        assert "longer than" in str(app.screen.query_one("#notes-error", Static).render())
        app.screen.query_one("#notes-tags", Input).value = "baseline warm"
        app.screen.query_one("#notes-note", Input).value = "lr [/bold] too high?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, NotesDialog))
    notes = read_notes(run_dir)
    assert notes.tags == ("baseline", "warm") and notes.note == "lr [/bold] too high?"
