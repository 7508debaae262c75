"""Screen 4, Media: RTPengine's port use per interface, its sessions, its totals."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from console.live_state import LiveView
from console.model import MediaSession
from console.snapshot import media_label

from . import format as fmt
from .format import GONE, details_note, field_lines, legs_codecs, media_ports_text, session_text, stale_note
from .listkeys import ListPane, ListView, set_columns
from .media_sets import MediaSets
from .messages import DetailRequested
from .quality import interface_cells, interface_quality_note
from .rows import AGE_MARGIN, NARROW, RowCells, covers, shown_keys, view_rows
from .safe import safe_text, show_text
from .tablediff import SteadyTable, sync_table

PORT_COLUMNS = (("name", "Interface"), ("address", "Address"), ("usage", "Ports used"), ("left", "Calls possible"),
                ("range", "Range"), ("mos", "MOS"), ("loss", "Loss"), ("jitter", "Jitter"))
SESSION_COLUMNS = (("callid", "Call-ID"), ("note", "Note"), ("age", "Age"), ("protocols", "Media"),
                   ("ports", "Ports"), ("codec", "Codecs"), ("packets", "Packets"), ("errors", "Errors"),
                   ("legs", "Legs"))
SESSION_AGE_COLUMN = [key for key, _ in SESSION_COLUMNS].index("age")


class MediaPane(ListPane):
    title = "Media"
    COLUMNS = SESSION_COLUMNS
    PRIORITY = ("callid", "note", "age", "packets", "errors", "codec", "protocols", "ports", "legs")
    NOUN = "sessions"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[str, MediaSession] = {}
        self.order: list[str] = []  # row keys in table order
        self.cells = RowCells(session_cells, session_age, SESSION_AGE_COLUMN)
        self.aged = range(0)  # the rows whose ages moved at the last refresh
        self.ports_fit = ListView(PORT_COLUMNS)  # the interfaces' columns that fit the screen

    def compose(self) -> ComposeResult:
        yield Static(id="media-status")
        ports = DataTable(id="ports", cursor_type="row", show_cursor=False)
        for key, label in PORT_COLUMNS:
            ports.add_column(label, key=key)
        yield ports
        yield MediaSets(id="media-sets")  # RTPengine sets as OpenSIPS sees them (#16)
        yield self.filter_box()
        sessions = SteadyTable(id="sessions", cursor_type="row", zebra_stripes=True)
        for key, label in SESSION_COLUMNS:
            sessions.add_column(label, key=key)
        yield sessions
        yield Static(id="media-totals")

    def focus_main(self) -> None:
        self.query_one("#sessions", DataTable).focus()

    def list_table(self) -> DataTable:
        return self.query_one("#sessions", DataTable)

    def render_view(self, state: LiveView, now: float) -> None:
        media = state.media
        show_text(self.query_one("#media-status", Static),
                  stale_note("media", state.media_at, now, state.media_stale()) + details_note(state, now))
        self.query_one(MediaSets).render_view(state)
        if media is None:
            return
        # per interface: RTPengine's RTCP-derived averages (`list interfaces`, 12.4+) by name and address
        quality = {(q.name, q.address): q for q in media.interface_quality or ()}
        port_rows = [(f"{i.name}\x00{i.address}", (safe_text(i.name, 20), safe_text(i.address, 40), fmt.bar(i.used, i.total, 20),
                                                  Text(fmt.count(i.calls_left), justify="right"),
                                                  Text(f"{i.port_min}-{i.port_max}" if i.port_max else "-"))
                      + interface_cells(quality.get((i.name, i.address))))
                     for i in media.ports.interfaces]
        ports = self.query_one("#ports", DataTable)
        room = ports.scrollable_content_region.width or (self.app.size.width - 2)
        if self.ports_fit.fit(port_rows, room, ()) or len(ports.columns) != len(self.ports_fit.shown):
            set_columns(ports, self.ports_fit)  # whole columns, the last ones dropped first
        sync_table(ports, self.ports_fit.project(port_rows))
        sessions = sorted(media.sessions, key=lambda s: (s.created, s.callid))
        self.sessions = {s.callid: s for s in sessions}
        self.order = list(self.sessions)
        narrow = self.app.size.width < NARROW
        table = self.query_one("#sessions", DataTable)
        self.aged = view_rows(table, AGE_MARGIN) if self.listing.natural else range(len(sessions))
        shown = self.show_rows(table, self.cells.rows([(s.callid, s) for s in sessions], now, narrow, self.aged))
        self.order = [key for key, _cells in shown]
        show_text(self.query_one("#media-totals", Static), totals_text(state) + self._hint_line())

    def tick(self, state: LiveView, now: float) -> None:
        show_text(self.query_one("#media-status", Static),
                  stale_note("media", state.media_at, now, state.media_stale()) + details_note(state, now))
        if state.media is not None and not covers(self.aged, view_rows(self.query_one("#sessions", DataTable))):
            self.refresh_view(state, now)  # scrolled: the rows now on screen get their ages

    def detail_keys(self) -> frozenset[str]:
        return shown_keys(self.query_one("#sessions", DataTable), self.order)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        session = self.sessions.get(event.row_key.value or "")
        if session is not None:
            self.post_message(DetailRequested(f"Media session {safe_text(session.callid, 80).plain}",
                                              [("Media session", session_text(session, self.now))],
                                              live=live_session(session.callid)))




    def _hint_line(self) -> Text:
        hint = self.list_hint()
        hidden = self.ports_fit.hidden()
        if hidden:
            hint.append(f"  interfaces: +{len(hidden)} cols → ({', '.join(hidden)}: a wider terminal)", style="dim")
        return Text.assemble("\n", hint) if hint.plain else Text("")


def live_session(callid: str):
    def sections(state: LiveView, now: float):
        if state.media is None:
            return None
        session = state.session(callid)
        return GONE if session is None else [("Media session", session_text(session, now))]
    return sections



def session_age(session: MediaSession, now: float) -> Text:
    return Text(fmt.duration(now - session.created) if session.created else "-", justify="right")


def session_cells(session: MediaSession, now: float, narrow: bool = False) -> tuple[Text, ...]:
    protocols = "<->".join(media_label(leg.protocol) for leg in session.legs) or "-"
    return (
        safe_text(session.callid, 20 if narrow else 32),
        Text("DELETED" if session.deleted else ("foreign" if session.foreign else "")),
        session_age(session, now),
        safe_text(protocols, 16 if narrow else 28),
        Text(media_ports_text(session.legs) if session.legs else "-"),
        safe_text(legs_codecs(session.legs, short=narrow), 14 if narrow else 28),
        Text(fmt.count(sum(leg.packets for leg in session.legs)), justify="right"),
        Text(fmt.count(sum(leg.errors for leg in session.legs)), justify="right"),
        Text(str(len(session.legs)), justify="right"),
    )


def totals_text(state: LiveView) -> Text:
    media = state.media
    if media is None:
        return Text("")
    t = media.totals
    fields: list[tuple[str, Text | str]] = [
        ("sessions", f"{fmt.count(t.total_sessions)} total, {fmt.count(t.owned_sessions)} own, {fmt.count(t.foreign_sessions)} foreign"),
        ("rates", f"{fmt.count(t.packets_per_s_user)} pkt/s user, {fmt.count(t.packets_per_s_kernel)} pkt/s kernel, "
                  f"{fmt.count(t.errors_per_s)} err/s"),
        # RTPengine counts a session as "managed" when it ends: not the ones up now
        ("since start", f"{fmt.count(t.managed_sessions)} sessions ended ({fmt.count(t.rejected_sessions)} rejected, "
                        f"{fmt.count(t.timeout_sessions)} timed out); relayed {fmt.count(t.relayed_packets_user)} pkts, "
                        f"{fmt.count(t.relayed_errors)} errors"),
        ("uptime", fmt.duration(t.uptime_s)),
    ]
    note = interface_quality_note(media)  # call quality: per interface (12.4+) or only the global average
    if note.plain:
        fields.append(("quality", note))
    return field_lines(fields)
