"""Metrics computed on the device from accumulated counts, read back to the host once an evaluation
ends (never per batch).

Classification: loss, accuracy, macro precision / recall / F1 and the confusion matrix.
Regression: loss, MSE, MAE, R².
"""

from __future__ import annotations

import torch


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
        """Add the other ranks' sums to these (core.distributed.World)."""
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
        """Add the other ranks' sums to these (core.distributed.World)."""
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
