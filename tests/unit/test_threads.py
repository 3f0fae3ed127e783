"""The thread tuner: measures candidates (alternating rounds) and keeps the fastest."""

from __future__ import annotations

import torch

import tui_train.core.threads as engine
from tui_train.core.config import from_dict
from tui_train.core.threads import ThreadTuner, thread_candidates


def test_candidates_only_when_the_count_is_free(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    cpu = torch.device("cpu")
    assert thread_candidates(cpu, from_dict({})) == [8, 4, 1]
    assert thread_candidates(cpu, from_dict({"train": {"num_threads": 2}})) == []
    assert thread_candidates(cpu, from_dict({"train": {"deterministic": True}})) == []
    assert thread_candidates(torch.device("cuda"), from_dict({})) == []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert thread_candidates(cpu, from_dict({})) == []


def test_tuner_picks_the_fastest_and_restarts_after_interruptions(monkeypatch):
    step_seconds = {2: 0.002, 1: 0.001}  # 1 thread is twice as fast here
    state = {"now": 0.0, "threads": 2}
    monkeypatch.setattr(engine.time, "perf_counter", lambda: state["now"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: state.update(threads=n))
    tuner = ThreadTuner([2, 1], warmup=2, min_seconds=0.05, min_steps=5)
    chosen, stops, steps = None, 0, 0
    while chosen is None and steps < 10_000:
        state["now"] += step_seconds[state["threads"]]
        steps += 1
        if steps == 30:
            stops += 1  # an evaluation in the middle of a window: that window starts over
            state["now"] += 5.0
        chosen = tuner.after_step(stops)
    assert chosen == 1 and state["threads"] == 1
    assert tuner.rates[1] > 1.5 * tuner.rates[2]
    assert tuner.rates[2] < 600  # the 5 s interruption never counted as a slow window


def test_a_tie_within_the_noise_goes_to_the_fewest_threads(monkeypatch):
    from tui_train.core.threads import NOISE

    for ratio, expect in ((1.0 + NOISE / 2, 1), (1.0 + 3 * NOISE, 2)):  # 2 threads a little faster / clearly faster
        step_seconds = {2: 0.001, 1: 0.001 * ratio}
        state = {"now": 0.0, "threads": 2}
        monkeypatch.setattr(engine.time, "perf_counter", lambda state=state: state["now"])
        monkeypatch.setattr(torch, "set_num_threads", lambda n, state=state: state.update(threads=n))
        tuner = ThreadTuner([2, 1], warmup=2, min_seconds=0.05, min_steps=5)
        chosen = None
        while chosen is None:
            state["now"] += step_seconds[state["threads"]]
            chosen = tuner.after_step(0)
        assert chosen == expect and state["threads"] == expect, ratio
