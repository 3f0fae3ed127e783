"""The LR range test's screen (L): the smoothed loss against the learning rate on a log axis, the
suggestion marked; Enter dismisses with the suggestion (the caller applies it), Esc with None.

It opens while the sweep runs ("running…") and is handed the curve (:meth:`LrFindScreen.show_curve`)
or the reason there is none (:meth:`LrFindScreen.show_error`): in the launcher from a subprocess
(:func:`core.live.spawn.run_lr_find`), on a paused run's dashboard from the trainer's
LearningRateFound event.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static
from textual_plotext import PlotextPlot

from tui_train.core.lr_find import Curve, describe
from tui_train.tui import format as fmt
from tui_train.tui.widgets.metric_plot import y_ticks


def decade_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks at the powers of ten between log10 values ``lo`` and ``hi`` (every other one when
    there are many), labelled 1e-7 .. 10; a range within one decade gets its two ends."""
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    if last - first < 1:
        return [lo, hi], [f"{10.0 ** lo:.2g}", f"{10.0 ** hi:.2g}"]
    step = 1 if last - first <= 6 else 2
    ticks = list(range(first, last + 1, step))
    return [float(t) for t in ticks], [f"{10.0 ** t:g}" if -3 <= t <= 3 else f"1e{t}" for t in ticks]


class LrCurvePlot(PlotextPlot):
    """Smoothed loss against log10(lr), with the suggestion as a vertical line and a dot."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.curve: Curve | None = None
        """The curve drawn (None: nothing yet)."""

    def set_curve(self, curve: Curve) -> None:
        """Draw ``curve``."""
        self.curve = curve
        plt = self.plt
        plt.clear_figure()
        xs = [math.log10(v) for v in curve.lrs]
        ys = list(curve.losses)
        if len(xs) < 2:
            plt.title("too few points to draw")
            self.refresh()
            return
        plt.plot(xs, ys, marker="braille", color="blue")
        plt.xticks(*decade_ticks(min(xs), max(xs)))
        y_lo, y_hi = min(ys), max(ys)
        ticks, labels, unit = y_ticks(y_lo, y_hi, 5) if y_hi > y_lo else ([y_lo], [f"{y_lo:.4g}"], "")
        plt.yticks(ticks, labels)
        plt.xlabel("learning rate (log)")
        plt.title("smoothed loss" + (f" {unit}" if unit else ""))
        best = curve.suggestion
        if best is not None and best > 0:
            at = math.log10(best)
            loss = ys[min(range(len(xs)), key=lambda i: abs(xs[i] - at))]
            plt.vline(at, "red")
            plt.scatter([at], [loss], marker="●", color="red")
            plt.title(f"smoothed loss{f' {unit}' if unit else ''} · suggested {fmt.lr(best)}")
        self.refresh()


class LrFindScreen(ModalScreen[float | None]):
    """The curve and the suggestions; Enter: the suggestion, Esc: None."""

    BINDINGS = [("enter", "apply", "Use suggestion"), ("escape", "cancel", "Cancel")]

    def __init__(self, where: str, applies_to: str) -> None:
        super().__init__()
        self.where = where
        """What is swept (a preset, a run), for the title."""
        self.applies_to = applies_to
        """What Enter does with the suggestion, in words (the help line)."""
        self.curve: Curve | None = None
        """The curve once it has arrived."""
        self.error = ""
        """Why there is no curve ('' when none is known)."""
        self._mounted = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog lr-find"):
            yield Label(fmt.literal(f"LR range test · {self.where}"), classes="dialog-title")
            yield LrCurvePlot(id="lr-curve")
            yield Static(Text("sweeping the learning rate on a copy of the model…", style="italic"), id="lr-find-summary")
            yield Static(f"Enter: {self.applies_to} · Esc: cancel", classes="dialog-help", id="lr-find-help")

    def on_mount(self) -> None:
        self._mounted = True
        self._show()  # what arrived before the screen was mounted

    def show_curve(self, curve: Curve) -> None:
        """The sweep is done: draw it and say the suggestions."""
        self.curve, self.error = curve, ""
        self._show()

    def show_error(self, message: str) -> None:
        """No curve: say why (Esc closes)."""
        self.error = message
        self._show()

    def _show(self) -> None:
        if not self._mounted:
            return
        summary = self.query_one("#lr-find-summary", Static)
        if self.error:
            summary.update(fmt.literal(self.error, style="bold red"))
        elif self.curve is not None:
            curve = self.curve
            self.query_one(LrCurvePlot).set_curve(curve)
            text = describe(curve.suggestions, len(curve.lrs), curve.stopped)
            summary.update(fmt.literal(text, style="bold" if curve.suggestion else "yellow"))

    def action_apply(self) -> None:
        """Enter: dismiss with the suggestion (nothing to apply yet: say so)."""
        if self.curve is not None and self.curve.suggestion is not None:
            self.dismiss(self.curve.suggestion)
        else:
            self.notify(fmt.printable(self.error) or "no suggestion yet", severity="warning", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)
