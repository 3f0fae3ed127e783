"""The built-in networks (mlp, regression, cnn, resnet), user models, init and a one-line summary."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from tui_train.core.config import ConfigError, ModelConfig
from tui_train.core.errors import one_line
from tui_train.core.plugins import load_object

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}
"""Activation name (``model.activation``) -> module class."""

# Keys a built-in model reads from ``model.kwargs`` (user models get all of them).
_BUILTIN_KWARGS = {"mlp": (), "regression": (), "cnn": (), "resnet": ("blocks",)}


def _act(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


class MLP(nn.Sequential):
    """Flatten, then Linear + activation (+ Dropout) per hidden size, then a Linear head."""

    def __init__(self, in_features: int, hidden: list[int], num_outputs: int, activation: str = "relu",
                 dropout: float = 0.0, kind: str = "mlp") -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), _act(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = h
        layers.append(nn.Linear(prev, num_outputs))
        super().__init__(*layers)
        self.kind = kind
        self.sizes = [in_features, *hidden, num_outputs]

    def describe(self) -> str:
        """``mlp 784-512-256-10``."""
        return f"{self.kind} {'-'.join(map(str, self.sizes))}"


class CNN(nn.Module):
    """The classic MNIST CNN: (Conv3x3, [BatchNorm,] activation, MaxPool2) per channel entry, then an
    MLP head (a single Linear when ``hidden`` is empty)."""

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], hidden: list[int], num_outputs: int,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False, first_stride: int = 1) -> None:
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for i, ch in enumerate(channels):
            strided = i == 0 and first_stride == 2  # the first conv strides instead of pooling after it
            layers.append(nn.Conv2d(c, ch, 3, stride=2 if strided else 1, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(_act(activation))
            if strided:
                h, w = (h + 1) // 2, (w + 1) // 2
            elif h >= 2 and w >= 2:  # pooling a 1x1 map would fail: a deep stack on small images stops pooling
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = ch
        self.features = nn.Sequential(*layers)
        # the shape probe runs in eval mode: in train mode it counted a batch of zeros into
        # BatchNorm's running statistics (tests/unit/test_resume_more.py, num_batches_tracked)
        self.features.eval()
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).flatten(1).shape[1]
        self.features.train()
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(flat, hidden[0]), _act(activation)]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            head.append(nn.Linear(hidden[0], num_outputs))
        else:
            head.append(nn.Linear(flat, num_outputs))
        self.classifier = nn.Sequential(*head)
        convs = [f"{ch}s2" if i == 0 and first_stride == 2 else str(ch) for i, ch in enumerate(channels)]
        self.summary = (f"cnn {_shape_text(tuple(input_shape))} conv{'-'.join(convs)}{' bn' if batch_norm else ''} "
                        f"fc{'-'.join(map(str, [flat, *hidden[:1], num_outputs]))}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def describe(self) -> str:
        """``cnn 1x28x28 conv32-64 fc3136-128-10`` (``conv16s2-32-64``: the first conv strides 2)."""
        return self.summary


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and a residual connection (1x1 conv shortcut when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = _act(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = _act(activation)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """A small CIFAR ResNet: 3x3 stem, one stage of BasicBlocks per channel entry (stride 2 from
    the second), global average pooling, Linear."""

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], num_outputs: int,
                 activation: str = "relu", dropout: float = 0.0, blocks: int = 2) -> None:
        super().__init__()
        c0 = channels[0]
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0),
                                  _act(activation))
        stages: list[nn.Module] = []
        prev = c0
        for i, ch in enumerate(channels):
            stage = [BasicBlock(prev, ch, 2 if i > 0 else 1, activation)]
            stage += [BasicBlock(ch, ch, 1, activation) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            prev = ch
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(prev, num_outputs)
        self.summary = (f"resnet {_shape_text(tuple(input_shape))} stages {'-'.join(map(str, channels))} "
                        f"x{blocks} blocks -> {num_outputs}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(self.stages(self.stem(x)))))

    def describe(self) -> str:
        """``resnet 3x32x32 stages 64-128-256 x2 blocks -> 10``."""
        return self.summary


def _needs_image(cfg: ModelConfig, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 3:
        raise ConfigError(f"model.name {cfg.name!r}: needs image input (C, H, W), got shape {tuple(input_shape)} "
                          f"(allowed for vector data: mlp, regression)")


def _check_builtin_kwargs(cfg: ModelConfig) -> None:
    allowed = _BUILTIN_KWARGS[cfg.name]
    extra = sorted(set(cfg.kwargs) - set(allowed))
    if extra:
        what = f"allowed: {', '.join(allowed)}" if allowed else "model.kwargs is for user models"
        raise ConfigError(f"model.kwargs: unknown key(s) {', '.join(extra)} for model {cfg.name!r} ({what})")


def _build_builtin(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    _check_builtin_kwargs(cfg)
    if cfg.batch_norm and cfg.name != "cnn":
        raise ConfigError(f"model.batch_norm: only the cnn has this switch (model {cfg.name!r}; resnet always uses BatchNorm)")
    if cfg.first_stride != 1 and cfg.name != "cnn":
        raise ConfigError(f"model.first_stride: only the cnn has this key (model {cfg.name!r}; allowed: 1 for it)")
    if cfg.name in ("mlp", "regression"):
        return MLP(math.prod(input_shape), list(cfg.hidden), num_outputs, cfg.activation, cfg.dropout, kind=cfg.name)
    _needs_image(cfg, input_shape)
    channels = list(cfg.channels) or [32, 64]
    if cfg.name == "cnn":
        return CNN(tuple(input_shape), channels, list(cfg.hidden), num_outputs, cfg.activation, cfg.dropout,
                   cfg.batch_norm, cfg.first_stride)
    blocks = cfg.kwargs.get("blocks", 2)
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= 16:
        raise ConfigError(f"model.kwargs.blocks: expected an integer from 1 to 16, got {blocks!r}")
    return ResNet(tuple(input_shape), channels, num_outputs, cfg.activation, cfg.dropout, blocks)


def _build_user(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    if cfg.batch_norm:
        raise ConfigError(f"model.batch_norm: a switch of the built-in cnn; model {cfg.name!r} is a user model (build it into the model)")
    if cfg.first_stride != 1:
        raise ConfigError(f"model.first_stride: a key of the built-in cnn; model {cfg.name!r} is a user model (build it into the model)")
    factory = load_object(cfg.name, "model.name")
    kwargs: dict[str, Any] = dict(cfg.kwargs)
    # Convenience: a factory that declares these parameters gets them from the data unless set.
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    offered = {"input_shape": tuple(input_shape), "num_outputs": num_outputs, "num_classes": num_outputs}
    for key, value in offered.items():
        if key in params and key not in kwargs:
            kwargs[key] = value
    try:
        model = factory(**kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise ConfigError(f"model.name {cfg.name!r}: constructing the model failed ({one_line(e)})") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model.name {cfg.name!r}: returned {type(model).__name__}, not a torch.nn.Module")
    return model


OUTPUT_FORMS = "a tensor, a tuple or list (its first element), a dict or an object with 'logits'"
"""What a model's forward may return (README: user models)."""


def model_output(out: Any) -> torch.Tensor:
    """The tensor of a model's output: a tensor as it is, a tuple or list's first element, a dict's
    ``"logits"``, an object's ``.logits`` (as Hugging Face outputs). Training, evaluation and the
    exported program all read outputs through this. TypeError for anything else."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict):
        found = out.get("logits")
    else:
        found = getattr(out, "logits", None)
    if isinstance(found, torch.Tensor):
        return found
    raise TypeError(f"the model returned {describe_output(out)}; expected {OUTPUT_FORMS}")


def describe_output(out: Any) -> str:
    """A short description of what a forward returned, for messages: ``tuple of (Tensor, int)``."""
    if isinstance(out, torch.Tensor):
        dtype = str(out.dtype).removeprefix("torch.")
        return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype} tensor of shape {list(out.shape)}"
    if isinstance(out, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in out[:4]) + (", ..." if len(out) > 4 else "")
        return f"a {type(out).__name__} of ({inner})" if out else f"an empty {type(out).__name__}"
    if isinstance(out, dict):
        return f"a dict with keys {', '.join(map(repr, list(out)[:6])) or 'none'} (no tensor 'logits')"
    return f"a {type(out).__name__}" + (" (its .logits is not a tensor)" if hasattr(out, "logits") else "")


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialize Linear and Conv weights: ``xavier`` (uniform) or ``kaiming`` (normal, relu);
    biases to zero. ``default`` keeps PyTorch's initialization."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                raise ConfigError(f"model.init: {scheme!r} is not allowed (allowed: default, xavier, kaiming)")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def available_memory() -> int:
    """Bytes of memory the system can give this process now (psutil's ``available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def _check_size(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> None:
    """Refuse a built-in model whose weights cannot fit in memory, before allocating them: it is
    built on the meta device (no storage), counted and compared with what is available. A
    ``model.hidden = [100000, 100000, 100000]`` raised a 58-line allocation traceback (or, where
    memory is overcommitted, got the process killed) instead of one line (issue 20, defect 5)."""
    try:
        with torch.device("meta"):
            n = count_params(_build_builtin(cfg, input_shape, num_outputs))
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - the real build below reports its own problem
        return
    need = n * 4  # float32
    have = available_memory()
    if need > have:
        sizes = {"cnn": f"channels {list(cfg.channels)}, hidden {list(cfg.hidden)}", "resnet": f"channels {list(cfg.channels)}"}
        raise ConfigError(f"model {cfg.name!r} ({sizes.get(cfg.name, f'hidden {list(cfg.hidden)}')}): {n:,} parameters "
                          f"need {_gb(need)} for the float32 weights alone (training needs about 4x that with Adam), "
                          f"more than the {_gb(have)} of memory available; make the model smaller")


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The network named by ``cfg.name`` for inputs of ``input_shape`` (without the batch
    dimension) and ``num_outputs`` outputs, initialized per ``cfg.init``. Raises ConfigError,
    also (one line) for a model too large for the memory available."""
    input_shape = tuple(int(s) for s in input_shape)
    builtin = cfg.name in _BUILTIN_KWARGS
    if builtin:
        _check_size(cfg, input_shape, num_outputs)
    try:
        model = _build_builtin(cfg, input_shape, num_outputs) if builtin else _build_user(cfg, input_shape, num_outputs)
        init_weights(model, cfg.init)
    except (RuntimeError, MemoryError) as e:  # memory taken meanwhile, or a user model: one line, not a traceback
        if not isinstance(e, MemoryError) and "alloc" not in str(e) and "out of memory" not in str(e):
            raise
        raise ConfigError(f"model.name {cfg.name!r}: not enough memory to build the model ({one_line(e)[:300]})") from None
    return model


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_model(model: nn.Module) -> str:
    """One line, e.g. ``mlp 784-512-256-10 (535,818 params)``; class name for user models."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    describe = getattr(inner, "describe", None)
    head = describe() if isinstance(inner, (MLP, CNN, ResNet)) and callable(describe) else type(inner).__name__
    return f"{head} ({count_params(model):,} params)"


__all__ = ["ACTIVATIONS", "CNN", "MLP", "OUTPUT_FORMS", "BasicBlock", "ResNet", "available_memory", "build_model", "count_params",
           "describe_model", "describe_output", "init_weights", "model_output"]
