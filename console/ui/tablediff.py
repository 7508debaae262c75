"""Keyed, in-place DataTable updates.

Every poll produces the full desired table as (key, cells).  Rebuilding the
table each tick loses the cursor and scroll position and costs O(rows) widget
work; instead we update only changed cells, add new keys, remove stale ones,
and restore the desired order — inside `App.batch_update()` so the screen is
repainted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

Row = tuple[str, Sequence[object]]


@dataclass(frozen=True)
class DiffStats:
    added: int = 0
    updated: int = 0  # cells changed
    removed: int = 0
    reordered: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.reordered)


def sync_table(table: DataTable, rows: Iterable[Row]) -> DiffStats:
    """Make `table` show exactly `rows` (in order) touching only what changed.

    Cells are compared by equality (rich `Text` compares text and spans).
    The cursor stays on the same row key when that row survives.
    """
    desired = list(rows)
    column_keys = [column.key for column in table.ordered_columns]
    cursor_key = _cursor_key(table)
    wanted = {key for key, _ in desired}
    stale = [row_key for row_key in table.rows if row_key.value not in wanted]
    added = updated = 0
    with table.app.batch_update():
        _remove_rows(table, stale)
        for key, cells in desired:
            row_key = RowKey(key)
            if row_key not in table.rows:
                table.add_row(*cells, key=key)
                added += 1
                continue
            current = table._data[row_key]  # read-only peek; the public get_row copies
            for column_key, cell in zip(column_keys, cells):
                previous = current.get(column_key)
                if previous is not cell and previous != cell:
                    table.update_cell(row_key, column_key, cell, update_width=_wider(table, column_key, cell))
                    updated += 1
        reordered = _apply_order(table, [key for key, _ in desired])
        if cursor_key is not None and RowKey(cursor_key) in table.rows:
            index = table.get_row_index(cursor_key)
            if index != table.cursor_row:
                table.move_cursor(row=index, animate=False)
    return DiffStats(added, updated, len(stale), reordered)


def _wider(table: DataTable, column_key: ColumnKey, cell: object) -> bool:
    """Only a value wider than its column needs a width update: DataTable re-measures the whole
    column for every updated cell that got narrower (O(rows) each, O(rows²) per poll)."""
    width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
    return width > table.columns[column_key].content_width


BULK_REMOVE = 32  # remove_row is O(rows) each; beyond this, drop them in one pass


def _remove_rows(table: DataTable, stale: list[RowKey]) -> None:
    if len(stale) <= BULK_REMOVE:
        for row_key in stale:
            table.remove_row(row_key)
        return
    gone = set(stale)
    survivors = [row.key for row in table.ordered_rows if row.key not in gone]
    for row_key in stale:
        for column_key in table._data[row_key]:
            table._updated_cells.discard(CellKey(row_key, column_key))
        del table.rows[row_key]
        del table._data[row_key]
    table._row_locations = TwoWayDict({row_key: index for index, row_key in enumerate(survivors)})
    table._require_update_dimensions = True
    table._update_count += 1
    table.cursor_coordinate = table.cursor_coordinate
    table.refresh(layout=True)


def _cursor_key(table: DataTable) -> str | None:
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def _apply_order(table: DataTable, keys: list[str]) -> bool:
    """Reorder rows to `keys` without re-adding them.

    DataTable.sort only passes cell values to its key function, so we set the
    row locations exactly as sort() does (textual 8.2: `_row_locations`).
    """
    current = [row.key.value for row in table.ordered_rows]
    if current == keys:
        return False
    table._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(keys)})
    table._update_count += 1
    table.refresh()
    return True
