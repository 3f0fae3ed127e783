"""c on the dashboard: the latest validation's confusion matrix as a coloured grid (counts, each
class's recall) above a gallery of the samples it got wrong, drawn with half-block characters.
It follows the run: each new validation redraws it. Esc goes back to the dashboard."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_train.core import events as E
from tui_train.tui import format as fmt
from tui_train.tui import keys
from tui_train.tui.widgets.confusion_grid import ConfusionGrid
from tui_train.tui.widgets.mistake_gallery import MistakeGallery

NO_VALIDATION = "no validation yet: the matrix comes with each validation (v on the dashboard validates now)"
"""What the screen says before the first ConfusionMatrix event."""

NOT_CLASSIFICATION = "a regression run: it has no confusion matrix"
"""What it says for a run that is not a classification."""


class ConfusionScreen(Screen[None]):
    """The confusion matrix and the mistakes of the latest validation."""

    BINDINGS = keys.bindings(keys.CONFUSION_KEYS)

    DEFAULT_CSS = """
    ConfusionScreen { layout: vertical; }
    #confusion-info { height: 1; padding: 0 1; background: $panel; }
    #confusion-grid-box { height: auto; max-height: 60%; min-height: 5; border: round $panel-lighten-2; }
    #confusion-gallery-box { height: 1fr; min-height: 5; border: round $panel-lighten-2; }
    #confusion-grid-box:focus, #confusion-gallery-box:focus { border: round $accent; }
    """

    def __init__(self, event: E.ConfusionMatrix | None = None, task: str = "classification") -> None:
        super().__init__()
        self.event = event
        """The ConfusionMatrix shown (None: none yet)."""
        self.run_task = task
        """The run's task (a regression run has no matrix)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="confusion-info")
        with ScrollableContainer(id="confusion-grid-box", can_focus=True):
            yield ConfusionGrid(id="confusion-grid")
        with ScrollableContainer(id="confusion-gallery-box", can_focus=True):
            yield MistakeGallery(id="confusion-gallery")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#confusion-grid-box").border_title = "confusion matrix (rows: true class)"
        self.query_one("#confusion-gallery-box").border_title = "misclassified validation samples (true → predicted)"
        self.show(self.event)
        self.query_one("#confusion-grid-box").focus()

    def show(self, event: E.ConfusionMatrix | None) -> None:
        """Draw ``event`` (the dashboard calls this for each new validation while the screen is open)."""
        self.event = event
        grid = self.query_one(ConfusionGrid)
        gallery = self.query_one(MistakeGallery)
        info = self.query_one("#confusion-info", Static)
        if event is None:
            grid.show((), note=NOT_CLASSIFICATION if self.run_task != "classification" else NO_VALIDATION)
            gallery.show((), ())
            info.update(Text("confusion matrix", no_wrap=True, overflow="ellipsis"))
            return
        total = sum(sum(row) for row in event.confusion)
        right = sum(row[i] for i, row in enumerate(event.confusion) if i < len(row))
        accuracy = f" · accuracy {right / total:.2%} of {total:,}" if total else ""
        info.update(Text(f"validation at step {event.step} (epoch {event.epoch + 1}) · {event.num_classes} classes"
                         f"{accuracy} · {fmt.count(len(event.mistakes), 'mistake')} shown", no_wrap=True, overflow="ellipsis"))
        self.query_one("#confusion-grid-box").border_subtitle = "arrows scroll · tab: gallery" if event.num_classes > 12 else ""
        grid.show(event.confusion, event.classes,
                  note=f"{event.num_classes} classes: over {E.MAX_CONFUSION_CLASSES}, the matrix is not sent")
        gallery.show(event.mistakes, event.classes)

    def action_focus_next(self) -> None:
        """Tab: the grid, then the gallery."""
        self.focus_next()

    def action_back(self) -> None:
        """Esc: back to the dashboard."""
        self.dismiss(None)
