"""A loop's own series (issue 23: "any other key gets its own series"): the numbers a loop of the
user's own logged under its own names (Scalars events), one line per name against the step, with a
legend below that names each line literally and shows its latest value (:class:`SeriesLegend`).

The first :data:`MAX_LINES` names get a line; the legend lists the others as not plotted. Names come
from the user's code: they reach the screen only as :func:`tui.format.literal` text (brackets and
escape codes shown as they are; STYLE.md habit 23), and the plot's title never holds one. Non-finite
values never reach the plot (:class:`tui.series.Series` drops them); the legend says ``nan``.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.widget import Widget

from tui_train.core import events as E
from tui_train.tui import format as fmt
from tui_train.tui.widgets.metric_plot import LEGEND_MARKS, MetricPlot

MAX_LINES = 6
"""Names plotted at most (a seventh line would not be told apart in a 26-column plot)."""

LINE_STYLES: tuple[tuple[str, str], ...] = (
    ("braille", "cyan"), ("dot", "magenta"), ("+", "green"), ("x", "yellow"), ("*", "blue"), ("o", "red"))
"""(plotext marker, colour) of the lines in the order their names came: the markers differ too,
so that the lines are told apart without colour (NO_COLOR)."""

MAX_LEFT_OUT = 32
"""The names not plotted that are remembered to be listed (the rest only counted): a loop that logs
a new name every step must not grow the dashboard's memory."""

NAME_CHARS = 24
"""A name is cut to this many characters in the legend (names may have 200)."""

LEGEND_LINES = 3
"""The legend's most lines (app.tcss's max-height): entries are made shorter until they fit."""

SHORT_NAME = 8
"""A name's length in the legend's shortest form."""

TITLE = "your series"
"""The plot's title (the names are in the legend: the title is drawn by plotext, never a name);
with names not plotted, how many are: 'your series (6 of 9)'."""


def shown_name(name: object, chars: int = NAME_CHARS) -> str:
    """``name`` on one line, cut to ``chars``: its control characters written as escapes
    (:func:`core.text.printable`), newlines and tabs too."""
    text = fmt.printable(name).replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= chars else text[:chars - 1] + "…"


def pack(entries: list[Text], width: int) -> list[Text]:
    """``entries`` in lines of at most ``width`` cells, two spaces apart, an entry never split
    (one longer than a line is cut with an ellipsis)."""
    lines: list[Text] = []
    for entry in entries:
        if lines and lines[-1].cell_len + 2 + entry.cell_len <= width:
            lines[-1].append("  ")
        else:
            lines.append(Text())  # not the entry itself: its style would colour the whole line
        lines[-1].append_text(entry)
    for line in lines:
        line.truncate(max(1, width), overflow="ellipsis")
    return lines


class SeriesPlot(MetricPlot):
    """The plot of :class:`ScalarsPlot`: its lines are named in the legend below, not in the title."""

    LEGEND_IN_TITLE = False


class ScalarsPlot(Vertical):
    """A loop's own series (``#scalars``): the plot (``#scalars-plot``) and its legend (``#scalars-legend``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.plot = SeriesPlot(TITLE, id="scalars-plot")
        """One line per plotted name."""
        self.names: dict[str, str] = {}
        """Name -> its line in the plot (the first :data:`MAX_LINES` names, in the order they came)."""
        self.latest: dict[str, object] = {}
        """Name -> the latest value logged under it (possibly non-finite: the legend writes nan)."""
        self.left_out: dict[str, None] = {}
        """Names not plotted, in the order they came (at most :data:`MAX_LEFT_OUT`; an ordered set)."""
        self.more_left_out = False
        """More names than :data:`MAX_LEFT_OUT` are not plotted (they are not remembered)."""
        self._legend_version = 0
        self._legend_drawn = -1
        self._legend_time = 0.0

    def compose(self) -> ComposeResult:
        yield self.plot
        yield SeriesLegend(self, id="scalars-legend")

    @property
    def has_series(self) -> bool:
        """A Scalars event has come (then the plot is shown)."""
        return bool(self.names)

    def add(self, ev: E.Scalars) -> bool:
        """The values of one Scalars event, each on its name's line; True when it is the first one
        with a name (the plot is to be shown from now on)."""
        first = not self.names
        values = ev.values if isinstance(ev.values, dict) else {}
        for name, value in values.items():
            name = str(name)
            line = self.names.get(name)
            if line is None:
                if name in self.left_out:
                    continue
                if len(self.names) >= MAX_LINES:
                    self._leave_out(name)
                    continue
                line = self.names[name] = f"s{len(self.names)}"
                marker, color = LINE_STYLES[len(self.names) - 1]
                self.plot.add_line(line, fmt.printable(shown_name(name)), marker=marker, color=color)
            self.plot.add(line, ev.step, value)  # a non-finite value is dropped here (Series)
            self.latest[name] = value
        self._legend_version += 1
        return first and bool(self.names)

    def _leave_out(self, name: str) -> None:
        if len(self.left_out) < MAX_LEFT_OUT:
            self.left_out[name] = None
        else:
            self.more_left_out = True
        # the title says it even where the legend has no room to (80x24): "your series (6 of 9)"
        total = f"{len(self.names) + len(self.left_out)}{'+' if self.more_left_out else ''}"
        self.plot.set_title(f"{TITLE} ({len(self.names)} of {total})")

    def mark(self, step: float, kind: str) -> None:
        """An intervention at ``step``, as on the other plots."""
        self.plot.mark(step, kind)

    def redraw(self, force: bool = False) -> None:
        """Redraw the plot and the legend if they changed (at most every ``plot.min_interval`` s
        unless forced); nothing while no series came (the dashboard of a built-in run)."""
        if not self.names:
            return
        self.plot.redraw(force=force)
        now = time.monotonic()
        if self._legend_version != self._legend_drawn and (force or now - self._legend_time >= self.plot.min_interval):
            self._legend_drawn, self._legend_time = self._legend_version, now
            self.query_one(SeriesLegend).refresh(layout=True)

    def legend_lines(self, width: int) -> list[Text]:
        """The legend in at most :data:`LEGEND_LINES` lines of ``width``: each plotted name with its
        marker in its line's colour and its latest value, then the names not plotted; every name
        literal. Where that does not fit, the names not plotted are only counted, then the values
        go, then the names are cut shorter."""
        forms = ((True, NAME_CHARS, True), (True, NAME_CHARS, False), (False, NAME_CHARS, False), (False, SHORT_NAME, False))
        for values, chars, listed in forms:
            lines = pack(self._entries(values, chars, listed), width)
            if len(lines) <= LEGEND_LINES:
                return lines
        return lines[:LEGEND_LINES]

    def _entries(self, values: bool, chars: int, listed: bool) -> list[Text]:
        """The legend's entries: with the latest ``values`` or not, names cut to ``chars``, the names
        not plotted ``listed`` or counted."""
        entries = []
        for i, name in enumerate(self.names):
            marker, color = LINE_STYLES[i]
            entry = Text()
            entry.append(LEGEND_MARKS.get(marker, marker), style=f"bold {color}")
            entry.append(" ")
            entry.append_text(fmt.literal(shown_name(name, chars)))
            if values:
                entry.append(" " + fmt.num(self.latest.get(name)), style="dim")
            entries.append(entry)
        if self.left_out:
            more = " and more" if self.more_left_out else ""
            if listed:
                names = ", ".join(shown_name(n) for n in self.left_out)
                entries.append(fmt.literal(f"not plotted: {names}{more}", style="dim"))
            else:
                entries.append(fmt.literal(f"+{len(self.left_out)}{'+' if more else ''} not plotted", style="dim"))
        return entries


class SeriesLegend(Widget):
    """The legend of :class:`ScalarsPlot`, packed to its width (an entry is never split across lines)."""

    def __init__(self, owner: ScalarsPlot, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.owner = owner
        """The plot whose names it shows."""

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.owner.legend_lines(width)) if width else 0

    def render(self) -> RenderResult:
        return Text("\n").join(self.owner.legend_lines(self.size.width))

    def on_resize(self) -> None:
        self.refresh(layout=True)  # another width may take another number of lines
