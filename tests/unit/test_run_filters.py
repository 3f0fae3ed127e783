"""Filter words for the runs list (issue 24 item 5): the grammar (comparisons, plain words, quotes,
spaces around operators), how each kind of key compares, trial parameters, and one-line errors."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_train.core.rundir import filters as F
from tui_train.core.rundir.runs import SORT_KEYS, RunRow


def row(name: str = "20260101-000000-alpha", **kw) -> RunRow:
    """A RunRow as list_runs makes it (no files needed to filter)."""
    hp = {"lr": kw.pop("lr", 1e-3), "batch_size": kw.pop("batch_size", 64), "optimizer": kw.pop("optimizer", "adam"),
          "schedule": kw.pop("schedule", "constant")}
    base = dict(run_dir=f"/runs/{name}", name=name, status="completed", live=False, preset=name.split("-", 2)[-1],
                started=datetime(2026, 1, 1, 12).timestamp(), duration=125.0, epochs=3, epochs_planned=3,
                best={"metric": "val_accuracy", "value": 0.93, "epoch": 2}, test={"accuracy": 0.91, "loss": 0.3},
                hyperparameters=hp, interventions=1)
    return RunRow(**(base | kw))


def trial(number: int, params: dict, sweep: str = "20260105-120000-sweep-digits-mlp", **kw) -> RunRow:
    return row(f"2026010{number}-000000-digits-mlp", sweep=sweep, sweep_dir=f"/runs/{sweep}", trial=number, params=params,
               **kw)


def keep(text: str, *rows: RunRow) -> list[str]:
    """The names of ``rows`` that pass ``text``."""
    return [r.name for r in F.parse_filter(text).apply(rows)]


# --------------------------------------------------------------------------- the grammar


def test_words_are_comparisons_or_plain_words_and_all_must_hold():
    f = F.parse_filter('lr>=1e-3 optimizer=adam  status=completed best>0.9 sweep=digits-mlp tag=baseline note="new data" sgd')
    assert [(c.key, c.op, c.value) for c in f.conditions] == [
        ("lr", ">=", "1e-3"), ("optimizer", "=", "adam"), ("status", "=", "completed"), ("best", ">", "0.9"),
        ("sweep", "=", "digits-mlp"), ("tags", "=", "baseline"), ("note", "=", "new data"), ("", "", "sgd")]
    assert f.conditions[0].number == 0.001
    a, b = row(lr=1e-3), row("20260102-000000-beta", lr=1e-4)
    assert keep("lr>=1e-3 adam", a, b) == [a.name]  # AND: both hold for alpha only
    assert keep("lr>=1e-3 sgd", a, b) == []
    assert keep("", a, b) == [a.name, b.name] and not F.parse_filter("   ")


@pytest.mark.parametrize("text", ["lr >= 1e-3", "lr>= 1e-3", "lr >=1e-3", "lr>=1e-3", "LR>=0.001"])
def test_spaces_around_an_operator_and_the_keys_case_do_not_matter(text):
    assert [(c.key, c.op, c.number) for c in F.parse_filter(text).conditions] == [("lr", ">=", 0.001)]


def test_several_texts_are_one_filter_and_aliases_name_the_same_keys():
    f = F.parse_filter(["lr<1", "batch=64 run=alpha tag=x"])
    assert [c.key for c in f.conditions] == ["lr", "batch_size", "name", "tags"]


def test_a_key_with_no_value_keeps_the_runs_without_one_and_not_equal_those_with_one():
    plain, t = row(), trial(1, {"optim.lr": 0.01})
    assert keep("sweep=", plain, t) == [plain.name]
    assert keep("sweep!=", plain, t) == [t.name]
    assert keep("sweep= adam", plain, t) == [plain.name]  # KEY= stays a word of its own
    tagged = row("20260103-000000-tagged", tags=["baseline"])
    assert keep("tag=", plain, tagged) == [plain.name] and keep("tag!=", plain, tagged) == [tagged.name]


@pytest.mark.parametrize("text, fragments", [
    ("lr>=fast", ["'lr>=fast'", "'fast' is not a number", "numbers"]),
    ("colour=red", ["'colour=red'", "no key 'colour'", "status", "optim.lr"]),
    ("best<", ["'best<'", "needs a value"]),
    ("=5", ["'=5'", "not KEY OP VALUE"]),
    ('note="never closed', ["quote"]),
    ("duration<5x", ["'5x' is not a duration", "5m"]),
    ("started>soon", ["'soon' is not a date", "2026-01-02"]),
    ("epochs>=nan", ["not a number"]),
])
def test_bad_filter_text_is_one_line_naming_the_word_and_what_is_allowed(text, fragments):
    with pytest.raises(F.FilterError) as err:
        F.parse_filter(text)
    line = str(err.value)
    assert "\n" not in line
    for fragment in fragments:
        assert fragment in line, line


def test_every_sortable_column_can_be_filtered_on():
    assert [k for k in SORT_KEYS if k not in F.FILTER_KEYS] == []


def test_a_quoted_word_is_looked_for_as_it_is():
    odd = row(note="ratio a=b held")
    assert keep('"a=b"', odd, row("20260102-000000-beta")) == [odd.name]


# --------------------------------------------------------------------------- how keys compare


def test_numbers_compare_as_numbers():
    small, big = row(lr=1e-4, batch_size=32), row("20260102-000000-beta", lr=0.1, batch_size=256)
    assert keep("lr<0.001", small, big) == [small.name]
    assert keep("lr=0.1", small, big) == keep("lr=1e-1", small, big) == [big.name]
    assert keep("batch_size>=64", small, big) == [big.name]  # not "256" < "64" as text
    assert keep("test>90%", small) == [small.name] and keep("test>=0.95", small) == []
    assert keep("epochs=3 interventions!=0", small) == [small.name]


def test_durations_take_units_and_start_times_take_dates():
    r = row(duration=125.0, time_to_target=40.0)
    assert keep("duration>2m", r) == [r.name] and keep("duration<2m", r) == [] and keep("duration<=125s", r) == [r.name]
    assert keep("time_to_target<1min", r) == [r.name]
    assert keep("started>=2026-01-01", r) == [r.name] and keep("started>=2026-01-02", r) == []
    assert keep("started<2026-01-01T13:00", r) == [r.name]


def test_words_match_their_whole_value_with_wildcards_and_free_text_anywhere():
    adam, adamw = row(optimizer="adam"), row("20260102-000000-mnist-cnn", optimizer="adamw", note="Warmup helped a lot")
    assert keep("optimizer=adam", adam, adamw) == [adam.name]  # the whole value: adamw is no adam
    assert keep("optimizer=ADAM*", adam, adamw) == [adam.name, adamw.name]
    assert keep("preset=mnist*", adam, adamw) == [adamw.name]
    assert keep("note=warmup", adam, adamw) == [adamw.name]  # a note: anywhere in it, any case
    assert keep("name=mnist", adam, adamw) == [adamw.name]
    assert keep("status!=failed", adam) == [adam.name]
    assert keep("optimizer<b", adam, adamw) == [adam.name, adamw.name]  # text orders as text


def test_a_missing_value_never_passes_an_ordering_and_always_passes_not_equal():
    killed = row(best={}, test={}, duration=None)
    assert keep("best>0", killed) == [] and keep("best<=0", killed) == []
    assert keep("best!=0.5", killed) == [killed.name] and keep("duration=", killed) == [killed.name]


def test_tags_match_any_tag_and_sweeps_match_their_folder_or_name():
    t = trial(3, {"optim.lr": 0.01}, tags=["Baseline", "best"])
    other = trial(4, {}, sweep="20260106-090000-sweep-mnist-cnn")
    assert keep("tag=baseline", t, other) == [t.name] and keep("tag!=baseline", t, other) == [other.name]
    assert keep("sweep=digits-mlp", t, other) == [t.name]
    assert keep("sweep=20260106-090000-sweep-mnist-cnn", t, other) == [other.name]
    assert keep("sweep=runs/20260106-090000-sweep-mnist-cnn/", t, other) == [other.name]  # a path names its folder
    assert keep("sweep=*mnist*", t, other) == [other.name]
    assert keep("trial>=4", t, other) == [other.name]


def test_a_trials_parameters_by_their_preset_key_and_hyperparameters_for_any_run():
    a = trial(1, {"optim.lr": 0.01, "model.hidden": [128, 64], "optim.name": "sgd", "data.augment": True}, optimizer="sgd")
    b = trial(2, {"optim.lr": 0.1, "model.hidden": [64]})
    plain = row(lr=0.05)
    assert keep("optim.lr>=0.05", a, b, plain) == [b.name, plain.name]  # a run that is no trial: its configured lr
    assert keep("model.hidden=[128,64]", a, b) == [a.name] and keep("model.hidden=[128, 64]", a, b) == []
    assert keep('model.hidden="[128, 64]"', a, b) == [a.name]
    assert keep("optim.name=SGD data.augment=true", a, b) == [a.name]
    assert keep("model.depth=3", a, b, plain) == [] and keep("model.depth!=3", a, b) == [a.name, b.name]
    assert keep("optim.lr=fast", a) == []  # a number against a word: never equal


def test_plain_words_look_in_the_names_hyperparameters_sweep_tags_and_note_but_not_the_paths():
    t = trial(1, {"optim.lr": 0.01}, tags=["keeper"], note="Loss spiked at epoch 2")
    assert keep("keeper", t) == keep("SPIKED", t) == keep("optim.lr=0.01 digits", t) == [t.name]
    assert keep("runs", t) == []  # /runs/ is every run's path


# --------------------------------------------------------------------------- properties

finite = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False)


@given(value=finite, bound=finite)
def test_an_ordering_and_its_opposite_split_the_runs(value, bound):
    r = row(lr=value)
    for op, opposite in (("<", ">="), (">", "<="), ("=", "!=")):
        a, b = keep(f"lr{op}{bound!r}", r), keep(f"lr{opposite}{bound!r}", r)
        assert len(a) + len(b) == 1, (op, value, bound)
    assert keep(f"lr={value!r}", r) == [r.name]  # a value as Python writes it finds itself


@given(text=st.text(max_size=40))
def test_any_text_is_a_filter_or_one_filter_error(text):
    try:
        f = F.parse_filter(text)
    except F.FilterError as err:
        assert "\n" not in str(err)
    else:
        f.matches(row(note=text, tags=["t"]))  # and matching never raises


@given(key=st.sampled_from(sorted(F.FILTER_KEYS)), value=st.text(alphabet="abc019.-*", max_size=6),
       note=st.text(max_size=10))
def test_not_equal_is_always_the_opposite_of_equal(key, value, note):
    r = trial(2, {"optim.lr": 0.1}, note=note, tags=["a1"])
    try:
        eq, ne = F.parse_filter(f"{key}={value}"), F.parse_filter(f"{key}!={value}")
    except F.FilterError:
        return  # not a number / duration / date for a key that compares those
    assert eq.matches(r) != ne.matches(r)


def test_infinite_and_nan_values_in_a_row_are_missing_values():
    r = row(best={"metric": "val_loss", "value": math.inf})
    assert keep("best>0", r) == [] and keep("best=", r) == [r.name]
