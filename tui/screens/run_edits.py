"""What the Runs screen's N and x change in a run's folder: :class:`RunEdits`.

N edits a run's tags and note (:class:`tui.screens.notes_dialog.NotesDialog`, saved to its
notes.json by :func:`core.rundir.notes.write_notes`, live or finished alike); x deletes a finished
run's folder after asking (:func:`core.rundir.runs.delete_run`, which refuses a live one). Each
answer is said in one line, and the screen reads its rows again afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tui_train.core.rundir.notes import NotesError, read_notes, write_notes
from tui_train.core.rundir.runs import RunRow, delete_run
from tui_train.tui import format as fmt
from tui_train.tui.screens.confirm_dialog import YES, ConfirmDialog

if TYPE_CHECKING:
    from tui_train.tui.screens.runs_screen import RunsScreen


class RunEdits:
    """The Runs screen's edits of a run's folder: its notes (N) and deleting it (x)."""

    def __init__(self, screen: RunsScreen) -> None:
        self.screen = screen
        """The Runs screen they open over: its notices, and its rows read again after a change."""

    def edit_notes(self, row: RunRow) -> None:
        """N: edit ``row``'s tags and note (a dialog); saved to its notes.json (live or finished alike)."""
        from tui_train.tui.screens.notes_dialog import NotesDialog

        screen, run_dir = self.screen, Path(row.run_dir)
        notes = read_notes(run_dir)

        def answered(edit: tuple[tuple[str, ...], str] | None) -> None:
            if edit is None:
                return
            try:
                write_notes(run_dir, tags=edit[0], note=edit[1])
            except (NotesError, OSError) as exc:
                screen.notify(fmt.printable(f"{row.name}: notes not saved: {str(exc).splitlines()[0]}"), severity="error",
                              markup=False)
                return
            screen.reload()

        screen.app.push_screen(NotesDialog(row.name, notes), answered)

    def delete(self, row: RunRow) -> None:
        """x / delete: delete ``row``'s folder after asking; a live run is refused."""
        screen = self.screen
        if row.live:
            screen.notify(fmt.printable(f"{row.name} is live: stop it first (tui-train ctl {row.run_dir} stop)"), severity="warning",
                          markup=False)
            return

        def answered(choice: str | None) -> None:
            if choice != YES:
                return
            try:
                delete_run(Path(row.run_dir))
            except (ValueError, OSError) as exc:
                screen.notify(fmt.printable(str(exc).splitlines()[0]), severity="error", markup=False)
            else:
                screen.notify(fmt.printable(f"deleted {row.name}"), markup=False)
            screen.reload()

        screen.app.push_screen(ConfirmDialog(
            "Delete this run?", f"{row.name}: its folder and everything in it (checkpoints too) is removed. "
            "This cannot be undone.", yes="Delete"), answered)
