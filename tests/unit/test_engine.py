"""The Trainer in a real thread: every command applies at a step boundary and is acknowledged."""

from __future__ import annotations

import json
import math
import queue
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import Running
from tests.nan_model import SPEC as NAN_SPEC
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import RunConfig, from_dict
from tui_train.core.train.checkpoint import load
from tui_train.core.train.engine import Trainer

TIMEOUT = 60.0


def tiny(**over) -> RunConfig:
    """digits, tiny MLP, constant LR, SGD: quick and predictable."""
    raw = {
        "name": "tiny",
        "data": {"dataset": "digits", "batch_size": 64},
        "model": {"name": "mlp", "hidden": [32]},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
        "train": {"epochs": 2, "log_every": 1, "device": "cpu"},
    }
    for key, value in over.items():
        section, _, k = key.partition("__")
        raw.setdefault(section, {})[k] = value
    return from_dict(raw)


class Run(Running):
    """A Trainer in a thread, with its events collected."""

    def __init__(self, cfg, tmp_path: Path, commands=(), stop_event=None):
        trainer = Trainer(cfg, runs_dir=tmp_path / "runs")
        for c in commands:  # queued before the run: they apply at the first step boundary
            trainer.submit(c)
        super().__init__(trainer, stop_event)


def test_full_run_emits_the_contract_and_writes_the_run_dir(tmp_path):
    r = Run(tiny(), tmp_path)
    events = r.finish()
    assert isinstance(events[0], E.RunStarted)
    assert isinstance(events[-1], E.RunFinished)
    started = events[0]
    assert started.task == "classification" and started.total_steps == 2 * started.steps_per_epoch
    steps = r.of(E.StepMetrics)
    assert [s.step for s in steps] == list(range(1, started.total_steps + 1))
    assert all(isinstance(s.loss, float) and isinstance(s.lr, float) for s in steps)
    assert len(r.of(E.EpochMetrics)) == 2
    test = r.of(E.TestMetrics)[0]
    assert set(test.metrics) >= {"loss", "accuracy", "precision", "recall", "f1"}
    assert sum(map(sum, test.confusion)) == started.test_size
    run_dir = Path(started.run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == started.total_steps
    assert summary["epochs_completed"] == 2 and summary["samples_per_second"] > 0
    assert summary["test"]["accuracy"] == pytest.approx(test.metrics["accuracy"])
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(1 for x in lines if x["event"] == "StepMetrics") == started.total_steps
    assert (run_dir / "config.toml").is_file() and (run_dir / "checkpoints" / "last.pt").is_file()
    # events are plain values: every one serializes to JSON
    for ev in events:
        json.dumps(E.to_json(ev))


def test_pause_takes_no_steps_until_resume(tmp_path):
    r = Run(tiny(), tmp_path, commands=[C.Pause()])
    paused = r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    assert paused.step == 0
    time.sleep(0.4)
    assert r.trainer.state.step == 0, "optimizer stepped while paused"
    assert not any(isinstance(e, E.StepMetrics) for e in r.events)
    r.trainer.submit(C.Resume())
    r.finish()
    assert r.of(E.RunFinished)[0].status == "completed"
    assert [e.command for e in r.of(E.CommandApplied)] == ["Pause", "Resume"]


def test_set_learning_rate_applies_to_the_next_step(tmp_path):
    r = Run(tiny(), tmp_path, commands=[C.Pause()])
    r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    r.trainer.submit(C.SetLearningRate(0.0123))
    r.trainer.submit(C.Resume())
    r.finish()
    ack = next(e for e in r.events if isinstance(e, E.CommandApplied) and e.key == "lr")
    assert ack.old == pytest.approx(0.05) and ack.new == pytest.approx(0.0123) and ack.step == 0
    first = r.of(E.StepMetrics)[0]
    assert first.step == 1 and first.lr == pytest.approx(0.0123)
    assert r.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0123)


def test_scale_learning_rate_and_schedule_carries_on_from_the_new_base(tmp_path):
    cfg = tiny(schedule__name="cosine", train__epochs=1)
    r = Run(cfg, tmp_path, commands=[C.ScaleLearningRate(0.5)])
    r.finish()
    steps = r.of(E.StepMetrics)
    total = r.of(E.RunStarted)[0].total_steps
    for s in steps:
        t = (s.step - 1) / total
        assert s.lr == pytest.approx(0.025 * 0.5 * (1 + math.cos(math.pi * t)))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 11.0])
def test_invalid_learning_rate_is_rejected_and_changes_nothing(tmp_path, bad):
    r = Run(tiny(train__epochs=1), tmp_path, commands=[C.SetLearningRate(bad)])
    r.finish()
    rej = r.of(E.CommandRejected)
    assert len(rej) == 1 and rej[0].command == "SetLearningRate" and rej[0].reason
    assert all(s.lr == pytest.approx(0.05) for s in r.of(E.StepMetrics))


def test_set_hyperparameters(tmp_path):
    cmds = [C.SetHyperparameter("momentum", 0.9), C.SetHyperparameter("weight_decay", 1e-4),
            C.SetHyperparameter("grad_clip", 1.0), C.SetHyperparameter("patience", 7),
            C.SetHyperparameter("momentum", 1.5), C.SetHyperparameter("dropout", 0.1),
            C.SetHyperparameter("patience", 2.5)]
    r = Run(tiny(train__epochs=1), tmp_path, commands=cmds)
    r.finish()
    applied = {e.key: e.new for e in r.of(E.CommandApplied)}
    assert applied == {"momentum": 0.9, "weight_decay": 1e-4, "grad_clip": 1.0, "patience": 7}
    assert len(r.of(E.CommandRejected)) == 3
    g = r.trainer.optimizer.param_groups[0]
    assert g["momentum"] == 0.9 and g["weight_decay"] == 1e-4
    assert r.trainer.state.grad_clip == 1.0 and r.trainer.state.patience == 7


def test_momentum_on_adam_is_beta1(tmp_path):
    r = Run(tiny(optim__name="adam", optim__lr=1e-3, train__epochs=1), tmp_path, commands=[C.SetHyperparameter("momentum", 0.8)])
    r.finish()
    assert r.trainer.optimizer.param_groups[0]["betas"][0] == 0.8


def test_save_checkpoint_and_validate_on_demand(tmp_path):
    r = Run(tiny(train__epochs=1), tmp_path, commands=[C.SaveCheckpoint(), C.Validate()])
    r.finish()
    saved = [e for e in r.of(E.CheckpointSaved) if e.reason == "manual"]
    assert len(saved) == 1 and saved[0].step == 0
    payload = load(Path(saved[0].path))
    assert payload["step"] == 0 and payload["config"]["name"] == "tiny"
    val = r.of(E.ValidationMetrics)
    assert val and val[0].step == 0 and 0.0 <= val[0].metrics["accuracy"] <= 1.0


def test_stop_is_an_early_stop_that_evaluates_and_saves(tmp_path):
    r = Run(tiny(train__epochs=5), tmp_path, commands=[C.Pause()])
    r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    r.trainer.submit(C.Resume())
    r.wait_for(lambda e: isinstance(e, E.StepMetrics) and e.step >= 3)
    r.trainer.submit(C.Stop())
    r.finish()
    fin = r.of(E.RunFinished)[0]
    assert fin.status == "early_stopped"
    assert fin.summary["steps"] < r.of(E.RunStarted)[0].total_steps
    assert fin.summary["test"]["accuracy"] > 0
    assert any(e.reason == "early_stop" for e in r.of(E.CheckpointSaved))
    statuses = [e.status for e in r.of(E.StatusChanged)]
    assert "stopping" in statuses and statuses[-1] == "early_stopped"


def test_stop_event_interrupts_and_saves(tmp_path):
    stop = threading.Event()
    r = Run(tiny(train__epochs=50), tmp_path, stop_event=stop)
    r.wait_for(lambda e: isinstance(e, E.StepMetrics) and e.step >= 2)
    stop.set()
    r.finish()
    fin = r.of(E.RunFinished)[0]
    assert fin.status == "interrupted"
    ck = [e for e in r.of(E.CheckpointSaved) if e.reason == "interrupt"]
    assert ck and load(Path(ck[0].path))["step"] == fin.summary["steps"]
    assert json.loads((Path(fin.run_dir) / "summary.json").read_text())["status"] == "interrupted"


def test_stop_event_reaches_the_pause_wait(tmp_path):
    stop = threading.Event()
    r = Run(tiny(), tmp_path, commands=[C.Pause()], stop_event=stop)
    r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    stop.set()
    r.finish()
    assert r.of(E.RunFinished)[0].status == "interrupted"


def test_max_steps_ends_mid_epoch_with_validation(tmp_path):
    r = Run(tiny(train__max_steps=5), tmp_path)
    r.finish()
    fin = r.of(E.RunFinished)[0]
    assert fin.status == "completed" and fin.summary["steps"] == 5 and fin.summary["reason"] == "max_steps reached"
    assert r.of(E.ValidationMetrics)


def test_automatic_early_stopping(tmp_path):
    cfg = tiny(train__epochs=10, early_stopping__enabled=True, early_stopping__patience=2, early_stopping__min_delta=1e9)
    r = Run(cfg, tmp_path)
    r.finish()
    fin = r.of(E.RunFinished)[0]
    # epoch 0 is the best; epochs 1 and 2 do not improve by min_delta: patience 2 stops after epoch 2
    assert fin.status == "early_stopped" and fin.summary["epochs_completed"] == 3
    assert [e.patience_left for e in r.of(E.EpochMetrics)] == [2, 1, 0]
    assert fin.summary["best"] == {"metric": "val_loss", "value": pytest.approx(fin.summary["best"]["value"]), "epoch": 0}


def _user_model(tmp_path: Path, body: str) -> str:
    f = tmp_path / "usermodel.py"
    f.write_text(textwrap.dedent(body))
    return f"{f}:Net"




def test_nonfinite_loss_stops_and_keeps_no_bad_checkpoint(tmp_path):
    cfg = tiny(model__name=NAN_SPEC, train__epochs=3)
    r = Run(cfg, tmp_path)
    r.finish()
    failed = r.of(E.RunFailed)
    assert failed and "non-finite" in failed[0].message
    assert failed[0].summary["status"] == "failed"
    assert any("non-finite" in w.message for w in r.of(E.RunWarning))
    for ck in r.of(E.CheckpointSaved):
        for t in load(Path(ck.path))["model"].values():
            assert torch.isfinite(t).all()


def test_nonfinite_loss_pauses_when_asked(tmp_path):
    cfg = tiny(model__name=NAN_SPEC, train__epochs=1, train__on_nonfinite="pause")
    r = Run(cfg, tmp_path)
    ev = r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    assert "non-finite" in ev.reason
    r.trainer.submit(C.Stop())
    r.finish()
    fin = r.of(E.RunFinished)[0]
    # early_stopped when its checkpoints could be written; a checkpoint refused because the weights
    # are non-finite is listed in not_saved and the run says unsaved, never plain success (habit 24)
    assert fin.status == ("unsaved" if fin.summary["not_saved"] else "early_stopped"), fin.summary
    assert all("non-finite" in x["error"] for x in fin.summary["not_saved"])


def test_exception_in_training_becomes_run_failed_with_traceback(tmp_path):
    body = """
    import torch
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)
            self.calls = 0
        def forward(self, x):
            self.calls += 1
            if self.calls == 10:  # mid-run: after the start-up dry run's (at most 4) calls
                raise ValueError("boom in forward")
            return self.lin(x.flatten(1))
    """
    r = Run(tiny(model__name=_user_model(tmp_path, body)), tmp_path)
    r.finish()
    failed = r.of(E.RunFailed)[0]
    assert failed.message == "ValueError: boom in forward"
    assert "boom in forward" in Path(failed.traceback_path).read_text()
    run_dir = Path(r.of(E.RunStarted)[0].run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert any(e.reason == "error" for e in r.of(E.CheckpointSaved))  # best-effort save


def test_resume_continues_where_the_checkpoint_was_taken(tmp_path):
    stop = threading.Event()
    r = Run(tiny(train__epochs=3), tmp_path, stop_event=stop)
    r.wait_for(lambda e: isinstance(e, E.StepMetrics) and e.step >= 30)
    stop.set()
    r.finish()
    fin = r.of(E.RunFinished)[0]
    stopped_at = fin.summary["steps"]
    t2 = Trainer(tiny(), runs_dir=tmp_path / "other", resume=Path(fin.run_dir))
    q: queue.SimpleQueue = queue.SimpleQueue()
    summary = t2.run(sink=q.put)
    evs = []
    while not q.empty():
        evs.append(q.get())
    started = evs[0]
    assert started.start_step == stopped_at and started.run_dir == fin.run_dir
    assert summary["status"] == "completed" and summary["steps"] == started.total_steps
    assert next(s.step for s in evs if isinstance(s, E.StepMetrics)) == stopped_at + 1


def test_regression_task(tmp_path):
    cfg = from_dict({"data": {"dataset": "regression", "samples": 500}, "model": {"name": "regression", "hidden": [5]},
                     "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "loss": "mse"},
                     "train": {"epochs": 3, "device": "cpu"}, "early_stopping": {"monitor": "val_r2"}})
    r = Run(cfg, tmp_path)
    r.finish()
    fin = r.of(E.RunFinished)[0]
    assert set(fin.summary["test"]) == {"loss", "mse", "mae", "r2"}
    assert all(s.accuracy is None for s in r.of(E.StepMetrics))


@pytest.mark.slow
def test_real_mnist_subset_learns(tmp_path, mnist_root):
    cfg = from_dict({"name": "mnist-mlp", "data": {"dataset": "mnist", "data_dir": str(mnist_root), "subset": 6000, "batch_size": 128},
                     "model": {"name": "mlp", "hidden": [128]}, "optim": {"name": "adam", "lr": 2e-3},
                     "train": {"epochs": 2, "log_every": 10, "device": "cpu"}})
    r = Run(cfg, tmp_path)
    r.finish()
    started, fin = r.of(E.RunStarted)[0], r.of(E.RunFinished)[0]
    assert started.test_size == 10000 and started.train_size == 6000
    assert fin.summary["test"]["accuracy"] > 0.9


def test_commands_queued_behind_resume_apply_before_the_next_step(tmp_path):
    r = Run(tiny(train__epochs=3), tmp_path, commands=[C.Pause()])
    r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    for c in (C.Resume(), C.SetLearningRate(0.02), C.Stop()):
        r.trainer.submit(c)
    r.finish()
    fin = r.of(E.RunFinished)[0]
    assert fin.status == "early_stopped" and fin.summary["steps"] == 0  # no step between Resume and Stop
    assert [e.step for e in r.of(E.CommandApplied)] == [0, 0, 0, 0]


def test_stop_during_validation_never_records_partial_metrics_and_resume_redoes_it(tmp_path):
    """A stop that cuts the epoch-end validation short ends the run as interrupted before the
    epoch is recorded: partial metrics must not become the best epoch, and the resumed run
    validates that epoch in full."""
    stop = threading.Event()
    trainer = Trainer(tiny(train__epochs=3, data__eval_batch_size=16), runs_dir=tmp_path)
    trainer.prepare()
    real_eval = trainer.data.eval_batches

    def eval_batches(split, bs):  # the stop arrives after the first validation batch
        for i, batch in enumerate(real_eval(split, bs)):
            if split == "val" and i == 1:
                stop.set()
            yield batch

    trainer.data.eval_batches = eval_batches
    events: list = []
    summary = trainer.run(stop, events.append)
    assert summary["status"] == "interrupted"
    assert not [e for e in events if isinstance(e, E.EpochMetrics)]
    assert summary["best"]["value"] is None and not (trainer.ckpt_dir / "best.pt").exists()
    resumed = Trainer(tiny(train__epochs=3), runs_dir=tmp_path, resume=trainer.run_dir)
    events = []
    resumed.run(sink=events.append)
    epochs = [e for e in events if isinstance(e, E.EpochMetrics)]
    assert [e.epoch for e in epochs] == [0, 1, 2] and epochs[0].val["accuracy"] > 0 and epochs[0].is_best


def test_nonfinite_loss_in_the_last_interval_still_pauses(tmp_path):
    cfg = tiny(model__name=NAN_SPEC, train__epochs=1, train__log_every=1000,
               train__on_nonfinite="pause")
    r = Run(cfg, tmp_path)
    ev = r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    assert "non-finite" in ev.reason and not r.of(E.RunFinished)
    r.trainer.submit(C.Rollback(1.0))
    r.trainer.submit(C.Stop())
    r.finish()
    assert r.of(E.RunFinished)[0].status == "early_stopped"
    assert any(e.reason == "early_stop" for e in r.of(E.CheckpointSaved))  # the good weights, saved


def test_pruning_keeps_manual_checkpoints(tmp_path):
    cfg = tiny(train__epochs=2, checkpoint__every_steps=3, checkpoint__keep_last=2)
    r = Run(cfg, tmp_path, commands=[C.Pause(), C.SaveCheckpoint(), C.Resume()])
    r.finish()
    manual = [e.path for e in r.of(E.CheckpointSaved) if e.reason == "manual"]
    assert manual and Path(manual[0]).exists()
    folder = Path(manual[0]).parent
    assert len(list(folder.glob("step-*-periodic.pt"))) == 2


def test_commands_after_the_last_step_are_acknowledged(tmp_path):
    trainer = Trainer(tiny(train__epochs=1), runs_dir=tmp_path)
    events: list = []

    def sink(ev):
        events.append(ev)
        if isinstance(ev, E.EpochMetrics):  # after the last step boundary
            trainer.submit(C.SaveCheckpoint())
            trainer.submit(C.Pause())

    trainer.run(sink=sink)
    rejected = [e for e in events if isinstance(e, E.CommandRejected)]
    assert [e.command for e in rejected] == ["SaveCheckpoint", "Pause"]
    assert all(e.reason == "the run has ended" for e in rejected)


def test_validate_while_paused_does_not_count_the_pause_as_training(tmp_path):
    r = Run(tiny(train__epochs=1), tmp_path, commands=[C.Pause(), C.Validate()])
    r.wait_for(lambda e: isinstance(e, E.ValidationMetrics))
    time.sleep(1.0)
    r.trainer.submit(C.SaveCheckpoint())
    r.trainer.submit(C.Resume())
    r.finish()
    summary = r.of(E.RunFinished)[0].summary
    assert summary["train_seconds"] < summary["wall_seconds"] - 0.9  # the 1 s pause is not training time


def test_rollback_during_a_user_pause_keeps_the_run_paused(tmp_path):
    r = Run(tiny(train__epochs=3), tmp_path, commands=[C.Pause()])
    r.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "paused")
    r.trainer.submit(C.Rollback(0.5))
    ack = r.wait_for(lambda e: isinstance(e, E.CommandApplied) and e.command == "Rollback")
    time.sleep(0.3)
    assert r.trainer.status == "paused" and r.trainer.state.step == 0 and ack.new == pytest.approx(0.025)
    r.trainer.submit(C.Resume())
    r.finish()
    assert r.of(E.RunFinished)[0].status == "completed"


def _submit_during_validation(trainer, commands):
    """Make ``trainer`` receive ``commands`` after the first batch of its first validation."""
    real_eval = trainer.data.eval_batches
    sent = []

    def eval_batches(split, bs):
        for i, batch in enumerate(real_eval(split, bs)):
            if split == "val" and i == 1 and not sent:
                sent.append(True)
                for c in commands:
                    trainer.submit(c)
            yield batch

    trainer.data.eval_batches = eval_batches


def test_a_learning_rate_sent_during_validation_applies_before_it_ends(tmp_path):
    """bench (e)'s outliers: an LR change landing in an epoch's validation waited for all of it.
    The LR (and momentum, weight decay, clipping) apply between validation batches now; the
    epoch's metrics are those of the whole validation, and the next step trains with the new LR."""
    trainer = Trainer(tiny(train__epochs=2, data__eval_batch_size=16), runs_dir=tmp_path)
    trainer.prepare()
    _submit_during_validation(trainer, [C.SetLearningRate(0.02), C.SetHyperparameter("momentum", 0.7)])
    events: list = []
    trainer.run(sink=events.append)
    kinds = [type(e).__name__ for e in events]
    first_epoch = kinds.index("EpochMetrics")
    applied = [i for i, e in enumerate(events) if isinstance(e, E.CommandApplied)]
    assert len(applied) == 2 and all(i < first_epoch for i in applied)  # before the validation's end
    spe = trainer.steps_per_epoch
    assert [e.step for e in events if isinstance(e, E.CommandApplied)] == [spe, spe]
    confusion = next(e for e in events if isinstance(e, E.ConfusionMatrix))  # the epoch's validation, in full
    assert sum(map(sum, confusion.confusion)) == trainer.data.val_size and events[first_epoch].val["accuracy"] > 0
    after = [e for e in events if isinstance(e, E.StepMetrics) and e.step > spe]
    assert after and after[0].lr == pytest.approx(0.02)
    assert trainer.optimizer.param_groups[0]["momentum"] == pytest.approx(0.7)


def test_commands_behind_a_pause_wait_for_the_step_boundary_in_order(tmp_path):
    """Only the commands at the front of the queue apply mid-validation: an LR behind a Pause (or
    patience, which the epoch's early-stopping decision reads) waits, so the order is kept."""
    trainer = Trainer(tiny(train__epochs=2, data__eval_batch_size=16), runs_dir=tmp_path)
    trainer.prepare()
    _submit_during_validation(trainer, [C.SetHyperparameter("patience", 4), C.SetLearningRate(0.02), C.Stop()])
    events: list = []
    summary = trainer.run(sink=events.append)
    first_epoch = next(i for i, e in enumerate(events) if isinstance(e, E.EpochMetrics))
    applied = [(i, e.command) for i, e in enumerate(events) if isinstance(e, E.CommandApplied)]
    assert [c for _, c in applied] == ["SetHyperparameter", "SetLearningRate", "Stop"]
    assert all(i > first_epoch for i, _ in applied)
    assert summary["status"] == "early_stopped" and summary["epochs_completed"] == 1


@pytest.mark.parametrize("native", ["", "AVX512-BF16"])
def test_bf16_auto_is_on_only_where_the_device_has_native_bfloat16(tmp_path, monkeypatch, native):
    from tui_train.core.train import runtime

    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    assert runtime.resolve_bf16("auto", torch.device("cpu"))[0] is bool(native)
    assert runtime.resolve_bf16(False, torch.device("cpu")) == (False, "")
    on, note = runtime.resolve_bf16(True, torch.device("cpu"))  # asked for: kept, and said when not native
    assert on and (note == "") is bool(native)
    trainer = Trainer(tiny(train__epochs=1, train__max_steps=3, train__bf16="auto"), runs_dir=tmp_path)
    events: list = []
    assert trainer.run(sink=events.append)["status"] == "completed"
    assert trainer.p.rt.bf16 is bool(native)
    notes = [e.message for e in events if isinstance(e, E.RunNote) and e.message.startswith("bf16")]
    assert len(notes) == 1 and notes[0].startswith("bf16: on" if native else "bf16: off")
    assert ("native bfloat16, AVX512-BF16" in notes[0]) is bool(native)


def test_native_bf16_probe_answers_for_this_machine():
    from tui_train.core.train.runtime import native_bf16

    assert native_bf16(torch.device("cpu")) in ("", "AMX", "AVX512-BF16")
    assert native_bf16(torch.device("meta")) == ""
