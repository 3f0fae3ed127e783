"""One line at the top of the dashboard: preset, device, run directory and the status badge."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui.widgets.status_badge import StatusBadge


class RunHeader(Horizontal):
    """Preset · device · run directory, with the :class:`StatusBadge` at the right."""

    def __init__(self, preset: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self._preset = preset
        self._device = "…"
        self._run_dir = "…"

    def compose(self) -> ComposeResult:
        yield Static(self._text(), id="run-info")
        yield StatusBadge(id="badge")

    def _text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("tui-train ", style="bold")
        text.append(self._preset, style="bold")
        text.append(f" · {self._device} · ")
        text.append(self._run_dir, style="italic")
        return text

    def set_run(self, preset: str, device: str, run_dir: str) -> None:
        """Show what RunStarted reported."""
        self._preset, self._device, self._run_dir = preset, device, run_dir
        self.query_one("#run-info", Static).update(self._text())

    def set_status(self, status: str) -> None:
        """Show an engine status on the badge."""
        self.query_one(StatusBadge).status = status
