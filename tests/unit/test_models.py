"""core.train.models and core.plugins: builtin shapes, init, summaries, user models and one-line errors."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from tui_train.core.config import ConfigError, ModelConfig
from tui_train.core.plugins import load_object
from tui_train.core.train.models import build_model, count_params, describe_model


@pytest.mark.parametrize("name, shape, hidden", [
    ("mlp", (1, 28, 28), [64, 32]),
    ("mlp", (10,), [8]),
    ("regression", (10,), [5]),
    ("cnn", (1, 28, 28), [32]),
    ("cnn", (3, 32, 32), [32]),
    ("cnn", (1, 8, 8), [16]),
    ("resnet", (3, 32, 32), [128]),
    ("resnet", (1, 28, 28), [128]),
    ("resnet", (1, 8, 8), [128]),
])
def test_builtin_forward_shapes(name, shape, hidden):
    outputs = 1 if name == "regression" else 10
    channels = [8, 16, 32] if name == "resnet" else [8, 16]
    m = build_model(ModelConfig(name=name, hidden=hidden, channels=channels), shape, outputs)
    out = m(torch.randn(3, *shape))
    assert out.shape == (3, outputs)
    out.sum().backward()  # trainable end to end
    assert all(p.grad is not None for p in m.parameters())


def test_mlp_layers_activation_and_dropout():
    m = build_model(ModelConfig(name="mlp", hidden=[20, 10], activation="tanh", dropout=0.25), (4,), 3)
    kinds = [type(x) for x in m]
    assert kinds == [nn.Flatten, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear]
    assert [layer.out_features for layer in m if isinstance(layer, nn.Linear)] == [20, 10, 3]
    no_drop = build_model(ModelConfig(name="mlp", hidden=[20]), (4,), 3)
    assert not any(isinstance(x, nn.Dropout) for x in no_drop)


def test_cnn_is_the_classic_layout():
    m = build_model(ModelConfig(name="cnn", hidden=[128], dropout=0.5), (1, 28, 28), 10)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))]
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 2
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert (linears[0].in_features, linears[0].out_features) == (64 * 7 * 7, 128)
    assert any(isinstance(x, nn.Dropout) for x in m.modules())


def test_cnn_with_batch_norm_and_a_single_linear_head():
    m = build_model(ModelConfig(name="cnn", channels=[16, 32, 64], hidden=[], batch_norm=True), (1, 28, 28), 10)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    bns = [x for x in m.modules() if isinstance(x, nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64] and all(c.bias is None for c in convs)
    assert [b.num_features for b in bns] == [16, 32, 64]
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(64 * 3 * 3, 10)]
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert describe_model(m).startswith("cnn 1x28x28 conv16-32-64 bn fc576-10")
    plain = build_model(ModelConfig(name="cnn", channels=[16], hidden=[]), (1, 28, 28), 10)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in plain.modules())


@pytest.mark.parametrize("name", ["mlp", "regression", "resnet", "tests_user_model_that_is_not_there.py:Net"])
def test_batch_norm_is_the_cnn_s_switch_only(name):
    shape = (1, 8, 8) if name == "resnet" else (64,)
    with pytest.raises(ConfigError, match=r"model\.batch_norm"):
        build_model(ModelConfig(name=name, batch_norm=True), shape, 10)


def test_resnet_has_batchnorm_residual_stages():
    m = build_model(ModelConfig(name="resnet", channels=[16, 32, 64]), (3, 32, 32), 10)
    assert any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert len(m.stages) == 3 and all(len(s) == 2 for s in m.stages)
    one = build_model(ModelConfig(name="resnet", channels=[16, 32], kwargs={"blocks": 1}), (3, 32, 32), 10)
    assert all(len(s) == 1 for s in one.stages)


def test_image_models_refuse_vector_input():
    with pytest.raises(ConfigError, match="image input"):
        build_model(ModelConfig(name="cnn"), (10,), 1)


def test_builtin_refuses_unknown_kwargs():
    with pytest.raises(ConfigError, match=r"model\.kwargs"):
        build_model(ModelConfig(name="mlp", kwargs={"depth": 3}), (4,), 2)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_init_options_change_weights_and_zero_biases(name, init):
    shape = (1, 8, 8)
    torch.manual_seed(0)
    ref = build_model(ModelConfig(name=name, hidden=[32]), shape, 10)
    torch.manual_seed(0)
    m = build_model(ModelConfig(name=name, hidden=[32], init=init), shape, 10)
    layers = [x for x in m.modules() if isinstance(x, (nn.Linear, nn.Conv2d))]
    refs = [x for x in ref.modules() if isinstance(x, (nn.Linear, nn.Conv2d))]
    assert all(not torch.equal(a.weight, b.weight) for a, b in zip(layers, refs))
    assert all(torch.count_nonzero(x.bias) == 0 for x in layers)


def test_default_init_is_pytorch_init():
    torch.manual_seed(0)
    a = build_model(ModelConfig(name="mlp", hidden=[16]), (4,), 2)
    torch.manual_seed(0)
    b = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    assert torch.equal(a[1].weight, b[1].weight) and torch.equal(a[3].bias, b[3].bias)


def test_describe_and_count():
    m = build_model(ModelConfig(name="mlp", hidden=[512, 256]), (1, 28, 28), 10)
    assert count_params(m) == 535_818
    assert describe_model(m) == "mlp 784-512-256-10 (535,818 params)"
    r = build_model(ModelConfig(name="regression", hidden=[5], activation="tanh"), (10,), 1)
    assert describe_model(r) == "regression 10-5-1 (61 params)"
    c = build_model(ModelConfig(name="cnn"), (1, 28, 28), 10)
    assert describe_model(c).startswith("cnn 1x28x28 conv32-64") and f"({count_params(c):,} params)" in describe_model(c)
    assert describe_model(build_model(ModelConfig(name="resnet"), (3, 32, 32), 10)).startswith("resnet 3x32x32")
    assert describe_model(nn.Linear(3, 2)) == "Linear (8 params)"
    frozen = nn.Linear(3, 2)
    frozen.bias.requires_grad_(False)
    assert count_params(frozen) == 6


# --------------------------------------------------------------------------- user models and specs

USER_MODELS = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=8, num_outputs=None, input_shape=None):
            super().__init__()
            self.input_shape, self.num_outputs = input_shape, num_outputs
            self.body = nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_outputs))
        def forward(self, x):
            return self.body(x)

    def plain(hidden=4):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.Linear(hidden, 10))

    def boom():
        raise RuntimeError("bad\\nthings")

    def number():
        return 3

    NOT_CALLABLE = 5
"""


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models_user.py").write_text(textwrap.dedent(USER_MODELS))
    (tmp_path / "syn.py").write_text("class Net(:\n")
    (tmp_path / "imp.py").write_text("import bar\n")
    return tmp_path


def test_user_model_from_file(user_models):
    m = build_model(ModelConfig(name="models_user.py:Net", kwargs={"width": 6}), (1, 8, 8), 10)
    assert m.input_shape == (1, 8, 8) and m.num_outputs == 10  # offered because the factory declares them
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert describe_model(m).startswith("Net (")
    p = build_model(ModelConfig(name="models_user.py:plain", kwargs={"hidden": 3}, init="xavier"), (1, 8, 8), 10)
    assert p[1].out_features == 3 and torch.count_nonzero(p[1].bias) == 0


def test_user_model_from_package():
    m = build_model(ModelConfig(name="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2}), (4,), 2)
    assert isinstance(m, nn.Linear)


@pytest.mark.parametrize("spec, message", [
    ("models_user.py:boom", "model.name 'models_user.py:boom': constructing the model failed (RuntimeError: bad things)"),
    ("models_user.py:number", "model.name 'models_user.py:number': returned int, not a torch.nn.Module"),
    ("models_user.py:Missing", "model.name 'models_user.py:Missing': models_user.py has no attribute 'Missing'"),
    ("models_user.py:NOT_CALLABLE", "model.name 'models_user.py:NOT_CALLABLE': 'NOT_CALLABLE' in models_user.py is not callable (got int)"),
    ("imp.py:Net", "model.name 'imp.py:Net': cannot import imp.py (ModuleNotFoundError: No module named 'bar')"),
    ("no_such_pkg_xyz.mod:Net",
     "model.name 'no_such_pkg_xyz.mod:Net': cannot import no_such_pkg_xyz.mod (ModuleNotFoundError: No module named 'no_such_pkg_xyz')"),
])
def test_bad_user_model_is_one_line_config_error(user_models, spec, message):
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(name=spec), (1, 8, 8), 10)
    assert str(e.value) == message


def test_load_object_file_errors(user_models):
    for spec, fragment in [("missing.py:Net", "file missing.py not found"),
                           ("syn.py:Net", "cannot import syn.py (SyntaxError: "),
                           ("models_user.py:", "expected 'path/to/file.py:Name'"),
                           ("Net", "expected 'path/to/file.py:Name'")]:
        with pytest.raises(ConfigError) as e:
            load_object(spec, "model.name")
        assert str(e.value).startswith(f"model.name {spec!r}: ") and fragment in str(e.value)
        assert "\n" not in str(e.value)


def test_load_object_same_stem_in_two_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for sub, value in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "net.py").write_text(f"def f():\n    return {value}\n")
    assert load_object("a/net.py:f", "model.name")() == 1
    assert load_object("b/net.py:f", "model.name")() == 2


def test_cnn_first_stride_replaces_the_first_pool():
    m = build_model(ModelConfig(name="cnn", channels=[16, 32, 64], hidden=[], batch_norm=True, first_stride=2),
                    (1, 28, 28), 10)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1)]
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 2  # the first block has none
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert describe_model(m).startswith("cnn 1x28x28 conv16s2-32-64 bn fc576-10")  # 28 -> 14 -> 7 -> 3
    odd = build_model(ModelConfig(name="cnn", channels=[8, 8], hidden=[], first_stride=2), (3, 5, 5), 4)
    assert odd(torch.zeros(1, 3, 5, 5)).shape == (1, 4)  # 5 -> 3 -> 1


@pytest.mark.parametrize("name", ["mlp", "resnet", "tests_user_model_that_is_not_there.py:Net"])
def test_first_stride_is_a_cnn_key_only(name):
    shape = (1, 8, 8) if name == "resnet" else (64,)
    with pytest.raises(ConfigError, match=r"model\.first_stride"):
        build_model(ModelConfig(name=name, first_stride=2), shape, 10)
