"""Metrics computed on the device from accumulated counts, read back to the host once an evaluation
ends (never per batch).

Classification: loss, accuracy, macro precision / recall / F1 and the confusion matrix.
Regression: loss, MSE, MAE, R².
"""

from __future__ import annotations

import base64
import math

import torch

from tui_train.core import events as E


class ClassificationAccumulator:
    """Accumulates a confusion matrix and the loss sum over batches, on the batches' device."""

    def __init__(self, num_classes: int, device: torch.device):
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """Add one batch: ``loss_sum`` is the batch's summed (not mean) loss."""
        pred = logits.argmax(dim=1)
        idx = target.long() * self.num_classes + pred
        self.confusion += torch.bincount(idx, minlength=self.num_classes**2)
        self.loss_sum += loss_sum.detach().double()
        self.count += target.shape[0]

    def reduce(self, world) -> None:
        """Add the other ranks' sums to these (core.train.distributed.World)."""
        world.all_reduce_([self.confusion, self.loss_sum])
        self.count = int(world.all_sum([float(self.count)])[0])

    def compute(self) -> tuple[dict, list[list[int]]]:
        """(metrics, confusion matrix rows) as plain Python values."""
        cm = self.confusion.view(self.num_classes, self.num_classes).cpu()
        return classification_metrics(cm, float(self.loss_sum.item()), self.count), cm.tolist()


def classification_metrics(cm: torch.Tensor, loss_sum: float, count: int) -> dict:
    """Metrics from a confusion matrix (rows = true class, columns = predicted)."""
    cm = cm.double()
    tp = cm.diag()
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), torch.zeros_like(tp))
    present = support > 0  # macro average over classes present in the data
    n_present = max(1, int(present.sum()))
    total = float(cm.sum())
    return {
        "loss": loss_sum / max(1, count),
        "accuracy": float(tp.sum()) / total if total else 0.0,
        "precision": float(precision[present].sum()) / n_present,
        "recall": float(recall[present].sum()) / n_present,
        "f1": float(f1[present].sum()) / n_present,
    }


class RegressionAccumulator:
    """Accumulates sums for MSE, MAE and R² (one pass, float64, on the device), per output column
    (``outputs``: values per target; a multi-output target is [N, outputs])."""

    def __init__(self, device: torch.device, outputs: int = 1):
        z = lambda: torch.zeros(outputs, dtype=torch.float64, device=device)  # noqa: E731
        self.se, self.ae, self.y_sum, self.y_sq = z(), z(), z(), z()
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.outputs = outputs
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """Add one batch: ``loss_sum`` is the batch's summed (not mean) loss."""
        p = pred.detach().double().reshape(target.shape[0], self.outputs)
        y = target.double().reshape(target.shape[0], self.outputs)
        self.se += ((p - y) ** 2).sum(0)
        self.ae += (p - y).abs().sum(0)
        self.y_sum += y.sum(0)
        self.y_sq += (y**2).sum(0)
        self.loss_sum += loss_sum.detach().double()
        self.count += y.numel()

    def reduce(self, world) -> None:
        """Add the other ranks' sums to these (core.train.distributed.World)."""
        world.all_reduce_([self.loss_sum, self.se, self.ae, self.y_sum, self.y_sq])
        self.count = int(world.all_sum([float(self.count)])[0])

    def compute(self) -> tuple[dict, list]:
        """(metrics, []) as plain Python values (regression has no confusion matrix)."""
        sums = torch.stack([self.se, self.ae, self.y_sum, self.y_sq]).cpu().tolist()
        return regression_metrics(float(self.loss_sum.item()), *sums, self.count), []


def regression_metrics(loss_sum: float, se, ae, y_sum, y_sq, n: int) -> dict:
    """MSE, MAE and R² = 1 - SS_res / SS_tot from running sums over ``n`` values. ``se``, ``ae``,
    ``y_sum`` and ``y_sq`` are numbers, or lists with one entry per output: MSE and MAE are then
    over every value (the mean over outputs of each output's), R² the mean of each output's R²
    (an output whose target is constant counts as 0)."""
    per = [se, ae, y_sum, y_sq]
    se, ae, y_sum, y_sq = ([float(v)] if not isinstance(v, (list, tuple)) else [float(x) for x in v] for v in per)
    k = len(se)
    n = max(1, n)
    rows = n / k  # samples per output
    r2 = []
    for j in range(k):
        ss_tot = y_sq[j] - y_sum[j] * y_sum[j] / rows
        r2.append(1.0 - se[j] / ss_tot if ss_tot > 0 else 0.0)
    return {
        "loss": loss_sum / n,
        "mse": sum(se) / n,
        "mae": sum(ae) / n,
        "r2": sum(r2) / k,
    }


class MistakeCollector:
    """Keeps the first ``limit`` misclassified samples of an evaluation pass, from the batches the
    pass evaluates anyway (no second pass). Once full it does nothing, so the few device syncs it
    costs (one ``nonzero`` per batch) end after the first batches; :meth:`payload` turns them into
    plain data (see :class:`core.events.ConfusionMatrix`)."""

    def __init__(self, input_shape: tuple[int, ...], mean: list[float], std: list[float], limit: int | None = None):
        self.input_shape = tuple(input_shape)
        """A sample's shape (C, H, W for images)."""
        self.mean, self.std = list(mean), list(std)
        """The normalisation to undo (empty: none)."""
        self.limit = E.MAX_MISTAKES if limit is None else min(limit, E.MAX_MISTAKES)
        """At most this many are kept."""
        self.seen = 0
        """Samples passed so far (a mistake's index: its position in the split, or in this rank's share of it)."""
        self._kept: list[tuple[int, int, int, torch.Tensor]] = []

    @property
    def full(self) -> bool:
        """Nothing more will be kept."""
        return len(self._kept) >= self.limit

    def update(self, x: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Look at one evaluated batch (its inputs, the model's outputs, the targets)."""
        start, self.seen = self.seen, self.seen + target.shape[0]
        if self.full:
            return
        pred = logits.argmax(dim=1)
        wrong = (pred != target).nonzero().flatten()[: self.limit - len(self._kept)].tolist()
        if not wrong:
            return
        idx = torch.tensor(wrong, device=target.device)
        xs = x[idx].detach().float().cpu()
        trues, preds = target[idx].tolist(), pred[idx].tolist()  # one copy each, not one sync per sample
        for k, i in enumerate(wrong):
            self._kept.append((start + i, int(trues[k]), int(preds[k]), xs[k]))

    def is_image(self) -> bool:
        """The samples are images (C, H, W with 1 to 4 channels)."""
        return len(self.input_shape) == 3 and 1 <= self.input_shape[0] <= 4

    def payload(self) -> tuple[dict, ...]:
        """The kept mistakes as plain dicts: downsampled uint8 images in base64, or feature values."""
        out = []
        for index, true, pred, x in self._kept:
            item: dict = {"index": index, "true": true, "pred": pred}
            if self.mean and len(self.mean) == (x.shape[0] if x.dim() else 1):
                shape = (-1,) + (1,) * (x.dim() - 1)
                x = x * torch.tensor(self.std).view(shape) + torch.tensor(self.mean).view(shape)
            if self.is_image():
                img = to_uint8_image(x, E.MAX_IMAGE_SIDE)
                h, w, c = img.shape
                item.update(height=h, width=w, channels=c, pixels=base64.b64encode(img.numpy().tobytes()).decode("ascii"))
            else:
                values = x.flatten()[:E.MAX_FEATURES].double()
                item["features"] = [float(f"{v:.5g}") if math.isfinite(v) else 0.0 for v in values.tolist()]
            out.append(item)
        return tuple(out)


def to_uint8_image(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """An unnormalised image (C, H, W) as uint8 (H', W', 1 or 3), averaged down until neither side
    exceeds ``max_side``. Values in [0, 1] are scaled by 255, values in [0, 255] kept, any other
    range stretched to [0, 255]; 3 or 4 channels give RGB (the 4th dropped), others their mean."""
    x = x.float()
    x = x[:3] if x.shape[0] >= 3 else x.mean(0, keepdim=True)
    factor = -(-max(x.shape[1], x.shape[2]) // max_side)
    if factor > 1:
        x = torch.nn.functional.avg_pool2d(x.unsqueeze(0), factor, ceil_mode=True).squeeze(0)
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(x.min()), float(x.max())
    if lo >= -1e-3 and hi <= 1.0 + 1e-3:
        x = x * 255.0
    elif not (lo >= 0.0 and hi <= 255.0):
        x = (x - lo) * (255.0 / (hi - lo)) if hi > lo else torch.zeros_like(x)
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def confusion_event(step: int, epoch: int, confusion: list[list[int]], class_names: list[str], mistakes: tuple):
    """The :class:`core.events.ConfusionMatrix` of one validation: above
    :data:`core.events.MAX_CONFUSION_CLASSES` classes the matrix and names are left out (the
    mistakes stay); names are sent only when there is one per class."""
    n = len(confusion)
    small = n <= E.MAX_CONFUSION_CLASSES
    names = tuple(_short_name(c) for c in class_names) if small and len(class_names) == n else ()
    return E.ConfusionMatrix(step=step, epoch=epoch, num_classes=n,
                             confusion=tuple(tuple(int(v) for v in row) for row in confusion) if small else (),
                             classes=names, mistakes=mistakes)


MAX_CLASS_NAME = 64
"""Characters of a class name sent with a confusion matrix (longer ones are cut)."""


def _short_name(name) -> str:
    """A class name as sent: control characters as spaces, at most MAX_CLASS_NAME characters."""
    text = "".join(" " if ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f or 0xd800 <= ord(ch) <= 0xdfff else ch for ch in str(name))
    return text[:MAX_CLASS_NAME]
