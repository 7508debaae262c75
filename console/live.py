"""The live session, headless: what the interactive console does between two screens.

It owns the cadence (cheap counters every poll; heavy lists for the screen that shows them, else
on the slow `heavy_interval`; per-session media details for the rows on screen plus a rotating
share that queries every call once per `heavy_interval`; the checks on their own interval), never overlaps two polls, merges each poll with the last good data
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
import heapq
import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from console.errors import OpsError
from console.heap import HeapPolicy
from console.live_state import LiveState, LiveView
from console.model import MediaSession, Snapshot, SourceStatus
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
# does) while there are at most this many: ~40 ms of ng queries per heavy interval.  Above it the
# rotation below has covered every call within the last checks interval.
CHECKS_DETAILS_MAX = 150
# The rotating budget: besides the rows on screen, every poll queries the sessions asked longest ago
# (never asked first), enough of them that every session is queried once per `heavy_interval` (the
# checks' cadence): the calls.* checks and the quality counts then judge every call on figures at most
# one checks interval old.  At 1 000 calls, 2 s polls and 30 s checks: 67 per poll, 33 queries/s,
# ~0.3 s of RTPengine time per minute (bench/bench_quality.py).  Capped per second: beyond
# ROTATION_MAX_PER_S * heavy_interval sessions a full round takes longer (N / ROTATION_MAX_PER_S s).
ROTATION_MIN_PER_POLL = 2
ROTATION_MAX_PER_S = 100
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
        if getattr(config, "thresholds", None) is not None:  # the calls' quality, judged as diagnose does
            self.state.thresholds = config.thresholds
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
        self._asked: dict[str, int] = {}  # Call-ID -> the poll that last queried its session (rotation)
        self._screen_details_at: float | None = None  # when the rows on screen were last queried
        self.last_rotation: frozenset[str] = frozenset()  # the rotation's share of the last options
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
        wanted = self._details_wanted(now, checks_due)
        on_screen = interest.detail_callids or frozenset()
        force, self._full_sync_requested = self._full_sync_requested, False
        # Host facts (daemons, modules, kernel log) feed only the checks: read them for those polls.
        # live: between full syncs the sources keep lists current from events, not dumps.
        return CollectOptions(contacts=contacts or force, dialogs=dialogs, media_details=wanted is None or bool(wanted),
                              media_detail_callids=wanted,
                              dialog_detail_callids=on_screen if interest.screen == "calls" else frozenset(),
                              host_facts=checks_due, full_sync_max=self.full_sync_max, force_full_sync=force,
                              live=True)

    def _details_wanted(self, now: float, checks_due: bool) -> frozenset[str] | None:
        """The sessions to query this poll (None: every one).  Every one while none is known yet (the
        first checks then judge every call, as diagnose does) and on a checks poll with few calls;
        else the rows on screen (when due) plus the rotation's share."""
        media = self.state.media
        if media is None or (checks_due and len(media.sessions) <= CHECKS_DETAILS_MAX):
            self.last_rotation = frozenset()
            return None
        interest = self.interest
        on_screen = interest.detail_callids if interest.wants("details") and self._details_due(now) else None
        on_screen = on_screen or frozenset()
        self.last_rotation = self.rotation(media.sessions, besides=on_screen)
        return on_screen | self.last_rotation

    def rotation(self, sessions: Sequence[MediaSession], besides: frozenset[str] = frozenset()) -> frozenset[str]:
        """The rotating budget's share of this poll: the sessions asked longest ago, never asked first
        (then in list order), `rotation_size` of them, `besides` those asked anyway (the rows on screen).
        A session waits at most ceil(N / size) polls."""
        live = [s.callid for s in sessions if not s.deleted and s.callid not in besides]  # deleted: unknown anyway
        asked = self._asked
        return frozenset(heapq.nsmallest(self.rotation_size(len(live)), live, key=lambda c: asked.get(c, -1)))

    def rotation_size(self, sessions: int) -> int:
        """Per poll: every session once per heavy interval, within ROTATION_MAX_PER_S."""
        wanted = math.ceil(sessions * self.interval / self.heavy_interval)
        most = max(ROTATION_MIN_PER_POLL, int(ROTATION_MAX_PER_S * self.interval))
        return min(sessions, max(ROTATION_MIN_PER_POLL, min(wanted, most)))

    def _note_asked(self, options: CollectOptions) -> None:
        """Which poll last asked each listed session (the rotation's order); gone sessions forgotten.
        After the poll: its list (new sessions not asked yet come first next time)."""
        media = self.state.media
        if not options.media_details or media is None:
            return
        asked, poll = self._asked, self.polls
        wanted = options.media_detail_callids
        if wanted is None or (self.interest.detail_callids and self.interest.detail_callids <= wanted):
            self._screen_details_at = self.now()
        self._asked = {s.callid: (poll if wanted is None or s.callid in wanted else asked.get(s.callid, -1))
                       for s in media.sessions}

    def _details_due(self, now: float) -> bool:
        """One ng query per media session on screen; should that be many sessions, fewer rounds
        (RTPengine's load and ours).  The others keep their last details (LiveState)."""
        wanted, media = self.interest.detail_callids, self.state.media
        sessions = len(wanted) if wanted is not None else (len(media.sessions) if media is not None else 0)
        every, at = sessions / DETAIL_QUERIES_PER_S, self._screen_details_at
        return every <= self.interval or at is None or now - at >= every

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
            self._note_asked(options)
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

