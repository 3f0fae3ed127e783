"""The note dialog (N on the Runs screen): a run's tags and free-text note, edited in place.

It only edits: it dismisses with (tags, note), and its caller writes them with
:func:`core.rundir.notes.write_notes` (a finished run and a live one alike: no trainer is involved).
A tag that cannot be stored is refused in the dialog, with the reason.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_train.core.rundir.notes import NOTE_LIMIT, NOTES_FILE, Notes, NotesError, parse_tags
from tui_train.tui import format as fmt


class NotesDialog(ModalScreen[tuple[tuple[str, ...], str] | None]):
    """Asks for a run's tags and note; dismisses with (tags, note), or None on Escape."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    NotesDialog { align: center middle; }
    NotesDialog Input { margin-bottom: 1; }
    """

    def __init__(self, run_name: str, notes: Notes) -> None:
        super().__init__()
        self.run_name = run_name
        """The run's folder name (its title; shown literally)."""
        self.notes = notes
        """What its notes.json holds now (:func:`core.rundir.notes.read_notes`)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(fmt.literal(f"Tags and note of {self.run_name}"), classes="dialog-title")
            yield Static("Tags: words without spaces or commas, e.g. baseline best (filter: tag=baseline). "
                         "Enter saves, Tab moves, Esc cancels.", classes="dialog-help")
            yield Input(value=" ".join(self.notes.tags), placeholder="tags, e.g. baseline best", id="notes-tags")
            yield Input(value=self.notes.note, placeholder="a note", max_length=NOTE_LIMIT, id="notes-note")
            damaged = (f"{self.notes.error}; saving keeps the damaged file as {NOTES_FILE}.bad"
                       if self.notes.error else "")
            yield Static(fmt.literal(damaged), id="notes-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one("#notes-note" if self.notes.tags else "#notes-tags", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            tags = parse_tags(self.query_one("#notes-tags", Input).value)
        except NotesError as err:
            self.query_one("#notes-error", Static).update(fmt.literal(err))
            self.query_one("#notes-tags", Input).focus()
            return
        self.dismiss((tags, self.query_one("#notes-note", Input).value))

    def action_cancel(self) -> None:
        self.dismiss(None)
