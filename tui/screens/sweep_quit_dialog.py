"""Asked by `q` (or Ctrl+C) while this app drives a sweep: stop the sweep, leave it, or stay."""

from __future__ import annotations

from pathlib import Path

from tui_train.tui.screens.choice_dialog import Choice, ChoiceDialog

STOP = "stop"
"""Dismissed with this: stop the sweep (its running trials save and end interrupted), then quit."""

LEAVE = "leave"
"""Dismissed with this: quit now and leave the sweep: its trials train on, ``--resume`` continues it."""


class SweepQuitDialog(ChoiceDialog):
    """Dismisses with :data:`STOP`, :data:`LEAVE` or None (Cancel, Esc: stay); q again picks Leave."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        """The sweep folder (named in the texts: what --resume takes)."""
        texts = [f"Stop: the running trials save a checkpoint and end interrupted; the sweep is recorded stopped "
                 f"(tui-train sweep --resume {self.sweep_dir} continues it).",
                 f"Leave: quit now; the running trials keep training as processes of their own and no new one "
                 f"starts until tui-train sweep --resume {self.sweep_dir} (it adopts them)."]
        super().__init__("Quit while the sweep runs?", texts,
                         [Choice("s", "Stop sweep", STOP, "error"), Choice("l", "Leave", LEAVE, "primary"),
                          Choice("c", "Cancel", None)], focus="l", escape=None, also={"q": LEAVE})

    @property
    def default(self) -> str:
        """What q (or Ctrl+C) pressed again in the dialog picks: Leave (nothing is lost)."""
        return LEAVE
