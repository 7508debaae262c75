"""The keyed DataTable diff: only changed cells, new keys, stale keys — never a rebuild."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from console.ui.tablediff import REBUILD_AFTER, SteadyTable, sync_table


class TableApp(App[None]):
    def __init__(self, table_class: type[DataTable] = DataTable) -> None:
        super().__init__()
        self.table_class = table_class

    def compose(self) -> ComposeResult:
        table = self.table_class()
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


@pytest.mark.parametrize("count", [REBUILD_AFTER // 2, REBUILD_AFTER * 3])  # row by row, rebuilt
async def test_bulk_removal_keeps_table_consistent(count):
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        many = [(f"k{i:03d}", i) for i in range(count)]
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


@pytest.mark.parametrize("table_class", [DataTable, SteadyTable])
async def test_random_churn_keeps_order_locations_and_cells_consistent(table_class):
    """Calls start (mostly at the end), end (anywhere) and move: after each sync the table is
    exactly the desired rows, and its row index maps agree both ways."""
    import random

    app = TableApp(table_class)
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
            assert all(table.get_row_index(key) == index for index, key in enumerate(live))
            assert [table.coordinate_to_cell_key((index, 0)).row_key.value for index in range(len(live))] == live
            assert [table.get_row_at(index)[0].plain for index in range(len(live))] == live


async def test_a_longer_value_widens_its_column_and_a_shorter_one_costs_no_remeasure(monkeypatch):
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        sync_table(table, rows(("a", 1), ("b", 2)))
        await pilot.pause()
        sync_table(table, rows(("a", "1m00s and more"), ("b", 2)))
        await pilot.pause()
        assert table.columns[table.ordered_columns[1].key].content_width == len("1m00s and more")
        width_updates = []
        original = table.update_cell

        def spy(row_key, column_key, value, *, update_width=False):
            width_updates.append(update_width)
            original(row_key, column_key, value, update_width=update_width)

        monkeypatch.setattr(table, "update_cell", spy)
        sync_table(table, rows(("a", 3), ("b", 2)))
        assert width_updates == [False]  # narrower: no O(rows) column re-measure asked for
        sync_table(table, rows(("a", "wider than ever before"), ("b", 2)))
        assert width_updates == [False, True]


def spy_rows_read(monkeypatch, table: DataTable) -> list[str]:
    """The keys whose cells sync_table reads back from the table (get_row)."""
    read: list[str] = []
    original = table.get_row

    def spy(row_key):
        read.append(RowKey(row_key).value if isinstance(row_key, str) else row_key.value)
        return original(row_key)

    monkeypatch.setattr(table, "get_row", spy)
    return read


async def test_steady_table_skips_rows_with_the_same_cells_object_and_outside_changes_void_that(monkeypatch):
    app = TableApp(SteadyTable)
    async with app.run_test():
        table = app.query_one(DataTable)
        a, b = (Text("a"), Text("1")), (Text("b"), Text("2"))
        sync_table(table, [("a", a), ("b", b)])
        read = spy_rows_read(monkeypatch, table)
        assert not sync_table(table, [("a", a), ("b", b)]).changed
        assert read == []  # same tuples: no cell looked at
        b2 = (Text("b"), Text("3"))
        assert sync_table(table, [("a", a), ("b", b2)]).updated == 1
        assert read == [] and table.get_cell("b", "value").plain == "3"  # compared with the memo's cells
        read.clear()
        table.update_cell("b", "value", Text("elsewhere"))  # a change not made by sync_table
        stats = sync_table(table, [("a", a), ("b", b2)])
        assert sorted(read) == ["a", "b"]  # the memo is void: both rows compared again
        assert stats.updated == 1 and table.get_cell("b", "value").plain == "3"
        table.clear()
        stats = sync_table(table, [("a", a), ("b", b2)])
        assert stats.added == 2 and keys(table) == ["a", "b"]


async def test_plain_table_compares_every_row_so_outside_changes_are_undone():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        a, b = (Text("a"), Text("1")), (Text("b"), Text("2"))
        sync_table(table, [("a", a), ("b", b)])
        table.update_cell("a", "value", Text("elsewhere"))
        stats = sync_table(table, [("a", a), ("b", b)])
        assert stats.updated == 1 and table.get_cell("a", "value").plain == "1"


async def test_rebuild_after_many_removals_keeps_cursor_row_and_scroll():
    app = TableApp(SteadyTable)
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(DataTable)
        table.cursor_type = "row"
        many = [(f"k{i:03d}", i) for i in range(REBUILD_AFTER * 4)]
        sync_table(table, rows(*many))
        await pilot.pause()
        table.move_cursor(row=100, animate=False)
        await pilot.pause()
        top = table.scroll_y
        assert top > 0
        keep = many[:10] + many[10 + REBUILD_AFTER + 1:]  # rows above the cursor end: a rebuild
        stats = sync_table(table, rows(*keep))
        await pilot.pause()
        assert stats.removed == REBUILD_AFTER + 1 and keys(table) == [k for k, _ in keep]
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == "k100"
        assert table.cursor_row == 100 - REBUILD_AFTER - 1
        assert table.scroll_y > 0  # not thrown back to the top


async def test_reorder_with_indistinguishable_rows_still_places_every_key():
    app = TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        same = ("x", "y")  # the same (interned) cell objects in every row
        sync_table(table, [("a", same), ("b", same), ("c", same)])
        stats = sync_table(table, [("c", same), ("a", same), ("b", same)])
        assert stats.reordered and keys(table) == ["c", "a", "b"]


class TwinTablesApp(App[None]):
    """The same rows in a plain DataTable and in a SteadyTable."""

    def compose(self) -> ComposeResult:
        for table in (DataTable(id="plain", zebra_stripes=True, cursor_type="row"),
                      SteadyTable(id="steady", zebra_stripes=True, cursor_type="row")):
            table.add_column("Name", key="name")
            table.add_column("Value", key="value")
            yield table


def rendered(table: DataTable) -> list[list[tuple[str, object, object]]]:
    """Every line as (text, style without meta, meta): meta carries the row a click lands on."""
    return [[(seg.text, seg.style.copy() if seg.style else None, seg.style.meta if seg.style else None)
             for seg in table.render_line(y)] for y in range(table.size.height)]


@pytest.mark.parametrize("focused", [False, True], ids=["blurred", "focused"])
async def test_steady_table_renders_exactly_like_data_table_as_rows_move_and_change(focused):
    app = TwinTablesApp()
    async with app.run_test(size=(60, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", DataTable)
        assert steady.paints_itself()
        first = [(f"k{n}", (Text(f"row {n}"), Text(str(n), justify="right"))) for n in range(10)]
        later = first[3:5] + [("k5", (Text("row 5"), Text("changed", style="bold")))] + first[6:]
        for step in (first, later):  # later: rows above removed (indexes shift), one cell changed
            for table in (plain, steady):
                sync_table(table, step)
                table.move_cursor(row=1)
            await pilot.pause()
            looks = []
            for table in (plain, steady):  # the focused table styles its header and cursor differently
                app.set_focus(table if focused else None)
                await pilot.pause()
                looks.append(rendered(table))
            assert looks[1] == looks[0]
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
        painted_by_data_table = []
        original = DataTable.render_line

        def counting(self, y):
            if self is steady:
                painted_by_data_table.append(y)
            return original(self, y)

        monkeypatch.setattr(DataTable, "render_line", counting)
        for n in range(3):  # an age ticking: one cell changes per repaint
            for table in (plain, steady):
                table.update_cell("k1", "value", Text(f"tick {n}"))
            await pilot.pause()
            assert rendered(steady) == rendered(plain)
        assert painted_by_data_table == []  # neither the header nor the rows
        for table in (plain, steady):  # a wider column: its label is laid out again
            table.update_cell("k1", "value", Text("a much wider value than before"), update_width=True)
        await pilot.pause()
        assert rendered(steady) == rendered(plain)
        assert painted_by_data_table == [0]  # the header only


async def test_steady_table_scrolled_sideways_renders_like_data_table():
    app = TwinTablesApp()
    async with app.run_test(size=(24, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", DataTable)
        app.set_focus(None)
        rows = [(f"k{n}", (Text(f"a long row name {n}"), Text("x" * (n + 20)))) for n in range(8)]
        for table in (plain, steady):
            sync_table(table, rows)
            table.move_cursor(row=2)
        await pilot.pause()
        for table in (plain, steady):
            table.scroll_to(x=7, animate=False)
        await pilot.pause()
        assert plain.scroll_x == steady.scroll_x == 7
        assert rendered(steady) == rendered(plain)


async def test_steady_table_leaves_the_hover_highlight_and_non_text_cells_to_data_table():
    app = TwinTablesApp()
    async with app.run_test(size=(60, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", DataTable)
        app.set_focus(None)
        rows = [(f"k{n}", (Text(f"row {n}"), f"[b]{n}[/b]")) for n in range(5)]  # markup: DataTable's formatter
        for table in (plain, steady):
            sync_table(table, rows)
        await pilot.pause()
        assert rendered(steady) == rendered(plain)
        await pilot.hover("#steady", offset=(3, 2))
        await pilot.pause()
        assert steady.pointer_over and not steady.paints_itself()
        await pilot.hover("#plain", offset=(3, 2))
        await pilot.pause()
        assert not steady.pointer_over and steady.paints_itself()


async def test_steady_table_repaints_an_unchanged_row_with_the_same_strip():
    """Textual keeps a Strip's terminal output with the Strip: an unchanged line must not be a new one."""
    app = TwinTablesApp()
    async with app.run_test(size=(60, 30)) as pilot:
        steady = app.query_one("#steady", DataTable)
        app.set_focus(None)
        rows = [(f"k{n}", (Text(f"row {n}"), Text(str(n)))) for n in range(5)]
        sync_table(steady, rows)
        await pilot.pause()
        before = [steady.render_line(y) for y in range(1, 6)]
        sync_table(steady, rows[:2] + [("k2", (Text("row 2"), Text("9")))] + rows[3:])  # same width
        await pilot.pause()
        after = [steady.render_line(y) for y in range(1, 6)]
        assert [a is b for a, b in zip(before, after)] == [True, True, False, True, True]
        assert after[2].text.startswith(" row 2  9")
