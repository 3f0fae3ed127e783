"""A run's history read back from its run directory: complete, in order, thinned without losing spikes."""

from __future__ import annotations

import math
import shutil

from tui_train.core import events as E
from tui_train.core.run.runlog import OTHER_METRICS_NAME, STEPS_NAME, RunLog
from tui_train.core.rundir.history import read_history, read_records


def write_run(run_dir, n_steps: int, spike_at: int | None = None, nan_at: int | None = None) -> None:
    log = RunLog(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log.open("")
    log.write(E.RunStarted(run_dir=str(run_dir), preset="p", device="cpu", task="classification", epochs=1,
                           steps_per_epoch=n_steps, total_steps=n_steps, train_size=1, val_size=1, test_size=1,
                           num_params=1, model="m", live=("lr",)))
    for step in range(1, n_steps + 1):
        loss = 1.0 / step + 1e-9 * step  # distinct values: no ties
        if step == spike_at:
            loss = 50.0
        if step == nan_at:
            loss = math.nan
        log.write(E.StepMetrics(step=step, epoch=0, epoch_progress=step / n_steps, loss=loss, lr=1e-3,
                                samples_per_second=100.0, accuracy=0.5, elapsed=step * 0.01))
        if step == n_steps // 2:
            log.write(E.CommandApplied(command="Pause", detail="paused", step=step, origin="tui-1"))
    log.write(E.EpochMetrics(epoch=0, step=n_steps, train={"loss": 0.1}, val={}, lr=1e-3, seconds=1.0))
    log.close()


def test_small_history_is_every_event_in_order_from_either_source(tmp_path):
    write_run(tmp_path / "run", 50)
    fast = read_history(tmp_path / "run")
    shutil.copytree(tmp_path / "run", tmp_path / "legacy")
    (tmp_path / "legacy" / STEPS_NAME).unlink()  # a run directory from before steps.f64: JSON only
    slow = read_history(tmp_path / "legacy")
    assert fast == slow
    shutil.copytree(tmp_path / "run", tmp_path / "no-index")
    (tmp_path / "no-index" / OTHER_METRICS_NAME).unlink()  # steps.f64 but no epochs.jsonl: metrics.jsonl is searched
    assert read_history(tmp_path / "no-index") == fast
    kinds = [e.kind for e in fast]
    assert kinds[0] == "RunStarted" and kinds[-1] == "EpochMetrics" and kinds.count("StepMetrics") == 50
    assert kinds.index("CommandApplied") == 1 + 25  # after the 25th step, where it was written
    assert [r["seq"] for r in read_records(tmp_path / "run")] == list(range(1, 54))


def test_upto_seq_stops_where_the_live_stream_starts(tmp_path):
    write_run(tmp_path / "run", 20)
    events = read_history(tmp_path / "run", upto_seq=11)
    assert len(events) == 11 and [e.step for e in events[1:]] == list(range(1, 11))


def test_a_long_history_is_thinned_but_keeps_spikes_the_last_step_and_every_other_event(tmp_path):
    write_run(tmp_path / "run", 30_000, spike_at=12_345, nan_at=23_456)
    shutil.copytree(tmp_path / "run", tmp_path / "legacy")
    (tmp_path / "legacy" / STEPS_NAME).unlink()
    for run in ("run", "legacy"):
        events = read_history(tmp_path / run, step_limit=600)
        steps = [e for e in events if isinstance(e, E.StepMetrics)]
        assert 200 <= len(steps) <= 700, (run, len(steps))
        kept = {e.step for e in steps}
        assert {12_345, 23_456, 30_000} <= kept, run  # the spike, the NaN and the latest value survive
        assert [e.step for e in steps] == sorted(kept)
        assert any(isinstance(e, E.CommandApplied) for e in events) and isinstance(events[-1], E.EpochMetrics)
    fast = [e.step for e in read_history(tmp_path / "run", step_limit=600) if isinstance(e, E.StepMetrics)]
    slow = [e.step for e in read_history(tmp_path / "legacy", step_limit=600) if isinstance(e, E.StepMetrics)]
    assert fast == slow  # both sources thin the same way


def test_a_torn_last_line_and_record_are_skipped(tmp_path):
    write_run(tmp_path / "run", 10)
    with open(tmp_path / "run" / "metrics.jsonl", "ab") as f:
        f.write(b'{"event": "StepMetrics", "step": 11, "lo')  # the trainer is writing it
    with open(tmp_path / "run" / STEPS_NAME, "ab") as f:
        f.write(b"\x00" * 20)
    events = read_history(tmp_path / "run")
    assert [e.step for e in events if isinstance(e, E.StepMetrics)] == list(range(1, 11))
    log = RunLog(tmp_path / "run")  # a resumed run appends after the last complete record
    log.open("")
    assert log.seq == 13
    log.close()
    assert (tmp_path / "run" / STEPS_NAME).stat().st_size % (9 * 8) == 0
