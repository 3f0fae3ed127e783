"""The run's event log: checkpoints with paths, LR changes, early-stopping countdown, warnings,
errors (with where the traceback was saved). Bounded; the full record is events.jsonl."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual import events
from textual.widgets import RichLog

from tui_train.core import breakpoints
from tui_train.core import events as E
from tui_train.core.headline import headline_metric
from tui_train.core.lr_find import lr_found
from tui_train.tui import format as fmt
from tui_train.tui.widgets.confusion_grid import recalls


class EventLog(RichLog):
    """A RichLog that formats engine events into one line each (non-finite numbers as text)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=1000, wrap=True, min_width=20, markup=False, highlight=False, **kwargs)
        self.run_task = "classification"
        """'classification' or 'regression' (what the epoch lines show)."""
        self.lines_text: list[str] = []
        """Plain text of the most recent lines (tests and copy; bounded like the log)."""
        self._pending: list[Text] = []
        self.min_interval = 0.25
        """Seconds between two writes of new lines at least (a dashboard paces it with several viewers)."""
        self._last_flush = 0.0
        self._written: deque[Text] = deque(maxlen=1000)
        """The lines written, styled: wrapped again when the width changes (RichLog wraps once, on write)."""
        self._wrap_width = 0
        """The width the written lines were wrapped at."""
        self._handlers = E.exhaustive({
            E.RunStarted: self._started,
            E.StatusChanged: self._status,
            E.StepMetrics: E.ignore,
            E.EpochMetrics: self._epoch,
            E.ValidationMetrics: lambda ev: self.say("validation: " + self._metrics_text(ev.metrics), ev.step),
            E.TestMetrics: lambda ev: self.say("test: " + self._metrics_text(ev.metrics), None, "bold"),
            E.ConfusionMatrix: self._confusion,
            E.CheckpointSaved: lambda ev: self.say(f"checkpoint ({ev.reason}): {ev.path}", ev.step, "green"),
            E.CommandApplied: lambda ev: self.say(f"{ev.command}: {ev.detail}", ev.step),
            E.CommandRejected: lambda ev: self.say(f"{ev.command} rejected: {ev.reason}", ev.step, "yellow"),
            E.RunWarning: lambda ev: self.say(f"warning: {ev.message}", ev.step, "yellow"),
            E.RunNote: lambda ev: self.say(ev.message, ev.step),
            E.RunError: lambda ev: self.say(f"error: {ev.message}", ev.step, "red"),
            E.RunFinished: lambda ev: self.say(f"run finished: {fmt.status_label(ev.status)} · {ev.run_dir}", None, "bold"),
            E.RunFailed: self._failed,
            E.LearningRateFound: lambda ev: self.say(f"LR range test: {lr_found(ev)}", ev.step),
            E.SystemSample: E.ignore,  # the system panel shows these
            E.Scalars: E.ignore,  # the dashboard's plot of the loop's own series shows these
            E.BreakpointsChanged: lambda ev: self.say(f"breakpoints pending: {breakpoints.text(ev.pending)}", ev.step),
        }, "EventLog")

    def say(self, text: str, step: int | None = None, style: str = "") -> None:
        """Add one line, prefixed with the step when known (shown at the next :meth:`flush`); the
        text is shown literally (never markup: the log is ``markup=False``; control characters as escapes)."""
        text = fmt.printable(text)
        prefix = f"[{step:>6}] " if isinstance(step, int) else "         "
        line = Text(prefix, style="dim")
        line.append(text, style=style)
        self.lines_text.append(prefix + text)
        del self.lines_text[:-1000]
        self._pending.append(line)

    def flush(self, force: bool = False) -> None:
        """Write the lines said since the last flush in one go (one render per drain, not per
        line), at most every ``min_interval`` seconds unless forced."""
        now = time.monotonic()
        if self._pending and (force or now - self._last_flush >= self.min_interval):
            self._last_flush = now
            lines, self._pending = self._kept(self._pending), []
            self._written.extend(lines)
            self._wrap_width = self.scrollable_content_region.width
            self.write(Text("\n").join(lines))

    def on_resize(self, event: events.Resize) -> None:
        # RichLog wraps a line once, at the width of its write: after a shrink (or the first layout,
        # which can be wider than the final one) lines were clipped on the right (issue 20 defect 9)
        width = self.scrollable_content_region.width
        if self._written and self._size_known and width > 0 and width != self._wrap_width:
            self._wrap_width = width
            self.clear()
            self.write(Text("\n").join(self._kept(list(self._written))))

    def _kept(self, lines: list[Text]) -> list[Text]:
        """The newest of ``lines`` that the bounded log would keep once wrapped (an attached viewer
        replays thousands of entries at once: wrapping those it would drop costs half a second)."""
        if not self.max_lines:
            return lines
        width = self.scrollable_content_region.width
        if width <= 0:  # not laid out yet: at most one row per entry
            return lines[-self.max_lines:]
        rows = 0
        for i in range(len(lines) - 1, -1, -1):
            rows += max(1, -(-lines[i].cell_len // width))
            if rows >= self.max_lines:
                return lines[i:]
        return lines

    def log_event(self, ev: E.Event) -> None:
        """Write the line(s) for an engine event (StepMetrics has none: the plots show it)."""
        self._handlers[type(ev)](ev)

    def _started(self, ev: E.RunStarted) -> None:
        self.run_task = ev.task
        self.say(f"run started: {ev.preset} on {ev.device} · {ev.model} · {ev.num_params:,} parameters", ev.start_step)
        self.say(f"data: {ev.train_size} train / {ev.val_size} val / {ev.test_size} test · {ev.total_steps} steps planned")
        self.say(f"run directory: {ev.run_dir}")

    def _status(self, ev: E.StatusChanged) -> None:
        text = f"status: {fmt.status_label(ev.status)}" + (f" ({ev.reason})" if ev.reason else "")
        alarm = ev.status == "failed" or ev.cause == "nonfinite"
        self.say(text, ev.step, "bold red" if alarm else ("bold" if ev.status in E.FINAL_STATUSES else ""))

    def _epoch(self, ev: E.EpochMetrics) -> None:
        self.say(self._epoch_text(ev), ev.step, "bold" if ev.is_best else "")
        if ev.patience_left is not None:
            self.say(f"early stopping: {ev.patience_left} epoch(s) of patience left", ev.step,
                     "yellow" if ev.patience_left <= 1 else "")

    def _confusion(self, ev: E.ConfusionMatrix) -> None:
        """One line: the class with the lowest recall, and where the rest is (c)."""
        worst = min(((r, i) for i, r in enumerate(recalls(ev.confusion)) if r is not None), default=None)
        text = "confusion matrix"
        if worst is not None:
            name = ev.classes[worst[1]] if worst[1] < len(ev.classes) else str(worst[1])
            text += f": lowest recall {name} {fmt.pct(worst[0])}"
        self.say(f"{text} · c shows it and {fmt.count(len(ev.mistakes), 'mistake')}", ev.step, "dim")

    def _failed(self, ev: E.RunFailed) -> None:
        self.say(f"run FAILED: {ev.message}", None, "bold red")
        self.say(f"traceback saved to {ev.traceback_path}" if ev.traceback_path else "traceback: " + _last_line(ev.traceback), None, "red")

    def _metrics_text(self, m: dict) -> str:
        parts = []
        for key, value in m.items():
            if isinstance(value, (int, float)):
                parts.append(f"{key} {fmt.metric(key, value)}")
        return " · ".join(parts) or "–"

    def _epoch_text(self, ev: E.EpochMetrics) -> str:
        metric = headline_metric(self.run_task)
        text = f"epoch {ev.epoch + 1}: loss {fmt.num(ev.train.get('loss'))}"
        if metric in ev.train:
            text += f" {fmt.METRIC_SHORT[metric]} {fmt.metric(metric, ev.train.get(metric))}"
        if ev.val:
            text += f" · val loss {fmt.num(ev.val.get('loss'))}"
            if metric in ev.val:
                text += f" {fmt.METRIC_SHORT[metric]} {fmt.metric(metric, ev.val.get(metric))}"
        text += f" · lr {fmt.lr(ev.lr)} · {fmt.duration(ev.seconds)}"
        return text + ("  ★ best" if ev.is_best else "")


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(none)"
