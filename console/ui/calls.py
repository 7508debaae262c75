"""Screen 3, Calls: dialogs joined with their media sessions (joined once, by the live session)."""

from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.live_state import LiveView
from console.model import Call, CallQuality, DialogLeg

from . import format as fmt
from .format import (GONE, details_note, field_lines, legs_codecs, legs_packets, media_ports_text, session_text,
                     stale_note)
from .listkeys import ListPane, ListView
from .messages import DetailRequested
from .quality import quality_cell, quality_sort_key, quality_text
from .rows import AGE_MARGIN, CALLS_NARROW, RowCells, covers, shown_keys, view_rows
from .safe import safe_text, show_text
from .tablediff import SteadyTable

CALL_COLUMNS = (("caller", "Caller"), ("callee", "Callee"), ("state", "State"), ("quality", "Quality"), ("bridge", "Bridge"),
                ("ports", "Media ports"), ("duration", "Age"), ("codec", "Codecs"),
                ("packets", "Pkts A/B"))
AGE_COLUMN = [key for key, _ in CALL_COLUMNS].index("duration")


def _user(uri: str) -> str:
    """'sip:1046@127.0.0.1' -> '1046' (cells are narrow; detail has the URI)."""
    rest = uri.split(":", 1)[1] if ":" in uri[:5] else uri
    return rest.split("@", 1)[0] if "@" in rest else rest


def call_legs(call: Call):
    """The media legs in caller, callee order (by dialog tags when known)."""
    media = call.media
    if media is None or not media.legs:
        return None, None
    if call.dialog is not None:
        a = media.leg(call.dialog.caller.tag)
        b = media.leg(call.dialog.callee.tag) if call.dialog.callees else None
        if a is not None or b is not None:
            return a, b
    legs = list(media.legs)
    return legs[0], (legs[1] if len(legs) > 1 else None)


def call_mark(call: Call) -> Text:
    """NO DIALOG / NO MEDIA only when the other side's list says so; '?' when it is unknown
    (not fetched with the same poll, failed, partial): unknown is no finding."""
    if call.without_dialog:
        return Text("NO DIALOG", style="bold yellow")
    if call.dialog is None:
        return Text("DIALOG ?", style="dim")
    if call.without_media:
        return Text("NO MEDIA", style="bold yellow")
    if call.media is None:
        return Text("MEDIA ?", style="dim")
    if call.media is not None and call.media.deleted:
        return Text("DELETED", style="dim")
    return Text("")



def call_ports(call: Call) -> Text:
    """RTPengine's ports per leg; without a media session, the ports of the SDPs OpenSIPS sent
    (they came from RTPengine too, so they say which ports the call *should* hold)."""
    a, b = call_legs(call)
    if a is not None or b is not None:
        return Text(media_ports_text((a, b)))
    dialog = call.dialog
    if dialog is not None and (dialog.caller.media_ports or dialog.callee.media_ports):
        return Text.assemble(f"A {_sdp_ports(dialog.caller)} B {_sdp_ports(dialog.callee)} ", ("SDP", "dim"))
    return Text("-")


def _sdp_ports(leg: DialogLeg) -> str:
    return "/".join(str(p) for p in leg.media_ports) or "-"



def call_state(call: Call, now: float) -> tuple[Text, str]:
    """(state word, duration): an orphan mark wins over the dialog state."""
    dialog = call.dialog
    mark = call_mark(call)
    if dialog is not None:
        if call.media is None and not call.media_known:  # the state stays readable; the media is unknown
            return Text.assemble(dialog.state_name, (" media?", "dim")), fmt.duration(dialog.duration(now))
        return (mark if mark.plain else Text(dialog.state_name)), fmt.duration(dialog.duration(now))
    created = call.media.created if call.media is not None else 0
    return mark, (fmt.duration(now - created) if created else "-")


def call_cells(call: Call, now: float, narrow: bool = False, quality: CallQuality | None = None) -> tuple[Text, ...]:
    dialog = call.dialog
    a, b = call_legs(call)
    user = 10 if narrow else 14
    if dialog is not None:  # the transports are in the bridge column ('WS->UDP')
        caller, callee = safe_text(_user(dialog.from_uri), user), safe_text(_user(dialog.to_uri), user)
    else:
        caller, callee = safe_text(call.callid, 10), Text("-")
    state, duration = call_state(call, now)
    bridge = call.bridge or "-"
    if narrow and dialog is not None:
        bridge = bridge.split(" ", 1)[0]  # 'WS->UDP': the media protocols are in the detail
    return (
        caller,
        callee,
        state,
        quality_cell(quality),  # the worst leg's MOS and the flag (ok / poor / one-way / silent / no RTCP / unknown)
        safe_text(bridge, 14 if narrow else 32),
        call_ports(call),
        Text(duration, justify="right"),
        safe_text(legs_codecs((a, b), short=True), 20),
        legs_packets(a, b),
    )


def call_age(call: Call, now: float) -> Text:
    return Text(call_state(call, now)[1], justify="right")


def call_order(call: Call) -> tuple[float, str]:
    """Oldest first, by the earliest time known of the call: its media session's creation (the
    offer) or its dialog's start (the answer).  A call must keep its place when it is answered:
    rows jumping under the cursor, and a reorder of the whole table every poll, otherwise."""
    started = call.dialog.start if call.dialog is not None else 0
    created = call.media.created if call.media is not None else 0
    first = min(started, created) if started and created else (started or created or _NEVER)
    return (first, call.callid)


_NEVER = float("inf")


class CallsPane(ListPane):
    title = "Calls"
    BINDINGS = [Binding("T", "trace", "Trace")]  # SIP trace of the selected call's caller
    COLUMNS = CALL_COLUMNS
    PRIORITY = ("caller", "callee", "state", "quality", "duration", "packets", "codec", "bridge", "ports")
    NOUN = "calls"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: dict[str, Call] = {}
        self.order: list[str] = []  # row keys in table order
        self.order_keys: dict[str, tuple[float, str]] = {}  # Call-ID -> its place (see _in_order)
        self.no_media = self.no_dialog = self.unknown = 0
        self.listing = QualityListing(self.COLUMNS)  # the quality column sorts worst first
        self.qualities: Any = {}  # Call-ID -> CallQuality of the view shown (the live session judged them)
        # a row's cells follow its call object: its quality is a function of it (LiveState._judge)
        self.cells = RowCells(lambda call, now, narrow: call_cells(call, now, narrow, self.qualities.get(call.callid)),
                              call_age, AGE_COLUMN)
        self.aged = range(0)  # the rows whose ages moved at the last refresh

    def compose(self) -> ComposeResult:
        yield Static(id="calls-status")
        yield self.filter_box()
        table = SteadyTable(id="calls-table", cursor_type="row", zebra_stripes=True)
        for key, label in CALL_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def render_view(self, state: LiveView, now: float) -> None:
        calls = self._in_order(state.calls)
        self.qualities = state.qualities
        self.calls = {c.key: c for c in calls}
        self.order = list(self.calls)
        narrow = self.app.size.width < CALLS_NARROW
        table = self.query_one("#calls-table", DataTable)
        self.aged = view_rows(table, AGE_MARGIN) if self.listing.natural else range(len(calls))
        shown = self.show_rows(table, self.cells.rows([(c.key, c) for c in calls], now, narrow, self.aged))
        self.order = [key for key, _cells in shown]
        self.no_media = sum(1 for c in calls if c.without_media)
        self.no_dialog = sum(1 for c in calls if c.without_dialog)
        self.unknown = sum(1 for c in calls if (c.dialog is None and not c.dialog_known)
                           or (c.media is None and not c.media_known))
        self._show_status(state, now)

    def _in_order(self, calls: Sequence[Call]) -> list[Call]:
        """By call_order as first known: a call keeps its place for life.  Its times change as it
        goes (the dialog ends before RTPengine's delete-delay drops the media), and each move of
        an old row renumbers every row below it."""
        known, fresh = self.order_keys, {}
        for call in calls:
            key = known.get(call.callid)
            if key is None or key[0] == _NEVER:
                key = call_order(call)
            fresh[call.callid] = key
        self.order_keys = fresh
        return sorted(calls, key=lambda call: fresh[call.callid])

    def tick(self, state: LiveView, now: float) -> None:
        self._show_status(state, now)
        if not covers(self.aged, view_rows(self.query_one("#calls-table", DataTable))):
            self.refresh_view(state, now)  # scrolled: the rows now on screen get their ages

    def detail_keys(self) -> frozenset[str]:
        return shown_keys(self.query_one("#calls-table", DataTable), self.order)

    def _show_status(self, state: LiveView, now: float) -> None:
        status = Text(f"{len(self.calls)} calls, {self.no_media} without media, {self.no_dialog} media without dialog")
        if self.unknown:  # matched against a list not of this poll (or partial): no verdict on them
            status.append(f", {self.unknown} not matched yet (other side unknown)", style="bold")
        status.append("  ")
        status.append(stale_note("dialogs", state.dialogs_at, now, state.signalling_stale()))
        status.append_text(details_note(state, now))
        status.append("  ")
        status.append_text(self.list_hint())
        show_text(self.query_one("#calls-status", Static), status)

    def action_trace(self) -> None:
        """T: trace the selected call's caller as caller or callee (console/trace_live.py: which filter, why)."""
        from console.trace_live import target_for_call

        from .trace_screen import TraceRequested, selected_row_key

        call = self.calls.get(selected_row_key(self.query_one("#calls-table", DataTable)) or "")
        try:
            target = target_for_call(call) if call is not None else None
        except ValueError as exc:
            self.post_message(TraceRequested(None, str(exc)))
            return
        self.post_message(TraceRequested(target, "" if target is not None else "no call selected"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        call = self.calls.get(event.row_key.value or "")
        if call is not None:
            self.post_message(DetailRequested(f"Call {safe_text(call.callid, 80).plain}", call_sections(call, self.now, self.qualities.get(call.callid)),
                                              live=live_call(call.callid)))


def live_call(callid: str):
    """A call detail that follows the call (age, packets, state) until it is gone."""
    def sections(state: LiveView, now: float):
        if state.dialogs is None and state.media is None:
            return None  # neither list known now: unknown, not gone
        call = state.call(callid)
        return GONE if call is None else call_sections(call, now, state.quality(callid))
    return sections



def call_sections(call: Call, now: float, quality: CallQuality | None = None) -> list[tuple[str, Text]]:
    sections: list[tuple[str, Text]] = []
    summary: list[tuple[str, Text | str]] = [("Call-ID", safe_text(call.callid, None)),
                                              ("Bridge", safe_text(call.bridge or "-", None)),
                                              ("Note", call_mark(call)),
                                              ("Media ports", call_ports(call)),
                                              ("Codecs", safe_text(legs_codecs(call_legs(call)), None))]
    dialog = call.dialog
    if dialog is not None:
        summary += [
            ("From", safe_text(dialog.from_uri, None)), ("To", safe_text(dialog.to_uri, None)),
            ("Dialog ID", safe_text(dialog.id, None)), ("State", dialog.state_name),
            ("Duration", fmt.duration(dialog.duration(now))),
            ("Caller", Text.assemble(safe_text(dialog.caller.contact, None), f"  via {dialog.caller.bind_addr}")),
            ("Callee", Text.assemble(safe_text(dialog.callee.contact, None), f"  via {dialog.callee.bind_addr}")),
            ("Profiles", safe_text(", ".join(f"{p}={v}" for p, v in dialog.profiles), None)),
        ]
    sections.append(("Call", field_lines(summary)))
    sections.append(("Quality", quality_text(quality, now)))  # per leg: MOS, jitter, loss, RTT, packets, progression
    if dialog is not None:
        sections.append(("SDP sent to the caller (by RTPengine)", safe_text(dialog.caller.sent_sdp or "(none)", None, multiline=True)))
        sections.append(("SDP sent to the callee (by RTPengine)", safe_text(dialog.callee.sent_sdp or "(none)", None, multiline=True)))
    if call.media is not None:
        sections.append(("Media session", session_text(call.media, now)))
    elif call.media_known:
        sections.append(("Media session", Text("RTPengine has no session with this Call-ID", style="bold")))
    else:
        sections.append(("Media session", Text("unknown: the session list is not current (or partial)", style="dim")))
    return sections


class QualityListing(ListView):
    """The Calls list: sorted by the quality column, worst first (silent, one-way, poor by MOS, ok,
    then no RTCP and unknown), not by the cell's text; `r` reverses it.  Other columns as any list."""

    def select(self, rows):  # type: ignore[override]
        if self.sort != "quality":
            return super().select(rows)
        reverse, self.sort, self.reverse = self.reverse, None, False
        try:
            rows = super().select(rows)  # the filter only
        finally:
            self.sort, self.reverse = "quality", reverse
        column = self.keys.index("quality")
        return sorted(rows, key=lambda row: quality_sort_key(row[1][column]), reverse=reverse)
