"""The Sweep screen: a sweep's live leaderboard, its trials' curves, and keys that steer it.

``tui-train sweep`` on a terminal opens it on the sweep this app drives (:func:`tui.app.run_sweep_tui`:
the driver runs in a daemon thread of the TUI's process; the trials are processes of their own);
a trial's sweep opened from the Runs screen shows it read-only, from ``sweep.json`` read again every
second. Either way it reads only :attr:`tui.sweep_session.SweepSession.record`, a copy swapped in
whole after each change, polled :data:`REDRAW` times a second at most (never a call from the
driver's thread). Enter opens the selected trial's run (a running one attached, a finished one
replayed: the app's to do, :class:`SweepScreen.OpenTrial`); p, x, n, + and S are requests to the
driver. Keys come from :data:`tui.keys.SWEEP_KEYS`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_train.core.run.endpoint import probe
from tui_train.core.sweep import record as R
from tui_train.core.sweep.space import Space
from tui_train.tui import format as fmt
from tui_train.tui import keys
from tui_train.tui.screens.confirm_dialog import YES, ConfirmDialog
from tui_train.tui.screens.extend_dialog import ExtendDialog
from tui_train.tui.screens.trial_dialog import TrialDialog
from tui_train.tui.sweep_session import SweepSession
from tui_train.tui.widgets.sweep_plot import SweepPlot, TrialCurve, trial_color

REDRAW = 0.25
"""Seconds between two looks at the session: the screen redraws at most this often, and only what changed."""

CLOCK = 1.0
"""Seconds between two updates of the running trials' times when nothing else changed."""

WATCH_INTERVAL = 1.0
"""Seconds between two reads of a watched sweep's sweep.json (when it changed)."""

MAX_CURVES = 8
"""The most trials drawn at once: the running ones and the best (or, once none runs, the leaders)."""

BEST = "★"
"""Marks the best trial."""

SWATCH = "━━"
"""A trial's line in the legend, in its colour."""

STATUS_STYLES = {"running": "bold green", "queued": "dim", "pruned": "yellow", "stopped": "yellow", "failed": "red",
                 "unsaved": "bold red", "interrupted": "dim"}
"""Trial status -> style of its cell (a second channel only: the text says the status)."""

STATE_STYLES = {"running": "bold green", "stopping": "bold yellow", "completed": "bold", "stopped": "bold yellow",
                "interrupted": "bold yellow", "failed": "bold red"}
"""Sweep state -> style of the header's first word."""


def param_keys(rec: R.SweepRecord) -> list[str]:
    """The parameters, one column each: those of the trials (first seen first), else the space's."""
    found = list(dict.fromkeys(k for t in rec.trials for k in t.params))
    if found:
        return found
    try:
        return Space.from_json(rec.space).keys()
    except (TypeError, ValueError, KeyError, AttributeError):  # a hand-edited sweep.json: no columns rather than no screen
        return []


def param_text(value: object) -> str:
    """A parameter's value as shown: floats to 6 significant digits, anything else as it is."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def trial_cells(t: R.Trial, keys_: list[str], best: R.Trial | None) -> list[Text]:
    """The leaderboard cells of one trial: mark, number, parameters, status, value, epochs, time.
    Every text from the record reaches the table as :func:`tui.format.literal` (habit 23)."""
    params = [fmt.literal(param_text(t.params[k]) if k in t.params else fmt.DASH) for k in keys_]
    return [Text(BEST if t is best else "", style="bold yellow"), Text(str(t.number)), *params,
            fmt.literal(t.status, style=STATUS_STYLES.get(t.status, "")), Text(fmt.num(t.value)),
            Text(str(t.epoch)), Text(fmt.duration(t.seconds))]


def curve_trials(rec: R.SweepRecord) -> list[R.Trial]:
    """The trials drawn: the running ones and the best; once none runs, the leaderboard's first
    with values (at most :data:`MAX_CURVES`)."""
    best = rec.best()
    running = [t for t in rec.trials if t.status == "running"]
    if running:
        shown = running[:MAX_CURVES - 1] + ([best] if best is not None and best not in running else [])
        return shown[:MAX_CURVES]
    return [t for t in rec.leaderboard() if t.values][:MAX_CURVES]


class SweepScreen(Screen[None]):
    """One sweep: its leaderboard, the curves of its running trials, and the keys that steer it."""

    BINDINGS = keys.bindings(keys.SWEEP_KEYS)

    DEFAULT_CSS = """
    SweepScreen { layout: vertical; }
    #sweep-header { height: 1; padding: 0 1; background: $panel; }
    #sweep-table { height: 1fr; min-height: 4; }
    #sweep-lower { height: 1fr; min-height: 6; }
    #sweep-plot { width: 1fr; height: 1fr; }
    #sweep-legend { width: 34; height: 1fr; padding: 0 1; border-left: solid $panel-lighten-2; }
    #sweep-info { height: 1; padding: 0 1; background: $panel; }
    """

    class OpenTrial(Message):
        """Enter on a trial: the app attaches to its run (``live``) or replays it from its files."""

        def __init__(self, run_dir: Path, live: bool) -> None:
            super().__init__()
            self.run_dir = run_dir
            """The trial's run directory."""
            self.live = live
            """Its trainer answers now (probed when Enter was pressed)."""

    def __init__(self, session: SweepSession, *, closable: bool = False) -> None:
        super().__init__()
        self.session = session
        """The sweep shown: driven by this app, or watched (read-only)."""
        self.closable = closable
        """Esc leaves the screen (opened from the Runs screen); the screen ``tui-train sweep`` opens on stays."""
        self.order: list[int] = []
        """The trials' numbers in table order (the leaderboard's)."""
        self.redraws = 0
        """How many times the table was filled from a new record (tests wait on it)."""
        self._columns: tuple[str, ...] = ()
        self._rows: list[tuple[str, list[Text]]] = []
        self._shown_version = -1
        self._last_clock = 0.0
        self._last_poll = 0.0
        self._header = Text()
        self._info = Text()
        self._legend = Text()

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="sweep-header")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="sweep-lower"):
            yield SweepPlot("metric", id="sweep-plot")
            yield Static("", id="sweep-legend")
        yield Static("", id="sweep-info")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> DataTable:
        """The leaderboard."""
        return self.query_one("#sweep-table", DataTable)

    @property
    def plot(self) -> SweepPlot:
        """The curves."""
        return self.query_one("#sweep-plot", SweepPlot)

    def on_mount(self) -> None:
        self.table.focus()
        self.set_interval(REDRAW, self.refresh_view)
        self.refresh_view(force=True)

    def on_screen_resume(self) -> None:
        self.refresh_view(force=True)  # back from a trial's dashboard: the sweep went on meanwhile

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "back":
            return self.closable
        return True

    # -- drawing --------------------------------------------------------------------------------
    def refresh_view(self, force: bool = False) -> None:
        """Redraw what changed since the last look: the table and curves when the record did (or,
        once a second, the running trials' times), the header and the info line when their text did."""
        session, now = self.session, time.monotonic()
        if not session.driving and now - self._last_poll >= WATCH_INTERVAL:
            self._last_poll = now
            session.poll()
        rec = session.record
        if rec is not None:
            ticking = now - self._last_clock >= CLOCK and any(t.status == "running" for t in rec.trials)
            if force or ticking or session.version != self._shown_version:
                self._shown_version, self._last_clock = session.version, now
                self._fill(rec)
                self._curves(rec)
        self._set(self.query_one("#sweep-header", Static), "_header", self.header_text())
        self._set(self.query_one("#sweep-info", Static), "_info", self.info_text())

    def _set(self, widget: Static, attr: str, text: Text) -> None:
        if text != getattr(self, attr):
            setattr(self, attr, text)
            widget.update(text)

    def header_text(self) -> Text:
        """State (not driven here) · trials done/planned · running · method · metric (direction) · folder
        (last: a long path is cut, the state never)."""
        session, rec = self.session, self.session.record
        state = session.state()
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(state.upper(), style=STATE_STYLES.get(state, "bold"))
        if not session.driving:
            text.append(" (not driven here)", style="italic")
        if rec is not None:
            done = sum(t.status in R.DONE for t in rec.trials)
            running = sum(t.status == "running" for t in rec.trials)
            text.append(fmt.printable(f" · {done}/{rec.trials_planned} trials done · {running} running · {rec.method} · "
                                      f"{rec.metric} ({rec.mode})"))
        text.append(fmt.printable(f" · {session.sweep_dir}"))
        return text

    def info_text(self) -> Text:
        """The driver's failure, the selected trial's reason, or the driver's latest line."""
        session = self.session
        if session.error:
            return fmt.literal(session.error, style="red", no_wrap=True, overflow="ellipsis")
        t = self.selected
        if t is not None and t.reason:
            return fmt.literal(f"trial {t.number}: {t.reason}", no_wrap=True, overflow="ellipsis")
        line = session.last_line or ("" if session.driving else
                                     f"read-only, from sweep.json · to drive it: tui-train sweep --resume {session.sweep_dir}")
        return fmt.literal(line, no_wrap=True, overflow="ellipsis")

    def _fill(self, rec: R.SweepRecord) -> None:
        """The leaderboard, best first: cells that changed are updated in place; a new order or new
        trials fill the table again, the cursor staying on its trial."""
        table = self.table
        keys_ = param_keys(rec)
        columns = ("mark", "trial", *(f"param:{k}" for k in keys_), "status", "value", "epoch", "time")
        if columns != self._columns:
            table.clear(columns=True)
            labels = ["", "trial", *keys_, "status", rec.metric, "epoch", "time"]
            for label, key in zip(labels, columns):
                # labels from the record: Text, never markup (a str label is parsed as markup)
                table.add_column(fmt.literal(label), key=key, width=1 if key == "mark" else None)
            self._columns, self._rows = columns, []
        best = rec.best()
        board = rec.leaderboard()
        rows = [(str(t.number), trial_cells(t, keys_, best)) for t in board]
        if [k for k, _ in rows] == [k for k, _ in self._rows]:
            for (key, new), (_, old) in zip(rows, self._rows):
                for column, cell, was in zip(columns, new, old):
                    if cell != was:
                        table.update_cell(key, column, cell, update_width=True)
        else:
            current = self.selected_number
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if current is not None and str(current) in table.rows:
                table.move_cursor(row=table.get_row_index(str(current)))
        self._rows, self.order = rows, [t.number for t in board]
        self.redraws += 1

    def _curves(self, rec: R.SweepRecord) -> None:
        shown = curve_trials(rec)
        plot = self.plot
        plot.set_title(fmt.printable(rec.metric))
        plot.set_curves([TrialCurve(t.number, tuple(v if isinstance(v, int | float) and math.isfinite(v) else None
                                                      for v in t.values)) for t in shown])
        best = rec.best()
        legend = Text(no_wrap=True, overflow="ellipsis")
        for i, t in enumerate(shown):
            if i:
                legend.append("\n")
            legend.append(f"{SWATCH} ", style=Style(color=f"color({trial_color(t.number)})", bold=True))
            legend.append(f"{t.number}{' ' + BEST if t is best else ''} ", style="bold")
            legend.append(fmt.printable(" ".join(f"{k}={param_text(v)}" for k, v in t.params.items())))
        if not shown:
            legend.append("no trial has measured an epoch yet", style="dim")
        self._set(self.query_one("#sweep-legend", Static), "_legend", legend)

    # -- the selection --------------------------------------------------------------------------
    @property
    def selected_number(self) -> int | None:
        """The number of the trial under the cursor (None when the table is empty)."""
        table = self.table
        if not self.order or table.row_count == 0:
            return None
        return self.order[min(max(table.cursor_row, 0), len(self.order) - 1)]

    @property
    def selected(self) -> R.Trial | None:
        """The trial under the cursor, as the latest record has it."""
        number, rec = self.selected_number, self.session.record
        if number is None or rec is None:
            return None
        return next((t for t in rec.trials if t.number == number), None)

    @on(DataTable.RowHighlighted, "#sweep-table")
    def _highlighted(self) -> None:
        self._set(self.query_one("#sweep-info", Static), "_info", self.info_text())

    # -- keys -----------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#sweep-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_trial()

    def action_open_trial(self) -> None:
        """Enter: attach to a running trial, replay a finished one (the app's to do: :class:`OpenTrial`)."""
        t = self.selected
        if t is None:
            return
        if not t.run_dir:
            self.notify(f"trial {t.number} has not started ({fmt.printable(t.status)})", severity="warning", markup=False)
            return
        run_dir = Path(t.run_dir)
        if not run_dir.is_dir():
            self.notify(fmt.printable(f"trial {t.number}: {run_dir} is gone"), severity="warning", markup=False)
            return
        # probed now: a trial recorded running may have ended since the last look
        self.post_message(self.OpenTrial(run_dir, live=probe(run_dir)[0] is not None))

    def _running_trial(self, verb: str) -> R.Trial | None:
        """The selected trial when it is running and the driver takes requests; else None and a notice."""
        t = self.selected
        if t is None:
            return None
        refused = self.session.refusal()
        if refused:
            self.notify(fmt.printable(refused), severity="warning", markup=False)
            return None
        if t.status != "running":
            self.notify(fmt.printable(f"trial {t.number} is {t.status}: only a running trial can be {verb}"),
                        severity="warning", markup=False)
            return None
        return t

    def action_prune_trial(self) -> None:
        """p: prune the selected running trial (Stop: it validates, saves and ends; recorded pruned)."""
        t = self._running_trial("pruned")
        if t is not None and not self._refused(self.session.request("prune", t.number)):
            self.notify(f"trial {t.number}: pruning (it validates, saves and ends)")

    def action_stop_trial(self) -> None:
        """x: stop the selected running trial (it validates, saves and ends; recorded stopped)."""
        t = self._running_trial("stopped")
        if t is not None and not self._refused(self.session.request("stop", t.number)):
            self.notify(f"trial {t.number}: stopping (it validates, saves and ends)")

    def action_add_trial(self) -> None:
        """n: one more trial, its values edited from the selected trial's and checked against the preset."""
        session, rec = self.session, self.session.record
        if self._refused(session.refusal()) or rec is None:
            return
        t = self.selected
        params = dict(t.params) if t is not None else dict.fromkeys(param_keys(rec), "")

        def answered(chosen: dict | None) -> None:
            if chosen is not None and not self._refused(session.request("add", params=chosen)):
                self.notify(fmt.printable("trial queued: " + " ".join(f"{k}={v}" for k, v in chosen.items())), markup=False)

        self.app.push_screen(TrialDialog(params, session.check_params, t.number if t is not None else None), answered)

    def action_extend_sweep(self) -> None:
        """+: plan N more trials (a random or Optuna sweep)."""
        session, rec = self.session, self.session.record
        if self._refused(session.refusal()) or rec is None:
            return
        if rec.method == "grid":
            self.notify("a grid sweep runs each combination once: n queues a trial with values of your own",
                        severity="warning")
            return

        def answered(count: int | None) -> None:
            if count is not None and not self._refused(session.request("extend", count=count)):
                self.notify(f"{fmt.count(count, 'more trial')} planned")

        self.app.push_screen(ExtendDialog(rec.method, rec.trials_planned), answered)

    def action_stop_sweep(self) -> None:
        """S: stop the sweep after asking (its running trials save and end interrupted)."""
        session = self.session
        if self._refused(session.refusal()):
            return

        def answered(choice: str | None) -> None:
            if choice == YES and not self._refused(session.request_stop()):
                self.notify("stopping the sweep: its running trials save and end")

        self.app.push_screen(ConfirmDialog(
            "Stop the sweep?", f"Its running trials save a checkpoint and end interrupted, and no new trial starts; "
            f"tui-train sweep --resume {session.sweep_dir} continues it. This screen stays open.", yes="Stop sweep"),
            answered)

    def _refused(self, why: str) -> bool:
        if why:
            self.notify(fmt.printable(why), severity="warning", markup=False)
        return bool(why)

    def action_back(self) -> None:
        """Esc (a sweep opened from the Runs screen): back to the runs."""
        if self.closable:
            self.dismiss(None)
