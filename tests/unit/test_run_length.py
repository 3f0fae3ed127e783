"""The run's length, changed live (issue 25 item 1): ``SetRunLength`` under each policy on tiny
digits runs, read back from the StepMetrics learning rates; what is refused; resume after a change
bit-identical to not stopping; a loop of your own refuses it."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import length
from tui_train.core.config import from_dict, load_config
from tui_train.core.schedule import factor, factor_at, schedule_step, stretch
from tui_train.core.state import TrainingState
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer

CHANGE_AT = 7
"""The change is submitted when step 7 is reported: it applies before optimizer step 7 (0-based)."""


def config(epochs: int = 2, **schedule):
    """digits, a 64-16-10 MLP, Adam, a cosine schedule with a short warmup, one LR per step logged."""
    return from_dict({
        "name": "length", "data": {"dataset": "digits", "batch_size": 128}, "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "adam", "lr": 0.01}, "schedule": {"name": "cosine", "warmup_steps": 3, "min_factor": 0.05, **schedule},
        "train": {"epochs": epochs, "log_every": 1, "device": "cpu", "num_threads": 1, "deterministic": True, "seed": 3},
        "checkpoint": {"save_best": False},
    })


def train(trainer: Trainer, at: int = CHANGE_AT, *commands: C.Command) -> list[E.Event]:
    """Run to the end; ``commands`` are submitted from the sink when step ``at`` is reported (deterministic)."""
    events: list[E.Event] = []

    def sink(ev: E.Event) -> None:
        events.append(ev)
        if isinstance(ev, E.StepMetrics) and ev.step == at:
            for c in commands:
                trainer.submit(c)

    trainer.run(sink=sink)
    assert isinstance(events[-1], E.RunFinished), events[-1]
    return events


def lrs(events) -> dict[int, float]:
    """Optimizer step (0-based) -> the LR it used (StepMetrics.lr with log_every 1)."""
    return {e.step - 1: e.lr for e in events if isinstance(e, E.StepMetrics)}


def acks(events, kind=E.CommandApplied) -> list:
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """Uninterrupted runs of 2 and 4 epochs: the schedules as planned."""
    out = {}
    for epochs in (2, 4):
        t = Trainer(config(epochs), runs_dir=tmp_path_factory.mktemp(f"plan{epochs}"))
        out[epochs] = lrs(train(t))
        out["spe"] = t.steps_per_epoch
    return out


# -- the schedule's plan, pure ------------------------------------------------------------------------
def test_a_stretch_keeps_the_lr_at_the_change_and_ends_where_the_schedule_ends():
    cfg = config().schedule
    total, new_total, at = 20, 50, 8
    plan = stretch([], total, at, new_total, cfg.warmup_steps)
    before = [factor(cfg, s, 10, total) for s in range(total)]
    after = [factor_at(cfg, s, 10, new_total, plan, total) for s in range(new_total)]
    assert after[:at + 1] == before[:at + 1]  # up to and including the step where it changed: no jump
    assert after[-1] == pytest.approx(before[-1]) and schedule_step(new_total - 1, plan) == pytest.approx(total - 1)
    assert all(a >= b for a, b in zip(after[at:], after[at + 1:]))  # a cosine still only goes down
    shorter = stretch([], total, at, 12, cfg.warmup_steps)
    assert factor_at(cfg, at, 10, 12, shorter, total) == before[at] and factor_at(cfg, 11, 10, 12, shorter, total) == before[-1]


def test_keep_holds_the_final_value_and_a_warmup_keeps_its_pace():
    cfg = config().schedule
    assert factor_at(cfg, 35, 10, 40, [], 20) == factor(cfg, 19, 10, 20)  # past the schedule: its last value
    plan = stretch([], 20, 1, 60, cfg.warmup_steps)  # changed during the warmup (3 steps)
    assert [factor_at(cfg, s, 10, 60, plan, 20) for s in range(4)] == [factor(cfg, s, 10, 20) for s in range(4)]
    assert factor_at(cfg, 59, 10, 60, plan, 20) == pytest.approx(factor(cfg, 19, 10, 20))
    twice = stretch(plan, 20, 30, 80, cfg.warmup_steps)  # a second change goes on from where the first left
    assert factor_at(cfg, 30, 10, 80, twice, 20) == factor_at(cfg, 30, 10, 60, plan, 20)
    assert factor_at(cfg, 79, 10, 80, twice, 20) == pytest.approx(factor(cfg, 19, 10, 20))


def test_what_a_change_may_not_be():
    st = TrainingState(epoch=3, batch=4, step=40)
    plan = length.Length(epochs=5, max_steps=0, steps_per_epoch=10)
    assert "shorter than what is done: 4 epoch(s)" in length.change(plan, st, "epochs", 3).rejected
    assert not length.change(plan, st, "epochs", 4).rejected  # the epoch under way finishes
    assert "shorter than what is done: 40 step(s)" in length.change(plan, st, "max_steps", 39).rejected
    assert not length.change(plan, st, "max_steps", 0).rejected  # no limit
    assert "whole number >= 1" in length.change(plan, st, "epochs", 0).rejected
    assert "whole number" in length.change(plan, st, "epochs", 7.5).rejected
    assert length.change(plan, st, "epochs", 9, "bend").rejected == "policy 'bend' is not allowed (allowed: stretch, keep)"
    assert "not a length" in length.change(plan, st, "patience", 9).rejected
    done = length.change(plan, st, "epochs", 8, "keep")
    assert (done.old, done.new, done.changes) == (5, 8, {"lr_total": 50, "lr_plan": []})
    assert "epochs 5 -> 8 (50 -> 80 steps planned; lr schedule kept" in done.detail


def test_a_checkpoint_without_a_plan_or_breakpoints_loads_as_before():
    old = TrainingState(step=5, base_lr=0.1).state_dict()
    for key in ("lr_total", "lr_plan", "breakpoints", "breakpoint_ids"):
        del old[key]
    st = TrainingState()
    st.load_state_dict(old)
    assert (st.step, st.lr_total, st.lr_plan, st.breakpoints, st.breakpoint_ids) == (5, 0, [], [], 0)


def test_the_policy_is_a_preset_field_with_its_choices():
    assert load_config("digits-mlp").schedule.on_length_change == "stretch"
    with pytest.raises(Exception, match=r"on_length_change.*stretch.*keep"):
        load_config("digits-mlp", ["schedule.on_length_change=bend"])


# -- live, on the engine ----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["stretch", "keep"])
def test_a_longer_run_follows_the_policy(policy, planned, tmp_path):
    t = Trainer(config(2), runs_dir=tmp_path)
    events = train(t, CHANGE_AT, C.SetRunLength("epochs", 4, policy))
    got, two, spe = lrs(events), planned[2], planned["spe"]
    ack = acks(events)[0]
    assert (ack.command, ack.key, ack.old, ack.new, ack.step) == ("SetRunLength", "epochs", 2.0, 4.0, CHANGE_AT)
    assert sorted(got) == list(range(4 * spe))  # it trained 4 epochs
    assert [got[s] for s in range(CHANGE_AT + 1)] == [two[s] for s in range(CHANGE_AT + 1)]  # the LR did not jump
    if policy == "keep":  # the schedule as planned, then its final value
        assert [got[s] for s in range(2 * spe)] == [two[s] for s in range(2 * spe)]
        assert {got[s] for s in range(2 * spe, 4 * spe)} == {two[2 * spe - 1]}
    else:  # the rest stretched: slower after the change, the same final value at the new end
        assert all(got[s] > two[s] for s in range(CHANGE_AT + 1, 2 * spe))
        assert got[4 * spe - 1] == pytest.approx(two[2 * spe - 1]) and got[4 * spe - 1] < got[2 * spe]
    assert [e.epoch for e in events if isinstance(e, E.EpochMetrics)] == [0, 1, 2, 3]
    summary = events[-1].summary
    assert summary["status"] == "completed" and summary["epochs_completed"] == 4 and summary["interventions"] == 1
    assert load(Path(t.run_dir, "checkpoints", "last.pt"))["config"]["train"]["epochs"] == 4


@pytest.mark.parametrize("policy", ["stretch", "keep"])
def test_a_shorter_run_follows_the_policy(policy, planned, tmp_path):
    t = Trainer(config(4), runs_dir=tmp_path)
    events = train(t, CHANGE_AT, C.SetRunLength("epochs", 2, policy))
    got, four, spe = lrs(events), planned[4], planned["spe"]
    assert sorted(got) == list(range(2 * spe))
    assert [got[s] for s in range(CHANGE_AT + 1)] == [four[s] for s in range(CHANGE_AT + 1)]
    if policy == "keep":  # the 4-epoch schedule, cut at 2 epochs: the LR never reaches the floor
        assert got == {s: four[s] for s in range(2 * spe)}
    else:  # squeezed into 2 epochs: it ends at the 4-epoch schedule's final value
        assert got[2 * spe - 1] == pytest.approx(four[4 * spe - 1]) and got[CHANGE_AT + 1] < four[CHANGE_AT + 1]
    assert events[-1].summary["epochs_completed"] == 2 and events[-1].summary["status"] == "completed"


def test_max_steps_ends_mid_epoch_and_a_length_at_what_is_done_ends_at_once(tmp_path):
    t = Trainer(config(3), runs_dir=tmp_path / "a")
    events = train(t, CHANGE_AT, C.SetRunLength("max_steps", CHANGE_AT + 3))
    assert max(lrs(events)) == CHANGE_AT + 2 and events[-1].summary["steps"] == CHANGE_AT + 3
    assert acks(events, E.ValidationMetrics)  # the partial epoch is validated at the end, as for any max_steps
    t = Trainer(config(3), runs_dir=tmp_path / "b")
    events = train(t, CHANGE_AT, C.SetRunLength("max_steps", CHANGE_AT))  # no step after the one reported
    assert max(lrs(events)) == CHANGE_AT - 1 and events[-1].summary["steps"] == CHANGE_AT
    assert events[-1].summary["reason"] == "max_steps reached"


def test_a_length_shorter_than_what_is_done_is_refused_and_changes_nothing(planned, tmp_path):
    t = Trainer(config(2), runs_dir=tmp_path)
    spe = planned["spe"]
    events = train(t, spe + 2, C.SetRunLength("epochs", 1), C.SetRunLength("max_steps", 3), C.SetRunLength("epochs", 3, "bend"))
    assert [e.reason for e in acks(events, E.CommandRejected)] == [
        "epochs 1 is shorter than what is done: 2 epoch(s) (the one under way counts)",
        f"max_steps 3 is shorter than what is done: {spe + 2} step(s)",
        "policy 'bend' is not allowed (allowed: stretch, keep)"]
    assert lrs(events) == planned[2] and events[-1].summary["interventions"] == 0


def test_resume_after_a_change_is_bit_identical_to_not_stopping(tmp_path):
    """Checkpoints at every step of a run made longer (stretch) at step 7: a resume from any of them,
    before the change (the command sent again) or after it, ends with the same weights."""
    cfg = from_dict({**_raw(config(2)), "checkpoint": {"every_steps": 1, "keep_last": 10_000, "save_best": False}})
    ref = Trainer(cfg, runs_dir=tmp_path / "ref")
    change = C.SetRunLength("epochs", 3)
    train(ref, CHANGE_AT, change)
    final = {k: v.clone() for k, v in ref.model.state_dict().items()}
    ckpts = sorted(Path(ref.run_dir, "checkpoints").glob("step-*-periodic.pt"))
    spe = ref.steps_per_epoch
    for ck in (ckpts[CHANGE_AT - 2], ckpts[CHANGE_AT + 1], ckpts[spe + 1], ckpts[2 * spe + 2]):
        payload = load(ck)
        assert payload["config"]["train"]["epochs"] == (3 if payload["step"] > CHANGE_AT else 2)
        folder = tmp_path / f"s{payload['step']}" / "checkpoints"
        folder.mkdir(parents=True)
        shutil.copy(ck, folder / ck.name)
        again = Trainer(cfg, runs_dir=tmp_path / "unused", resume=folder / ck.name)
        events = train(again, CHANGE_AT, change) if payload["step"] < CHANGE_AT else train(again, -1)
        assert events[-1].summary["epochs_completed"] == 3
        got = again.model.state_dict()
        assert all(torch.equal(got[k], v) for k, v in final.items()), f"resumed at step {payload['step']}"


def _raw(cfg) -> dict:
    from tui_train.core.config import to_dict

    return to_dict(cfg)


def test_a_loop_of_your_own_refuses_a_length_with_the_reason(tmp_path):
    import tui_train

    run = tui_train.init(name="own", config={"epochs": 3}, runs_dir=tmp_path, system_interval=0)
    run.place.submit(C.SetRunLength("epochs", 9))
    run.place.submit(C.AddBreakpoint("epoch=2"))
    run.log({"loss": 1.0})
    run.finish()
    rejected = [e for e in _records(run.run_dir) if e["event"] == "CommandRejected"]
    assert [r["command"] for r in rejected] == ["SetRunLength", "AddBreakpoint"]
    assert "your loop owns its length" in rejected[0]["reason"] and "built-in loop" in rejected[1]["reason"]


def _records(run_dir: Path) -> list[dict]:
    import json

    return [json.loads(x) for x in (Path(run_dir) / "events.jsonl").read_text().splitlines() if x.strip()]


def test_the_lr_written_equals_the_plan_at_every_step(tmp_path):
    """The engine's LR is base x factor_at(plan) exactly: the checkpoint's plan recomputes it."""
    t = Trainer(config(2), runs_dir=tmp_path)
    events = train(t, CHANGE_AT, C.SetRunLength("epochs", 5))
    st, spe = t.state, t.steps_per_epoch
    assert st.lr_total == 2 * spe and len(st.lr_plan) == 1
    for step, lr in lrs(events).items():
        assert lr == 0.01 * factor_at(t.config.schedule, step, spe, 5 * spe, st.lr_plan, st.lr_total)
    assert all(math.isfinite(x) for x in lrs(events).values())
