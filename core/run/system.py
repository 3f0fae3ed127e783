"""System load: the trainer process's CPU and memory, the machine's memory, the training GPU.

A :class:`SystemSampler` is a daemon thread of the trainer process that takes a
:class:`core.events.SystemSample` every :data:`INTERVAL` seconds and hands it to the trainer's
report (the run log writes it to metrics.jsonl, viewers get it as an event). The training thread
never waits for it: sampling reads /proc through psutil (tens of microseconds) and NVML, both
outside the step loop (``bench`` section (s) measures the throughput with it on and off).

GPU figures come from NVML through ``nvidia-ml-py`` (``pip install tui-train[gpu]``), imported
only when the run trains on CUDA; without it, or without a driver, the GPU fields are None and a
RunNote says why, once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from tui_train.core import events as E
from tui_train.core.errors import first_line

INTERVAL = float(os.environ.get("TUI_TRAIN_SYSTEM_INTERVAL", "2.0") or 0)
"""Seconds between two samples (``TUI_TRAIN_SYSTEM_INTERVAL``; 0 turns the sampler off)."""


def nvml_index(device_index: int, visible: str | None = None) -> int:
    """NVML counts every GPU of the machine; CUDA only the visible ones, in CUDA_VISIBLE_DEVICES order."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "") if visible is None else visible
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if device_index < len(ids) and ids[device_index].isdigit():
        return int(ids[device_index])
    return device_index


class GpuProbe:
    """One GPU's utilisation, memory, temperature and power through NVML (``pynvml``, from nvidia-ml-py)."""

    def __init__(self, pynvml: Any, index: int) -> None:
        self.nvml = pynvml
        """The pynvml module."""
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        """The NVML device handle."""

    def read(self) -> dict:
        """The SystemSample GPU fields (a figure the GPU does not report is None)."""
        nv, h = self.nvml, self.handle
        out: dict = {}
        for name, get in (("gpu_percent", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)),
                          ("gpu_temp_c", lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))),
                          ("gpu_power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0)):
            try:
                out[name] = get()
            except nv.NVMLError:  # e.g. power on a GPU that does not report it: that figure only
                out[name] = None
        try:
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            out["gpu_mem_bytes"], out["gpu_mem_total_bytes"] = int(mem.used), int(mem.total)
        except nv.NVMLError:
            out["gpu_mem_bytes"] = out["gpu_mem_total_bytes"] = None
        return out

    def close(self) -> None:
        """Shut NVML down."""
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


def open_gpu(device: Any) -> tuple[GpuProbe | None, str]:
    """(probe, '') for a CUDA training device; (None, why not) when there is no GPU figure to take
    ('' for a device that is no GPU: nothing to say)."""
    if getattr(device, "type", str(device)) != "cuda":
        return None, ""
    try:
        import pynvml
    except ImportError:
        return None, "system panel: no GPU figures (pip install 'tui-train[gpu]' for nvidia-ml-py)"
    try:
        return GpuProbe(pynvml, nvml_index(device.index or 0)), ""
    except Exception as e:  # noqa: BLE001 - NVMLError (no driver, no permission): the panel goes on without GPU figures
        return None, f"system panel: no GPU figures ({first_line(e, typed=True)})"


class SystemSampler:
    """Samples every ``interval`` s in a daemon thread and hands each sample to ``report``."""

    def __init__(self, report: Callable[[E.Event], None], step: Callable[[], int], device: Any = "cpu",
                 interval: float = INTERVAL) -> None:
        import psutil

        self.report = report
        """Where samples go (the trainer's report: run log, then the viewers)."""
        self.step = step
        """The latest step (read without a lock: an int)."""
        self.interval = interval
        """Seconds between two samples."""
        self.device = device
        """The training device (a CUDA one gets GPU figures)."""
        self.samples = 0
        """Samples taken so far."""
        self._psutil = psutil
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call starts the measurement
        self._gpu: GpuProbe | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> E.SystemSample:
        """One sample now (CPU % since the previous one)."""
        proc, vm = self._process, self._psutil.virtual_memory()
        with proc.oneshot():
            cpu, rss = proc.cpu_percent(None), proc.memory_info().rss
        gpu = self._gpu.read() if self._gpu is not None else {}
        self.samples += 1
        return E.SystemSample(step=int(self.step()), cpu_percent=float(cpu), rss_bytes=int(rss), mem_percent=float(vm.percent),
                              mem_total_bytes=int(vm.total), **gpu)

    def start(self) -> None:
        """Open the GPU (a RunNote when its figures are missing) and start the thread."""
        self._gpu, why = open_gpu(self.device)
        if why:
            self.report(E.RunNote(message=why, step=int(self.step())))
        self._thread = threading.Thread(target=self._loop, name="tui-train-system", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it ends within one sample) and close NVML."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._gpu is not None:
            self._gpu.close()
            self._gpu = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.report(self.sample())
            except Exception as e:  # noqa: BLE001 - a failing probe ends the sampling, said once; training goes on
                self.report(E.RunError(message=f"system sampling stopped: {first_line(e, typed=True)}", step=int(self.step())))
                return
