"""Keyed, in-place DataTable updates.

Every poll produces the full desired table as (key, cells).  Rebuilding the
table each tick loses the cursor and scroll position and costs O(rows) widget
work; instead we update only changed cells, add new keys, remove stale ones,
and restore the desired order — inside `App.batch_update()` so the screen is
repainted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
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


@dataclass
class _Synced:
    """What the last sync left in a table: per key the cells tuple it applied, the row order,
    and the table's update counter and row count then (any other change voids the memo)."""

    cells: dict[str, Sequence[object]]
    order: list[str]
    update_count: int


def sync_table(table: DataTable, rows: Iterable[Row]) -> DiffStats:
    """Make `table` show exactly `rows` (in order) touching only what changed.

    Cells are compared by equality (rich `Text` compares text and spans).  A row whose cells
    are the very tuple the last sync applied is skipped without looking at its cells (callers
    that cache cells make an unchanged 1000-row table an O(rows) dict walk).
    The cursor stays on the same row key when that row survives.
    """
    desired = list(rows)
    memo: _Synced | None = getattr(table, "_ops_synced", None)
    if memo is not None and (memo.update_count != table._update_count or len(memo.cells) != table.row_count):
        memo = None  # changed behind our back (sort, resize, clear, ...): compare everything
    column_keys = [column.key for column in table.ordered_columns]
    cursor_key = _cursor_key(table)
    wanted = {key for key, _ in desired}
    if memo is not None:
        stale = [RowKey(key) for key in memo.cells if key not in wanted]
    else:
        stale = [row_key for row_key in table.rows if row_key.value not in wanted]
    known = memo.cells if memo is not None else {}
    applied: dict[str, Sequence[object]] = {}
    added_keys: list[str] = []
    updated = 0
    with table.app.batch_update():
        _remove_rows(table, stale)
        for key, cells in desired:
            applied[key] = cells
            if known.get(key) is cells:
                continue  # the same cells object as last time: nothing changed
            row_key = RowKey(key)
            if row_key not in table.rows:
                table.add_row(*cells, key=key)
                added_keys.append(key)
                continue
            current = table._data[row_key]  # read-only peek; the public get_row copies
            for column_key, cell in zip(column_keys, cells):
                previous = current.get(column_key)
                if previous is not cell and previous != cell:
                    table.update_cell(row_key, column_key, cell, update_width=_wider(table, column_key, cell))
                    updated += 1
        order = [key for key, _ in desired]
        if memo is not None:
            gone = {row_key.value for row_key in stale}
            current_order = [key for key in memo.order if key not in gone] + added_keys
        else:
            current_order = None
        reordered = _apply_order(table, order, current_order)
        if cursor_key is not None and RowKey(cursor_key) in table.rows:
            index = table.get_row_index(cursor_key)
            if index != table.cursor_row:
                table.move_cursor(row=index, animate=False)
    table._ops_synced = _Synced(applied, order, table._update_count)
    return DiffStats(len(added_keys), updated, len(stale), reordered)


def _wider(table: DataTable, column_key: ColumnKey, cell: object) -> bool:
    """Only a value wider than its column needs a width update: DataTable re-measures the whole
    column for every updated cell that got narrower (O(rows) each, O(rows²) per poll)."""
    width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
    return width > table.columns[column_key].content_width


BULK_REMOVE = 1  # remove_row is O(rows) each (1000 calls, a few ending per poll): beyond one, drop them in one pass


def _remove_rows(table: DataTable, stale: list[RowKey]) -> None:
    if len(stale) <= BULK_REMOVE:
        for row_key in stale:
            table.remove_row(row_key)
        return
    gone = set(stale)
    locations = table._row_locations
    first = min(locations.get(row_key) for row_key in stale)
    # Only the rows below the first removed one move up (1 000 calls: a few end per poll).
    tail = [key for key in map(locations.get_key, range(first, len(locations))) if key not in gone]
    for row_key in stale:
        for column_key in table._data[row_key]:
            table._updated_cells.discard(CellKey(row_key, column_key))
        del table.rows[row_key]
        del table._data[row_key]
        del locations[row_key]
    _relocate(locations, tail, first)
    table._require_update_dimensions = True
    table._update_count += 1
    table.cursor_coordinate = table.cursor_coordinate
    table.refresh(layout=True)


def _relocate(locations: TwoWayDict, keys: list[RowKey], first: int) -> None:
    """Give `keys` the row indexes first, first + 1, ...: they must be every row from `first` on."""
    for key in keys:
        del locations[key]
    for index, key in enumerate(keys, first):
        locations[key] = index


def _cursor_key(table: DataTable) -> str | None:
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def _apply_order(table: DataTable, keys: list[str], current: list[str] | None = None) -> bool:
    """Reorder rows to `keys` without re-adding them (`current`: the table's order, when known).

    DataTable.sort only passes cell values to its key function, so we set the
    row locations exactly as sort() does (textual 8.2: `_row_locations`).
    """
    if current is None:
        current = [row.key.value for row in table.ordered_rows]
    if current == keys:
        return False
    # Rows keep their indexes up to the first difference (new calls sort near the end).
    locations = table._row_locations
    first = next((index for index, (was, now) in enumerate(zip(current, keys)) if was != now), 0)
    moved = [RowKey(key) for key in keys[first:]]
    if set(map(locations.get_key, range(first, len(locations)))) == set(moved):
        _relocate(locations, moved, first)
    else:  # `current` was not the table's order after all: place every row
        table._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(keys)})
    table._update_count += 1
    table.refresh()
    return True


class SteadyTable(DataTable):
    """A DataTable that lays out a cell's text once, not on every repaint.

    DataTable keys its rendered cells on a table-wide update counter: one changed cell (an
    age ticking) re-renders every visible cell from scratch, and a row moving (a call above
    it ended) changes its row index and zebra style, which are baked into the rendering.
    Here the costly part, the cell's text laid out in its width, is kept per cell object
    (sync_table keeps the objects of unchanged cells); the row's styles and its position
    (the mouse metadata) are applied on each render, exactly as DataTable applies them.
    Header, label, fixed and multi-line cells take DataTable's own path.
    """

    LAYOUT_CACHE = 4096  # cells kept: a few screenfuls of a wide table
    RENDER_CACHE = 256  # DataTable's own render caches (rows, lines, header cells): two screenfuls

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._header_cells: dict[tuple, list[list[Segment]]] = {}  # before DataTable's init clears caches
        self._meta_styles: dict[tuple[int, int], Style] = {}  # (row, column) -> the mouse metadata style
        self._styled: dict[tuple[int, int], tuple] = {}  # (row, column) -> (layout, styles, styled lines)
        super().__init__(*args, **kwargs)
        # DataTable keys these caches on its table-wide update counter: after each poll every
        # entry is stale, but sized for 1 000-10 000 entries they keep thousands of dead lines
        # (Strips with their own caches) alive into the oldest GC generation, whose full
        # collections then cost more than the painting (~0.5 % of a core at 1 000 calls).
        # A few screenfuls is all a repaint reuses.
        self._row_render_cache = LRUCache(self.RENDER_CACHE)
        self._cell_render_cache = LRUCache(self.RENDER_CACHE)
        self._row_renderable_cache = LRUCache(self.RENDER_CACHE)
        self._line_cache = LRUCache(self.RENDER_CACHE)
        self._laid_out: dict[tuple[RowKey, ColumnKey], tuple[object, int, int, list[list[Segment]]]] = {}
        self._pass_styles: dict[object, Style] | None = None  # styles computed once per repaint

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's and the rows' styles walk the DOM each time they are asked (per line):
        # within one repaint they cannot change, so they are computed once.
        self._pass_styles = {}
        try:
            return super().render_lines(crop)
        finally:
            self._pass_styles = None

    @property
    def rich_style(self) -> Style:
        memo = self._pass_styles
        if memo is None:
            return super().rich_style
        style = memo.get("widget")
        if style is None:
            style = memo["widget"] = super().rich_style
        return style

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        memo = self._pass_styles
        if memo is None or row_index < self.fixed_rows:  # also the header (-1)
            return super()._get_row_style(row_index, base_style)
        key = (row_index % 2, base_style)
        style = memo.get(key)
        if style is None:
            style = memo[key] = super()._get_row_style(row_index, base_style)
        return style

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._header_cells.clear()
        self._styled.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._header_cells.clear()
        self._styled.clear()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if row_index == -1 and column_index >= 0:
            return self._header_cell(column_index, base_style, width, cursor, hover)
        if row_index < self.fixed_rows or column_index < self.fixed_columns:  # also the label column (-1)
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        if self.rows[row_key].height != 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        column_key = self._column_locations.get_key(column_index)
        lines = self._layout(row_index, column_index, row_key, column_key, width)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        place = (row_index, column_index)
        if len(self._styled) >= self.LAYOUT_CACHE:  # scrolled through a big table: start over
            self._styled.clear()
            self._meta_styles.clear()
        meta = self._meta_styles.get(place)
        if meta is None:  # Style.from_meta serialises the dict: once per place, not per cell per repaint
            meta = self._meta_styles[place] = Style.from_meta({"row": row_index, "column": column_index})
        pre_style = base_style + meta + component_style
        styled = self._styled.get(place)
        if styled is not None and styled[0] is lines and styled[1] == pre_style and styled[2] == post_style:
            return styled[3]  # same text, same place, same look: an unchanged cell of a repainted row
        rendered = [list(Segment.apply_style(line, pre_style, post_style)) for line in lines]
        self._styled[place] = (lines, pre_style, post_style, rendered)
        return rendered

    def _header_cell(self, column_index: int, base_style: Style, width: int, cursor: bool,
                     hover: bool) -> list[list[Segment]]:
        """A column label, rendered by DataTable once per look (DataTable's own cache is keyed on the
        table-wide update counter: it rendered the whole header again after every changed cell)."""
        column_key = self._column_locations.get_key(column_index)
        label = self.columns[column_key].label
        key = (column_index, column_key, label.plain, str(label.style), tuple(label.spans), base_style, width,
               cursor, hover, self._show_hover_cursor, self._pseudo_class_state, self.cell_padding, self.header_height)
        lines = self._header_cells.get(key)
        if lines is None:
            if len(self._header_cells) >= self.LAYOUT_CACHE:
                self._header_cells.clear()
            lines = self._header_cells[key] = super()._render_cell(-1, column_index, base_style, width, cursor, hover)
        return lines

    def _layout(self, row_index: int, column_index: int, row_key: RowKey, column_key: ColumnKey,
                width: int) -> list[list[Segment]]:
        """The cell's text in its padded width, one line, no table styles (cached per value)."""
        value = self._data[row_key].get(column_key)
        cached = self._laid_out.get((row_key, column_key))
        if cached is not None and cached[0] is value and cached[1] == width and cached[2] == self.cell_padding:
            return cached[3]
        cell = self._get_row_renderables(row_index).cells[column_index]
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        lines = self.app.console.render_lines(Padding(cell, (0, self.cell_padding)), options)
        if len(self._laid_out) >= self.LAYOUT_CACHE:
            self._laid_out = {key: entry for key, entry in self._laid_out.items() if key[0] in self.rows}
            if len(self._laid_out) >= self.LAYOUT_CACHE // 2:
                self._laid_out.clear()  # scrolled through a big table: start over
        self._laid_out[(row_key, column_key)] = (value, width, self.cell_padding, lines)
        return lines
