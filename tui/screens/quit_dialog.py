"""Asked by `q` (or Ctrl+C) while a run is active: stop it (saving a checkpoint), detach, or stay."""

from __future__ import annotations

from tui_train.tui.screens.choice_dialog import Choice, ChoiceDialog

STOP = "stop"
"""Dismissed with this: end the run (finish the step, save an interrupt checkpoint), then quit."""

DETACH = "detach"
"""Dismissed with this: quit and leave the run training (only offered when the trainer is detachable)."""


class QuitDialog(ChoiceDialog):
    """Dismisses with :data:`STOP`, :data:`DETACH` (only when ``detachable``) or None (Cancel, Esc: stay)."""

    def __init__(self, detachable: bool = False) -> None:
        self.detachable = detachable
        """The run can be left going: Detach is offered, and is what q again picks."""
        if detachable:
            texts = ["Stop: training ends at the end of the current step, saves an interrupt checkpoint and the run "
                     "ends as INTERRUPTED (--resume continues it).",
                     "Detach: quit and leave the run training; `tui-train attach` comes back to it."]
            choices = [Choice("s", "Stop", STOP, "error"), Choice("d", "Detach", DETACH, "primary"), Choice("c", "Cancel", None)]
        else:
            texts = ["Stop: training ends at the end of the current step and saves an interrupt checkpoint "
                     "(--resume continues it)."]
            choices = [Choice("s", "Stop", STOP, "error"), Choice("c", "Cancel", None)]
        super().__init__("Quit while the run is active?", texts, choices, focus="d" if detachable else "s", escape=None,
                         also={"q": DETACH if detachable else STOP})

    @property
    def default(self) -> str:
        """What q pressed again in the dialog picks: Detach when offered (nothing is lost), else Stop."""
        return DETACH if self.detachable else STOP
