"""Steer a Hugging Face ``Trainer`` run: ``Trainer(..., callbacks=[TuiTrainCallback("my-exp")])`` (issue 23).

Where the run's moments fall in the Trainer's loop:

- ``on_train_begin``: :func:`tui_train.init` with the model, the optimizer and the LR scheduler
  the Trainer made, and ``args.to_dict()`` (plain values) as the config;
- ``on_step_end`` (after the optimizer and the scheduler stepped): :meth:`Run.log
  <tui_train.loop.Run.log>`, the step boundary: commands apply there, so a pause holds the training
  loop; a new LR scales the param groups and the scheduler's ``base_lrs``, so the scheduler, which
  rewrites the LR every step, keeps it; a stop sets ``control.should_training_stop``, a checkpoint
  request ``control.should_save`` (the Trainer saves its own checkpoint folder, in
  ``output_dir``, right after this hook), a validation request ``control.should_evaluate``;
- ``on_log``: the train loss (and ``grad_norm``), as the Trainer logs them: every ``logging_steps`` steps, the mean of
  those steps (set ``logging_steps`` low, e.g. 10, to see the curve live; the default is 500);
- ``on_evaluate``: ``eval_*`` metrics as the run's validation (``eval_accuracy`` is ``val_accuracy``);
  an evaluation at an epoch's end closes the epoch with it;
- ``on_save``: every checkpoint folder the Trainer writes is announced (CheckpointSaved);
- ``on_train_end``: :meth:`Run.finish <tui_train.loop.Run.finish>`.

The Trainer has no hook for an exception: one that leaves ``trainer.train()`` and ends the script
ends the run ``failed`` when the interpreter exits (:func:`tui_train.init` registers that), and
``callback.run.fail(exc)`` does it at once where the script catches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
except ModuleNotFoundError as e:
    if e.name != "transformers":
        raise
    raise ImportError("tui_train.integrations.transformers needs transformers: pip install 'tui-train[transformers]'") from None

from tui_train.core import events as E
from tui_train.integrations._common import checkpoint_saved, plain, scalar, several_processes, val_metrics

__all__ = ["TuiTrainCallback"]

FIRST = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "per_device_train_batch_size",
         "gradient_accumulation_steps", "max_grad_norm", "seed")
"""Training arguments recorded first (the viewers list hyperparameters in config order, and a
small terminal shows the first rows); the other hundred follow. ``epochs``, ``max_steps`` and
``batch_size`` (samples per optimizer step) lead, as the Trainer computed them."""

EVAL_TIMINGS = ("runtime", "samples_per_second", "steps_per_second", "model_preparation_time")
"""``eval_*`` entries of the Trainer's metrics that time the evaluation: not validation metrics."""


class TuiTrainCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` that makes ``trainer.train()`` a tui-train run: a run
    directory, the control endpoint, pause, live LR/momentum/weight decay, checkpoints on request
    (the Trainer's own), evaluation on request, early stop (see the module docstring)."""

    def __init__(self, name: str = "transformers", runs_dir: str = "runs", *, config: dict[str, Any] | None = None,
                 task: str = "classification", endpoint: bool = True, signals: bool = True):
        """``name``: the run's name (its directory is ``<runs_dir>/<stamp>-<name>``). ``config``:
        recorded over the training arguments. ``task``, ``endpoint``, ``signals``: as for
        :func:`tui_train.init`."""
        self.name, self.runs_dir, self.extra = name, runs_dir, dict(config or {})
        self.task, self.endpoint, self.signals = task, endpoint, signals
        self.run: Any = None
        """The :class:`tui_train.loop.Run` of the current ``train()``, once it started."""
        self._output_dir = ""
        self._evaluates = False  # the Trainer has an eval_dataset (an eval_strategy other than 'no' requires one)
        self._per_step = 1  # samples in one optimizer step, all processes and accumulated micro-batches
        self._logged_step = 0  # the global step of the last train loss logged
        self._epochs = 0  # epochs closed so far
        self._pending_epoch: int | None = None  # ended, waiting for the evaluation the Trainer runs right after
        self._save_reason: str | None = None  # a checkpoint asked, not yet written by the Trainer

    # ------------------------------------------------------------------ start

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       lr_scheduler: Any = None, **kwargs: Any) -> None:
        import tui_train

        self.run = None
        if several_processes("the Hugging Face Trainer", args.world_size):
            return
        self._output_dir = str(Path(args.output_dir).resolve())
        self._evaluates = str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "no"
        self._per_step = max(1, args.train_batch_size * args.gradient_accumulation_steps * args.world_size)
        self._logged_step = state.global_step
        self._epochs, self._pending_epoch, self._save_reason = int(state.epoch or 0), None, None
        given = plain(args.to_dict())
        config = {"epochs": int(state.num_train_epochs), "max_steps": int(state.max_steps), "batch_size": self._per_step}
        config |= {k: given[k] for k in FIRST if k in given} | {k: v for k, v in given.items() if k not in config}
        config.update(plain(self.extra))
        # log_every=1: each train loss the Trainer logs is already the mean of logging_steps steps
        self.run = tui_train.init(self.name, config=config, model=model, optimizer=_unwrap_optimizer(optimizer),
                                  scheduler=_unwrap_scheduler(lr_scheduler), runs_dir=self.runs_dir, task=self.task,
                                  log_every=1, endpoint=self.endpoint, signals=self.signals, save_hook=self._save)

    # ------------------------------------------------------------------ the loop

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close_epoch({}, state, control)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._log({}, state, control)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        loss = scalar((logs or {}).get("loss"))
        run = self._live()
        if run is None or loss is None:  # eval logs come through on_evaluate; the closing train_loss is a summary
            return
        # The Trainer logs the mean of the steps since its last log: samples per second counts them all
        samples = self._per_step * max(1, state.global_step - self._logged_step)
        self._logged_step = state.global_step
        grad_norm = scalar(logs.get("grad_norm"))  # a series of its own next to the loss
        self._log({"loss": loss} | ({"grad_norm": grad_norm} if grad_norm is not None else {}), state, control, samples)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._live() is not None:
            self._pending_epoch = self._epochs
            self._epochs += 1

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        val = val_metrics(metrics or {}, ("eval_",), skip=EVAL_TIMINGS)
        if self._pending_epoch is not None:
            self._close_epoch(val, state, control)
        elif val:
            self._log(val, state, control)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live()
        if run is None:
            return
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        reason, self._save_reason = self._save_reason or "periodic", None
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir():
            checkpoint_saved(run, folder, reason)
        else:  # a hyperparameter search saves under a run folder of its own
            run.place.emit(E.RunNote(message=f"the Trainer saved a checkpoint ({reason}) outside {self._output_dir}", step=run.step))

    def _close_epoch(self, val: dict[str, float], state: Any, control: Any) -> None:
        """The epoch that ended closes, with the evaluation run at its end (if any)."""
        if self._pending_epoch is not None and self._live() is not None:
            epoch, self._pending_epoch = self._pending_epoch, None
            self._log({"epoch": epoch, **val}, state, control)

    def _log(self, metrics: dict[str, float], state: Any, control: Any, samples: int | None = None) -> None:
        """:meth:`Run.log` at the Trainer's global step, then what it decided, told to the Trainer."""
        run = self._live()
        if run is None:
            return
        run.log(metrics, step=state.global_step, samples=samples)
        if run.should_stop:
            control.should_training_stop = True
        if self._save_reason is not None:  # asked again each hook until on_save: on_step_begin clears the flag
            control.should_save = True
        if run.should_validate:
            if self._evaluates:
                control.should_evaluate = True
            else:
                run.should_validate = False
                run.place.emit(E.RunNote(message="validation asked: this Trainer evaluates nothing (eval_strategy='no'); "
                                                 "give it an eval_dataset and an eval_strategy", step=run.step))

    # ------------------------------------------------------------------ the end

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live()
        if run is None:
            return
        self._close_epoch({}, state, control)
        if self._save_reason is not None:
            run.place.not_written(self._save_reason, "training ended before the Trainer reached its next save")
            self._save_reason = None
        run.finish()

    def _live(self) -> Any:
        run = self.run
        return run if run is not None and not run.finished else None

    def _save(self, reason: str) -> str:
        """A checkpoint request: the Trainer writes its own (model, optimizer, scheduler, RNG and
        trainer state; ``trainer.train(resume_from_checkpoint=...)`` resumes from it) right after the hook."""
        self._save_reason = reason
        return f"the Trainer saves at this step into {self._output_dir}"


def _unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside accelerate's wrapper (the same param groups; its own name and state)."""
    import torch

    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


def _unwrap_scheduler(scheduler: Any) -> Any:
    """The torch LR scheduler inside accelerate's wrapper (whose ``base_lrs`` a live LR change scales)."""
    if scheduler is not None and not hasattr(scheduler, "base_lrs") and hasattr(getattr(scheduler, "scheduler", None), "base_lrs"):
        return scheduler.scheduler
    return scheduler
