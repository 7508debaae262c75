"""Screen 0, Fleet: one row per node (console.fleet.FleetRow), sortable and filterable like the
contact list; Enter focuses a node, and screens 1–6 then show that node.

The rows come from the app (`rows_source`: the fleet session's `rows()`); every cell that a node
or the network chose (name, labels, version, check id, error text) is shown literally
(console.ui.safe), never as markup.  Unknown values show as "?", never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from console.fleet import FleetSession, TargetSpec
from console.live_state import LiveView
from console.model import Status

from . import format as fmt
from .rows import Pane
from .safe import safe_text, show_text
from .tablediff import sync_table

FLEET_COLUMNS = (("name", "Node"), ("labels", "Labels"), ("version", "Version"), ("uptime", "Uptime"),
                 ("load", "Load"), ("shm", "Shm"), ("contacts", "Contacts"), ("dialogs", "Dialogs"),
                 ("media", "Media"), ("ports", "Ports"), ("status", "Worst"), ("check", "Check"),
                 ("error", "Last error"), ("age", "Age"))
SORT_KEYS = tuple(key for key, _ in FLEET_COLUMNS)
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
    age = Text(fmt.duration(row.age_s), end="") if row.age_s is not None else Text("never", style="dim", end="")
    return (name, _labels(row.labels), safe_text(row.version, 16) if row.version else _unknown(), uptime,
            _number(row.load_pct, "%"), _number(row.shm_pct, "%"), _number(row.contacts), _number(row.dialogs),
            _number(row.media_sessions), _ports(row.ports_used, row.ports_total), status_cell(row.worst_status),
            safe_text(row.worst_check or "-", 28), safe_text(row.last_error or "", 40), age)


def _sort_value(row: Any, key: str) -> tuple:
    """Unknown (None) sorts last whatever the direction of the known values."""
    value = {
        "name": row.name, "labels": " ".join(f"{k}={v}" for k, v in sorted((row.labels or {}).items())),
        "version": row.version, "uptime": row.uptime_s, "load": row.load_pct, "shm": row.shm_pct,
        "contacts": row.contacts, "dialogs": row.dialogs, "media": row.media_sessions, "ports": row.ports_used,
        "status": SEVERITY.get(str(row.worst_status or "UNKNOWN").upper(), 2), "check": row.worst_check,
        "error": row.last_error, "age": row.age_s,
    }[key]
    return (value is None, value if value is not None else 0)


def matches(row: Any, needle: str) -> bool:
    """The filter: a case-insensitive substring of the name, a label, the version, the worst check,
    its status word or the last error."""
    if not needle:
        return True
    needle = needle.lower()
    haystack = [row.name, row.version, row.worst_status, row.worst_check, row.last_error,
                *(f"{k}={v}" for k, v in (row.labels or {}).items())]
    return any(needle in str(item).lower() for item in haystack if item)


def select_rows(rows: Sequence[Any], needle: str, sort: str, reverse: bool) -> list[Any]:
    shown = [row for row in rows if matches(row, needle)]
    known = [row for row in shown if not _sort_value(row, sort)[0]]
    unknown = [row for row in shown if _sort_value(row, sort)[0]]
    known.sort(key=lambda row: (_sort_value(row, sort), row.name), reverse=reverse)
    unknown.sort(key=lambda row: row.name)
    return known + unknown


class FleetPane(Pane):
    title = "Fleet"
    DEFAULT_CSS = """
    #fleet-status { height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("slash", "open_filter", "Filter"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows_source: Callable[[], Sequence[Any]] = lambda: ()  # the app sets it (the fleet's rows)
        self.focused: str | None = None  # the node screens 1–6 show
        self.filter_text = ""
        self.sort = "name"
        self.reverse = False
        self.shown: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield Input(placeholder="filter: node, label, version, check or error (Enter keeps, Esc clears)",
                    id="fleet-filter", classes="hidden")
        table = DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        for key, label in FLEET_COLUMNS:
            table.add_column(label, key=key)
        yield table

    # ------------------------------------------------------------------ actions

    def action_open_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        """Esc: close the filter (clearing it); with nothing open, stay on this screen."""
        box = self.query_one("#fleet-filter", Input)
        if box.has_class("hidden") and not self.filter_text:
            return
        box.value = ""
        box.add_class("hidden")
        self.filter_text = ""
        self.query_one("#fleet-table", DataTable).focus()
        self._rerender()

    def action_cycle_sort(self) -> None:
        self.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        self._rerender()

    def action_reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self._rerender()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "fleet-filter":
            event.stop()
            self.filter_text = event.value
            self._rerender()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "fleet-filter":
            event.stop()
            if not self.filter_text:
                event.input.add_class("hidden")
            self.query_one("#fleet-table", DataTable).focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value or "name"
        self.reverse = (not self.reverse) if key == self.sort else False
        self.sort = key
        self._rerender()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = next((row for row in self.shown if row_key(row) == event.row_key.value), None)
        if row is not None:
            self.post_message(FocusNode(row.name))

    # ------------------------------------------------------------------ render

    def _rerender(self) -> None:
        self.render_view(self.view, self.now)

    def render_view(self, view: LiveView, now: float) -> None:
        rows = list(self.rows_source())
        self.shown = select_rows(rows, self.filter_text, self.sort, self.reverse)
        table = self.query_one("#fleet-table", DataTable)
        sync_table(table, [(row_key(row), fleet_cells(row, row.name == self.focused)) for row in self.shown])
        show_text(self.query_one("#fleet-status", Static), self._status(rows))

    def _status(self, rows: Sequence[Any]) -> Text:
        counts: dict[str, int] = {}
        for row in rows:
            word = str(row.worst_status or "UNKNOWN").upper()
            counts[word] = counts.get(word, 0) + 1
        text = Text(f"{len(rows)} node{'s' if len(rows) != 1 else ''}", end="")
        for word in ("FAIL", "WARN", "UNKNOWN", "OK"):
            if counts.get(word):
                text.append("  ")
                text.append_text(status_cell(word))
                text.append(f"{counts[word]}")
        if self.filter_text:
            text.append("  filter ")
            text.append_text(safe_text(self.filter_text, 30, style="bold"))
            text.append(f" ({len(self.shown)} shown)")
        direction = "↓" if self.reverse else "↑"
        text.append(f"  sort {dict(FLEET_COLUMNS)[self.sort]} {direction}  (Enter shows a node on screens 1–6)")
        if self.focused and len(rows) > 1:
            text.append("  screens 1–6 show ")
            text.append_text(safe_text(self.focused, 24, style="bold"))
        return text
