"""The Trace screen: `T` on Calls or Registrations traces the selected user through OpenSIPS's tracer
and draws the ladder live (console/trace_live.py holds the logic; this only renders it).

One column per endpoint, OpenSIPS in the middle, an arrow per message with its method or status and
the time since the previous message of its call; under it each call explained and joined with what
the console knows (registration, dialog, media).  Enter: the whole message (escaped: hostile input);
`c`: only the Call-ID under the cursor (again: all); `w`: the pcap of everything traced so far;
Esc: stop the trace and go back.  The trace is also stopped when the screen goes away for any
other reason (app exit: on_unmount; a crash: the CLI's finally; a kill: the next start removes it).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console.errors import OpsError
from console.trace_live import (MAX_COLUMNS, LadderRow, TraceLive, TraceTarget, arrow_text, clock_text, delta_text,
                                endpoints, header_text, message_fields, message_text)

from .format import field_lines
from .header import StatusHeader
from .safe import safe_text, show_text
from .screens import DetailScreen

KEYS = "Enter whole message · c only this Call-ID / all · w write pcap · Esc stop trace and back"
EXPLAIN_EVERY_S = 1.0  # ended calls get OpenSIPS's notes; the join follows the console's polls


@dataclass
class TraceRequested(Message):
    """`T` on a list: trace this target (or say why not: `error`)."""

    target: TraceTarget | None
    error: str = ""


def selected_row_key(table: DataTable) -> str | None:
    """The key of the row under the cursor (None: empty table)."""
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


class TraceScreen(Screen[None]):
    DEFAULT_CSS = """
    TraceScreen #trace-title { padding: 0 1; background: $panel; }
    TraceScreen #trace-ladder { height: 1fr; }
    TraceScreen #trace-explain { height: auto; max-height: 14; padding: 0 1; border-top: solid $primary; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Stop trace"),
        Binding("w", "write_pcap", "Write pcap"),
        Binding("c", "only_call", "Only this call"),
    ]

    def __init__(self, live: TraceLive) -> None:
        super().__init__()
        self.live = live
        self.only = ""  # a Call-ID: only its messages (the after-the-fact filter)
        self.status = "starting the trace…"
        self.columns: list[str] = []
        self._explained: tuple = ()

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield Static(id="trace-title")
        table = DataTable(id="trace-ladder", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="trace-explain")

    def on_mount(self) -> None:
        self._show_header()
        self._show_title()
        self.query_one(DataTable).focus()
        self.run_worker(self._run(), group="trace", exclusive=True)
        self.set_interval(EXPLAIN_EVERY_S, self._explain_tick)

    # ------------------------------------------------------------------ the trace

    async def _run(self) -> None:
        try:
            await self.live.start()
        except OpsError as exc:
            self._set_status(f"cannot trace: {exc}")  # with its hint: the config lines to add
            self.app.trace_changed()
            return
        except Exception as exc:  # never the console's end: said, and the trace (if any) stopped
            self._set_status(f"cannot trace: {type(exc).__name__}: {exc}")
            await self._stop()
            return
        self._set_status("tracing: calls that start from now on are drawn whole, as they come"
                         if self.live.target.scope == "dialog" else
                         "tracing: the user's REGISTERs and each call's INVITE transaction, as they come")
        self.app.trace_changed()
        async for row in self.live.lines():
            self._add(row)

    def _add(self, row: LadderRow) -> None:
        """One message: a row; all rows again when it brings a new endpoint (a new column) or older
        rows were dropped.  The explanations follow on the next tick (not per message: a busy trace)."""
        message = row.message
        table = self.query_one(DataTable)
        if message.src not in self.columns or message.dst not in self.columns:
            columns = endpoints(self.live.rows, self.live.flows())
            if columns != self.columns and (len(columns) <= MAX_COLUMNS or len(self.columns) <= MAX_COLUMNS):
                self._rebuild(columns)
                return
            self.columns = columns  # beyond MAX_COLUMNS the rows are text: nothing to redraw
        if table.row_count and self.live.row(int(self._first_key(table))) is None:
            self._rebuild()  # the oldest half was dropped (ROWS_MAX)
        elif not self.only or row.call_id == self.only:
            self._add_row(row)

    def _rebuild(self, columns: list[str] | None = None) -> None:
        """All rows again: a new endpoint is a new column (or the Call-ID filter changed)."""
        table = self.query_one(DataTable)
        self.columns = columns if columns is not None else self.columns
        table.clear(columns=True)
        table.add_column("Time", key="time")
        table.add_column("Δ", key="delta")
        table.add_column(Text(header_text(self.columns), no_wrap=True), key="ladder")
        table.add_column("Call-ID", key="callid")
        for row in self.live.rows:
            if not self.only or row.call_id == self.only:
                self._add_row(row)
        self._show_explanations()

    @staticmethod
    def _first_key(table: DataTable) -> str:
        return table.coordinate_to_cell_key(Coordinate(0, 0)).row_key.value or "0"

    def _add_row(self, row: LadderRow) -> None:
        message = row.message
        self.query_one(DataTable).add_row(
            clock_text(message.time), Text(delta_text(row.delta), justify="right"),
            safe_text(arrow_text(message, self.columns), None), safe_text(message.call_id, 28), key=str(row.seq))

    async def _explain_tick(self) -> None:
        if await self.live.explain_due():
            self._explained = ()
        self._show_explanations()

    def _show_explanations(self) -> None:
        view, now = self.app.state, self.app.now()
        key = (id(view), len(self.live.rows), self.only, tuple(self.live.notes))
        if key == self._explained:
            return  # nothing new: no re-join, no repaint
        self._explained = key
        lines = self.live.explanation_lines(view, now, only=self.only) if self.live.session is not None else []
        text = Text("\n".join(lines) if lines else "no call traced yet", end="")
        show_text(self.query_one("#trace-explain", Static), text)

    # ------------------------------------------------------------------ keys

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.live.row(int(event.row_key.value or -1))
        if row is None:
            return
        message = row.message
        fields = [(name, safe_text(value, None)) for name, value in message_fields(message)]
        sections = [("Envelope (from OpenSIPS's HEP)", field_lines(fields)),
                    ("SIP message, whole (escaped)", safe_text(message_text(message), None, multiline=True))]
        self.app.push_screen(DetailScreen(f"{safe_text(message.label, 40).plain}  {clock_text(message.time)}",
                                          sections, header=self.app.header_facts()))

    def action_only_call(self) -> None:
        if self.only:
            self.only = ""
        else:
            key = selected_row_key(self.query_one(DataTable))
            if key is None:
                self.app.notify("no message yet to take a Call-ID from", markup=False)
                return
            row = self.live.row(int(key))
            self.only = row.call_id if row is not None else ""
        self._rebuild()
        self._show_title()

    def action_write_pcap(self) -> None:
        if self.live.session is None or not self.live.rows:
            self.app.notify("nothing traced yet: no pcap written", markup=False)
            return
        try:
            path, count = self.live.write_pcap()
        except OSError as exc:
            self.app.notify(f"pcap not written: {exc.strerror or exc}", severity="error", markup=False)
            return
        self._set_status(f"wrote {count} messages to {path}")
        self.app.notify(f"pcap: {count} messages written to {path}", markup=False)

    async def action_leave(self) -> None:
        await self._stop()
        self.dismiss(None)

    async def on_unmount(self) -> None:
        await self._stop()  # the app closing with the screen open (q, Ctrl+C, terminal lost)

    async def _stop(self) -> None:
        error = await self.live.stop()
        self.app.trace_changed()
        if error:
            self.app.notify(f"the trace {self.live.trace_id} could not be stopped: {error} — the next trace "
                            "removes it", severity="error", markup=False)

    # ------------------------------------------------------------------ text

    def _set_status(self, status: str) -> None:
        self.status = status
        self._show_title()

    def _show_title(self) -> None:
        target = self.live.target
        out = Text.assemble(("Trace ", "bold"), safe_text(target.user, 40, style="bold"),
                            f" (caller or callee, scope {target.scope}) from ", safe_text(target.origin, 60))
        if self.only:
            out.append("  only Call-ID ")
            out.append(safe_text(self.only, 40, style="bold"))
        out.append("\n")
        out.append(safe_text(self.status, None))
        out.append(f"\npcap (w): {self.live.pcap_path()}", style="dim")
        out.append(f"\n{KEYS}", style="dim")
        show_text(self.query_one("#trace-title", Static), out)

    def _show_header(self) -> None:
        self.query_one(StatusHeader).show(self.app.header_facts())


def start_trace(app, message: TraceRequested) -> None:
    """The app's answer to `T`: the Trace screen, or a notice saying why not (turned off, nothing
    selected, a trace already running).  Read-only mode allows it: a trace is transient and audited."""
    if not getattr(getattr(app.service, "config", None), "trace", True):
        app.notify("tracing is turned off (--no-trace, or [trace] enabled = false / [opensips] trace = false "
                   "in the configuration): no trace started", severity="warning", markup=False)
    elif message.target is None:
        app.notify(f"nothing to trace: {message.error}", severity="warning", markup=False)
    elif app.trace_live is not None and not app.trace_live.stopped:
        app.notify("a trace is already running: leave its screen first (Esc)", markup=False)
    else:
        app.trace_live = TraceLive(app.service, message.target)
        app.push_screen(TraceScreen(app.trace_live))


def refresh_headers(app, facts) -> None:
    if app.return_code is not None:  # exiting: the widgets are going away
        return
    for screen in app.screen_stack:
        for header in screen.query(StatusHeader):
            header.show(facts)
