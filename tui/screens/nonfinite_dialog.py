"""Shown when the engine pauses for a non-finite loss: resume, roll back (LR halved) or stop."""

from __future__ import annotations

from tui_train.tui.screens.choice_dialog import Choice, ChoiceDialog


class NonFiniteDialog(ChoiceDialog):
    """Dismisses with 'rollback', 'resume', 'stop', or None (Esc: stay paused and decide later)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "Non-finite loss: training is paused",
            [reason, "Roll back: restore the last good weights (at most a second old when the loss was finite) and halve the "
                     "learning rate. Resume: go on as is. Stop: roll back, then early stop (evaluate, save)."],
            [Choice("b", "Roll back, LR/2", "rollback", "primary"), Choice("r", "Resume", "resume"),
             Choice("e", "Stop", "stop", "error")],
            focus="b", escape=None)
        self.reason = reason
        """The engine's reason for pausing (names the step and the value)."""
