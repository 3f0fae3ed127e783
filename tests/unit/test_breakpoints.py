"""Breakpoints (issue 25 item 2): each kind on one process pauses the run where it says, with cause
'breakpoint', once; they are listed, cleared, announced, kept by checkpoints, and checked on the
wire. (Two torchrun ranks: tests/e2e/test_torchrun_plan.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tui_train.core import breakpoints as B
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import protocol as P
from tui_train.core.config import from_dict
from tui_train.core.rundir.waiting import read_breakpoints
from tui_train.core.state import TrainingState
from tui_train.core.train.engine import Trainer


def config(epochs: int = 4, **extra):
    """digits, a 64-16-10 MLP, plain SGD: seconds a run on one thread."""
    raw = {"name": "bp", "data": {"dataset": "digits", "batch_size": 128}, "model": {"name": "mlp", "hidden": [16]},
           "optim": {"name": "sgd", "lr": 0.1}, "train": {"epochs": epochs, "log_every": 1, "device": "cpu", "num_threads": 1},
           "checkpoint": {"save_best": False}}
    for section, values in extra.items():
        raw[section] = {**raw.get(section, {}), **values}
    return from_dict(raw)


RESUME = (C.Resume(),)


def run(trainer: Trainer, *commands: C.Command, at: int = 2, on_pause=RESUME) -> list[E.Event]:
    """Run to the end: ``commands`` when step ``at`` is reported; ``on_pause`` at each breakpoint's pause."""
    events: list[E.Event] = []

    def sink(ev: E.Event) -> None:
        events.append(ev)
        if isinstance(ev, E.StepMetrics) and ev.step == at:
            for c in commands:
                trainer.submit(c)
        if isinstance(ev, E.StatusChanged) and ev.cause == "breakpoint":
            for c in on_pause:
                trainer.submit(c)

    trainer.run(sink=sink)
    assert isinstance(events[-1], E.RunFinished), events[-1]
    return events


def pauses(events) -> list[E.StatusChanged]:
    return [e for e in events if isinstance(e, E.StatusChanged) and e.cause == "breakpoint"]


def pending(events) -> list[tuple]:
    return [tuple(b["spec"] for b in e.pending) for e in events if isinstance(e, E.BreakpointsChanged)]


def last_before(events, pause: E.StatusChanged, kind) -> E.Event:
    i = events.index(pause)
    return next(e for e in reversed(events[:i]) if isinstance(e, kind))


# -- the grammar, pure ------------------------------------------------------------------------------
def test_the_forms_and_what_is_refused():
    assert B.parse("epoch=3") == B.Breakpoint("epoch", 3)
    assert B.parse(" step = 500 ").spec == "step=500"
    assert B.parse("next-epoch", epoch=4) == B.Breakpoint("epoch", 5)  # the epoch under way (0-based 4) is the 5th
    assert B.parse("plateau=2").spec == "plateau=2"
    assert B.parse("val_accuracy >= 0.98").spec == "val_accuracy >= 0.98"
    for bad, why in [("epoch=0", "at least 1"), ("step=1.5", "whole number"), ("", "a breakpoint is"),
                     ("val_accuracy <= 0.9", "use >="), ("lunch", "not a target expression"), ("x" * 101, "at most 100"),
                     ("val_r2 >= 0.5", "not recorded for a classification task")]:
        with pytest.raises(B.BreakpointError, match=why):
            B.parse(bad, "classification")
    st = TrainingState(epoch=2, step=30)
    assert B.add(st, "epoch=2")[0] == "epoch=2: 2 epoch(s) are done already"
    assert B.add(st, "step=30")[0] == "step=30: 30 step(s) are done already"
    assert B.add(st, "next-epoch") == ("", {"breakpoints": [{"id": 1, "spec": "epoch=3"}], "breakpoint_ids": 1},
                                       "breakpoint #1: epoch=3")
    st.breakpoints, st.breakpoint_ids = [{"id": 4, "spec": "epoch=9"}], 4
    assert B.clear(st, 2)[0] == "no breakpoint #2 (pending: #4)"
    assert B.clear(st, 4) == ("", {"breakpoints": []}, "cleared breakpoint #4: epoch=9")
    assert B.clear(TrainingState(), 0) == ("", {"breakpoints": []}, "no breakpoints to clear")
    st.breakpoints = [{"id": i, "spec": "epoch=9"} for i in range(B.MAX_BREAKPOINTS)]
    assert "32 breakpoints are pending already" in B.add(st, "epoch=10")[0]


def test_the_wire_carries_breakpoints_and_refuses_malformed_ones():
    ev = E.BreakpointsChanged(step=3, pending=({"id": 1, "spec": "epoch=2"},))
    back, _ = P.event_from_message(P.decode(P.encode(P.event_message(ev, 9)), limit=P.MAX_SERVER_LINE,
                                              allowed_types=P.SERVER_TYPES))
    assert back == ev
    for pending, why in [([{"id": 1}], "a breakpoint is {id, spec}"), ([{"id": 0, "spec": "x"}], "id must be an integer"),
                         ([{"id": 1, "spec": "a\x1b[31m"}], "control character"), ([1], "must be a JSON object"),
                         ([{"id": i + 1, "spec": "s"} for i in range(B.MAX_BREAKPOINTS + 1)], "over the limit")]:
        msg = {"v": 1, "type": "event", "seq": 1, "event": {"event": "BreakpointsChanged", "step": 0, "pending": pending}}
        with pytest.raises(P.ProtocolError, match=why):
            P.event_from_message(msg)
    assert "breakpoint" in E.CAUSES


# -- each kind, live -------------------------------------------------------------------------------
def test_epoch_and_next_epoch_pause_after_that_epochs_validation_once(tmp_path):
    t = Trainer(config(4), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("epoch=3"), C.AddBreakpoint("next-epoch"))
    hit = pauses(events)
    assert [p.reason for p in hit] == ["breakpoint #2 (epoch=1): 1 epoch(s) done", "breakpoint #1 (epoch=3): 3 epoch(s) done"]
    spe = t.steps_per_epoch
    assert [p.step for p in hit] == [spe, 3 * spe] and all(p.status == "paused" for p in hit)
    assert last_before(events, hit[1], E.EpochMetrics).epoch == 2 and last_before(events, hit[1], E.EpochMetrics).val
    assert pending(events) == [("epoch=3",), ("epoch=3", "epoch=1"), ("epoch=3",), ()]
    # a pause like any other: the next event after it is the Resume's, and the run goes on to its end
    i = events.index(hit[0])
    assert isinstance(events[i + 1], E.BreakpointsChanged) and events[i + 2].reason == "resumed"
    assert events[-1].summary["status"] == "completed" and events[-1].summary["epochs_completed"] == 4
    assert read_breakpoints(t.run_dir) == ()


def test_step_pauses_at_that_step(tmp_path):
    t = Trainer(config(2), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("step=13"))
    (hit,) = pauses(events)
    assert hit.step == 13 and hit.reason == "breakpoint #1 (step=13): step 13"
    steps = [e.step for e in events if isinstance(e, E.StepMetrics)]
    assert steps[steps.index(13) + 1] == 14  # no step between the pause and the resume


def test_plateau_pauses_when_the_monitored_metric_stops_improving(tmp_path):
    # min_delta 10: no validation after the first counts as an improvement
    t = Trainer(config(6, early_stopping={"min_delta": 10.0}), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("plateau=2"))
    (hit,) = pauses(events)
    assert hit.reason == "breakpoint #1 (plateau=2): val_loss has not improved for 2 validation(s)"
    assert last_before(events, hit, E.EpochMetrics).epoch == 2  # best at epoch 0, then 2 without improvement


def test_a_metric_condition_pauses_where_it_is_reached_and_is_one_shot(tmp_path):
    t = Trainer(config(6), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("val_accuracy >= 0.5"), C.AddBreakpoint("train_loss <= 100"), C.AddBreakpoint("epoch=1"))
    first, second = pauses(events)  # two reached at the first epoch's end: one pause names both, and both go
    assert first.reason.startswith("breakpoint #2 (train_loss <= 100): train_loss ") and "; breakpoint #3 (epoch=1)" in first.reason
    assert first.step == t.steps_per_epoch
    assert second.reason.startswith("breakpoint #1 (val_accuracy >= 0.5): val_accuracy ")
    epoch = last_before(events, second, E.EpochMetrics)
    assert epoch.val["accuracy"] >= 0.5 and f"{epoch.val['accuracy']:.4g} >= 0.5" in second.reason
    earlier = [e for e in events if isinstance(e, E.EpochMetrics) and e.epoch < epoch.epoch]
    assert earlier and all(e.val["accuracy"] < 0.5 for e in earlier)  # not before it was reached
    assert pending(events)[-2:] == [("val_accuracy >= 0.5",), ()]


def test_what_a_run_cannot_reach_is_refused_with_the_reason(tmp_path):
    t = Trainer(config(2, data={"val_fraction": 0.0}), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("val_accuracy >= 0.9"), C.AddBreakpoint("plateau=3"), C.AddBreakpoint("val_r2 >= 0.5"),
                 C.AddBreakpoint("step=1"), C.ClearBreakpoints(7), C.AddBreakpoint("train_accuracy >= 0.1"), C.ClearBreakpoints())
    reasons = [e.reason for e in events if isinstance(e, E.CommandRejected)]
    assert reasons == ["val_accuracy >= 0.9: this run has no validation split (data.val_fraction = 0)",
                       "plateau=3: this run has no validation split (data.val_fraction = 0)",
                       reasons[2], "step=1: 2 step(s) are done already", "no breakpoint #7 (pending: none)"]
    assert "val_r2 is not recorded for a classification task" in reasons[2]
    details = [e.detail for e in events if isinstance(e, E.CommandApplied)]
    assert details == ["breakpoint #1: train_accuracy >= 0.1", "cleared 1 breakpoint(s)"] and not pauses(events)


def test_pending_breakpoints_are_saved_in_checkpoints_and_a_resume_keeps_them(tmp_path):
    t = Trainer(config(3), runs_dir=tmp_path / "a")
    events: list[E.Event] = []
    stop_at = []

    def sink(ev: E.Event) -> None:
        events.append(ev)
        if isinstance(ev, E.StepMetrics) and ev.step == 2:
            t.submit(C.AddBreakpoint("epoch=2"))
            t.submit(C.AddBreakpoint("step=9999"))
            t.submit(C.Interrupt("test"))
            stop_at.append(ev.step)

    t.run(sink=sink)
    assert events[-1].status == "interrupted"
    folder = tmp_path / "b" / "checkpoints"
    folder.mkdir(parents=True)
    ck = next(Path(t.run_dir, "checkpoints").glob("*-interrupt.pt"))
    shutil.copy(ck, folder / ck.name)
    again = Trainer(config(3), runs_dir=tmp_path / "unused", resume=folder / ck.name)
    events = run(again)
    started = events[0]
    assert isinstance(started, E.RunStarted) and [b["spec"] for b in started.breakpoints] == ["epoch=2", "step=9999"]
    (hit,) = pauses(events)
    assert hit.reason == "breakpoint #1 (epoch=2): 2 epoch(s) done"
    assert read_breakpoints(again.run_dir) == ({"id": 2, "spec": "step=9999"},)
    records = [json.loads(x) for x in (again.run_dir / "events.jsonl").read_text().splitlines()]
    assert any(r["event"] == "StatusChanged" and r.get("cause") == "breakpoint" for r in records)


def test_a_breakpoint_at_the_last_epoch_lets_the_run_be_made_longer_there(tmp_path):
    """Pause after the last planned epoch, add two epochs, resume: the run trains them (issue 25: the plan, live)."""
    t = Trainer(config(2), runs_dir=tmp_path)
    events = run(t, C.AddBreakpoint("epoch=2"), on_pause=(C.SetRunLength("epochs", 4), C.Resume()))
    assert len(pauses(events)) == 1 and events[-1].summary["epochs_completed"] == 4


def test_the_fake_reacts_to_breakpoints_like_the_engine(tmp_path):
    from tui_train.core.testing import FakeTrainer

    script = (C.AddBreakpoint("epoch=3"), C.AddBreakpoint("lunch"), C.ClearBreakpoints(1), C.SetRunLength("epochs", 9),
              C.SetRunLength("max_steps", 1, "keep"), C.Stop())

    def drive(trainer) -> list[tuple]:
        out: list[E.Event] = []
        todo = list(script)

        def sink(ev: E.Event) -> None:
            out.append(ev)
            if isinstance(ev, E.CommandApplied | E.CommandRejected) and todo:
                trainer.submit(todo.pop(0))

        trainer.submit(C.Pause())
        trainer.run(sink=sink)
        return [(e.kind, getattr(e, "command", ""), getattr(e, "key", ""), getattr(e, "reason", "")[:20],
                 tuple(b["spec"] for b in getattr(e, "pending", ()))) for e in out
                if isinstance(e, E.CommandApplied | E.CommandRejected | E.BreakpointsChanged)]

    fake = FakeTrainer(config(4), epochs=4, steps_per_epoch=11)
    assert drive(fake) == drive(Trainer(config(4), runs_dir=tmp_path))
