"""Sharding and the single-process World, without processes: each sample once per epoch, the same
step count on every rank, no empty batch; a World of one is a no-op."""

from __future__ import annotations

import pytest
import torch

from tui_train.core.live.launch import torchrun_command
from tui_train.core.train.data import DataError, TensorData
from tui_train.core.train.distributed import DistributedError, World, from_env, rng_from_json, rng_to_json


def data_of(n: int) -> TensorData:
    from tui_train.core.config import AugmentConfig

    splits = {k: (torch.arange(m, dtype=torch.float32).view(-1, 1), torch.zeros(m, dtype=torch.long))
              for k, m in (("train", n), ("val", 7), ("test", 5))}
    return TensorData(splits, name="t", task="classification", num_classes=2, input_shape=(1,), class_names=["a", "b"],
                      mean=[], std=[], device=torch.device("cpu"), seed=0, augment=AugmentConfig())


@pytest.mark.parametrize("n, batch, world", [(100, 8, 2), (101, 8, 2), (97, 8, 3), (17, 8, 2), (16, 8, 2), (3, 8, 2),
                                             (33, 4, 4), (5, 1, 5), (1000, 64, 2), (129, 64, 2)])
def test_every_sample_once_per_epoch_the_same_steps_on_every_rank_and_no_empty_batch(n, batch, world):
    shards = []
    for rank in range(world):
        d = data_of(n)
        d.set_shard(rank, world)
        batches = [x.view(-1).long().tolist() for x, _ in d.train_batches(epoch=3, batch_size=batch)]
        assert len(batches) == d.steps_per_epoch(batch)
        assert all(batches), "a rank got an empty batch"
        shards.append(batches)
    assert len({len(b) for b in shards}) == 1, "the ranks take different numbers of steps"
    seen = sorted(i for b in shards for batch_ in b for i in batch_)
    assert seen == list(range(n))
    for split, size in (("val", 7), ("test", 5)):
        got = []
        for rank in range(world):
            d = data_of(n)
            d.set_shard(rank, world)
            got += [int(v) for x, _ in d.eval_batches(split, 2) for v in x.view(-1)]
        assert sorted(got) == list(range(size))


def test_one_rank_batches_are_the_single_process_batches():
    a, b = data_of(101), data_of(101)
    b.set_shard(0, 1)
    assert [x.tolist() for x, _ in a.train_batches(0, 8)] == [x.tolist() for x, _ in b.train_batches(0, 8)]
    assert a.steps_per_epoch(8) == 13


def test_a_resumed_rank_starts_at_its_batch():
    d = data_of(100)
    d.set_shard(1, 2)
    whole = [x.tolist() for x, _ in d.train_batches(2, 8)]
    assert [x.tolist() for x, _ in d.train_batches(2, 8, start=3)] == whole[3:]


def test_fewer_samples_than_ranks_is_refused_in_one_line():
    with pytest.raises(DataError, match="fewer than the 4 processes"):
        data_of(3).set_shard(0, 4)


def test_a_world_of_one_is_a_no_op():
    w = World()
    assert not w.enabled and w.is_main
    assert w.sync(b"x", True) == (b"x", True)
    assert w.all_sum([1.0, 2.0]) == [1.0, 2.0]
    assert w.gather_json({"a": 1}) == [{"a": 1}]
    assert w.broadcast_text("dir") == "dir"


def test_the_environment_names_the_rank_and_a_broken_one_is_one_line():
    w = from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RESTART_COUNT": "3"})
    assert (w.rank, w.world_size, w.local_rank, w.local_world_size, w.restart) == (1, 2, 1, 2, 3)
    assert from_env({}).world_size == 1
    with pytest.raises(DistributedError, match="torchrun"):
        from_env({"WORLD_SIZE": "2"})


def test_rng_states_travel_as_json_and_come_back_equal():
    import json

    from tui_train.core.train import checkpoint as ckpt

    state = ckpt.rng_state(torch.device("cpu"))
    back = rng_from_json(json.loads(json.dumps(rng_to_json(state))))
    assert torch.equal(back["torch"], state["torch"])
    assert back["python"] == state["python"] and torch.equal(back["numpy"][1], state["numpy"][1])
    torch.manual_seed(5)
    ckpt.rng_restore(back, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state["torch"])


def test_torchrun_command_passes_the_multi_node_options_through():
    single = torchrun_command(2, ["mnist-cnn"], {})
    assert "--standalone" in single and "--nproc-per-node=2" in single
    assert single[single.index("-m", 3):] == ["-m", "tui_train.tui.cli", "run", "mnist-cnn", "--headless"]
    multi = torchrun_command(4, ["p"], {"nnodes": "2", "rdzv_endpoint": "host:29400", "max_restarts": 3})
    assert "--standalone" not in multi
    assert {"--nnodes=2", "--rdzv-endpoint=host:29400", "--max-restarts=3"} <= set(multi)
    assert not any(a.startswith("--max-restarts") for a in torchrun_command(2, ["p"], {"max_restarts": 3})), \
        "one node: the supervisor restarts a fresh torchrun, torchrun itself does not"


def test_a_supervised_restart_adds_to_torchrun_s_count():
    w = from_env({"WORLD_SIZE": "2", "RANK": "0", "TORCHELASTIC_RESTART_COUNT": "1", "TUI_TRAIN_RESTART_COUNT": "2"})
    assert w.restart == 3
    assert from_env({"TUI_TRAIN_RESTART_COUNT": "1"}).restart == 1


def _fake_group(tmp_path, statuses: list[str], codes: list[int]):
    """A stand-in for torchrun: attempt N (TUI_TRAIN_RESTART_COUNT) leaves statuses[N] in
    summary.json ('' none: rank 0 killed; 'refused': none and no events.jsonl either, a run
    refused at start) and exits codes[N]; every attempt is recorded."""
    import sys

    script = tmp_path / "group.py"
    script.write_text(
        "import json, os, sys\n"
        f"statuses, codes, d = {statuses!r}, {codes!r}, {str(tmp_path)!r}\n"
        "n = int(os.environ['TUI_TRAIN_RESTART_COUNT'])\n"
        "open(os.path.join(d, 'attempts'), 'a').write(str(n) + '\\n')\n"
        "if os.path.exists(os.path.join(d, 'summary.json')): os.remove(os.path.join(d, 'summary.json'))\n"
        "if statuses[n] != 'refused': open(os.path.join(d, 'events.jsonl'), 'a').close()\n"
        "if statuses[n] not in ('', 'refused'): json.dump({'status': statuses[n]}, open(os.path.join(d, 'summary.json'), 'w'))\n"
        "sys.exit(codes[n])\n")
    return [sys.executable, str(script)]


@pytest.mark.parametrize(("statuses", "codes", "restarts", "attempts", "code"), [
    (["failed", "failed", "completed"], [1, 1, 0], 3, 3, 0),   # two failed groups, the third finishes the run
    (["failed", "failed", "failed"], [1, 1, 1], 2, 3, 1),      # restarts used up: the last failure stands
    (["", "completed"], [1, 0], 1, 2, 0),                      # rank 0 itself killed: no summary, restarted
    (["refused"], [1], 3, 1, 1),                               # refused at start (torchrun says 1): final
    (["interrupted"], [130], 3, 1, 130),                       # ended on purpose: never restarted
    (["early_stopped"], [1], 3, 1, 1),
    (["failed"], [2], 3, 1, 2),                                # bad input: final
    (["completed"], [0], 0, 1, 0),
])
def test_supervise_restarts_a_failed_group_and_only_that(tmp_path, statuses, codes, restarts, attempts, code):
    import io

    from tui_train.core.live.launch import supervise

    out = io.StringIO()
    assert supervise(_fake_group(tmp_path, statuses, codes), tmp_path, restarts, out=out) == code
    assert (tmp_path / "attempts").read_text().split() == [str(i) for i in range(attempts)]
    assert out.getvalue().count("a fresh torchrun resumes the newest checkpoint") == attempts - 1


def test_a_signal_to_the_supervisor_reaches_the_group_once_and_starts_no_other(tmp_path):
    """SIGTERM while a group runs: torchrun gets it (here: a stand-in that records it and exits
    failed, as a group whose rank died would), and no restart follows."""
    import signal
    import sys
    import threading

    from tui_train.core.live.launch import supervise

    script = tmp_path / "group.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"d = {str(tmp_path)!r}\n"
        "open(os.path.join(d, 'events.jsonl'), 'a').close()\n"
        "def got(s, f):\n"
        "    open(os.path.join(d, 'signals'), 'a').write(str(s) + '\\n'); sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, got)\n"
        "open(os.path.join(d, 'ready'), 'w').close()\n"
        "time.sleep(60)\n")
    before = signal.getsignal(signal.SIGTERM)
    timer = None

    def send_when_ready():
        import os
        import time

        for _ in range(600):
            if (tmp_path / "ready").exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    timer = threading.Thread(target=send_when_ready, daemon=True)
    timer.start()
    assert supervise([sys.executable, str(script)], tmp_path, 3) == 1
    timer.join(5)
    assert (tmp_path / "signals").read_text().split() == [str(int(signal.SIGTERM))]  # once, and no second group
    assert signal.getsignal(signal.SIGTERM) == before  # the supervisor gave the handlers back
