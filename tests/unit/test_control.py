"""core.run.control.decide: what each command does, decided without threads, torch or a trainer."""

from __future__ import annotations

import copy

import pytest

from tui_train.core import commands as C
from tui_train.core.config import from_dict
from tui_train.core.run.control import Decision, decide, hyperparameters, write_optimizer
from tui_train.core.state import TrainingState

SGD = {"lr": 0.05, "momentum": 0.5, "nesterov": False, "weight_decay": 0.0}
ADAM = {"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.0}


def state(**kw) -> TrainingState:
    return TrainingState(**({"step": 7, "epoch": 1, "base_lr": 0.05, "grad_clip": 0.0, "patience": 5} | kw))


def test_decide_changes_nothing_it_is_given():
    st, group = state(), dict(SGD)
    before = (copy.deepcopy(st), dict(group))
    for cmd in (C.Pause(), C.SetLearningRate(0.01), C.ScaleLearningRate(2.0), C.SetHyperparameter("momentum", 0.9),
                C.SetHyperparameter("patience", 2), C.Rollback(0.5), C.Stop(), C.SaveCheckpoint(), C.Validate()):
        decide(cmd, "running", st, group, good_step=3)
    assert (st, group) == before


@pytest.mark.parametrize("cmd,status,expected", [
    (C.Pause(), "running", Decision(applied="paused", status=("paused", "user", "command"))),
    (C.Pause(), "paused", Decision(rejected="cannot pause while paused")),
    (C.Resume(), "paused", Decision(applied="resumed", status=("running", "resumed", "command"))),
    (C.Resume(), "running", Decision(rejected="not paused (status running)")),
    (C.Stop("user"), "paused", Decision(applied="early stop requested: finishing the step, evaluating, saving",
                                        status=("stopping", "early stop (user)", "command"))),
    (C.SaveCheckpoint(), "paused", Decision(effect="save")),
    (C.Validate(), "running", Decision(effect="validate", applied="validated")),
])
def test_status_commands(cmd, status, expected):
    assert decide(cmd, status, state(), SGD) == expected


def test_learning_rate_set_and_scaled_within_the_limits():
    d = decide(C.SetLearningRate(0.01), "running", state(), SGD)
    assert (d.rejected, d.changes, d.key, d.old, d.new) == ("", {"base_lr": 0.01}, "lr", 0.05, 0.01)
    assert d.applied == "lr 0.05 -> 0.01"
    assert decide(C.ScaleLearningRate(0.5), "running", state(), SGD).changes == {"base_lr": 0.025}
    # the cap is the config's optim.lr maximum (10), for a set LR and for a scaled one alike
    assert "must be > 0 and <= 10" in decide(C.SetLearningRate(50), "running", state(), SGD).rejected
    assert "must be > 0 and <= 10" in decide(C.ScaleLearningRate(1000), "running", state(), SGD).rejected
    for bad in (0.0, -1.0, float("nan"), float("inf"), True):
        assert decide(C.SetLearningRate(bad), "running", state(), SGD).rejected
        assert decide(C.ScaleLearningRate(bad), "running", state(), SGD).rejected


def test_hyperparameters_write_the_optimizer_or_the_state():
    d = decide(C.SetHyperparameter("momentum", 0.9), "running", state(), SGD)
    assert d.optimizer == {"momentum": 0.9} and (d.old, d.new) == (0.5, 0.9) and not d.changes
    d = decide(C.SetHyperparameter("momentum", 0.8), "running", state(), ADAM)
    assert d.optimizer == {"beta1": 0.8} and d.old == 0.9  # Adam: momentum is beta1
    assert decide(C.SetHyperparameter("weight_decay", 0.1), "running", state(), SGD).optimizer == {"weight_decay": 0.1}
    d = decide(C.SetHyperparameter("grad_clip", 1.0), "running", state(), SGD)
    assert d.changes == {"grad_clip": 1.0} and not d.optimizer
    d = decide(C.SetHyperparameter("patience", 3.0), "running", state(), SGD)
    assert d.changes == {"patience": 3} and isinstance(d.changes["patience"], int)
    assert decide(C.SetHyperparameter("momentum", 0), "running", state(), SGD | {"nesterov": True}).rejected == \
        "momentum 0 is not allowed with nesterov"
    assert "must be >= 0 and < 1" in decide(C.SetHyperparameter("momentum", 5), "running", state(), SGD).rejected
    assert "whole number" in decide(C.SetHyperparameter("patience", 2.5), "running", state(), SGD).rejected
    assert "unknown hyperparameter 'lr'" in decide(C.SetHyperparameter("lr", 0.1), "running", state(), SGD).rejected


def test_rollback_needs_a_snapshot_and_resumes_only_a_nonfinite_pause():
    assert decide(C.Rollback(0.5), "paused", state(), SGD, good_step=None).rejected == "no good state to roll back to yet"
    assert decide(C.Rollback(0.0), "paused", state(), SGD, good_step=3).rejected
    d = decide(C.Rollback(0.5), "paused", state(), SGD, good_step=3, nonfinite_pause=True)
    assert d.effect == "rollback" and d.changes == {"base_lr": 0.025}
    assert d.status == ("running", "rolled back", "command") and d.status_after_ack
    assert d.applied == "rolled back to the weights of step 3; lr 0.05 -> 0.025"
    assert decide(C.Rollback(0.5), "paused", state(), SGD, good_step=3, nonfinite_pause=False).status is None


def test_a_stop_answering_a_nonfinite_pause_restores_the_last_good_weights_itself():
    # one command: a Rollback sent before the Stop would resume the run (tests/functional/test_real_trainer_paths.py)
    d = decide(C.Stop("non-finite loss"), "paused", state(), SGD, good_step=3, nonfinite_pause=True)
    assert d.effect == "rollback" and not d.changes and d.status == ("stopping", "early stop (non-finite loss)", "command")
    assert d.applied == "early stop requested: back to the weights of step 3, evaluating, saving"
    for kwargs in ({"good_step": None, "nonfinite_pause": True}, {"good_step": 3, "nonfinite_pause": False}):
        assert decide(C.Stop("user"), "paused", state(), SGD, **kwargs).effect == ""  # nothing to restore, or no need


def test_unknown_command_is_rejected_with_its_name():
    class Teleport(C.Command):
        pass

    assert decide(Teleport(), "running", state(), SGD).rejected == "unknown command Teleport"


def test_write_optimizer_sets_every_group():
    class Opt:
        param_groups = [dict(ADAM), dict(ADAM)]

    opt = Opt()
    write_optimizer(opt, {"beta1": 0.7, "weight_decay": 0.01})
    assert all(g["betas"] == (0.7, 0.999) and g["weight_decay"] == 0.01 for g in opt.param_groups)


def test_hyperparameters_before_and_after_the_optimizer_exists():
    cfg = from_dict({"optim": {"name": "adam", "lr": 0.002}})
    before = hyperparameters(cfg, state(base_lr=0.002), {})
    assert before["lr"] == 0.002 and before["momentum"] == cfg.optim.momentum and before["optimizer"] == "adam"
    assert hyperparameters(cfg, state(), ADAM)["momentum"] == 0.9


def test_command_queue_takes_only_the_leading_commands_that_pass():
    import queue as _queue

    from tui_train.core.run.control import CommandQueue, applies_mid_evaluation

    q = CommandQueue()
    assert q.empty() and q.take_leading(applies_mid_evaluation) == []
    for c in (C.SetLearningRate(0.1), C.ScaleLearningRate(2.0), C.SetHyperparameter("grad_clip", 1.0), C.Pause(),
              C.SetLearningRate(0.2)):
        q.put((c, "v1"))
    taken = q.take_leading(applies_mid_evaluation)
    assert [type(c).__name__ for c, _ in taken] == ["SetLearningRate", "ScaleLearningRate", "SetHyperparameter"]
    assert q.take_leading(applies_mid_evaluation) == []  # a Pause is at the front now
    assert q.get_nowait() == (C.Pause(), "v1") and q.get(timeout=0.01) == (C.SetLearningRate(0.2), "v1")
    with pytest.raises(_queue.Empty):
        q.get(timeout=0.01)
    assert not applies_mid_evaluation(C.SetHyperparameter("patience", 3))
    assert not any(applies_mid_evaluation(c) for c in (C.Validate(), C.SaveCheckpoint(), C.Stop(), C.Resume()))
