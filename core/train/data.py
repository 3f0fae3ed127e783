"""Datasets, splits, normalization, seeded batch order and on-device augmentation.

:func:`load_data` turns a :class:`~core.config.DataConfig` into a :class:`Data`: the splits,
their shapes and statistics, and two iterators (``train_batches`` and ``eval_batches``).

Reproducibility without saved RNG state: the order of epoch ``e`` is
``randperm(n, Generator().manual_seed(mix(seed, e)))`` and the augmentation of batch ``i`` of
epoch ``e`` draws from ``Generator().manual_seed(mix(seed, e, i))`` (both CPU generators), so a
run resumed at any batch sees exactly the batches it would have seen.

Two paths: the tensor path holds every split as tensors on the device and gathers batches
with ``x[idx]`` (no workers, no host round trip); the DataLoader path serves large user
datasets with the same seeded order and normalizes/augments each batch on the device.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset, default_collate

from tui_train.core.config import AugmentConfig, ConfigError, DataConfig
from tui_train.core.errors import one_line
from tui_train.core.plugins import USER_MODULES, ensure_user_modules, load_object


class DataError(RuntimeError):
    """The data cannot be loaded or is malformed. ``str(err)`` is one line saying what and how to fix it."""


AUTO_TENSOR_MAX_ITEMS = 100_000
"""loader='auto': user datasets with fewer items than this may be held as tensors..."""
AUTO_TENSOR_MAX_BYTES = 1 << 30
"""...if they also stack to less than this many bytes (float32)."""
STATS_MAX_ITEMS = 10_000
"""DataLoader path: normalization statistics are estimated on at most this many training items."""
PROBE_ITEMS = 64
"""loader='auto': items of each user split read a second time and compared with the first read
before the split is held as tensors (an item random one read in ten is caught with p = 0.999)."""

# name -> (torchvision class, folder under data_dir that holds the files)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "kmnist": ("KMNIST", "KMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


# --------------------------------------------------------------------------- seeds and order

def mix_seed(*parts: Any) -> int:
    """A stable 63-bit seed from ints/strings (unlike ``hash()``, the same in every process and version)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _generator(*parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(mix_seed(*parts))


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The (CPU, int64) order of the ``n`` training samples in ``epoch``: stateless in (seed, epoch)."""
    return torch.randperm(n, generator=_generator(seed, "order", epoch))


def _carve(n: int, fraction: float, seed: int, salt: str) -> tuple[Tensor, Tensor]:
    """Split ``range(n)`` into (rest, held-out) with a fixed seeded permutation; held = round(n * fraction)."""
    perm = torch.randperm(n, generator=_generator(seed, "split", salt))
    k = min(max(round(n * fraction), 0), max(n - 1, 0))
    return perm[k:], perm[:k]


# --------------------------------------------------------------------------- augmentation

class _Augmenter:
    """Random rotation/translation/crop/flip of a batch, as one affine_grid + grid_sample on the device.

    The random parameters come from a CPU generator seeded by (seed, epoch, batch index); only a
    (B, 2, 3) matrix travels to the device. Zero padding means the raw value 0 (black), whatever
    the normalization: pixels read from outside the image get the normalized value of 0.
    """

    def __init__(self, cfg: AugmentConfig, seed: int, fill: Tensor | None) -> None:
        self.cfg = cfg
        self.seed = seed
        self.fill = fill  # (1, C, 1, 1) on the device, or None for 0
        self.smooth = cfg.rotation > 0 or cfg.translate > 0
        self.active = self.smooth or cfg.crop_padding > 0 or cfg.hflip

    def theta(self, shape: Sequence[int], epoch: int, index: int) -> Tensor:
        """The (B, 2, 3) affine matrices (output -> input, normalized coordinates) for one batch."""
        b, _, h, w = shape
        a = self.cfg
        g = _generator(self.seed, "augment", epoch, index)
        # Draw every parameter, used or not, in a fixed order: batch i's values depend only on (seed, epoch, i).
        u = torch.rand(b, 4, generator=g, dtype=torch.float64)
        crop = torch.randint(-a.crop_padding, a.crop_padding + 1, (b, 2), generator=g, dtype=torch.float64)
        flip = torch.rand(b, generator=g, dtype=torch.float64) < 0.5
        angle = torch.deg2rad((2 * u[:, 0] - 1) * a.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        sx = torch.where(flip, -1.0, 1.0) if a.hflip else torch.ones(b, dtype=torch.float64)
        theta = torch.zeros(b, 2, 3, dtype=torch.float64)
        # Pixel-space rotation expressed in normalized coordinates (exact for non-square images too).
        theta[:, 0, 0] = cos * sx
        theta[:, 0, 1] = -sin * (h / w)
        theta[:, 1, 0] = sin * (w / h) * sx
        theta[:, 1, 1] = cos
        # Shifts: a fraction f of the size is 2f in normalized units; crop is a whole-pixel shift.
        theta[:, 0, 2] = (2 * u[:, 1] - 1) * a.translate * 2 + crop[:, 0] * (2 / w)
        theta[:, 1, 2] = (2 * u[:, 2] - 1) * a.translate * 2 + crop[:, 1] * (2 / h)
        return theta

    def __call__(self, x: Tensor, epoch: int, index: int) -> Tensor:
        theta = self.theta(x.shape, epoch, index).to(device=x.device, dtype=x.dtype, non_blocking=True)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # Whole-pixel shifts and flips land on pixel centres: nearest sampling keeps them exact.
        mode = "bilinear" if self.smooth else "nearest"
        out = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
        if self.fill is None:
            return out
        # Where the warp reads outside the image, add the fill in proportion: exact (bit for bit)
        # inside for whole-pixel shifts and flips, unlike warping x - fill and adding fill back.
        inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode=mode, padding_mode="zeros", align_corners=False)
        return out + (1 - inside) * self.fill


# --------------------------------------------------------------------------- the Data object

class Data:
    """Loaded splits plus what the model and the trainer need to know about them."""

    task: str
    """'classification' or 'regression'."""
    num_classes: int
    """Number of classes (0 for regression)."""
    input_shape: tuple[int, ...]
    """Shape of one input without the batch dimension, e.g. (1, 28, 28) or (10,)."""
    mean: list[float]
    """Per-channel (or per-feature) mean used for normalization; empty when not normalized."""
    std: list[float]
    """Per-channel (or per-feature) std used for normalization; empty when not normalized."""
    class_names: list[str]
    """Display names of the classes (empty for regression)."""
    loader: str
    """'tensor' (splits held on the device) or 'dataloader'."""
    loader_note = ""
    """User datasets: which path and why, for the event log ('' for the built-in datasets)."""

    def __init__(self, *, name: str, task: str, num_classes: int, input_shape: tuple[int, ...],
                 class_names: list[str], mean: list[float], std: list[float], loader: str,
                 device: torch.device, seed: int, augment: AugmentConfig, sizes: dict[str, int],
                 target_mean: float = 0.0, target_std: float = 1.0, output_dim: int = 1) -> None:
        self.name = name
        self.task = task
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.class_names = list(class_names)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.loader = loader
        self.device = device
        self.seed = seed
        self.train_size = sizes["train"]
        self.val_size = sizes["val"]
        self.test_size = sizes["test"]
        self.target_mean = target_mean
        """Regression: the original-unit mean subtracted from y (0 when y was not standardized)."""
        self.target_std = target_std
        """Regression: the original-unit std y was divided by (1 when y was not standardized)."""
        self.output_dim = int(output_dim) if task == "regression" else num_classes
        """Regression: values per target (a target of shape (2,) or (2, 3) gives 2 or 6 outputs,
        targets batched as [N, output_dim]); classification: the number of classes."""
        fill = None
        if self.mean and len(self.input_shape) == 3 and any(m != 0 for m in self.mean):
            fill = (-torch.tensor(self.mean) / torch.tensor(self.std)).view(1, -1, 1, 1).to(device)
        self._augment = _Augmenter(augment, seed, fill)
        if self._augment.active and len(self.input_shape) != 3:
            raise DataError(f"data.augment needs image data (C, H, W) but {name} gives inputs of shape "
                            f"{self.input_shape}: set rotation, translate and crop_padding to 0 and hflip to false")

    rank = 0
    """This process's rank among ``world`` (see :meth:`set_shard`)."""
    world = 1
    """Processes sharing each epoch (torchrun); 1 for a single process."""

    def set_shard(self, rank: int, world: int) -> None:
        """Train and evaluate only this rank's shard: of each global batch (``batch_size`` x
        ``world`` consecutive samples of the epoch's order) rank r takes the r-th part, and of each
        evaluation split the r-th contiguous part. Across the ranks every sample is seen once."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in a world of {world}")
        if world > 1 and self.train_size < world:
            raise DataError(f"{self.name}: the train split has {self.train_size} samples, fewer than the {world} processes "
                            "that would share it")
        self.rank, self.world = rank, world

    def steps_per_epoch(self, batch_size: int) -> int:
        """Training batches per epoch, the last partial batch included (global batches when
        sharded: the same count on every rank; a last global batch smaller than the world size
        joins the one before it, so that no rank gets an empty batch)."""
        n, g = self.train_size, batch_size * self.world
        full, rest = divmod(n, g)
        return full + (1 if rest >= self.world or (rest > 0 and full == 0) else 0)

    def batch_span(self, index: int, batch_size: int) -> tuple[int, int]:
        """[start, end) in the epoch's order of this rank's part of batch ``index``."""
        n, g, count = self.train_size, batch_size * self.world, self.steps_per_epoch(batch_size)
        lo = index * g
        hi = n if index == count - 1 else min(n, lo + g)
        size = hi - lo
        return lo + size * self.rank // self.world, lo + size * (self.rank + 1) // self.world

    def eval_span(self, size: int) -> tuple[int, int]:
        """[start, end) of this rank's contiguous part of an evaluation split of ``size`` samples."""
        return size * self.rank // self.world, size * (self.rank + 1) // self.world

    def describe(self) -> str:
        """One line, e.g. ``mnist: 54,000 train / 6,000 val / 10,000 test, 1x28x28, 10 classes``."""
        shape = "x".join(map(str, self.input_shape))
        kind = f"{self.num_classes} classes" if self.task == "classification" else "regression"
        return (f"{self.name}: {self.train_size:,} train / {self.val_size:,} val / {self.test_size:,} test, "
                f"{shape}, {kind}")

    def _check_batch_args(self, batch_size: int, start: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")

    def train_batches(self, epoch: int, batch_size: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """(x, y) training batches of ``epoch`` on the device, from batch index ``start``, augmented."""
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """(x, y) batches of 'val' or 'test' in a fixed order, without augmentation."""
        raise NotImplementedError

    def probe_batch(self, split: str, size: int) -> tuple[Tensor, Tensor]:
        """The first ``size`` samples of this rank's part of ``split``, prepared as a batch is (on
        the device, normalized, not augmented), read without a DataLoader and without drawing from
        any RNG: what the start-up dry run (core.train.dryrun) puts through the model."""
        raise NotImplementedError

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in ("val", "test", "train"):
            raise ValueError(f"unknown split {split!r} (allowed: val, test, train)")


class TensorData(Data):
    """Every split held as tensors on the device; a batch is ``x[idx]`` with ``idx`` on the device."""

    def __init__(self, splits: dict[str, tuple[Tensor, Tensor]], **kw: Any) -> None:
        sizes = {k: int(v[0].shape[0]) for k, v in splits.items()}
        super().__init__(loader="tensor", sizes=sizes, **kw)
        self._splits = splits

    def tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """The whole (x, y) of a split as stored (normalized, not augmented)."""
        self._check_split(split)
        return self._splits[split]

    def probe_batch(self, split: str, size: int) -> tuple[Tensor, Tensor]:
        self._check_split(split)
        x, y = self._splits[split]
        lo, hi = self.eval_span(x.shape[0])
        return x[lo:min(hi, lo + size)], y[lo:min(hi, lo + size)]

    def train_batches(self, epoch: int, batch_size: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        self._check_batch_args(batch_size, start)
        x, y = self._splits["train"]
        n = x.shape[0]
        if start >= self.steps_per_epoch(batch_size):
            return
        order = epoch_order(self.seed, epoch, n)
        if self.device.type == "cuda":
            order = order.pin_memory()
        order = order.to(self.device, non_blocking=True)
        for i in range(start, self.steps_per_epoch(batch_size)):
            lo, hi = self.batch_span(i, batch_size)
            idx = order[lo:hi]
            xb, yb = x[idx], y[idx]
            if self._augment.active:
                xb = self._augment(xb, epoch, i * self.world + self.rank)  # per rank: no repeated draws
            yield xb, yb

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        self._check_split(split)
        self._check_batch_args(batch_size)
        x, y = self._splits[split]
        lo, hi = self.eval_span(x.shape[0])
        for i in range(lo, hi, batch_size):
            yield x[i:min(i + batch_size, hi)], y[i:min(i + batch_size, hi)]


class _OrderSampler(Sampler):
    """Yields the indices (or batches of indices) it is given: the DataLoader path's order is owned by :func:`epoch_order`
    (a RandomSampler draws an extra permutation at each epoch end and cannot resume mid-epoch)."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _Portable(Dataset):
    """Wraps a dataset for spawned DataLoader workers: they re-load the user's .py files under
    the same module names before unpickling it (a spawned process has never imported them)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        return self.ds[i]

    def __getstate__(self) -> dict[str, Any]:
        return {"modules": dict(USER_MODULES), "payload": pickle.dumps(self.ds)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ensure_user_modules(state["modules"])
        # bytes __getstate__ pickled in this program, handed to its own spawned DataLoader workers
        # (never read from a file or a socket)
        self.ds = pickle.loads(state["payload"])


class LoaderData(Data):
    """Map-style datasets served by a DataLoader; batches are moved to the device, then normalized
    and augmented there."""

    def __init__(self, splits: dict[str, Dataset], num_workers: int, **kw: Any) -> None:
        sizes = {k: len(v) for k, v in splits.items()}
        super().__init__(loader="dataloader", sizes=sizes, **kw)
        self._splits = splits
        self._num_workers = num_workers
        self._norm: tuple[Tensor, Tensor] | None = None
        if self.mean:
            shape = (1, -1) + (1,) * (len(self.input_shape) - 1)
            self._norm = (torch.tensor(self.mean).view(shape).to(self.device),
                          torch.tensor(self.std).view(shape).to(self.device))

    def _loader(self, ds: Dataset, batch_size: int, sampler: Sampler | None, batched: bool = False,
                seed: tuple = ()) -> DataLoader:
        """A DataLoader over ``ds``; ``batched``: ``sampler`` yields whole batches (lists of indices).
        ``seed`` names the loader's own generator (its workers' base seed)."""
        # Without a generator, each new iterator draws its base seed from the global torch RNG: a
        # resumed epoch's iterator drew where the uninterrupted run drew nothing, and every random
        # transform and dropout after it differed (tests/unit/test_resume_more.py).
        extra: dict[str, Any] = {"generator": _generator(self.seed, "loader", *seed)}
        if self._num_workers > 0:
            # Forking from a process that already runs threads (the UI) can deadlock.
            extra["multiprocessing_context"] = "spawn"
            ds = _Portable(ds)
        if batched:
            extra["batch_sampler"] = sampler
        else:
            extra.update(batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=False)
        return DataLoader(ds, num_workers=self._num_workers, pin_memory=self.device.type == "cuda", **extra)

    def _prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.as_tensor(x).to(self.device, non_blocking=True)
        y = torch.as_tensor(y).to(self.device, non_blocking=True)
        x = x.float() if x.dtype != torch.float32 else x
        if x.dim() == 1:
            x = x.unsqueeze(1)
        if self._norm is not None:
            x = (x - self._norm[0]) / self._norm[1]
        if self.task == "classification":
            y = y.long()
        else:
            y = y.float().reshape(y.shape[0], -1)
        return x, y

    def probe_batch(self, split: str, size: int) -> tuple[Tensor, Tensor]:
        self._check_split(split)
        ds = self._splits[split]
        lo, hi = self.eval_span(len(ds))
        where = f"data.dataset {self.name!r} ({split})"
        items = [_item(ds, i, where) for i in range(lo, min(hi, lo + size))]
        try:
            x, y = default_collate(items)
        except (TypeError, RuntimeError) as e:
            raise DataError(f"{where}: items cannot be batched ({one_line(e)}): every x (and every y) must be a "
                            f"tensor, numpy array or number of the same shape") from None
        return self._prepare(x, y)

    def train_batches(self, epoch: int, batch_size: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        self._check_batch_args(batch_size, start)
        if start >= self.steps_per_epoch(batch_size):
            return
        order = epoch_order(self.seed, epoch, self.train_size).tolist()
        batches = [order[slice(*self.batch_span(i, batch_size))] for i in range(start, self.steps_per_epoch(batch_size))]
        loader = self._loader(self._splits["train"], batch_size, _OrderSampler(batches), batched=True, seed=("train", epoch))
        for i, (x, y) in enumerate(loader, start=start):
            x, y = self._prepare(x, y)
            if self._augment.active:
                x = self._augment(x, epoch, i * self.world + self.rank)
            yield x, y

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        self._check_split(split)
        self._check_batch_args(batch_size)
        ds = self._splits[split]
        lo, hi = self.eval_span(len(ds))
        if hi <= lo:
            return
        sampler = None if (lo, hi) == (0, len(ds)) else _OrderSampler(list(range(lo, hi)))
        for x, y in self._loader(ds, batch_size, sampler, seed=(split,)):
            yield self._prepare(x, y)


# --------------------------------------------------------------------------- normalization

def _channel_stats(x: Tensor) -> tuple[list[float], list[float]]:
    """Mean and std per channel (dim 1) over every other dim: each chunk summed in its own dtype
    (torch's pairwise sums: ~1e-7 relative in float32), the chunk sums accumulated in float64.
    A constant channel (its min equal to its max) gets std 1: it is left as it is."""
    dims = [0, *range(2, x.dim())]
    count = x.numel() // x.shape[1]
    wide = x.dtype in (torch.float32, torch.float64)  # half or integer data: each chunk in float32
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    lo = hi = None
    for chunk in x.split(8192):
        chunk = chunk if wide else chunk.float()
        total += chunk.sum(dims).double()
        c_lo, c_hi = chunk.amin(dims), chunk.amax(dims)
        lo, hi = (c_lo, c_hi) if lo is None else (torch.minimum(lo, c_lo), torch.maximum(hi, c_hi))
    mean = total / count
    shape = (1, -1) + (1,) * (x.dim() - 2)
    sq = torch.zeros_like(total)
    m = mean.to(x.dtype if wide else torch.float32).view(shape)
    for chunk in x.split(8192):
        sq += ((chunk if wide else chunk.float()) - m).square().sum(dims).double()
    std = (sq / count).sqrt()
    return _finish_stats(mean, torch.where(lo == hi, torch.zeros_like(std), std) if lo is not None else std)


def _uint8_channel_stats(x: Tensor, scale: float = 255.0) -> tuple[list[float], list[float]]:
    """As :func:`_channel_stats` of ``x / scale`` for uint8 ``x``, exactly and ~20x sooner: from a
    256-bin histogram per channel (MNIST's 47M pixels in ~0.05 s instead of ~1.5 s)."""
    values = torch.arange(256, dtype=torch.float64, device=x.device) / scale
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = hist.sum()
        mean = (hist * values).sum() / n
        means.append(mean)
        stds.append(((hist * (values - mean).square()).sum() / n).sqrt())
    return _finish_stats(torch.stack(means), torch.stack(stds))


def _finish_stats(mean: Tensor, std: Tensor) -> tuple[list[float], list[float]]:
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # constant channels: leave them as they are
    return mean.tolist(), std.tolist()


def _norm_stats(cfg: DataConfig, input_shape: tuple[int, ...], compute: Any) -> tuple[list[float], list[float]]:
    """The (mean, std) to normalize with: cfg's (checked against the channel count) or computed."""
    if not cfg.normalize:
        return [], []
    channels = input_shape[0] if input_shape else 1
    if cfg.mean or cfg.std:
        if len(cfg.mean) != channels or len(cfg.std) != channels:
            raise DataError(f"data.mean/data.std have {len(cfg.mean)}/{len(cfg.std)} values but the data has "
                            f"{channels} channel(s) (input shape {tuple(input_shape)}): give {channels} of each, "
                            f"or leave them empty to compute them")
        if any(s <= 0 for s in cfg.std):
            raise DataError("data.std: every value must be > 0")
        return [float(v) for v in cfg.mean], [float(v) for v in cfg.std]
    return compute()


def _normalize_splits(splits: dict[str, tuple[Tensor, Tensor]], mean: list[float], std: list[float],
                      inplace: bool = True) -> None:
    """The pre-transform: standardize every split's stored x once. ``inplace=False`` for tensors
    that may be the user's own (a TensorDataset must not be changed under its owner)."""
    if not mean:
        return
    for k, (x, y) in splits.items():
        shape = (1, -1) + (1,) * (x.dim() - 2)
        m = torch.tensor(mean, dtype=x.dtype).view(shape).to(x.device)
        s = torch.tensor(std, dtype=x.dtype).view(shape).to(x.device)
        splits[k] = (x.sub_(m).div_(s) if inplace else (x - m) / s, y)


# --------------------------------------------------------------------------- built-in datasets

def _select(splits: dict[str, tuple[Tensor, Tensor]], cfg: DataConfig, seed: int, x: Tensor, y: Tensor,
            has_test: bool) -> None:
    """Carve test (unless given) and val from (x, y) into ``splits``, then apply ``cfg.subset``."""
    rest = torch.arange(x.shape[0])
    if not has_test:
        keep, held = _carve(x.shape[0], cfg.test_fraction, seed, "test")
        splits["test"] = (x[held], y[held])
        rest = keep
    keep, held = _carve(rest.shape[0], cfg.val_fraction, seed, "val")
    splits["val"] = (x[rest[held]], y[rest[held]])
    train_idx = rest[keep]
    if cfg.subset > 0:
        train_idx = train_idx[:cfg.subset]
    splits["train"] = (x[train_idx], y[train_idx])


DIGITS_FILE = Path(__file__).resolve().parent.parent / "data_files" / "digits-8x8.u8.gz"
"""The 8x8 digits (UCI ML hand-written digits, CC BY 4.0; data_files/NOTICE.md), shipped with the
package: 1797 x 64 pixel bytes (0..16), then 1797 label bytes (0..9), gzipped. The same values as
scikit-learn's ``load_digits()``, without importing scikit-learn and scipy (~0.8 s, issue 14)."""

DIGITS_SAMPLES = 1797
"""Samples in the digits data set."""


def load_digits_arrays() -> tuple[Tensor, Tensor]:
    """(pixels uint8 [1797, 64] in 0..16, labels uint8 [1797] in 0..9), read from :data:`DIGITS_FILE`."""
    import gzip

    try:
        raw = gzip.decompress(DIGITS_FILE.read_bytes())
    except (OSError, EOFError) as e:  # a damaged install: say which file
        raise DataError(f"dataset 'digits': cannot read {DIGITS_FILE} ({one_line(e)}); reinstall tui-train") from None
    n = DIGITS_SAMPLES
    if len(raw) != n * 65:
        raise DataError(f"dataset 'digits': {DIGITS_FILE} holds {len(raw)} bytes, expected {n * 65}; reinstall tui-train")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    return data[:n * 64].view(n, 64), data[n * 64:]


def _digits(cfg: DataConfig, seed: int) -> tuple[dict[str, tuple[Tensor, Tensor]], list[str]]:
    pixels, labels = load_digits_arrays()
    x = pixels.float().div_(16.0).view(-1, 1, 8, 8)
    y = labels.long()
    splits: dict[str, tuple[Tensor, Tensor]] = {}
    _select(splits, cfg, seed, x, y, has_test=False)
    return splits, [str(i) for i in range(10)]


REGRESSION_WEIGHTS = (1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.2, -0.2, 0.1, 0.05)
"""The linear part of the synthetic regression target (10 features)."""


def regression_target(x: Tensor) -> Tensor:
    """The noiseless synthetic target: mostly linear (R² of a linear fit ≈ 0.97) plus smooth terms."""
    w = torch.tensor(REGRESSION_WEIGHTS, dtype=x.dtype)
    return x @ w + 0.5 * torch.sin(x[:, 0]) + 0.3 * x[:, 1] * x[:, 2]


def _regression(cfg: DataConfig, seed: int) -> tuple[dict[str, tuple[Tensor, Tensor]], float, float]:
    g = _generator(seed, "regression")
    x = torch.randn(cfg.samples, len(REGRESSION_WEIGHTS), generator=g)
    y = regression_target(x) + cfg.noise * torch.randn(cfg.samples, generator=g)
    y = y.unsqueeze(1)
    splits: dict[str, tuple[Tensor, Tensor]] = {}
    _select(splits, cfg, seed, x, y, has_test=False)
    ytr = splits["train"][1]
    y_mean = float(ytr.mean())
    y_std = float(ytr.std()) if ytr.shape[0] > 1 else 1.0
    y_std = y_std if y_std > 1e-12 else 1.0
    for k, (xs, ys) in splits.items():
        splits[k] = (xs, (ys - y_mean) / y_std)
    return splits, y_mean, y_std


def _open_torchvision(name: str, cfg: DataConfig) -> tuple[Any, Any]:
    import torchvision.datasets as tvd

    cls_name, folder = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    root = Path(cfg.data_dir).expanduser().absolute()
    where = root / folder
    try:
        return cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    except Exception as first:  # noqa: BLE001 - torchvision raises RuntimeError, OSError, ValueError...
        if not cfg.download:
            raise DataError(f"{cls_name} not found in {where} and data.download is false "
                            f"({one_line(first)}): pass --data-dir pointing at a folder that holds {folder}/, "
                            f"or set data.download=true") from None
    try:
        # With the .gz files already in root/MNIST/raw this only extracts them (no network).
        return cls(str(root), train=True, download=True), cls(str(root), train=False, download=True)
    except Exception as e:  # noqa: BLE001 - URLError, RuntimeError from every mirror, PermissionError...
        raise DataError(f"{cls_name} not found in {where} and could not be downloaded ({one_line(e)}): "
                        f"pass --data-dir pointing at a folder that holds {folder}/") from None


def _torchvision_tensors(ds: Any) -> tuple[Tensor, Tensor]:
    """uint8 images (N, C, H, W) and int64 labels straight from ``.data``/``.targets`` (no PIL, no loop)."""
    data = ds.data if isinstance(ds.data, Tensor) else torch.from_numpy(ds.data)
    if data.dim() == 3:  # MNIST family: (N, H, W)
        data = data.unsqueeze(1)
    else:  # CIFAR: (N, H, W, C)
        data = data.permute(0, 3, 1, 2)
    return data.contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)


def _torchvision(name: str, cfg: DataConfig, seed: int,
                 device: torch.device) -> tuple[dict[str, tuple[Tensor, Tensor]], list[str], list[float], list[float]]:
    """The splits as float tensors in [0, 1] on ``device``, the class names, and the (mean, std)
    to normalize with (computed from the uint8 training pixels, or cfg's)."""
    train_ds, test_ds = _open_torchvision(name, cfg)
    x, y = _torchvision_tensors(train_ds)
    splits: dict[str, tuple[Tensor, Tensor]] = {"test": _torchvision_tensors(test_ds)}
    _select(splits, cfg, seed, x, y, has_test=True)
    input_shape = tuple(splits["train"][0].shape[1:])
    mean, std = _norm_stats(cfg, input_shape, lambda: _uint8_channel_stats(splits["train"][0]))  # on the uint8 pixels
    # uint8 travels to the device (4x less to copy); the float conversion happens there.
    for k, (xs, ys) in splits.items():
        splits[k] = (xs.to(device).float().div_(255.0), ys.to(device))
    return splits, [str(c) for c in getattr(train_ds, "classes", [])], mean, std


# --------------------------------------------------------------------------- user datasets

def _is_int_scalar(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    t = getattr(v, "dtype", None)
    if t is None:
        return False
    if isinstance(v, Tensor):
        return v.numel() == 1 and not v.dtype.is_floating_point and not v.dtype.is_complex and v.dtype != torch.bool
    try:
        import numpy as np

        return isinstance(v, (np.integer, np.ndarray)) and np.issubdtype(v.dtype, np.integer) and np.size(v) == 1
    except ImportError:  # pragma: no cover
        return False


def _item(ds: Dataset, i: int, where: str) -> tuple[Any, Any]:
    try:
        item = ds[i]
    except Exception as e:  # noqa: BLE001 - user code
        raise DataError(f"{where}: reading item {i} failed ({one_line(e)})") from None
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(f"{where}: items must be (x, y) pairs, item {i} is {type(item).__name__}")
    return item[0], item[1]


def _as_tensor(v: Any, where: str) -> Tensor:
    try:
        return torch.as_tensor(v)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{where}: cannot turn {type(v).__name__} into a tensor ({one_line(e)}): "
                        f"return tensors, numpy arrays or numbers") from None


def _materialize(ds: Dataset, where: str) -> tuple[Tensor, Tensor]:
    """(x, y) tensors of a whole dataset: TensorDatasets as they are, others item by item."""
    if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[0], ds.tensors[1]
    xs, ys = [], []
    for i in range(len(ds)):
        x, y = _item(ds, i, where)
        xs.append(_as_tensor(x, where))
        ys.append(_as_tensor(y, where))
    if not xs:
        raise DataError(f"{where}: the dataset is empty")
    try:
        return torch.stack(xs), torch.stack(ys)
    except RuntimeError as e:
        raise DataError(f"{where}: items have different shapes ({one_line(e)}): every x (and every y) "
                        f"must have the same shape") from None


def _user_splits(cfg: DataConfig) -> dict[str, Dataset]:
    """Call the user's factory; return {'train': ds[, 'val': ds][, 'test': ds]}."""
    factory = load_object(cfg.dataset, "data.dataset")
    try:
        out = factory(**cfg.kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise ConfigError(f"data.dataset {cfg.dataset!r}: constructing the dataset failed ({one_line(e)})") from None
    if isinstance(out, dict):
        extra = sorted(set(out) - {"train", "val", "test"})
        if "train" not in out or extra:
            raise ConfigError(f"data.dataset {cfg.dataset!r}: a dict must have the key 'train' and may have "
                              f"'val' and 'test' (got keys: {', '.join(map(str, out)) or 'none'})")
        splits = {k: v for k, v in out.items() if v is not None}
    else:
        splits = {"train": out}
    for k, ds in splits.items():
        if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
            raise ConfigError(f"data.dataset {cfg.dataset!r}: {k!r} is {type(ds).__name__}, not a map-style "
                              f"Dataset (with __getitem__ and __len__) or a dict of them")
    if len(splits["train"]) == 0:
        raise DataError(f"data.dataset {cfg.dataset!r}: the training set is empty")
    return splits


_RANDOM_TRANSFORM = re.compile(r"\b(Random\w*|ColorJitter|RandAugment|AutoAugment|TrivialAugmentWide|AugMix|"
                               r"GaussianBlur|GaussianNoise|ElasticTransform)\b")


def random_transform(ds: Any) -> str:
    """The name of a random torchvision transform that ``ds`` (or a dataset it wraps, as a
    Subset does) applies, e.g. 'RandomRotation'; '' when none is seen. A cheap signal, read from
    the transforms' repr without reading an item; :func:`_reads_differ` catches the rest."""
    seen: set[int] = set()
    while ds is not None and id(ds) not in seen:
        seen.add(id(ds))
        for attr in ("transform", "transforms", "target_transform"):
            t = getattr(ds, attr, None)
            if t is not None and not isinstance(t, (str, bytes)):
                found = _RANDOM_TRANSFORM.search(repr(t))
                if found:
                    return found.group(1)
        ds = getattr(ds, "dataset", None)
    return ""


def _same(a: Tensor, b: Tensor) -> bool:
    """Equal shapes and values, NaN equal to NaN (a deterministic item may hold NaNs)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.is_floating_point or a.dtype.is_complex:
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return torch.equal(a, b)


def _reads_differ(ds: Dataset, held: tuple[Tensor, Tensor], where: str) -> int | None:
    """The first of up to :data:`PROBE_ITEMS` items (spread over ``ds``) whose second read differs
    from ``held`` (its first read, as stacked), or None when every one is identical."""
    n = len(ds)  # type: ignore[arg-type]
    for i in torch.linspace(0, n - 1, min(n, PROBE_ITEMS)).round().long().unique().tolist():
        x, y = _item(ds, i, where)
        if not (_same(_as_tensor(x, where), held[0][i]) and _same(_as_tensor(y, where), held[1][i])):
            return i
    return None


def _use_tensors(cfg: DataConfig, splits: dict[str, Dataset], x0: Tensor) -> tuple[bool, str]:
    """(hold the user's splits as tensors, why). Held as tensors, every item is read once: a
    random transform would be drawn once and frozen for the whole run (issue 20, defect 3), so
    'auto' takes the tensor path only for datasets without a random transform in sight (and
    :func:`_user_data` then re-reads a sample to confirm)."""
    if cfg.loader != "auto":
        return cfg.loader == "tensor", f"data.loader = {cfg.loader!r}"
    if all(isinstance(ds, TensorDataset) for ds in splits.values()):
        return True, "TensorDatasets"
    for k, ds in splits.items():
        name = random_transform(ds)
        if name:
            return False, (f"data.loader = 'auto': the {k} split's transform {name} is random; as tensors it "
                           f"would be drawn once, here every epoch draws afresh")
    items = sum(len(ds) for ds in splits.values())
    if len(splits["train"]) >= AUTO_TENSOR_MAX_ITEMS or items * x0.numel() * 4 >= AUTO_TENSOR_MAX_BYTES:
        return False, f"data.loader = 'auto': {items:,} items of {x0.numel():,} values, too many to hold as tensors"
    return True, ""


def _carve_datasets(splits: dict[str, Any], cfg: DataConfig, seed: int, take: Any) -> dict[str, Any]:
    """Fill in missing test/val by carving the train split (``take(split, idx)`` selects rows); apply subset."""
    train = splits["train"]
    n = len(train) if not isinstance(train, tuple) else train[0].shape[0]
    rest = torch.arange(n)
    out = dict(splits)
    if "test" not in splits:
        keep, held = _carve(n, cfg.test_fraction, seed, "test")
        out["test"] = take(train, held)
        rest = keep
    if "val" not in splits:
        keep, held = _carve(rest.shape[0], cfg.val_fraction, seed, "val")
        out["val"] = take(train, rest[held])
        rest = rest[keep]
    if cfg.subset > 0:
        rest = rest[:cfg.subset]
    if rest.shape[0] != n or not torch.equal(rest, torch.arange(n)):
        out["train"] = take(train, rest)
    return out


def _user_data(cfg: DataConfig, seed: int, device: torch.device) -> Data:
    """A user's Dataset(s): held as tensors when that changes nothing (:func:`_tensor_path`), else
    served by a DataLoader every epoch (:func:`_loader_data`); the event log says which and why."""
    where = f"data.dataset {cfg.dataset!r}"
    splits = _user_splits(cfg)
    x0, y0 = _item(splits["train"], 0, where)
    if isinstance(y0, (str, bytes)):  # else "cannot turn str into a tensor", which names no label (issue 20 defect 9)
        raise DataError(f"{where}: the labels are strings (item 0's is {y0!r}): return class indices 0..N-1 "
                        f"(e.g. classes.index(label)), with the names in the dataset's .classes")
    x0t = _as_tensor(x0, where)
    task = cfg.task if cfg.task != "auto" else ("classification" if _is_int_scalar(y0) else "regression")
    input_shape = tuple(x0t.shape) or (1,)
    output_dim = max(1, _as_tensor(y0, where).numel()) if task == "regression" else 1
    common = dict(name=cfg.dataset, task=task, device=device, seed=seed, augment=cfg.augment, output_dim=output_dim)
    tensors, why = _tensor_path(cfg, splits, x0t, where)
    if tensors is not None:
        return _tensor_data(cfg, tensors, seed, device, task, input_shape, splits, common, why)
    return _loader_data(cfg, splits, seed, task, input_shape, common, why)


def _tensor_path(cfg: DataConfig, splits: dict, x0t: Tensor, where: str) -> tuple[dict | None, str]:
    """(every split read once as tensors, why) when holding them changes nothing, else (None, why):
    ``loader = 'auto'`` reads a sample of items twice, and an item that changes means a random transform."""
    use_tensors, why = _use_tensors(cfg, splits, x0t)
    if not use_tensors:
        return None, why
    tensors = {k: _materialize(ds, f"{where} ({k})") for k, ds in splits.items()}
    if why:
        return tensors, why
    for k, ds in splits.items():
        i = _reads_differ(ds, tensors[k], f"{where} ({k})")
        if i is not None:
            return None, (f"data.loader = 'auto': item {i} of the {k} split differed between two reads (a random "
                          f"transform?); as tensors it would be drawn once, here every epoch reads afresh")
    probed = sum(min(len(ds), PROBE_ITEMS) for ds in splits.values())
    return tensors, f"data.loader = 'auto': {probed} items read twice were identical"


def _tensor_data(cfg: DataConfig, tensors: dict, seed: int, device: torch.device, task: str, input_shape: tuple,
                 splits: dict, common: dict, why: str) -> Data:
    """The splits held as tensors on the device: carved, typed, checked, normalized."""
    where = f"data.dataset {cfg.dataset!r}"
    tensors = _carve_datasets(tensors, cfg, seed, lambda t, idx: (t[0][idx], t[1][idx]))
    for k, (x, y) in tensors.items():
        x = x.to(device=device, dtype=torch.float32)
        if x.dim() == 1:
            x = x.unsqueeze(1)
        if task == "classification":
            if y.dtype.is_floating_point and not torch.equal(y, y.round()):
                raise DataError(f"{where}: task is classification but the targets are not whole numbers: "
                                f"set data.task=regression")
            y = y.reshape(-1).to(device=device, dtype=torch.long)
        else:
            y = y.to(device=device, dtype=torch.float32).reshape(y.shape[0], -1)
        tensors[k] = (x, y)
    num_classes, names = _classes(cfg, task, [y for k, (_, y) in tensors.items() if y.numel()], splits["train"])
    for k, (_, y) in tensors.items():
        _check_labels(cfg, task, y, num_classes, k)
    mean, std = _norm_stats(cfg, input_shape, lambda: _channel_stats(tensors["train"][0]))
    _normalize_splits(tensors, mean, std, inplace=False)
    data: Data = TensorData(tensors, num_classes=num_classes, input_shape=input_shape, class_names=names,
                            mean=mean, std=std, **common)
    data.loader_note = f"data: held as tensors on the {device.type}, each item read once ({why})"
    return data


def _loader_data(cfg: DataConfig, splits: dict, seed: int, task: str, input_shape: tuple, common: dict, why: str) -> Data:
    """The splits served by a DataLoader every epoch; labels and normalization statistics from one
    scan of the train split when the preset does not give them."""
    datasets = _carve_datasets(splits, cfg, seed, lambda ds, idx: Subset(ds, idx.tolist()))
    need_labels = task == "classification" and cfg.num_classes == 0
    labels, stats = _scan_train(cfg, datasets["train"], seed, need_labels, cfg.normalize and not cfg.mean)
    num_classes, names = _classes(cfg, task, labels, splits["train"])
    for y in labels:
        _check_labels(cfg, task, y, num_classes, "train")
    mean, std = _norm_stats(cfg, input_shape, lambda: stats)
    data = LoaderData(datasets, num_workers=cfg.num_workers, num_classes=num_classes, input_shape=input_shape,
                      class_names=names, mean=mean, std=std, **common)
    data.loader_note = f"data: served by a DataLoader, items read every epoch ({why})"
    return data


def _scan_train(cfg: DataConfig, train: Dataset, seed: int, need_labels: bool,
                need_stats: bool) -> tuple[list[Tensor], tuple[list[float], list[float]] | None]:
    """(labels of every train item when ``need_labels``, channel statistics of up to
    STATS_MAX_ITEMS items when ``need_stats``), in one pass of a DataLoader."""
    labels: list[Tensor] = []
    if not (need_labels or need_stats):
        return labels, None
    n = len(train)
    idx = list(range(n)) if need_labels else epoch_order(seed, -1, n)[:STATS_MAX_ITEMS].tolist()
    scan: Dataset = Subset(train, idx)
    extra: dict[str, Any] = {}
    if cfg.num_workers > 0:
        scan, extra = _Portable(scan), {"multiprocessing_context": "spawn"}
    loader = DataLoader(scan, batch_size=512, shuffle=False, num_workers=cfg.num_workers, **extra)
    xs, seen = [], 0
    for xb, yb in loader:
        labels.append(torch.as_tensor(yb).reshape(-1))
        if need_stats and seen < STATS_MAX_ITEMS:
            xb = torch.as_tensor(xb).float()
            xs.append(xb.unsqueeze(1) if xb.dim() == 1 else xb)
            seen += xb.shape[0]
    return labels, _channel_stats(torch.cat(xs)[:STATS_MAX_ITEMS]) if need_stats else None


def _check_labels(cfg: DataConfig, task: str, y: Tensor, num_classes: int, split: str) -> None:
    """Classification labels must be 0 .. num_classes - 1 (cross-entropy fails mid-run otherwise)."""
    if task != "classification" or not y.numel():
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        key = "data.num_classes" if cfg.num_classes > 0 else "the inferred number of classes"
        raise DataError(f"data.dataset {cfg.dataset!r}: label {bad} in the {split} split is outside 0..{num_classes - 1} "
                        f"({key}: {num_classes}): labels must be class indices from 0")


def _classes(cfg: DataConfig, task: str, labels: list[Tensor], train: Any) -> tuple[int, list[str]]:
    if task != "classification":
        return 0, []
    if cfg.num_classes > 0:
        n = cfg.num_classes
    else:
        top = max((int(y.max()) for y in labels if y.numel()), default=-1)
        n = top + 1
        if n < 2:
            raise DataError(f"data.dataset {cfg.dataset!r}: cannot infer the number of classes (max label {top}): "
                            f"set data.num_classes")
    names = getattr(train, "classes", None)
    if not (isinstance(names, (list, tuple)) and len(names) == n):
        names = [str(i) for i in range(n)]
    return n, [str(c) for c in names]


# --------------------------------------------------------------------------- entry point

def load_data(cfg: DataConfig, device: torch.device | str, seed: int) -> Data:
    """Load, split and normalize ``cfg.dataset`` onto ``device``. Raises DataError or ConfigError (one line)."""
    device = torch.device(device)
    name = cfg.dataset
    common = dict(name=name, device=device, seed=seed, augment=cfg.augment)
    if name == "regression":
        splits, y_mean, y_std = _regression(cfg, seed)
        splits = {k: (x.to(device), y.to(device)) for k, (x, y) in splits.items()}
        mean, std = _norm_stats(cfg, (len(REGRESSION_WEIGHTS),), lambda: _channel_stats(splits["train"][0]))
        _normalize_splits(splits, mean, std)
        return TensorData(splits, task="regression", num_classes=0, input_shape=(len(REGRESSION_WEIGHTS),),
                          class_names=[], mean=mean, std=std, target_mean=y_mean, target_std=y_std, **common)
    if name == "digits" or name in _TORCHVISION:
        if name == "digits":
            splits, names = _digits(cfg, seed)
            splits = {k: (x.to(device), y.to(device)) for k, (x, y) in splits.items()}
            mean, std = _norm_stats(cfg, tuple(splits["train"][0].shape[1:]), lambda: _channel_stats(splits["train"][0]))
        else:
            splits, names, mean, std = _torchvision(name, cfg, seed, device)
        input_shape = tuple(splits["train"][0].shape[1:])
        _normalize_splits(splits, mean, std)
        return TensorData(splits, task="classification", num_classes=10, input_shape=input_shape,
                          class_names=names or [str(i) for i in range(10)], mean=mean, std=std, **common)
    if ":" in name:
        return _user_data(cfg, seed, device)
    raise ConfigError(f"data.dataset: unknown dataset {name!r}")


__all__ = ["REGRESSION_WEIGHTS", "Data", "DataError", "LoaderData", "TensorData", "epoch_order", "load_data", "mix_seed",
           "regression_target"]
