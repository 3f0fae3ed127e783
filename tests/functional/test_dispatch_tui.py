"""Every event type reaches every TUI consumer: the event log, the dashboard and the app.

Each of them dispatches through a table built with ``core.events.exhaustive``, so a new event type
that one of them forgets fails here (and at its construction), instead of being skipped silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest

from tests.functional.helpers import fake_app, run_async, settle, wait_for
from tui_train.core import events as E
from tui_train.core import testing
from tui_train.tui.app import build_app
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.nonfinite_dialog import NonFiniteDialog
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.metric_plot import MetricPlot

PLAIN: dict[type, object] = {str: "x", int: 1, float: 0.5, bool: False, dict: {}, tuple: (), list: []}
"""A value of each field type a plain event holds."""

NAMED: dict[str, object] = {"status": "running", "task": "classification", "reason": "manual",
                            "path": "runs/x/checkpoints/step-1.pt", "run_dir": "runs/x"}
"""Fields whose value has to make sense (a status, a task)."""


def _plain_type(hint: object) -> type:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def one_of_each() -> list[E.Event]:
    """An instance of every type in ``E.EVENT_TYPES`` (required fields filled by type), then a few
    with values the consumers treat specially: a non-finite pause, a finished and a failed run."""
    out: list[E.Event] = []
    for cls in E.EVENT_TYPES:
        hints = typing.get_type_hints(cls)
        required = [f for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        out.append(cls(**{f.name: NAMED.get(f.name, PLAIN[_plain_type(hints[f.name])]) for f in required}))
    if hasattr(testing, "sample_events"):  # realistic values, where core provides them
        out += testing.sample_events()
    return out + [
        E.StatusChanged(status="paused", reason="non-finite loss (nan) at step 3", step=3, cause="nonfinite"),
        E.RunFinished(status="completed", summary={"status": "completed"}, run_dir="runs/x"),
        E.RunFailed(message="RuntimeError: boom", traceback="Traceback...\nRuntimeError: boom", traceback_path=""),
    ]


def test_samples_cover_every_event_type():
    assert {type(ev) for ev in one_of_each()} == set(E.EVENT_TYPES)


def test_event_log_writes_a_line_for_every_type_but_steps_system_samples_and_scalars():
    log = EventLog()
    for ev in one_of_each():
        before = len(log.lines_text)
        log.log_event(ev)
        if type(ev) is E.StepMetrics:
            assert len(log.lines_text) == before, "no log line per step (the hot path)"
        elif type(ev) is E.SystemSample:
            assert len(log.lines_text) == before, "the system panel shows these, not a line every 2 s"
        elif type(ev) is E.Scalars:
            assert len(log.lines_text) == before, "a loop's own series, at the log interval: plotted, not logged"
        else:
            assert len(log.lines_text) > before, ev.kind


@run_async
async def test_dashboard_and_app_take_every_type(tmp_path):
    app, fakes = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set() and app.status == "running", what="run start")
        handled = app.events_handled
        samples = one_of_each()
        for ev in samples:
            fakes[0].emit(ev)
        await wait_for(pilot, lambda: app.events_handled >= handled + len(samples), what="every sample drained")
        await settle(pilot)
        lines = app.dashboard.query_one(EventLog).lines_text
        assert not [line for line in lines if "display error" in line]
        assert "run FAILED: RuntimeError: boom" in "\n".join(lines)
        assert app.status == "failed"
        assert app.run_dir == [ev.run_dir for ev in samples if type(ev) is E.RunStarted][-1]
        # the non-finite pause is told by its cause (its marker); its dialog is not shown, as the run
        # ended in the same batch (an attached viewer replays such histories: test_leaving.py)
        assert "nonfinite" in [kind for _, kind in app.dashboard.query_one("#loss-plot", MetricPlot).markers]
        assert not isinstance(app.screen, NonFiniteDialog)
        assert not app.run_active and not app.dashboard.run_active
        app.exit()
    # and the app's own reading of what is left in the queue after it exited
    app.status = "running"
    for ev in one_of_each():
        fakes[0].emit(ev)
    app.drain_after_exit()
    assert app.status == "failed"


def test_a_table_missing_a_type_raises():
    table = {t: E.ignore for t in E.EVENT_TYPES if t is not E.RunNote}
    with pytest.raises(TypeError, match=r"EventLog: .*missing: RunNote"):
        E.exhaustive(table, "EventLog")


def test_every_consumer_refuses_to_start_without_a_new_type(monkeypatch, tmp_path: Path):
    @dataclasses.dataclass(frozen=True)
    class SomethingNew(E.Event):
        """An event type no consumer knows yet."""

    monkeypatch.setattr(E, "EVENT_TYPES", (*E.EVENT_TYPES, SomethingNew))
    for owner, build in (("EventLog", EventLog), ("DashboardScreen", lambda: DashboardScreen("tiny", submit=lambda command: None)),
                         ("RunSession", lambda: build_app(runs_dir=tmp_path))):  # the app's session folds the events
        with pytest.raises(TypeError, match=rf"{owner}: .*missing: SomethingNew"):
            build()
