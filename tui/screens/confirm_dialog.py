"""A yes/no question (early stop): y or Enter on the confirming button confirms, n or Esc declines."""

from __future__ import annotations

from tui_train.tui.screens.choice_dialog import Choice, ChoiceDialog

YES = "yes"
"""What the dialog dismisses with when confirmed (None otherwise)."""


class ConfirmDialog(ChoiceDialog):
    """Dismisses with :data:`YES` (confirmed) or None; Cancel has the focus."""

    def __init__(self, title: str, question: str, yes: str = "Yes") -> None:
        super().__init__(title, question, [Choice("y", yes, YES, "error"), Choice("n", "Cancel", None)],
                         focus="n", escape=None)
        self.title_text = title
        """Bold first line."""
        self.question = question
        """The explanation."""
        self.yes = yes
        """Label of the confirming button."""
