"""Screen 0, Fleet: one row per node (console.fleet.FleetRow), with every list's keys (/ filter, s
sort, r reverse: console.ui.listkeys); Enter focuses a node, and screens 1–6 then show that node.

The rows come from the app (`rows_source`: the fleet session's `rows()`); every cell that a node
or the network chose (name, labels, version, check id, error text) is shown literally
(console.ui.safe), never as markup.  Unknown values show as "?", never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Static

from console.fleet import FleetSession, TargetSpec
from console.live_state import LiveView
from console.model import Status

from . import format as fmt
from .listkeys import ListPane, ListView, Row, plain
from .safe import safe_text, show_text
from .tablediff import SteadyTable

FLEET_COLUMNS = (("name", "Node"), ("labels", "Labels"), ("version", "Version"), ("uptime", "Uptime"),
                 ("load", "Load"), ("shm", "Shm"), ("contacts", "Contacts"), ("dialogs", "Dialogs"),
                 ("media", "Media"), ("ports", "Ports"), ("status", "Worst"), ("check", "Check"),
                 ("error", "Last error"), ("age", "Age"))
# worst first when the operator sorts by status: FAIL, WARN, UNKNOWN, OK
SEVERITY = {"FAIL": 0, "WARN": 1, "UNKNOWN": 2, "OK": 3}
STATUS_OF = {"OK": Status.OK, "WARN": Status.WARN, "FAIL": Status.FAIL, "UNKNOWN": Status.UNKNOWN}
FOCUS_MARK = "▶ "
UNNAMED = "(default)"  # the one target of the flat options has no name


def single_fleet(service: Any, *, interval: float, clock: Callable[[], float]) -> FleetSession:
    """The console of one node (today's flat options, or a test's service) as a fleet of one."""
    config = getattr(service, "config", None)
    spec = TargetSpec(getattr(config, "name", "") or "", labels=dict(getattr(config, "labels", None) or {}))
    return FleetSession([spec], config, interval=interval, clock=clock, services={spec.name: service})


def console_fleet(args: Any, config: Any, plugins: Any, service: Any) -> FleetSession | None:
    """The console's fleet when the config names several nodes (its [[targets]], or `--demo-nodes`),
    else None (one node: the app makes its fleet of one).  `service` (the node `--target` or the
    first target chose) is reused for its node; it is focused first."""
    from console.fleet import config_for
    from console.fleet_targets import targets_from
    from console.service import ConsoleService

    targets = list(config.targets) if config.demo else targets_from(args, config)
    if len(targets) < 2:
        return None
    services = {spec.name: service if spec.name == config.name else ConsoleService(config_for(config, spec), plugins=plugins)
                for spec in targets}
    focus = config.name if config.name in services else targets[0].name
    return FleetSession(targets, config, interval=config.interval, focus=focus, services=services)


def row_key(row: Any) -> str:
    return row.name or UNNAMED


@dataclass
class FocusNode(Message):
    """Enter on a Fleet row: screens 1–6 show this node from now on."""

    name: str


def _unknown() -> Text:
    return Text("?", style="dim", end="")


def _number(value: float | int | None, suffix: str = "") -> Text:
    if value is None:
        return _unknown()
    return Text(f"{fmt.count(round(value, 1) if isinstance(value, float) else value)}{suffix}", end="")


def _ports(used: int | None, total: int | None) -> Text:
    if used is None and total is None:
        return _unknown()
    return Text(f"{fmt.count(used) if used is not None else '?'}/{fmt.count(total) if total is not None else '?'}",
                end="")


def _labels(labels: Any) -> Text:
    return safe_text(" ".join(f"{k}={v}" for k, v in sorted((labels or {}).items())), 28)


def status_cell(word: str | None) -> Text:
    status = STATUS_OF.get(str(word or "UNKNOWN").upper())
    return fmt.status_word(status) if status is not None else safe_text(word, 8)


def fleet_cells(row: Any, focused: bool) -> tuple[Text, ...]:
    name = Text(FOCUS_MARK if focused else "  ", style="bold", end="")
    name.append_text(safe_text(row.name or UNNAMED, 24, style="bold" if focused else ""))
    uptime = Text(fmt.duration(row.uptime_s), end="") if row.uptime_s is not None else _unknown()
    return (name, _labels(row.labels), safe_text(row.version, 16) if row.version else _unknown(), uptime,
            _number(row.load_pct, "%"), _number(row.shm_pct, "%"), _number(row.contacts), _number(row.dialogs),
            _number(row.media_sessions), _ports(row.ports_used, row.ports_total), status_cell(row.worst_status),
            safe_text(row.worst_check or "-", 28), safe_text(row.last_error or "", 40), age_cell(row.age_s))


def age_cell(age_s: float | None) -> Text:
    return Text(fmt.duration(age_s), end="") if age_s is not None else Text("never", style="dim", end="")


class FleetListing(ListView):
    """The shared list behaviour (console.ui.listkeys); by Worst the order is by severity (FAIL
    first ascending), not alphabetical."""

    def select(self, rows: Sequence[Row]) -> list[Row]:
        if self.sort != "status":
            return super().select(rows)
        sort, reverse = self.sort, self.reverse
        self.sort, self.reverse = None, False  # the filter only
        try:
            chosen = super().select(rows)
        finally:
            self.sort, self.reverse = sort, reverse
        column = self.keys.index("status")
        return sorted(chosen, key=lambda row: SEVERITY.get(plain(row[1][column]).strip(), 2), reverse=reverse)


class FleetPane(ListPane):
    title = "Fleet"
    COLUMNS = FLEET_COLUMNS
    # the least useful go first when the terminal is narrow (Enter: the node's Overview has them)
    PRIORITY = ("name", "status", "check", "load", "shm", "contacts", "dialogs", "media", "ports", "error", "age",
                "labels", "uptime", "version")
    NOUN = "nodes"
    DEFAULT_CSS = """
    #fleet-status { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listing = FleetListing(self.COLUMNS)
        self.rows_source: Callable[[], Sequence[Any]] = lambda: ()  # the app sets it (the fleet's rows)
        self.focused: str | None = None  # the node screens 1–6 show
        self.shown: list[Any] = []  # the FleetRows on screen, in order
        self._cells: dict[str, tuple[Any, bool, tuple[Text, ...]]] = {}  # key -> (row but its age, focused, cells)

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield self.filter_box()
        table = SteadyTable(id="fleet-table", cursor_type="row", zebra_stripes=True)  # paints its rows itself
        for key, label in FLEET_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value or "name"
        self.listing.reverse = (not self.listing.reverse) if key == self.listing.sort else False
        self.listing.sort = key
        self.relist()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = next((row for row in self.shown if row_key(row) == event.row_key.value), None)
        if row is not None:
            self.post_message(FocusNode(row.name))

    # ------------------------------------------------------------------ render

    def render_view(self, view: LiveView, now: float) -> None:
        rows = list(self.rows_source())
        by_key = {row_key(row): row for row in rows}
        shown = self.show_rows(self.query_one("#fleet-table", DataTable), self._rows_cells(by_key))
        self.shown = [by_key[key] for key, _cells in shown]
        show_text(self.query_one("#fleet-status", Static), self._status(rows))

    def _rows_cells(self, by_key: dict[str, Any]) -> list[Row]:
        """A node's cells are built again only when its row changed; its age (moving at each render)
        alone otherwise: the same cells object lets the table skip the row."""
        fresh: dict[str, tuple[Any, bool, tuple[Text, ...]]] = {}
        out: list[Row] = []
        for key, row in by_key.items():
            steady, focused = replace(row, age_s=None), row.name == self.focused
            cached = self._cells.get(key)
            if cached is not None and cached[0] == steady and cached[1] == focused:
                cells, age = cached[2], age_cell(row.age_s)
                if age != cells[-1]:
                    cells = cells[:-1] + (age,)
            else:
                cells = fleet_cells(row, focused)
            fresh[key] = (steady, focused, cells)
            out.append((key, cells))
        self._cells = fresh
        return out

    def _status(self, rows: Sequence[Any]) -> Text:
        counts: dict[str, int] = {}
        for row in rows:
            word = str(row.worst_status or "UNKNOWN").upper()
            counts[word] = counts.get(word, 0) + 1
        text = Text(f"{len(rows)} node{'s' if len(rows) != 1 else ''}", end="")
        for word in ("FAIL", "WARN", "UNKNOWN", "OK"):
            if counts.get(word):
                text.append(f"  {counts[word]} ")
                text.append(word, style=fmt.STATUS_STYLE[STATUS_OF[word]])
        if self.focused is not None and len(rows) > 1:
            text.append("  screens 1–6 show ")
            text.append_text(safe_text(self.focused or UNNAMED, 24, style="bold"))
        text.append("  (Enter: show a node)  ")
        text.append_text(self.list_hint())
        return text
