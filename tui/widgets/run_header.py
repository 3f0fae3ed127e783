"""One line at the top of the dashboard: preset, device, run directory, pending breakpoints and the status badge."""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui_train.core import breakpoints
from tui_train.tui.format import printable
from tui_train.tui.widgets.status_badge import StatusBadge


class RunHeader(Horizontal):
    """Preset · device · run directory · ⏸ pending breakpoints, with the :class:`StatusBadge` at the right."""

    def __init__(self, preset: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self._preset = printable(preset)
        self._device = "…"
        self._run_dir = "…"
        self._viewers = 1
        self._breakpoints = ""

    def compose(self) -> ComposeResult:
        yield Static(self._text(), id="run-info")
        yield StatusBadge(id="badge")

    def _text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("tui-train ", style="bold")
        text.append(self._preset, style="bold")
        text.append(f" · {self._device} · ")
        viewers = f" · {self._viewers} viewers" if self._viewers > 1 else ""
        marks = f" · ⏸ {self._breakpoints}" if self._breakpoints else ""
        # the badge takes ~14 columns; the breakpoints keep at least 30 of the path's room
        room = self.size.width - 14 - len(text.plain) - len(viewers) - min(len(marks), max(0, self.size.width - 60))
        text.append(fit_path(display_path(self._run_dir), room), style="italic")
        text.append(viewers)
        text.append(marks, style="bold yellow")
        return text

    def on_resize(self) -> None:
        self.query_one("#run-info", Static).update(self._text())

    def set_run(self, preset: str, device: str, run_dir: str) -> None:
        """Show what RunStarted reported."""
        self._preset, self._device, self._run_dir = printable(preset), printable(device), printable(run_dir)
        self.query_one("#run-info", Static).update(self._text())

    def set_viewers(self, viewers: int) -> None:
        """Show how many viewers are attached (when more than this one)."""
        if viewers != self._viewers:
            self._viewers = viewers
            self.query_one("#run-info", Static).update(self._text())

    def set_breakpoints(self, pending: tuple | list) -> None:
        """Show the pending breakpoints (RunStarted, BreakpointsChanged): '#1 epoch=3 · #2 val_accuracy >= 0.98'."""
        shown = printable(breakpoints.text(pending)) if pending else ""
        if shown != self._breakpoints:
            self._breakpoints = shown
            self.query_one("#run-info", Static).update(self._text())

    def set_status(self, status: str) -> None:
        """Show an engine status on the badge."""
        self.query_one(StatusBadge).status = status


def display_path(path: str) -> str:
    """The run directory relative to the working directory when it is inside it (shorter)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") and len(rel) < len(path) else path


def fit_path(path: str, room: int) -> str:
    """Cut a path from the left ('…/runs/2026…-preset'): its end names the run."""
    if room <= 1 or len(path) <= room:
        return path if room > 1 else ""
    return "…" + path[-(room - 1):]
