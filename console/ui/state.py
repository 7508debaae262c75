"""What the console currently knows: the latest poll merged with the last
good data of every part, so a failing source shows old data *marked stale*
instead of nothing (or, worse, silently old numbers)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from console.model import (
    Call,
    CheckResult,
    Contact,
    Dialog,
    HostState,
    MediaSession,
    MediaState,
    SignallingState,
    Snapshot,
    SourceStatus,
)
from console.plugins import CollectOptions
from console.snapshot import join_calls

from .views import ContactIndex, History

METRICS = ("registrations", "dialogs", "sessions", "ports", "load")


@dataclass
class LiveState:
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
    dialogs_at: float | None = None
    calls: tuple[Call, ...] = ()
    checks: list[CheckResult] = field(default_factory=list)
    checks_at: float | None = None
    last_ok: dict[str, float] = field(default_factory=dict)
    history: dict[str, History] = field(default_factory=lambda: {m: History() for m in METRICS})
    polls: int = 0
    _index: ContactIndex | None = None
    _counts: tuple[tuple[Contact, ...] | None, Counter] | None = None

    # ------------------------------------------------------------------ update

    def apply(self, snapshot: Snapshot, requested: CollectOptions) -> None:
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
        sessions = self.media.sessions if self.media else None
        if self.dialogs or sessions:
            self.calls = join_calls(self.dialogs, sessions, {call.callid: call for call in self.calls})
        else:
            self.calls = snapshot.calls
        self._record_history()

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
        if state.dialogs is not None:
            self.dialogs, self.dialogs_at = state.dialogs, at
        elif requested.dialogs:
            self.dialogs, self.dialogs_at = None, at

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

    def _record_history(self) -> None:
        ov = self.signalling.overview if self.signalling else None
        regs = ov.registered_contacts if ov and ov.registered_contacts is not None else (
            len(self.contacts) if self.contacts is not None else None)
        self.history["registrations"].add(regs)
        self.history["dialogs"].add(ov.active_dialogs if ov else None)
        media = self.media
        if media is not None:
            sessions = media.totals.total_sessions
            self.history["sessions"].add(sessions if sessions is not None else len(media.sessions))
            self.history["ports"].add(media.ports.used if media.ports.interfaces else None)
        self.history["load"].add(ov.load if ov else None)

    # ------------------------------------------------------------------ queries

    @property
    def sources(self) -> dict[str, SourceStatus]:
        return dict(self.latest.sources) if self.latest else {}

    def signalling_stale(self) -> bool:
        return self.latest is not None and self.latest.signalling is None and self.signalling is not None

    def media_stale(self) -> bool:
        return self.latest is not None and self.latest.media is None and self.media is not None

    def contact_index(self) -> ContactIndex:
        contacts = self.contacts or ()
        if self._index is None or self._index.contacts is not contacts:
            self._index = ContactIndex(contacts, previous=self._index)
        return self._index

    def contacts_elapsed(self, now: float) -> float:
        """Seconds to take off every Contact.expires of the list to get seconds left now."""
        return now - self.contacts_as_of if self.contacts_as_of is not None else 0.0

    def transport_counts(self) -> Counter:
        """Per transport; counted once per contact list (the overview asks every second)."""
        if self._counts is None or self._counts[0] is not self.contacts:
            counts: Counter = Counter(contact.transport or "?" for contact in self.contacts or ())
            self._counts = (self.contacts, counts)
        return self._counts[1]

    def registered_count(self) -> int | None:
        """What OpenSIPS counts as registered (statistics), whatever the list holds."""
        ov = self.signalling.overview if self.signalling else None
        return ov.registered_contacts if ov is not None else None

    def last_good_poll(self) -> float | None:
        return max(self.last_ok.values()) if self.last_ok else None


def _detailed(listed: MediaSession, previous: MediaSession | None) -> MediaSession:
    """The last detailed session for a listed one; the same object when nothing changed, so
    the screens can tell unchanged rows by identity."""
    if listed.legs or previous is None:
        return listed
    if (previous.deleted, previous.foreign) == (listed.deleted, listed.foreign):
        return previous
    return replace(previous, deleted=listed.deleted, foreign=listed.foreign)
