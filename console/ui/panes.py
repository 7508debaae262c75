"""The six views (keys 1–6).  Each pane renders from `LiveState` on demand;
tables are updated by key (see tablediff), never cleared per tick."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Sparkline, Static, Tree
from textual.widgets.tree import TreeNode

from console.errors import OpsError
from console.model import Call, CheckResult, Contact, DialogLeg, MediaLeg, MediaSession, Status, overall_status
from console.snapshot import media_label, relay_version

from . import format as fmt
from .safe import safe_text, show_text
from .screens import GONE, DetailScreen, field_lines
from .state import LiveState
from .tablediff import SteadyTable, sync_table
from .views import TRANSPORT_FILTERS, ContactIndex

if TYPE_CHECKING:
    from .app import OpsConsoleApp


class Pane(Vertical):
    """Base: knows its app and renders from state when asked."""

    title = ""

    @property
    def ops(self) -> "OpsConsoleApp":
        return self.app  # type: ignore[return-value]

    def refresh_view(self, state: LiveState, now: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def tick(self, state: LiveState, now: float) -> None:
        """Between polls (every second): move the ages.  Panes with big tables override this to
        touch only their status line: any changed cell repaints every visible row, so the
        tables' own ages and countdowns move on each poll instead."""
        self.refresh_view(state, now)

    def detail_keys(self) -> frozenset[str] | None:
        """Call-IDs whose media sessions this pane shows in detail now (None: it shows none)."""
        return None

    def focus_main(self) -> None:
        tables = self.query(DataTable)
        if tables:
            tables.first().focus()


def stale_note(label: str, at: float | None, now: float, stale: bool) -> Text:
    """'STALE' + age whenever the data shown is not from the latest poll."""
    if at is None:
        return Text(f"{label}: no data yet", style="dim")
    if stale:
        return Text(f"{label}: STALE, last good {fmt.age(now - at)}", style="bold reverse yellow")
    return Text(f"{label}: {fmt.age(now - at)}", style="dim")


def details_note(state: LiveState, now: float) -> Text:
    """With many calls the per-session queries run less often: say how old ports/packets are."""
    if state.details_at is None or state.media_at is None or state.media_at - state.details_at <= 0:
        return Text("")
    return Text(f"  ports/codecs/packets: {fmt.age(now - state.details_at)}", style="dim")


# --------------------------------------------------------------------------- 1 Overview


class OverviewPane(Pane):
    title = "Overview"
    SPARKS = (("registrations", "Registrations"), ("dialogs", "Dialogs"), ("sessions", "Media sessions"),
              ("ports", "Ports used"), ("load", "Load %"))

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="overview-scroll"):
            with Horizontal(id="overview-top"):
                yield Static(id="overview-sip", classes="panel")
                yield Static(id="overview-media", classes="panel")
            yield Static(id="overview-checks", classes="panel")
            with Vertical(id="overview-trends", classes="panel"):
                for key, label in self.SPARKS:
                    with Horizontal(classes="trend"):
                        yield Static(Text(label), classes="trend-label")
                        yield Sparkline([], id=f"spark-{key}", classes="trend-spark")
                        yield Static(id=f"last-{key}", classes="trend-last")
            yield Static(id="overview-sources", classes="panel")

    def focus_main(self) -> None:
        self.query_one("#overview-scroll").focus()

    def refresh_view(self, state: LiveState, now: float) -> None:
        show_text(self.query_one("#overview-sip", Static), self._sip(state, now))
        show_text(self.query_one("#overview-media", Static), self._media(state, now))
        show_text(self.query_one("#overview-checks", Static), self._checks(state, now))
        show_text(self.query_one("#overview-sources", Static), sources_text(state, now))
        for key, _ in self.SPARKS:
            data = state.history[key].data()
            self.query_one(f"#spark-{key}", Sparkline).data = data
            show_text(self.query_one(f"#last-{key}", Static), Text(fmt.count(data[-1]) if data else "-"))

    def _sip(self, state: LiveState, now: float) -> Text:
        out = Text("OpenSIPS\n", style="bold", end="")
        sig = state.signalling
        if sig is None:
            out.append("no data yet\n", style="dim")
            return out
        ov = sig.overview
        shm = ov.shm_percent
        rows: list[tuple[str, Text | str]] = [
            ("version", safe_text(ov.version or ov.server or "?")),
            ("uptime", fmt.duration(ov.uptime_s)),
            ("load", "-" if ov.load is None else f"{ov.load:.0f}% (1m {fmt.count(ov.load_1m)})"),
            ("shm", "-" if shm is None else f"{shm:.1f}% of {fmt.size(ov.shm_total)}"),
            ("dialogs", f"{fmt.count(ov.active_dialogs)} active, {fmt.count(ov.early_dialogs)} early"),
            ("registered", fmt.count(ov.registered_contacts if ov.registered_contacts is not None
                                     else (len(state.contacts) if state.contacts is not None else None))),
        ]
        out.append(field_lines(rows))
        out.append("\n")
        counts = state.transport_counts()
        by_transport = Text("by transport  ", style="bold")
        if state.contacts is None:
            by_transport.append("not fetched", style="dim")
        else:
            by_transport.append("  ".join(f"{t.upper()} {counts.get(t, 0)}" for t in ("udp", "tcp", "tls", "ws", "wss")))
            if counts.get("?"):  # known by AoR only (brief lists): transport not reported
                by_transport.append(f"  ? {counts['?']:,}")
            if state.transport_counts_partial():  # never zeros that read as "none registered"
                by_transport.append(f"  (of {len(state.contacts):,} listed)", style="bold")
            if state.contacts_at is not None and now - state.contacts_at > 2 * self.ops.interval:
                by_transport.append(f" ({fmt.age(now - state.contacts_at)})", style="dim")
        out.append(by_transport)
        out.append("\n")
        out.append(stale_note("signalling", state.signalling_at, now, state.signalling_stale()))
        return out

    def _media(self, state: LiveState, now: float) -> Text:
        out = Text("RTPengine\n", style="bold", end="")
        media = state.media
        if media is None:
            out.append("no data yet\n", style="dim")
            return out
        totals = media.totals
        sessions = totals.total_sessions if totals.total_sessions is not None else len(media.sessions)
        rows: list[tuple[str, Text | str]] = [
            ("version", safe_text(relay_version(media, state.host) or "?")),
            ("ng / cli", Text.assemble(fmt.ok_word(media.ng_ok), " / ", fmt.ok_word(media.cli_ok))),
            ("sessions", f"{fmt.count(sessions)} ({fmt.count(totals.owned_sessions)} own, "
                         f"{fmt.count(totals.foreign_sessions)} foreign)"),
            ("ports", fmt.bar(media.ports.used, media.ports.total, 16) if media.ports.total else Text("-")),
            ("packets/s", f"{fmt.count(totals.packets_per_s_user)} user, {fmt.count(totals.packets_per_s_kernel)} kernel"),
            ("errors/s", fmt.count(totals.errors_per_s)),
        ]
        out.append(field_lines(rows))
        out.append("\n")
        out.append(stale_note("media", state.media_at, now, state.media_stale()))
        return out

    def _checks(self, state: LiveState, now: float) -> Text:
        out = Text("Checks  ", style="bold", end="")
        if not state.checks:
            out.append("not run yet", style="dim")
            return out
        worst = overall_status([c.status for c in state.checks])
        out.append(fmt.status_word(worst))
        counts = {s: sum(1 for c in state.checks if c.status is s) for s in Status}
        out.append("  " + ", ".join(f"{n} {s.word}" for s, n in counts.items() if n))
        for check in state.checks:
            if check.status in (Status.WARN, Status.FAIL, Status.UNKNOWN):
                out.append("\n  ")
                out.append(fmt.status_word(check.status))
                out.append(safe_text(f"{check.id}: {check.summary}", 100))
        if state.checks_at is not None:
            out.append(f"\n  ({fmt.age(now - state.checks_at)}; 5 for details, r to re-run there)", style="dim")
        return out


def sources_text(state: LiveState, now: float) -> Text:
    """Every source with its full error (the header has room for a short one)."""
    out = Text("Sources", style="bold", end="")
    for status in state.sources.values():
        out.append("\n  ")
        out.append(fmt.ok_word(status.ok))
        out.append(f" {status.name}  {status.elapsed_ms:.0f} ms")
        if not status.ok:
            last = state.last_ok.get(status.name)
            out.append(f"  last good {fmt.age(None if last is None else now - last)}", style="bold")
            out.append("\n    ")
            out.append(safe_text(status.error or "failed", None))
    return out


# --------------------------------------------------------------------------- 2 Registrations


# Most telling first: at 80 columns AoR, transport, expiry and UA stay visible.
CONTACT_COLUMNS = (("aor", "AoR"), ("transport", "Transport"), ("expires", "Expires"), ("user_agent", "User agent"),
                   ("contact", "Contact"), ("socket", "Socket"), ("received", "Received"), ("flags", "Flags"))


class ContactTable(DataTable):
    """Holds only a window of the filtered list; moving past its edge pages."""

    def _paged(self, direction: int) -> bool:
        """At the window's edge, move the window instead of the cursor."""
        at_edge = (self.row_count and self.cursor_row >= self.row_count - 1) if direction > 0 else self.cursor_row <= 0
        return bool(at_edge) and self._pane().page(direction)

    def action_cursor_down(self) -> None:
        if not self._paged(+1):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if not self._paged(-1):
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self._paged(+1):
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self._paged(-1):
            super().action_page_up()

    def action_scroll_top(self) -> None:
        self._pane().jump(last=False)

    def action_scroll_bottom(self) -> None:
        self._pane().jump(last=True)

    def _pane(self) -> "RegistrationsPane":
        return self.query_ancestor(RegistrationsPane)


class RegistrationsPane(Pane):
    title = "Registrations"
    WINDOW = 100  # rows held by the DataTable (a screenful or two); the list may be 100k long
    BINDINGS = [
        Binding("slash", "open_filter", "Filter"),
        Binding("t", "cycle_transport", "Transport"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),  # S is the app's full sync
        Binding("escape", "clear_filter", "Clear", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.transport = "all"
        self.sort = "aor"
        self.reverse = False
        self.window_start = 0
        self.matches: Sequence[Contact] = ()
        self.shown: dict[str, Contact] = {}
        # an unchanged contact keeps its cells (live lists keep unchanged contacts), only the
        # countdown renewed: escaping 100 rows each poll was most of this screen's CPU
        self.cells = RowCells(lambda contact, elapsed, _narrow: contact_cells(contact, elapsed),
                              contact_expires_cell, EXPIRES_CELL)

    def compose(self) -> ComposeResult:
        yield Static(id="contacts-note")
        yield Input(placeholder="filter: AoR, contact or user agent (Enter keeps, Esc clears)",
                    id="contact-filter", classes="hidden")
        yield Static(id="contacts-status")
        table = ContactTable(id="contacts", cursor_type="row", zebra_stripes=True)
        for key, label in CONTACT_COLUMNS:
            table.add_column(label, key=key)
        yield table

    # ------------------------------------------------------------------ actions

    def action_open_filter(self) -> None:
        box = self.query_one("#contact-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#contact-filter", Input)
        had_filter = bool(self.filter_text) or not box.has_class("hidden")
        box.value = ""
        box.add_class("hidden")
        self.filter_text = ""
        self.window_start = 0
        self.query_one(ContactTable).focus()
        if had_filter:
            self._rerender()
        else:
            self.ops.action_back()

    def action_cycle_transport(self) -> None:
        self.transport = TRANSPORT_FILTERS[(TRANSPORT_FILTERS.index(self.transport) + 1) % len(TRANSPORT_FILTERS)]
        self.window_start = 0
        self._rerender()

    def action_cycle_sort(self) -> None:
        keys = [key for key, _ in CONTACT_COLUMNS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.window_start = 0
        self._rerender()

    def action_reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self.window_start = 0
        self._rerender()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "contact-filter":
            event.stop()
            self.filter_text = event.value
            self.window_start = 0
            self._rerender()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "contact-filter":
            event.stop()
            if not self.filter_text:
                event.input.add_class("hidden")
            self.query_one(ContactTable).focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value or "aor"
        self.reverse = (not self.reverse) if key == self.sort else False
        self.sort = key
        self.window_start = 0
        self._rerender()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        contact = self.shown.get(event.row_key.value or "")
        if contact is None:
            return
        if not contact.contact:  # known by AoR name only (ul_dump brief): ask for this one AoR
            aor, service = contact.aor, self.ops.service
            waiting = [("Contacts", Text.assemble("asking OpenSIPS: ul_show_contact ", safe_text(aor, 80), " …"))]
            self.app.push_screen(DetailScreen(f"AoR {safe_text(aor, 80).plain}", waiting,
                                              loader=lambda: aor_sections(service, aor)))
            return
        elapsed = self.ops.state.contacts_elapsed(self.ops.now())
        self.app.push_screen(DetailScreen(f"Contact {safe_text(contact.aor, 80).plain}",
                                          contact_sections(contact, elapsed), live=live_contact(contact.key)))

    def page(self, direction: int) -> bool:
        """Move the window by half its size; False when already at that end."""
        step = self.WINDOW // 2
        new = max(0, min(self.window_start + direction * step, max(0, len(self.matches) - self.WINDOW)))
        if new == self.window_start:
            return False
        table = self.query_one(ContactTable)
        cursor = self.window_start + table.cursor_row
        self.window_start = new
        self._rerender(select_index=min(len(self.matches) - 1, cursor + direction))
        return True

    def jump(self, last: bool) -> None:
        """Ctrl+Home / Ctrl+End: the first / last contact of the whole list."""
        self.window_start = max(0, len(self.matches) - self.WINDOW) if last else 0
        self._rerender(select_index=max(0, len(self.matches) - 1) if last else 0)

    # ------------------------------------------------------------------ render

    def _rerender(self, select_index: int | None = None) -> None:
        self.refresh_view(self.ops.state, self.ops.now())
        if select_index is not None:
            self.query_one(ContactTable).move_cursor(row=select_index - self.window_start, animate=False)

    @property
    def selection_query(self) -> tuple[str, str, str, bool]:
        """What ContactIndex.select is asked for: (filter text, transport, sort, reverse)."""
        return self.filter_text, self.transport, self.sort, self.reverse

    def refresh_view(self, state: LiveState, now: float, *, index: ContactIndex | None = None,
                     elapsed: float | None = None) -> None:
        """`index`/`elapsed`: show that (older) list instead of the state's, e.g. while the state's
        big list is indexed off the key path."""
        show_text(self.query_one("#contacts-note", Static), contacts_note(state, now))
        index = index if index is not None else state.contact_index()
        self.matches = index.select(*self.selection_query)
        self.window_start = min(self.window_start, max(0, len(self.matches) - self.WINDOW))
        window = self.matches[self.window_start:self.window_start + self.WINDOW]
        self.shown = {c.key: c for c in window}
        elapsed = state.contacts_elapsed(now) if elapsed is None else elapsed
        rows = self.cells.rows([(c.key, c) for c in window], elapsed, False, range(len(window)))
        sync_table(self.query_one(ContactTable), rows)
        show_text(self.query_one("#contacts-status", Static), self._status_line(len(index.contacts), len(window)))

    def tick(self, state: LiveState, now: float) -> None:
        show_text(self.query_one("#contacts-note", Static), contacts_note(state, now))

    def _status_line(self, total: int, shown: int) -> Text:
        out = Text(end="")
        matched = len(self.matches)
        if shown < matched:
            out.append(f"rows {self.window_start + 1:,}-{self.window_start + shown:,} of {matched:,}")
        else:
            out.append(f"{matched:,} contacts")
        if matched != total:
            out.append(f" (of {total:,})")
        out.append(f"  transport: {self.transport}  sort: {self.sort}{' desc' if self.reverse else ''}")
        if self.filter_text:
            out.append("  filter: ")
            out.append(safe_text(self.filter_text, 30, style="bold"))
        return out


def contacts_note(state: LiveState, now: float) -> Text:
    """What the list is (complete, partial, polled), its age (STALE when OpenSIPS stopped
    answering), the source's note (why missing / partial) and the event subscription status."""
    mode = state.contacts_mode
    out = Text(end="")
    if mode in fmt.CONTACTS_MODES:
        word, meaning, style = fmt.CONTACTS_MODES[mode]
        out.append("List ", style="bold")
        out.append(word, style=style)
        out.append(f": {meaning}")
        registered = state.registered_count()
        if state.contacts is not None and registered is not None and registered != len(state.contacts):
            out.append(f" ({len(state.contacts):,} listed of {registered:,} registered)", style="bold")
        out.append("\n")
    if state.contacts is None:
        message = state.contacts_note or "contact list not fetched yet"
        out.append_text(Text.assemble(("Contacts not listed: ", "bold"), safe_text(message, None, multiline=True)))
    else:
        out.append_text(stale_note("contacts", state.contacts_at, now, state.signalling_stale()))
        if state.contacts_note:  # e.g. why the list is partial, how long a full sync would take
            out.append("  ")
            out.append_text(safe_text(state.contacts_note, None))
    if state.events_status:
        out.append("\nevents: ", style="bold")
        out.append_text(safe_text(state.events_status, None))
    return out


EXPIRES_CELL = [key for key, _ in CONTACT_COLUMNS].index("expires")  # the one cell that changes by itself


def contact_expires_cell(contact: Contact, elapsed: float) -> Text:
    return Text(expires_text(contact, elapsed), justify="right")


def contact_cells(contact: Contact, elapsed: float) -> tuple[Text, ...]:
    return (
        safe_text(contact.aor, 32),
        fmt.transport_label(contact.transport, contact.ws),
        contact_expires_cell(contact, elapsed),
        safe_text(contact.user_agent, 28),
        safe_text(contact.contact, 48),
        safe_text(contact.socket, 26),
        safe_text(contact.received, 32),
        safe_text(" ".join(contact.cflags), 24),
    )


def expires_text(contact: Contact, elapsed: float = 0.0) -> str:
    """Seconds left, counting down from the collection time."""
    if contact.expires is None:
        return contact.expires_state or "-"
    left = int(contact.expires - elapsed)
    return "expired" if left <= 0 else fmt.duration(left)


def contact_sections(contact: Contact, elapsed: float = 0.0) -> list[tuple[str, Text]]:
    fields: list[tuple[str, Text | str]] = [
        ("AoR", safe_text(contact.aor, None)),
        ("Contact", safe_text(contact.contact, None)),
        ("Contact ID", safe_text(contact.contact_id, None)),
        ("Transport", fmt.transport_label(contact.transport, contact.ws)),
        ("Socket", safe_text(contact.socket or "(none: added over MI)", None)),
        ("Received", safe_text(contact.received, None)),
        ("Path", safe_text(contact.path, None)),
        ("User agent", safe_text(contact.user_agent, None)),
        ("Expires", expires_text(contact, elapsed) + (f" ({contact.expires_state})" if contact.expires_state else "")),
        ("Call-ID", safe_text(contact.callid, None)),
        ("CSeq", str(contact.cseq)),
        ("Q", safe_text(contact.q, None)),
        ("State", safe_text(contact.state, None)),
        ("Flags", str(contact.flags)),
        ("Branch flags", safe_text(" ".join(contact.cflags), None)),
        ("Methods", "-" if contact.methods is None else str(contact.methods)),
        ("Node", safe_text(contact.target, None)),
    ]
    return [("Contact", field_lines(fields))]


def live_contact(key: str):
    """A contact detail that follows the list (expiry countdown, re-registrations)."""
    position = -1  # where the contact was in the last list (checked first)

    def sections(state: LiveState, now: float):
        nonlocal position
        if state.contacts is None:
            return None  # no list now: unknown, not gone
        contact, position = state.contact(key, position)
        return GONE if contact is None else contact_sections(contact, state.contacts_elapsed(now))
    return sections


async def aor_sections(service: Any, aor: str) -> list[tuple[str, Text]]:
    """Every contact of one AoR, asked now (ul_show_contact: cheap at any table size)."""
    try:
        contacts = await service.show_contacts(aor)
    except Exception as exc:  # shown, never raised: the console keeps running
        reason = str(exc) if isinstance(exc, OpsError) else f"{type(exc).__name__}: {exc}"
        return [("Contacts", Text.assemble(("FAIL ", "bold red"), "ul_show_contact ", safe_text(aor, 80), ": ",
                                           safe_text(reason, None)))]
    if not contacts:
        return [("Contacts", Text.assemble(safe_text(aor, 80), " has no contact now (unregistered or expired)"))]
    sections = []
    for number, contact in enumerate(contacts, 1):
        for heading, body in contact_sections(contact):
            sections.append((f"{heading} {number} of {len(contacts)}", body))
    return sections


# --------------------------------------------------------------------------- 3 Calls


# The orphan marks (in State), the bridge and the media ports sit early so they stay visible at
# 80 columns; at 120 every column fits.
CALL_COLUMNS = (("caller", "Caller"), ("callee", "Callee"), ("state", "State"), ("bridge", "Bridge"),
                ("ports", "Media ports"), ("duration", "Age"), ("codec", "Codecs"),
                ("packets", "Pkts A/B"))
AGE_COLUMN = [key for key, _ in CALL_COLUMNS].index("duration")
NARROW = 100  # columns: below this the Calls and Media cells shrink (the detail screen has everything)


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


def leg_ports(leg: MediaLeg | None) -> str:
    """'30788/30789': RTPengine's local ports of one leg (RTP/RTCP)."""
    return "/".join(str(p) for p in leg.ports) if leg is not None and leg.ports else "-"


def media_ports_text(legs: Sequence[MediaLeg | None]) -> str:
    """'A 30788/30789 B 30780/30781': legs in order, lettered as in the Pkts A/B column."""
    return " ".join(f"{chr(ord('A') + n)} {leg_ports(leg)}" for n, leg in enumerate(legs))


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


def legs_codecs(legs: Sequence[MediaLeg | None], short: bool = False) -> str:
    """'PCMA' when every leg uses it, else 'A PCMA B opus' ('-' for a leg without one).
    `short` drops the clock rate ('PCMA/8000' -> 'PCMA'); the detail screen has it."""
    if not any(leg is not None for leg in legs):
        return "-"
    names = [(leg.codec if leg else "") or "-" for leg in legs]
    if short:
        names = [name.split("/", 1)[0] for name in names]
    if len(set(names)) == 1:
        return names[0]
    return " ".join(f"{chr(ord('A') + n)} {name}" for n, name in enumerate(names))


def legs_packets(a: MediaLeg | None, b: MediaLeg | None) -> Text:
    """'236/236', plus the errors only when there are some (they should stand out)."""
    if a is None and b is None:
        return Text("-", justify="right")
    out = Text(f"{_count(a, 'packets')}/{_count(b, 'packets')}", justify="right")
    if (a.errors if a else 0) or (b.errors if b else 0):
        out.append(f" err {_count(a, 'errors')}/{_count(b, 'errors')}", style="bold red")
    return out


def _count(leg: MediaLeg | None, counter: str) -> str:
    return "-" if leg is None else str(getattr(leg, counter))


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


def call_cells(call: Call, now: float, narrow: bool = False) -> tuple[Text, ...]:
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
        safe_text(bridge, 14 if narrow else 32),
        call_ports(call),
        Text(duration, justify="right"),
        safe_text(legs_codecs((a, b), short=True), 20),
        legs_packets(a, b),
    )


def call_age(call: Call, now: float) -> Text:
    return Text(call_state(call, now)[1], justify="right")


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


def call_order(call: Call) -> tuple[float, str]:
    """Oldest first, by the earliest time known of the call: its media session's creation (the
    offer) or its dialog's start (the answer).  A call must keep its place when it is answered:
    rows jumping under the cursor, and a reorder of the whole table every poll, otherwise."""
    started = call.dialog.start if call.dialog is not None else 0
    created = call.media.created if call.media is not None else 0
    first = min(started, created) if started and created else (started or created or _NEVER)
    return (first, call.callid)


_NEVER = float("inf")


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


class CallsPane(Pane):
    title = "Calls"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: dict[str, Call] = {}
        self.order: list[str] = []  # row keys in table order
        self.order_keys: dict[str, tuple[float, str]] = {}  # Call-ID -> its place (see _in_order)
        self.no_media = self.no_dialog = self.unknown = 0
        self.cells = RowCells(call_cells, call_age, AGE_COLUMN)
        self.aged = range(0)  # the rows whose ages moved at the last refresh

    def compose(self) -> ComposeResult:
        yield Static(id="calls-status")
        table = SteadyTable(id="calls-table", cursor_type="row", zebra_stripes=True)
        for key, label in CALL_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def refresh_view(self, state: LiveState, now: float) -> None:
        calls = self._in_order(state.calls)
        self.calls = {c.key: c for c in calls}
        self.order = list(self.calls)
        narrow = self.app.size.width < NARROW
        table = self.query_one("#calls-table", DataTable)
        self.aged = view_rows(table, AGE_MARGIN)
        sync_table(table, self.cells.rows([(c.key, c) for c in calls], now, narrow, self.aged))
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

    def tick(self, state: LiveState, now: float) -> None:
        self._show_status(state, now)
        if not covers(self.aged, view_rows(self.query_one("#calls-table", DataTable))):
            self.refresh_view(state, now)  # scrolled: the rows now on screen get their ages

    def detail_keys(self) -> frozenset[str]:
        return shown_keys(self.query_one("#calls-table", DataTable), self.order)

    def _show_status(self, state: LiveState, now: float) -> None:
        status = Text(f"{len(self.calls)} calls, {self.no_media} without media, {self.no_dialog} media without dialog")
        if self.unknown:  # matched against a list not of this poll (or partial): no verdict on them
            status.append(f", {self.unknown} not matched yet (other side unknown)", style="bold")
        status.append("  ")
        status.append(stale_note("dialogs", state.dialogs_at, now, state.signalling_stale()))
        status.append_text(details_note(state, now))
        show_text(self.query_one("#calls-status", Static), status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        call = self.calls.get(event.row_key.value or "")
        if call is not None:
            self.app.push_screen(DetailScreen(f"Call {safe_text(call.callid, 80).plain}", call_sections(call, self.ops.now()),
                                              live=live_call(call.callid)))


def live_call(callid: str):
    """A call detail that follows the call (age, packets, state) until it is gone."""
    def sections(state: LiveState, now: float):
        if state.dialogs is None and state.media is None:
            return None  # neither list known now: unknown, not gone
        call = state.call(callid)
        return GONE if call is None else call_sections(call, now)
    return sections


def live_session(callid: str):
    def sections(state: LiveState, now: float):
        if state.media is None:
            return None
        session = state.session(callid)
        return GONE if session is None else [("Media session", session_text(session, now))]
    return sections


def call_sections(call: Call, now: float) -> list[tuple[str, Text]]:
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


def session_text(session: MediaSession, now: float) -> Text:
    fields: list[tuple[str, Text | str]] = [
        ("Call-ID", safe_text(session.callid, None)),
        ("Age", fmt.duration(now - session.created) if session.created else "-"),
        ("Deleted", "yes (BYE seen, within delete-delay)" if session.deleted else "no"),
        ("Foreign", "yes" if session.foreign else "no"),
    ]
    out = field_lines(fields)
    for leg in session.legs:
        out.append("\n\nleg ", style="bold")
        out.append(safe_text(leg.tag, None))
        if leg.tag_type or leg.label:
            out.append(f" ({leg.tag_type or leg.label})")
        for media in leg.medias:
            out.append(f"\n  {media.type} {media.protocol} codec ")
            out.append(safe_text(media.codec or "-", 40))
            if media.flags:
                out.append("  [" + ", ".join(media.flags) + "]", style="dim")
            for stream in media.streams:
                out.append(f"\n    {stream.local_address}:{stream.local_port} <-> ")
                out.append(safe_text(stream.endpoint or "-", 60))
                out.append(f"  {'RTCP' if stream.rtcp else 'RTP '} pkts {stream.packets} bytes {stream.bytes} errors {stream.errors}")
    return out


# --------------------------------------------------------------------------- 4 Media


PORT_COLUMNS = (("name", "Interface"), ("address", "Address"), ("usage", "Ports used"), ("left", "Calls possible"),
                ("range", "Range"))
SESSION_COLUMNS = (("callid", "Call-ID"), ("note", "Note"), ("age", "Age"), ("protocols", "Media"),
                   ("ports", "Ports"), ("codec", "Codecs"), ("packets", "Packets"), ("errors", "Errors"),
                   ("legs", "Legs"))
SESSION_AGE_COLUMN = [key for key, _ in SESSION_COLUMNS].index("age")


class MediaPane(Pane):
    title = "Media"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[str, MediaSession] = {}
        self.order: list[str] = []  # row keys in table order
        self.cells = RowCells(session_cells, session_age, SESSION_AGE_COLUMN)
        self.aged = range(0)  # the rows whose ages moved at the last refresh

    def compose(self) -> ComposeResult:
        yield Static(id="media-status")
        ports = DataTable(id="ports", cursor_type="row", show_cursor=False)
        for key, label in PORT_COLUMNS:
            ports.add_column(label, key=key)
        yield ports
        sessions = SteadyTable(id="sessions", cursor_type="row", zebra_stripes=True)
        for key, label in SESSION_COLUMNS:
            sessions.add_column(label, key=key)
        yield sessions
        yield Static(id="media-totals")

    def focus_main(self) -> None:
        self.query_one("#sessions", DataTable).focus()

    def refresh_view(self, state: LiveState, now: float) -> None:
        media = state.media
        show_text(self.query_one("#media-status", Static),
                  stale_note("media", state.media_at, now, state.media_stale()) + details_note(state, now))
        if media is None:
            return
        port_rows = [(f"{i.name}\x00{i.address}", (safe_text(i.name, 20), safe_text(i.address, 40), fmt.bar(i.used, i.total, 20),
                                                  Text(fmt.count(i.calls_left), justify="right"),
                                                  Text(f"{i.port_min}-{i.port_max}" if i.port_max else "-")))
                     for i in media.ports.interfaces]
        sync_table(self.query_one("#ports", DataTable), port_rows)
        sessions = sorted(media.sessions, key=lambda s: (s.created, s.callid))
        self.sessions = {s.callid: s for s in sessions}
        self.order = list(self.sessions)
        narrow = self.app.size.width < NARROW
        table = self.query_one("#sessions", DataTable)
        self.aged = view_rows(table, AGE_MARGIN)
        sync_table(table, self.cells.rows([(s.callid, s) for s in sessions], now, narrow, self.aged))
        show_text(self.query_one("#media-totals", Static), totals_text(state))

    def tick(self, state: LiveState, now: float) -> None:
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
            self.app.push_screen(DetailScreen(f"Media session {safe_text(session.callid, 80).plain}",
                                              [("Media session", session_text(session, self.ops.now()))],
                                              live=live_session(session.callid)))


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


def totals_text(state: LiveState) -> Text:
    media = state.media
    if media is None:
        return Text("")
    t = media.totals
    fields: list[tuple[str, Text | str]] = [
        ("sessions", f"{fmt.count(t.total_sessions)} total, {fmt.count(t.owned_sessions)} own, {fmt.count(t.foreign_sessions)} foreign"),
        ("rates", f"{fmt.count(t.packets_per_s_user)} pkt/s user, {fmt.count(t.packets_per_s_kernel)} pkt/s kernel, "
                  f"{fmt.count(t.errors_per_s)} err/s"),
        ("since start", f"{fmt.count(t.managed_sessions)} managed, {fmt.count(t.rejected_sessions)} rejected, "
                        f"{fmt.count(t.timeout_sessions)} timed out; relayed {fmt.count(t.relayed_packets_user)} pkts, "
                        f"{fmt.count(t.relayed_errors)} errors"),
        ("uptime", fmt.duration(t.uptime_s)),
    ]
    return field_lines(fields)


# --------------------------------------------------------------------------- 5 Checks


CHECK_COLUMNS = (("status", "Status"), ("id", "Check"), ("summary", "Summary"), ("remedy", "Remedy"))


class ChecksPane(Pane):
    title = "Checks"
    BINDINGS = [Binding("r", "rerun", "Re-run")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: dict[str, CheckResult] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="checks-status")
        table = DataTable(id="checks-table", cursor_type="row", zebra_stripes=True)
        for key, label in CHECK_COLUMNS:
            table.add_column(label, key=key)
        yield table

    def action_rerun(self) -> None:
        self.ops.rerun_checks()

    def refresh_view(self, state: LiveState, now: float) -> None:
        self.results = {c.id: c for c in state.checks}
        rows = [(c.id, (fmt.status_word(c.status), safe_text(c.id, 28), safe_text(c.summary, 60), safe_text(c.remedy, 50)))
                for c in state.checks]
        sync_table(self.query_one("#checks-table", DataTable), rows)
        status = Text(end="")
        if self.ops.checks_running:
            status.append("running checks… ", style="bold")
        if state.checks:
            status.append("overall ")
            status.append(fmt.status_word(overall_status([c.status for c in state.checks])))
            status.append(f" {len(state.checks)} checks, {fmt.age(now - state.checks_at) if state.checks_at else ''}  (r re-runs, Enter for evidence)")
        elif not self.ops.checks_running:
            status.append("no checks run yet (r runs them)", style="dim")
        show_text(self.query_one("#checks-status", Static), status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        result = self.results.get(event.row_key.value or "")
        if result is not None:
            self.app.push_screen(DetailScreen(f"Check {result.id}", check_sections(result)))


def check_sections(result: CheckResult) -> list[tuple[str, Text]]:
    fields: list[tuple[str, Text | str]] = [("Status", fmt.status_word(result.status)), ("Check", safe_text(result.id, None)),
                                            ("Summary", safe_text(result.summary, None)),
                                            ("Remedy", safe_text(result.remedy or "-", None)),
                                            ("Took", f"{result.elapsed_ms:.0f} ms")]
    evidence = field_lines([(str(k), safe_text(_plain(v), None, multiline=True)) for k, v in result.evidence.items()]) \
        if result.evidence else Text("(none)")
    return [("Check", field_lines(fields)), ("Evidence", evidence)]


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- 6 MI


TREE_NODE_LIMIT = 5000  # a 100k ul_dump as a Tree would freeze the UI


class MiPane(Pane):
    title = "MI"

    def compose(self) -> ComposeResult:
        yield Input(placeholder="MI command, e.g. version  |  get_statistics all  |  dlg_list {\"callid\": \"x\"}",
                    id="mi-input")
        yield Static(id="mi-status")
        yield Tree(Text("result"), id="mi-result")

    def focus_main(self) -> None:
        self.query_one("#mi-input", Input).focus()

    def refresh_view(self, state: LiveState, now: float) -> None:
        pass  # MI results only change when the operator runs a command

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "mi-input":
            event.stop()
            self.ops.submit_mi(event.value)

    def show_status(self, text: Text) -> None:
        show_text(self.query_one("#mi-status", Static), text)

    def show_result(self, method: str, result: Any) -> None:
        tree = self.query_one("#mi-result", Tree)
        tree.clear()
        tree.root.set_label(safe_text(method, 60, style="bold"))
        budget = [TREE_NODE_LIMIT]
        add_tree_nodes(tree.root, result, budget)
        tree.root.expand()
        for child in tree.root.children:
            child.expand()
        if budget[0] <= 0:
            tree.root.add_leaf(Text(f"… truncated at {TREE_NODE_LIMIT} nodes; use `opsconsole mi` for the full answer", style="bold"))


def add_tree_nodes(node: TreeNode, value: Any, budget: list[int], name: str | None = None) -> None:
    """JSON → Tree: dicts and lists become branches, scalars leaves ('key: value')."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    label = Text(end="")
    if name is not None:
        label.append(safe_text(name, 60, style="bold"))
    if isinstance(value, dict):
        label.append(f" {{{len(value)}}}", style="dim")
        branch = node.add(label) if name is not None else node
        for key, item in value.items():
            add_tree_nodes(branch, item, budget, str(key))
    elif isinstance(value, list):
        label.append(f" [{len(value)}]", style="dim")
        branch = node.add(label) if name is not None else node
        for position, item in enumerate(value):
            add_tree_nodes(branch, item, budget, f"[{position}]")
    else:
        if name is not None:
            label.append(": ")
        label.append(safe_text("null" if value is None else value, 200))
        node.add_leaf(label)
