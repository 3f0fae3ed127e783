"""The run's plan, live, on two torchrun ranks (gloo, CPU; issue 25): breakpoints pause every rank at
the same step (a step between two of the ranks' sync points, and after an epoch's validation) as
rank 0 decides, and a shorter length ends every rank at one epoch. The ranks must agree at the end
(summary ``ranks_agree``: same step, live values and weights). Helpers: tests/e2e/test_torchrun.py."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_torchrun import ack, finish, kill_all, launch, summary, wait_endpoint
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.run.endpoint import POINTER, Connection

pytestmark = pytest.mark.slow


def paused_by_breakpoint(conn: Connection, timeout: float = 120) -> E.StatusChanged:
    deadline = time.monotonic() + timeout
    for event, _, _ in conn.events(0.05):
        if isinstance(event, E.StatusChanged) and event.cause == "breakpoint":
            return event
        assert time.monotonic() < deadline, "no breakpoint pause"
    raise AssertionError("the connection ended before a breakpoint paused the run")


def test_breakpoints_pause_every_rank_at_one_step_and_a_shorter_run_ends_them_together(tmp_path):
    proc = launch(tmp_path, "train.epochs=400", "train.log_every=5")
    try:
        run_dir = wait_endpoint(tmp_path, proc)
        conn = Connection(json.loads((run_dir / POINTER).read_text())["socket"], viewer="test")
        paused = ack(conn, C.Pause())
        start = paused.step
        at = start + 7  # not a sync point (every 5 steps): the ranks still pause exactly there
        assert isinstance(ack(conn, C.AddBreakpoint(f"step={at}")), E.CommandApplied)
        spe = 21  # 1294 samples / (32 x 2) per global batch, rounded up
        epochs = at // spe + 3
        applied = ack(conn, C.SetRunLength("epochs", epochs))
        assert isinstance(applied, E.CommandApplied) and applied.new == epochs, applied
        assert isinstance(ack(conn, C.Resume()), E.CommandApplied)
        hit = paused_by_breakpoint(conn)
        assert hit.step == at and hit.reason == f"breakpoint #1 (step={at}): step {at}"
        assert isinstance(ack(conn, C.AddBreakpoint("next-epoch")), E.CommandApplied)
        assert isinstance(ack(conn, C.Resume()), E.CommandApplied)
        hit = paused_by_breakpoint(conn)
        assert hit.step == (at // spe + 1) * spe and "epoch(s) done" in hit.reason  # at the epoch's end, after its validation
        assert isinstance(ack(conn, C.Resume()), E.CommandApplied)
        conn.close()
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            kill_all(proc)
    assert code == 0, (out[-2000:], err[-2000:])
    s = summary(tmp_path)
    assert s["status"] == "completed" and s["epochs_completed"] == epochs and s["steps"] == epochs * spe, s
    assert s["ranks_agree"] is True, s  # same step, live values and weights on both ranks
    assert "Traceback" not in err
