"""The system sampler: CPU and memory through psutil, GPU figures through a (fake) pynvml, its
thread, and where its samples go (metrics.jsonl, not epochs.jsonl; a bounded number to a viewer)."""

from __future__ import annotations

import json
import sys
import threading
import types

import torch

from tui_train.core import events as E
from tui_train.core.run import system
from tui_train.core.run.runlog import OTHER_METRICS_NAME, RunLog
from tui_train.core.rundir.history import MAX_SYSTEM_SAMPLES, read_history


class _NVMLError(Exception):
    pass


def fake_pynvml(power_fails: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's pynvml: one GPU with known figures."""
    nv = types.ModuleType("pynvml")
    nv.NVMLError = _NVMLError
    nv.NVML_TEMPERATURE_GPU = 0
    nv.calls = []
    nv.nvmlInit = lambda: nv.calls.append("init")
    nv.nvmlShutdown = lambda: nv.calls.append("shutdown")
    nv.nvmlDeviceGetHandleByIndex = lambda i: nv.calls.append(("handle", i)) or f"gpu{i}"
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=6 * 2**30, total=24 * 2**30, free=18 * 2**30)
    nv.nvmlDeviceGetTemperature = lambda h, kind: 63

    def power(h):
        if power_fails:
            raise _NVMLError("Not Supported")
        return 212_500  # mW

    nv.nvmlDeviceGetPowerUsage = power
    return nv


def _sampler(device="cpu", **kw) -> tuple[system.SystemSampler, list]:
    got: list = []
    return system.SystemSampler(got.append, lambda: 42, device, **kw), got


def test_a_sample_without_a_gpu_has_process_and_machine_figures_and_no_gpu_ones():
    sampler, got = _sampler()
    sampler.start()
    try:
        s = sampler.sample()
    finally:
        sampler.stop()
    assert got == []  # a CPU run has nothing to say about GPUs
    assert s.step == 42 and s.cpu_percent >= 0 and s.rss_bytes > 10_000_000
    assert 0 < s.mem_percent < 100 and s.mem_total_bytes > s.rss_bytes
    assert (s.gpu_percent, s.gpu_mem_bytes, s.gpu_temp_c, s.gpu_power_w) == (None, None, None, None)


def test_a_cuda_run_reads_its_gpu_through_pynvml(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    sampler, got = _sampler(torch.device("cuda", 1))
    sampler.start()
    s = sampler.sample()
    sampler.stop()
    assert ("handle", 5) in nv.calls  # cuda:1 is the machine's GPU 5 here
    assert (s.gpu_percent, s.gpu_temp_c, s.gpu_power_w) == (87.0, 63.0, 212.5)
    assert (s.gpu_mem_bytes, s.gpu_mem_total_bytes) == (6 * 2**30, 24 * 2**30)
    assert nv.calls[-1] == "shutdown" and got == []


def test_a_figure_the_gpu_does_not_report_is_none_and_the_rest_stays(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(power_fails=True))
    sampler, _ = _sampler(torch.device("cuda", 0))
    sampler.start()
    s = sampler.sample()
    sampler.stop()
    assert s.gpu_power_w is None and s.gpu_percent == 87.0


def test_without_nvidia_ml_py_a_cuda_run_says_so_once_and_samples_the_rest(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    sampler, got = _sampler(torch.device("cuda", 0))
    sampler.start()
    s = sampler.sample()
    sampler.stop()
    assert [type(e) for e in got] == [E.RunNote] and "tui-train[gpu]" in got[0].message
    assert s.gpu_percent is None and s.rss_bytes > 0


def test_the_thread_reports_every_interval_and_stops():
    got: list = []
    two = threading.Event()
    sampler = system.SystemSampler(lambda e: (got.append(e), len(got) >= 2 and two.set()), lambda: 7, "cpu", interval=0.01)
    sampler.start()
    assert two.wait(5.0)
    sampler.stop()
    n = len(got)
    assert all(isinstance(e, E.SystemSample) and e.step == 7 for e in got)
    assert not sampler._thread.is_alive() and len(got) == n


def test_samples_go_to_metrics_jsonl_only_and_a_viewer_gets_the_newest(tmp_path):
    log = RunLog(tmp_path)
    log.open("")
    sample = E.SystemSample(step=1, cpu_percent=50.0, rss_bytes=1, mem_percent=2.0, mem_total_bytes=3)
    for i in range(MAX_SYSTEM_SAMPLES + 5):
        log.write(E.SystemSample(**{**sample.__dict__, "step": i}))
    log.write(E.EpochMetrics(epoch=0, step=9, train={"loss": 1.0}, val={}, lr=0.1, seconds=1.0))
    log.close()
    kinds = [json.loads(line)["event"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kinds.count("SystemSample") == MAX_SYSTEM_SAMPLES + 5
    assert "SystemSample" not in (tmp_path / OTHER_METRICS_NAME).read_text()
    (tmp_path / "steps.f64").unlink()  # a run read from metrics.jsonl alone gets the newest samples only
    history = read_history(tmp_path)
    steps = [e.step for e in history if isinstance(e, E.SystemSample)]
    assert steps == list(range(5, MAX_SYSTEM_SAMPLES + 5))


def test_a_run_records_its_samples_and_the_readers_of_metrics_jsonl_take_them(tmp_path):
    from tui_train.core import commands as C
    from tui_train.core.config import from_dict
    from tui_train.core.rundir.metrics_export import export_csv
    from tui_train.core.train.engine import Trainer

    cfg = from_dict({"name": "t", "data": {"dataset": "digits"}, "train": {"max_steps": 10, "log_every": 5}})
    trainer = Trainer(cfg, runs_dir=tmp_path)
    trainer.system_interval = 0.02
    events: list = []

    def sink(ev):  # paused at the first step boundary until the sampler thread has reported
        events.append(ev)
        if isinstance(ev, E.SystemSample) and not any(isinstance(e, E.SystemSample) for e in events[:-1]):
            trainer.submit(C.Resume())

    trainer.submit(C.Pause())
    summary = trainer.run(sink=sink)
    assert summary["status"] == "completed"
    run_dir = trainer.run_dir
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r["event"] == "SystemSample" for r in records)
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # the sampler's thread keeps the order
    last_sample = max(i for i, e in enumerate(events) if isinstance(e, E.SystemSample))
    assert last_sample < next(i for i, e in enumerate(events) if isinstance(e, E.RunFinished))  # stopped before the end
    assert export_csv(run_dir, tmp_path / "m.csv") > 0  # the CSV export skips them
    assert "cpu" not in (tmp_path / "m.csv").read_text().splitlines()[0]
