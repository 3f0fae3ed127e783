"""The Lightning and Hugging Face callbacks against the real libraries (issue 23 item 3).

Tiny models built from code (no download), CPU, a few steps each. Each framework's tests skip,
saying so, where it is not installed; CI installs both (the ``test`` extra). What is checked is
what a person at the dashboard relies on: the run directory says ``completed`` with steps and
metrics; a command sent while the framework trains applies at its step boundary (the optimizer's
LR changes and stays changed through the framework's scheduler; a pause sent through the run's
endpoint holds the training loop; a stop ends it ``early_stopped``; a checkpoint request writes
the framework's own checkpoint).
"""

from __future__ import annotations

import enum
import json
import threading
import time
from pathlib import Path

import pytest

from tui_train.core import commands as C
from tui_train.core.run import endpoint as EP
from tui_train.integrations._common import plain, val_metrics

STEPS_PER_EPOCH = 6
"""Lightning: 48 random samples in batches of 8."""


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def _metrics(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["event"] == kind]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _applied(run_dir: Path, command: str) -> list[dict]:
    return [e for e in _events(run_dir) if e["event"] == "CommandApplied" and e["command"] == command]


def _wait(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


class PauseFromAViewer:
    """A viewer attached to the run's endpoint (as the TUI or ``ctl`` are) pauses the run, checks
    that the training loop holds while paused, and resumes it. :meth:`start` is called from a
    framework hook at some step; ``steps()`` reads the framework's step counter."""

    def __init__(self, run, steps):
        self.run, self.steps = run, steps
        self.conn = EP.Connection(EP.read_pointer(run.run_dir).socket, viewer="test")
        self.held: list[int] = []
        """The framework's step counter read twice, 0.3 s apart, while the run said paused."""
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self.conn.send(C.Pause())
        assert _wait(lambda: not self.run.place.inbox.empty(), 5), "the Pause never reached the run's inbox"
        self.thread.start()  # the hook returns; the next step boundary applies the Pause and waits there

    def _watch(self) -> None:
        if _wait(lambda: self.run.status == "paused"):
            self.held.append(self.steps())
            time.sleep(0.3)
            self.held.append(self.steps())
        self.conn.send(C.Resume())

    def check(self) -> None:
        self.thread.join(10)
        self.conn.close()
        assert len(self.held) == 2 and self.held[0] == self.held[1], f"the loop went on while paused: {self.held}"
        statuses = [e["status"] for e in _events(self.run.run_dir) if e["event"] == "StatusChanged"]
        assert statuses[:3] == ["running", "paused", "running"], statuses
        assert {e["origin"] for e in _applied(self.run.run_dir, "Pause")} == {self.conn.viewer_id}


# ---------------------------------------------------------------------- shared pieces, no framework


def test_plain_config_keeps_values_and_leaves_objects_out():
    class Mode(enum.Enum):
        FAST = "fast"

    got = plain({"lr": 0.1, "n": 3, "on": True, "name": "x", "path": Path("/d"), "mode": Mode.FAST, "sizes": (1, 2),
                 "none": None, "model": object(), "mixed": [1, object()], "nested": {"a": 1, "b": None}, "empty": {}})
    assert got == {"lr": 0.1, "n": 3, "on": True, "name": "x", "path": "/d", "mode": "fast", "sizes": [1, 2],
                   "nested": {"a": 1}}


def test_validation_metrics_get_the_names_the_plots_read():
    got = val_metrics({"eval_loss": 0.5, "eval_accuracy": 0.75, "eval_runtime": 0.1, "epoch": 1.0, "eval_f1": 0.6},
                      ("eval_",), skip=("runtime",))
    assert got == {"val_loss": 0.5, "val_accuracy": 0.75, "val_f1": 0.6}
    assert val_metrics({"val_acc_epoch": 0.9, "val/loss": 0.2, "train_loss": 1.0}, ("val_", "val/")) == \
        {"val_accuracy": 0.9, "val_loss": 0.2}


# ---------------------------------------------------------------------- Lightning


def _lightning(package: str = "lightning.pytorch"):
    """(the Lightning package, its TuiTrainCallback, a LightningModule class) or a skip."""
    L = pytest.importorskip(package)
    import torch
    from torch import nn

    if package == "lightning.pytorch":
        from tui_train.integrations.lightning import TuiTrainCallback
    else:
        from tui_train.integrations.pytorch_lightning import TuiTrainCallback

    class Tiny(L.LightningModule):
        """A linear classifier on 4 features; SGD with momentum and a scheduler that rewrites the
        LR every step (LambdaLR), so a live LR change must scale its base to stick."""

        def __init__(self, lr: float = 0.1, batch_size: int = 8, fail_at: int = 0):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            if self.hparams.fail_at and self.global_step == self.hparams.fail_at:
                raise RuntimeError("boom [at /src/x.py:1]")
            x, y = batch
            out = self.net(x)
            self.log("train_acc", (out.argmax(1) == y).float().mean())
            return nn.functional.cross_entropy(out, y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.net(x)
            self.log("val_loss", nn.functional.cross_entropy(out, y))
            self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return L, TuiTrainCallback, Tiny


def _loader():
    import torch

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(8 * STEPS_PER_EPOCH, 4, generator=g),
                                          torch.randint(0, 2, (8 * STEPS_PER_EPOCH,), generator=g))
    return torch.utils.data.DataLoader(data, batch_size=8)


def _fit(L, callbacks, module, max_epochs=2, ckpt_path=None, **trainer_args):
    trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", enable_progress_bar=False, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, callbacks=callbacks, **trainer_args)
    trainer.fit(module, _loader(), _loader(), ckpt_path=ckpt_path)
    return trainer


def _poke(L, at: dict):
    """A Lightning callback (after ours in the list) that calls ``at[step](trainer)`` once the
    boundary of that step has passed and records every step's LR."""

    class Poke(L.Callback):
        def __init__(self):
            self.lrs: dict[int, float] = {}
            self.step = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.step = trainer.global_step
            self.lrs[self.step] = trainer.optimizers[0].param_groups[0]["lr"]
            if self.step in at:
                at[self.step](trainer)

    return Poke()


def test_lightning_fit_is_a_completed_run_with_metrics(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path, log_every=2)
    assert isinstance(cb, L.Callback)
    _fit(L, [cb], Tiny())
    run_dir = cb.run.run_dir
    summary = _summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["steps"] == 2 * STEPS_PER_EPOCH and summary["epochs_completed"] == 2
    assert set(summary["val"]) == {"loss", "accuracy"}
    epochs = _metrics(run_dir, "EpochMetrics")
    assert [e["epoch"] for e in epochs] == [0, 1] and [e["step"] for e in epochs] == [6, 12]
    assert set(epochs[0]["train"]) == {"loss", "accuracy"} and set(epochs[0]["val"]) == {"loss", "accuracy"}
    steps = _metrics(run_dir, "StepMetrics")
    assert steps and all(s["accuracy"] is not None for s in steps)
    assert not _metrics(run_dir, "ValidationMetrics")  # the sanity check is not a validation; epoch-end ones close epochs
    config = (run_dir / "config.toml").read_text()
    assert "lr = 0.1" in config and "batch_size = 8" in config and "epochs = 2" in config and "max_steps = 12" in config
    assert (run_dir / "checkpoints" / "last.pt").exists()


def test_lightning_live_lr_sticks_and_a_save_request_writes_a_lightning_checkpoint(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path)

    def steer(trainer):
        cb.run.place.submit(C.SetLearningRate(lr=0.5))
        cb.run.place.submit(C.SaveCheckpoint())
        cb.run.place.submit(C.Validate())

    poke = _poke(L, {2: steer})
    trainer = _fit(L, [cb, poke], Tiny())
    run_dir = cb.run.run_dir
    assert poke.lrs[2] == pytest.approx(0.1)
    assert all(poke.lrs[s] == pytest.approx(0.5) for s in range(3, 13)), poke.lrs  # the per-step scheduler kept it
    assert trainer.lr_scheduler_configs[0].scheduler.base_lrs == [pytest.approx(0.5)]
    [lr] = _applied(run_dir, "SetLearningRate")
    assert lr["new"] == pytest.approx(0.5) and lr["step"] == 3
    [save] = _applied(run_dir, "SaveCheckpoint")
    ckpt = run_dir / "checkpoints" / "step-00000003-manual.ckpt"
    assert save["detail"] == f"saved {ckpt.resolve()}"
    assert [e["path"] for e in _events(run_dir) if e["event"] == "CheckpointSaved" and e["reason"] == "manual"] == [str(ckpt.resolve())]
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))
    assert _summary(run_dir)["final_lr"] == pytest.approx(0.5)
    notes = [e["message"] for e in _events(run_dir) if e["event"] == "RunNote"]
    assert sum("Lightning validates on its own schedule" in n for n in notes) == 1, notes
    assert not cb.run.should_validate  # answered by the epoch-end validation

    # the checkpoint is Lightning's own: a new fit resumes from it (a new run of its own)
    cb2 = TuiTrainCallback("lt-resumed", tmp_path)
    _fit(L, [cb2], Tiny(), ckpt_path=str(ckpt))
    assert _summary(cb2.run.run_dir)["status"] == "completed"
    assert _summary(cb2.run.run_dir)["steps"] == 2 * STEPS_PER_EPOCH


def test_lightning_validation_inside_an_epoch_is_reported_at_its_step(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path)
    _fit(L, [cb], Tiny(), val_check_interval=0.5)
    run_dir = cb.run.run_dir
    assert [(v["step"], set(v["metrics"])) for v in _metrics(run_dir, "ValidationMetrics")] == \
        [(3, {"loss", "accuracy"}), (9, {"loss", "accuracy"})]
    assert [(e["epoch"], e["step"], set(e["val"])) for e in _metrics(run_dir, "EpochMetrics")] == \
        [(0, 6, {"loss", "accuracy"}), (1, 12, {"loss", "accuracy"})]


def test_lightning_pause_from_a_viewer_holds_the_training_loop(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path)
    viewer: list[PauseFromAViewer] = []

    def pause(trainer):
        viewer.append(PauseFromAViewer(cb.run, lambda: trainer.global_step))
        viewer[0].start()

    _fit(L, [cb, _poke(L, {2: pause})], Tiny())
    viewer[0].check()
    assert _summary(cb.run.run_dir)["status"] == "completed"
    assert _summary(cb.run.run_dir)["steps"] == 2 * STEPS_PER_EPOCH


def test_lightning_stop_ends_the_fit_early(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path)
    trainer = _fit(L, [cb, _poke(L, {3: lambda trainer: cb.run.place.submit(C.Stop(reason="enough"))})], Tiny())
    run_dir = cb.run.run_dir
    summary = _summary(run_dir)
    assert summary["status"] == "early_stopped"
    assert trainer.global_step == 4 and summary["steps"] == 4  # the Stop applied at step 4's boundary
    assert summary["epochs_completed"] == 1  # the epoch that stopped closes, with Lightning's validation
    assert (run_dir / "checkpoints" / "last.pt").exists()


def test_lightning_failure_fails_the_run(tmp_path):
    L, TuiTrainCallback, Tiny = _lightning()
    cb = TuiTrainCallback("lt", tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        _fit(L, [cb], Tiny(fail_at=3))
    summary = _summary(cb.run.run_dir)
    assert summary["status"] == "failed" and "boom" in summary["reason"]
    assert "boom" in (cb.run.run_dir / "traceback.txt").read_text()


def test_pytorch_lightning_takes_its_own_callback(tmp_path):
    pl, TuiTrainCallback, Tiny = _lightning("pytorch_lightning")
    cb = TuiTrainCallback("pl", tmp_path)
    assert isinstance(cb, pl.Callback)
    _fit(pl, [cb], Tiny(), max_epochs=1)
    assert _summary(cb.run.run_dir)["status"] == "completed"
    assert _summary(cb.run.run_dir)["steps"] == STEPS_PER_EPOCH


# ---------------------------------------------------------------------- Hugging Face transformers


def _hf():
    """(transformers, its TuiTrainCallback) or a skip."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # the Trainer needs it: transformers[torch]
    from tui_train.integrations.transformers import TuiTrainCallback

    return transformers, TuiTrainCallback


def _tokens(n: int):
    import torch

    class Tokens(torch.utils.data.Dataset):
        """Random token ids of a 50-word vocabulary, random labels."""

        def __init__(self):
            g = torch.Generator().manual_seed(n)
            self.x = torch.randint(0, 50, (n, 8), generator=g)
            self.y = torch.randint(0, 2, (n,), generator=g)

        def __len__(self):
            return n

        def __getitem__(self, i):
            return {"input_ids": self.x[i], "labels": self.y[i]}

    return Tokens()


def _train(tmp_path, callbacks, *, eval_strategy="epoch", **args):
    """A tiny BERT classifier from a config (nothing downloaded), 32 samples in batches of 8: 4 steps an epoch."""
    transformers, _ = _hf()
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    settings = {"num_train_epochs": 2, "per_device_train_batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2,
                "save_strategy": "no", "disable_tqdm": True} | args
    training = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True,
                                              eval_strategy=eval_strategy, **settings)

    def accuracy(p):
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    trainer = transformers.Trainer(model=model, args=training, train_dataset=_tokens(32), callbacks=callbacks,
                                   eval_dataset=_tokens(16) if eval_strategy != "no" else None, compute_metrics=accuracy)
    trainer.train()
    return trainer


def _hf_poke(at: dict):
    """A TrainerCallback (after ours) that calls ``at[step](optimizer)`` at that step's end and
    records every step's LRs (all param groups)."""
    transformers, _ = _hf()

    class Poke(transformers.TrainerCallback):
        def __init__(self):
            self.lrs: dict[int, list[float]] = {}
            self.step = 0

        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            self.step = state.global_step
            self.lrs[self.step] = [g["lr"] for g in optimizer.param_groups]
            if self.step in at:
                at[self.step](optimizer)

    return Poke()


def test_hf_train_is_a_completed_run_with_metrics(tmp_path):
    transformers, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    assert isinstance(cb, transformers.TrainerCallback)
    _train(tmp_path, [cb])
    run_dir = cb.run.run_dir
    summary = _summary(run_dir)
    assert summary["status"] == "completed" and summary["steps"] == 8 and summary["epochs_completed"] == 2
    assert set(summary["val"]) == {"loss", "accuracy"}
    epochs = _metrics(run_dir, "EpochMetrics")
    assert [(e["epoch"], e["step"]) for e in epochs] == [(0, 4), (1, 8)]
    assert all(set(e["val"]) == {"loss", "accuracy"} and "loss" in e["train"] for e in epochs)
    steps = _metrics(run_dir, "StepMetrics")
    assert [s["step"] for s in steps] == [2, 4, 6, 8]  # logging_steps=2: one record per Trainer log
    config = (run_dir / "config.toml").read_text()
    assert "learning_rate = 0.001" in config and "batch_size = 8" in config and "max_steps = 8" in config
    assert summary["hyperparameters"]["optimizer"] == "adamw"  # accelerate's wrapper unwrapped
    assert (run_dir / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_hf_live_lr_sticks_through_the_trainers_scheduler(tmp_path, schedule):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    poke = _hf_poke({2: lambda optimizer: cb.run.place.submit(C.SetLearningRate(lr=0.05))})
    trainer = _train(tmp_path, [cb, poke], lr_scheduler_type=schedule)
    run_dir = cb.run.run_dir
    [applied] = _applied(run_dir, "SetLearningRate")
    assert applied["new"] == pytest.approx(0.05) and applied["step"] == 2
    for step in range(3, 9):  # after the change, the scheduler's every step: 0.05 times its factor
        factor = 1.0 if schedule == "constant" else (8 - step) / 8
        assert poke.lrs[step] == [pytest.approx(0.05 * factor)] * 2, (step, poke.lrs)
    assert trainer.lr_scheduler.base_lrs == [pytest.approx(0.05)] * 2
    assert _summary(run_dir)["status"] == "completed"


def test_hf_save_request_makes_the_trainer_save_and_says_where(tmp_path):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    _train(tmp_path, [cb, _hf_poke({2: lambda optimizer: cb.run.place.submit(C.SaveCheckpoint())})])
    run_dir = cb.run.run_dir
    folder = (tmp_path / "out" / "checkpoint-2").resolve()
    assert (folder / "trainer_state.json").exists() and list(folder.glob("model.safetensors*"))
    [save] = _applied(run_dir, "SaveCheckpoint")
    assert save["detail"] == f"the Trainer saves at this step into {(tmp_path / 'out').resolve()}"
    saved = [e for e in _events(run_dir) if e["event"] == "CheckpointSaved" and e["reason"] == "manual"]
    assert [(e["path"], e["step"]) for e in saved] == [(str(folder), 2)]
    summary = _summary(run_dir)
    assert summary["status"] == "completed" and summary["not_saved"] == []


def test_hf_validation_request_runs_the_trainers_evaluation(tmp_path):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    _train(tmp_path, [cb, _hf_poke({1: lambda optimizer: cb.run.place.submit(C.Validate())})])
    [val] = _metrics(cb.run.run_dir, "ValidationMetrics")  # the epoch-end evaluations close epochs instead
    assert val["step"] == 2 and set(val["metrics"]) == {"loss", "accuracy"}


def test_hf_validation_request_without_evaluation_is_answered(tmp_path):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    _train(tmp_path, [cb, _hf_poke({1: lambda optimizer: cb.run.place.submit(C.Validate())})], eval_strategy="no")
    notes = [e["message"] for e in _events(cb.run.run_dir) if e["event"] == "RunNote"]
    assert any("evaluates nothing" in n for n in notes), notes
    assert _summary(cb.run.run_dir)["status"] == "completed"


def test_hf_pause_from_a_viewer_holds_the_training_loop(tmp_path):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    viewer: list[PauseFromAViewer] = []

    def pause(optimizer):
        viewer.append(PauseFromAViewer(cb.run, lambda: poke.step))
        viewer[0].start()

    poke = _hf_poke({2: pause})
    _train(tmp_path, [cb, poke])
    viewer[0].check()
    assert _summary(cb.run.run_dir)["status"] == "completed" and _summary(cb.run.run_dir)["steps"] == 8


def test_hf_stop_ends_training_early(tmp_path):
    _, TuiTrainCallback = _hf()
    cb = TuiTrainCallback("hf", tmp_path / "runs")
    trainer = _train(tmp_path, [cb, _hf_poke({3: lambda optimizer: cb.run.place.submit(C.Stop(reason="enough"))})])
    summary = _summary(cb.run.run_dir)
    assert summary["status"] == "early_stopped"
    assert trainer.state.global_step == 4 and summary["steps"] == 4  # applied at step 4's end, before step 5
    assert (cb.run.run_dir / "checkpoints" / "last.pt").exists()
