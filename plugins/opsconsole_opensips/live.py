"""Live mode of the OpenSIPS source: tables kept current from events, dumps kept rare.

Measured on OpenSIPS 3.4: ul_dump is quadratic and holds usrloc locks and the
single mi_http process (10k contacts 0.39 s, 100k 162 s; HTTP 500 at 20k with
`-M 16`).  So a long-running console subscribes to usrloc/dialog events and
dumps the contact table once (only while it is small, or when the operator
asks), then serves the event-fed `RegistrationStore`.  Counters stay polled:
`get_statistics` costs < 1 ms even at 100k.

Subscribing is not an operator write: it is a transient, loopback-only
registration of this console's own socket, removed again (expire 0) on close
and expiring on its own if the console dies.  `Config.events = False`
(`--no-events`) switches it off; the console then polls (bounded).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from console.errors import OpsError, TimeoutError_
from console.model import Connection, Contact, Dialog
from console.plugins import CollectOptions

from .codec import MIServerError
from .events import EventListener
from .events_store import DialogStore, EventRouter, RegistrationStore, reuse_if_equal
from .parse import pack_contacts, parse_aors, parse_contacts, parse_dialogs, release_free_heap, unpack_contacts
from .wire import decode_dump

DUMP_TIMEOUT_CAP = 600.0  # never wait longer than this for one dump
# A dump runs as a task of its own: a poll waits for it at most this many cheap-call timeouts
# (a 10k dump takes 0.4 s), then goes on; a 100k dump (162 s) must not freeze everything else.
INLINE_DUMP_WAIT = 2
LIVE_DIALOG_RESYNC_FACTOR = 4  # with events live, a full dialog list every 4 heavy intervals (2 min)
DIALOG_DETAILS_PER_POLL = 20  # new calls' parties per poll between dialog lists (cheap MI calls)
BRIEF_DUMP_SHARE = 13 / 162  # `ul_dump brief` vs full ul_dump at 100k (measured: 13 s vs 162 s)
EVENTS_RETRY_AFTER = 300.0  # try subscribing again this long after events were unavailable
# Views count `expires` from a fixed moment (contacts_as_of), so time passing rebuilds nothing and
# an unchanged table is the same tuple; but a view with contacts added or removed makes the UI
# re-sort the whole list: big tables are refreshed at most every len/VIEW_CONTACTS_PER_SECOND
# seconds, so the list may lag events by that much (10 s at 100k).
VIEW_ALWAYS_BELOW = 20_000
VIEW_CONTACTS_PER_SECOND = 10_000
_FALLBACK_SUFFIX = " — falling back to bounded polling"

Caller = Callable[..., Awaitable[Any]]  # call(logical_name, params=None, *, timeout=None, typed=None)


def estimate_dump_seconds(contacts: int, brief: bool = False) -> float:
    """ul_dump time measured on OpenSIPS 3.4 (10k: 0.39 s, 100k: 162 s): ~n^2.6 growth."""
    full = 0.39 * (max(contacts, 0) / 10_000) ** 2.6
    return full * BRIEF_DUMP_SHARE if brief else full


def dump_timeout(contacts: int, base_timeout: float, brief: bool = False) -> float:
    """A dump's own deadline: three times the measured curve, at least 5 cheap-call timeouts, capped."""
    estimate = estimate_dump_seconds(contacts, brief)
    return min(DUMP_TIMEOUT_CAP, max(base_timeout * 5, 3 * estimate + base_timeout))


def explain_dump_failure(wire: str, exc: OpsError, contacts: int | None, timeout: float) -> str:
    """Operator-readable reason a dump failed, with what to change on OpenSIPS."""
    size = f" of {contacts} contacts" if contacts is not None else ""
    if isinstance(exc, MIServerError):
        return (f"{wire}{size} failed: OpenSIPS mi_http answered HTTP {exc.code} — the reply did not fit its "
                f"buffer; start OpenSIPS with more pkg memory (-M 256) or raise modparam(\"httpd\",\"buf_size\",…)")
    if isinstance(exc, TimeoutError_):
        return (f"{wire}{size}: OpenSIPS MI stayed silent for {timeout:.3g} s — the dump may still be running and "
                f"holds mi_http; if the reply is too big raise -M or modparam(\"httpd\",\"buf_size\",…)")
    return f"{wire}{size} failed: {exc}"


class _Dump:
    """A contact dump running in the background, and what its poll should learn when it ends."""

    def __init__(self, what: str, started: float, estimate: float,
                 body: Callable[[list[str]], Awaitable[bool | None]]) -> None:
        self.what, self.started, self.estimate = what, started, estimate
        self.errors: list[str] = []  # the MI errors, for the poll that sees the dump end
        self.task = asyncio.get_running_loop().create_task(body(self.errors), name=f"opsconsole {what}")


def _grouped(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def _clock_text(when: float | None) -> str:
    return time.strftime("%H:%M", time.localtime(when)) if when else "?"


class _TranslatingMI:
    """What EventListener calls: 3.x command names, translated for the detected version."""

    def __init__(self, call: Caller) -> None:
        self._call = call

    async def call(self, method: str, params: Any = None) -> Any:
        return await self._call(method, params)


class LiveSync:
    """Contacts and dialogs for a long-running console (CollectOptions.live).

    Owned by OpenSIPSSource; `call` runs an MI command by its 3.x name.
    """

    def __init__(self, call: Caller, config, *, target: str, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._call = call
        self.config = config
        self.target = target
        self.clock, self.monotonic = clock, monotonic
        self.registrations = RegistrationStore()
        self.dialog_store = DialogStore()
        self.listener: EventListener | None = None
        self._listener_tried_at: float | None = None
        self._restarted = False
        self._contact_sync_at: float | None = None  # last full contact sync attempt (monotonic)
        self._synced_gap: float | None = None  # listener.coverage_gap_at already re-synced
        self._drops_seen = 0
        self._sync_error = ""
        self._polled: tuple[Contact, ...] | None = None
        self._polled_what = ""
        self._polled_at: float | None = None
        self._dialog_sync_at: float | None = None
        self._polled_dialogs: tuple[Dialog, ...] | None = None
        self._polled_dialogs_at: float | None = None  # wall clock of the list in _polled_dialogs
        self._detail_tried: set[str] = set()  # Call-IDs asked for details once (see _detail_new_dialogs)
        self._view: tuple[Contact, ...] = ()
        self._view_at: float | None = None
        self._view_version: int | None = None  # store version the view shows
        # live lists count Contact.expires from this moment (SignallingState.contacts_as_of)
        self.contacts_as_of: int | None = None
        self._connections_at: float | None = None
        self.connections: tuple[Connection, ...] | None = None  # last parsed list_tcp_conns
        self._dump: _Dump | None = None  # the contact dump running in the background, if any

    # ------------------------------------------------------------------ TCP connections

    def connections_due(self) -> bool:
        """list_tcp_conns lists every TCP/WS connection (~40k at 100k contacts): heavy cadence only."""
        last = self._connections_at
        return last is None or self.monotonic() - last >= self.config.heavy_interval

    def remember_connections(self, connections: tuple[Connection, ...] | None) -> None:
        self._connections_at = self.monotonic()
        if connections is not None:  # on failure keep showing the previous list
            self.connections = connections

    # ------------------------------------------------------------------ events

    @property
    def events_live(self) -> bool:
        return self.listener is not None and self.listener.active

    async def ensure_listener(self) -> None:
        """Subscribe once; retry later when MI was unreachable or events were unavailable."""
        if not self.config.events:
            return
        if self.events_live:
            if self._restarted:  # a restarted OpenSIPS forgot our subscriptions
                self._restarted = False
                await self.listener.resubscribe()
            return
        now = self.monotonic()
        if self.listener is None:
            self.listener = EventListener(_TranslatingMI(self._call), EventRouter(self.registrations, self.dialog_store),
                                          clock=self.clock, target=self.target)
        elif self.listener.fallback and now - (self._listener_tried_at or now) < EVENTS_RETRY_AFTER:
            return
        self._listener_tried_at = now
        await self.listener.start()

    def events_status(self) -> str:
        if not self.config.events:
            return "events switched off (--no-events): polling"
        return self.listener.status_line() if self.listener is not None else ""

    def opensips_restarted(self) -> None:
        """Uptime went backwards: usrloc may have been reloaded without events; re-sync when allowed."""
        self.registrations.complete = False
        self._contact_sync_at = None
        self._dialog_sync_at = None
        self._restarted = True

    async def aclose(self) -> None:
        dump, self._dump = self._dump, None
        if dump is not None and not dump.task.done():
            dump.task.cancel()
            await asyncio.gather(dump.task, return_exceptions=True)
        listener, self.listener = self.listener, None  # a later live collection starts afresh
        if listener is not None:
            await listener.aclose()  # unsubscribes (expire 0) and releases the socket

    # ------------------------------------------------------------------ contacts

    async def contacts(self, count: int | None, options: CollectOptions,
                       errors: list[str]) -> tuple[tuple[Contact, ...] | None, str, str]:
        """(contacts, note, contacts_mode) for this collection."""
        if not options.contacts:
            return None, "contact list not requested", "none"
        if self.events_live:
            return await self._event_contacts(count, options, errors)
        return await self._polled_contacts(count, options, errors)

    async def _event_contacts(self, count: int | None, options: CollectOptions, errors: list[str]):
        now = self.clock()
        self.registrations.expire(now)
        synced = self._finished_dump(errors)
        if not synced and self._dump is None and self._full_sync_due(count, options):
            await self._in_background("full sync", estimate_dump_seconds(count or 0),
                                      lambda failures: self._full_sync(count, failures))
            synced = self._finished_dump(errors)
        contacts = self._contact_view(now, rebuild=synced)
        failure = f"; last full sync failed: {self._sync_error}" if self._sync_error else ""
        running = f"; {self.dump_note()}" if self.dump_running else ""
        if self.registrations.complete:
            return contacts, (failure + running).lstrip("; "), "full" if synced else "events"
        return contacts, self._partial_note(count, options) + failure + running, "events-partial"

    # ------------------------------------------------------------------ dumps in the background

    @property
    def dump_running(self) -> bool:
        return self._dump is not None and not self._dump.task.done()

    def dump_note(self) -> str:
        """What the operator should know while our dump holds OpenSIPS MI."""
        dump = self._dump
        if dump is None:
            return ""
        return (f"{dump.what} running since {time.strftime('%H:%M:%S', time.localtime(dump.started))} "
                f"(~{max(dump.estimate, 1):.0f} s expected; OpenSIPS MI answers nothing else meanwhile)")

    async def _in_background(self, what: str, estimate: float,
                             body: Callable[[list[str]], Awaitable[bool | None]]) -> None:
        """Start a dump as a task; wait for it only as long as a few cheap calls may take."""
        self._dump = _Dump(what, self.clock(), estimate, body)
        await asyncio.wait({self._dump.task}, timeout=self.config.timeout * INLINE_DUMP_WAIT)

    def _finished_dump(self, errors: list[str]) -> bool:
        """A dump that ended since the last poll: its errors join this poll's.  True when it was
        a full sync that succeeded (the view is rebuilt from it)."""
        dump = self._dump
        if dump is None or not dump.task.done():
            return False
        self._dump = None
        errors.extend(dump.errors)
        if dump.task.cancelled():
            return False
        failure = dump.task.exception()
        if failure is not None:  # a bug, not an MI error (those are in dump.errors)
            errors.append(f"{dump.what} failed unexpectedly: {type(failure).__name__}: {failure}")
            return False
        return bool(dump.task.result())

    def _contact_view(self, now: float, rebuild: bool) -> tuple[Contact, ...]:
        """The store's view: `expires` counts from `contacts_as_of` (fixed), so time passing
        changes nothing and an unchanged store hands out the very same tuple."""
        store = self.registrations
        if rebuild or self.contacts_as_of is None:
            # after a full sync count from the dump's own moment: its contacts need no rebasing
            self.contacts_as_of = int(store.loaded_at if rebuild and store.loaded_at else now)
            self._view_version = None
        if self._view_version == store.version:
            return self._view
        size = len(store)
        lag = 0.0 if size <= VIEW_ALWAYS_BELOW else size / VIEW_CONTACTS_PER_SECOND
        if rebuild or self._view_at is None or now - self._view_at >= lag:
            self._view, self._view_at = store.view(self.contacts_as_of), now
            self._view_version = store.version
        return self._view

    def _full_sync_due(self, count: int | None, options: CollectOptions) -> bool:
        if options.force_full_sync:
            return True
        if count is None or count > options.full_sync_max:
            return False  # unknown or too big: only the operator may ask for it
        if self._events_missed():
            return True
        if self.registrations.complete:
            return False
        last = self._contact_sync_at
        return last is None or self.monotonic() - last >= self.config.heavy_interval

    def _events_missed(self) -> bool:
        """Subscriptions lost (verify) or datagrams dropped by the kernel: the table is stale."""
        listener = self.listener
        gap = listener.coverage_gap_at
        drops = listener.udp_drops() or 0
        missed = (gap is not None and gap != self._synced_gap) or drops > self._drops_seen
        self._synced_gap, self._drops_seen = gap, max(drops, self._drops_seen)
        if missed:
            self.registrations.complete = False
        return missed

    async def _full_sync(self, count: int | None, errors: list[str]) -> bool:
        """ul_dump under its own deadline (runs in the background, see _in_background); events
        during it are replayed (begin_sync).  On failure the event-fed table stays and the
        reason goes to errors and the note."""
        self._contact_sync_at = self.monotonic()
        timeout = dump_timeout(count or 0, self.config.timeout)
        self.registrations.begin_sync()
        try:
            raw = await self._call("ul_dump", None, timeout=timeout, typed=decode_dump)
            packed = pack_contacts(parse_contacts(raw, self.target))
        except OpsError as exc:
            self.registrations.journal.take()  # stop recording: nothing to replay onto
            self._sync_error = explain_dump_failure("ul_dump", exc, count, timeout)
            errors.append(self._sync_error)
            return False
        del raw  # drop the decoded reply before the long-lived contacts are built (see pack_contacts)
        self.registrations.load_full(unpack_contacts(packed), now=self.clock(), report=False)  # views, not diffs
        release_free_heap()
        self._sync_error = ""
        return True

    def _partial_note(self, count: int | None, options: CollectOptions) -> str:
        listener = self.listener
        seen = f"list live from events since {_clock_text(listener.since)} ({_grouped(len(self.registrations))} seen)"
        if count is None:
            return f"contact count unknown (usrloc statistics unavailable); {seen}; press S for a full sync"
        if count > options.full_sync_max:
            return (f"{count} registered (statistics); {seen}; full sync would hold OpenSIPS MI for "
                    f"~{estimate_dump_seconds(count):.0f} s — press S to run it")
        return f"{count} registered (statistics); {seen}; full sync pending"

    async def _polled_contacts(self, count: int | None, options: CollectOptions, errors: list[str]):
        """Events unavailable: a dump at most every heavy_interval (full below the threshold,
        else AoR names only), the previous result in between."""
        interval = self.config.heavy_interval
        head = f"events unavailable: {self._no_events_reason()}; polling every {interval:g} s"
        now = self.monotonic()
        due = options.force_full_sync or self._polled_at is None or now - self._polled_at >= interval
        self._finished_dump(errors)
        if due and count is None and not options.force_full_sync:
            return None, f"{head}; contact count unknown (usrloc statistics unavailable): no dump", "polling"
        if due and self._dump is None:
            self._polled_at = now
            full = options.force_full_sync or count <= options.full_sync_max
            await self._in_background("full dump" if full else "brief dump",
                                      estimate_dump_seconds(count or 0, brief=not full),
                                      lambda failures: self._poll_dump(count, full, options, failures))
            self._finished_dump(errors)
        running = f"; {self.dump_note()}" if self.dump_running else ""
        return self._polled, f"{head}; {self._polled_what}{running}", "polling"

    async def _poll_dump(self, count: int | None, full: bool, options: CollectOptions, errors: list[str]) -> None:
        timeout = dump_timeout(count or 0, self.config.timeout, brief=not full)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        try:
            if full:
                raw = await self._call("ul_dump", None, timeout=timeout, typed=decode_dump)
                packed = pack_contacts(parse_contacts(raw, self.target))
                del raw  # see _full_sync
                self._polled = unpack_contacts(packed)
                release_free_heap()
                self._polled_what = f"full list at {stamp}"
            else:
                raw = await self._call("ul_dump", {"brief": 1}, timeout=timeout, typed=decode_dump)
                self._polled = tuple(Contact(aor=aor, contact="", target=self.target) for aor in parse_aors(raw))
                self._polled_what = (f"AoR names only (ul_dump brief) at {stamp}: {count} registered (statistics), "
                                     f"full dump skipped above {options.full_sync_max}; Enter on an AoR asks for its contacts")
        except OpsError as exc:
            reason = explain_dump_failure("ul_dump", exc, count, timeout)
            errors.append(reason)
            self._polled_what = f"last dump failed ({reason}); showing the previous list"

    def _no_events_reason(self) -> str:
        if not self.config.events:
            return "switched off (--no-events)"
        listener = self.listener
        if listener is None:
            return "not started"
        if listener.fallback_reason:
            return listener.fallback_reason.removesuffix(_FALLBACK_SUFFIX)
        return f"subscription failed ({listener.last_error or 'unknown reason'}); retrying"

    # ------------------------------------------------------------------ dialogs

    async def dialogs(self, fetch: Callable[[], Awaitable[tuple[Dialog, ...] | None]], options: CollectOptions
                      ) -> tuple[Dialog, ...] | None:
        """Full dialog list at start, every heavy_interval (4x with events live) or when forced; between, the
        event-fed store (or, without events, the previous list)."""
        if not options.dialogs:
            return None
        now = self.monotonic()
        last = self._dialog_sync_at
        # Events keep the store current: the full list (every dialog with its SDPs; OpenSIPS
        # holds the dialog table while it prints it) is only a safety net then, so rarer.
        every = self.config.heavy_interval * (LIVE_DIALOG_RESYNC_FACTOR if self.events_live else 1)
        busy = self.dump_running  # our dump holds mi_http: ask nothing more of it until it ends
        if not busy and (options.force_full_sync or last is None or now - last >= every):
            await self._sync_dialogs(fetch)
        if self.events_live:
            if not busy:
                await self._detail_new_dialogs(options.dialog_detail_callids)
            # Before its first full list (or after a lost journal) the store holds only what
            # events reported: a partial list, i.e. unknown, never "no dialogs" (false orphans).
            return tuple(self.dialog_store.dialogs()) if self.dialog_store.complete else None
        return self._polled_dialogs

    @property
    def dialogs_as_of(self) -> float | None:
        """When the dialog list `dialogs()` returns was listed: None while events keep it current;
        without events, the last dlg_list (a list up to heavy_interval old: a call that started
        since is missing from it without being an orphan)."""
        return None if self.events_live else self._polled_dialogs_at

    async def _detail_new_dialogs(self, shown: frozenset[str] | None) -> None:
        """From/To, contacts and SDPs of calls that started since the last dialog list, one cheap
        `dlg_list callid` each (a few per poll): without them new calls show blank parties.
        `shown`: only these Call-IDs (the rows on screen; one HTTP request each is most of what a
        Calls screen costs at 1 000 calls), the others wait for the next full list."""
        store, tried = self.dialog_store, self._detail_tried
        wanted = store.undetailed()
        tried &= set(wanted)  # forget dialogs that ended or got their details
        if shown is not None:
            wanted = [c for c in wanted if c in shown]
        for callid in [c for c in wanted if c not in tried][:DIALOG_DETAILS_PER_POLL]:
            tried.add(callid)  # once: a dialog that just ended answers 404 until its event comes
            try:
                for dialog in parse_dialogs(await self._call("dlg_list", {"callid": callid}), self.target):
                    store.fill(dialog)
            except OpsError:
                continue  # gone meanwhile or MI busy: the next full list has it

    async def _sync_dialogs(self, fetch) -> None:
        self._dialog_sync_at = self.monotonic()
        live = self.events_live
        if live:
            self.dialog_store.begin_sync()
        listed = await fetch()  # None on failure (the reason is already in errors)
        if listed is None:
            if live:
                self.dialog_store.journal.take()
            return
        if live:
            self.dialog_store.load_full(listed)
        else:
            previous = {d.id: d for d in self._polled_dialogs or ()}
            self._polled_dialogs = tuple(reuse_if_equal(previous.get(d.id), d) for d in listed)
            self._polled_dialogs_at = self.clock()
