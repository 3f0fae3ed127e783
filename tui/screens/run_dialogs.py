"""The dialogs and screens the dashboard's keys open over a run: :class:`RunDialogs`.

Each answer is submitted as the command it stands for (l: SetLearningRate, h: SetHyperparameter,
e: Stop, L: FindLearningRate then SetLearningRate, E: SetRunLength, p: AddBreakpoint or ClearBreakpoints);
the screens that show something the run sends later (the LR range test's curve, the latest
confusion matrix) are fed by the dashboard while open.
The dashboard decides whether a key applies now (its ``check_action``); nothing here reads its state:
it hands over what the dialogs open on (the pending breakpoints and the length policy, as events bring them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.screen import Screen

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.tui.screens.breakpoints_dialog import BreakpointsDialog
from tui_train.tui.screens.confirm_dialog import YES, ConfirmDialog
from tui_train.tui.screens.confusion_screen import ConfusionScreen
from tui_train.tui.screens.hyperparameter_dialog import HyperparameterDialog
from tui_train.tui.screens.learning_rate_dialog import LearningRateDialog
from tui_train.tui.screens.length_dialog import LengthDialog
from tui_train.tui.screens.lr_find_screen import LrFindScreen


class RunDialogs:
    """One dashboard's key dialogs: what each opens, which command its answer submits, what p and E
    open on (:attr:`breakpoints`, :attr:`length_policy`), and the screens still waiting for the run
    (:attr:`lr_find`, :attr:`confusion`)."""

    def __init__(self, screen: Screen, submit: Callable[[C.Command], object]) -> None:
        self.screen = screen
        """The dashboard they open over."""
        self.submit = submit
        """Where the answers' commands go (the dashboard's)."""
        self.lr_find: LrFindScreen | None = None
        """The LR range test's screen (L), while open: it waits for the run's curve."""
        self.confusion: ConfusionScreen | None = None
        """The confusion screen (c), while open: it follows each new validation."""
        self.breakpoints: tuple = ()
        """The run's pending breakpoints, {id, spec} each, as the dashboard last heard (RunStarted,
        BreakpointsChanged): what p shows."""
        self.length_policy = ""
        """What a length change (E) does to the LR schedule by default, from RunStarted ('': the loop's own length)."""
        self.run_dir = ""
        """The run directory, from RunStarted: where N's tags and note are kept ('' before it)."""

    def set_learning_rate(self, base_lr: float | None) -> None:
        """l: ask for a new base learning rate (``base_lr`` shown first); submit SetLearningRate."""
        def done(value: float | None) -> None:
            if value is not None:
                self.submit(C.SetLearningRate(value))
        self.screen.app.push_screen(LearningRateDialog(base_lr), done)

    def find_learning_rate(self, where: str) -> None:
        """L: the LR range test of the paused run, in the trainer (on copies of ``where``'s model):
        submit FindLearningRate; Enter on its screen submits the suggestion as a SetLearningRate."""
        screen = LrFindScreen(where, "set the suggestion as the run's base learning rate")

        def done(lr: float | None) -> None:
            self.lr_find = None
            if lr is not None:
                self.submit(C.SetLearningRate(lr))

        self.lr_find = screen
        self.screen.app.push_screen(screen, done)
        self.submit(C.FindLearningRate())

    def lr_found(self, ev: E.LearningRateFound) -> None:
        """The run's LR range test ended: its curve, on the screen waiting for it."""
        from tui_train.core.lr_find import Curve

        if self.lr_find is not None:
            self.lr_find.show_curve(Curve.from_json(E.to_json(ev)))

    def rejected(self, ev: E.CommandRejected) -> None:
        """A command was refused: a FindLearningRate's reason shows on the screen waiting for the curve."""
        if ev.command == "FindLearningRate" and self.lr_find is not None:
            self.lr_find.show_error(f"refused: {ev.reason}")

    def edit_hyperparameter(self, values: dict) -> None:
        """h: pick a live hyperparameter (``values``: the current ones) and its value; submit SetHyperparameter."""
        def done(result: tuple[str, float] | None) -> None:
            if result is not None:
                self.submit(C.SetHyperparameter(result[0], result[1]))
        self.screen.app.push_screen(HyperparameterDialog(values), done)

    def set_length(self, current: dict) -> None:
        """E: the run's new length (``current``: its epochs and max_steps now) under a policy (the
        run's default, :attr:`length_policy`, first); submit SetRunLength."""
        def done(result: tuple[str, int, str] | None) -> None:
            if result is not None:
                self.submit(C.SetRunLength(*result))
        self.screen.app.push_screen(LengthDialog(current, self.length_policy), done)

    def edit_breakpoints(self) -> None:
        """p: the :attr:`breakpoints` pending, and a line to add one or clear them; submit what was typed."""
        def done(command: C.Command | None) -> None:
            if command is not None:
                self.submit(command)
        self.screen.app.push_screen(BreakpointsDialog(self.breakpoints), done)

    def edit_notes(self) -> None:
        """N: edit the run's tags and note (:class:`tui.screens.notes_dialog.NotesDialog`), written
        to its notes.json by :func:`core.rundir.notes.write_notes` (no trainer involved: a replay's
        and a live run's alike); a failure to write is said, never raised."""
        from tui_train.core.rundir.notes import NotesError, read_notes, write_notes
        from tui_train.tui.screens.notes_dialog import NotesDialog

        if not self.run_dir:
            self.screen.notify("no run yet: tags and notes belong to a run directory", severity="warning")
            return
        run_dir = Path(self.run_dir)

        def done(edit: tuple[tuple[str, ...], str] | None) -> None:
            if edit is None:
                return
            try:
                write_notes(run_dir, tags=edit[0], note=edit[1])
            except (NotesError, OSError) as e:
                self.screen.notify(f"notes not saved: {e}", severity="error", markup=False)
                return
            self.screen.notify(f"tags and note saved in {run_dir.name}", markup=False)

        self.screen.app.push_screen(NotesDialog(run_dir.name, read_notes(run_dir)), done)

    def confirm_early_stop(self) -> None:
        """e: ask first; submit Stop."""
        def done(choice: str | None) -> None:
            if choice == YES:
                self.submit(C.Stop())
        self.screen.app.push_screen(ConfirmDialog(
            "Stop early?", "Finishes the current step, evaluates, saves a checkpoint and ends the run as "
            "EARLY STOPPED.", yes="Stop early"), done)

    def show_confusion(self, latest: E.ConfusionMatrix | None, task: str) -> None:
        """c: the ``latest`` confusion matrix and mistakes of a ``task`` run; it follows the run while open."""
        def closed(_: None) -> None:
            self.confusion = None
        self.confusion = ConfusionScreen(latest, task)
        self.screen.app.push_screen(self.confusion, closed)

    def confusion_changed(self, ev: E.ConfusionMatrix) -> None:
        """A new validation's matrix: shown on the confusion screen, when open."""
        if self.confusion is not None and self.confusion.is_attached:
            self.confusion.show(ev)
