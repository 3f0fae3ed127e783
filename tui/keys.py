"""Every key of the app and the dashboard, in one table.

The dashboard's and the app's ``BINDINGS``, the command palette (``TrainApp.get_system_commands``)
and the help screen's rows are all built from these entries, so a key, its footer label, its
palette entry and its help line cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from core import limits


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
    KeyAction("h", "edit_hyperparameters", "Hyper", "change momentum, weight decay, gradient clip or early-stopping patience",
              "Edit hyperparameters", "Momentum, weight decay, grad clip, patience", needs_run=True),
    KeyAction("s", "save_checkpoint", "Save", "save a checkpoint now (the event log shows its path)",
              "Save checkpoint", "Save a checkpoint now", needs_run=True),
    KeyAction("v", "validate", "Val", "validate now", "Validate now", "Run validation now", needs_run=True),
    KeyAction("e", "early_stop", "Stop", "early stop: finish the step, evaluate, save, end as EARLY STOPPED (asks first)",
              "Early stop", "Evaluate, save and end as early_stopped", needs_run=True),
    KeyAction("b", "rollback", "Roll back",
              "roll back: restore the last good weights (snapshot at most a second old), halve the LR",
              "Roll back", "Restore the last good weights and halve the LR", needs_run=True, show=False),
    KeyAction("t", "toggle_details", "Log/Table",
              "switch the lower panel between the event log and the epoch table (small terminals)",
              "Toggle log / epoch table", "Small terminals: switch the lower panel", show=False),
    KeyAction("d", "detach", "Detach", "detach: leave the run training; `tui-train attach` comes back",
              "Detach", "Leave the run training; tui-train attach comes back", needs_run=True, needs_detachable=True),
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
    """(key, what it does) for the help screen: the dashboard's keys, the app's, then the others."""
    rows = [(k.help_key or k.shown_key, k.help) for k in (*DASHBOARD_KEYS, *APP_KEYS) if k.help]
    return rows + list(OTHER_KEYS)


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
