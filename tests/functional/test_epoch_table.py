"""The epoch table keeps the newest MAX_ROWS epochs, live and replayed, with the best one starred."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tests.functional.helpers import run_async
from tui_train.core import events as E
from tui_train.tui.widgets.epoch_table import BEST_MARK, MAX_ROWS, EpochTable


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield EpochTable()


def epoch(i: int, best: bool = False) -> E.EpochMetrics:
    return E.EpochMetrics(epoch=i, step=10 * (i + 1), train={"loss": 0.5, "accuracy": 0.8}, val={"loss": 0.4, "accuracy": 0.9},
                          lr=1e-3, seconds=1.0, is_best=best)


@run_async
async def test_live_rows_beyond_the_bound_drop_the_oldest():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(EpochTable)
        for i in range(MAX_ROWS + 7):
            table.add_epoch(epoch(i, best=i == 3))
            table.flush(force=True)
        await pilot.pause()
        assert table.row_count == MAX_ROWS
        assert [table.get_row_at(i)[0] for i in (0, MAX_ROWS - 1)] == ["8", str(MAX_ROWS + 7)]
        assert table.best_epoch == 3  # its row is gone; the star is not shown on another


@run_async
async def test_a_replayed_history_keeps_the_star_of_a_best_epoch_in_view():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(EpochTable)
        for i in range(2 * MAX_ROWS):
            table.add_epoch(epoch(i, best=i in (5, MAX_ROWS + 10)))
        table.flush(force=True)
        await pilot.pause()
        assert table.row_count == MAX_ROWS
        labels = [str(table.get_row_at(i)[0]) for i in range(MAX_ROWS)]
        assert [lab for lab in labels if BEST_MARK in lab] == [f"{MAX_ROWS + 11} {BEST_MARK}"]
        assert table.best_epoch == MAX_ROWS + 10
