"""Shown when the engine pauses for a non-finite loss: resume, roll back (LR halved) or stop
(:class:`NonFiniteDialog`), asked once per pause the run is still in (:class:`NonFinitePrompt`)."""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.tui.screens.choice_dialog import Choice, ChoiceDialog

DIALOG_GONE = "gone"
"""What the dialog is dismissed with when the run left that pause by itself."""


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


class NonFinitePrompt:
    """One dashboard's question about a non-finite pause: asked for by the StatusChanged that paused
    the run (:meth:`follow`), shown after the batch (:meth:`show_pending`: an attached viewer replays
    the history in one batch, and only a pause the run is still in needs an answer), closed when the
    run leaves that pause; the answer is submitted as Rollback, Resume or Stop."""

    def __init__(self, screen: Screen, submit: Callable[[C.Command], object], asks: bool = True) -> None:
        self.screen = screen
        """The dashboard it asks on."""
        self.submit = submit
        """Where the answer's command goes (the dashboard's)."""
        self.asks = asks
        """False: a non-finite pause is shown but never asked about (a replayed run: nothing to answer)."""
        self.reason: str | None = None
        """The engine's reason for the pause the run is in, until the dialog shows it."""
        self.dialog: NonFiniteDialog | None = None
        """The dialog, while open."""

    def follow(self, ev: E.StatusChanged) -> bool:
        """A status change: ask about a non-finite pause (after the batch), or close the question
        when the run left it. True when ``ev`` is a non-finite pause."""
        nonfinite = ev.status == "paused" and ev.cause == "nonfinite"
        self.reason = ev.reason if nonfinite and self.asks else None
        if not nonfinite:
            self.close()
        return nonfinite

    def show_pending(self, status: str) -> None:
        """After a batch: show the dialog asked for, if the run is still ``status`` 'paused' and none is open."""
        reason, self.reason = self.reason, None
        if reason is None or status != "paused" or self.dialog is not None:
            return
        self.dialog = NonFiniteDialog(reason)
        self.screen.app.push_screen(self.dialog, self._answered)

    def close(self) -> None:
        """The run left the non-finite pause (another viewer answered, or the history goes on): the
        dialog no longer applies. Closed when it is on top; one under another dialog stays (its
        answer would be rejected by the engine, harmlessly)."""
        dialog = self.dialog
        if dialog is not None and self.screen.app.screen is dialog:
            dialog.dismiss(DIALOG_GONE)

    def _answered(self, choice: str | None) -> None:
        self.dialog = None
        if choice == DIALOG_GONE:
            return
        if choice == "rollback":
            self.submit(C.Rollback(0.5))
        elif choice == "resume":
            self.submit(C.Resume())
        elif choice == "stop":  # a Stop in a non-finite pause restores the last good weights first (core.run.control)
            self.submit(C.Stop("non-finite loss"))
        else:
            self.screen.app.notify("Still paused: b rolls back (LR halved), space resumes, e stops.",
                                   title="non-finite loss", severity="warning", timeout=8)
