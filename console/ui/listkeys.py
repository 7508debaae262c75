"""One list behaviour for every table (#14 items 9, 10, 17): `/` filter over all visible text,
`s` next sort column, `r` reverse, Esc closes the innermost thing; columns sized to their content,
the least useful dropped first when the screen is narrow, and a hint that more columns exist.

`ListView` is the pure part (rows in, rows out); `ListPane` gives a screen the keys, the filter
box and the hint in a few lines: compose `self.filter_box()`, pass the rows through
`self.present(table, rows)` before `sync_table`, show `self.list_hint()` in the status line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input
from textual.widgets.data_table import RowKey

from .rows import Pane
from .safe import safe_text
from .tablediff import sync_table

Row = tuple[str, Sequence[Any]]
Column = tuple[str, str]  # (key, label)

_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?%?$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (86400, 3600, 60, 1)
CELL_PADDING = 2  # DataTable's cell_padding (1) on either side
# A hidden column comes back (at the same width) only with this many cells to spare: re-laying the
# columns re-adds every row (~0.35 ms each), so a column must not flap as an age grows a digit.
SLACK = 4


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else "" if cell is None else str(cell)


def sort_value(cell: object) -> tuple:
    """Numbers and durations ('3m05s') by value, before words; words case-insensitively;
    '-' and empty cells last."""
    text = plain(cell).strip()
    if not text or text == "-":
        return (2, 0.0, "")
    if _NUMBER.match(text):
        return (0, float(text.replace(",", "").rstrip("%")), "")
    match = _DURATION.match(text)
    if match and any(match.groups()):
        return (0, float(sum(int(part or 0) * unit for part, unit in zip(match.groups(), _UNITS))), "")
    return (1, 0.0, text.lower())


def fit_columns(columns: Sequence[Column], widths: dict[str, int], room: int,
                priority: Sequence[str]) -> tuple[str, ...]:
    """The columns that fit in `room` cells, most useful first (`priority`; columns not named
    there come last), shown in their own order.  The first column is always shown."""
    order = [key for key in priority if key in widths] + [key for key, _ in columns if key not in priority]
    chosen: set[str] = set()
    used = 0
    for number, key in enumerate(order):
        width = widths[key] + CELL_PADDING
        if number == 0 or used + width <= room:
            chosen.add(key)
            used += width
    return tuple(key for key, _ in columns if key in chosen)


@dataclass
class ListView:
    """Filter text, sort column (None: the list's own order) and direction of one list."""

    columns: Sequence[Column]
    filter_text: str = ""
    sort: str | None = None
    reverse: bool = False
    shown: tuple[str, ...] = ()  # the columns on screen (all until fitted)
    matched: int = 0
    total: int = 0
    _projected: dict[str, tuple[Sequence[Any], tuple[str, ...], tuple]] = field(default_factory=dict)
    _widths: dict[str, tuple[Sequence[Any], tuple[int, ...]]] = field(default_factory=dict)
    _room: int = 0  # the width the columns were last fitted to

    def __post_init__(self) -> None:
        self.shown = tuple(key for key, _ in self.columns)

    @property
    def natural(self) -> bool:
        """The list as it comes (no filter, no sort, not reversed): row i is item i."""
        return not self.filter_text and self.sort is None and not self.reverse

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.columns]

    def label(self, key: str) -> str:
        return dict(self.columns).get(key, key)

    def next_sort(self) -> None:
        """Through the shown columns, then back to the list's own order."""
        keys = list(self.shown)
        if self.sort is None:
            self.sort = keys[0]
        elif self.sort in keys and keys.index(self.sort) + 1 < len(keys):
            self.sort = keys[keys.index(self.sort) + 1]
        else:
            self.sort = None

    def select(self, rows: Sequence[Row]) -> list[Row]:
        """The rows matching the filter (any visible text, case-insensitive), sorted."""
        self.total = len(rows)
        needle = self.filter_text.lower().strip()
        if needle:
            rows = [row for row in rows if any(needle in plain(cell).lower() for cell in row[1])]
        if self.sort is not None and self.sort in self.keys:
            column = self.keys.index(self.sort)
            rows = sorted(rows, key=lambda row: sort_value(row[1][column]), reverse=self.reverse)
        elif self.reverse:
            rows = list(reversed(rows))
        self.matched = len(rows)
        return list(rows)

    def fit(self, rows: Sequence[Row], room: int, priority: Sequence[str]) -> bool:
        """Choose the columns for `room` cells from the rows' widest cells; True when they changed.
        A row's cell widths are measured once per cells tuple (unchanged rows keep theirs: 1000
        calls are 9000 measurements a poll otherwise)."""
        known, fresh = self._widths, {}
        for key, cells in rows:
            cached = known.get(key)
            if cached is None or cached[0] is not cells:
                cached = (cells, tuple(_width(cell) for cell in cells))
            fresh[key] = cached
        self._widths = fresh
        widest = [max(column) for column in zip(*(widths for _cells, widths in fresh.values()))] if fresh else []
        widths = {}
        for index, (key, label) in enumerate(self.columns):
            content = widest[index] if index < len(widest) else 0
            widths[key] = max(content, len(label) + (2 if key == self.sort else 0))
        if room <= 0:
            return False
        shown = fit_columns(self.columns, widths, room, priority)
        if shown != self.shown and room == self._room and self._fits(self.shown, widths, room) \
                and set(self.shown) <= set(shown) and fit_columns(self.columns, widths, room - SLACK, priority) != shown:
            shown = self.shown  # a column would come back by a cell or two: no flapping as values grow and shrink
        changed = shown != self.shown
        self.shown, self._room = shown, room
        return changed

    @staticmethod
    def _fits(shown: Sequence[str], widths: dict[str, int], room: int) -> bool:
        return sum(widths[key] + CELL_PADDING for key in shown) <= room

    def project(self, rows: Sequence[Row]) -> list[Row]:
        """Each row's cells of the shown columns; an unchanged row keeps its projected tuple
        (sync_table skips a row whose cells are the very object it applied last time)."""
        if len(self.shown) == len(self.columns):
            return list(rows)
        positions = [self.keys.index(key) for key in self.shown]
        cache, fresh, out = self._projected, {}, []
        for key, cells in rows:
            cached = cache.get(key)
            if cached is not None and cached[0] is cells and cached[1] == self.shown:
                projected = cached[2]
            else:
                projected = tuple(cells[i] for i in positions)
            fresh[key] = (cells, self.shown, projected)
            out.append((key, projected))
        self._projected = fresh
        return out

    def hidden(self) -> list[str]:
        return [label for key, label in self.columns if key not in self.shown]

    def hint(self, noun: str = "rows") -> Text:
        """'3 of 9 rows match "udp"  sort Age ↓  +2 cols → (Enter: detail)'."""
        out = Text(end="")
        if self.filter_text:
            out.append(f"{self.matched:,} of {self.total:,} {noun} match ")
            out.append_text(safe_text(self.filter_text, 30, style="bold"))
            out.append("  ")
        if self.sort is not None:
            out.append(f"sort {self.label(self.sort)} {'↓' if self.reverse else '↑'}  ")
        elif self.reverse:
            out.append("reversed  ")
        hidden = self.hidden()
        if hidden:
            out.append(f"+{len(hidden)} cols → ", style="bold")
            out.append(f"({', '.join(hidden)}: Enter for the detail)", style="dim")
        return out


def _width(cell: object) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(plain(cell))


# The keys every list answers (a ListPane, and the MI answer's tree): the same words on every screen.
LIST_KEYS = [
    Binding("slash", "open_filter", "Filter"),
    Binding("s", "cycle_sort", "Sort"),
    Binding("r", "reverse_sort", "Reverse"),
    Binding("escape", "close_innermost", "Close", show=False),
]


class ListPane(Pane):
    """A screen whose main list has the shared keys.  Subclasses set COLUMNS and PRIORITY and
    name their table (`list_table`); they call `present` and show `list_hint`."""

    COLUMNS: Sequence[Column] = ()
    PRIORITY: Sequence[str] = ()  # most useful first: the last ones go first at narrow widths
    NOUN = "rows"
    BINDINGS = LIST_KEYS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listing = ListView(self.COLUMNS)

    # ------------------------------------------------------------------ composing

    def filter_box(self) -> Input:
        return Input(placeholder="filter: any text in the rows (Enter keeps, Esc clears)",
                     id=f"{self.id}-filter", classes="hidden list-filter")

    def list_table(self) -> DataTable:
        return self.query(DataTable).first()

    # ------------------------------------------------------------------ rows

    def show_rows(self, table: DataTable, rows: Sequence[Row]) -> list[Row]:
        """Filtered, sorted, cut to the columns that fit, synced into `table`; the rows shown.
        When the columns change the cursor stays on its row."""
        selected = self.listing.select(rows)
        room = table.scrollable_content_region.width or (self.app.size.width - 2)
        changed = self.listing.fit(selected, room, self.PRIORITY or self.listing.keys)
        cursor = None
        if changed or len(table.columns) != len(self.listing.shown):
            cursor = cursor_key(table)
            set_columns(table, self.listing)
        shown = self.listing.project(selected)
        sync_table(table, shown)
        if cursor is not None and RowKey(cursor) in table.rows:
            table.move_cursor(row=table.get_row_index(cursor), animate=False)
        return shown

    def list_hint(self) -> Text:
        return self.listing.hint(self.NOUN)

    def relist(self) -> None:
        """After a list key: the same view again, the cursor on the first row (never left where
        the previously selected row went: a reverse would jump the view to the end)."""
        self.render_view(self.view, self.now)
        table = self.list_table()
        if table.row_count:
            table.move_cursor(row=0, animate=False)
        table.scroll_home(animate=False)

    # ------------------------------------------------------------------ keys

    def action_open_filter(self) -> None:
        box = self.query_one(".list-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_cycle_sort(self) -> None:
        self.listing.next_sort()
        self.relist()

    def action_reverse_sort(self) -> None:
        self.listing.reverse = not self.listing.reverse
        self.relist()

    def action_close_innermost(self) -> None:
        """Esc: close the filter (clearing it); with nothing open, stay on this screen."""
        box = self.query_one(".list-filter", Input)
        if box.has_class("hidden") and not self.listing.filter_text:
            return
        box.value = ""
        box.add_class("hidden")
        self.listing.filter_text = ""
        self.list_table().focus()
        self.relist()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.has_class("list-filter"):
            event.stop()
            self.listing.filter_text = event.value
            self.relist()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.has_class("list-filter"):
            event.stop()
            if not self.listing.filter_text:
                event.input.add_class("hidden")
            self.list_table().focus()

    def on_resize(self, _event: Any) -> None:
        if self.view is not None and self.is_mounted:
            self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.display and self.now:
            self.render_view(self.view, self.now)


def set_columns(table: DataTable, listing: ListView) -> None:
    """Show `listing.shown` (the rows are added again by the sync that follows)."""
    table.clear(columns=True)
    labels = dict(listing.columns)
    for key in listing.shown:
        table.add_column(labels[key], key=key)


def cursor_key(table: DataTable) -> str | None:
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
