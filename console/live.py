"""The live session, headless: what the interactive console does between two screens.

It owns the cadence (cheap counters every poll; heavy lists for the screen that shows them, else
on the slow `heavy_interval`; per-session media details within a query budget; the checks on
their own interval), never overlaps two polls, merges each poll with the last good data
(`LiveState`: stale marks and ages), joins dialogs with media sessions once, runs the checks on
the merged state, prepares the contact index off the event loop, and applies the one memory
policy (`console.heap`).  It publishes an immutable `LiveView` after every poll and takes from
its consumers only an `Interest`: which screen (so which lists) is wanted, which Call-IDs are on
screen, what the contact list is filtered and sorted by.

Any face can drive it: the TUI (console/ui/app.py) renders the views; a test or an exporter can
`await session.poll_once()` or `await session.run()` without Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from console.errors import OpsError
from console.heap import HeapPolicy
from console.live_state import LiveState, LiveView
from console.model import Snapshot, SourceStatus
from console.plugins import CollectOptions, OverviewSection
from console.views import ContactIndex

PREPARE_IN_THREAD = 5_000  # contacts; below this the first filter is cheap enough inline
# new contacts in one list that make it worth a full collection and handing freed heap back at once
# (a full sync at 100k); smaller changes are left to the heap policy's periodic sweep
CALM_AFTER_NEW = 50_000
OFFSCREEN_INDEX_EVERY = 300.0  # s: a big list's index while no screen shows it
# Budget of per-session ng queries (one per call on screen): a 40-row screen's ports and packet
# counters every ~3 s (the age is shown when older than the last poll).
DETAIL_QUERIES_PER_S = 15
# A checks poll queries every media session's details (the calls.* checks judge each call, as diagnose
# does) while there are at most this many: ~40 ms of ng queries per heavy interval.  Above it, at 1 000
# calls, that round cost ~2 % of a core and ~30 MB (every session keeping its legs): only the rows on
# screen are queried, and the calls.* checks say UNKNOWN for calls without current details.
CHECKS_DETAILS_MAX = 150
HEAVY_SCREENS = {"registrations": ("contacts",), "calls": ("dialogs", "details"), "media": ("dialogs", "details")}
DEFAULT_SELECTION = ("", "all", "aor", False)

Subscriber = Callable[[LiveView], None]


@dataclass(frozen=True)
class Interest:
    """What the consumer shows now: the live session fetches and prepares for that.

    `screen`: overview / registrations / calls / media / checks / mi (its lists come every poll).
    `detail_callids`: the Call-IDs whose media sessions are on screen (None: no such rows shown).
    `selection`: the contact list's (filter text, transport, sort column, reverse).
    """

    screen: str = "overview"
    detail_callids: frozenset[str] | None = None
    selection: tuple[str, str, str, bool] = DEFAULT_SELECTION

    def wants(self, part: str) -> bool:
        return part in HEAVY_SCREENS.get(self.screen, ())


class LiveSession:
    def __init__(self, service: Any, *, interval: float = 2.0, heavy_interval: float | None = None,
                 full_sync_max: int | None = None, clock: Callable[[], float] = time.time,
                 manage_heap: bool = False) -> None:
        """`manage_heap`: this process is the console, so the session applies the memory policy
        (console.heap) after each poll; otherwise (tests sharing their process, an embedding
        application) it leaves the collector alone.  See also `manage_heap()`."""
        config = getattr(service, "config", None)
        self.service = service
        self.interval = max(0.1, float(interval))
        self.heavy_interval = float(heavy_interval or getattr(config, "heavy_interval", 30.0) or 30.0)
        self.full_sync_max = int(full_sync_max or getattr(config, "full_sync_max", 10_000) or 10_000)
        self.clock = clock
        self.heap: HeapPolicy | None = HeapPolicy() if manage_heap else None
        self.state = LiveState()
        self.interest = Interest()
        self.paused = False
        self.polling = False
        self.polls = 0
        self.last_options: CollectOptions | None = None
        self.checks_error = ""  # why the last checks run failed ("" when it did not)
        self._full_sync_requested = False
        self._checks_requested = False
        self._checks_running = False
        self._index: ContactIndex | None = None  # the contact index last published
        self._index_at = 0.0  # when it was prepared (our clock)
        self._index_as_of: float | None = None  # its list's contacts_as_of (its countdowns count from it)
        self._subscribers: list[Subscriber] = []
        self._current: asyncio.Future | None = None  # the poll running
        self._next: asyncio.Future | None = None  # the poll waiting for it (callers share it)
        self._wake = asyncio.Event()
        self._closed = False
        self.view = self._publishable()

    # ------------------------------------------------------------------ what the consumers say

    def set_interest(self, interest: Interest) -> None:
        self.interest = interest

    def request_full_sync(self) -> None:
        """One full contact dump with the next poll (it holds OpenSIPS MI: only when asked)."""
        self._full_sync_requested = True
        self._wake.set()

    def request_checks(self) -> bool:
        """The next poll brings every list and runs the checks on it.  False: no data yet."""
        if self.state.latest is None:
            return False
        self._checks_requested = True
        self._wake.set()
        return True

    def manage_heap(self) -> None:
        """From now on this process's GC follows the console's policy (console.heap)."""
        if self.heap is None:
            self.heap = HeapPolicy()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """`subscriber(view)` after every poll; returns the unsubscribe function."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    @property
    def checks_pending(self) -> bool:
        return self._checks_requested or self._checks_running

    # ------------------------------------------------------------------ cadence

    def now(self) -> float:
        return self.clock()

    def collect_options(self) -> CollectOptions:
        """Heavy lists only for the screen that shows them, else on the slow cadence."""
        now, state, interest = self.now(), self.state, self.interest

        def due(at: float | None) -> bool:
            return at is None or now - at >= self.heavy_interval

        # A poll that feeds the checks brings every list diagnose has: the checks then compare
        # lists of one moment (an older dialog list against current sessions gives false orphans).
        checks_due = self.checks_due()
        contacts = interest.wants("contacts") or due(state.contacts_at) or checks_due
        dialogs = interest.wants("dialogs") or due(state.dialogs_at) or checks_due
        details = interest.wants("details") and self._details_due(now)
        every_session = checks_due and self._details_for_checks()
        wanted = None if every_session else interest.detail_callids
        details = details or every_session
        force, self._full_sync_requested = self._full_sync_requested, False
        # Host facts (daemons, modules, kernel log) feed only the checks: read them for those polls.
        # live: between full syncs the sources keep lists current from events, not dumps.
        return CollectOptions(contacts=contacts or force, dialogs=dialogs, media_details=details,
                              media_detail_callids=wanted if details else None,
                              dialog_detail_callids=(wanted or frozenset()) if interest.screen == "calls" else frozenset(),
                              host_facts=checks_due, full_sync_max=self.full_sync_max, force_full_sync=force,
                              live=True)

    def _details_due(self, now: float) -> bool:
        """One ng query per media session on screen; should that be many sessions, fewer rounds
        (RTPengine's load and ours).  The others keep their last details (LiveState)."""
        wanted, media = self.interest.detail_callids, self.state.media
        sessions = len(wanted) if wanted is not None else (len(media.sessions) if media is not None else 0)
        every, at = sessions / DETAIL_QUERIES_PER_S, self.state.details_at
        return every <= self.interval or at is None or now - at >= every

    def _details_for_checks(self) -> bool:
        """A checks poll queries every session's details (see CHECKS_DETAILS_MAX; none known yet: not at once)."""
        media = self.state.media
        return media is not None and len(media.sessions) <= CHECKS_DETAILS_MAX

    def checks_due(self) -> bool:
        """The checks run with this poll: first poll, the heavy cadence, or asked for."""
        at = self.state.checks_at
        return self._checks_requested or at is None or self.now() - at >= self.heavy_interval

    # ------------------------------------------------------------------ polling

    async def poll_once(self) -> LiveView:
        """One poll that starts now or, if one is running, right after it (polls never overlap;
        callers arriving meanwhile share that next poll).  A caller cancelled while waiting does
        not cancel the poll: the others still get it."""
        if self._next is None:
            self._next = asyncio.ensure_future(self._after_current())
        return await asyncio.shield(self._next)

    async def _after_current(self) -> LiveView:
        if self._current is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(self._current)
        self._current, self._next = self._next, None
        return await self._poll()

    async def run(self, until: Callable[[], bool] | None = None) -> None:
        """Poll every `interval` (from the end of one poll to the start of the next) until closed
        or `until()`; a request (full sync, checks, resume) starts the next poll at once."""
        while not self._closed and not (until is not None and until()):
            self._wake.clear()  # a request arriving during the poll below wakes the wait after it
            if not self.paused:
                await self.poll_once()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    def close(self) -> None:
        """No more polls: the runner stops, a poll still running or waiting is cancelled."""
        self._closed = True
        self._wake.set()
        for task in (self._next, self._current):
            if task is not None and not task.done():
                task.cancel()

    async def _poll(self) -> LiveView:
        if self.heap is not None:
            self.heap.after_poll()  # what survived the last poll and its rendering is frozen (or swept)
        options = self.last_options = self.collect_options()
        self.polling = True
        try:
            snapshot = await self._collect(options)
            self.state.apply(snapshot, options)
            self.polls += 1
            await self._prepare_index()
            if self.checks_due():
                await self._run_checks()
        finally:
            self.polling = False
        self.view = view = self._publishable()
        for subscriber in list(self._subscribers):
            subscriber(view)
        return view

    async def _collect(self, options: CollectOptions) -> Snapshot:
        try:
            return await self.service.snapshot(options)
        except Exception as exc:  # the service turns failures into data; this is the last guard
            return Snapshot(collected_at=self.now(),
                            sources={"console": SourceStatus("console", False, f"poll failed: {describe(exc)}")})

    async def _run_checks(self) -> None:
        """The diagnose checks on the merged state (LiveState.check_snapshot): the same checks on
        the same complete inputs as `opsconsole diagnose`, not on the latest poll alone (which
        lacks the lists fetched on their own cadence)."""
        snapshot = self.state.check_snapshot()
        if snapshot is None:
            return
        self._checks_requested = False
        self._checks_running = True
        try:
            self.state.checks = list(await self.service.checks(snapshot))
        except Exception as exc:
            self.checks_error = f"checks failed: {describe(exc)}"
        else:
            self.checks_error = ""
            self.state.checks_at = self.now()
        finally:
            self._checks_running = False

    # ------------------------------------------------------------------ the contact index

    async def _prepare_index(self) -> None:
        """The contact index of the current list, for the Registrations screen.  A big list's is
        prepared in a worker thread and published only once built, so the event loop never uses
        an index another thread is filling; elsewhere than on that screen only now and then (a
        live list's index rebuilt at every refresh for nobody cost ~0.3 % of a core at 10k)."""
        contacts, now = self.state.contacts or (), self.now()
        if self._index is not None and self._index.contacts is contacts:
            return
        big = len(contacts) >= PREPARE_IN_THREAD
        first = self._index is None or not self._index.contacts  # the first list is indexed at once
        if big and not (first or self.interest.screen == "registrations" or now - self._index_at >= OFFSCREEN_INDEX_EVERY):
            return  # the last prepared list stays shown until a screen wants this one
        index = ContactIndex(contacts, previous=self._index)
        if big:
            await asyncio.to_thread(index.prepare, *self.interest.selection)
            if index.new_contacts >= CALM_AFTER_NEW and self.heap is not None:
                self.heap.settle()  # only after a big list arrived: a full collection costs ~100 ms at 100k
        self._index, self._index_at, self._index_as_of = index, now, self.state.contacts_as_of

    # ------------------------------------------------------------------ publishing

    def _publishable(self) -> LiveView:
        index = self._index
        if index is None:  # before the first list: an empty one, for the empty screen
            index = self._index = ContactIndex(())
        return self.state.view(interval=self.interval, polling=self.polling, paused=self.paused,
                               checks_pending=self.checks_pending, contact_index=index,
                               contact_index_as_of=self._index_as_of, plugin_sections=self._plugin_sections())

    def _plugin_sections(self) -> tuple[OverviewSection, ...]:
        """The plugins' Overview blocks, from the same merged snapshot the checks see."""
        plugins = getattr(self.service, "plugins", None)
        if plugins is None or not any(p.overview is not None for p in plugins.plugins):
            return ()  # the usual case: no snapshot to merge for nobody, on every poll
        snapshot = self.state.check_snapshot()
        return tuple(plugins.overview_sections(snapshot)) if snapshot is not None else ()

    def current_view(self) -> LiveView:
        """The last published view with the session's flags as they are now (paused, checks asked)."""
        view = self.view
        if (view.paused, view.polling, view.checks_pending) == (self.paused, self.polling, self.checks_pending):
            return view
        self.view = replace(view, paused=self.paused, polling=self.polling, checks_pending=self.checks_pending,
                            _memo=view._memo)
        return self.view


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OpsError) else f"{type(exc).__name__}: {exc}"

