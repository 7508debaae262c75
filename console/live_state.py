"""What the console currently knows: the latest poll merged with the last
good data of every part, so a failing source shows old data *marked stale*
instead of nothing (or, worse, silently old numbers).

`LiveState` is the live session's own, changed by each poll; `LiveView` is what it publishes:
an immutable copy of the same facts (plus the session's flags and prepared contact index) that
the faces read.  Both answer the same questions (`StateQueries`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from console.config import Thresholds
from console.model import (
    Call,
    CallQuality,
    CheckResult,
    Contact,
    Dialog,
    HostState,
    MediaSession,
    MediaState,
    QualityState,
    SignallingState,
    SipCounters,
    Snapshot,
    SourceStatus,
    call_quality,
)
from console.plugins import CollectOptions, OverviewSection
from console.snapshot import join_calls, sessions_complete

from console.views import ContactIndex, History, SipSeries, sip_series

METRICS = ("registrations", "dialogs", "sessions", "ports", "load")
SIP_SAMPLES = 151  # the SIP counters of the last 150 polls (5 min at 2 s): the Overview's SIP health series
# The Overview's calls-by-quality groups; "unknown" also holds "no RTCP" (media flows, quality unknown)
QUALITY_GROUPS = ("ok", "poor", "one-way", "silent", "unknown")


class StateQueries:
    """What the screens and the checks ask of the merged state (LiveState and LiveView alike)."""

    latest: Snapshot | None
    signalling: SignallingState | None
    media: MediaState | None
    contacts: tuple[Contact, ...] | None
    contacts_as_of: float | None
    contacts_mode: str
    calls: tuple[Call, ...]
    qualities: Mapping[str, CallQuality]
    sip_samples: tuple[SipCounters, ...]
    last_ok: Mapping[str, float]
    _memo: dict


    @property
    def sources(self) -> dict[str, SourceStatus]:
        return dict(self.latest.sources) if self.latest else {}

    def _memo_of(self, name: str, source: Any, build: Any) -> Any:
        """`build(source)`, kept while `source` is the same object (a map per poll, not per key)."""
        memo = self._memo.get(name)
        if memo is None or memo[0] is not source:
            memo = self._memo[name] = (source, build(source))
        return memo[1]

    def signalling_stale(self) -> bool:
        return self.latest is not None and self.latest.signalling is None and self.signalling is not None

    def media_stale(self) -> bool:
        return self.latest is not None and self.latest.media is None and self.media is not None

    def contacts_elapsed(self, now: float) -> float:
        """Seconds to take off every Contact.expires of the list to get seconds left now."""
        return now - self.contacts_as_of if self.contacts_as_of is not None else 0.0

    def transport_counts(self) -> Counter:
        """Per transport; counted once per contact list (the overview asks every second)."""
        return self._memo_of("counts", self.contacts,
                             lambda contacts: Counter(contact.transport or "?" for contact in contacts or ()))

    def registered_count(self) -> int | None:
        """What OpenSIPS counts as registered (statistics), whatever the list holds."""
        ov = self.signalling.overview if self.signalling else None
        return ov.registered_contacts if ov is not None else None

    # ------------------------------------------------------------------ call quality, SIP health

    def quality(self, callid: str) -> CallQuality | None:
        """The call's derived media state (`call_quality`, as the snapshot JSON and the checks judge
        it), None for a Call-ID not in the list."""
        return self.qualities.get(callid)

    def quality_counts(self) -> dict[str, int]:
        """Calls per QUALITY_GROUPS group, plus "no RTCP" (a part of "unknown")."""
        def count(qualities: Mapping[str, CallQuality]) -> dict[str, int]:
            counts = dict.fromkeys(QUALITY_GROUPS + ("no RTCP",), 0)
            for quality in qualities.values():
                word = quality.state.value
                counts[word if word in counts and word != "no RTCP" else "unknown"] += 1
                if quality.state is QualityState.NO_RTCP:
                    counts["no RTCP"] += 1
            return counts
        return self._memo_of("quality_counts", self.qualities, count)

    def sip_health(self) -> SipSeries:
        """The SIP reply-class series over the kept samples (one interval per poll)."""
        return self._memo_of("sip", self.sip_samples, sip_series)

    def last_good_poll(self) -> float | None:
        return max(self.last_ok.values()) if self.last_ok else None

    def transport_counts_partial(self) -> bool:
        """The per-transport counts cover only part of what is registered (a partial list, or a
        list of another size than OpenSIPS's count): they must be shown as "of N listed"."""
        if self.contacts is None:
            return False
        registered = self.registered_count()
        return self.contacts_mode == "events-partial" or (registered is not None and registered != len(self.contacts))

    # ------------------------------------------------------------------ rows by key (detail screens)

    def _calls_by_id(self) -> dict[str, Call]:
        return self._memo_of("calls", self.calls, lambda calls: {call.callid: call for call in calls})

    def call(self, callid: str) -> Call | None:
        return self._calls_by_id().get(callid)

    def session(self, callid: str) -> MediaSession | None:
        sessions = self.media.sessions if self.media is not None else ()
        return self._memo_of("sessions", sessions, lambda rows: {s.callid: s for s in rows}).get(callid)

    def contact(self, key: str, hint: int = -1) -> tuple[Contact | None, int]:
        """The contact with this key in the current list and its position (None, -1: gone, or no
        list).  `hint`: its last position, checked first: a live list mostly keeps its order,
        and a map of 100k keys per poll would cost more than the detail screen asking."""
        contacts = self.contacts or ()
        if 0 <= hint < len(contacts) and contacts[hint].key == key:
            return contacts[hint], hint
        where = self._memo_of("contacts", contacts, lambda rows: {c.key: n for n, c in enumerate(rows)})
        position = where.get(key, -1)
        return (contacts[position] if position >= 0 else None), position


@dataclass
class LiveState(StateQueries):
    latest: Snapshot | None = None
    signalling: SignallingState | None = None
    signalling_at: float | None = None
    media: MediaState | None = None
    media_at: float | None = None
    details_at: float | None = None  # when the media sessions were last queried one by one
    host: HostState | None = None
    contacts: tuple[Contact, ...] | None = None
    contacts_at: float | None = None
    contacts_as_of: float | None = None  # when Contact.expires of the list counts from (live lists: fixed)
    contacts_note: str = ""
    contacts_mode: str = ""  # what the list is: full / events / events-partial / polling / none ("" unknown)
    events_status: str = ""  # the OpenSIPS event subscription's one-line status (live mode)
    dialogs: tuple[Dialog, ...] | None = None
    dialogs_at: float | None = None  # the poll that brought `dialogs`
    dialogs_listed_at: float | None = None  # when the source listed them, if before that poll (no events)
    calls: tuple[Call, ...] = ()
    # Call-ID -> its quality; the same object while its call is (see _judge)
    qualities: Mapping[str, CallQuality] = field(default_factory=lambda: MappingProxyType({}))
    thresholds: Thresholds = field(default_factory=Thresholds)  # the configured ones (mos_poor, silent_after_s)
    sip_samples: tuple[SipCounters, ...] = ()  # the SIP counters of the last polls, oldest first
    checks: list[CheckResult] = field(default_factory=list)
    checks_at: float | None = None
    last_ok: dict[str, float] = field(default_factory=dict)
    history: dict[str, History] = field(default_factory=lambda: {m: History() for m in METRICS})
    polls: int = 0
    _judged: dict = field(default_factory=dict, repr=False)  # Call-ID -> (call, its quality)
    _index: ContactIndex | None = None
    _previous_at: float | None = None  # the poll before the latest one
    _memo: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ update

    def apply(self, snapshot: Snapshot, requested: CollectOptions) -> None:
        self._previous_at = self.latest.collected_at if self.latest is not None else None
        self.latest = snapshot
        self.polls += 1
        at = snapshot.collected_at
        for name, status in snapshot.sources.items():
            if status.ok:
                self.last_ok[name] = status.collected_at or at
        if snapshot.signalling is not None:
            self._apply_signalling(snapshot.signalling, requested, at)
        if snapshot.media is not None:
            self.media, self.media_at = self._with_details(snapshot.media, requested, at), at
        if snapshot.host is not None:
            self.host = snapshot.host
        self._join(at)
        self._judge(at)
        self._record_history(at)

    def _join(self, at: float) -> None:
        """Dialogs with media sessions.  A call missing on one side is "without dialog/media" only
        when both lists came with this poll (and the session list is complete): a dialog list kept
        from an earlier poll (not asked for, or OpenSIPS failing) or a partial one makes the
        missing side unknown, not an orphan."""
        sessions = self.media.sessions if self.media is not None else None
        if self.dialogs is None and sessions is None:
            self.calls = ()
            return
        both_current = self.dialogs_current(at) and self.media_at == at and sessions_complete(self.media)
        self.calls = join_calls(self.dialogs, sessions, self._calls_by_id(), dialogs_complete=both_current,
                                sessions_complete=both_current)

    def _judge(self, at: float) -> None:
        """Each call's quality: a call object unchanged since the last poll keeps its verdict (it is
        a function of the call's data, judged as of its query), the others are judged as of `at`,
        as the snapshot of this moment would judge them."""
        previous, judged = self._judged, {}
        th = self.thresholds
        for call in self.calls:
            kept = previous.get(call.callid)
            if kept is None or kept[0] is not call:
                kept = (call, call_quality(call, at, mos_poor=th.mos_poor, silent_after_s=th.silent_after_s))
            judged[call.callid] = kept
        self._judged = judged
        self.qualities = MappingProxyType({callid: quality for callid, (_, quality) in judged.items()})

    def dialogs_current(self, at: float) -> bool:
        """The dialog list is of the poll at `at`: brought by it, and listed during it (not a
        list the source kept from an earlier dlg_list)."""
        if self.dialogs is None or self.dialogs_at != at:
            return False
        listed = self.dialogs_listed_at
        return listed is None or self._previous_at is None or listed > self._previous_at

    def _apply_signalling(self, state: SignallingState, requested: CollectOptions, at: float) -> None:
        self.signalling, self.signalling_at = state, at
        self.events_status = getattr(state, "events_status", "")
        mode = getattr(state, "contacts_mode", "")
        if state.contacts is not None:
            # contact_index() builds the new list's index from the previous one (live lists share contacts)
            self.contacts, self.contacts_at, self.contacts_note = state.contacts, at, state.contacts_note
            self.contacts_as_of = getattr(state, "contacts_as_of", None) or at
            self.contacts_mode = mode
        elif requested.contacts:
            # Asked for and still missing: the note says why (too many, failed).
            self.contacts, self.contacts_at, self.contacts_note = None, at, state.contacts_note
            self.contacts_as_of = None
            self.contacts_mode = mode
            self._index = None
        sip = state.overview.sip
        if sip is not None and sip.known and (not self.sip_samples or sip.at > self.sip_samples[-1].at):
            self.sip_samples = (self.sip_samples + (sip,))[-SIP_SAMPLES:]
        if state.dialogs is not None:
            self.dialogs, self.dialogs_at = state.dialogs, at
            self.dialogs_listed_at = getattr(state, "dialogs_as_of", None)
        elif requested.dialogs:
            self.dialogs, self.dialogs_at, self.dialogs_listed_at = None, at, None

    def _with_details(self, media: MediaState, requested: CollectOptions, at: float) -> MediaState:
        """Sessions listed without legs keep the legs of their last detailed query (ports and
        codecs rarely change; the age of the details is shown).  When only some sessions were
        queried (the rows on screen), the others keep theirs too."""
        if requested.media_details:
            self.details_at = at
            if requested.media_detail_callids is None:
                return media  # every session was queried
        previous = {s.callid: s for s in self.media.sessions if s.legs} if self.media is not None else {}
        if not previous:
            return media
        sessions = tuple(_detailed(s, previous.get(s.callid)) for s in media.sessions)
        return replace(media, sessions=sessions)

    def _record_history(self, at: float | None = None) -> None:
        ov = self.signalling.overview if self.signalling else None
        regs = ov.registered_contacts if ov and ov.registered_contacts is not None else (
            len(self.contacts) if self.contacts is not None else None)
        self.history["registrations"].add(regs, at)
        self.history["dialogs"].add(ov.active_dialogs if ov else None, at)
        media = self.media
        if media is not None:
            sessions = media.totals.total_sessions
            self.history["sessions"].add(sessions if sessions is not None else len(media.sessions), at)
            self.history["ports"].add(media.ports.used if media.ports.interfaces else None, at)
        self.history["load"].add(ov.load if ov else None, at)

    def contact_index(self) -> ContactIndex:
        contacts = self.contacts or ()
        if self._index is None or self._index.contacts is not contacts:
            self._index = ContactIndex(contacts, previous=self._index)
        return self._index

    # ------------------------------------------------------------------ publishing

    def view(self, **session: Any) -> "LiveView":
        """An immutable copy of what is known now; `session`: the live session's own fields
        (flags, interval, prepared contact index)."""
        return LiveView(
            latest=self.latest, signalling=self.signalling, signalling_at=self.signalling_at, media=self.media,
            media_at=self.media_at, details_at=self.details_at, host=self.host, contacts=self.contacts,
            contacts_at=self.contacts_at, contacts_as_of=self.contacts_as_of, contacts_note=self.contacts_note,
            contacts_mode=self.contacts_mode, events_status=self.events_status, dialogs=self.dialogs,
            dialogs_at=self.dialogs_at, calls=self.calls, qualities=self.qualities, thresholds=self.thresholds,
            sip_samples=self.sip_samples, checks=tuple(self.checks), checks_at=self.checks_at,
            last_ok=MappingProxyType(dict(self.last_ok)),
            history=MappingProxyType({name: tuple(h.values or ()) for name, h in self.history.items()}),
            history_at=MappingProxyType({name: tuple(h.times or ()) for name, h in self.history.items()}),
            polls=self.polls, stale=self.stale_lists(), **session)

    def stale_lists(self) -> Mapping[str, float]:
        """List -> seconds since it was brought, for the lists the latest poll did not bring."""
        snapshot = self.check_snapshot()
        return MappingProxyType(dict(snapshot.stale)) if snapshot is not None else MappingProxyType({})

    # ------------------------------------------------------------------ checks

    def check_snapshot(self) -> Snapshot | None:
        """The input of the checks: the latest poll completed with the merged lists, so the
        Checks screen runs the checks `diagnose` runs on the same complete data.

        A source that failed in the latest poll stays missing (as diagnose sees it: opensips.mi
        FAIL, the others UNKNOWN), not replaced by its last good data.  A list the latest poll
        did not bring (contacts, dialogs: fetched on their own cadence) is the last good one,
        marked in `Snapshot.stale` with its age, so a check comparing it says UNKNOWN."""
        latest = self.latest
        if latest is None:
            return None
        at = latest.collected_at
        stale: dict[str, float] = {}
        signalling = latest.signalling
        if signalling is not None:
            signalling = replace(signalling, contacts=self.contacts, contacts_note=self.contacts_note,
                                 contacts_mode=self.contacts_mode, contacts_as_of=self.contacts_as_of,
                                 dialogs=self.dialogs)
            if self.contacts is not None and self.contacts_at is not None and self.contacts_at != at:
                stale["contacts"] = round(at - self.contacts_at, 1)
            if self.dialogs is not None and not self.dialogs_current(at):
                listed = self.dialogs_listed_at if self.dialogs_at == at else self.dialogs_at
                stale["dialogs"] = round(at - (listed if listed is not None else at), 1)
        media = self.media if latest.media is not None else None
        return replace(latest, signalling=signalling, media=media, calls=self.calls, stale=stale)


def _detailed(listed: MediaSession, previous: MediaSession | None) -> MediaSession:
    """The last detailed session for a listed one; the same object when nothing changed, so
    the screens can tell unchanged rows by identity."""
    if listed.legs or previous is None:
        return listed
    if (previous.deleted, previous.foreign) == (listed.deleted, listed.foreign):
        return previous
    return replace(previous, deleted=listed.deleted, foreign=listed.foreign)


_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class LiveView(StateQueries):
    """One published moment of the live session: what the screens show.  Never changed once
    published (a consumer may keep it, compare it with the next, or record it)."""

    latest: Snapshot | None = None
    signalling: SignallingState | None = None
    signalling_at: float | None = None
    media: MediaState | None = None
    media_at: float | None = None
    details_at: float | None = None
    host: HostState | None = None
    contacts: tuple[Contact, ...] | None = None
    contacts_at: float | None = None
    contacts_as_of: float | None = None
    contacts_note: str = ""
    contacts_mode: str = ""
    events_status: str = ""
    dialogs: tuple[Dialog, ...] | None = None
    dialogs_at: float | None = None
    calls: tuple[Call, ...] = ()  # dialogs joined with media sessions, once, by the session
    qualities: Mapping[str, CallQuality] = field(default_factory=lambda: _EMPTY)  # Call-ID -> its quality
    thresholds: Thresholds = field(default_factory=Thresholds)
    sip_samples: tuple[SipCounters, ...] = ()  # the SIP counters of the last polls (sip_health)
    checks: tuple[CheckResult, ...] = ()
    checks_at: float | None = None
    last_ok: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    history: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: _EMPTY)  # metric -> its last samples
    history_at: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: _EMPTY)  # metric -> their times
    stale: Mapping[str, float] = field(default_factory=lambda: _EMPTY)  # list -> age, for lists the latest poll did not bring
    polls: int = 0
    # the live session's own
    interval: float = 2.0
    polling: bool = False
    paused: bool = False
    checks_pending: bool = False  # the checks were asked for (r) or are running
    contact_index: ContactIndex | None = None  # prepared for `contact_index_as_of`'s list (maybe older)
    contact_index_as_of: float | None = None
    # the plugins' own Overview blocks (their `overview` hook, on the merged snapshot)
    plugin_sections: tuple[OverviewSection, ...] = ()
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def index_elapsed(self, now: float) -> float:
        """Seconds to take off every Contact.expires of the indexed list to get seconds left now."""
        return now - self.contact_index_as_of if self.contact_index_as_of is not None else 0.0
