"""Pick one of the runs training now (``tui-train attach`` with several, or `a` in the launcher)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_train.tui.format import literal


def age(seconds: float) -> str:
    """A short age: '42s', '3m 12s', '5h 07m', '2d 03h'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def run_dir_of(run: object) -> Path:
    """The run directory of a live-run entry (a :class:`core.run.endpoint.Pointer`, or a path)."""
    return Path(getattr(run, "run_dir", run))


def describe(run: object, now: float | None = None) -> str:
    """One line for a live run: its directory name, the trainer's pid and how long it has trained."""
    parts = [run_dir_of(run).name]
    pid = getattr(run, "pid", None)
    if pid:
        parts.append(f"pid {pid}")
    started = getattr(run, "started", 0.0)
    if started:
        parts.append(f"started {age((now or time.time()) - started)} ago")
    return " · ".join(parts)


class RunPicker(ModalScreen[Path | None]):
    """Lists live runs (newest first); Enter attaches to the highlighted one, Esc dismisses with None."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, runs: Sequence[object]) -> None:
        super().__init__()
        self.runs = list(runs)
        """Live runs: :class:`core.run.endpoint.Pointer` entries (or run directories)."""

    def compose(self) -> ComposeResult:
        now = time.time()
        with Vertical(classes="dialog"):
            yield Label(f"{len(self.runs)} run{'s' if len(self.runs) != 1 else ''} training: attach to which?",
                        classes="dialog-title")
            yield OptionList(*(Option(literal(describe(r, now)), id=str(i)) for i, r in enumerate(self.runs)), id="run-list")
            yield Static("Enter attaches (the run keeps training when you leave: d or q). Esc cancels.", classes="dialog-help")

    def on_mount(self) -> None:
        options = self.query_one("#run-list", OptionList)
        if self.runs:
            options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected, "#run-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(run_dir_of(self.runs[int(event.option.id or 0)]))

    def action_cancel(self) -> None:
        self.dismiss(None)
