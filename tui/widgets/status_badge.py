"""The run's status badge: text from the engine's last reported status."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from tui_train.tui.format import STATUS_LABELS, literal, status_label


class StatusBadge(Static):
    """RUNNING, PAUSED, STOPPING, FINISHED, EARLY STOPPED, FAILED... (styled per status in app.tcss)."""

    status: reactive[str] = reactive("ready")
    """The engine status shown (a value of core.events.STATUSES, or 'ready' before a run)."""

    def watch_status(self, status: str) -> None:
        for known in STATUS_LABELS:
            self.set_class(known == status, f"-{known.replace('_', '-')}")
        self.update(literal(f" {status_label(status)} "))  # a status from the socket is text from outside

    def on_mount(self) -> None:
        self.watch_status(self.status)
