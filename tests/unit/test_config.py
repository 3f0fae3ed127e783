"""core.config: presets, defaults, --set parsing, validation and the malformed-preset corpus."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_train.core.config import (
    DEFAULT_PRESET,
    PRESETS_DIR,
    ConfigError,
    RunConfig,
    apply_overrides,
    field_docs,
    from_dict,
    list_presets,
    load_config,
    parse_override,
    resolve_preset,
    to_dict,
    to_toml,
)

MALFORMED = Path(__file__).resolve().parent / "malformed"
BUNDLED = sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))
EXPECTED_PRESETS = {
    "digits-mlp", "mnist-mlp", "mnist-simple", "mnist-cnn", "fashion-mnist-cnn", "kmnist-cnn",
    "cifar10-resnet", "regression-mlp", "mnist-fast",
}


def assert_one_line(msg: str) -> None:
    assert msg.strip(), "empty error message"
    assert "\n" not in msg and "\r" not in msg, f"message is not one line: {msg!r}"
    assert "Traceback" not in msg


def _roundtrip(cfg: RunConfig) -> RunConfig:
    return from_dict(tomllib.loads(to_toml(cfg)), "<roundtrip>")


# --------------------------------------------------------------------------- bundled presets

def test_the_spec_presets_are_bundled():
    assert set(BUNDLED) >= EXPECTED_PRESETS
    assert DEFAULT_PRESET == "digits-mlp"
    assert set(list_presets()) >= EXPECTED_PRESETS


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_preset_loads_and_roundtrips(name):
    cfg = load_config(name)
    assert isinstance(cfg, RunConfig)
    assert cfg.name == name
    assert cfg.description and "\n" not in cfg.description
    assert _roundtrip(cfg) == cfg
    assert from_dict(to_dict(cfg)) == cfg
    # by path as well as by name
    assert load_config(str(PRESETS_DIR / f"{name}.toml")) == cfg


def test_preset_values_from_the_spec():
    mlp = load_config("mnist-mlp")
    assert (mlp.data.dataset, mlp.model.name, mlp.model.hidden, mlp.optim.name) == ("mnist", "mlp", [512, 256], "adam")
    simple = load_config("mnist-simple")
    assert simple.model.hidden == [128] and simple.optim.name == "sgd" and simple.optim.lr == 0.01
    assert simple.data.mean == [0.5] and simple.data.std == [0.5]
    cnn = load_config("mnist-cnn")
    assert cnn.model.name == "cnn" and cnn.optim.name == "adam" and cnn.optim.lr == 1e-3
    assert cnn.data.augment.rotation > 0 or cnn.data.augment.translate > 0
    reg = load_config("regression-mlp")
    assert reg.data.dataset == "regression" and reg.model.hidden == [5]
    assert reg.optim.loss == "mse" and reg.optim.name == "sgd" and reg.optim.lr == 0.01
    assert reg.schedule.name == "inverse_sqrt"
    digits = load_config("digits-mlp")
    assert digits.data.dataset == "digits" and not digits.data.augment.hflip


def test_defaults():
    cfg = from_dict({})
    assert cfg == RunConfig()
    assert cfg.data.dataset == "digits" and cfg.model.name == "mlp" and cfg.optim.name == "adam"
    assert cfg.optim.lr == 1e-3 and cfg.schedule.name == "constant" and cfg.train.device == "auto"
    assert cfg.data.num_workers == 0
    assert cfg.monitor_mode == "min"
    assert from_dict({"early_stopping": {"monitor": "val_accuracy"}}).monitor_mode == "max"
    assert from_dict({"data": {"dataset": "regression"}, "optim": {"loss": "mse"}, "model": {"name": "regression"},
                      "early_stopping": {"monitor": "val_r2"}}).monitor_mode == "max"
    assert from_dict({"early_stopping": {"monitor": "val_accuracy", "mode": "min"}}).monitor_mode == "min"
    # mutable defaults are not shared between instances
    assert RunConfig().model.hidden is not RunConfig().model.hidden


def test_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.lr = 0.5  # type: ignore[misc]


def test_every_field_has_a_one_line_doc():
    docs = field_docs()
    assert "optim.lr" in docs and "data.augment.hflip" in docs
    for key, doc in docs.items():
        assert doc and "\n" not in doc, key


def test_int_is_accepted_for_a_float_field_and_stored_as_float():
    cfg = from_dict({"optim": {"lr": 1}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


def test_unknown_preset_names_the_allowed_ones():
    with pytest.raises(ConfigError) as e:
        resolve_preset("no-such-preset")
    msg = str(e.value)
    assert_one_line(msg)
    assert "no-such-preset" in msg
    for name in EXPECTED_PRESETS:
        assert name in msg


def test_missing_preset_file():
    with pytest.raises(ConfigError) as e:
        load_config("/nonexistent/dir/x.toml")
    assert_one_line(str(e.value))
    assert "/nonexistent/dir/x.toml" in str(e.value)


def test_a_preset_with_a_utf8_bom_loads_and_is_listed(tmp_path):
    """issue 20 defect 9: a BOM (Notepad, PowerShell's Out-File) gave "malformed TOML" without a word of it."""
    text = (PRESETS_DIR / "digits-mlp.toml").read_text(encoding="utf-8")
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert to_dict(load_config(str(path))) | {"name": ""} == to_dict(load_config("digits-mlp")) | {"name": ""}
    assert list_presets([tmp_path])["bom"] == path


# --------------------------------------------------------------------------- --set

@pytest.mark.parametrize("text, key, value", [
    ("train.epochs=3", ["train", "epochs"], 3),
    ("optim.lr=3e-4", ["optim", "lr"], 3e-4),
    ("optim.lr = 0.5", ["optim", "lr"], 0.5),
    ("train.deterministic=true", ["train", "deterministic"], True),
    ("train.deterministic=false", ["train", "deterministic"], False),
    ("optim.name=sgd", ["optim", "name"], "sgd"),
    ("model.name=my_models.py:Net", ["model", "name"], "my_models.py:Net"),
    ("model.hidden=[64, 32]", ["model", "hidden"], [64, 32]),
    ('model.name="cnn"', ["model", "name"], "cnn"),
    ("model.name='cnn'", ["model", "name"], "cnn"),
    ('description="a = b"', ["description"], "a = b"),
    ("data.augment.hflip=true", ["data", "augment", "hflip"], True),
])
def test_parse_override(text, key, value):
    parts, parsed = parse_override(text)
    assert parts == key
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", [
    "optim.lr",            # missing '='
    "optim.lr=",           # missing value
    "=3",                  # missing key
    "optim..lr=1",         # empty key part
    "model.hidden=[1, 2",  # unterminated list
    'model.name="cnn',     # unterminated string
    "optim.lr={a=",        # broken inline table
])
def test_parse_override_rejects(text):
    with pytest.raises(ConfigError) as e:
        parse_override(text)
    assert_one_line(str(e.value))
    assert "--set" in str(e.value)


def test_overrides_are_validated_against_the_field_type():
    base = tomllib.loads((PRESETS_DIR / "digits-mlp.toml").read_text())
    cfg = from_dict(apply_overrides(base, ["optim.lr=3e-4", "train.epochs=2", "optim.name=sgd",
                                           "model.hidden=[64, 32]", "train.deterministic=true"]))
    assert (cfg.optim.lr, cfg.train.epochs, cfg.optim.name, cfg.model.hidden, cfg.train.deterministic) == \
        (3e-4, 2, "sgd", [64, 32], True)
    assert base["optim"]["lr"] == 0.001, "apply_overrides must not modify its input"
    for bad, key in [("train.epochs=abc", "train.epochs"), ("train.epochs=2.5", "train.epochs"),
                     ("optim.lr=fast", "optim.lr"), ("train.deterministic=yes", "train.deterministic"),
                     ("model.hidden=[64, \"x\"]", "model.hidden"), ("optim.lr=0", "optim.lr"),
                     ("optim.lr=nan", "optim.lr"), ("train.epochs=-1", "train.epochs"),
                     ("optim.name=lbfgs", "optim.name"), ("optim.bogus=1", "optim.bogus"),
                     ("bogus.key=1", "bogus")]:
        with pytest.raises(ConfigError) as e:
            from_dict(apply_overrides(base, [bad]))
        assert_one_line(str(e.value))
        assert key in str(e.value), bad


def test_override_through_a_scalar_is_refused():
    with pytest.raises(ConfigError) as e:
        apply_overrides({"optim": {"lr": 0.1}}, ["optim.lr.x=1"])
    assert_one_line(str(e.value))
    assert "lr" in str(e.value)
    with pytest.raises(ConfigError) as e:  # on an empty base the error comes from validation
        from_dict(apply_overrides({}, ["optim.lr.x=1"]))
    assert_one_line(str(e.value))
    assert "lr" in str(e.value)


def test_load_config_with_overrides_names_file_and_key():
    cfg = load_config("digits-mlp", ["train.epochs=2", "optim.lr=0.01"])
    assert cfg.train.epochs == 2 and cfg.optim.lr == 0.01
    with pytest.raises(ConfigError) as e:
        load_config("digits-mlp", ["optim.lr=-1"])
    msg = str(e.value)
    assert_one_line(msg)
    assert "digits-mlp.toml" in msg and "optim.lr" in msg and "> 0" in msg


def test_cross_key_rule_applies_after_overrides():
    with pytest.raises(ConfigError, match="hflip"):
        load_config("digits-mlp", ["data.augment.hflip=true"])
    assert load_config("digits-mlp", ["optim.name=sgd", "optim.momentum=0.9", "optim.nesterov=true"]).optim.nesterov


def test_override_with_trailing_document_is_refused():
    with pytest.raises(ConfigError):
        parse_override("train.epochs=2\nfoo = 1")


@pytest.mark.parametrize("override", ["optim.lr=1" + "0" * 400, "optim.betas=[1" + "0" * 400 + ", 0.9]"],
                         ids=["scalar", "list-item"])
def test_huge_integer_for_a_float_field_is_a_config_error(override):
    with pytest.raises(ConfigError):
        from_dict(apply_overrides({}, [override]))


# --------------------------------------------------------------------------- to_toml roundtrip edge cases

def test_roundtrip_description_with_newline():
    cfg = from_dict({"description": "line one\nline two"})
    assert _roundtrip(cfg) == cfg


def test_roundtrip_kwargs_key_with_quote():
    cfg = from_dict({"model": {"name": "m.py:Net", "kwargs": {'a"b': 1}}})
    assert _roundtrip(cfg) == cfg


def test_roundtrip_kwargs_and_odd_strings():
    cfg = from_dict({
        "description": 'quotes " and \\ backslashes, tab\tand unicode é',
        "model": {"name": "pkg.mod:Net", "kwargs": {"width": 3, "act": "relu", "sizes": [1, 2], "x-y": 1.5}},
        "data": {"dataset": "my_data.py:DS", "kwargs": {"root": "/tmp/x"}},
        "optim": {"lr": 1e-7, "betas": [0.5, 0.99]},
        "train": {"seed": 2**63 - 1},
    })
    assert _roundtrip(cfg) == cfg


# --------------------------------------------------------------------------- the malformed corpus

def _corpus() -> list:
    params = []
    for path in sorted(MALFORMED.glob("*.toml")):
        head = path.read_bytes().decode("utf-8", "replace").splitlines()
        expects = [ln.split(":", 1)[1].strip() for ln in head if ln.startswith("# expect:")]
        xfail = [ln.split(":", 1)[1].strip() for ln in head if ln.startswith("# xfail:")]
        marks = [pytest.mark.xfail(strict=True, reason="BUG: " + xfail[0])] if xfail else []
        params.append(pytest.param(path, expects, marks=marks, id=path.stem))
    return params


CORPUS = _corpus()


def test_corpus_is_complete():
    names = {p.id for p in CORPUS}
    required = {
        "syntax_unclosed_table", "unknown_section", "unknown_key_in_section", "unknown_key_top_level",
        "string_for_number", "float_for_int", "number_for_bool", "nan_lr", "inf_lr", "neg_inf_lr",
        "lr_zero", "lr_negative", "epochs_negative", "val_fraction_too_big", "unknown_dataset",
        "unknown_model", "unknown_optimizer", "list_wrong_item_type", "section_as_scalar",
        "nesterov_without_momentum", "hflip_on_digits", "cross_entropy_on_regression",
    }
    assert required <= names, required - names
    for p in CORPUS:
        assert p.values[1], f"{p.id} has no '# expect:' line"


@pytest.mark.parametrize("path, expects", CORPUS)
def test_malformed_preset(path, expects):
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    msg = str(e.value)
    assert_one_line(msg)
    assert str(path) in msg, f"message does not name the file: {msg!r}"
    for fragment in expects:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


# --------------------------------------------------------------------------- property

KNOWN_KEYS = sorted(field_docs()) + ["data", "model", "optim", "schedule", "train", "early_stopping",
                                     "checkpoint", "data.augment"]
VALUES = st.one_of(
    st.booleans(),
    # TOML's integer range; beyond it: test_huge_integer_for_a_float_field_is_a_config_error
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)


def _render(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    return str(v)  # ints, and strings as the raw text a user would type after '='


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), VALUES), min_size=1, max_size=3))
def test_any_override_gives_a_config_or_a_one_line_error(pairs):
    overrides = [f"{k}={_render(v)}" for k, v in pairs]
    try:
        cfg = from_dict(apply_overrides({}, overrides), "<prop>")
    except ConfigError as e:
        assert_one_line(str(e))
        return
    assert isinstance(cfg, RunConfig)
    for f in (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.data.val_fraction, cfg.schedule.gamma):
        assert math.isfinite(f)
    assert cfg.optim.lr > 0 and cfg.train.epochs >= 1


@settings(max_examples=300, deadline=None, database=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), VALUES), min_size=1, max_size=3))
def test_any_python_value_in_a_dict_gives_a_config_or_a_one_line_error(pairs):
    raw: dict = {}
    for key, value in pairs:
        node = raw
        *heads, last = key.split(".")
        for h in heads:
            nxt = node.setdefault(h, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node[last] = value
    try:
        cfg = from_dict(raw, "<prop>")
    except ConfigError as e:
        assert_one_line(str(e))
        return
    assert isinstance(cfg, RunConfig)


_SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)


@settings(max_examples=200, deadline=None, database=None)
@given(desc=_SAFE_TEXT, lr=st.floats(min_value=1e-8, max_value=10.0), hidden=st.lists(st.integers(1, 4096), min_size=1, max_size=4),
       epochs=st.integers(1, 100_000), hflip=st.booleans())
def test_valid_configs_roundtrip_through_toml(desc, lr, hidden, epochs, hflip):
    cfg = from_dict({"description": desc, "optim": {"lr": lr}, "model": {"hidden": hidden},
                     "train": {"epochs": epochs}, "data": {"dataset": "cifar10", "augment": {"hflip": hflip}}})
    assert _roundtrip(cfg) == cfg
    assert re.match(r"^name = ", to_toml(cfg))


def test_bf16_takes_true_false_or_auto():
    for value in (True, False, "auto"):
        assert from_dict({"train": {"bf16": value}}).train.bf16 == value
    for bad in ("yes", 1, "Auto"):
        with pytest.raises(ConfigError, match=r"train\.bf16: expected true, false or 'auto'"):
            from_dict({"train": {"bf16": bad}})
    assert "auto" in to_toml(from_dict({"train": {"bf16": "auto"}}))


def test_first_stride_is_one_or_two():
    assert from_dict({"model": {"name": "cnn", "first_stride": 2}}).model.first_stride == 2
    for bad in (0, 3, 1.5):
        with pytest.raises(ConfigError, match=r"model\.first_stride"):
            from_dict({"model": {"name": "cnn", "first_stride": bad}})
