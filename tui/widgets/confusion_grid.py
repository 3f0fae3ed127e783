"""A confusion matrix as a coloured grid: one row per true class, one column per predicted class,
each cell's background as strong as its share of the row (green on the diagonal, red off it),
and each row's recall at its end. Wider than the screen (many classes), it scrolls."""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from tui_train.core.text import printable

LABEL_WIDTH = 12
"""Characters of a row's class name (longer ones are cut with …)."""

RIGHT = Color.from_rgb(0, 170, 60)
"""The colour a correctly classified row's diagonal cell tends to."""
WRONG = Color.from_rgb(200, 30, 30)
"""The colour an off-diagonal cell tends to."""
EMPTY = Color.from_rgb(30, 30, 30)
"""A cell with no count."""


def _blend(share: float, target: Color) -> Color:
    r0, g0, b0 = EMPTY.get_truecolor()
    r1, g1, b1 = target.get_truecolor()
    s = max(0.0, min(1.0, share))
    return Color.from_rgb(r0 + (r1 - r0) * s, g0 + (g1 - g0) * s, b0 + (b1 - b0) * s)


def cell_style(count: int, row_total: int, diagonal: bool) -> Style:
    """The style of one cell: background intensity = count / row total (a non-zero count is
    never drawn as empty: at least a quarter of the way)."""
    share = count / row_total if row_total else 0.0
    if count:
        share = 0.25 + 0.75 * share
    return Style(bgcolor=_blend(share, RIGHT if diagonal else WRONG), color="white", bold=diagonal and count > 0)


def _label(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def row_name(name: str, index: int) -> str:
    """A class name without the index the row already shows: MNIST's "0 - zero" -> "zero" (the row
    read "0 0 - zero": issue 20 defect 9), "3" -> "" ; "10 - ten" in row 1 and "T-shirt/top" are kept."""
    head = str(index)
    if name == head:
        return ""
    if name.startswith(head) and not name[len(head)].isalnum():
        return name[len(head):].lstrip(" -:._|)/").strip() or name
    return name


def recalls(confusion: tuple | list) -> list[float | None]:
    """Per-class recall (diagonal / row total; None for a class with no sample)."""
    out = []
    for i, row in enumerate(confusion):
        total = sum(row)
        out.append(row[i] / total if total and i < len(row) else None)
    return out


def confusion_text(confusion: tuple | list, classes: tuple | list = ()) -> Text:
    """The grid as Rich text: a header of predicted class indices, then per true class its index
    and name, its counts and its recall."""
    n = len(confusion)
    names = [row_name(printable(c), i) for i, c in enumerate(classes)] if len(classes) == n else [""] * n
    # names that only repeat the index (a user dataset's classes 0..n-1) get no column: not "0 0"
    label_w = 0 if not any(names) else LABEL_WIDTH
    biggest = max((v for row in confusion for v in row), default=0)
    cell = max(len(str(biggest)), len(str(n - 1)), 1) + 1
    index_w = len(str(n - 1))
    head = " " * (index_w + 1 + (label_w + 1 if label_w else 0))
    text = Text(no_wrap=True, overflow="crop")
    text.append(head + "predicted →\n", style="dim")
    text.append(head)
    for j in range(n):
        text.append(str(j).rjust(cell), style="bold")
    text.append("  recall\n", style="bold")
    for i, (row, recall) in enumerate(zip(confusion, recalls(confusion), strict=True)):
        label = f"{_label(names[i], label_w).ljust(label_w)} " if label_w else ""
        text.append(f"{str(i).rjust(index_w)} {label}", style="bold")
        total = sum(row)
        for j, v in enumerate(row):
            text.append(str(v).rjust(cell), style=cell_style(v, total, i == j))
        shown = "   -" if recall is None else f"{recall:7.1%}"
        text.append(f" {shown}", style="green" if recall is not None and recall >= 0.9 else
                    "yellow" if recall is not None and recall >= 0.5 else "red")
        if i < n - 1:
            text.append("\n")
    return text


class ConfusionGrid(Static):
    """The latest confusion matrix (see :func:`confusion_text`), or a line saying why there is none."""

    DEFAULT_CSS = """
    ConfusionGrid { width: auto; height: auto; }
    """

    def show(self, confusion: tuple | list, classes: tuple | list = (), note: str = "") -> None:
        """Draw ``confusion`` (rows: true class), or ``note`` when it is empty."""
        self.update(confusion_text(confusion, classes) if confusion else Text(note, style="italic"))
