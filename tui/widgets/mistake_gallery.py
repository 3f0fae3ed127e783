"""Misclassified validation samples as a gallery of half-block images (``tui.halfblock``), each
labelled ``true → predicted``; for a dataset that is not images, one line per sample with its
first feature values. Tiles flow into as many columns as the width allows."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from tui_train.core.text import printable
from tui_train.tui.halfblock import half_block, mistake_pixels

MIN_SIDE = 16
"""Images smaller than this many pixels a side are drawn 2x (or more), so an 8x8 digit reads."""

GAP = 2
"""Columns between two tiles."""


def class_name(index: int, classes: tuple | list) -> str:
    """A class as shown: its name when the run has names, else its index."""
    return printable(classes[index]) if 0 <= index < len(classes) else str(index)  # the dataset's: literal


def label(item: dict, classes: tuple | list) -> str:
    """``true → predicted`` of one mistake."""
    return f"{class_name(item['true'], classes)} → {class_name(item['pred'], classes)}"


def tile(item: dict, classes: tuple | list) -> tuple[list[Text], int]:
    """(lines, width) of one image mistake: its label, then the image."""
    h, w = item["height"], item["width"]
    scale = max(1, MIN_SIDE // max(h, w))
    image = half_block(mistake_pixels(item), h, w, item["channels"], scale).split("\n")
    width = max(w * scale, 7)
    head = Text(label(item, classes), style="bold", no_wrap=True, overflow="ellipsis")
    head.truncate(width, overflow="ellipsis")
    return [head, *image], width


def gallery_text(mistakes: tuple | list, classes: tuple | list, width: int) -> Text:
    """Every mistake, tiles side by side in rows that fit ``width`` columns (at least one a row)."""
    if not mistakes:
        return Text("no misclassified samples in this validation", style="italic")
    if "features" in mistakes[0]:
        return _features_text(mistakes, classes)
    tiles = [tile(m, classes) for m in mistakes if "pixels" in m]
    out = Text(no_wrap=True, overflow="crop")
    row: list[tuple[list[Text], int]] = []
    used = 0
    rows: list[list[tuple[list[Text], int]]] = []
    for t in tiles:
        if row and used + GAP + t[1] > width:
            rows.append(row)
            row, used = [], 0
        used += (GAP if row else 0) + t[1]
        row.append(t)
    if row:
        rows.append(row)
    for r, tiles_row in enumerate(rows):
        height = max(len(lines) for lines, _ in tiles_row)
        for y in range(height):
            if r or y:
                out.append("\n")
            for k, (lines, w) in enumerate(tiles_row):
                if k:
                    out.append(" " * GAP)
                line = lines[y] if y < len(lines) else Text("")
                out.append_text(line)
                out.append(" " * (w - line.cell_len))
        if r < len(rows) - 1:
            out.append("\n")
    return out


def _features_text(mistakes: tuple | list, classes: tuple | list) -> Text:
    text = Text("not an image dataset: each sample's first feature values\n", style="italic", no_wrap=True, overflow="crop")
    for i, m in enumerate(mistakes):
        values = ", ".join(f"{v:.4g}" for v in m.get("features", ()))
        text.append(f"#{m['index']:<6} ", style="dim")
        text.append(label(m, classes).ljust(20), style="bold")
        text.append(f" {values}")
        if i < len(mistakes) - 1:
            text.append("\n")
    return text


class MistakeGallery(Widget):
    """The latest validation's misclassified samples (see :func:`gallery_text`)."""

    DEFAULT_CSS = """
    MistakeGallery { width: 1fr; height: auto; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mistakes: tuple = ()
        """The samples shown (ConfusionMatrix.mistakes)."""
        self.class_names: tuple = ()
        """The run's class names (may be empty)."""

    def show(self, mistakes: tuple, classes: tuple) -> None:
        """Draw these samples."""
        self.mistakes, self.class_names = tuple(mistakes), tuple(classes)
        self.refresh(layout=True)

    def render(self) -> Text:
        return gallery_text(self.mistakes, self.class_names, max(1, self.size.width))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(gallery_text(self.mistakes, self.class_names, max(1, width)).split("\n"))
