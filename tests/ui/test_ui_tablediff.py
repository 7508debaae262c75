"""The keyed DataTable diff: only changed cells, new keys, stale keys — never a rebuild."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from console.ui.tablediff import BULK_REMOVE, sync_table


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        table = DataTable()
        table.add_column("Name", key="name")
        table.add_column("Value", key="value")
        yield table


def rows(*items):
    return [(key, (Text(key), Text(str(value)))) for key, value in items]


def keys(table: DataTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


async def test_first_sync_adds_every_row():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        stats = sync_table(table, rows(("a", 1), ("b", 2)))
        assert (stats.added, stats.updated, stats.removed) == (2, 0, 0)
        assert keys(table) == ["a", "b"]


async def test_unchanged_rows_are_not_touched():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        sync_table(table, rows(("a", 1), ("b", 2)))
        row_a = table.rows[RowKey("a")]
        stats = sync_table(table, rows(("a", 1), ("b", 2)))
        assert not stats.changed
        assert table.rows[RowKey("a")] is row_a  # same Row object: not re-added


async def test_changed_cell_updated_in_place():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        sync_table(table, rows(("a", 1), ("b", 2)))
        row_b = table.rows[RowKey("b")]
        stats = sync_table(table, rows(("a", 1), ("b", 3)))
        assert (stats.added, stats.updated, stats.removed) == (0, 1, 0)
        assert table.get_cell("b", "value").plain == "3"
        assert table.rows[RowKey("b")] is row_b


async def test_new_keys_added_stale_removed_order_restored():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        sync_table(table, rows(("a", 1), ("b", 2), ("c", 3)))
        stats = sync_table(table, rows(("d", 4), ("c", 3), ("a", 1)))
        assert (stats.added, stats.removed) == (1, 1)
        assert stats.reordered
        assert keys(table) == ["d", "c", "a"]
        assert table.get_row_at(0)[0].plain == "d"


async def test_cursor_follows_its_row_key():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        table.cursor_type = "row"
        sync_table(table, rows(("a", 1), ("b", 2), ("c", 3)))
        table.move_cursor(row=2)
        sync_table(table, rows(("new", 0), ("a", 1), ("b", 2), ("c", 3)))
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == "c"


async def test_bulk_removal_keeps_table_consistent():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        many = [(f"k{i:03d}", i) for i in range(BULK_REMOVE * 3)]
        sync_table(table, rows(*many))
        keep = many[::7]
        stats = sync_table(table, rows(*keep))
        assert stats.removed == len(many) - len(keep)
        assert keys(table) == [k for k, _ in keep]
        assert table.row_count == len(keep)
        assert [table.get_row(k)[1].plain for k, _ in keep] == [str(v) for _, v in keep]
        # Still fully usable afterwards: add, update, remove.
        stats = sync_table(table, rows(("z", 1), *keep[1:]))
        assert (stats.added, stats.removed) == (1, 1)
        assert keys(table)[0] == "z"


async def test_a_longer_value_widens_its_column_and_a_shorter_one_costs_no_remeasure():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        sync_table(table, rows(("a", 1), ("b", 2)))
        await pilot.pause()
        sync_table(table, rows(("a", "1m00s and more"), ("b", 2)))
        await pilot.pause()
        assert table.columns[table.ordered_columns[1].key].content_width == len("1m00s and more")
        sync_table(table, rows(("a", 3), ("b", 2)))
        assert not table._updated_cells  # narrower: no O(rows) column re-measure queued
