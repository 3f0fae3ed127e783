"""A real trainer process behind its control endpoint: start, several viewers, detach, attach, end.

Each test starts the trainer process as `tui-train run` does (core.train.serve, its own session), on a
tiny digits run, and drives it with core.live.remote.RemoteTrainer and core.run.endpoint.Connection.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.engine_helpers import TIMEOUT, Running
from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core import protocol as P
from tui_train.core.config import from_dict
from tui_train.core.live.remote import RemoteTrainer
from tui_train.core.run.endpoint import POINTER, Connection, live_runs, probe


def tiny(epochs: int = 200, **train):
    return from_dict({
        "name": "tiny", "data": {"dataset": "digits", "batch_size": 64}, "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.05}, "train": {"epochs": epochs, "log_every": 5, "device": "cpu", "num_threads": 1, **train},
        "checkpoint": {"save_best": False},
    })


class Viewer(Running):
    """A RemoteTrainer run in a thread, its events collected."""

    def detach(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def paused(ev) -> bool:
    return isinstance(ev, E.StatusChanged) and ev.status == "paused"


def test_start_pause_second_viewer_detach_attach_and_stop(tmp_path):
    first = RemoteTrainer(tiny(), runs_dir=tmp_path / "runs", preset="tiny")
    first.submit(C.Pause())  # queued until connected
    a = Viewer(first)
    started = a.wait_for(lambda e: isinstance(e, E.RunStarted))
    a.wait_for(paused)
    run_dir = Path(started.run_dir)
    ptr, why = probe(run_dir)
    assert ptr is not None and ptr.pid == first.pid != os.getpid(), why
    assert [p.run_dir for p in live_runs(tmp_path / "runs")] == [run_dir]

    # a second viewer (a script) changes the LR: applied once, both see the acknowledgement, with its origin
    ctl = Connection(ptr.socket, viewer="ctl")
    assert ctl.status == "paused" and ctl.seq > 0
    ctl.send(C.SetLearningRate(0.02))
    ack = a.wait_for(lambda e: isinstance(e, E.CommandApplied) and e.key == "lr")
    assert ack.origin == ctl.viewer_id and ack.new == 0.02
    seen = next(e for e, _, _ in ctl.events(0.2) if isinstance(e, E.CommandApplied) and e.key == "lr")
    assert seen == ack
    ctl.close()
    pause_ack = next(e for e in a.events if isinstance(e, E.CommandApplied) and e.command == "Pause")
    assert pause_ack.origin == first.viewer_id
    records = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [(r["command"], r["origin"]) for r in records if r["event"] == "CommandApplied"] == [
        ("Pause", first.viewer_id), ("SetLearningRate", ctl.viewer_id)]

    # detach: the run goes on (still paused, still live)
    a.detach()
    assert first.detached and a.result == {}
    assert probe(run_dir)[0] is not None

    # attach again: the history comes from the run directory, then live events; it steers
    again = RemoteTrainer(attach=run_dir)
    b = Viewer(again)
    b.wait_for(lambda e: isinstance(e, E.CommandApplied) and e.key == "lr")  # from the files
    assert isinstance(b.events[0], E.RunStarted)
    again.submit(C.Resume())
    b.wait_for(lambda e: isinstance(e, E.StatusChanged) and e.status == "running" and e.cause == "command")
    b.wait_for(lambda e: isinstance(e, E.StepMetrics))
    again.submit(C.Interrupt())
    fin = b.wait_for(lambda e: isinstance(e, E.RunFinished))
    assert fin.status == "interrupted"
    assert any(isinstance(e, E.CheckpointSaved) and e.reason == "interrupt" for e in b.events)
    b.thread.join(10)
    assert b.result["status"] == "interrupted" and again.finished
    seqs = [json.loads(x)["seq"] for f in ("events", "metrics") for x in (run_dir / f"{f}.jsonl").read_text().splitlines()]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # one count over both files, none lost
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (run_dir / POINTER).exists():
        time.sleep(0.05)
    assert not (run_dir / POINTER).exists() and not ptr.socket.exists()  # the endpoint is gone with the run
    assert (run_dir / "trainer.log").read_text().strip()  # the trainer's own lines


def test_bad_input_is_one_line_and_nothing_hangs(tmp_path):
    cfg = from_dict({"name": "bad", "data": {"dataset": str(tmp_path / "missing.py") + ":Data"}})
    v = Viewer(RemoteTrainer(cfg, runs_dir=tmp_path / "runs", preset="bad"))
    failed = v.wait_for(lambda e: isinstance(e, E.RunFailed))
    assert "missing.py" in failed.message and "\n" not in failed.message
    v.thread.join(10)
    assert not v.thread.is_alive()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_trainer_process_ending_is_reported(tmp_path, sig):
    trainer = RemoteTrainer(tiny(), runs_dir=tmp_path / "runs", preset="tiny")
    trainer.submit(C.Pause())
    v = Viewer(trainer)
    started = v.wait_for(lambda e: isinstance(e, E.RunStarted))
    v.wait_for(paused)
    os.kill(trainer.pid, sig)
    if sig == signal.SIGTERM:  # saves and ends interrupted, within 5 s
        fin = v.wait_for(lambda e: isinstance(e, E.RunFinished))
        assert fin.status == "interrupted"  # how soon is bench's to say (never a timing in a test)
        assert any(isinstance(e, E.CheckpointSaved) and e.reason == "interrupt" for e in v.events)
    else:  # killed: reported as failed, never a hang; the stale pointer is cleaned when probed
        failed = v.wait_for(lambda e: isinstance(e, E.RunFailed))
        assert "ended unexpectedly" in failed.message and "signal 9" in failed.message
        ptr, why = probe(Path(started.run_dir))
        assert ptr is None and "stale" in why and not (Path(started.run_dir) / POINTER).exists()
    v.thread.join(10)
    trainer._proc.wait(TIMEOUT)  # it closes its endpoint and exits after the last event (a loaded machine takes a while)


def test_a_whole_run_keeps_the_contract_across_the_socket(tmp_path):
    v = Viewer(RemoteTrainer(tiny(epochs=2, log_every=1), runs_dir=tmp_path / "runs", preset="tiny"))
    v.thread.join(TIMEOUT)
    while not v.q.empty():
        v.events.append(v.q.get())
    started, finished = v.events[0], v.events[-1]
    assert isinstance(started, E.RunStarted) and isinstance(finished, E.RunFinished), [e.kind for e in v.events[-5:]]
    assert finished.status == "completed" and v.result["status"] == "completed"
    steps = [e.step for e in v.events if isinstance(e, E.StepMetrics)]
    assert steps == list(range(1, started.total_steps + 1))  # every logged step, once, in order
    assert sum(isinstance(e, E.EpochMetrics) for e in v.events) == 2 and any(isinstance(e, E.TestMetrics) for e in v.events)


def test_hostile_bytes_on_the_socket_never_stop_the_trainer(tmp_path):
    import random
    import socket

    trainer = RemoteTrainer(tiny(), runs_dir=tmp_path / "runs", preset="tiny")
    v = Viewer(trainer)
    started = v.wait_for(lambda e: isinstance(e, E.RunStarted))
    ptr, _ = probe(Path(started.run_dir))
    rng = random.Random(0)
    junk = [b"\x00" * 50, b"{" * 5000, b'{"v": 1, "type": "command", "command": "Pause", "args": {"x": 1}}',
            b'{"v": 2, "type": "hello"}', b"\xff\xfe" * 100, b"x" * 20000, b'{"v":1,"type":"command","request":1e999}']
    junk += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(40)]
    hello = P.encode(P.hello("fuzz"), limit=P.MAX_CLIENT_LINE)
    for greeted in (False, True):  # before a hello, and after one (a welcomed viewer turned hostile)
        for payload in junk:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(ptr.socket))  # blocking: a Unix socket with a timeout gets EAGAIN when the backlog is full
            s.settimeout(5)
            try:
                if greeted:
                    s.sendall(hello)
                    assert b'"welcome"' in s.recv(65536)
                s.sendall(payload + b"\n")
            except OSError:
                pass  # closed on us: allowed
            s.close()
    step = max(e.step for e in v.events if isinstance(e, E.StepMetrics)) if any(isinstance(e, E.StepMetrics) for e in v.events) else 0
    v.wait_for(lambda e: isinstance(e, E.StepMetrics) and e.step > step + 20)  # it trains on
    assert not any(isinstance(e, E.CommandApplied | E.CommandRejected) for e in v.events)  # nothing was applied
    trainer.submit(C.Interrupt())
    assert v.wait_for(lambda e: isinstance(e, E.RunFinished)).status == "interrupted"
    v.thread.join(10)


def test_attaching_as_the_run_ends_is_not_a_failure(tmp_path):
    """The history read from the files already holds RunFinished when the endpoint closes (a viewer
    that attached during the run's last second): the run ended, it did not die (issue 23, found by
    the watch command's review)."""
    import threading

    from tui_train.core.run.endpoint import Endpoint
    from tui_train.core.run.place import RunPlace
    from tui_train.core.testing import sample_events

    place = RunPlace()
    place.make_dir(tmp_path, "ending")
    place.open("")
    ep = Endpoint(place.run_dir, place.submit, status=lambda: place.status, initial_seq=place.log.seq)
    ep.start()
    place.log.listeners.append(ep.publish)
    samples = {type(e): e for e in sample_events()}
    place.emit(samples[E.RunStarted])
    place.emit(E.RunFinished(status="completed", summary={"status": "completed", "steps": 3}, run_dir=str(place.run_dir)))
    viewer, seen, out = RemoteTrainer(attach=place.run_dir), [], []
    t = threading.Thread(target=lambda: out.append(viewer.run(threading.Event(), seen.append)))
    t.start()
    deadline = time.monotonic() + TIMEOUT
    while not any(isinstance(e, E.RunFinished) for e in seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    ep.close()  # the trainer leaves after its last event
    place.close()
    t.join(TIMEOUT)
    assert not any(isinstance(e, E.RunFailed) for e in seen), [e.kind for e in seen]
    assert viewer.finished and out == [{"status": "completed", "steps": 3}]
