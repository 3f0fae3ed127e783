"""Every documented training option has its effect (issue 21, item 4), checked through the real
engine on tiny digits/regression runs, not only that it trains:

- ``optim.grad_accum``: two micro-batches of 32 accumulated give the weights of one batch of 64;
- ``optim.l1``: the penalty shrinks the weights' L1 norm against the same run without it;
- ``optim.loss`` (l1, huber, mse) and ``optim.label_smoothing``: the loss the run reports for its
  first batch is torch's own formula on that batch;
- ``optim.name`` adamw and rmsprop: the optimizer is torch's, with the preset's hyperparameters,
  and decoupled weight decay (adamw) ends elsewhere than Adam's L2 decay;
- ``train.compile``: the model runs through a graph torch.compile captured;
- ``schedule.name = "plateau"``: a stalled validation metric cuts the LR by the factor, an
  improving one does not.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tui_train.core import events as E
from tui_train.core.config import from_dict
from tui_train.core.train import engine as engine_module
from tui_train.core.train.engine import Trainer


def config(**sections) -> object:
    base = {
        "name": "opt",
        "data": {"dataset": "digits", "batch_size": 32},
        "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"max_steps": 6, "log_every": 1, "device": "cpu", "deterministic": True, "seed": 5, "num_threads": 1},
        "checkpoint": {"save_best": False},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return from_dict(base)


def train(tmp_path, cfg) -> tuple[Trainer, list[E.Event]]:
    trainer = Trainer(cfg, runs_dir=tmp_path / f"runs-{len(list(tmp_path.glob('runs-*')))}")
    events: list[E.Event] = []
    trainer.run(sink=events.append)
    assert isinstance(events[-1], E.RunFinished), events[-1]
    return trainer, events


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def first_loss(events: list[E.Event]) -> float:
    return next(e for e in events if isinstance(e, E.StepMetrics) and e.step == 1).loss


def test_grad_accum_of_two_batches_of_32_equals_one_batch_of_64(tmp_path):
    accumulated, _ = train(tmp_path, config(optim={"grad_accum": 2}, train={"max_steps": 5}))
    whole, _ = train(tmp_path, config(data={"batch_size": 64}, train={"max_steps": 5}))
    assert accumulated.state.step == whole.state.step == 5  # steps count optimizer steps
    a, w = weights(accumulated), weights(whole)
    assert all(torch.allclose(a[k], w[k], atol=1e-6) for k in a)
    single, _ = train(tmp_path, config(train={"max_steps": 5}))  # without accumulation: somewhere else
    assert not all(torch.allclose(weights(single)[k], w[k], atol=1e-4) for k in w)


def test_the_l1_penalty_shrinks_the_weights(tmp_path):
    def l1_norm(trainer):
        return float(sum(p.detach().abs().sum() for n, p in trainer.model.named_parameters() if n.endswith("weight")))

    plain, _ = train(tmp_path, config(train={"max_steps": 30}))
    penalised, _ = train(tmp_path, config(optim={"l1": 1e-3}, train={"max_steps": 30}))
    assert l1_norm(penalised) < 0.97 * l1_norm(plain)


def _first_batch_loss(tmp_path, cfg, formula) -> tuple[float, float]:
    """(the loss the run reports at step 1, ``formula(output, target)`` on the same first batch
    from the same initial weights)."""
    probe = Trainer(cfg, runs_dir=tmp_path / "probe")
    probe.prepare()
    rt = probe.p.rt
    x, y = next(iter(rt.data.train_batches(0, cfg.data.batch_size)))
    rt.model.train()
    with torch.no_grad():
        expected = float(formula(rt.model(x).float(), y))
    _, events = train(tmp_path, cfg)
    return first_loss(events), expected


@pytest.mark.parametrize("loss,formula", [
    ("l1", lambda out, y: F.l1_loss(out, y.view_as(out))),
    ("huber", lambda out, y: F.huber_loss(out, y.view_as(out), delta=0.5)),
    ("mse", lambda out, y: F.mse_loss(out, y.view_as(out))),
])
def test_regression_losses_are_the_ones_named(tmp_path, loss, formula):
    cfg = config(data={"dataset": "regression", "samples": 400}, model={"name": "regression", "hidden": [8]},
                 optim={"loss": loss, "huber_delta": 0.5, "lr": 0.01}, train={"max_steps": 2},
                 early_stopping={"monitor": "val_loss"})
    reported, expected = _first_batch_loss(tmp_path, cfg, formula)
    assert reported == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_is_in_the_loss(tmp_path):
    cfg = config(optim={"label_smoothing": 0.2}, train={"max_steps": 2})
    reported, expected = _first_batch_loss(tmp_path, cfg, lambda out, y: F.cross_entropy(out, y, label_smoothing=0.2))
    _, plain = _first_batch_loss(tmp_path, config(train={"max_steps": 2}), lambda out, y: F.cross_entropy(out, y))
    assert reported == pytest.approx(expected, rel=1e-5)
    assert abs(expected - plain) > 1e-3  # smoothing changes the figure, so the check can tell


@pytest.mark.parametrize("name,cls", [("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop)])
def test_adamw_and_rmsprop_are_torchs_with_the_presets_values(tmp_path, name, cls):
    cfg = config(optim={"name": name, "lr": 3e-3, "weight_decay": 0.05, "momentum": 0.5}, train={"max_steps": 20})
    trainer, events = train(tmp_path, cfg)
    opt = trainer.p.rt.optimizer
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["weight_decay"] == 0.05
    if name == "rmsprop":
        assert group["momentum"] == 0.5
    else:
        assert group["betas"] == (0.5, 0.999)  # momentum is Adam's beta1 when set
    losses = [e.loss for e in events if isinstance(e, E.StepMetrics)]
    assert sum(losses[-5:]) < sum(losses[:5])  # it learns


def test_adamw_decays_decoupled_unlike_adam(tmp_path):
    adamw, _ = train(tmp_path, config(optim={"name": "adamw", "lr": 3e-3, "weight_decay": 0.5}))
    adam, _ = train(tmp_path, config(optim={"name": "adam", "lr": 3e-3, "weight_decay": 0.5}))
    w, a = weights(adamw), weights(adam)
    assert not all(torch.allclose(w[k], a[k], atol=1e-6) for k in w)


@pytest.mark.slow
def test_compile_runs_the_model_through_a_captured_graph(tmp_path):
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    _, events = train(tmp_path, config(train={"compile": True, "max_steps": 3, "deterministic": False}))
    assert events[-1].status == "completed"
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, dict(torch._dynamo.utils.counters["stats"])
    torch._dynamo.reset()


def _plateau_run(tmp_path, monkeypatch, val_losses):
    real = engine_module.evaluate
    calls = iter(val_losses)

    def scripted(model, data, loss_fn, split, *args, **kwargs):
        metrics, confusion = real(model, data, loss_fn, split, *args, **kwargs)
        if split == "val":
            metrics = {**metrics, "loss": next(calls)}
        return metrics, confusion

    monkeypatch.setattr(engine_module, "evaluate", scripted)
    cfg = config(schedule={"name": "plateau", "plateau_factor": 0.5, "plateau_patience": 1},
                 early_stopping={"monitor": "val_loss"},
                 data={"batch_size": 256}, train={"max_steps": 0, "epochs": 5, "log_every": 1})
    trainer, events = train(tmp_path, cfg)
    monkeypatch.setattr(engine_module, "evaluate", real)
    return trainer, [e.lr for e in events if isinstance(e, E.EpochMetrics)]


def test_reduce_on_plateau_cuts_the_lr_only_when_the_metric_stalls(tmp_path, monkeypatch):
    stalled, lrs = _plateau_run(tmp_path, monkeypatch, [1.0] * 20)
    # patience 1: the second epoch without improvement (epochs 3 and 5) halves the LR from the next
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05]) and stalled.p.plateau.scale == 0.25, lrs
    improving, lrs = _plateau_run(tmp_path, monkeypatch, [1.0 - 0.1 * i for i in range(20)])
    assert improving.p.plateau.scale == 1.0 and all(lr == pytest.approx(0.1) for lr in lrs), lrs
