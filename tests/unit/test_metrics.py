"""core.train.metrics against hand-computed values and a NumPy reference written from the definitions.

The reference follows scikit-learn's semantics (the tests compared with it before it stopped being
a dependency, issue 14): macro averages over the given classes, 0 where a ratio is 0/0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tui_train.core.train.metrics import (
    ClassificationAccumulator,
    RegressionAccumulator,
    classification_metrics,
    regression_metrics,
)

CPU = torch.device("cpu")

# rows = true class, columns = predicted class
CM = torch.tensor([[5, 1, 0],
                   [2, 3, 1],
                   [0, 0, 4]])
# tp = 5, 3, 4; support = 6, 6, 4; predicted = 7, 4, 5
PRECISION = [5 / 7, 3 / 4, 4 / 5]
RECALL = [5 / 6, 3 / 6, 4 / 4]
F1 = [10 / 13, 3 / 5, 8 / 9]


def _labels_from_cm(cm: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = [], []
    for t, row in enumerate(cm.tolist()):
        for p, n in enumerate(row):
            y_true += [t] * n
            y_pred += [p] * n
    return np.array(y_true), np.array(y_pred)


def _macro_scores(y_true: np.ndarray, y_pred: np.ndarray, labels) -> dict:
    """Macro precision, recall and F1 over ``labels``, each 0 where its ratio is 0/0."""
    precision, recall, f1 = [], [], []
    for c in labels:
        tp = int(((y_true == c) & (y_pred == c)).sum())
        predicted, support = int((y_pred == c).sum()), int((y_true == c).sum())
        precision.append(tp / predicted if predicted else 0.0)
        recall.append(tp / support if support else 0.0)
        f1.append(2 * tp / (predicted + support) if predicted + support else 0.0)
    return {"precision": float(np.mean(precision)), "recall": float(np.mean(recall)), "f1": float(np.mean(f1))}


def _regression_scores(y: np.ndarray, p: np.ndarray) -> dict:
    ss_res, ss_tot = float(((y - p) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {"mse": float(((y - p) ** 2).mean()), "mae": float(np.abs(y - p).mean()), "r2": 1 - ss_res / ss_tot}


def test_the_reference_scores_on_a_hand_computed_matrix():
    y_true, y_pred = _labels_from_cm(CM)
    ref = _macro_scores(y_true, y_pred, range(3))
    assert ref["precision"] == pytest.approx(sum(PRECISION) / 3) and ref["recall"] == pytest.approx(sum(RECALL) / 3)
    assert ref["f1"] == pytest.approx(sum(F1) / 3)


def test_classification_metrics_hand_computed():
    m = classification_metrics(CM, loss_sum=8.0, count=16)
    assert m["accuracy"] == pytest.approx(12 / 16)
    assert m["precision"] == pytest.approx(sum(PRECISION) / 3)
    assert m["recall"] == pytest.approx(sum(RECALL) / 3)
    assert m["f1"] == pytest.approx(sum(F1) / 3)
    assert m["loss"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in m.values())


def test_classification_metrics_match_the_reference_on_the_same_matrix():
    y_true, y_pred = _labels_from_cm(CM)
    m = classification_metrics(CM, 0.0, len(y_true))
    ref = _macro_scores(y_true, y_pred, range(3))
    assert m["accuracy"] == pytest.approx(float((y_true == y_pred).mean()))
    for k in ("precision", "recall", "f1"):
        assert m[k] == pytest.approx(ref[k])


def test_perfect_and_all_wrong():
    perfect = classification_metrics(torch.diag(torch.tensor([3, 4, 5])), 0.0, 12)
    assert perfect["accuracy"] == perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    wrong = classification_metrics(torch.tensor([[0, 2], [3, 0]]), 0.0, 5)
    assert wrong["accuracy"] == wrong["precision"] == wrong["recall"] == wrong["f1"] == 0.0


def test_class_absent_from_the_data_is_left_out_of_the_macro_average():
    # class 2 never occurs in the targets (a small split); it is predicted once
    cm = torch.tensor([[3, 0, 1],
                       [1, 2, 0],
                       [0, 0, 0]])
    y_true, y_pred = _labels_from_cm(cm)
    m = classification_metrics(cm, 0.0, 7)
    ref = _macro_scores(y_true, y_pred, [0, 1])  # the classes present in the targets
    for k in ("precision", "recall", "f1"):
        assert m[k] == pytest.approx(ref[k])
    assert m["accuracy"] == pytest.approx(5 / 7)


def test_empty_confusion_matrix_is_all_zero_not_nan():
    m = classification_metrics(torch.zeros(3, 3, dtype=torch.long), 0.0, 0)
    assert m == {"loss": 0.0, "accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("seed", range(5))
def test_accumulator_over_batches_matches_the_reference(seed):
    g = torch.Generator().manual_seed(seed)
    k, n = 7, 503
    target = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g)
    logits[torch.arange(n), target] += 1.0  # better than chance, not perfect
    losses = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    acc = ClassificationAccumulator(k, CPU)
    for lo in range(0, n, 64):  # uneven last batch
        sl = slice(lo, lo + 64)
        acc.update(logits[sl], target[sl], losses[sl].sum())
    m, cm = acc.compute()
    y_true, y_pred = target.numpy(), logits.argmax(1).numpy()
    assert cm == np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).tolist()  # rows: true class
    assert acc.count == n
    assert m["loss"] == pytest.approx(float(losses.double().mean()), rel=1e-6)
    assert m["accuracy"] == pytest.approx(float((y_true == y_pred).mean()))
    ref = _macro_scores(y_true, y_pred, range(k))
    for name in ("precision", "recall", "f1"):
        assert m[name] == pytest.approx(ref[name])


def test_accumulator_confusion_orientation():
    acc = ClassificationAccumulator(3, CPU)
    # true 0 predicted 2, twice; true 1 predicted 1
    logits = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    acc.update(logits, torch.tensor([0, 0, 1]), torch.tensor(0.0))
    _, cm = acc.compute()
    assert cm == [[0, 0, 2], [0, 1, 0], [0, 0, 0]]


# --------------------------------------------------------------------------- regression

def test_regression_metrics_hand_computed():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    se, ae = ((p - y) ** 2).sum(), np.abs(p - y).sum()  # 2.25, 2.5
    m = regression_metrics(loss_sum=se, se=se, ae=ae, y_sum=y.sum(), y_sq=(y**2).sum(), n=4)
    assert m["mse"] == pytest.approx(2.25 / 4)
    assert m["mae"] == pytest.approx(2.5 / 4)
    assert m["r2"] == pytest.approx(1 - 2.25 / 5.0)  # SS_tot = 5
    assert m["loss"] == pytest.approx(2.25 / 4)


def test_regression_constant_target_gives_zero_r2_not_a_division_error():
    m = regression_metrics(0.0, 1.0, 1.0, 6.0, 12.0, 3)  # y = [2, 2, 2]
    assert m["r2"] == 0.0


@pytest.mark.parametrize("seed, offset", [(0, 0.0), (1, 3.0), (2, -50.0), (3, 1e4)])
def test_regression_accumulator_matches_the_reference(seed, offset):
    rng = np.random.default_rng(seed)
    n = 777
    y = rng.normal(offset, 2.0, size=n)
    p = y + rng.normal(0.0, 0.7, size=n)
    acc = RegressionAccumulator(CPU)
    for lo in range(0, n, 100):
        yt = torch.tensor(y[lo:lo + 100], dtype=torch.float32).unsqueeze(1)
        pt = torch.tensor(p[lo:lo + 100], dtype=torch.float32).unsqueeze(1)
        acc.update(pt, yt, ((pt - yt) ** 2).sum())
    m, extra = acc.compute()
    assert extra == []
    # the accumulator sees float32 inputs, as the engine gives it
    y32, p32 = y.astype(np.float32).astype(np.float64), p.astype(np.float32).astype(np.float64)
    ref = _regression_scores(y32, p32)
    assert m["mse"] == pytest.approx(ref["mse"], rel=1e-6)
    assert m["mae"] == pytest.approx(ref["mae"], rel=1e-6)
    assert m["r2"] == pytest.approx(ref["r2"], rel=1e-6, abs=1e-6)
    assert m["loss"] == pytest.approx(m["mse"], rel=1e-5)
    assert acc.count == n


def test_regression_accumulator_accepts_flat_and_column_shapes():
    a, b = RegressionAccumulator(CPU), RegressionAccumulator(CPU)
    y = torch.tensor([1.0, 2.0, 4.0])
    p = torch.tensor([1.0, 3.0, 3.0])
    a.update(p, y, torch.tensor(2.0))
    b.update(p.unsqueeze(1), y.unsqueeze(1), torch.tensor(2.0))
    assert a.compute() == b.compute()
    assert a.compute()[0]["r2"] == pytest.approx(_regression_scores(y.numpy(), p.numpy())["r2"])


def test_multi_output_regression_averages_over_outputs():
    """Targets of 3 values: MSE and MAE over every value, R² the mean of each output's (sklearn's
    uniform_average), with the outputs on very different scales."""
    rng = np.random.default_rng(5)
    n = 301
    y = rng.normal(0.0, 1.0, size=(n, 3)) * np.array([1.0, 100.0, 0.01]) + np.array([0.0, 5.0, -3.0])
    p = y + rng.normal(0.0, 1.0, size=(n, 3)) * np.array([0.5, 30.0, 0.009])
    acc = RegressionAccumulator(CPU, outputs=3)
    for lo in range(0, n, 64):
        yt, pt = torch.tensor(y[lo:lo + 64]), torch.tensor(p[lo:lo + 64])
        acc.update(pt, yt, ((pt - yt) ** 2).sum())
    m, _ = acc.compute()
    ref = _regression_scores(y, p)  # MSE and MAE over every value
    per_output = [_regression_scores(y[:, j], p[:, j])["r2"] for j in range(3)]
    assert m["mse"] == pytest.approx(ref["mse"], rel=1e-9)
    assert m["mae"] == pytest.approx(ref["mae"], rel=1e-9)
    assert m["r2"] == pytest.approx(sum(per_output) / 3, rel=1e-9)  # scikit-learn's uniform_average
    assert m["r2"] != pytest.approx(ref["r2"], rel=1e-3)  # not pooled over the outputs
