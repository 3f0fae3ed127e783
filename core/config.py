"""Typed, frozen run configuration: load a preset (TOML), apply ``--set`` overrides, validate.

A preset is data. Every section and key is declared here as a frozen dataclass field with a
one-line ``doc`` and its allowed values; anything else is refused with a :class:`ConfigError`
whose message names the file, the key and what is allowed (one line, no traceback).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_train.core.errors import ConfigError
from tui_train.core.target import parse_target

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
"""Where the bundled presets live (installed as package data next to ``core``)."""

DEFAULT_PRESET = "digits-mlp"
"""The preset that the bare ``tui-train`` command selects."""

BUILTIN_DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "regression")
BUILTIN_MODELS = ("mlp", "cnn", "resnet", "regression")


def _f(default: Any, doc: str, **rules: Any) -> Any:
    """A config field: its default, a one-line doc and validation rules (min, max, choices...)."""
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, **rules})
    return field(default=default, metadata={"doc": doc, **rules})


@dataclass(frozen=True)
class AugmentConfig:
    """Per-batch random augmentation, applied to training batches only, on the training device."""

    rotation: float = _f(0.0, "max random rotation in degrees (0 = off)", min=0.0, max=180.0)
    translate: float = _f(0.0, "max random shift as a fraction of the image size (0 = off)", min=0.0, max=0.5)
    crop_padding: int = _f(0, "random crop after zero-padding by this many pixels (0 = off)", min=0, max=16)
    hflip: bool = _f(False, "random horizontal flip (never for digits or letters)")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split and preprocessed."""

    dataset: str = _f("digits", "digits | mnist | fashion-mnist | kmnist | cifar10 | regression | 'file.py:Name' | 'pkg.module:Name'", dataset=True)
    data_dir: str = _f("./data", "torchvision-layout root; datasets are downloaded here on first use")
    download: bool = _f(True, "download a missing torchvision dataset into data_dir")
    val_fraction: float = _f(0.1, "fraction of the training data held out for validation", min=0.0, max=0.9, max_exclusive=True)
    test_fraction: float = _f(0.2, "fraction held out for test where a dataset has no test split", min=0.0, max=0.9, max_exclusive=True)
    subset: int = _f(0, "use at most this many training samples (0 = all)", min=0)
    batch_size: int = _f(64, "training batch size", min=1, max=1_000_000)
    eval_batch_size: int = _f(1024, "batch size for validation and test", min=1, max=1_000_000)
    normalize: bool = _f(True, "standardize inputs (statistics computed once on the training split unless mean/std are given)")
    mean: list = _f([], "per-channel mean for normalization (empty = computed)", item=float)
    std: list = _f([], "per-channel std for normalization (empty = computed)", item=float, item_min=0.0, item_min_exclusive=True)
    loader: str = _f("auto", "auto (tensors on the device when possible) | tensor | dataloader", choices=("auto", "tensor", "dataloader"))
    num_workers: int = _f(0, "DataLoader workers for the dataloader path (0 avoids fork-from-threads deadlocks)", min=0, max=64)
    samples: int = _f(2000, "regression: number of synthetic samples", min=10, max=10_000_000)
    noise: float = _f(0.1, "regression: std of the noise added to the target", min=0.0)
    task: str = _f("auto", "auto | classification | regression (for user datasets)", choices=("auto", "classification", "regression"))
    num_classes: int = _f(0, "number of classes for a user dataset (0 = inferred)", min=0)
    kwargs: dict = _f({}, "keyword arguments passed to a user dataset")
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"doc": "per-batch augmentation"})


@dataclass(frozen=True)
class ModelConfig:
    """The network."""

    name: str = _f("mlp", "mlp | cnn | resnet | regression | 'file.py:Name' | 'pkg.module:Name'", model=True)
    hidden: list = _f([128], "hidden layer sizes (mlp, regression; fully connected part of cnn)", item=int, item_min=1)
    channels: list = _f([32, 64], "conv channels per block (cnn) or per stage (resnet)", item=int, item_min=1)
    activation: str = _f("relu", "relu | gelu | tanh | sigmoid | leaky_relu | silu", choices=("relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu"))
    dropout: float = _f(0.0, "dropout probability after each hidden layer", min=0.0, max=1.0, max_exclusive=True)
    batch_norm: bool = _f(False, "cnn: BatchNorm after each conv (the conv then has no bias)")
    first_stride: int = _f(1, "cnn: 2 makes the first conv stride 2 in place of its max-pool (4x less work in the widest block)", min=1, max=2)
    init: str = _f("default", "weight init: default | xavier | kaiming", choices=("default", "xavier", "kaiming"))
    kwargs: dict = _f({}, "keyword arguments passed to a user model")


@dataclass(frozen=True)
class OptimConfig:
    """Loss, optimizer and regularization."""

    name: str = _f("adam", "sgd | adam | adamw | rmsprop", choices=("sgd", "adam", "adamw", "rmsprop"))
    lr: float = _f(1e-3, "base learning rate (the schedule multiplies it)", min=0.0, min_exclusive=True, max=10.0)
    momentum: float = _f(0.0, "SGD/RMSprop momentum; Adam/AdamW beta1 when set above 0", min=0.0, max=1.0, max_exclusive=True)
    nesterov: bool = _f(False, "Nesterov momentum (SGD, needs momentum > 0)")
    betas: list = _f([0.9, 0.999], "Adam/AdamW betas", item=float, item_min=0.0, item_max=1.0, length=2)
    weight_decay: float = _f(0.0, "weight decay (decoupled for adamw)", min=0.0, max=1.0)
    l1: float = _f(0.0, "L1 penalty added to the loss: l1 * sum(|w|)", min=0.0, max=1.0)
    loss: str = _f("cross_entropy", "cross_entropy | mse | l1 | huber", choices=("cross_entropy", "mse", "l1", "huber"))
    label_smoothing: float = _f(0.0, "cross-entropy label smoothing", min=0.0, max=1.0, max_exclusive=True)
    huber_delta: float = _f(1.0, "Huber loss delta", min=0.0, min_exclusive=True)
    grad_clip: float = _f(0.0, "clip the global gradient norm to this (0 = off)", min=0.0)
    grad_accum: int = _f(1, "accumulate gradients over this many batches per optimizer step", min=1, max=1024)


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule: lr = base_lr * factor(step), recomputed every step."""

    name: str = _f("constant", "constant | step | exponential | cosine | onecycle | inverse_sqrt | plateau", choices=("constant", "step", "exponential", "cosine", "onecycle", "inverse_sqrt", "plateau"))
    warmup_steps: int = _f(0, "linear warmup over this many optimizer steps before the schedule", min=0)
    step_epochs: int = _f(10, "step: multiply by gamma every this many epochs", min=1)
    gamma: float = _f(0.1, "step: factor per step_epochs; exponential: factor per epoch", min=0.0, min_exclusive=True, max=1.0)
    min_factor: float = _f(0.0, "cosine: floor of the factor", min=0.0, max=1.0)
    onecycle_pct: float = _f(0.3, "onecycle: fraction of the run spent rising", min=0.0, min_exclusive=True, max=1.0, max_exclusive=True)
    onecycle_div: float = _f(25.0, "onecycle: start factor is 1/div", min=1.0)
    onecycle_final_div: float = _f(1e4, "onecycle: final factor is 1/(div*final_div)", min=1.0)
    plateau_factor: float = _f(0.1, "plateau: multiply by this when the monitored metric stalls", min=0.0, min_exclusive=True, max=1.0, max_exclusive=True)
    plateau_patience: int = _f(2, "plateau: epochs without improvement before reducing", min=0)
    on_length_change: str = _f("stretch", "when the run's length changes live (ctl set epochs N): stretch (the rest of the schedule re-laid over the new total from the current step: the LR does not jump and a cosine still ends at its floor) | keep (the schedule stays; steps past its end run at its final value)", choices=("stretch", "keep"))


@dataclass(frozen=True)
class TrainConfig:
    """The loop: length, logging, device and numerics."""

    epochs: int = _f(10, "number of epochs", min=1, max=100_000)
    max_steps: int = _f(0, "stop after this many optimizer steps (0 = no limit)", min=0)
    log_every: int = _f(20, "report step metrics every this many optimizer steps (one host sync each)", min=1)
    val_every: int = _f(1, "validate every this many epochs", min=1)
    device: str = _f("auto", "auto | cpu | cuda | mps (auto picks cuda, then mps, then cpu)", choices=("auto", "cpu", "cuda", "mps"), device=True)
    seed: int = _f(0, "random seed for splits, init, data order and augmentation", min=0, max=2**63 - 1)
    deterministic: bool = _f(False, "use deterministic algorithms (slower on GPU)")
    bf16: bool | str = _f(False, "bfloat16 autocast for the forward pass: true | false | 'auto' (on where the device has native bfloat16: a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX)", auto=True)
    channels_last: bool = _f(False, "channels_last memory format for conv models")
    compile: bool = _f(False, "torch.compile the model")
    num_threads: int = _f(0, "torch intra-op threads (0 = torch default)", min=0, max=1024)
    target: str = _f("", "end the run (completed, 'target reached') when a metric reaches a value: 'val_accuracy >= 0.99', 'val_loss <= 0.05', 'train_accuracy >= 0.99' ('' = no target)")
    on_nonfinite: str = _f("stop", "when the loss is NaN/inf: stop (save last good state, fail) | pause (wait for a command)", choices=("stop", "pause"))


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Automatic early stopping on a validation metric."""

    enabled: bool = _f(False, "stop when the monitored metric stops improving")
    monitor: str = _f("val_loss", "metric to monitor: val_loss | val_accuracy | val_f1 | val_mae | val_r2 | val_mse", choices=("val_loss", "val_accuracy", "val_f1", "val_mae", "val_r2", "val_mse"))
    mode: str = _f("auto", "min | max | auto (max for accuracy, f1 and r2)", choices=("auto", "min", "max"))
    patience: int = _f(5, "stop after this many validated epochs without improvement (0 behaves as 1)", min=0)
    min_delta: float = _f(0.0, "smallest change that counts as an improvement", min=0.0)


@dataclass(frozen=True)
class CheckpointConfig:
    """When checkpoints are written into the run's checkpoints/ folder."""

    every_steps: int = _f(0, "save every this many optimizer steps (0 = off)", min=0)
    every_epochs: int = _f(0, "save every this many epochs (0 = off)", min=0)
    save_best: bool = _f(True, "keep a checkpoint of the best epoch on the monitored metric")
    save_last: bool = _f(True, "save a checkpoint when the run ends")
    keep_last: int = _f(3, "keep this many periodic checkpoints (best and last are kept besides)", min=1)


@dataclass(frozen=True)
class RunConfig:
    """A whole run, as loaded from a preset and overrides."""

    name: str = _f("run", "short preset name, used in the run directory name")
    description: str = _f("", "one-line description shown in listings")
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "data"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"doc": "model"})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"doc": "loss and optimizer"})
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig, metadata={"doc": "learning-rate schedule"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "training loop"})
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig, metadata={"doc": "early stopping"})
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig, metadata={"doc": "checkpoints"})

    @property
    def monitor_mode(self) -> str:
        """'min' or 'max' for the early-stopping / best-checkpoint metric."""
        es = self.early_stopping
        if es.mode != "auto":
            return es.mode
        return "max" if es.monitor in ("val_accuracy", "val_f1", "val_r2") else "min"


# --------------------------------------------------------------------------- validation

def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any, meta: dict) -> str:
    if tp is list:
        return f"a list of {meta.get('item', float).__name__}s".replace("floats", "numbers")
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}.get(tp, str(tp))


def _check_number(where: str, v: float, meta: dict, prefix: str = "") -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{where}: must be a finite number, got {v}")
    lo, hi = meta.get(prefix + "min"), meta.get(prefix + "max")
    lo_x, hi_x = meta.get(prefix + "min_exclusive", False), meta.get(prefix + "max_exclusive", False)
    rng = _range_text(lo, hi, lo_x, hi_x)
    if lo is not None and (v < lo or (lo_x and v == lo)):
        raise ConfigError(f"{where}: {v} is out of range (allowed: {rng})")
    if hi is not None and (v > hi or (hi_x and v == hi)):
        raise ConfigError(f"{where}: {v} is out of range (allowed: {rng})")


def _range_text(lo, hi, lo_x, hi_x) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_x else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_x else '<='} {hi}")
    return " and ".join(parts) or "any finite number"


def is_file_spec(target: str) -> bool:
    """The part before ':Name' of a user spec names a file ('dir/file.py'), not a module ('pkg.module')."""
    return target.endswith(".py") or "/" in target or "\\" in target


def user_spec_absolute(spec: str) -> str:
    """``spec`` with a relative file path made absolute against the working directory
    (``"net.py:Net"`` -> ``"/home/me/proj/net.py:Net"``), so that the saved config records where
    the user's file was found and eval, export and --resume find it from any folder (issue 20
    defect 7). Built-in names and ``"package.module:Name"`` are returned as they are."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not is_file_spec(target):
        return spec
    path = os.path.expanduser(target)
    if os.path.isabs(path):
        return spec if path == target else f"{path}:{name}"
    return f"{os.path.abspath(path)}:{name}"


def _coerce(where: str, tp: Any, meta: dict, value: Any) -> Any:
    """Check ``value`` against a field's type and rules; return the stored value."""
    if meta.get("auto"):  # true | false | "auto" (resolved by the runtime for the device)
        if value == "auto" or isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true, false or 'auto', got {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        _check_number(where, value, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {str(value)[:20]}... is too large (allowed: {_range_text(meta.get('min'), meta.get('max'), meta.get('min_exclusive', False), meta.get('max_exclusive', False))})") from None
        _check_number(where, value, meta)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{where}: {value!r} is not allowed (allowed: {', '.join(choices)})")
        if meta.get("dataset") and value not in BUILTIN_DATASETS and ":" not in value:
            raise ConfigError(f"{where}: unknown dataset {value!r} (allowed: {', '.join(BUILTIN_DATASETS)}, or 'file.py:Name' / 'pkg.module:Name')")
        if meta.get("model") and value not in BUILTIN_MODELS and ":" not in value:
            raise ConfigError(f"{where}: unknown model {value!r} (allowed: {', '.join(BUILTIN_MODELS)}, or 'file.py:Name' / 'pkg.module:Name')")
        if meta.get("dataset") or meta.get("model"):
            return user_spec_absolute(value)
        return value
    if tp is list:
        item = meta.get("item", float)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(list, meta)}, got {value!r}")
        if "length" in meta and len(value) != meta["length"]:
            raise ConfigError(f"{where}: expected exactly {meta['length']} values, got {len(value)}")
        out = []
        for i, v in enumerate(value):
            w = f"{where}[{i}]"
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (item is int and not isinstance(v, int)):
                raise ConfigError(f"{where}: expected {_type_name(list, meta)}, got {value!r}")
            try:
                v = item(v)
            except OverflowError:
                raise ConfigError(f"{w}: {str(v)[:20]}... is too large for a number") from None
            _check_number(w, v, meta, prefix="item_")
            out.append(v)
        return out
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp}")  # pragma: no cover - schema bug


def _build(cls: type, raw: dict, source: str, prefix: str) -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            allowed = ", ".join(fields)
            kind = "section" if not prefix and isinstance(value, dict) else "key"
            raise ConfigError(f"{source}: unknown {kind} {dotted!r} (allowed{' in [' + prefix[:-1] + ']' if prefix else ''}: {allowed})")
        tp = hints[key]
        if _is_section(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' must be a table [{dotted}], got {value!r}")
            kwargs[key] = _build(tp, value, source, dotted + ".")
        else:
            kwargs[key] = _coerce(f"{source}: {dotted}", tp, dict(fields[key].metadata), value)
    return cls(**kwargs)


def _cross_check(cfg: RunConfig, source: str) -> RunConfig:
    """Rules that span several keys."""
    if cfg.optim.nesterov and (cfg.optim.name != "sgd" or cfg.optim.momentum <= 0):
        raise ConfigError(f"{source}: optim.nesterov needs optim.name = 'sgd' and optim.momentum > 0")
    if cfg.data.dataset == "regression" and cfg.optim.loss == "cross_entropy":
        raise ConfigError(f"{source}: optim.loss 'cross_entropy' does not fit dataset 'regression' (allowed: mse, l1, huber)")
    if cfg.data.mean and cfg.data.std and len(cfg.data.mean) != len(cfg.data.std):
        raise ConfigError(f"{source}: data.mean and data.std must have the same length")
    if bool(cfg.data.mean) != bool(cfg.data.std):
        raise ConfigError(f"{source}: data.mean and data.std must be given together")
    if cfg.data.augment.hflip and cfg.data.dataset in ("digits", "mnist", "kmnist"):
        raise ConfigError(f"{source}: data.augment.hflip does not make sense for {cfg.data.dataset} (mirrored characters are other symbols; allowed: hflip = false)")
    task = "regression" if cfg.data.dataset == "regression" else "classification" if cfg.data.dataset in BUILTIN_DATASETS else None
    check_monitor(cfg, task, source)
    parse_target(cfg.train.target, task, f"{source}: train.target")
    if cfg.data.dataset == "regression" and cfg.model.name in ("cnn", "resnet"):
        raise ConfigError(f"{source}: model.name {cfg.model.name!r} needs image data (allowed for regression: mlp, regression)")
    return cfg


MONITORS = {"classification": ("val_loss", "val_accuracy", "val_f1"), "regression": ("val_loss", "val_mse", "val_mae", "val_r2")}
"""Early-stopping / best-checkpoint metrics that fit each task."""


def check_monitor(cfg: RunConfig, task: str | None, source: str) -> None:
    """The monitored metric must exist for the task (else best/early stopping would never fire)."""
    if task in MONITORS and cfg.early_stopping.monitor not in MONITORS[task]:
        raise ConfigError(f"{source}: early_stopping.monitor {cfg.early_stopping.monitor!r} does not fit a {task} task (allowed: {', '.join(MONITORS[task])})")


def to_dict(cfg: Any) -> dict:
    """The config as plain nested dicts (TOML/JSON serializable)."""
    return dataclasses.asdict(cfg)


def from_dict(raw: dict, source: str = "<config>") -> RunConfig:
    """Validate a nested dict (for example parsed TOML) into a :class:`RunConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a table at top level")
    return _cross_check(_build(RunConfig, raw, source, ""), source)


def list_presets(extra_dirs: list[Path] | tuple = ()) -> dict[str, Path]:
    """Preset name -> file, bundled first, then ``*.toml`` in ``extra_dirs`` (later ones win)."""
    found: dict[str, Path] = {}
    for d in (PRESETS_DIR, *extra_dirs):
        d = Path(d)
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                if d == PRESETS_DIR or looks_like_preset(p):
                    found[p.stem] = p
    return found


def looks_like_preset(path: Path) -> bool:
    """A TOML file with a description and only known top-level keys (pyproject.toml is not one).
    A broken file that has a description still counts, so that loading it explains what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM is accepted, as read_toml does
    except (OSError, UnicodeDecodeError):
        return False
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "description" in text
    names = {f.name for f in dataclasses.fields(RunConfig)} | {SWEEP_TABLE, NOTIFY_TABLE}
    return "description" in raw and set(raw) <= names


def resolve_preset(name_or_path: str, extra_dirs: list[Path] | tuple = ()) -> Path:
    """A preset name or a path to a TOML file -> the file. Raises ConfigError when unknown."""
    p = Path(name_or_path)
    if p.is_dir() and (name_or_path.endswith(".toml") or "/" in name_or_path):
        raise ConfigError(f"{name_or_path}: is a folder, not a preset file (give a .toml file or a preset name)")
    if name_or_path.endswith(".toml") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{name_or_path}: no such preset file")
        return p
    presets = list_presets(extra_dirs)
    if name_or_path not in presets:
        raise ConfigError(f"unknown preset '{name_or_path}' (allowed: {', '.join(sorted(presets))}, or a path to a .toml file)")
    return presets[name_or_path]


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a one-line ConfigError."""
    try:
        # utf-8-sig: a UTF-8 BOM (Windows editors write one) is dropped; tomllib refuses it as an
        # "invalid statement" at line 1 (issue 20 defect 9)
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML ({e})") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value``; the value is read as a TOML value, else as a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, _, value = text.partition("=")
    key, value = key.strip(), value.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    if value == "":
        raise ConfigError(f"--set {text!r}: missing value after '='")
    if "\n" in value or "\r" in value:
        raise ConfigError(f"--set {text!r}: the value must be on one line")
    try:
        doc = tomllib.loads(f"v = {value}")
        if list(doc) != ["v"]:
            raise ConfigError(f"--set {text!r}: cannot parse value {value!r} (one TOML value expected)")
        parsed = doc["v"]
    except tomllib.TOMLDecodeError:
        # a comparison is a bare word too: --set train.target="val_accuracy >= 0.99" reaches us unquoted
        if any(c in value.replace(">=", "").replace("<=", "") for c in "[]{}\"'=\n"):
            raise ConfigError(f"--set {text!r}: cannot parse value {value!r} (use TOML syntax: 0.1, true, \"text\", [1, 2])") from None
        parsed = value  # bare word, e.g. optim.name=sgd
    return parts, parsed


def apply_overrides(raw: dict, overrides: list[str] | tuple = ()) -> dict:
    """Return a copy of ``raw`` with each ``section.key=value`` applied (validated later)."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: '{p}' is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


SWEEP_TABLE = "sweep"
"""A preset's ``[sweep]`` table: the search space of ``tui-train sweep`` (checked by
:mod:`tui_train.core.sweep.space`); a run of the preset ignores it."""


NOTIFY_TABLE = "notify"
"""A preset's ``[notify]`` table, ``urls = ["ntfy://topic", ...]``: where its runs' notifications go
(apprise URLs; core.run.notify). Not the run's config: a URL may hold a token, so it is never
written to config.toml, a checkpoint or an export; ``tui-train run`` reads it (:func:`notify_urls`)."""


def notify_urls(name_or_path: str, extra_dirs: list[Path] | tuple = ()) -> list[str]:
    """A preset's ``[notify] urls`` ([] without the table). A malformed table: ConfigError, one
    line that never shows a URL (it may hold a token)."""
    path = resolve_preset(name_or_path, extra_dirs)
    table = read_toml(path).get(NOTIFY_TABLE)
    if table is None:
        return []
    if not isinstance(table, dict) or set(table) - {"urls"}:
        raise ConfigError(f"{path}: [notify] takes one key, urls = [\"ntfy://topic\", \"json://host/path\"] (apprise URLs)")
    urls = table.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{path}: notify.urls must be a list of strings (apprise URLs such as \"ntfy://topic\")")
    return urls


def load_config(name_or_path: str = DEFAULT_PRESET, overrides: list[str] | tuple = (), extra_dirs: list[Path] | tuple = ()) -> RunConfig:
    """Load a preset by name or path, apply overrides, validate. Raises ConfigError."""
    path = resolve_preset(name_or_path, extra_dirs)
    raw = read_toml(path)
    raw.pop(SWEEP_TABLE, None)  # the sweep's, not the run's
    raw.pop(NOTIFY_TABLE, None)  # where notifications go (notify_urls), not the run's config
    raw.setdefault("name", path.stem)
    source = str(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
        source = f"{path} with --set {' '.join(overrides)}"
    return from_dict(raw, source)


def replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` with dotted keys: replace(cfg, **{"optim.lr": 0.1})."""
    nested: dict[str, dict] = {}
    flat = {}
    for k, v in changes.items():
        if "." in k:
            head, _, rest = k.partition(".")
            nested.setdefault(head, {})[rest] = v
        else:
            flat[k] = v
    for head, sub in nested.items():
        flat[head] = replace(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **flat)


def to_toml(cfg: Any) -> str:
    """Serialize a config to TOML text (a small writer: the schema has only plain values)."""
    d = to_dict(cfg)
    lines: list[str] = []

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return _toml_str(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{_key(k)} = {val(x)}" for k, x in v.items()) + "}"
        raise TypeError(type(v))

    def emit(table: dict, header: str) -> None:
        scalars = {k: v for k, v in table.items() if not (isinstance(v, dict) and k not in ("kwargs",))}
        subs = {k: v for k, v in table.items() if k not in scalars}
        if header:
            lines.append(f"\n[{header}]")
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {val(v)}")
        for k, v in subs.items():
            emit(v, f"{header}.{k}" if header else k)

    emit(d, "")
    return "\n".join(lines).lstrip() + "\n"


def _toml_str(v: str) -> str:
    """A TOML basic string: JSON escapes are TOML escapes; DEL must be escaped too."""
    return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(k: str) -> str:
    return k if k and k.isascii() and k.replace("_", "").replace("-", "").isalnum() else _toml_str(k)


def field_spec(dotted: str) -> tuple[Any, dict]:
    """(type, metadata) of a config field named ``section.key``: its doc and rules (min, max,
    choices...), for front ends and :mod:`core.limits` that must agree with the preset schema."""
    cls: Any = RunConfig
    *sections, name = dotted.split(".")
    for section in sections:
        cls = _hints(cls)[section]
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        raise KeyError(dotted)
    return _hints(cls)[name], dict(f.metadata)


def field_docs(cls: type = RunConfig, prefix: str = "") -> dict[str, str]:
    """Dotted key -> one-line doc, for help texts and the TUI."""
    out = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_section(hints[f.name]):
            out.update(field_docs(hints[f.name], f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = f.metadata.get("doc", "")
    return out


__all__ = [
    "DEFAULT_PRESET",
    "PRESETS_DIR",
    "AugmentConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "EarlyStoppingConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "field_docs",
    "field_spec",
    "from_dict",
    "list_presets",
    "load_config",
    "parse_override",
    "replace",
    "resolve_preset",
    "to_dict",
    "to_toml",
]
