"""The `f` dialog of a paused run: fork it, i.e. start a new run from this moment with changes.

The changes are ``--set`` texts (``optim.lr=3e-4 train.epochs=30``), checked against the run's
config before anything happens; an invalid one is refused in place with its one-line reason.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.tui.format import literal


def parse_changes(text: str, run_dir: Path | None) -> list[str]:
    """'optim.lr=3e-4 train.epochs=30' -> ['optim.lr=3e-4', 'train.epochs=30'], checked against the
    run's config.toml (ValueError with a one-line reason: the engine would refuse them)."""
    from tui_train.core.config import ConfigError, apply_overrides, from_dict

    try:
        items = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"cannot read the changes: {e}") from None
    for item in items:
        if "=" not in item:
            raise ValueError(f"{item!r}: write section.key=value, e.g. optim.lr=3e-4")
    raw: dict = {}
    if run_dir is not None:
        try:
            raw = tomllib.loads((Path(run_dir) / "config.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
    try:
        from_dict(apply_overrides(raw, items), "fork")
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return items


class ForkDialog(ModalScreen[list[str] | None]):
    """Asks for the fork's changes; dismisses with the ``--set`` texts (maybe none), or None on Escape."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, run_dir: Path | None, step: int) -> None:
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir else None
        """The run being forked (its config.toml checks the changes)."""
        self.step = step
        """The step it is paused at."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Fork this run at step {self.step}", classes="dialog-title")
            yield Static("a new run from this checkpoint with these changes (empty: none); this run stays paused, "
                         "attachable · Enter forks, Esc cancels", classes="dialog-help")
            yield Input(placeholder="e.g. optim.lr=3e-4 train.epochs=30", id="fork-input")
            yield Static("", id="fork-error", classes="dialog-error")

    @on(Input.Submitted, "#fork-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            changes = parse_changes(event.value, self.run_dir)
        except ValueError as err:
            self.query_one("#fork-error", Static).update(literal(err))  # "[optim]" stays "[optim]"
            return
        self.dismiss(changes)

    def action_cancel(self) -> None:
        self.dismiss(None)
