"""Asked by `q` while a run is active: save a checkpoint and quit, quit, or stay."""

from __future__ import annotations

from tui.screens.choice_dialog import Choice, ChoiceDialog


class QuitDialog(ChoiceDialog):
    """Dismisses with 'save' (checkpoint, then quit), 'quit', or None (stay)."""

    def __init__(self) -> None:
        super().__init__(
            "Quit while the run is active?",
            "Training stops at the end of the current step (the engine saves an interrupt checkpoint). "
            "Save first to get a manual checkpoint as well.",
            [Choice("s", "Save & quit", "save", "primary"), Choice("q", "Quit", "quit", "error"), Choice("c", "Cancel", None)],
            focus="s", escape=None)
