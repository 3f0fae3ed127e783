"""Building a run: device, seed, data, model, optimizer and loss, from a config.

:func:`build` makes everything one training run needs and holds it in one typed place
(:class:`Runtime`), so nothing in the loop is half-built; :func:`load_data_for` and
:func:`build_model_for` are the part that evaluating a checkpoint shares with it.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import ConfigError, RunConfig, check_monitor
from tui_train.core.errors import one_line
from tui_train.core.target import Target, parse_target
from tui_train.core.train import threads as thread_count
from tui_train.core.train.distributed import World

LossFn = Callable[..., torch.Tensor]
"""loss(output, target, reduction="mean")."""


def pick_device(name: str) -> torch.device:
    """Resolve train.device; a requested device that is missing is a ConfigError."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device 'cuda': CUDA is not available on this machine (allowed here: auto, cpu)")
    if name == "mps" and not mps:
        raise ConfigError("train.device 'mps': MPS is not available on this machine (allowed here: auto, cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    """The configured optimizer over ``params`` (Adam/AdamW take momentum as beta1 when set)."""
    o = cfg.optim
    betas = (o.momentum if o.momentum > 0 else o.betas[0], o.betas[1])
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.name {o.name!r} is not supported")  # validation prevents this


def make_loss(cfg: RunConfig) -> LossFn:
    """loss(output, target, reduction) for the configured loss."""
    o = cfg.optim
    if o.loss == "cross_entropy":
        return lambda out, y, red="mean": F.cross_entropy(out, y, label_smoothing=o.label_smoothing, reduction=red)
    if o.loss == "mse":
        return lambda out, y, red="mean": F.mse_loss(out, y.view_as(out), reduction=red)
    if o.loss == "l1":
        return lambda out, y, red="mean": F.l1_loss(out, y.view_as(out), reduction=red)
    return lambda out, y, red="mean": F.huber_loss(out, y.view_as(out), delta=o.huber_delta, reduction=red)


def load_data_for(cfg: RunConfig, device: torch.device) -> Any:
    """The config's data (core.train.data.Data) on ``device``."""
    from tui_train.core.train.data import load_data

    return load_data(cfg.data, device, cfg.train.seed)


def build_model_for(cfg: RunConfig, data: Any, device: torch.device) -> torch.nn.Module:
    """The config's model for ``data`` (its input shape and output size), on ``device``.
    Evaluating a checkpoint builds its model with this and :func:`load_data_for`, as a run does."""
    from tui_train.core.train.models import build_model

    n_out = data.num_classes if data.task == "classification" else int(getattr(data, "output_dim", 1))
    return build_model(cfg.model, tuple(data.input_shape), n_out).to(device)


@dataclass
class Runtime:
    """Everything one training run trains with, built by :func:`build`."""

    device: torch.device
    """The training device."""
    data: Any
    """The loaded data (core.train.data.Data): splits, batches, normalization."""
    model: torch.nn.Module
    """The model (its state_dict is what checkpoints hold)."""
    forward: Callable[[torch.Tensor], torch.Tensor]
    """The model, or its torch.compile'd form (inside DistributedDataParallel when several
    processes train the run): what the training step calls."""
    eval_forward: Callable[[torch.Tensor], torch.Tensor]
    """What evaluation calls: as ``forward`` but never DDP-wrapped (each rank evaluates its own
    shard, then the sums are all-reduced)."""
    optimizer: torch.optim.Optimizer
    """The optimizer over the model's parameters."""
    loss_fn: LossFn
    """loss(output, target, reduction="mean")."""
    autocast: Callable[[], contextlib.AbstractContextManager]
    """A fresh bf16 autocast context, or a null context."""
    batches_per_epoch: int
    """Batches per epoch."""
    steps_per_epoch: int
    """Optimizer steps per epoch (batches / grad_accum, rounded up)."""
    total_steps: int
    """Optimizer steps planned for the whole run (max_steps applied)."""
    threads: int
    """torch's intra-op thread count for the whole run (measured before the first step, or
    reused from the resumed checkpoint, or set): recorded in every checkpoint."""
    summary: str
    """One-line model summary."""
    num_params: int
    """Trainable parameters."""
    target: Target | None = None
    """train.target, parsed for the dataset's task (known only once the data is loaded)."""
    bf16: bool = False
    """bf16 autocast is on (train.bf16 resolved for the device: 'auto' decides here)."""
    notes: list[str] = field(default_factory=list)
    """What the build decided that the event log should say once the run has started."""
    thread_candidates: list[int] = field(default_factory=list)
    """The intra-op thread counts :func:`settle_threads` may try ([] when the count is fixed)."""

    @property
    def task(self) -> str:
        """'classification' or 'regression'."""
        return self.data.task

    def run_started(self, config: RunConfig, state: Any, *, preset: str, run_dir: Any, hyperparameters: dict,
                    world_size: int) -> E.RunStarted:
        """What the built run announces first: its data, model and plan, where it starts (``state``:
        the core.state.TrainingState, a resume's position) and its pending breakpoints."""
        t = config.train
        return E.RunStarted(
            run_dir=str(run_dir.resolve()), preset=preset, device=str(self.device), task=self.task, epochs=t.epochs,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, train_size=self.data.train_size,
            val_size=self.data.val_size, test_size=self.data.test_size, num_params=self.num_params, model=self.summary,
            hyperparameters=hyperparameters, live=("lr",) + C.LIVE_HYPERPARAMETERS, start_step=state.step,
            start_epoch=state.epoch, world_size=world_size, max_steps=t.max_steps,
            length_policy=config.schedule.on_length_change, breakpoints=tuple(dict(b) for b in state.breakpoints))


def native_bf16(device: torch.device) -> str:
    """Why ``device`` computes bfloat16 natively ('AVX512-BF16', 'AMX', 'CUDA'), or '' when it
    does not (there bf16 autocast is emulated, and slower than float32)."""
    if device.type == "cuda":
        return "CUDA" if torch.cuda.is_bf16_supported() else ""
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        for name, probe in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")):
            try:
                if getattr(cpu, probe)():
                    return name
            except (AttributeError, RuntimeError):  # an older torch without the probe: not known to be native
                continue
    return ""


def resolve_bf16(setting: bool | str, device: torch.device) -> tuple[bool, str]:
    """``train.bf16`` for ``device``: (on, a note for the event log, '' when nothing to say).
    ``'auto'`` is on where bfloat16 is native; ``true`` on a CPU without it is kept, and said."""
    native = native_bf16(device)
    if setting == "auto":
        if native:
            return True, f"bf16: on (train.bf16 = 'auto': {device.type} with native bfloat16, {native})"
        return False, f"bf16: off (train.bf16 = 'auto': no native bfloat16 on this {device.type}, float32 is faster)"
    if setting and not native and device.type == "cpu":
        return True, "bf16: on, but this CPU has no native bfloat16 (no AVX512-BF16 or AMX): float32 may be faster ('auto' decides)"
    return bool(setting), ""


def configure_torch(cfg: RunConfig, device: torch.device) -> None:
    """Deterministic algorithms, or cuDNN autotuning on CUDA, before anything is built."""
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def check_task_fit(cfg: RunConfig, task: str) -> Target | None:
    """The loss, the monitored metric and train.target must fit the dataset's task (one-line
    ConfigError); returns train.target parsed for that task (a user dataset's is known only now)."""
    if task == "classification" and cfg.optim.loss != "cross_entropy":
        raise ConfigError(f"optim.loss {cfg.optim.loss!r} does not fit a classification dataset (allowed: cross_entropy)")
    if task == "regression" and cfg.optim.loss == "cross_entropy":
        raise ConfigError("optim.loss 'cross_entropy' does not fit a regression dataset (allowed: mse, l1, huber)")
    check_monitor(cfg, task, "early_stopping.monitor")
    return parse_target(cfg.train.target, task)


def _join(cfg: RunConfig, world: World) -> torch.device:
    """This process's intra-op threads and device, and (several ranks) the process group joined."""
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    elif world.enabled:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, world.local_world_size)))
    device = pick_device(cfg.train.device)
    if world.enabled and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    world.start(device)
    return device


def _model_for(cfg: RunConfig, data: Any, device: torch.device, world: World) -> tuple[torch.nn.Module, Any, Any]:
    """(the model, what evaluates it, what trains it): compiled when asked, inside
    DistributedDataParallel on several ranks (ranks > 0 then reseed their streams, so that their
    dropout does not repeat rank 0's)."""
    from tui_train.core.train.models import count_params

    model = build_model_for(cfg, data, device)
    if count_params(model) == 0:
        raise ConfigError(f"model.name {cfg.model.name!r}: the model has no trainable parameters (none, or every one "
                          f"has requires_grad=False): there is nothing to train")
    if cfg.train.channels_last and len(data.input_shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    plain = torch.compile(model) if cfg.train.compile else model
    forward = plain
    if world.enabled:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.train.compile:
            forward = torch.compile(forward)
        if world.rank > 0:
            seed_everything(cfg.train.seed + 1_000_003 * world.rank)
    return model, plain, forward


def build(cfg: RunConfig, world: World | None = None) -> Runtime:
    """Device, seed, data, model, optimizer and loss for ``cfg``. Raises ConfigError / DataError.

    The order is part of exact resume: the seed comes before the data split and the model's
    initialisation, and a checkpoint's RNG state is restored after all of it.

    With a ``world`` of several processes: this rank's CUDA device (one GPU per local rank), the
    process group, cores / local ranks intra-op threads (unless train.num_threads says), this
    rank's data shard, and the model inside DistributedDataParallel. Every rank initialises the
    model from the same seed (DDP also copies rank 0's weights); ranks > 0 then reseed their
    streams (dropout) so that they do not repeat rank 0's; augmentation draws per (rank, batch).

    The intra-op thread count is settled afterwards, by :func:`settle_threads` (after the dry
    run: measuring trains a scratch copy of the model, which must not be the first thing to meet
    a model that does not fit its data); ``thread_candidates`` holds the counts it will try.
    """
    from tui_train.core.train.models import count_params, describe_model

    world = world or World()
    device = _join(cfg, world)
    candidates = [] if world.enabled else thread_count.thread_candidates(device, cfg)
    configure_torch(cfg, device)
    seed_everything(cfg.train.seed)
    data = load_data_for(cfg, device)
    data.set_shard(world.rank, world.world_size)
    target = check_task_fit(cfg, data.task)
    if target is not None and target.split == "val" and not data.val_size:
        raise ConfigError(f"train.target {cfg.train.target!r}: this run has no validation split, so {target.metric} is never "
                          "measured (allowed: a train_* target, or data.val_fraction > 0)")
    model, plain, forward = _model_for(cfg, data, device, world)
    batches = data.steps_per_epoch(cfg.data.batch_size)
    steps = math.ceil(batches / cfg.optim.grad_accum)
    total = cfg.train.epochs * steps
    bf16, bf16_note = resolve_bf16(cfg.train.bf16, device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    loss_fn = make_loss(cfg)
    notes = [n for n in (getattr(data, "loader_note", ""), bf16_note) if n]
    return Runtime(
        device=device, data=data, model=model, forward=forward, eval_forward=plain,
        optimizer=build_optimizer(cfg, model.parameters()), loss_fn=loss_fn, autocast=autocast,
        batches_per_epoch=batches, steps_per_epoch=steps,
        total_steps=min(total, cfg.train.max_steps) if cfg.train.max_steps else total,
        threads=torch.get_num_threads(), summary=describe_model(model), num_params=count_params(model),
        target=target, bf16=bf16, notes=notes, thread_candidates=candidates)


def settle_threads(cfg: RunConfig, rt: Runtime, saved: int = 0) -> None:
    """Set the run's intra-op thread count: ``saved`` (what a resumed checkpoint recorded: the
    numerics depend on it), or the fastest of ``rt.thread_candidates`` on a scratch training
    step; a note for the event log says which. Nothing to do when the count is fixed
    (train.num_threads, torchrun, a GPU, one core)."""
    if not rt.thread_candidates:
        return
    if 0 < saved <= (os.cpu_count() or saved):
        torch.set_num_threads(saved)
        rt.notes.append(f"threads: using {saved} intra-op thread(s), as the resumed checkpoint recorded (the numerics depend on it)")
    else:
        default = torch.get_num_threads()
        try:
            x, y = rt.data.probe_batch("train", cfg.data.batch_size)
            step = thread_count.training_step_probe(rt.model, lambda params: build_optimizer(cfg, params), rt.loss_fn, x, y,
                                                    rt.autocast)
            chosen, rates = thread_count.choose_threads(rt.thread_candidates, step)
        except Exception as e:  # noqa: BLE001 - the measurement is an optimisation and must never fail a run
            # A user model may refuse a deep copy or raise on its Nth forward (a counter, a
            # deliberate fault): the run then trains, and fails if it must, as itself.
            torch.set_num_threads(default)
            rt.notes.append(f"threads: using {default} intra-op thread(s), not measured: a scratch copy of the model "
                            f"could not train ({one_line(e)})")
        else:
            measured = ", ".join(f"{n}: {r * x.shape[0]:,.0f} samples/s" for n, r in rates.items())
            again = f" (the checkpoint's {saved} is more than this machine's cores)" if saved else ""
            rt.notes.append(f"threads: using {chosen} intra-op thread(s), measured before the first step{again} ({measured})")
    rt.threads = torch.get_num_threads()
