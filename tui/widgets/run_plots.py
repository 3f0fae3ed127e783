"""The dashboard's plots side by side: the loss, the headline metric and the learning rate against
the step, fed from one run's events, with its interventions marked on all of them; and, once a loop
of the user's own logs names of its own (Scalars), a plot of those series
(:class:`tui.widgets.scalars_plot.ScalarsPlot`; where it goes is app.tcss's: beside the others from
120 columns, narrower in the LR plot's place, g switches).

The headline (:mod:`core.headline`) depends on the task: accuracy rides on every StepMetrics of a
classification run; a regression run's R² (or MAE, when an epoch has no R²) comes per epoch.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from tui_train.core import events as E
from tui_train.core.headline import headline_in_steps, headline_metric
from tui_train.tui import format as fmt
from tui_train.tui.widgets.metric_plot import MetricPlot
from tui_train.tui.widgets.scalars_plot import ScalarsPlot

USER_CHECKPOINTS = ("manual", "early_stop", "interrupt", "error")
"""Checkpoint reasons marked on the plots (best/periodic ones would clutter them)."""


class RunPlots(Horizontal):
    """Loss, headline metric and learning rate of one run (``#loss-plot``, ``#metric-plot``, ``#lr-plot``),
    and a loop's own series (``#scalars``, hidden until a Scalars event comes)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_task = "classification"
        """The run's task (from RunStarted, :meth:`set_task`): which headline, and when it comes."""
        self.metric_key = headline_metric(self.run_task)
        """Metric plotted beside the loss, the headline (core.headline): accuracy, r2 or mae."""
        self.loss_plot = MetricPlot("loss", id="loss-plot")
        """Train loss per logged step, validation loss per validation."""
        self.metric_plot = MetricPlot(fmt.METRIC_TITLES[self.metric_key], id="metric-plot")
        """The headline metric, train and validation."""
        self.lr_plot = MetricPlot("learning rate", id="lr-plot")
        """The learning rate the steps used."""
        for plot in (self.loss_plot, self.metric_plot):
            plot.add_line("train", "train", marker="braille", color="blue")
            plot.add_line("val", "val", marker="dot", color="red")
        self.lr_plot.add_line("lr", "lr", marker="braille", color="yellow")
        self.scalars = ScalarsPlot(id="scalars")
        """A loop's own series (Scalars events) with their legend."""

    def compose(self) -> ComposeResult:
        yield self.loss_plot
        yield self.metric_plot
        yield self.lr_plot
        yield self.scalars

    @property
    def plots(self) -> tuple[MetricPlot, ...]:
        """The four plots, left to right (the last, a loop's own series, is hidden until they come)."""
        return (self.loss_plot, self.metric_plot, self.lr_plot, self.scalars.plot)

    def set_task(self, task: str) -> None:
        """The run's task is known (RunStarted): its headline titles the metric plot."""
        self.run_task = task
        self.metric_key = headline_metric(task)
        self.metric_plot.set_title(fmt.METRIC_TITLES[self.metric_key])

    def add_step(self, ev: E.StepMetrics) -> None:
        """A logged step: train loss, the headline when it rides on steps, the LR."""
        self.loss_plot.add("train", ev.step, ev.loss)
        if headline_in_steps(self.run_task):
            self.metric_plot.add("train", ev.step, ev.accuracy)
        self.lr_plot.add("lr", ev.step, ev.lr)

    def add_epoch(self, ev: E.EpochMetrics) -> None:
        """An epoch's end: its validation loss and headline (and the train headline, when it does
        not ride on steps); a regression epoch without R² switches the plot to MAE for good."""
        key = headline_metric(self.run_task, ev.val, ev.train)
        if self.metric_key == headline_metric(self.run_task) != key:  # no R² in this epoch: MAE from here on
            self.metric_key = key
            self.metric_plot.set_title(fmt.METRIC_TITLES[self.metric_key])
        self.loss_plot.add("val", ev.step, ev.val.get("loss"))
        self.metric_plot.add("val", ev.step, ev.val.get(self.metric_key))
        if not headline_in_steps(self.run_task):  # else the train curve came with the steps
            self.metric_plot.add("train", ev.step, ev.train.get(self.metric_key))

    def add_scalars(self, ev: E.Scalars) -> bool:
        """Numbers a loop of the user's own logged under its own names; True when they are the
        first (the plot of them is to be shown from now on)."""
        return self.scalars.add(ev)

    def add_validation(self, ev: E.ValidationMetrics) -> None:
        """An on-demand validation (v, ctl validate): its loss and headline, and a V mark (an
        intervention, as the README lists: issue 20 defect 6; the scheduled ones at epoch ends are not marked)."""
        self.loss_plot.add("val", ev.step, ev.metrics.get("loss"))
        self.metric_plot.add("val", ev.step, ev.metrics.get(self.metric_key))
        self.mark(ev.step, "validate")

    def mark_status(self, before: str, ev: E.StatusChanged, nonfinite: bool = False) -> None:
        """The intervention a status change from ``before`` is: P at a pause (! for a ``nonfinite``
        one), R on resuming, E once the run starts to stop early."""
        if ev.status == "paused":
            self.mark(ev.step, "nonfinite" if nonfinite else "pause")
        elif ev.status == "running" and before == "paused":
            self.mark(ev.step, "resume")
        elif ev.status in ("stopping", "early_stopped") and before not in ("stopping", "early_stopped"):
            self.mark(ev.step, "early_stop")

    def mark_checkpoint(self, ev: E.CheckpointSaved) -> None:
        """A checkpoint the user asked for, or one saved on the way out: C (:data:`USER_CHECKPOINTS`)."""
        if ev.reason in USER_CHECKPOINTS:
            self.mark(ev.step, "checkpoint")

    def mark(self, step: int, kind: str) -> None:
        """An intervention of ``kind`` (:data:`tui.widgets.metric_plot.MARKERS`) at ``step``, on every plot."""
        for plot in self.plots:
            plot.mark(step, kind)

    def redraw(self, force: bool = False) -> None:
        """Redraw the plots whose data changed (rate-limited by each plot unless forced)."""
        for plot in (self.loss_plot, self.metric_plot, self.lr_plot):
            plot.redraw(force=force)
        self.scalars.redraw(force)  # its legend too; nothing while no series came
