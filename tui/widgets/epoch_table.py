"""One row per finished epoch: train and validation metrics, lr, time; the best epoch starred."""

from __future__ import annotations

import time

from textual import events
from textual.widgets import DataTable

from tui_train.core.events import EpochMetrics
from tui_train.core.headline import headline_metric
from tui_train.tui import format as fmt

BEST_MARK = "★"
"""Marks the best epoch on the monitored metric."""


MAX_ROWS = 300
"""The table keeps the newest this many epochs (a DataTable measures every cell of every row it
adds: a thousand replayed epochs cost most of a second); all of them are in the run directory."""


class EpochTable(DataTable):
    """DataTable of EpochMetrics events (accuracy for classification, R² for regression)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.run_task = "classification"
        """Decides the metric column: accuracy or R²."""
        self.best_epoch: int | None = None
        """Epoch currently starred."""
        self.min_interval = 1.0
        """Seconds between two batches of new rows at least."""
        self._pending: list[EpochMetrics] = []
        self._last_flush = 0.0

    def on_mount(self) -> None:
        self._columns_for(self.run_task)

    def on_resize(self, event: events.Resize) -> None:
        # a shrunk (or newly shown) table kept its old scroll offset: it showed old epochs until
        # the next one came (issue 20 defect 9); the cursor follows the newest row (flush)
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)

    def _columns_for(self, task: str) -> None:
        self.clear(columns=True)
        metric = fmt.METRIC_SHORT[headline_metric(task)]
        # most telling first: narrow panes show the left columns (the table scrolls sideways)
        for label, key in (("ep", "epoch"), ("loss", "train_loss"), ("val loss", "val_loss"), (metric, "train_metric"),
                           (f"val {metric}", "val_metric"), ("lr", "lr"), ("time", "time")):
            self.add_column(label, key=key)

    def set_task(self, task: str) -> None:
        """From RunStarted: rebuild the columns for the task."""
        self.run_task = task
        self.best_epoch = None
        self._pending = []
        self._columns_for(task)

    def _metric(self, d: dict) -> str:
        key = headline_metric(self.run_task, d)
        return fmt.metric(key, d.get(key))

    @staticmethod
    def _epoch_label(epoch: int, best: bool) -> str:
        return f"{epoch + 1}{' ' + BEST_MARK if best else ''}"

    def add_epoch(self, ev: EpochMetrics) -> None:
        """Queue the row of a finished epoch; :meth:`flush` shows queued rows (rate-limited)."""
        self._pending.append(ev)

    def flush(self, force: bool = False) -> None:
        """Add the queued rows, at most every ``min_interval`` s: a DataTable re-measures and
        re-renders on each change, which with many short epochs (digits) slows the training thread."""
        now = time.monotonic()
        if not self._pending or (not force and now - self._last_flush < self.min_interval):
            return
        self._last_flush = now
        pending, self._pending = self._pending, []
        for ev in pending[:-MAX_ROWS]:  # replayed history beyond the bound: only the star is kept
            if ev.is_best:
                self.best_epoch = ev.epoch
        for ev in pending[-MAX_ROWS:]:
            self._add(ev)
        for key in list(self.rows)[:max(0, self.row_count - MAX_ROWS)]:
            self.remove_row(key)
        self.move_cursor(row=self.row_count - 1)

    def _add(self, ev: EpochMetrics) -> None:
        key = str(ev.epoch)
        row = (self._epoch_label(ev.epoch, ev.is_best), fmt.num(ev.train.get("loss")), fmt.num(ev.val.get("loss")),
               self._metric(ev.train), self._metric(ev.val), fmt.lr(ev.lr), fmt.duration(ev.seconds))
        if key in self.rows:
            self.remove_row(key)
        self.add_row(*row, key=key)
        if ev.is_best:
            if self.best_epoch is not None and str(self.best_epoch) in self.rows and self.best_epoch != ev.epoch:
                self.update_cell(str(self.best_epoch), "epoch", self._epoch_label(self.best_epoch, False))
            self.best_epoch = ev.epoch
