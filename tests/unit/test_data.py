"""core.train.data: splits, seeded order, exact resume, normalization, augmentation, user datasets, MNIST."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import textwrap
from pathlib import Path

import pytest
import torch

from tui_train.core.config import AugmentConfig, ConfigError, DataConfig
from tui_train.core.train.data import DataError, epoch_order, load_data, load_digits_arrays

CPU = torch.device("cpu")
AUG = AugmentConfig(rotation=15.0, translate=0.1, crop_padding=2)


def _collect(batches) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*list(batches))
    return torch.cat(xs), torch.cat(ys)


def _write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


# --------------------------------------------------------------------------- digits

DIGITS_SHA256 = {"pixels": "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3",
                 "labels": "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"}
"""SHA-256 of the shipped arrays' bytes, as written from scikit-learn 1.9.1's load_digits() (issue 14)."""


def test_shipped_digits_are_the_uci_digits_byte_for_byte():
    pixels, labels = load_digits_arrays()
    assert pixels.shape == (1797, 64) and labels.shape == (1797,) and pixels.dtype == labels.dtype == torch.uint8
    assert hashlib.sha256(pixels.numpy().tobytes()).hexdigest() == DIGITS_SHA256["pixels"]
    assert hashlib.sha256(labels.numpy().tobytes()).hexdigest() == DIGITS_SHA256["labels"]
    assert int(pixels.max()) == 16 and int(labels.max()) == 9
    assert torch.bincount(labels.long()).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed (not a dependency)")
def test_shipped_digits_equal_scikit_learns_copy():
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels, labels = load_digits_arrays()
    assert (pixels.numpy() == d.data).all() and (labels.numpy() == d.target).all()


def test_digits_shapes_and_split_sizes():
    d = load_data(DataConfig(dataset="digits"), CPU, seed=0)
    assert d.task == "classification" and d.num_classes == 10 and d.loader == "tensor"
    assert d.input_shape == (1, 8, 8)
    assert d.class_names == [str(i) for i in range(10)]
    assert d.test_size == round(1797 * 0.2)
    assert d.val_size == round((1797 - d.test_size) * 0.1)
    assert d.train_size + d.val_size + d.test_size == 1797
    x, y = next(d.train_batches(0, 64))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert d.steps_per_epoch(64) == -(-d.train_size // 64)
    xs, _ = _collect(d.train_batches(0, 64))
    assert xs.shape[0] == d.train_size  # the last partial batch is included
    xt, yt = _collect(d.eval_batches("test", 100))
    assert xt.shape == (d.test_size, 1, 8, 8) and int(yt.max()) <= 9


def test_digits_normalized_on_train_split():
    d = load_data(DataConfig(dataset="digits"), CPU, seed=0)
    x, _ = _collect(d.eval_batches("train", 4096))
    assert len(d.mean) == 1 and len(d.std) == 1
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    raw = load_data(DataConfig(dataset="digits", normalize=False), CPU, seed=0)
    assert raw.mean == [] and raw.std == []
    xr, _ = _collect(raw.eval_batches("train", 4096))
    assert float(xr.min()) >= 0 and float(xr.max()) <= 1
    assert abs(float(xr.mean()) - d.mean[0]) < 1e-5


def test_given_mean_std_are_used_and_checked():
    d = load_data(DataConfig(dataset="digits", mean=[0.5], std=[0.25]), CPU, seed=0)
    assert d.mean == [0.5] and d.std == [0.25]
    with pytest.raises(DataError, match="channel") as e:
        load_data(DataConfig(dataset="digits", mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2]), CPU, seed=0)
    assert "\n" not in str(e.value)


def test_splits_depend_on_seed_only():
    a = load_data(DataConfig(dataset="digits", normalize=False), CPU, seed=3)
    b = load_data(DataConfig(dataset="digits", normalize=False), CPU, seed=3)
    c = load_data(DataConfig(dataset="digits", normalize=False), CPU, seed=4)
    ta, tb, tc = (_collect(d.eval_batches("test", 512))[0] for d in (a, b, c))
    assert torch.equal(ta, tb) and not torch.equal(ta, tc)


def test_subset_limits_train_only():
    d = load_data(DataConfig(dataset="digits", subset=100), CPU, seed=0)
    assert d.train_size == 100 and d.val_size == 144 and d.test_size == 359


# --------------------------------------------------------------------------- order and resume

def test_epoch_order_is_stateless_and_varies():
    assert torch.equal(epoch_order(1, 5, 100), epoch_order(1, 5, 100))
    assert not torch.equal(epoch_order(1, 5, 100), epoch_order(1, 6, 100))
    assert not torch.equal(epoch_order(1, 5, 100), epoch_order(2, 5, 100))
    assert sorted(epoch_order(1, 5, 100).tolist()) == list(range(100))


def test_same_seed_same_batches_different_epoch_different_order():
    cfg = DataConfig(dataset="digits", augment=AUG)
    a = load_data(cfg, CPU, seed=7)
    b = load_data(cfg, CPU, seed=7)
    xa, ya = _collect(a.train_batches(2, 50))
    xb, yb = _collect(b.train_batches(2, 50))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    _, y3 = _collect(a.train_batches(3, 50))
    assert not torch.equal(ya, y3)


@pytest.mark.parametrize("start", [0, 1, 7, 25, 26])
def test_start_reproduces_the_tail_exactly_with_augmentation(start):
    d = load_data(DataConfig(dataset="digits", augment=AUG), CPU, seed=1)
    bs = 50  # 1294 train samples: 26 batches, the last one partial
    full = list(d.train_batches(4, bs))
    assert len(full) == d.steps_per_epoch(bs) == 26 and full[-1][0].shape[0] == d.train_size - 25 * bs
    tail = list(d.train_batches(4, bs, start=start))
    assert len(tail) == len(full) - start
    for (x1, y1), (x2, y2) in zip(full[start:], tail):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_start_past_the_end_yields_nothing():
    d = load_data(DataConfig(dataset="digits"), CPU, seed=0)
    assert list(d.train_batches(0, 64, start=d.steps_per_epoch(64))) == []


def test_eval_batches_fixed_order_and_unknown_split():
    d = load_data(DataConfig(dataset="digits", augment=AUG), CPU, seed=0)
    a, b = _collect(d.eval_batches("val", 32)), _collect(d.eval_batches("val", 32))
    assert torch.equal(a[0], b[0]) and a[0].shape[0] == d.val_size
    with pytest.raises(ValueError):
        list(d.eval_batches("nope", 32))


# --------------------------------------------------------------------------- augmentation

def _first_batch(aug: AugmentConfig, **kw):
    d = load_data(DataConfig(dataset="digits", augment=aug, **kw), CPU, seed=0)
    plain = load_data(DataConfig(dataset="digits", **kw), CPU, seed=0)
    return next(d.train_batches(0, 64)), next(plain.train_batches(0, 64))


def test_augmentation_changes_images_keeps_shape_and_labels():
    (xa, ya), (xp, yp) = _first_batch(AUG)
    assert xa.shape == xp.shape and torch.equal(ya, yp)
    changed = (xa - xp).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.9
    assert torch.isfinite(xa).all()


def test_hflip_mirrors_about_half_exactly():
    (xa, _), (xp, _) = _first_batch(AugmentConfig(hflip=True))
    same = (xa == xp).flatten(1).all(1)
    flipped = (xa == xp.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 10 < int(flipped.sum()) < 54


def test_crop_is_a_whole_pixel_shift_with_black_padding():
    (xa, _), (xp, _) = _first_batch(AugmentConfig(crop_padding=2), normalize=False)
    for a, p in zip(xa, xp):
        ok = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(p)
                src = p[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)]
                shifted[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)] = src
                ok = ok or torch.allclose(a, shifted, atol=1e-6)
        assert ok


def test_padding_is_black_after_normalization():
    # A large shift exposes padding: it must equal the normalized value of raw 0, not 0.
    d = load_data(DataConfig(dataset="digits", augment=AugmentConfig(translate=0.5)), CPU, seed=0)
    x, _ = next(d.train_batches(0, 256))
    black = -d.mean[0] / d.std[0]
    assert float(x.min()) >= black - 1e-4
    assert (x - black).abs().lt(1e-4).float().mean() > 0.3


def test_augmentation_on_vector_data_is_refused():
    with pytest.raises(DataError, match="image"):
        load_data(DataConfig(dataset="regression", augment=AugmentConfig(rotation=5.0)), CPU, seed=0)


# --------------------------------------------------------------------------- regression

def test_regression_standardized_and_split():
    d = load_data(DataConfig(dataset="regression", samples=1000), CPU, seed=0)
    assert d.task == "regression" and d.num_classes == 0 and d.input_shape == (10,) and d.class_names == []
    assert (d.train_size, d.val_size, d.test_size) == (720, 80, 200)
    x, y = _collect(d.eval_batches("train", 4096))
    assert y.shape == (720, 1) and y.dtype == torch.float32
    assert abs(float(y.mean())) < 1e-5 and abs(float(y.std()) - 1) < 1e-2
    assert float(x.mean(0).abs().max()) < 1e-5 and float((x.std(0) - 1).abs().max()) < 1e-2
    assert d.target_std > 0 and len(d.mean) == 10
    # splits are disjoint: continuous random rows never repeat
    rows = {tuple(r.tolist()) for r in x}
    for split in ("val", "test"):
        xs, _ = _collect(d.eval_batches(split, 4096))
        assert not rows & {tuple(r.tolist()) for r in xs}


def test_regression_is_mostly_linear():
    d = load_data(DataConfig(dataset="regression", samples=4000), CPU, seed=0)
    x, y = _collect(d.eval_batches("train", 10_000))
    xb = torch.cat([x, torch.ones(len(x), 1)], 1)
    w = torch.linalg.lstsq(xb, y).solution
    r2 = 1 - float(((xb @ w - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    assert 0.9 < r2 < 0.995


# --------------------------------------------------------------------------- user datasets

USER_DATA = """
    import torch
    from torch.utils.data import Dataset, TensorDataset

    class Ids(Dataset):
        '''x = [id], y = id % 3: items are tuples, not a TensorDataset.'''
        def __init__(self, n=200, offset=0):
            self.n, self.offset = n, offset
        def __len__(self):
            return self.n
        def __getitem__(self, i):
            return torch.tensor([float(i + self.offset)]), (i + self.offset) % 3

    def splits(n=200):
        return {"train": Ids(n), "test": Ids(50, offset=10_000)}

    def single(n=200):
        return Ids(n)

    def regression():
        x = torch.randn(300, 4)
        return TensorDataset(x, x.sum(1))

    def images():
        g = torch.Generator().manual_seed(0)
        x = torch.rand(120, 1, 8, 8, generator=g)
        return TensorDataset(x, torch.arange(120) % 4)

    def broken():
        raise ValueError("no such table")

    def not_a_dataset():
        return 42
"""


@pytest.fixture
def user_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "mydata.py", USER_DATA)
    return "mydata.py"


def _ids(d, split, bs=64):
    batches = d.train_batches(0, bs) if split == "train" else d.eval_batches(split, bs)
    x, y = _collect(batches)
    return x, y


def test_user_dataset_dict_splits(user_file):
    d = load_data(DataConfig(dataset=f"{user_file}:splits", normalize=False), CPU, seed=0)
    assert d.task == "classification" and d.num_classes == 3 and d.input_shape == (1,) and d.loader == "tensor"
    assert d.test_size == 50 and d.val_size == 20 and d.train_size == 180
    ids = {s: set(_ids(d, s)[0].flatten().long().tolist()) for s in ("train", "val", "test")}
    assert ids["test"] == set(range(10_000, 10_050))
    assert ids["train"].isdisjoint(ids["val"]) and ids["train"] | ids["val"] == set(range(200))
    x, y = _ids(d, "train")
    assert torch.equal(x.flatten().long() % 3, y)


def test_user_dataset_single_is_carved(user_file):
    d = load_data(DataConfig(dataset=f"{user_file}:single", kwargs={"n": 100}), CPU, seed=0)
    assert (d.train_size, d.val_size, d.test_size) == (72, 8, 20)
    x, _ = _ids(d, "train")
    assert abs(float(x.mean())) < 1e-5  # normalized per feature on train


def test_user_dataset_regression_auto(user_file):
    d = load_data(DataConfig(dataset=f"{user_file}:regression"), CPU, seed=0)
    assert d.task == "regression" and d.num_classes == 0 and d.input_shape == (4,)
    x, y = next(d.train_batches(0, 16))
    assert x.shape == (16, 4) and y.shape == (16, 1) and y.dtype == torch.float32


def test_user_tensordataset_is_not_modified(user_file, tmp_path):
    _write(tmp_path, "fixed.py", """
        import torch
        from torch.utils.data import TensorDataset
        X = torch.arange(40.0).view(20, 2)
        def ds():
            return {"train": TensorDataset(X, torch.arange(20) % 2), "val": TensorDataset(X[:4], torch.zeros(4).long()),
                    "test": TensorDataset(X[:4], torch.zeros(4).long())}
    """)
    load_data(DataConfig(dataset="fixed.py:ds"), CPU, seed=0)
    import sys
    mod = next(m for n, m in sys.modules.items() if n.startswith("_tui_train_user_fixed"))
    assert torch.equal(mod.X, torch.arange(40.0).view(20, 2))


def test_dataloader_path_matches_tensor_path(user_file):
    aug = AugmentConfig(rotation=10.0, crop_padding=1)
    cfg = DataConfig(dataset=f"{user_file}:images", loader="tensor", augment=aug)
    t = load_data(cfg, CPU, seed=5)
    dl = load_data(DataConfig(dataset=f"{user_file}:images", loader="dataloader", augment=aug), CPU, seed=5)
    assert t.loader == "tensor" and dl.loader == "dataloader"
    assert (t.train_size, t.val_size, t.test_size, t.num_classes) == (dl.train_size, dl.val_size, dl.test_size, 4)
    assert t.mean == pytest.approx(dl.mean) and t.std == pytest.approx(dl.std)
    for (x1, y1), (x2, y2) in zip(t.train_batches(1, 16, start=2), dl.train_batches(1, 16, start=2), strict=True):
        assert torch.allclose(x1, x2, atol=1e-5) and torch.equal(y1, y2)
    for (x1, y1), (x2, y2) in zip(t.eval_batches("test", 7), dl.eval_batches("test", 7), strict=True):
        assert torch.allclose(x1, x2, atol=1e-5) and torch.equal(y1, y2)


@pytest.mark.parametrize("spec, fragment", [
    ("mydata.py:broken", "constructing the dataset failed (ValueError: no such table)"),
    ("mydata.py:not_a_dataset", "not a map-style Dataset"),
    ("mydata.py:missing", "has no attribute 'missing'"),
    ("nofile.py:Net", "not found"),
])
def test_bad_user_dataset_is_a_one_line_config_error(user_file, spec, fragment):
    with pytest.raises(ConfigError) as e:
        load_data(DataConfig(dataset=spec), CPU, seed=0)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"data.dataset {spec!r}") and fragment in msg


def test_user_file_with_syntax_or_import_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "syn.py", "def f(:\n    pass\n")
    _write(tmp_path, "imp.py", "import bar_does_not_exist_xyz\n")
    with pytest.raises(ConfigError) as e:
        load_data(DataConfig(dataset="syn.py:f"), CPU, seed=0)
    assert "cannot import syn.py (SyntaxError" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_data(DataConfig(dataset="imp.py:f"), CPU, seed=0)
    assert str(e.value) == ("data.dataset 'imp.py:f': cannot import imp.py "
                            "(ModuleNotFoundError: No module named 'bar_does_not_exist_xyz')")


# --------------------------------------------------------------------------- torchvision datasets

def test_missing_mnist_offline_names_the_path_and_data_dir(tmp_path):
    with pytest.raises(DataError) as e:
        load_data(DataConfig(dataset="mnist", data_dir=str(tmp_path), download=False), CPU, seed=0)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "MNIST" / "raw") in msg and "--data-dir" in msg


def test_real_mnist_subset(mnist_root):
    d = load_data(DataConfig(dataset="mnist", data_dir=str(mnist_root), subset=500), CPU, seed=0)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10 and len(d.class_names) == 10
    assert (d.train_size, d.val_size, d.test_size) == (500, 6000, 10_000)
    x, y = next(d.train_batches(0, 128))
    assert x.shape == (128, 1, 28, 28) and y.dtype == torch.int64
    assert 0.10 < d.mean[0] < 0.16 and 0.28 < d.std[0] < 0.34
    xt, yt = next(d.eval_batches("test", 10_000))
    assert xt.shape == (10_000, 1, 28, 28) and set(yt.tolist()) == set(range(10))


def test_dataloader_spawn_workers_load_user_file(user_file):
    # Spawned workers never imported mydata.py: they must re-load it to unpickle the dataset.
    d = load_data(DataConfig(dataset=f"{user_file}:single", loader="dataloader", num_workers=1, normalize=False,
                             num_classes=3), CPU, seed=0)
    ref = load_data(DataConfig(dataset=f"{user_file}:single", loader="tensor", normalize=False), CPU, seed=0)
    x1, y1 = _collect(d.train_batches(0, 32, start=1))
    x2, y2 = _collect(ref.train_batches(0, 32, start=1))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_spawned_workers_import_only_the_user_files_the_dataset_needs(user_file, tmp_path):
    """A long-lived process (the TUI's trainer, a test session) has loaded other user files too:
    one deleted since, one that raises when imported again. A spawned worker imports just what
    unpickling the dataset asks for (it re-imported every file loaded so far, and failed)."""
    from tui_train.core.plugins import load_object

    _write(tmp_path, "gone.py", "def make():\n    return None\n")
    _write(tmp_path, "once.py", "import os\nif os.environ.get('TUI_TRAIN_IN_WORKER') == '1':\n    raise RuntimeError('imported again')\n"
                                "def make():\n    return None\n")
    load_object("gone.py:make", "data.dataset")
    load_object("once.py:make", "data.dataset")
    (tmp_path / "gone.py").unlink()
    os.environ["TUI_TRAIN_IN_WORKER"] = "1"  # inherited by the spawned worker only from here on
    try:
        d = load_data(DataConfig(dataset=f"{user_file}:single", loader="dataloader", num_workers=1, normalize=False,
                                 num_classes=3), CPU, seed=0)
        x, y = _collect(d.train_batches(0, 32, start=1))
    finally:
        del os.environ["TUI_TRAIN_IN_WORKER"]
    assert len(x) == len(y) > 0


def test_uint8_channel_stats_match_the_float_computation():
    from tui_train.core.train.data import _channel_stats, _uint8_channel_stats

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 3, 5, 7), dtype=torch.uint8, generator=g)
    x[:, 2] = 17  # a constant channel keeps std 1 (left as it is)
    fast, slow = _uint8_channel_stats(x), _channel_stats(x.float() / 255)
    assert fast[0] == pytest.approx(slow[0], abs=1e-6) and fast[1][:2] == pytest.approx(slow[1][:2], abs=1e-6)
    assert fast[1][2] == 1.0 == slow[1][2]
    exact = x[:, 0].double() / 255
    assert fast[0][0] == pytest.approx(exact.mean().item(), abs=1e-12)
    assert fast[1][0] == pytest.approx(exact.std(unbiased=False).item(), abs=1e-12)
    half = _channel_stats((x.float() / 255).half())  # half data: summed in float32, not overflowing
    assert half[0] == pytest.approx(slow[0], abs=1e-3)


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_string_labels_are_named_in_one_line(tmp_path, monkeypatch, loader):
    """issue 20 defect 9: labels such as "cat" gave "cannot turn str into a tensor", not what to do."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "words.py", """
        import torch
        from torch.utils.data import Dataset
        class Words(Dataset):
            def __len__(self):
                return 60
            def __getitem__(self, i):
                return torch.tensor([float(i)]), ["cat", "dog", "bird"][i % 3]
        def words():
            return Words()
    """)
    with pytest.raises(DataError) as e:
        load_data(DataConfig(dataset="words.py:words", loader=loader), CPU, seed=0)
    msg = str(e.value)
    assert "\n" not in msg and "labels are strings" in msg and "'cat'" in msg and "class indices" in msg
