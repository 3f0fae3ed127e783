"""Current hyperparameter values as the engine reports them; live-editable ones marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui_train.tui import format as fmt

if TYPE_CHECKING:
    from tui_train.core.config import RunConfig

LIVE_MARK = "✎"
"""Marks a hyperparameter that can be changed while training (keys l, [, ], h)."""

LABELS = {"lr": "base lr", "lr_now": "lr now", "weight_decay": "weight decay", "grad_clip": "grad clip",
          "batch_size": "batch size", "optimizer": "optimizer", "schedule": "schedule"}
"""Display names; anything else is shown as its key."""


class HyperparameterPanel(Static):
    """name · value · ✎ rows, from RunStarted, CommandApplied and the latest StepMetrics lr."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: dict[str, object] = {}
        """Name -> value as last reported by the engine."""
        self.live: tuple[str, ...] = ()
        """Names the engine accepts changes for."""

    def on_mount(self) -> None:
        self._show()

    def set_all(self, values: dict, live: tuple | list = ()) -> None:
        """From RunStarted."""
        self.live = tuple(live)
        # what can be steered first: the rows that fit in a small terminal are the useful ones
        first = ["lr_now", "lr", *[k for k in self.live if k != "lr"]]
        merged = {"lr_now": values.get("lr"), **values}
        self.values = {k: merged[k] for k in first if k in merged} | {k: v for k, v in merged.items() if k not in first}
        self._show()

    def show_config(self, c: RunConfig) -> None:
        """Before RunStarted: what the run's config says (optimizer, lr, batch size, epochs)."""
        self.set_all({"optimizer": c.optim.name, "lr": c.optim.lr, "batch_size": c.data.batch_size, "epochs": c.train.epochs})

    def set_value(self, key: str, value: object) -> None:
        """One value changed (CommandApplied, StepMetrics)."""
        if self.values.get(key) != value:
            self.values[key] = value
            self._show()

    def _show(self) -> None:
        # fixed value width and ellipses: a long string value must not push the ✎ column out
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column(no_wrap=True, justify="right", overflow="ellipsis", max_width=9)
        table.add_column(no_wrap=True, width=1)
        if not self.values:
            table.add_row(Text("waiting for the run…", style="dim"), "", "")
        for key, value in self.values.items():
            if isinstance(value, (dict, list, tuple)):
                continue
            shown = fmt.lr(value) if key in ("lr", "lr_now") else fmt.num(value)
            table.add_row(fmt.literal(LABELS.get(key, str(key).replace("_", " "))), fmt.literal(shown),
                          LIVE_MARK if key in self.live else "")
        self.update(table, layout=False)  # the panel's size comes from app.tcss, not from its rows
