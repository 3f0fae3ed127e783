"""The Runs screen: every run under the runs folder, past and live, in one table (``tui-train runs``,
or r in the launcher).

Rows come from :func:`core.rundir.runs.list_runs` (small files only, never the histories), read again
whenever the screen is shown. Typing filters (:mod:`core.rundir.filters`: comparisons such as
``lr>=1e-3 sweep=NAME tag=baseline``, and plain words that must appear in some column; bad text is
named in the info line), o or a header click sorts, g groups the rows by sweep, Enter opens a run
(a live one attached, a finished one replayed from its files on a :class:`ReplayDashboard`), space
marks runs for v (their curves on shared axes: :class:`tui.screens.overlay_screen.OverlayScreen`)
and c (where their configs differ), w opens a trial's sweep (:class:`RunsScreen.OpenSweep`, for the
app), N edits a run's tags and note, x deletes a finished run after asking (both
:class:`tui.screens.run_edits.RunEdits`). Keys come from :data:`tui.keys.RUNS_KEYS`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from tui_train.core import commands as C
from tui_train.core.headline import headline_value
from tui_train.core.rundir.filters import Filter, FilterError, parse_filter, search_text
from tui_train.core.rundir.runs import RunRow, config_diff, list_runs, read_row
from tui_train.core.sweep.record import SWEEP_FILE
from tui_train.tui import format as fmt
from tui_train.tui import keys
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.run_edits import RunEdits

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("", "mark", ""),
    ("status", "status", "status"),
    ("preset", "preset", "preset"),
    ("sweep", "sweep", "sweep"),
    ("started", "started", "started"),
    ("duration", "duration", "duration"),
    ("epochs", "epochs", "epochs"),
    ("best", "best", "best"),
    ("test", "test", "test"),
    ("tags", "tags", "tags"),
    ("note", "note", "note"),
    ("lr", "lr", "lr"),
    ("batch", "batch", "batch_size"),
    ("optimizer", "optimizer", "optimizer"),
    ("schedule", "schedule", "schedule"),
    ("interv.", "interventions", "interventions"),
    ("parent", "parent", "parent"),
    ("run", "run", "name"),
)
"""(header, column key, :data:`core.rundir.runs.SORT_KEYS` entry it sorts by ('' : not sortable))."""

SORTABLE: tuple[str, ...] = tuple(sort for _, _, sort in COLUMNS if sort)
"""The sort keys o cycles through, in column order."""

MARK = "✔"
"""Shown in the first column of a marked run."""

LIVE_MARK = "● "
"""Before the status of a live run (attachable)."""

STATUS_STYLES = {"running": "bold green", "paused": "bold yellow", "failed": "red", "unsaved": "bold red",
                 "unfinished": "yellow", "interrupted": "dim", "stopped": "dim", "preempted": "yellow"}
"""Status -> style of its cell (a second channel only: the text says the status)."""

BEST_NAMES = {"val_loss": "loss", "val_accuracy": "acc", "val_f1": "f1", "val_mae": "mae", "val_r2": "R²", "val_mse": "mse"}
"""Monitored metric -> its short name in the best column."""

FILTER_DELAY = 0.12
"""Seconds of no typing before the filter applies (a DataTable measures every row it adds)."""

NOTE_WIDTH = 24
"""Characters of a note the note column shows (its first line; N shows all of it)."""

GROUP_KEY = "sweep:"
"""Row keys of the group headings (``sweep:<sweep folder>``; ``sweep:`` alone heads the runs that are no trial)."""


def cells(row: RunRow, marked: bool = False) -> list[str | Text]:
    """The table cells of one run (in :data:`COLUMNS` order); missing values are a dash."""
    hp = row.hyperparameters
    status = fmt.literal((LIVE_MARK if row.live else "") + row.status, style=STATUS_STYLES.get(row.status, ""))
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.started)) if row.started else fmt.DASH
    epochs = f"{row.epochs if row.epochs is not None else fmt.DASH}/{row.epochs_planned if row.epochs_planned is not None else '?'}"
    best_value = row.best.get("value")
    metric = str(row.best.get("metric") or "")
    best = f"{BEST_NAMES.get(metric, metric)} {fmt.num(best_value)}".strip() if isinstance(best_value, int | float) else fmt.DASH
    test = fmt.metric(*headline_value(None, row.test))  # the headline test number (core.headline)
    parent = Path(row.parent).name if row.parent else ""
    if parent and row.parent_step is not None:
        parent += f" @{row.parent_step}"
    note = fmt.literal("notes.json unreadable", style="red") if row.notes_error else fmt.first_line(row.note, NOTE_WIDTH)
    texts = [status, row.preset, fmt.trial(row.sweep_name, row.trial), started, fmt.duration(row.duration), epochs, best, test,
             ",".join(row.tags), note, fmt.lr(hp.get("lr")), fmt.num(hp.get("batch_size")), str(hp.get("optimizer") or fmt.DASH),
             str(hp.get("schedule") or fmt.DASH), str(row.interventions), parent, row.name]
    # a DataTable parses a str cell as markup: the run's files' texts go in as Text (habit 23)
    return [MARK if marked else "", *(c if isinstance(c, Text) else fmt.literal(c) for c in texts)]


def row_text(row: RunRow) -> str:
    """Everything a plain filter word can match in a row, case-folded: the text of its cells (its
    folder's and its parent's names among them; not their paths, whose common part would match
    every run), then its whole note, tags and a trial's parameters (:func:`core.rundir.filters.search_text`)."""
    return " ".join(str(c) for c in cells(row)).casefold() + " " + search_text(row)


def matches(row: RunRow, query: str) -> bool:
    """The row passes the filter ``query`` (:mod:`core.rundir.filters`: comparisons and plain words,
    all of which must hold; an empty query matches all). FilterError for text that is no filter."""
    return parse_filter(query).matches(row, row_text(row))


def group_by_sweep(rows: list[RunRow]) -> list[tuple[str, list[RunRow]]]:
    """(sweep folder, its trials) for each sweep among ``rows``, the newest sweep first (by folder
    name: it starts with its stamp), then ('', the runs that are no trial); each group keeps the rows' order."""
    groups: dict[str, list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.sweep_dir if row.sweep else "", []).append(row)
    named = sorted((d for d in groups if d), key=lambda d: (Path(d).name, d), reverse=True)
    return [(d, groups[d]) for d in named] + ([("", groups[""])] if "" in groups else [])


def heading_cells(sweep_dir: str, rows: list[RunRow]) -> list[str | Text]:
    """The cells of a group heading (in :data:`COLUMNS` order): what it groups, how many, its folder."""
    texts: dict[str, Text] = {"status": Text("▾ sweep" if sweep_dir else "▾ runs", style="bold"),
                              "sweep": fmt.literal(fmt.count(len(rows), "trial" if sweep_dir else "run"), style="bold"),
                              "run": fmt.literal(Path(sweep_dir).name if sweep_dir else "not in a sweep", style="bold")}
    if sweep_dir and rows:
        texts["preset"] = fmt.literal(rows[0].sweep_name, style="bold")
        stamp = re.match(r"(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)", Path(sweep_dir).name)  # <stamp>-sweep-<preset>: when it began
        if stamp:
            texts["started"] = Text("{}-{}-{} {}:{}".format(*stamp.groups()), style="bold")
    return [texts.get(key, "") for _, key, _ in COLUMNS]


def sort_rows(rows: list[RunRow], key: str, reverse: bool) -> list[RunRow]:
    """``rows`` ordered as :func:`core.rundir.runs.list_runs` orders them: by ``key`` (ties in folder name
    order), missing values last, live runs first."""
    by_name = sorted(rows, key=lambda r: r.name)
    present = sorted((r for r in by_name if not r.sort_value(key)[0]), key=lambda r: r.sort_value(key), reverse=reverse)
    ordered = present + [r for r in by_name if r.sort_value(key)[0]]
    return [r for r in ordered if r.live] + [r for r in ordered if not r.live]


def value_text(value: object) -> str:
    """A config value as the diff shows it (absent keys: a dash)."""
    if value is None:
        return fmt.DASH
    if isinstance(value, str):
        return value
    return json.dumps(value)


class NameHeader:
    """A run name as a column header: wrapped to the column's width only after a ``-``, ``_`` or
    ``.``, so that each part of the name stays whole (a folded header cut ``alpha`` into ``a`` /
    ``lpha``: issue 20 defect 9). A part wider than the column is folded, as a last resort."""

    def __init__(self, name: str, style: str = "bold") -> None:
        self.parts = re.findall(r"[^-_.]+[-_.]*|[-_.]+", name) or [""]
        """The name cut after each separator: the places where a line may end."""
        self.style = style
        """The header's style."""

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(max(cell_len(p) for p in self.parts), cell_len("".join(self.parts)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, lines = max(1, options.max_width), [""]
        for part in self.parts:
            if lines[-1] and cell_len(lines[-1] + part) > width:
                lines.append("")
            lines[-1] += part
        yield Text("\n".join(lines), style=self.style, overflow="fold")


class ConfigDiffScreen(ModalScreen[None]):
    """The config keys whose values differ between some runs (:func:`core.rundir.runs.config_diff`); Esc, q or c closes."""

    BINDINGS = [("escape", "close", "Close"), ("q", "close", "Close"), ("c", "close", "Close")]

    DEFAULT_CSS = """
    ConfigDiffScreen { align: center middle; }
    ConfigDiffScreen .dialog { width: 90%; max-width: 160; height: auto; max-height: 90%; }
    """

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = list(rows)
        """The runs compared, in column order."""
        self.diff: dict[str, list] = config_diff([Path(r.run_dir) for r in self.rows])
        """``section.key`` -> the value in each run, only where they differ."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(f"Where the configs of {len(self.rows)} runs differ", classes="dialog-title")
            if self.diff:
                table = Table(show_header=True, header_style="bold", box=None, expand=True, padding=(0, 1))
                table.add_column("key", no_wrap=True, style="bold")
                for row in self.rows:
                    table.add_column(NameHeader(fmt.printable(row.name)), overflow="fold")
                for key, values in self.diff.items():
                    table.add_row(fmt.literal(key), *(fmt.literal(value_text(v)) for v in values))
                yield Static(table, id="config-diff")
            else:
                yield Static("Their configs are the same.", id="config-diff")
            yield Static("Only the keys whose values differ are shown (– : the key is not in that config). Esc closes.",
                         classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)


class ReplayDashboard(DashboardScreen):
    """A finished run's dashboard, fed from its files (:class:`core.rundir.replay.ReplayTrainer`); Esc goes back to the runs."""

    BINDINGS = keys.bindings(keys.REPLAY_KEYS)

    ASKS_ON_NONFINITE = False  # a replayed run that ended in a non-finite pause: nothing to answer

    class Closed(Message):
        """Esc on a replay: the app ends it and shows the runs again."""

    def __init__(self, name: str, *, submit: Callable[[C.Command], object]) -> None:
        super().__init__(name, attached=True, submit=submit)

    def action_back(self) -> None:
        """Esc: end the replay and show the runs again (the app's to do: :class:`Closed`)."""
        self.post_message(self.Closed())


class RunsScreen(Screen[None]):
    """Every run under ``runs_dir``: filter, sort, group by sweep, open, mark, compare, annotate, delete."""

    class OpenRun(Message):
        """Enter on a run: the app attaches to it (``live``) or replays it from its files."""

        def __init__(self, run_dir: Path, live: bool) -> None:
            super().__init__()
            self.run_dir = run_dir
            """The run's directory."""
            self.live = live
            """Its trainer answers now (probed when Enter was pressed)."""

    class OpenSweep(Message):
        """w on a sweep's trial (or on its group's heading): the app opens the Sweep screen on its folder."""

        def __init__(self, sweep_dir: Path) -> None:
            super().__init__()
            self.sweep_dir = sweep_dir
            """The sweep folder (it holds sweep.json)."""

    BINDINGS = keys.bindings(keys.RUNS_KEYS)

    DEFAULT_CSS = """
    RunsScreen { layout: vertical; }
    #runs-filter { height: 1; margin: 0 1; }
    #runs-table { height: 1fr; }
    #runs-info { height: 1; padding: 0 1; background: $panel; }
    """

    def __init__(self, runs_dir: Path, query: str = "") -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        """The folder listed."""
        self.rows: list[RunRow] = []
        """Every run found at the last reload (:func:`core.rundir.runs.list_runs`)."""
        self.shown: list[RunRow] = []
        """The rows in the table: filtered, sorted."""
        self.marked: dict[str, None] = {}
        """Run directories marked with space, in marking order (an ordered set)."""
        self.sort_key = "started"
        """The column the rows are sorted by (a :data:`core.rundir.runs.SORT_KEYS` entry)."""
        self.reverse = True
        """Largest (newest) first."""
        self.query_text = ""
        """The filter text typed (the rows show :attr:`filter`: the last text that was a filter)."""
        self.filter: Filter = Filter()
        """The filter applied (:func:`core.rundir.filters.parse_filter`)."""
        self.filter_error = ""
        """Why :attr:`query_text` is no filter (one line, shown in the info line); '' when it is one."""
        self.grouped = False
        """The rows are grouped by sweep (g), each group under a heading row."""
        self._initial_query = query
        self._by_key: dict[str, RunRow] = {}
        self._headings: dict[str, str] = {}
        self.reloads = 0
        """How many times the rows were read (tests wait on it)."""
        self._filter_timer = None
        self._edits = RunEdits(self)  # what N and x change in a run's folder

    # -- layout and data ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Input(value=self._initial_query, placeholder="type to filter: lr>=1e-3 optimizer=adam status=completed "
                    "sweep=NAME tag=baseline, or any word…", id="runs-filter", compact=True, select_on_focus=False)
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-info")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> DataTable:
        """The runs table."""
        return self.query_one("#runs-table", DataTable)

    def on_mount(self) -> None:
        for label, key, _ in COLUMNS:
            # the mark column is sized for the mark: filled empty, it would have no width and a
            # mark set by space would stay invisible until a refill (issue 20 defect 4)
            self.table.add_column(label, key=key, width=cell_len(MARK) if key == "mark" else None)
        self.table.focus()
        if self._initial_query:
            self.apply_filter(self._initial_query)

    def on_screen_resume(self) -> None:
        self.reload()  # back from a dashboard or the curves: statuses may have changed, runs ended

    def reload(self) -> None:
        """Read the rows again (live status included) and show them."""
        try:
            self.rows = list_runs(self.runs_dir)
        except OSError as exc:
            self.rows = []
            self.notify(fmt.printable(f"cannot list {self.runs_dir}: {exc}"), severity="error", markup=False)
        present = {r.run_dir for r in self.rows}
        self.marked = {d: None for d in self.marked if d in present}
        self.reloads += 1
        self._fill()

    def _fill(self) -> None:
        """Put the filtered, sorted (grouped) rows in the table, keeping the cursor on the same row."""
        table = self.table
        current = self._cursor_key()
        wanted = self.filter.apply(self.rows, row_text) if self.filter else self.rows
        ordered = sort_rows(wanted, self.sort_key, self.reverse)
        groups = group_by_sweep(ordered) if self.grouped else [("", ordered)]
        table.clear()
        self.shown, self._by_key, self._headings = [], {}, {}
        for sweep_dir, rows in groups:
            if self.grouped:
                key = GROUP_KEY + sweep_dir
                self._headings[key] = sweep_dir
                table.add_row(*heading_cells(sweep_dir, rows), key=key)
            for row in rows:
                self.shown.append(row)
                self._by_key[row.run_dir] = row
                table.add_row(*cells(row, row.run_dir in self.marked), key=row.run_dir)
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        self._info()

    def _cursor_key(self) -> str | None:
        """The key of the table row under the cursor (a run directory, or a heading's); None when empty."""
        table = self.table
        if table.row_count == 0:
            return None
        return table.ordered_rows[min(max(table.cursor_row, 0), table.row_count - 1)].key.value

    def _info(self) -> None:
        if not self.rows:
            text = f"no runs under {self.runs_dir}"
        else:
            live = sum(r.live for r in self.rows)
            runs = fmt.count(len(self.rows), "run")
            shown = f"{len(self.shown)} of {runs}" if self.filter else runs
            text = (f"{shown} · {live} live · {len(self.marked)} marked · sorted by {self.sort_key} "
                    f"{'↓' if self.reverse else '↑'}" + (" · grouped by sweep" if self.grouped else ""))
        info = Text(text, no_wrap=True, overflow="ellipsis")
        if self.filter_error:  # the filter text is no filter: say why, first (the rows are the last filter's)
            info = Text.assemble(fmt.literal(self.filter_error, style="bold red"), " · ", info, no_wrap=True, overflow="ellipsis")
        self.query_one("#runs-info", Static).update(info)

    @property
    def selected(self) -> RunRow | None:
        """The run under the cursor (None when the table is empty or the cursor is on a group's heading)."""
        key = self._cursor_key()
        return self._by_key.get(key) if key is not None else None

    @property
    def marked_rows(self) -> list[RunRow]:
        """The marked runs, in marking order."""
        by_dir = {r.run_dir: r for r in self.rows}
        return [by_dir[d] for d in self.marked if d in by_dir]

    # -- the filter -----------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        # type to filter: a printable key that is no binding of this screen starts the filter
        if not (event.is_printable and event.character):
            return
        box = self.query_one("#runs-filter", Input)
        # A printable key reaching the screen while the box has the focus was typed before the box
        # got it and went to the table (the box stops its own): it is filter text, even a bound
        # key (space, c, v); else fast typing lost it or marked a run (issue 20 defect 4).
        if self.focused is not box and not (self.focused is self.table and event.key not in self._bound_keys()):
            return
        event.stop()
        event.prevent_default()
        if self.focused is not box:
            self.set_focus(box)  # now, not after the queue (Widget.focus defers): the next keys go to the box
        box.insert_text_at_cursor(event.character)

    def _bound_keys(self) -> set[str]:
        return {k.key for k in keys.RUNS_KEYS} | {k.key for k in keys.APP_KEYS}

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, lambda: self.apply_filter(event.value))

    def apply_filter(self, text: str) -> None:
        """Show the rows that pass the filter ``text`` (now, without the typing delay); text that is
        no filter is named in the info line and the rows stay those of the last filter."""
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        if text == self.query_text:
            return
        self.query_text = text
        try:
            self.filter, self.filter_error = parse_filter(text), ""
        except FilterError as exc:
            self.filter_error = str(exc)
            self._info()
            return
        self._fill()

    def action_focus_filter(self) -> None:
        """/: type a filter."""
        self.query_one("#runs-filter", Input).focus()

    def action_back(self) -> None:
        """Esc: in the filter, clear it and go back to the table; else leave the screen."""
        box = self.query_one("#runs-filter", Input)
        if self.focused is box:
            box.value = ""
            self.apply_filter("")
            self.table.focus()
            return
        self.dismiss(None)

    # -- sorting --------------------------------------------------------------------------------
    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by ``key`` (a :data:`SORTABLE` entry); ``reverse`` None keeps the direction."""
        if key not in SORTABLE:
            raise ValueError(f"cannot sort by {key!r} (allowed: {', '.join(SORTABLE)})")
        self.sort_key = key
        if reverse is not None:
            self.reverse = reverse
        self._fill()

    def action_next_sort(self) -> None:
        """o: sort by the next column."""
        self.sort_by(SORTABLE[(SORTABLE.index(self.sort_key) + 1) % len(SORTABLE)])

    def action_reverse_sort(self) -> None:
        """O: the other way round."""
        self.sort_by(self.sort_key, not self.reverse)

    def action_group_by_sweep(self) -> None:
        """g: group the rows by sweep (a heading per sweep, the runs that are no trial last), or not."""
        self.grouped = not self.grouped
        self._fill()

    @on(DataTable.HeaderSelected, "#runs-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        sort = next((s for _, key, s in COLUMNS if key == event.column_key.value), "")
        if sort:
            self.sort_by(sort, not self.reverse if sort == self.sort_key else None)

    # -- marks ----------------------------------------------------------------------------------
    def action_toggle_mark(self) -> None:
        """space: mark or unmark the run under the cursor, then move to the next one."""
        row = self.selected
        if row is None:
            return
        if row.run_dir in self.marked:
            del self.marked[row.run_dir]
        else:
            self.marked[row.run_dir] = None
        self.table.update_cell(row.run_dir, "mark", MARK if row.run_dir in self.marked else "")
        self.table.move_cursor(row=min(self.table.cursor_row + 1, self.table.row_count - 1))
        self._info()

    def _compared(self, least: int) -> list[RunRow] | None:
        """The marked runs (the one under the cursor when none is marked and one will do)."""
        rows = self.marked_rows
        if not rows and least <= 1 and self.selected is not None:
            rows = [self.selected]
        if len(rows) < least:
            self.notify(f"mark {'runs' if least > 1 else 'a run'} with space first ({least} at least)", severity="warning")
            return None
        return rows

    def action_overlay(self) -> None:
        """v: the marked runs' curves on shared axes."""
        from tui_train.tui.screens.overlay_screen import OverlayScreen

        rows = self._compared(1)
        if rows:
            self.app.push_screen(OverlayScreen(rows))

    def action_config_diff(self) -> None:
        """c: where the marked runs' configs differ."""
        rows = self._compared(2)
        if rows:
            self.app.push_screen(ConfigDiffScreen(rows))

    # -- opening and deleting -------------------------------------------------------------------
    @on(DataTable.RowSelected, "#runs-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_run()

    def action_open_run(self) -> None:
        """Enter: attach to a live run, replay a finished one from its files (in the filter: apply it)."""
        box = self.query_one("#runs-filter", Input)
        if self.focused is box:
            self.apply_filter(box.value)
            self.table.focus()
            return
        row = self.selected
        if row is None:
            return
        run_dir = Path(row.run_dir)
        if not run_dir.is_dir():
            self.notify(fmt.printable(f"{row.name} is gone"), severity="warning", markup=False)
            self.reload()
            return
        # probed now: it may have ended, or been resumed, since the listing
        self.post_message(self.OpenRun(run_dir, live=read_row(run_dir).live))

    def action_open_sweep(self) -> None:
        """w: the sweep of the trial under the cursor (or of the heading), for the app to open
        (:class:`OpenSweep`); a run that is no trial, or a sweep folder that is gone, is said."""
        key = self._cursor_key()
        row = self.selected
        if key in self._headings:
            sweep_dir, name = self._headings[key], Path(self._headings[key]).name
        elif row is not None and row.sweep:
            sweep_dir, name = row.sweep_dir, row.sweep
        else:
            if row is not None:
                self.notify(fmt.printable(f"{row.name} is no trial of a sweep"), severity="warning", markup=False)
            return
        if not sweep_dir:
            self.notify("these runs are no trials of a sweep", severity="warning")
            return
        # trial.json names the folder where the sweep ran; a runs folder moved since has it beside the runs
        found = next((d for d in (Path(sweep_dir), self.runs_dir / name) if (d / SWEEP_FILE).is_file()), None)
        if found is None:
            self.notify(fmt.printable(f"sweep {name}: its folder is gone (no {SWEEP_FILE} in {sweep_dir})"), severity="warning",
                        markup=False)
            return
        self.post_message(self.OpenSweep(found))

    def action_edit_notes(self) -> None:
        """N: edit the run's tags and note (a dialog); saved to its notes.json (:meth:`RunEdits.edit_notes`)."""
        if self.selected is not None:
            self._edits.edit_notes(self.selected)

    def action_delete_run(self) -> None:
        """x / delete: delete the run's folder after asking; a live run is refused (:meth:`RunEdits.delete`)."""
        if self.selected is not None:
            self._edits.delete(self.selected)
