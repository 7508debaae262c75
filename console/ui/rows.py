"""The screens' shared base (Pane) and big-table helpers: which rows are on screen, and their cells
rebuilt only when their item changed."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import DataTable

from console.live_state import LiveView


NOTHING_YET = LiveView()


class Pane(Vertical):
    """One screen's content (keys 1–6).  The app hands it each published view (`refresh_view`)
    and, between polls, the time (`tick`); the pane keeps both to render again on its own keys."""

    title = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: LiveView = NOTHING_YET
        self.now = 0.0

    def on_mount(self) -> None:
        if self.app.no_color:  # NO_COLOR: the cursor row's background is gone; app.tcss reverses it
            self.add_class("no-color")

    def refresh_view(self, view: LiveView, now: float) -> None:
        self.view, self.now = view, now
        self.render_view(view, now)

    def forget_view(self) -> None:
        """Hidden: keep no old view alive (its lists: up to 100k contacts); shown again, the app
        hands it the current one."""
        self.view = NOTHING_YET

    def render_view(self, view: LiveView, now: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def tick(self, view: LiveView, now: float) -> None:
        """Between polls: move the ages.  Panes with big tables override this to touch only their
        status line: any changed cell repaints every visible row, so the tables' own ages and
        countdowns move on each poll instead."""
        self.refresh_view(view, now)

    def detail_keys(self) -> frozenset[str] | None:
        """Call-IDs whose media sessions this pane shows in detail now (None: it shows none)."""
        return None

    def focus_main(self) -> None:
        tables = self.query(DataTable)
        if tables:
            tables.first().focus()


NARROW = 100  # columns: below this the Calls and Media cells shrink (the detail screen has everything)
CALLS_NARROW = 140  # Calls has more columns (quality): its bridge keeps only 'WS->UDP' below this

# Rows beyond the viewport whose ages move too (scrolling a line shows a current age; scrolling
# further, the next tick refreshes them) and whose media sessions are queried each poll.
AGE_MARGIN = 3
DETAIL_MARGIN = 3


def view_rows(table: DataTable, margin: int = 0) -> range:
    """Indexes of the rows on screen, plus `margin` rows either side (one-line rows)."""
    height = table.scrollable_content_region.height - (table.header_height if table.show_header else 0)
    if height <= 0:
        height = table.app.size.height  # not laid out yet: at most a terminal's height
    top = int(table.scroll_y)
    return range(max(0, top - margin), top + height + margin)


def covers(outer: range, inner: range) -> bool:
    return outer.start <= inner.start and inner.stop <= outer.stop



def shown_keys(table: DataTable, order: Sequence[str]) -> frozenset[str]:
    """Keys of the rows on screen (with DETAIL_MARGIN) and of the cursor row."""
    rows = view_rows(table, DETAIL_MARGIN)
    keys = set(order[rows.start:rows.stop])
    if 0 <= table.cursor_row < len(order):
        keys.add(order[table.cursor_row])
    return frozenset(keys)


class RowCells:
    """A big table's cells per row key: rebuilt only when the row's item changed, and the age
    cell moved only for the rows asked (those on screen).  Any changed cell repaints the table
    and costs a DataTable update, so off-screen ages would cost O(rows) per poll for nothing;
    the pane refreshes them when they scroll into view."""

    def __init__(self, build: Callable[[Any, float, bool], tuple[Text, ...]],
                 age: Callable[[Any, float], Text], age_column: int) -> None:
        self.build, self.age, self.age_column = build, age, age_column
        self.cache: dict[str, tuple[Any, bool, tuple[Text, ...]]] = {}

    def rows(self, items: Sequence[tuple[str, Any]], now: float, narrow: bool, aged: range) -> list[tuple[str, tuple[Text, ...]]]:
        cache, fresh, column = self.cache, {}, self.age_column
        out: list[tuple[str, tuple[Text, ...]]] = []
        for index, (key, item) in enumerate(items):
            cached = cache.get(key)
            if cached is None or cached[1] != narrow or (cached[0] is not item and cached[0] != item):
                cells = self.build(item, now, narrow)
            else:
                cells = cached[2]
                if index in aged:
                    age = self.age(item, now)
                    if age != cells[column]:
                        cells = cells[:column] + (age,) + cells[column + 1:]
            fresh[key] = (item, narrow, cells)
            out.append((key, cells))
        self.cache = fresh
        return out


