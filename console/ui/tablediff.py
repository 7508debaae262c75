"""Keyed, in-place DataTable updates, through DataTable's public API only.

Every poll produces the full desired table as (key, cells).  Rebuilding the
table each tick loses the cursor and scroll position and costs O(rows) widget
work; instead we update only changed cells, add new keys, remove stale ones,
and restore the desired order — inside `App.batch_update()` so the screen is
repainted once.  No private DataTable state is read or written: a Textual
upgrade may change all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Row = tuple[str, Sequence[object]]

# DataTable.remove_row renumbers every row and re-measures the cursor (~5 µs a row, each time);
# a row added costs ~0.35 ms (mostly measuring its cells for the column widths): beyond this many
# stale rows, clearing and adding the rows again is cheaper than removing them one by one.
REBUILD_AFTER = 64


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
    """What the last sync left in a SteadyTable: per key the cells tuple it applied, the row
    order, and the table's edit counter then (any other edit voids the memo)."""

    cells: dict[str, Sequence[object]]
    order: list[str]
    edits: int


@dataclass(frozen=True)
class _Look:
    """The styles one repaint uses (they walk the DOM each time they are asked for)."""

    base: Style  # the widget's
    header: Style
    even: Style  # the rows' (zebra stripes), or the widget's style
    odd: Style
    cursor: Style  # the cursor's component style ("datatable--cursor"), or a null style
    post: Style  # what DataTable applies after the cell's own style (cursor CSS priority)
    show_cursor: bool
    columns: tuple[tuple[ColumnKey, int], ...]  # (key, width with padding) in order
    table_width: int


_NO_STYLE = Style()  # DataTable's "no component style" (Style() + nothing)
_NULL_STYLE = Style.null()


class SteadyTable(DataTable):
    """A DataTable for big, often-changing tables, fed by sync_table.

    It counts every edit made through its public methods, so sync_table can trust what it
    applied last time and skip rows whose cells are the very same objects.

    It also paints its one-line rows itself (Textual's Line API: `render_line`).  DataTable
    renders every visible cell again after any change anywhere in the table (its render caches
    are keyed on a table-wide counter: one age ticking re-lays out the whole screen); here a
    cell's text laid out in its width is kept per cell object, the row's styles applied on each
    paint exactly as DataTable applies them.  Everything DataTable does that this does not
    copy takes DataTable's own path: the header (cached here as painted lines), row labels,
    multi-line rows, fixed rows/columns, cell/column cursors, non-Text cells, and the hover
    highlight (while the mouse pointer is over the table).
    """

    LAYOUT_CACHE = 4096  # cells kept: a few screenfuls of a wide table

    edits = 0  # bumped by every data-changing call; sync_table compares it with its memo
    synced: _Synced | None = None  # the memo of the last sync_table
    plain_rows = True  # every row one line high and without a label: this class can paint them
    pointer_over = False  # the mouse pointer is over the table: DataTable paints (hover highlight)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.look: _Look | None = None  # during a repaint
        self.laid_out: dict[tuple[RowKey, ColumnKey], tuple[object, int, int, list[list[Segment]]]] = {}
        self.styled: dict[tuple[int, int], tuple[object, tuple[Style, Style, Style], list[Segment]]] = {}
        self.meta_styles: dict[tuple[int, int], Style] = {}  # Style.from_meta serialises its dict: once per place
        self.header_lines: dict[tuple, Strip] = {}
        self.strips: dict[int, tuple[tuple, list[list[Segment]], Strip]] = {}  # row index -> its last line

    # ------------------------------------------------------------------ edits (counted)

    def count_edit(self) -> None:
        self.edits += 1

    def update_cell(self, *args: Any, **kwargs: Any) -> None:
        self.count_edit()
        super().update_cell(*args, **kwargs)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        self.count_edit()
        if height != 1 or label is not None:
            self.plain_rows = False
        return super().add_row(*cells, height=height, key=key, label=label)

    def remove_row(self, *args: Any, **kwargs: Any) -> None:
        self.count_edit()
        super().remove_row(*args, **kwargs)

    def add_column(self, *args: Any, **kwargs: Any) -> ColumnKey:
        self.count_edit()
        return super().add_column(*args, **kwargs)

    def remove_column(self, *args: Any, **kwargs: Any) -> None:
        self.count_edit()
        super().remove_column(*args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        self.count_edit()
        return super().clear(*args, **kwargs)

    def sort(self, *args: Any, **kwargs: Any) -> Any:
        self.count_edit()
        return super().sort(*args, **kwargs)

    # ------------------------------------------------------------------ the mouse pointer

    def on_mouse_move(self, _event: events.MouseMove) -> None:
        self.pointer_over = True

    def on_click(self, _event: events.Click) -> None:
        self.pointer_over = True

    def on_leave(self, _event: events.Leave) -> None:
        self.pointer_over = False
        self.refresh()

    # ------------------------------------------------------------------ painting

    def render_lines(self, crop: Region) -> list[Strip]:
        self.look = self.current_look()
        try:
            return super().render_lines(crop)
        finally:
            self.look = None

    def current_look(self) -> _Look:
        base = self.rich_style
        if self.zebra_stripes:
            even = self.get_component_styles("datatable--even-row").rich_style
            odd = self.get_component_styles("datatable--odd-row").rich_style
        else:
            even = odd = base
        cursor = Style() + self.get_component_rich_style("datatable--cursor") if self.show_cursor else Style()
        post_color = Style.from_color(color=cursor.color) if self.cursor_foreground_priority == "css" else Style.null()
        post_bg = Style.from_color(bgcolor=cursor.bgcolor) if self.cursor_background_priority == "css" else Style.null()
        columns = tuple((column.key, column.get_render_width(self)) for column in self.ordered_columns)
        return _Look(base, self.get_component_styles("datatable--header").rich_style, even, odd, cursor,
                     post_color + post_bg, self.show_cursor, columns, sum(width for _key, width in columns))

    def paints_itself(self) -> bool:
        return (self.plain_rows and not self.pointer_over and self.cursor_type == "row"
                and not self.fixed_rows and not self.fixed_columns)

    def render_line(self, y: int) -> Strip:
        if not self.paints_itself():
            return super().render_line(y)
        look = self.look or self.current_look()
        header = self.header_height if self.show_header else 0
        if y < header:
            return self.header_line(y, look)
        scroll_x, scroll_y = self.scroll_offset
        row_index = y - header + scroll_y
        width = self.size.width
        if row_index >= self.row_count:
            return Strip.blank(width, look.base)
        row_key = self.ordered_rows[row_index].key
        cells = self.get_row(row_key)
        if not all(isinstance(cell, Text) or cell is None for cell in cells):
            return super().render_line(y)  # strings are markup to DataTable: its own formatter
        parts, extend = self.row_parts(row_index, row_key, cells, look)
        key = (scroll_x, width, look.base, extend)
        cached = self.strips.get(row_index)
        if cached is not None and cached[0] == key and all(a is b for a, b in zip(cached[1], parts)) \
                and len(cached[1]) == len(parts):
            return cached[2]  # the same cells painted alike: the same Strip (Textual caches its output)
        segments = [segment for part in parts for segment in part]
        segments.append(extend)
        strip = Strip(segments).crop(scroll_x, scroll_x + width).adjust_cell_length(width, look.base).simplify()
        if len(self.strips) >= self.LAYOUT_CACHE:
            self.strips.clear()
        self.strips[row_index] = (key, parts, strip)
        return strip

    def row_parts(self, row_index: int, row_key: RowKey, cells: list[Any],
                  look: _Look) -> tuple[list[list[Segment]], Segment]:
        """The row's line as DataTable composes it: each cell's segments, then a segment that
        carries the row's style to the right edge."""
        row_style = look.odd if row_index % 2 else look.even
        on_cursor = row_index == self.cursor_row
        component = look.cursor if on_cursor else _NO_STYLE
        post = look.post if on_cursor else _NULL_STYLE
        parts: list[list[Segment]] = []
        for column_index, ((column_key, width), cell) in enumerate(zip(look.columns, cells)):
            lines = self.cell_lines(row_key, column_key, cell, width)
            parts.append(self.styled_line(row_index, column_index, lines, row_style, component, post))
        remaining = max(0, self.size.width - look.table_width)
        extend = row_style + component + self.meta_style(row_index, -1)
        return parts, Segment(" " * remaining, extend)

    def meta_style(self, row_index: int, column_index: int) -> Style:
        """The mouse metadata of a cell (which row a click lands on); column -1: right of the table."""
        place = (row_index, column_index)
        meta = self.meta_styles.get(place)
        if meta is None:
            if len(self.meta_styles) >= self.LAYOUT_CACHE:
                self.meta_styles.clear()
            if column_index < 0:  # right of the last column
                meta = Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
            else:
                meta = Style.from_meta({"row": row_index, "column": column_index})
            self.meta_styles[place] = meta
        return meta

    def styled_line(self, row_index: int, column_index: int, lines: list[list[Segment]], row_style: Style,
                    component: Style, post: Style) -> list[Segment]:
        """The cell's line in its row's style, as DataTable styles it (row style, mouse metadata,
        cursor), kept per place: an unchanged cell of a repainted row costs a lookup."""
        place = (row_index, column_index)
        styled = self.styled.get(place)
        if styled is not None and styled[0] is lines and styled[1] == (row_style, component, post):
            return styled[2]
        pre = row_style + self.meta_style(row_index, column_index) + component
        line = list(Segment.apply_style(lines[0], pre, post))
        if len(self.styled) >= self.LAYOUT_CACHE:  # scrolled through a big table: start over
            self.styled.clear()
        self.styled[place] = (lines, (row_style, component, post), line)
        return line

    def cell_lines(self, row_key: RowKey, column_key: ColumnKey, cell: Text | None, width: int) -> list[list[Segment]]:
        """The cell's text in its padded width, one line, no table styles (cached per cell object)."""
        padding = self.cell_padding
        cached = self.laid_out.get((row_key, column_key))
        if cached is not None and cached[0] is cell and cached[1] == width and cached[2] == padding:
            return cached[3]
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        renderable = cell if cell is not None else Text(end="")
        lines = self.app.console.render_lines(Padding(renderable, (0, padding)), options)
        if len(self.laid_out) >= self.LAYOUT_CACHE:
            self.laid_out = {key: entry for key, entry in self.laid_out.items() if key[0] in self.rows}
            if len(self.laid_out) >= self.LAYOUT_CACHE // 2:
                self.laid_out.clear()  # scrolled through a big table: start over
        self.laid_out[(row_key, column_key)] = (cell, width, padding, lines)
        return lines

    def header_line(self, y: int, look: _Look) -> Strip:
        """DataTable paints the header, once per look: its own cache is voided by any changed cell."""
        columns = tuple((column.key, column.label.plain, str(column.label.style), tuple(column.label.spans),
                         column.get_render_width(self)) for column in self.ordered_columns)
        key = (y, self.scroll_x, self.size.width, look, columns, self.has_focus, self.cursor_type)
        strip = self.header_lines.get(key)
        if strip is None:
            if len(self.header_lines) >= 64:
                self.header_lines.clear()
            strip = self.header_lines[key] = super().render_line(y)
        return strip


def sync_table(table: DataTable, rows: Iterable[Row]) -> DiffStats:
    """Make `table` show exactly `rows` (in order) touching only what changed.

    Cells are compared by equality (rich `Text` compares text and spans).  In a SteadyTable, a
    row whose cells are the very tuple the last sync applied is skipped without looking at its
    cells (callers that cache cells make an unchanged 1000-row table an O(rows) dict walk).
    The cursor stays on the same row key when that row survives, and the scroll offset stays.
    """
    desired = list(rows)
    memo = _valid_memo(table)
    current = memo.order if memo is not None else [row.key.value for row in table.ordered_rows]
    wanted = {key for key, _ in desired}
    stale = [key for key in current if key not in wanted]
    cursor_key = _cursor_key(table)
    with table.app.batch_update():
        if len(stale) > REBUILD_AFTER:
            stats = _rebuild(table, desired, set(current), len(stale))
        else:
            stats = _patch(table, desired, memo, current, stale)
        if cursor_key is not None and RowKey(cursor_key) in table.rows:
            index = table.get_row_index(cursor_key)
            if index != table.cursor_row:
                table.move_cursor(row=index, animate=False)
    if isinstance(table, SteadyTable):
        table.synced = _Synced({key: cells for key, cells in desired}, [key for key, _ in desired], table.edits)
    return stats


def _valid_memo(table: DataTable) -> _Synced | None:
    if not isinstance(table, SteadyTable):
        return None
    memo = table.synced
    if memo is None or memo.edits != table.edits or len(memo.cells) != table.row_count:
        return None  # edited behind our back (sort, clear, update_cell, ...): compare everything
    return memo


def _patch(table: DataTable, desired: list[Row], memo: _Synced | None, current: list[str],
           stale: list[str]) -> DiffStats:
    """Remove the stale rows, update the changed cells, append the new rows, then reorder."""
    for key in stale:
        table.remove_row(key)
    column_keys = [column.key for column in table.ordered_columns]
    known = memo.cells if memo is not None else {}
    added_keys: list[str] = []
    updated = 0
    for key, cells in desired:
        previous = known.get(key)
        if previous is cells:
            continue  # the same cells object as last time: nothing changed
        row_key = RowKey(key)
        if previous is None and row_key not in table.rows:
            table.add_row(*cells, key=key)
            added_keys.append(key)
        else:  # the memo's cells equal the table's (no edit since): no need to read them back
            updated += _update_row(table, row_key, column_keys, cells, previous)
    gone = set(stale)
    now = [key for key in current if key not in gone] + added_keys
    order = [key for key, _ in desired]
    reordered = now != order
    if reordered:
        _reorder(table, desired)
    return DiffStats(len(added_keys), updated, len(stale), reordered)


def _update_row(table: DataTable, row_key: RowKey, column_keys: list[ColumnKey], cells: Sequence[object],
                previous_cells: Sequence[object] | None) -> int:
    changed = 0
    if previous_cells is None:
        previous_cells = table.get_row(row_key)
    for column_key, previous, cell in zip(column_keys, previous_cells, cells):
        if previous is not cell and previous != cell:
            table.update_cell(row_key, column_key, cell, update_width=_wider(table, column_key, cell))
            changed += 1
    return changed


def _wider(table: DataTable, column_key: ColumnKey, cell: object) -> bool:
    """Only a value wider than its column needs a width update: DataTable re-measures the whole
    column for every updated cell that got narrower (O(rows) each, O(rows²) per poll)."""
    width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
    return width > table.columns[column_key].content_width


def _reorder(table: DataTable, desired: list[Row]) -> None:
    """Put the rows in the desired order with DataTable.sort (rows keep their objects, the table
    its scroll offset).  sort's key function sees only a row's cells, so a row is known by the
    identities of the cell objects the table holds for it; rows that cannot be told apart that
    way (the same objects twice, e.g. interned strings) are placed by clearing and adding again."""
    place = {_identity(table.get_row(key)): index for index, (key, _cells) in enumerate(desired)}
    if len(place) != len(desired):
        _refill(table, desired)
        return
    table.sort(key=lambda cells: place[_identity(cells)])


def _identity(cells: Iterable[object]) -> tuple[int, ...]:
    return tuple(sorted(map(id, cells)))  # sorted: independent of the order sort hands the cells in


def _rebuild(table: DataTable, desired: list[Row], present: set[str], removed: int) -> DiffStats:
    """Many rows gone at once (a filter, a mass hangup): clear and add the rows again."""
    updated = 0
    for key, cells in desired:
        if key in present:
            previous = table.get_row(key)
            updated += sum(1 for old, new in zip(previous, cells) if old is not new and old != new)
    _refill(table, desired)
    added = sum(1 for key, _ in desired if key not in present)
    return DiffStats(added, updated, removed, False)


def _refill(table: DataTable, desired: list[Row]) -> None:
    """Clear the rows and add `desired`, keeping the scroll offset (clear() scrolls to the top)."""
    scroll_x, scroll_y = table.scroll_x, table.scroll_y
    table.clear()
    for key, cells in desired:
        table.add_row(*cells, key=key)
    table.scroll_to(x=scroll_x, y=scroll_y, animate=False)


def _cursor_key(table: DataTable) -> str | None:
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
