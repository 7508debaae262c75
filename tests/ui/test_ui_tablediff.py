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


async def test_random_churn_keeps_order_locations_and_cells_consistent():
    """Calls start (mostly at the end), end (anywhere) and move: after each sync the table is
    exactly the desired rows, and its row index maps agree both ways."""
    import random

    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        generator = random.Random(5)
        live = [f"c{i:04d}" for i in range(60)]
        serial = 60
        for step in range(40):
            for _ in range(generator.randint(0, 4)):  # calls ending anywhere
                if live:
                    live.pop(generator.randrange(len(live)))
            for _ in range(generator.randint(0, 4)):  # new calls, near the end
                live.insert(max(0, len(live) - generator.randint(0, 3)), f"c{serial:04d}")
                serial += 1
            if step % 5 == 0 and len(live) > 2:  # an occasional move
                live.insert(generator.randrange(len(live)), live.pop(generator.randrange(len(live))))
            sync_table(table, rows(*[(key, step) for key in live]))
            assert keys(table) == live
            locations = table._row_locations
            assert [locations.get_key(index).value for index in range(len(live))] == live
            assert all(locations.get(RowKey(key)) == index for index, key in enumerate(live))
            assert [table.get_row_at(index)[0].plain for index in range(len(live))] == live


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


async def test_rows_with_the_same_cells_object_are_skipped_and_outside_changes_void_that():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        a, b = (Text("a"), Text("1")), (Text("b"), Text("2"))
        sync_table(table, [("a", a), ("b", b)])
        table._data[RowKey("a")][table.ordered_columns[1].key] = Text("tampered")  # not seen: same tuple
        assert not sync_table(table, [("a", a), ("b", b)]).changed
        table.update_cell("b", "value", Text("elsewhere"))  # a change not made by sync_table
        stats = sync_table(table, [("a", a), ("b", b)])
        assert stats.updated == 2 and table.get_cell("b", "value").plain == "2"  # both rows compared again
        table.clear()
        stats = sync_table(table, [("a", a), ("b", b)])
        assert stats.added == 2 and keys(table) == ["a", "b"]


class TwinTablesApp(App[None]):
    """The same rows in a plain DataTable and in a SteadyTable."""

    def compose(self) -> ComposeResult:
        from console.ui.tablediff import SteadyTable

        for table in (DataTable(id="plain", zebra_stripes=True, cursor_type="row"),
                      SteadyTable(id="steady", zebra_stripes=True, cursor_type="row")):
            table.add_column("Name", key="name")
            table.add_column("Value", key="value")
            yield table


def rendered(table: DataTable) -> list[list[tuple[str, object, object]]]:
    """Every line as (text, style without meta, meta): meta carries the row a click lands on."""
    table._styles_cache.clear()
    return [[(seg.text, seg.style.copy() if seg.style else None, seg.style.meta if seg.style else None)
             for seg in table.render_line(y)] for y in range(table.size.height)]


async def test_steady_table_renders_exactly_like_data_table_as_rows_move_and_change():
    app = TwinTablesApp()
    async with app.run_test(size=(60, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", DataTable)
        app.set_focus(None)  # the focused table styles its header and cursor differently
        first = [(f"k{n}", (Text(f"row {n}"), Text(str(n), justify="right"))) for n in range(10)]
        later = first[3:5] + [("k5", (Text("row 5"), Text("changed", style="bold")))] + first[6:]
        for step in (first, later):  # later: rows above removed (indexes shift), one cell changed
            for table in (plain, steady):
                sync_table(table, step)
                table.move_cursor(row=1)
            await pilot.pause()
            assert rendered(steady) == rendered(plain)
        metas = [line[1][2] for line in rendered(steady)[1:4]]
        assert [meta["row"] for meta in metas] == [0, 1, 2]  # the moved rows carry their new index


async def test_steady_table_renders_its_header_once_not_after_every_changed_cell(monkeypatch):
    app = TwinTablesApp()
    async with app.run_test(size=(60, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", DataTable)
        app.set_focus(None)
        rows = [(f"k{n}", (Text(f"row {n}"), Text(str(n)))) for n in range(5)]
        for table in (plain, steady):
            sync_table(table, rows)
        await pilot.pause()
        rendered(steady)
        header_renders = []
        original = DataTable._render_cell

        def counting(self, row_index, *args, **kwargs):
            if self is steady and row_index == -1:
                header_renders.append(args[0])
            return original(self, row_index, *args, **kwargs)

        monkeypatch.setattr(DataTable, "_render_cell", counting)
        for n in range(3):  # an age ticking: one cell changes per repaint
            for table in (plain, steady):
                table.update_cell("k1", "value", Text(f"tick {n}"))
            await pilot.pause()
            assert rendered(steady) == rendered(plain)
        assert header_renders == []
        for table in (plain, steady):  # a wider column: its label is laid out again
            table.update_cell("k1", "value", Text("a much wider value than before"), update_width=True)
        await pilot.pause()
        assert rendered(steady) == rendered(plain)
        assert header_renders
