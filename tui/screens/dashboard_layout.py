"""What the dashboard's t and g change: which lower panel and which third plot are shown.

Both are classes on the dashboard screen that app.tcss styles (with its width breakpoints
``-narrow``, ``-wide``, ``-wider``); nothing here touches a widget, so a key changes the layout
and never the data shown.
"""

from __future__ import annotations

from textual.screen import Screen

DETAILS = ("", "-show-table", "-show-system")
"""What the lower panel shows on a small terminal (t cycles): the event log, the epoch table, the
system panel. From 120 columns the epochs are always shown and t switches the log and the system
panel; from 160 columns all three are."""

SHOW_SCALARS = "-scalars"
"""The screen's class once a loop's own series came (Scalars): their plot is shown, beside the
others from 120 columns, in the LR plot's place below (app.tcss)."""

SHOW_LR = "-show-lr"
"""The screen's class under 120 columns when g brought the LR plot back in place of the loop's series."""


def cycle_details(screen: Screen) -> None:
    """t: the next lower panel of :data:`DETAILS` (wide: the log or the system panel, the epochs are always there)."""
    shown = next((c for c in DETAILS if c and screen.has_class(c)), "")
    cycle = ("", "-show-system") if screen.has_class("-wide") else DETAILS
    following = cycle[(cycle.index(shown) + 1) % len(cycle)] if shown in cycle else ""
    screen.remove_class(*(c for c in DETAILS if c))
    if following:
        screen.add_class(following)


def toggle_plot(screen: Screen) -> None:
    """g: under 120 columns, the LR plot or the loop's own series in the third place (:data:`SHOW_LR`);
    otherwise a notice says why nothing changes."""
    if not screen.has_class(SHOW_SCALARS):
        screen.app.notify("this run logs no series of its own (run.log names other than loss, accuracy, val_* "
                          "and epoch): the learning rate stays", severity="information", markup=False)
        return
    if not screen.has_class("-narrow"):
        screen.app.notify("from 120 columns the learning rate and your series are both shown", markup=False)
        return
    screen.toggle_class(SHOW_LR)
