"""Progress of the epoch and of the whole run, with throughput, ETA and the final test metrics."""

from __future__ import annotations

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from tui_train.core.length import planned_steps
from tui_train.tui import format as fmt
from tui_train.tui.series import is_finite


def _clamp01(value: float | None) -> float:
    return min(1.0, max(0.0, float(value))) if is_finite(value) else 0.0


class RunProgress(Widget):
    """Two lines: epoch bar, then run bar with step, samples/s and ETA (test metrics when done).

    The setters only record values and ask for a repaint; :meth:`render` builds the lines when the
    compositor draws, so a batch of updates (an attached viewer replays a thousand epochs at once)
    costs one render per frame, not one per update."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epochs = 0
        """Planned epochs."""
        self.total_steps = 0
        """Planned optimizer steps."""
        self.steps_per_epoch = 0
        """Optimizer steps per epoch (0: not known; a length change then moves only the epochs)."""
        self.max_steps = 0
        """The run's step limit (0: none)."""
        self.start_step = 0
        """First step of this session (non-zero when resumed), for the ETA."""
        self.epoch = 0
        """Current epoch, 0-based."""
        self.epoch_progress = 0.0
        """Fraction of the epoch done."""
        self.step = 0
        """Optimizer steps done."""
        self.samples_per_second: float | None = None
        """Last reported throughput."""
        self.elapsed: float | None = None
        """Training seconds so far (from the engine, pauses excluded)."""
        self.test: dict | None = None
        """Final test metrics, once reported."""
        self.run_task = "classification"
        """'classification' or 'regression'."""
        self.target: str | None = None
        """How the run's train.target ended ('target reached in 0.9s train / 2.3s wall, epoch 4'), from RunFinished's summary."""

    def set_plan(self, epochs: int, total_steps: int, start_step: int = 0, start_epoch: int = 0, task: str = "classification",
                 steps_per_epoch: int = 0, max_steps: int = 0) -> None:
        """From RunStarted (``steps_per_epoch`` and ``max_steps``: for a live change of the length)."""
        self.epochs, self.total_steps, self.start_step, self.run_task = epochs, total_steps, start_step, task
        self.steps_per_epoch, self.max_steps = steps_per_epoch, max_steps
        self.step, self.epoch = start_step, start_epoch
        self.refresh()

    def set_length(self, key: str, value: int) -> None:
        """The run's length changed live (a SetRunLength acknowledged: ``key`` epochs or max_steps)."""
        if key == "epochs":
            self.epochs = value
        elif key == "max_steps":
            self.max_steps = value
        if self.steps_per_epoch:
            self.total_steps = planned_steps(self.epochs, self.max_steps, self.steps_per_epoch)
        self.refresh()

    def set_step(self, step: int, epoch: int, epoch_progress: float, samples_per_second: float, elapsed: float) -> None:
        """From StepMetrics."""
        self.step, self.epoch = step, epoch
        self.epoch_progress = _clamp01(epoch_progress)
        self.samples_per_second = samples_per_second if is_finite(samples_per_second) else None
        self.elapsed = elapsed if is_finite(elapsed) else None
        self.refresh()

    def set_epoch_done(self, epoch: int, step: int) -> None:
        """From EpochMetrics."""
        self.epoch, self.step, self.epoch_progress = epoch, step, 1.0
        self.refresh()

    def set_test(self, metrics: dict) -> None:
        """From TestMetrics: shown instead of the ETA."""
        self.test = dict(metrics)
        self.refresh()

    def set_target(self, summary: dict) -> None:
        """From RunFinished: the target's outcome (time to target, training and wall), shown on the epoch line."""
        target = summary.get("target")
        if not isinstance(target, dict):
            return
        target = {**target, "expression": fmt.printable(target.get("expression", "target"))}  # from a file: literal
        if target.get("reached"):
            epoch = target.get("epoch")
            where = f", epoch {epoch + 1}" if isinstance(epoch, int) else ""
            self.target = (f"{target.get('expression', 'target')} in {fmt.seconds(summary.get('time_to_target'))} train"
                           f" / {fmt.seconds(summary.get('wall_to_target'))} wall{where}")
        else:
            self.target = f"{target.get('expression', 'target')}: not reached"
        self.refresh()

    @property
    def eta(self) -> float | None:
        """Seconds left at the recent training speed (engine time, so pauses do not count)."""
        done = self.step - self.start_step
        if not self.elapsed or done <= 0 or self.total_steps <= 0:
            return None
        return max(0.0, (self.total_steps - self.step) * self.elapsed / done)

    def _bar_line(self, label: str, fraction: float, right: str | Text) -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(width=len(label), no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(label, ProgressBar(total=1.0, completed=fraction), right)
        return grid

    def render(self) -> RenderableType:
        epochs = max(self.epochs, 1)
        epoch_label = f"epoch {min(self.epoch + 1, epochs)}/{self.epochs or '?'}"
        total = self.total_steps
        # a loop of the user's own (tui_train.init) may not know its steps: the epochs measure the run then
        run_frac = _clamp01(self.step / total) if total else _clamp01(self.epoch / self.epochs) if self.epochs else 0.0
        step_label = f"step {self.step}/{total}" if total else f"step {self.step}"
        if self.test is not None:
            right = self._test_text()
        else:
            right = f"{fmt.rate(self.samples_per_second)} · ETA {fmt.duration(self.eta)}"
        table = Table.grid(expand=True)
        table.add_column(ratio=1)
        width = max(len(epoch_label), len(step_label))
        epoch_right = f"{self.epoch_progress * 100:3.0f}%" if self.target is None else Text(self.target, style="bold")
        table.add_row(self._bar_line(epoch_label.ljust(width), self.epoch_progress, epoch_right))
        table.add_row(self._bar_line(step_label.ljust(width), run_frac, right))
        return table  # fixed height (app.tcss): a repaint, never a layout pass

    def _test_text(self) -> Text:
        m = self.test or {}
        parts = [f"test loss {fmt.num(m.get('loss'))}"]
        if "accuracy" in m:
            parts.append(f"acc {fmt.pct(m.get('accuracy'))}")
        for key in ("r2", "mae"):
            if key in m:
                parts.append(f"{'R²' if key == 'r2' else key.upper()} {fmt.num(m.get(key))}")
        return Text(" · ".join(parts), style="bold")
