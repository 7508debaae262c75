"""Screen 2, Registrations: the contact list (100k contacts: a window of it), filter, sort, detail."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from console.errors import OpsError
from console.live_state import LiveView
from console.model import Contact
from console.views import TRANSPORT_FILTERS, ContactIndex

from . import format as fmt
from .format import GONE, field_lines, stale_note
from .listkeys import ListView, cursor_key, set_columns
from .messages import AorDetailRequested, DetailRequested, SelectionChanged
from .rows import Pane, RowCells
from .safe import safe_text, show_text
from .tablediff import sync_table

CONTACT_COLUMNS = (("aor", "AoR"), ("transport", "Transport"), ("expires", "Expires"), ("user_agent", "User agent"),
                   ("contact", "Contact"), ("socket", "Socket"), ("received", "Received"), ("flags", "Flags"))


class ContactTable(DataTable):
    """Holds only a window of the filtered list; moving past its edge pages.  Its pane sets `pager`
    (move the window: False when already at that end) and `jumper` (to the first / last contact)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pager: Callable[[int], bool] = lambda direction: False
        self.jumper: Callable[[bool], None] = lambda last: None

    def _paged(self, direction: int) -> bool:
        """At the window's edge, move the window instead of the cursor."""
        at_edge = (self.row_count and self.cursor_row >= self.row_count - 1) if direction > 0 else self.cursor_row <= 0
        return bool(at_edge) and self.pager(direction)

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
        self.jumper(False)

    def action_scroll_bottom(self) -> None:
        self.jumper(True)


class RegistrationsPane(Pane):
    title = "Registrations"
    WINDOW = 100  # rows held by the DataTable (a screenful or two); the list may be 100k long
    BINDINGS = [
        Binding("slash", "open_filter", "Filter"),
        Binding("t", "cycle_transport", "Transport"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),  # S is the app's full sync
        Binding("escape", "clear_filter", "Clear", show=False),
        Binding("T", "trace", "Trace"),  # SIP trace of the selected AoR's user
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.transport = "all"
        self.sort = "aor"
        self.reverse = False
        self.window_start = 0
        self._asked = self.selection_query  # what the session was last told
        self.matches: Sequence[Contact] = ()
        self.shown: dict[str, Contact] = {}
        # an unchanged contact keeps its cells (live lists keep unchanged contacts), only the
        # countdown renewed: escaping 100 rows each poll was most of this screen's CPU
        self.cells = RowCells(lambda contact, elapsed, _narrow: contact_cells(contact, elapsed),
                              contact_expires_cell, EXPIRES_CELL)
        self.columns_fit = ListView(CONTACT_COLUMNS)  # which columns fit the screen (filter/sort: the index's)
        self._list_shape: tuple[str, int] | None = None  # (contacts mode, size) of the list shown last

    def compose(self) -> ComposeResult:
        yield Static(id="contacts-note")
        yield Input(placeholder="filter: AoR, contact, user agent, socket, received, transport (Enter keeps, Esc clears)",
                    id="contact-filter", classes="hidden")
        yield Static(id="contacts-status")
        table = ContactTable(id="contacts", cursor_type="row", zebra_stripes=True)
        table.pager, table.jumper = self.page, lambda last: self.jump(last=last)
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
        if had_filter:  # with nothing to close Esc does nothing: it never leaves the screen
            self._rerender(select_index=0)

    def action_cycle_transport(self) -> None:
        self.transport = TRANSPORT_FILTERS[(TRANSPORT_FILTERS.index(self.transport) + 1) % len(TRANSPORT_FILTERS)]
        self.window_start = 0
        self._rerender(select_index=0)

    def action_cycle_sort(self) -> None:
        keys = [key for key, _ in CONTACT_COLUMNS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.window_start = 0
        self._rerender(select_index=0)

    def action_reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self.window_start = 0
        self._rerender(select_index=0)  # the first of the new order: not the view jumping after the old row

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "contact-filter":
            event.stop()
            self.filter_text = event.value
            self.window_start = 0
            self._rerender(select_index=0)

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
        self._rerender(select_index=0)

    def action_trace(self) -> None:
        """T: trace the selected AoR's user as caller or callee, scope message (REGISTERs included)."""
        from console.trace_live import target_for_contact

        from .trace_screen import TraceRequested, selected_row_key

        contact = self.shown.get(selected_row_key(self.query_one(ContactTable)) or "")
        try:
            target = target_for_contact(contact) if contact is not None else None
        except ValueError as exc:
            self.post_message(TraceRequested(None, str(exc)))
            return
        self.post_message(TraceRequested(target, "" if target is not None else "no contact selected"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        contact = self.shown.get(event.row_key.value or "")
        if contact is None:
            return
        if not contact.contact:  # known by AoR name only (ul_dump brief): ask for this one AoR
            self.post_message(AorDetailRequested(contact.aor))
            return
        elapsed = self.view.index_elapsed(self.now)
        self.post_message(DetailRequested(f"Contact {safe_text(contact.aor, 80).plain}",
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
        """After the operator's key: the same view again, with the new selection."""
        if self.selection_query != self._asked:
            self._asked = self.selection_query
            self.post_message(SelectionChanged(self._asked))  # the next big list is prepared for it
        self.render_view(self.view, self.now)
        if select_index is not None:
            table = self.query_one(ContactTable)
            table.move_cursor(row=select_index - self.window_start, animate=False)
            if select_index == 0:
                table.scroll_home(animate=False)

    @property
    def selection_query(self) -> tuple[str, str, str, bool]:
        """What ContactIndex.select is asked for: (filter text, transport, sort, reverse)."""
        return self.filter_text, self.transport, self.sort, self.reverse

    def render_view(self, state: LiveView, now: float) -> None:
        """The view's contact index: for a big list it may be of the list before (the session
        prepares the new one off the event loop); its countdowns count from its own moment."""
        show_text(self.query_one("#contacts-note", Static), contacts_note(state, now))
        index = state.contact_index if state.contact_index is not None else _EMPTY_INDEX
        self.matches = index.select(*self.selection_query)
        replaced = self._list_replaced(state, len(index.contacts))
        if replaced:
            self.window_start = 0
        self.window_start = min(self.window_start, max(0, len(self.matches) - self.WINDOW))
        window = self.matches[self.window_start:self.window_start + self.WINDOW]
        self.shown = {c.key: c for c in window}
        rows = self.cells.rows([(c.key, c) for c in window], state.index_elapsed(now), False, range(len(window)))
        table = self.query_one(ContactTable)
        self._show_rows(table, rows)
        if replaced and table.row_count:  # a new list: its top, not the old selection's new place
            table.move_cursor(row=0, animate=False)
            table.scroll_home(animate=False)
        show_text(self.query_one("#contacts-status", Static), self._status_line(len(index.contacts), len(window)))

    def _list_replaced(self, state: LiveView, total: int) -> bool:
        """The list was replaced rather than updated (a full sync after a partial list, or its size
        changed by half): following the selected contact would scroll to wherever it landed."""
        before, self._list_shape = self._list_shape, (state.contacts_mode, total)
        if before is None:
            return False
        mode, count = before
        partial_to_whole = mode == "events-partial" and state.contacts_mode != "events-partial"
        return partial_to_whole or abs(total - count) * 2 > max(count, 1) and count > 0

    def _show_rows(self, table: ContactTable, rows: list) -> None:
        """Only the columns that fit, whole (a Socket cut to `udp:127.0.0.1:506` misleads); the cursor
        stays on its contact when the columns change."""
        room = table.scrollable_content_region.width or (self.app.size.width - 2)
        cursor = None
        if self.columns_fit.fit(rows, room, CONTACT_PRIORITY) or len(table.columns) != len(self.columns_fit.shown):
            cursor = cursor_key(table)
            set_columns(table, self.columns_fit)
        sync_table(table, self.columns_fit.project(rows))
        if cursor is not None and cursor in self.shown:
            table.move_cursor(row=table.get_row_index(cursor), animate=False)

    def on_resize(self, _event) -> None:
        if self.now:
            self.call_after_refresh(lambda: self.render_view(self.view, self.now))

    def tick(self, state: LiveView, now: float) -> None:
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
        hidden = self.columns_fit.hidden()
        if hidden:
            out.append(f"  +{len(hidden)} cols → ", style="bold")
            out.append(f"({', '.join(hidden)}: Enter for the detail)", style="dim")
        return out


def contacts_note(state: LiveView, now: float) -> Text:
    """What the list is (complete, partial, polled), its age (STALE when OpenSIPS stopped
    answering), the source's note (why missing / partial) and the event subscription status."""
    mode = state.contacts_mode
    out = Text(end="")
    if state.paused and state.contacts is not None:  # nothing may claim to be live now
        out.append("PAUSED", style="bold reverse")
        out.append(f": the list as of {fmt.clock(state.contacts_at)}, not updated; Expires frozen (p resumes)")
        return out
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


# most useful first: at narrow widths the last ones are dropped first
CONTACT_PRIORITY = ("aor", "transport", "expires", "contact", "socket", "user_agent", "received", "flags")
EXPIRES_CELL = [key for key, _ in CONTACT_COLUMNS].index("expires")  # the one cell that changes by itself


def contact_expires_cell(contact: Contact, elapsed: float) -> Text:
    return Text(expires_text(contact, elapsed), justify="right")


def contact_cells(contact: Contact, elapsed: float) -> tuple[Text, ...]:
    return (
        safe_text(contact.aor, 32),
        fmt.transport_label(contact.transport, contact.ws),
        contact_expires_cell(contact, elapsed),
        safe_text(contact.user_agent, 24),
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
        ("State", safe_text(fmt.contact_state_text(contact.state), None)),
        ("Flags", str(contact.flags)),
        ("Branch flags", safe_text(" ".join(contact.cflags), None)),
        ("Methods", fmt.methods_text(contact.methods)),
        ("Node", safe_text(contact.target, None)),
    ]
    return [("Contact", field_lines(fields))]


def live_contact(key: str):
    """A contact detail that follows the list (expiry countdown, re-registrations)."""
    position = -1  # where the contact was in the last list (checked first)

    def sections(state: LiveView, now: float):
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



_EMPTY_INDEX = ContactIndex(())
