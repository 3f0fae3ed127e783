"""A trial's dashboard opened from the Sweep screen: Esc or q goes back to the sweep.

A running trial is attached (exactly ``tui-train attach``'s dashboard: every key steers it) and a
finished one replayed from its files; going back leaves a running trial training (the app closes
only this viewer's connection) and the sweep goes on meanwhile. A new run (n) or a fork (f) from
here would leave the sweep's screen behind: they are hidden (``tui-train attach RUN_DIR`` forks).
"""

from __future__ import annotations

from textual.message import Message

from tui_train.tui import keys
from tui_train.tui.screens.dashboard_screen import DashboardScreen
from tui_train.tui.screens.runs_screen import ReplayDashboard

HIDDEN = frozenset({"new_run", "fork"})
"""Dashboard actions a trial's dashboard does not offer (they would leave the sweep's screen)."""


class TrialDashboard(DashboardScreen):
    """A running trial, attached; Esc, q or d: back to the sweep (the trial trains on)."""

    BINDINGS = keys.bindings(keys.TRIAL_KEYS)

    class Closed(Message):
        """Esc, q or d on a trial's dashboard: the app leaves the trial (it trains on) and shows the sweep."""

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in HIDDEN:
            return False
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Esc or q: back to the sweep (the app's to do: :class:`Closed`)."""
        self.post_message(self.Closed())

    def action_detach(self) -> None:
        """d: leave the trial training, as Esc does (it is the sweep's, which goes on)."""
        self.action_back()


class TrialReplay(ReplayDashboard):
    """A finished trial, replayed from its files; Esc or q: back to the sweep."""

    BINDINGS = keys.bindings(keys.TRIAL_KEYS)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in HIDDEN:
            return False
        return super().check_action(action, parameters)
