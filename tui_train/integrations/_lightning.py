"""The Lightning callback's hooks, for ``lightning.pytorch`` and ``pytorch_lightning`` alike.

The two packages are the same code under two names, and each Trainer wants callbacks of its own
package's ``Callback``; so the hooks live here, in a mixin that imports neither (it only reads the
trainer's public attributes), and :mod:`tui_train.integrations.lightning` and
:mod:`tui_train.integrations.pytorch_lightning` each make a ``TuiTrainCallback`` of it.

Where the run's moments fall in Lightning's loop:

- ``on_fit_start``: :func:`tui_train.init` (the optimizers and schedulers exist by then);
- ``on_train_batch_end``: :meth:`Run.log <tui_train.loop.Run.log>`, the step boundary: commands
  apply there, so a pause holds the training loop, and a new LR is in the optimizer before the next
  batch; a stop sets ``trainer.should_stop`` (Lightning then validates and leaves, as for its
  own EarlyStopping);
- ``on_validation_end``: the validation metrics, read from ``trainer.callback_metrics``. Not
  ``on_validation_epoch_end``: callbacks get that hook before the module's own
  ``on_validation_epoch_end``, where metrics are often computed and logged (EarlyStopping and
  ModelCheckpoint read them at ``on_validation_end`` too);
- ``on_train_epoch_end``: the epoch closes (``epoch``) with the validation Lightning ran at its
  end; a validation inside an epoch (``val_check_interval``) is reported before the next batch;
- ``on_fit_end``: :meth:`Run.finish <tui_train.loop.Run.finish>`; ``on_exception``: the run fails
  (Ctrl+C: ``interrupted``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from tui_train.core import events as E
from tui_train.core.run.checkpoints import TMP_PREFIX, checkpoint_name
from tui_train.integrations._common import checkpoint_saved, plain, scalar, several_processes, val_metrics

LOSS_KEYS = ("train_loss_step", "train_loss", "loss_step", "loss")
"""Where the loss is looked for in ``trainer.callback_metrics`` when ``training_step`` returned none
(manual optimization): the ``_step`` value of a metric logged per step and per epoch first."""

ACCURACY_NAMES = ("accuracy", "acc", "train_accuracy", "train_acc")
"""Train accuracy: a key of ``training_step``'s returned dict, or a metric logged with ``self.log``."""

VAL_PREFIXES = ("val_", "val/")
"""Metrics logged under these prefixes during validation are the run's validation metrics."""


class LightningHooks:
    """The hooks of ``TuiTrainCallback`` (see the module docstring). Lightning calls them; a run
    starts with each ``trainer.fit`` and is :attr:`run` (None before, and in a run with several
    processes, which this callback does not steer)."""

    def __init__(self, name: str = "lightning", runs_dir: str | os.PathLike = "runs", *, config: Mapping[str, Any] | None = None,
                 task: str = "classification", log_every: int = 20, endpoint: bool = True, signals: bool = True):
        """``name``: the run's name (its directory is ``<runs_dir>/<stamp>-<name>``). ``config``:
        recorded over the module's ``hparams`` (``save_hyperparameters()``); ``batch_size`` there
        gives samples per second. ``task``, ``log_every``, ``endpoint``, ``signals``: as for
        :func:`tui_train.init`."""
        self.name, self.runs_dir, self.extra = name, runs_dir, dict(config or {})
        self.task, self.log_every, self.endpoint, self.signals = task, log_every, endpoint, signals
        self.run: Any = None
        """The :class:`tui_train.loop.Run` of the current fit, once it started."""
        self._val: dict[str, float] = {}  # the last validation, not yet reported (it closes the epoch with it)
        self._told_validate = False

    # ------------------------------------------------------------------ start

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        import tui_train

        self.run, self._val, self._told_validate = None, {}, False
        if several_processes("the Lightning Trainer", trainer.world_size):
            return
        optimizers = list(trainer.optimizers)
        configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
        run = tui_train.init(self.name, config=self._config(trainer, pl_module), model=pl_module,
                             optimizer=optimizers[0] if optimizers else None, scheduler=configs[0].scheduler if configs else None,
                             runs_dir=self.runs_dir, task=self.task, log_every=self.log_every, endpoint=self.endpoint,
                             signals=self.signals, save_hook=partial(self._save, trainer))
        if len(optimizers) > 1:
            run.place.emit(E.RunWarning(message=f"{len(optimizers)} optimizers: live changes act on the first one only "
                                                f"({type(optimizers[0]).__name__})", step=run.step))
        self.run = run

    def _config(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        """The module's hparams, the planned epochs and steps (they size the progress bars), then ``config``."""
        config = plain(dict(getattr(pl_module, "hparams", None) or {}))
        if isinstance(trainer.max_epochs, int) and trainer.max_epochs > 0:
            config.setdefault("epochs", trainer.max_epochs)
        steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if steps is None:
            try:
                estimate = trainer.estimated_stepping_batches
            except Exception:  # noqa: BLE001 - an estimate for the progress bar only; an unsized loader has none
                estimate = None
            steps = int(estimate) if isinstance(estimate, int | float) and math.isfinite(estimate) else None
        if steps:
            config.setdefault("max_steps", steps)
        config.update(plain(self.extra))
        return config

    # ------------------------------------------------------------------ the loop

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        run = self._live()
        if run is None:
            return
        if self._val:  # a validation inside the epoch (val_check_interval), at the step it ran
            run.log(self._val)
            self._val = {}
        run.log(_train_metrics(trainer, outputs), step=trainer.global_step)
        self._steer(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        run = self._live()
        if run is None or trainer.sanity_checking:
            return
        if self._val:  # two validations with no train step between them: the first one on its own
            run.log(self._val)
        self._val = val_metrics(trainer.callback_metrics, VAL_PREFIXES)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        run = self._live()
        if run is None:
            return
        run.log({"epoch": trainer.current_epoch, **self._val})
        self._val = {}
        self._steer(trainer)

    def _steer(self, trainer: Any) -> None:
        """What the step boundary decided, told to Lightning."""
        run = self.run
        if run.should_stop:
            trainer.should_stop = True
        if run.should_validate and not self._told_validate:
            # Lightning has no public "validate now" inside fit: the request stays open (a viewer
            # sees it answered when the next scheduled validation is logged) and this says so
            run.place.emit(E.RunNote(message="validation asked: Lightning validates on its own schedule "
                                             "(check_val_every_n_epoch, val_check_interval); its next one answers", step=run.step))
        self._told_validate = run.should_validate

    # ------------------------------------------------------------------ the end

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        run = self._live()
        if run is None:
            return
        if self._val:
            run.log(self._val)
            self._val = {}
        run.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        run = self._live()
        if run is None:
            return
        if isinstance(exception, KeyboardInterrupt):
            run.finish("interrupted", "KeyboardInterrupt (Ctrl+C)")
        else:
            run.fail(exception)

    def _live(self) -> Any:
        run = self.run
        return run if run is not None and not run.finished else None

    # ------------------------------------------------------------------ checkpoint on request

    def _save(self, trainer: Any, reason: str) -> str:
        """A checkpoint in Lightning's own format (``trainer.save_checkpoint``: weights, optimizers,
        schedulers, callbacks' and loops' states; ``Trainer.fit(ckpt_path=...)`` resumes from it),
        as ``<run_dir>/checkpoints/step-...-<reason>.ckpt``: written beside, fsynced, renamed."""
        run = self.run
        name = checkpoint_name(run.step, reason).removesuffix(".pt") + ".ckpt"
        path = run.place.ckpt_dir / name
        tmp = path.with_name(f"{TMP_PREFIX}{name}.{os.getpid()}")
        try:
            trainer.save_checkpoint(tmp, weights_only=False)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        checkpoint_saved(run, path, reason)
        return f"saved {path.resolve()}"


def _train_metrics(trainer: Any, outputs: Any) -> dict[str, float]:
    """The batch's loss (from ``training_step``'s output, else the logged metrics) and accuracy
    (a returned ``acc``/``accuracy``, else a logged ``acc``, ``accuracy``, ``train_acc``...)."""
    logged = trainer.callback_metrics
    found = outputs if isinstance(outputs, Mapping) else {}
    out = {}
    loss = scalar(found.get("loss") if found else outputs)
    if loss is None:
        loss = next((v for v in (scalar(logged.get(k)) for k in LOSS_KEYS) if v is not None), None)
    if loss is not None:
        out["loss"] = loss
    for name in ACCURACY_NAMES:
        for v in (found.get(name), logged.get(name + "_step"), logged.get(name)):
            acc = scalar(v)
            if acc is not None:
                out["accuracy"] = acc
                return out
    return out
