"""The dashboard: header, progress, plots, hyperparameters, epoch table, event log, footer.

Everything it shows comes from engine events routed here by the app (``apply``); its key
actions only hand commands to the ``submit`` the app injects (STYLE.md habit 9). The app tells
it whether a run is active and whether it can be left going
(:meth:`DashboardScreen.set_run_active`). An attached dashboard is fed the run's history first,
then the live events, all through ``apply``: what it shows is the state the events end in.
The plots are a :class:`tui.widgets.run_plots.RunPlots` (a loop's own series among them, shown once
they come); the dialogs its keys open are a
:class:`tui.screens.run_dialogs.RunDialogs`; the question a non-finite pause asks is a
:class:`tui.screens.nonfinite_dialog.NonFinitePrompt`; its bounded redraw rates are a :class:`Redraws`;
what t and g change is :mod:`tui.screens.dashboard_layout`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from tui_train.core import commands as C
from tui_train.core import events as E
from tui_train.core.config import RunConfig
from tui_train.core.status import not_saved_text
from tui_train.tui import keys
from tui_train.tui.format import printable
from tui_train.tui.screens.dashboard_layout import SHOW_SCALARS, cycle_details, toggle_plot
from tui_train.tui.screens.nonfinite_dialog import NonFinitePrompt
from tui_train.tui.screens.run_dialogs import RunDialogs
from tui_train.tui.series import is_finite
from tui_train.tui.widgets.epoch_table import EpochTable
from tui_train.tui.widgets.event_log import EventLog
from tui_train.tui.widgets.hyperparameter_panel import HyperparameterPanel
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.run_header import RunHeader
from tui_train.tui.widgets.run_plots import RunPlots
from tui_train.tui.widgets.run_progress import RunProgress
from tui_train.tui.widgets.system_panel import SystemPanel

NEEDS_RUN = keys.needs_run(keys.DASHBOARD_KEYS)
"""Action -> True (needs an active run), False (needs none) or None (always), from :mod:`tui.keys`;
an action that does not apply now is hidden in the footer."""

NEEDS_DETACHABLE = keys.needs_detachable(keys.DASHBOARD_KEYS)
"""Actions hidden unless the trainer is detachable (d), from :mod:`tui.keys`."""

PANEL_INTERVAL = 1.0
"""Seconds between two updates of the progress lines and the current LR (a bounded rate)."""

MAX_PACE = 8
"""The most a dashboard stretches its redraw intervals when several viewers share the run."""

NOT_SAVED_TIMEOUT = 24 * 3600.0
"""Seconds the notification of a run that could not write a checkpoint stays up (until dismissed)."""

FLUSH_FIRST = (E.EpochMetrics, E.TestMetrics)
"""Events that show the latest step's progress first (the epoch's end after its last step)."""


class Redraws:
    """The dashboard's bounded redraw rates: the latest step's progress and current LR shown at most
    PANEL_INTERVAL × :attr:`pace` apart (only the latest: :attr:`latest_step`), and the paced
    widgets' own intervals (plots, table, log) stretched by :attr:`pace`."""

    def __init__(self) -> None:
        self.pace = 1
        """Redraw intervals are multiplied by this: the number of viewers attached (at most
        MAX_PACE), so that N dashboards on one machine cost about what one does. Keys, dialogs
        and acknowledgements are not paced."""
        self.latest_step: E.StepMetrics | None = None
        """The latest step not shown yet (progress and panel show only the latest)."""
        self._base_intervals: list[float] | None = None  # the paced widgets' own, before pacing
        self._last_shown = 0.0

    def set_pace(self, viewers: int, widgets: tuple) -> None:
        """Pace ``widgets`` (each with a ``min_interval``) for ``viewers`` dashboards attached to the run."""
        pace = max(1, min(MAX_PACE, int(viewers)))
        if pace == self.pace:
            return
        if self._base_intervals is None:
            self._base_intervals = [w.min_interval for w in widgets]
        for widget, base in zip(widgets, self._base_intervals):
            widget.min_interval = base * pace
        self.pace = pace

    def step_due(self, force: bool = False) -> E.StepMetrics | None:
        """The latest step, taken, when it is to be shown now (``force``, or PANEL_INTERVAL × pace
        after the last shown); else None."""
        ev = self.latest_step
        now = time.monotonic()
        if ev is None or not (force or now - self._last_shown >= PANEL_INTERVAL * self.pace):
            return None
        self.latest_step, self._last_shown = None, now
        return ev


class DashboardScreen(Screen):
    """The live view of one run."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide"), (160, "-wider")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    BINDINGS = keys.bindings(keys.DASHBOARD_KEYS)

    ASKS_ON_NONFINITE = True
    """A non-finite pause the run is still in asks what to do (NonFiniteDialog); a replay's does not."""

    class NewRunRequested(Message):
        """n: back to the launcher for a new run (the app decides whether it may)."""

    class DetachRequested(Message):
        """d: leave the run training and quit (the app detaches)."""

    class ForkRequested(Message):
        """f: fork the paused run (the app asks for the changes and starts the fork)."""

    def __init__(self, preset: str, config: RunConfig | None = None, *, submit: Callable[[C.Command], object],
                 attached: bool = False) -> None:
        super().__init__()
        self.submit_command = submit
        """Where commands go, at once: the app's ``submit``, injected. Not a message: a message waits
        behind the repaint the key press caused (bench (e) measured key-to-acknowledgement p50
        51 ms / p99 232 ms for an LR change that way, against 18 / 25 ms with the call)."""
        self.preset = preset
        """Preset name shown until RunStarted arrives."""
        self.config = config
        """The run's config (for the panel before RunStarted)."""
        self.attached = attached
        """Attached to a run already training (its history arrives first)."""
        self.run_task = "classification"
        """From RunStarted."""
        self.status = "starting"
        """Last status the engine reported (what the badge shows)."""
        self.step = 0
        """Latest step seen in any event."""
        self.base_lr: float | None = config.optim.lr if config else None
        """Base LR as last acknowledged by the engine."""
        self.hyperparameters: dict = {}
        """Current values from RunStarted and CommandApplied."""
        self.ready = False
        """True once mounted and its widgets are looked up: the app routes events only then."""
        self.run_active = False
        """A run is in progress and takes commands, as the app last said (:meth:`set_run_active`)."""
        self.detachable = False
        """The run can be left going (d is offered), as the app last said."""
        self.confusion: E.ConfusionMatrix | None = None
        """The latest validation's confusion matrix and mistakes (what c shows)."""
        self._redraws = Redraws()  # the progress lines' rate, and the pace
        self._nonfinite = NonFinitePrompt(self, self._submit, asks=self.ASKS_ON_NONFINITE)  # shown by flush()
        self._dialogs = RunDialogs(self, self._submit)  # what l, L, h, e and c open
        self._handlers = self._event_handlers()

    def _event_handlers(self) -> dict:
        """Event type -> what it changes here, for :meth:`apply`: every type (core.events.exhaustive),
        so that a new one fails the dashboard's construction instead of being skipped."""
        return E.exhaustive({
            E.RunStarted: self._on_started,
            E.StatusChanged: self._on_status,
            E.StepMetrics: self._on_step,
            E.EpochMetrics: self._on_epoch,
            E.ValidationMetrics: lambda ev: self._plots.add_validation(ev),
            E.TestMetrics: lambda ev: self._progress.set_test(ev.metrics),
            E.ConfusionMatrix: self._on_confusion,
            E.CheckpointSaved: lambda ev: self._plots.mark_checkpoint(ev),
            E.CommandApplied: self._on_applied,
            E.CommandRejected: self._dialogs.rejected,  # the event log shows these four
            E.RunWarning: E.ignore,
            E.RunNote: E.ignore,
            E.RunError: E.ignore,
            E.RunFinished: self._on_finished,
            E.RunFailed: self._on_failed,
            E.LearningRateFound: self._dialogs.lr_found,
            E.SystemSample: lambda ev: self._system.add(ev),
            E.Scalars: self._on_scalars,  # a loop's own series (issue 23); the built-in loop sends none
            E.BreakpointsChanged: lambda ev: self._show_breakpoints(ev.pending),
        }, "DashboardScreen")

    def compose(self) -> ComposeResult:
        yield RunHeader(self.preset, id="header")
        yield RunProgress(id="progress")
        yield RunPlots(id="plots")
        with Horizontal(id="lower"):
            yield HyperparameterPanel(id="hyper")
            with Vertical(id="details"):
                yield EpochTable(id="epochs")
                yield EventLog(id="log")
                yield SystemPanel(id="system")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # widget references looked up once: apply() runs for every engine event
        self._plots = self.query_one(RunPlots)
        self._progress = self.query_one(RunProgress)
        self._panel = self.query_one(HyperparameterPanel)
        self._table = self.query_one(EpochTable)
        self._log = self.query_one(EventLog)
        self._header = self.query_one(RunHeader)
        self._system = self.query_one(SystemPanel)
        self.query_one("#hyper").border_title = "hyperparams (✎ live)"
        self.query_one("#epochs").border_title = "epochs"
        self.query_one("#log").border_title = "events"
        self._system.border_title = "system"
        if self.config is not None:
            self._panel.show_config(self.config)
        self._header.set_status(self.status)
        self._log.say(f"attaching to {self.preset}…" if self.attached else f"starting {self.preset}…")
        self.ready = True

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def plots(self) -> tuple[MetricPlot, ...]:
        """The plots (the last, a loop's own series, hidden until they come)."""
        return self._plots.plots

    @property
    def pace(self) -> int:
        """Redraw intervals are multiplied by this: the viewers attached, at most MAX_PACE (:attr:`Redraws.pace`)."""
        return self._redraws.pace

    def set_pace(self, viewers: int) -> None:
        """Pace the redraws for ``viewers`` dashboards attached to the run (see :attr:`pace`)."""
        self._header.set_viewers(max(1, int(viewers)))
        self._redraws.set_pace(viewers, (*self.plots, self._table, self._log))

    def refresh_plots(self, force: bool = False) -> None:
        """Redraw the plots whose data changed (rate-limited unless forced)."""
        self._plots.redraw(force)

    def set_run_active(self, active: bool, detachable: bool = False) -> None:
        """The app says whether a run is in progress (and can be left going); the footer then
        shows the keys that apply."""
        if (active, detachable) != (self.run_active, self.detachable):
            self.run_active, self.detachable = active, detachable
            if self.ready:
                self.refresh_bindings()  # recomposes the footer (costly): only on a change

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # hidden (False) rather than greyed: an 80-column footer then shows what can be done now
        if action in NEEDS_DETACHABLE and not self.detachable:
            return False
        needs = NEEDS_RUN.get(action)
        return True if needs is None else needs == self.run_active

    def note(self, text: str, style: str = "") -> None:
        """A line in the event log from the app itself (not from an engine event)."""
        self._log.say(text, style=style)

    def show_thread_ended(self, status: str) -> None:
        """The training thread ended without a final status: say so, and show ``status``."""
        self._log.say("the training thread ended", style="yellow")
        self._set_status(status)

    # -- events --------------------------------------------------------------------------------
    def apply(self, ev: E.Event) -> None:
        """Show one engine event (called by the app, inside one batch_update per drain)."""
        step = getattr(ev, "step", None)
        if isinstance(step, int):
            self.step = max(self.step, step)
        kind = type(ev)
        if kind is E.StepMetrics:
            self._on_step(ev)
            return  # the hot path: no log line per step
        if self._redraws.latest_step is not None and kind in FLUSH_FIRST:
            # keep the order: the epoch's end shows after its last step (only the progress: a
            # whole flush per epoch would cost an attached viewer replaying 1000s of epochs seconds)
            self._show_latest_step(force=True)
        self._log.log_event(ev)
        self._handlers[kind](ev)

    def _set_status(self, status: str) -> None:
        self.status = status
        self._header.set_status(status)

    def _on_started(self, ev: E.RunStarted) -> None:
        self.run_task = ev.task
        self.preset = ev.preset
        # several processes: "cpu x 2 processes"; samples/s and metrics are already the whole run's
        device = ev.device if ev.world_size <= 1 else f"{ev.device} × {ev.world_size} processes"
        self._header.set_run(ev.preset, device, ev.run_dir)
        self._progress.set_plan(ev.epochs, ev.total_steps, ev.start_step, ev.start_epoch, ev.task, ev.steps_per_epoch, ev.max_steps)
        self._dialogs.length_policy, self._dialogs.run_dir = ev.length_policy, ev.run_dir
        self._show_breakpoints(ev.breakpoints)
        self._table.set_task(ev.task)
        self._plots.set_task(ev.task)
        self.hyperparameters = dict(ev.hyperparameters)
        if is_finite(ev.hyperparameters.get("lr")):
            self.base_lr = float(ev.hyperparameters["lr"])
        self._panel.set_all(ev.hyperparameters, ev.live)

    def _on_finished(self, ev: E.RunFinished) -> None:
        self._set_status(ev.status)
        self._progress.set_target(ev.summary)  # time to target, when the run had one
        lost = ev.summary.get("not_saved") if isinstance(ev.summary, dict) else None
        if lost:  # nothing lost silently (STYLE.md habit 24): the badge says NOT SAVED, this says what
            text = f"not saved: {not_saved_text(lost)}"
            self._log.say(text, ev.summary.get("steps"), "bold red")
            self.app.notify(printable(text), title=f"{ev.status.upper()}: a checkpoint or record is missing", severity="error",
                            timeout=NOT_SAVED_TIMEOUT, markup=False)

    def _on_failed(self, ev: E.RunFailed) -> None:
        self._set_status("failed")
        self.app.notify(printable(f"Run failed: {ev.message}"), title="FAILED", severity="error", timeout=10, markup=False)

    def _on_scalars(self, ev: E.Scalars) -> None:
        if self._plots.add_scalars(ev):
            self.add_class(SHOW_SCALARS)

    def _on_confusion(self, ev: E.ConfusionMatrix) -> None:
        self.confusion = ev
        self._dialogs.confusion_changed(ev)

    def _on_status(self, ev: E.StatusChanged) -> None:
        before = self.status
        self._set_status(ev.status)
        nonfinite = self._nonfinite.follow(ev)  # its dialog shows after the batch (flush), if still paused
        if ev.status != before:  # a pause (or the end) shows the step it happened at, not the panel's last update
            self._show_latest_step(force=True)
        self._plots.mark_status(before, ev, nonfinite)

    def _on_step(self, ev: E.StepMetrics) -> None:
        self._plots.add_step(ev)
        self._redraws.latest_step = ev  # progress and panel show only the latest: see flush()

    def flush(self, force: bool = False) -> None:
        """After a drained batch: show the latest step's progress (at most PANEL_INTERVAL apart),
        redraw the plots that changed (rate-limited by each plot)."""
        self._log.flush(force)
        self._table.flush(force)
        self._nonfinite.show_pending(self.status)
        self._show_latest_step(force)
        self.refresh_plots()

    def _show_latest_step(self, force: bool = False) -> None:
        """The latest step's progress and current LR (at most PANEL_INTERVAL × pace apart unless forced)."""
        ev = self._redraws.step_due(force)
        if ev is not None:
            self._progress.set_step(ev.step, ev.epoch, ev.epoch_progress, ev.samples_per_second, ev.elapsed)
            if is_finite(ev.lr):
                self._panel.set_value("lr_now", ev.lr)

    def _on_epoch(self, ev: E.EpochMetrics) -> None:
        self._table.add_epoch(ev)
        self._progress.set_epoch_done(ev.epoch, ev.step)
        self._plots.add_epoch(ev)

    def _on_applied(self, ev: E.CommandApplied) -> None:
        if not ev.key:
            return
        if is_finite(ev.new):
            self.hyperparameters[ev.key] = ev.new
            self._panel.set_value(ev.key, ev.new)
        if ev.key == "lr":
            if is_finite(ev.new):
                self.base_lr = float(ev.new)
            self._plots.mark(ev.step, "lr")
        if ev.key in ("epochs", "max_steps") and is_finite(ev.new):  # a live length change (E, ctl set epochs)
            self._progress.set_length(ev.key, int(ev.new))

    def _show_breakpoints(self, pending: tuple) -> None:
        self._dialogs.breakpoints = tuple(pending)  # what p shows
        self._header.set_breakpoints(self._dialogs.breakpoints)

    # -- actions (they submit commands; the screen changes when events come back) ---------------
    def _submit(self, command: C.Command) -> None:
        self.submit_command(command)

    def action_toggle_pause(self) -> None:
        """Pause when running, resume when paused, as the engine last reported."""
        if self.status == "paused":
            self._submit(C.Resume())
        elif self.status in ("running", "starting"):
            self._submit(C.Pause())
        else:
            self.app.notify(printable(f"cannot pause or resume while {self.status}"), severity="warning", markup=False)

    def action_set_lr(self) -> None:
        self._dialogs.set_learning_rate(self.base_lr)

    def action_find_lr(self) -> None:
        """L: the LR range test of the paused run (:meth:`RunDialogs.find_learning_rate`)."""
        if self.status != "paused":
            self.app.notify("LR range test: pause first (space); it sweeps a copy of the paused model", severity="warning")
            return
        self._dialogs.find_learning_rate(self.preset)

    def action_rollback(self) -> None:
        """Restore the last good weights (a snapshot at most a second old) and halve the LR."""
        self._submit(C.Rollback(0.5))

    def action_halve_lr(self) -> None:
        self._submit(C.ScaleLearningRate(0.5))

    def action_double_lr(self) -> None:
        self._submit(C.ScaleLearningRate(2.0))

    def action_edit_hyperparameters(self) -> None:
        self._dialogs.edit_hyperparameter(self.hyperparameters)

    def action_save_checkpoint(self) -> None:
        self._submit(C.SaveCheckpoint())

    def action_validate(self) -> None:
        self._submit(C.Validate())

    def action_set_length(self) -> None:
        """E: change the run's length (epochs or max_steps) and the LR schedule's policy."""
        self._dialogs.set_length({"epochs": self._progress.epochs, "max_steps": self._progress.max_steps})

    def action_breakpoints(self) -> None:
        """p: add a breakpoint, or clear the pending ones."""
        self._dialogs.edit_breakpoints()

    def action_edit_notes(self) -> None:
        """N: the run's tags and note (its notes.json; the Runs screen's N edits the same)."""
        self._dialogs.edit_notes()

    def action_early_stop(self) -> None:
        self._dialogs.confirm_early_stop()

    def action_confusion(self) -> None:
        """c: the latest confusion matrix and mistakes; it follows the run while open."""
        self._dialogs.show_confusion(self.confusion, self.run_task)

    def action_toggle_details(self) -> None:
        """Small terminals show the log, the epoch table or the system panel; t cycles (:func:`dashboard_layout.cycle_details`)."""
        cycle_details(self)

    def action_toggle_plot(self) -> None:
        """g: under 120 columns, the LR plot or the loop's own series in the third place (:func:`dashboard_layout.toggle_plot`)."""
        toggle_plot(self)

    def action_new_run(self) -> None:
        self.post_message(self.NewRunRequested())

    def action_fork(self) -> None:
        """f: fork the run (the app checks that it is paused and can be left going)."""
        self.post_message(self.ForkRequested())

    def action_detach(self) -> None:
        """d: quit and leave the run training (the app checks that it can)."""
        self.post_message(self.DetachRequested())
