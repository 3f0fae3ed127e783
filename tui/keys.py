"""Every key of the app and the dashboard, in one table.

The dashboard's and the app's ``BINDINGS``, the command palette (:func:`palette_commands`)
and the help screen's rows are all built from these entries, so a key, its footer label, its
palette entry and its help line cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_train.core import limits


@dataclass(frozen=True)
class KeyAction:
    """One key bound to one action, and how each place names it."""

    key: str
    """Textual's key name ('space', 'left_square_bracket')."""
    action: str
    """The action it runs (``action_<name>`` on the screen or the app)."""
    footer: str
    """Footer label (the binding's description)."""
    help: str = ""
    """The help screen's text ('' when another entry's row covers it)."""
    title: str = ""
    """Command palette title ('' when not in the palette)."""
    summary: str = ""
    """Command palette help; the key is appended, e.g. 'Save a checkpoint now (s)'."""
    needs_run: bool | None = None
    """True: only while a run is active; False: only when none is; None: always."""
    show: bool = True
    """Shown in the footer."""
    key_display: str | None = None
    """How the key is written, when not its name ('[' for left_square_bracket)."""
    help_key: str = ""
    """The help screen's key column, when not the key as displayed."""
    priority: bool = False
    """A priority binding (checked before the focused widget's)."""
    needs_detachable: bool = False
    """Only when the run can be left going (the trainer is ``detachable``: a process of its own)."""

    @property
    def shown_key(self) -> str:
        """The key as a person reads it."""
        return self.key_display or self.key

    @property
    def palette_help(self) -> str:
        """The palette's help line, naming the key."""
        return f"{self.summary} ({self.shown_key})"


DASHBOARD_KEYS: tuple[KeyAction, ...] = (
    KeyAction("space", "toggle_pause", "Pause", "pause / resume (the badge changes when the engine reports it)",
              "Pause / resume training", "Pause or resume", needs_run=True),
    KeyAction("l", "set_lr", "LR",
              f"set the base learning rate (dialog: 3e-4, 0.001; must be {limits.LIMITS['lr'].allowed})",
              "Set learning rate", "Type a new base learning rate", needs_run=True),
    KeyAction("left_square_bracket", "halve_lr", "÷2", "halve / double the learning rate",
              "Halve learning rate", "Multiply the base LR by 0.5", needs_run=True, key_display="[", help_key="[  /  ]"),
    KeyAction("right_square_bracket", "double_lr", "×2", "",
              "Double learning rate", "Multiply the base LR by 2", needs_run=True, key_display="]"),
    KeyAction("L", "find_lr", "LR find",
              "LR range test of the paused run (a sweep on a copy: the run is untouched); Enter sets the suggestion as the base LR",
              "LR range test", "Sweep the LR on a copy of the paused model", needs_run=True, show=False),
    KeyAction("h", "edit_hyperparameters", "Hyper", "change momentum, weight decay, gradient clip or early-stopping patience",
              "Edit hyperparameters", "Momentum, weight decay, grad clip, patience", needs_run=True),
    KeyAction("E", "set_length", "Length", "change the run's length (epochs or max_steps; never shorter than what is done) "
              "and what the LR schedule does: stretch its rest over the new length, or keep it", "Change the run's length",
              "Epochs or max_steps, with the LR schedule stretched or kept", needs_run=True, show=False),
    KeyAction("p", "breakpoints", "Breakpoints", "breakpoints: pause at epoch=K, step=N, next-epoch, plateau=K or a metric "
              "condition (val_accuracy >= 0.98), once; list and clear them (the header shows the pending ones)",
              "Breakpoints", "Pause the run at an epoch, a step, a plateau or a metric", needs_run=True, show=False),
    KeyAction("s", "save_checkpoint", "Save", "save a checkpoint now (the event log shows its path)",
              "Save checkpoint", "Save a checkpoint now", needs_run=True),
    KeyAction("v", "validate", "Val", "validate now", "Validate now", "Run validation now", needs_run=True),
    KeyAction("N", "edit_notes", "Notes", "the run's tags and free-text note (kept in its notes.json; the Runs screen "
              "shows and filters them: tag=NAME)", "Tags and note", "Edit the run's tags and note", show=False),
    KeyAction("e", "early_stop", "Stop", "early stop: finish the step, evaluate, save, end as EARLY STOPPED (asks first)",
              "Early stop", "Evaluate, save and end as early_stopped", needs_run=True),
    KeyAction("b", "rollback", "Roll back",
              "roll back: restore the last good weights (snapshot at most a second old), halve the LR",
              "Roll back", "Restore the last good weights and halve the LR", needs_run=True, show=False),
    KeyAction("c", "confusion", "Confusion", "the latest validation's confusion matrix (counts, recall) and the "
              "misclassified samples drawn in the terminal (classification)", "Confusion matrix and mistakes",
              "Confusion matrix and misclassified samples",
              # not in the footer: an 80-column footer of a live run is full; the event log names c at each validation
              show=False),
    KeyAction("t", "toggle_details", "Log/Table",
              "switch the lower panel between the event log, the epoch table and the system panel (small terminals)",
              "Toggle log / epoch table / system", "Small terminals: switch the lower panel", show=False),
    KeyAction("g", "toggle_plot", "LR/Series",
              "switch the third plot between the learning rate and your loop's own series (under 120 columns; "
              "wider, both are shown)", "Toggle LR / your series", "Small terminals: the LR plot or your loop's series",
              show=False),
    KeyAction("d", "detach", "Detach", "detach: leave the run training; `tui-train attach` comes back",
              "Detach", "Leave the run training; tui-train attach comes back", needs_run=True, needs_detachable=True),
    KeyAction("f", "fork", "Fork", "fork a paused run: a new run from this step with changes (e.g. optim.lr=3e-4); "
              "this one stays paused, attachable", "Fork run", "A new run from this step, with changes", needs_run=True,
              needs_detachable=True, show=False),
    KeyAction("n", "new_run", "New run", "new run: back to the launcher (after the run ended)",
              "New run", "Back to the launcher", needs_run=False),
)
"""The dashboard's keys, in footer order."""

APP_KEYS: tuple[KeyAction, ...] = (
    KeyAction("q", "request_quit", "Quit", "quit (while a run is active it asks: stop and save, detach, or cancel)"),
    # Ctrl+C raises no SIGINT in a Textual app: it asks like q
    # (tests/functional/test_dashboard_fake.py::test_ctrl_c_asks_like_q_instead_of_killing_the_run)
    KeyAction("ctrl+c", "request_quit", "Quit", show=False, priority=True),
    KeyAction("question_mark", "help", "Help", "this help", "Help: keys", "Show every key binding", key_display="?"),
)
"""The app's own keys (on every screen)."""

LAUNCHER_KEYS: tuple[KeyAction, ...] = (
    KeyAction("r", "runs", "Runs", "every run under the runs folder, past and live: compare, replay, delete",
              help_key="launcher: r"),
    KeyAction("L", "find_lr", "LR find", "LR range test of the selected preset with the form's edits (a process of its "
              "own); Enter puts the suggestion in the learning rate field", help_key="launcher: L"),
)
"""The launcher's keys from this table (its form and list keys are in :data:`OTHER_KEYS`)."""

RUNS_KEYS: tuple[KeyAction, ...] = (
    # priority: before the table's own Enter (hidden), so that the footer names it; in the filter it applies the filter
    KeyAction("enter", "open_run", "Open", "open the run: a live one attached, a finished one replayed from its files",
              help_key="runs: enter", priority=True),
    KeyAction("space", "toggle_mark", "Mark", "mark / unmark the run (for v and c)", help_key="runs: space"),
    KeyAction("v", "overlay", "Curves", "the marked runs' loss and accuracy curves on shared axes", help_key="runs: v"),
    KeyAction("c", "config_diff", "Diff", "the config keys whose values differ between the marked runs", help_key="runs: c"),
    KeyAction("o", "next_sort", "Sort", "sort by the next column (or click a header; O or a second click reverses)",
              help_key="runs: o  /  O"),
    KeyAction("O", "reverse_sort", "Reverse", "", show=False),
    KeyAction("g", "group_by_sweep", "Group", "group the rows by sweep: a heading per sweep, the runs that are no trial "
              "last (again: ungrouped)", help_key="runs: g", show=False),  # g and N: not in an 80-column footer
    KeyAction("w", "open_sweep", "Sweep", "the trial's sweep (or the heading's) on the Sweep screen", help_key="runs: w"),
    KeyAction("N", "edit_notes", "Note", "edit the run's tags and note (its notes.json; a live run or a finished one)",
              help_key="runs: N", show=False),
    KeyAction("x", "delete_run", "Delete", "delete the run's folder (asks first; never a live run)", help_key="runs: x / delete"),
    KeyAction("delete", "delete_run", "Delete", "", show=False),
    KeyAction("slash", "focus_filter", "Filter", "filter (or just type): comparisons such as lr>=1e-3 optimizer=adam "
              "sweep=NAME tag=baseline optim.lr<0.1, and words somewhere in the row; all must hold",
              key_display="/", help_key="runs: /"),
    KeyAction("escape", "back", "Back", "back (in the filter: clear it)", help_key="runs: esc", show=False),
)
"""The Runs screen's keys (``tui-train runs``, or r in the launcher)."""

OVERLAY_KEYS: tuple[KeyAction, ...] = (
    KeyAction("x", "cycle_axis", "x axis", "x axis: step / epoch / relative time", help_key="curves: x"),
    KeyAction("s", "toggle_smoothing", "Smooth", "smoothing on / off (time-weighted, debiased EMA, as TensorBoard's)",
              help_key="curves: s"),
    KeyAction("l", "toggle_log_y", "Log y", "the loss plot's y axis: linear / log (values <= 0 are left out and counted "
              "in its title)", help_key="curves: l"),
    KeyAction("escape", "back", "Back", "back to the runs", help_key="curves: esc"),
)
"""The keys of the marked runs' curves (v on the Runs screen)."""

CONFUSION_KEYS: tuple[KeyAction, ...] = (
    KeyAction("tab", "focus_next", "Grid/Gallery", "the confusion screen: tab moves between the grid and the gallery, "
              "arrows scroll the focused one (many classes)", help_key="confusion: tab"),
    KeyAction("escape", "back", "Back", "back to the dashboard", help_key="confusion: esc"),
)
"""The keys of the confusion matrix screen (c on the dashboard)."""

REPLAY_KEYS: tuple[KeyAction, ...] = (
    KeyAction("escape", "back", "Runs", "a replayed run: back to the runs", help_key="replay: esc"),
)
"""The keys a replayed run's dashboard adds to :data:`DASHBOARD_KEYS`."""

SWEEP_KEYS: tuple[KeyAction, ...] = (
    # priority: before the table's own Enter (hidden), so that the footer names it
    KeyAction("enter", "open_trial", "Open", "open the trial's run: a running one attached (Esc or q comes back, the "
              "sweep goes on), a finished one replayed", "Open trial", "Attach to the trial, or replay it",
              help_key="sweep: enter", priority=True),
    KeyAction("p", "prune_trial", "Prune", "prune the selected running trial (it validates, saves and ends pruned)",
              "Prune trial", "Stop the selected trial as pruned", help_key="sweep: p"),
    KeyAction("x", "stop_trial", "Stop trial", "stop the selected running trial (it validates, saves and ends stopped)",
              "Stop trial", "Stop the selected trial", help_key="sweep: x"),
    KeyAction("n", "add_trial", "New trial", "one more trial with values of your own (prefilled with the selected "
              "trial's; each checked against the preset before it is queued)", "New trial",
              "Queue a trial with edited values", help_key="sweep: n"),
    KeyAction("plus", "extend_sweep", "More", "extend a random or Optuna sweep by N trials", "Extend sweep",
              "Plan N more trials", key_display="+", help_key="sweep: +"),
    KeyAction("S", "stop_sweep", "Stop sweep", "stop the sweep (asks first): its running trials save and end "
              "interrupted; tui-train sweep --resume continues", "Stop sweep", "Stop every trial and the sweep",
              help_key="sweep: S"),
    KeyAction("q", "app.request_quit", "Quit", "quit (while the sweep runs it asks: stop it, or leave it: its trials "
              "train on as processes of their own, tui-train sweep --resume continues)", help_key="sweep: q"),
    KeyAction("escape", "back", "Back", "a sweep opened from the Runs screen: back to the runs", help_key="sweep: esc",
              show=False),
)
"""The Sweep screen's keys (``tui-train sweep`` on a terminal, or a trial's sweep from the Runs screen)."""

TRIAL_KEYS: tuple[KeyAction, ...] = (
    KeyAction("escape", "back", "Sweep", "a trial opened from the Sweep screen: back to the sweep (the trial trains on)",
              help_key="trial: esc / q"),
    KeyAction("q", "back", "Sweep", "", show=False),
)
"""The keys a trial's dashboard (opened from the Sweep screen) adds to :data:`DASHBOARD_KEYS`."""

OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("ctrl+p", "command palette: the same actions by name"),
    ("tab / shift+tab", "move the focus; arrows scroll the focused table or log"),
    ("launcher: ↑ ↓ enter", "pick a preset, edit lr / batch size / epochs / optimizer, Enter starts"),
    ("launcher: a", "attach to a run that is training (shown when there is one)"),
)
"""Keys the help screen lists that Textual or the launcher's widgets provide."""


def bindings(keys: tuple[KeyAction, ...]) -> list[Binding]:
    """Textual bindings for ``keys`` (a screen's or the app's ``BINDINGS``)."""
    return [Binding(k.key, k.action, k.footer, show=k.show, key_display=k.key_display, priority=k.priority) for k in keys]


def help_rows() -> list[tuple[str, str]]:
    """(key, what it does) for the help screen: the dashboard's keys, the app's, the others, then the
    launcher's, the Runs screen's, its curves', the confusion screen's, a replayed run's, the Sweep
    screen's and a trial's dashboard's."""
    rows = [(k.help_key or k.shown_key, k.help) for k in (*DASHBOARD_KEYS, *APP_KEYS) if k.help]
    rows += list(OTHER_KEYS)
    others = (*LAUNCHER_KEYS, *RUNS_KEYS, *OVERLAY_KEYS, *CONFUSION_KEYS, *REPLAY_KEYS, *SWEEP_KEYS, *TRIAL_KEYS)
    return rows + [(k.help_key or k.shown_key, k.help) for k in others if k.help]


def needs_run(keys: tuple[KeyAction, ...] = DASHBOARD_KEYS) -> dict[str, bool | None]:
    """Action name -> whether it needs an active run (see :attr:`KeyAction.needs_run`)."""
    return {k.action: k.needs_run for k in keys}


def needs_detachable(keys: tuple[KeyAction, ...] = DASHBOARD_KEYS) -> frozenset[str]:
    """Actions offered only when the run can be left going (see :attr:`KeyAction.needs_detachable`)."""
    return frozenset(k.action for k in keys if k.needs_detachable)


def palette_entries(run_active: bool, keys: tuple[KeyAction, ...] = DASHBOARD_KEYS) -> list[KeyAction]:
    """The entries the command palette offers now: those for this state first, then those for any."""
    fitting = [k for k in keys if k.title and k.needs_run is not None and k.needs_run == run_active]
    return fitting + [k for k in keys if k.title and k.needs_run is None]


def palette_commands(run_active: bool, app: object, dashboard: Screen | None = None) -> Iterator[SystemCommand]:
    """The command palette's entries for the app's keys and, when it is shown, those of the
    ``dashboard``'s keys that apply now (``check_action`` not False: e.g. Detach only when the
    run can go on); each runs the action of ``app`` or ``dashboard`` its key runs."""
    for key in palette_entries(run_active, APP_KEYS):
        yield SystemCommand(key.title, key.palette_help, getattr(app, f"action_{key.action}"))
    if dashboard is not None:
        for key in palette_entries(run_active):
            if dashboard.check_action(key.action, ()) is not False:
                yield SystemCommand(key.title, key.palette_help, getattr(dashboard, f"action_{key.action}"))


def screen_commands(keys: tuple[KeyAction, ...], screen: Screen) -> Iterator[SystemCommand]:
    """The command palette's entries for a screen's own keys (those with a title and whose action
    ``screen.check_action`` does not hide); each runs the action its key runs."""
    for key in keys:
        if key.title and screen.check_action(key.action, ()) is not False:
            yield SystemCommand(key.title, key.palette_help, getattr(screen, f"action_{key.action}"))
