"""Snapshots of the dashboard fed by the scripted fake trainer (fixed data: no clocks, no tmp paths).

Update after an intended visual change: pytest tests/functional/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from tests.functional.helpers import fake_app, settle, wait_for
from tui_train.core import events as E
from tui_train.core.testing import demo_script


def _run_before(app, fakes, final_status: str | None = None):
    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: fakes and fakes[0].started.is_set(), what="script emitted")
        if final_status:
            await wait_for(pilot, lambda: app.status == final_status, what=final_status)
        await wait_for(pilot, lambda: app.dashboard is not None and app.dashboard.query("EpochTable").first().row_count == 3)
        await settle(pilot)
    return run_before


def test_dashboard_running_120x40(snap_compare, tmp_path):
    app, fakes = fake_app(tmp_path, script=demo_script())
    assert snap_compare(app, terminal_size=(120, 40), run_before=_run_before(app, fakes))


def test_dashboard_finished_80x24(snap_compare, tmp_path):
    script = demo_script() + [E.TestMetrics(metrics={"loss": 0.0912, "accuracy": 0.9721})]
    app, fakes = fake_app(tmp_path, script=script, auto_finish=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_run_before(app, fakes, "completed"))


def test_dashboard_regression_100x30(snap_compare, tmp_path):
    app, fakes = fake_app(tmp_path, task="regression", script=demo_script(task="regression"))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_run_before(app, fakes))
