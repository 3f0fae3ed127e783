"""The system panel: the trainer process's CPU and memory, the machine's memory and, on a GPU,
its utilisation, memory, temperature and power, each with a sparkline of the recent samples
(SystemSample events, every 2 s from the trainer process's sampler thread)."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from tui_train.core import events as E
from tui_train.tui.series import is_finite

HISTORY = 60
"""Samples each sparkline shows (two minutes at one sample every 2 s)."""

ROWS = ("cpu", "rss", "mem", "gpu", "vram")
"""The panel's rows, in order; gpu and vram only once a sample has GPU figures."""


def size(n: float | None) -> str:
    """Bytes as '812M', '1.2G'."""
    if not is_finite(n):
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{n:.0f}B"


class SystemPanel(Vertical):
    """One row per figure: its label and latest value, then a sparkline of the last samples."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: dict[str, deque[float]] = {k: deque(maxlen=HISTORY) for k in ROWS}
        """Row -> its recent values (finite only: a NaN would crash the Sparkline)."""
        self.latest: E.SystemSample | None = None
        """The last sample shown."""

    def compose(self) -> ComposeResult:
        yield Static(Text("no sample yet: the trainer samples every 2 s while it trains (a replayed run shows none)", style="dim"),
                     id="sys-waiting")
        for key in ROWS:
            with Horizontal(classes="sys-row", id=f"sys-row-{key}"):
                yield Static(key, classes="sys-label", id=f"sys-label-{key}")
                yield Sparkline([], id=f"sys-{key}", summary_function=max)

    def on_mount(self) -> None:
        for key in ROWS:
            self.query_one(f"#sys-row-{key}").display = False

    def add(self, ev: E.SystemSample) -> None:
        """Show one sample."""
        self.latest = ev
        gpu_temp = f" {ev.gpu_temp_c:.0f}°" if is_finite(ev.gpu_temp_c) else ""
        gpu_power = f" {ev.gpu_power_w:.0f}W" if is_finite(ev.gpu_power_w) else ""
        rows = {
            "cpu": (ev.cpu_percent, f"cpu {ev.cpu_percent:4.0f}%" if is_finite(ev.cpu_percent) else "cpu -"),
            "rss": (ev.rss_bytes, f"rss {size(ev.rss_bytes):>5}"),
            "mem": (ev.mem_percent, f"mem {ev.mem_percent:3.0f}%/{size(ev.mem_total_bytes)}" if is_finite(ev.mem_percent) else "mem -"),
            "gpu": (ev.gpu_percent, f"gpu {ev.gpu_percent:3.0f}%{gpu_temp}{gpu_power}" if is_finite(ev.gpu_percent) else ""),
            "vram": (ev.gpu_mem_bytes, f"vram {size(ev.gpu_mem_bytes)}/{size(ev.gpu_mem_total_bytes)}"
                     if is_finite(ev.gpu_mem_bytes) else ""),
        }
        self.query_one("#sys-waiting").display = False
        for key, (value, label) in rows.items():
            if not label:
                continue
            row = self.query_one(f"#sys-row-{key}")
            row.display = True
            self.query_one(f"#sys-label-{key}", Static).update(label)
            if is_finite(value):
                self.history[key].append(float(value))
                self.query_one(f"#sys-{key}", Sparkline).data = list(self.history[key])
