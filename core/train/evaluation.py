"""Evaluation: loss and metrics of a model on a split, the built-in loop's evaluations of its run
(:class:`RunEvaluation`), and the evaluation of a saved checkpoint."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from tui_train.core.config import RunConfig, from_dict, replace
from tui_train.core.plugins import use_run_roots
from tui_train.core.run.place import RunPlace
from tui_train.core.train import checkpoint as ckpt
from tui_train.core.train.distributed import World
from tui_train.core.train.metrics import ClassificationAccumulator, MistakeCollector, RegressionAccumulator, confusion_event
from tui_train.core.train.models import model_output
from tui_train.core.train.runtime import Runtime


class Interrupted(Exception):
    """The stop event was set during an interruptible evaluation: its metrics must not be used."""


def evaluate(model: torch.nn.Module, data, loss_fn, split: str, batch_size: int, device: torch.device, *,
             forward=None, autocast=contextlib.nullcontext, channels_last: bool = False,
             stop: threading.Event | None = None, world=None, mistakes=None,
             between: Callable[[], None] | None = None) -> tuple[dict, list]:
    """(metrics, confusion matrix rows) of ``model`` on ``data``'s 'val' or 'test' split ({} and
    [] when it is empty). ``forward`` is what to call (the compiled model; default ``model``).

    With ``stop``, the event is checked between batches and :class:`Interrupted` raised when it is
    set: metrics of a cut-short pass must never feed best checkpoints, early stopping or the
    plateau schedule. The model's train/eval mode is restored.

    With ``world`` (core.train.distributed.World of several ranks), ``data`` gives this rank's shard
    and the sums (confusion matrix, loss, counts) are added over the ranks before the metrics
    are computed: the metrics of the whole split, never an average of averages.

    With ``mistakes`` (a core.train.metrics.MistakeCollector, classification) every evaluated batch is
    shown to it too: the misclassified samples come from this pass, not from another one.

    ``between`` is called before every batch (the engine applies the commands that cannot change
    this pass there: the learning rate and the like); an inference-mode pass is unaffected by them.
    """
    if (data.val_size if split == "val" else data.test_size) == 0:  # the whole split's size: the same on every rank
        return {}, []
    forward = forward or model
    was_training = model.training
    model.eval()
    acc = ClassificationAccumulator(data.num_classes, device) if data.task == "classification" \
        else RegressionAccumulator(device, int(getattr(data, "output_dim", 1)))
    try:
        with torch.inference_mode():
            for x, y in data.eval_batches(split, batch_size):
                if stop is not None and stop.is_set():
                    raise Interrupted(split)
                if between is not None:
                    between()
                if channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast():
                    out = model_output(forward(x))
                out = out.float()
                acc.update(out, y, loss_fn(out, y, "sum"))
                if mistakes is not None and not mistakes.full:
                    mistakes.update(x, out, y)
        if world is not None:
            acc.reduce(world)
        return acc.compute()
    finally:
        model.train(was_training)


class RunEvaluation:
    """The built-in loop's evaluations of its run: :func:`evaluate` with the run's model, data,
    loss, evaluation forward, autocast, channels_last and eval batch size, and the loop's rules
    around it. A validation on one process may end early: its stop event is checked between
    batches (the run then ends ``interrupted``; the resumed run redoes it), and ``between`` is
    called there too (the commands that only change the next step). Several ranks evaluate their
    shards to the end and sum them (a rank leaving early would hang the others). A classification
    validation also collects mistakes, from the pass itself and from rank 0's shard only, and
    reports the confusion matrix (ConfusionMatrix).

    ``run`` is the evaluation function (:func:`evaluate`): the engine passes its own name for it,
    which tests/unit/test_options_effect.py replaces to script validation losses."""

    def __init__(self, place: RunPlace, rt: Runtime, config: RunConfig, world: World,
                 run: Callable[..., tuple[dict, list]] = evaluate):
        self.place = place
        """The run layer: the stop event, the sync strategy, the events."""
        self.rt = rt
        """The built run: model, evaluation forward, autocast, data, loss."""
        self.config = config
        """The run's config (eval batch size, channels_last)."""
        self.world = world
        """This process's rank in the run (its sums go over the ranks)."""
        self.run = run
        """The evaluation of a split (:func:`evaluate`)."""

    def __call__(self, split: str, interruptible: bool = True, between: Callable[[], None] | None = None) -> tuple[dict, list]:
        """(metrics, confusion) on 'val' or 'test'. ``interruptible``: a validation may end early
        (raises core.run.place.EndRun: interrupted, or preempted); ``between`` (one process only) is called
        between batches."""
        place, rt, cfg = self.place, self.rt, self.config
        # several ranks evaluate their shards to the end and sum (a rank leaving early would hang the others)
        solo = place.sync.solo
        stop = place.stop if interruptible and split != "test" and solo else None
        data = rt.data
        # mistakes: rank 0's shard only (the other ranks emit nothing), from the pass itself
        collect = split == "val" and data.task == "classification" and place.sync.is_main
        mistakes = MistakeCollector(data.input_shape, data.mean, data.std) if collect else None
        try:
            metrics, confusion = self.run(rt.model, data, rt.loss_fn, split, cfg.data.eval_batch_size, rt.device,
                                          forward=rt.eval_forward, autocast=rt.autocast,
                                          channels_last=cfg.train.channels_last, stop=stop,
                                          world=None if solo else self.world, mistakes=mistakes,
                                          between=between if solo else None)
        except Interrupted:
            raise place.end_asked(" during validation") from None  # interrupted, or preempted by the save signal
        if mistakes is not None and confusion:
            st = place.state
            place.emit(confusion_event(st.step, st.epoch, confusion, data.class_names, mistakes.payload()))
        return metrics, confusion


def _test_data(cfg, data_dir: str | None, device: str):
    """(config on ``device`` with ``data_dir``, the device, the loaded data): what evaluating a
    saved model on its run's data starts with (a checkpoint or an export alike)."""
    from tui_train.core.train.runtime import load_data_for, pick_device

    changes = {"train.device": device}
    if data_dir:
        changes["data.data_dir"] = data_dir
    cfg = replace(cfg, **changes)
    dev = pick_device(cfg.train.device)
    return cfg, dev, load_data_for(cfg, dev)


class _Callable(torch.nn.Module):
    """A function as a module with no submodules (its ``eval()`` and ``train()`` touch nothing)."""

    def __init__(self, fn):
        super().__init__()
        self._fn = (fn,)  # a tuple: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn[0](x)


def evaluate_export(path: Path, data_dir: str | None = None, device: str = "auto") -> dict:
    """Evaluate an export (a ``.pt2`` program, or ``.safetensors`` weights with their recorded
    model card) on the test split of the run's data: the same metrics as the run's. Raises
    CheckpointError / ConfigError / DataError with one-line messages."""
    import json

    from tui_train.core.train.runtime import make_loss

    path = Path(path)
    if not path.is_file():
        raise ckpt.CheckpointError(f"{path}: no such file")
    side = path.with_name(path.name + ".json")
    try:
        if path.suffix.lower() == ".safetensors" and not side.is_file():
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                card = json.loads((f.metadata() or {})["tui_train"])
        else:
            card = json.loads(side.read_text(encoding="utf-8"))
        raw_cfg = card["config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ckpt.CheckpointError(f"{path}: no tui-train model card ({side.name} or the file's tui_train metadata): "
                                   f"{type(e).__name__}: {e}") from None
    cfg = from_dict(raw_cfg, f"{path} (recorded config)")
    cfg, dev, data = _test_data(cfg, data_dir, device)
    if path.suffix.lower() == ".pt2":
        program = torch.export.load(str(path)).module().to(dev)
        mean, std = (card.get("normalize") or {}).get("mean"), (card.get("normalize") or {}).get("std")
        target = card.get("target")

        def forward(x: torch.Tensor) -> torch.Tensor:  # the data is normalised; the program wants it raw
            if mean:
                shape = (1, -1) + (1,) * (x.dim() - 2)
                x = x * torch.tensor(std, device=x.device).view(shape) + torch.tensor(mean, device=x.device).view(shape)
            out = program(x)
            return (out - target["mean"]) / target["std"] if target else out  # metrics in the run's (standardised) space

        model = _Callable(forward)  # an exported program refuses eval()/train(): evaluate calls them on this
    else:
        from safetensors.torch import load_file

        from tui_train.core.train.runtime import build_model_for

        model = build_model_for(cfg, data, dev)
        ckpt.load_model_state(model, load_file(str(path)), path)
        forward = model
    metrics, confusion = evaluate(model, data, make_loss(cfg), "test", cfg.data.eval_batch_size, dev, forward=forward)
    return {"checkpoint": str(path.resolve()), "preset": card.get("preset"), "step": card.get("step"),
            "epoch": card.get("epoch"), "test_size": data.test_size, "metrics": metrics, "confusion": confusion}


def evaluate_checkpoint(path: str | Path, data_dir: str | None = None, device: str = "auto") -> dict:
    """Evaluate a checkpoint (file, or run directory meaning its newest) on the test split.

    Returns {checkpoint, preset, step, epoch, test_size, metrics, confusion}. Raises
    CheckpointError, ConfigError or DataError with one-line messages.
    """
    from tui_train.core.train.runtime import build_model_for, make_loss

    path = ckpt.resolve(Path(path))
    payload = ckpt.load(path)
    use_run_roots(payload.get("import_roots"))  # its user code, from wherever eval runs
    cfg = from_dict(payload["config"], f"{path} (saved config)")
    cfg, dev, data = _test_data(cfg, data_dir, device)
    model = build_model_for(cfg, data, dev)
    ckpt.load_model_state(model, payload["model"], path)
    metrics, confusion = evaluate(model, data, make_loss(cfg), "test", cfg.data.eval_batch_size, dev)
    return {"checkpoint": str(path.resolve()), "preset": payload.get("preset"), "step": payload.get("step"),
            "epoch": payload.get("epoch"), "test_size": data.test_size, "metrics": metrics, "confusion": confusion}
