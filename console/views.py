"""View state that is not widgets: contact filtering/sorting, metric history, MI command lines.

Headless (no textual): the live session (console/live.py) builds these, the faces read them.
Fast at 100 000 contacts:
the lower-cased search text is built once per contact list, a sort order is
computed once per (list, column) and reused while the operator types, and a
live list where a few contacts changed reuses the previous list's index.
"""

from __future__ import annotations

from array import array
from collections import deque
from itertools import compress, count
from operator import is_not
from dataclasses import dataclass, field
from typing import Callable, Sequence

from console.model import SIP_REPLY_CLASSES, Contact, SipCounters, sip_window

TRANSPORT_FILTERS = ("all", "ws", "udp", "tcp", "tls")

# One field per column; ties keep AoR order (the sorts are stable and start
# from the AoR order), which is cheaper than tuple keys at 100k contacts.
_NO_EXPIRY = 1 << 62
SORT_KEYS: dict[str, Callable[[Contact], object]] = {
    "aor": lambda c: c.aor,
    "contact": lambda c: c.contact,
    "transport": lambda c: c.transport,
    "socket": lambda c: c.socket,
    "received": lambda c: c.received,
    "user_agent": lambda c: c.user_agent,
    "expires": lambda c: _NO_EXPIRY if c.expires is None else c.expires,
    "flags": lambda c: " ".join(c.cflags),
}


def transport_matches(contact: Contact, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "ws":
        return contact.ws or contact.transport in ("ws", "wss")
    return contact.transport == wanted


class Selection(Sequence[Contact]):
    """The filtered, sorted contacts as indices into the list: no 100k copy."""

    def __init__(self, contacts: tuple[Contact, ...], order: Sequence[int]) -> None:
        self._contacts = contacts
        self._order = order

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, item):  # type: ignore[override]
        if isinstance(item, slice):
            return [self._contacts[i] for i in self._order[item]]
        return self._contacts[self._order[item]]


class ContactIndex:
    """Filter + sort over one contact list, cached so typing stays fast.

    Built lazily: a sort order is computed the first time its column is asked
    for (reverse is the reversed list), the search text the first time a filter
    is typed; prepare() builds ahead off the key path what the next keys will
    need.  A filter that extends the previous one (the operator typing on)
    narrows the previous result instead of scanning every contact again.
    `ContactIndex(new, previous)` reuses what `previous` built for the positions
    whose contact is the same object (a live list where a few contacts changed);
    that comparison runs on first use (prepare() in a thread), not in the constructor.

    One thread at a time: select() fills caches.  The live session prepares a new index in a
    worker thread and publishes it only once prepare() returned; from then on only the event
    loop uses it (the constructor copies what it takes from `previous`, so keys may go on using
    the previous index meanwhile).
    """

    def __init__(self, contacts: Sequence[Contact], previous: "ContactIndex | None" = None) -> None:
        self.contacts = tuple(contacts)
        # per searched field (AoR, contact, UA) the lower-cased values, or None when every value is
        # lower case already (then the contacts themselves are searched): a joined lowered copy per
        # contact was ~10 MB at 100k, a list per field 0.8 MB
        self._haystack: SearchFields | None = None
        # Compact at 100k contacts: an array("i") takes 4 bytes per entry, a list of ints ~36.
        self._orders: dict[str, array] = {}
        self._transport: dict[str, bytearray] = {}  # per transport: 1 where the contact matches
        self._last: tuple[tuple[str, str, str, bool], Sequence[int]] | None = None
        self._new_contacts = len(self.contacts)
        # what the operator asked for on earlier lists (not what prepare() built ahead): kept ready
        self._used_sorts: set[str] = set(previous._used_sorts) if previous is not None else set()
        self._used_transports: set[str] = set(previous._used_transports) if previous is not None else set()
        # What `previous` built, copied now, in the caller's thread: the new index may then be
        # prepared in another thread while the old one keeps answering keys (select() adds to its
        # caches) — the two share only values that are never changed once built.
        self._seed = previous._built() if previous is not None else None

    def _built(self) -> "_Built | None":
        """What this index built, as it is now (None: nothing, or an empty list)."""
        if self._seed is not None:
            return self._seed  # never used, so it built nothing: keep no chain of lists alive
        if not self.contacts:
            return None
        return _Built(self.contacts, dict(self._orders), dict(self._transport), self._haystack)

    @property
    def new_contacts(self) -> int:
        """Contacts that are not objects of the previous list (a GC hint: many = a new list)."""
        self._adopt()
        return self._new_contacts

    def _adopt(self) -> None:
        """Take over what the previous list's index built, once, on first use."""
        seed, self._seed = self._seed, None
        if seed is not None:
            self._inherit(seed)

    def _inherit(self, previous: "_Built") -> None:
        old, new = previous.contacts, self.contacts
        if len(old) != len(new):  # added / removed: positions moved, only the search text follows
            where = {id(contact): i for i, contact in enumerate(old)}
            moved = [where.get(id(contact), -1) for contact in new]  # old position, -1: not in old
            del where
            self._new_contacts = moved.count(-1)
            if previous._haystack is not None and self._new_contacts * REUSE_BELOW_SHARE <= len(new):
                self._haystack = _remapped(previous._haystack, new, moved)
            return
        changed = list(compress(count(), map(is_not, old, new)))
        self._new_contacts = len(changed)
        if len(changed) > len(new) // REUSE_BELOW_SHARE:
            return
        for sort, order in previous._orders.items():
            key = SORT_KEYS[sort]
            if all(key(old[i]) == key(new[i]) for i in changed):
                self._orders[sort] = order  # shared, never mutated
        for transport, members in previous._transport.items():
            members = bytearray(members)
            for i in changed:
                members[i] = transport_matches(new[i], transport)
            self._transport[transport] = members
        if previous._haystack is not None:
            self._haystack = _patched(previous._haystack, new, changed)

    def prepare(self, text: str = "", transport: str = "all", sort: str = "aor", reverse: bool = False
                ) -> "ContactIndex":
        """Build what the next keys need, off the key path (e.g. in a thread right after a list
        arrives): this selection, the search text, the sort orders the operator used on earlier
        lists, and the transport filters (all for a mostly new list, else those used)."""
        self.select(text, transport, sort, reverse)
        fresh = self._new_contacts * REUSE_BELOW_SHARE > len(self.contacts)
        for column in sorted(self._used_sorts):  # others when first asked for: ~30 ms at 100k, 0.4 MB each
            self._order(column, False)
        for wanted in TRANSPORT_FILTERS[1:] if fresh else sorted(self._used_transports - {"all"}):
            self._in_transport(wanted)
        self._search_text()  # the first filter keystroke must not build it (~125 ms at 100k)
        return self

    def _search_text(self) -> SearchFields:
        if self._haystack is None:
            self._haystack = tuple(_lowered(self.contacts, field) for field in SEARCHED)
        return self._haystack

    def _order(self, sort: str, reverse: bool) -> Sequence[int]:
        order = self._orders.get(sort)
        if order is None:
            key = SORT_KEYS.get(sort, SORT_KEYS["aor"])
            keys = [key(c) for c in self.contacts]
            start = range(len(keys)) if sort == "aor" else self._order("aor", False)
            order = array("i", sorted(start, key=keys.__getitem__))
            self._orders[sort] = order
        return order[::-1] if reverse else order

    def _in_transport(self, transport: str) -> bytearray:
        members = self._transport.get(transport)
        if members is None:
            members = bytearray(transport_matches(c, transport) for c in self.contacts)
            self._transport[transport] = members
        return members

    def select(self, text: str = "", transport: str = "all", sort: str = "aor", reverse: bool = False) -> Selection:
        """Contacts matching a substring (AoR, contact, UA) and transport, sorted."""
        self._adopt()
        needle = text.lower()
        query = (needle, transport, sort, reverse)
        self._used_sorts.add(sort)
        self._used_transports.add(transport)
        if self._last is not None and self._last[0] == query:
            return Selection(self.contacts, self._last[1])
        previous = self._last
        if previous is not None and previous[0][1:] == query[1:] and needle.startswith(previous[0][0]):
            order = previous[1]  # typing on: the answer is a subset of the last one
        else:
            order = self._order(sort, reverse)
            if transport != "all":
                members = self._in_transport(transport)
                order = [i for i in order if members[i]]
        if needle:
            order = _search(needle, order, self.contacts, self._search_text())
        self._last = (query, order)
        return Selection(self.contacts, order)


REUSE_BELOW_SHARE = 4  # more than 1/4 of the contacts changed: rebuilding is as cheap as patching


@dataclass(frozen=True)
class _Built:
    """What an index built for its list, handed to the next list's index.  The orders, transport
    masks and lowered texts are never changed once built (a later list patches copies)."""

    contacts: tuple[Contact, ...]
    _orders: dict[str, array]
    _transport: dict[str, bytearray]
    _haystack: "SearchFields | None"


SEARCHED = ("aor", "contact", "user_agent")
SearchFields = tuple  # of list[str] | None, one per SEARCHED field


def _lowered(contacts: tuple[Contact, ...], field: str) -> list[str] | None:
    """The field's lower-cased values, None when all are lower case already."""
    lower, values = _Lowered(), [getattr(c, field) for c in contacts]
    if all(value.islower() or value == value.lower() for value in values):
        return None
    return list(map(lower, values))


def _patched(haystack: SearchFields, contacts: tuple[Contact, ...], changed: list[int]) -> SearchFields:
    """`haystack` of the previous list, with the changed positions lower-cased again."""
    def carry(values: list[str], field: str) -> list[str]:
        values, lower = list(values), _Lowered()
        for i in changed:
            values[i] = lower(getattr(contacts[i], field))
        return values

    return _carried(haystack, contacts, changed, carry)


def _remapped(haystack: SearchFields, contacts: tuple[Contact, ...], moved: list[int]) -> SearchFields:
    """`haystack` of the previous list for a list where contacts were added / removed:
    moved[j] is contact j's position in the previous list (-1: new)."""
    def carry(values: list[str], field: str) -> list[str]:
        lower = _Lowered()
        return [values[i] if i >= 0 else lower(getattr(contacts[j], field)) for j, i in enumerate(moved)]

    return _carried(haystack, contacts, [j for j, i in enumerate(moved) if i < 0], carry)


def _carried(haystack: SearchFields, contacts: tuple[Contact, ...], fresh: list[int],
             carry: Callable[[list[str], str], list[str]]) -> SearchFields:
    """Per searched field: the previous lowered values carried over by `carry`; a field that was all
    lower case (None) stays None while the `fresh` positions' values are lower case too."""
    out = []
    for field, values in zip(SEARCHED, haystack):
        if values is not None:
            out.append(carry(values, field))
        elif all((v := getattr(contacts[j], field)) == v.lower() for j in fresh):
            out.append(None)
        else:
            out.append(_lowered(contacts, field))
    return tuple(out)


def _search(needle: str, order: Sequence[int], contacts: tuple[Contact, ...], haystack: SearchFields) -> list[int]:
    """Positions of `order` whose AoR, contact or UA (lower-cased) contains `needle`, or whose
    socket, received address or transport does (what the Registrations screen shows: OpenSIPS
    writes those in lower case, so they are searched as they are, with no lowered copy)."""
    a, u, g = haystack  # None: the contacts' own values are lower case already
    c = contacts
    return [i for i in order
            if needle in (a[i] if a is not None else c[i].aor)
            or needle in (u[i] if u is not None else c[i].contact)
            or needle in (g[i] if g is not None else c[i].user_agent)
            or needle in c[i].socket or needle in c[i].received or needle in c[i].transport]


class _Lowered:
    """str.lower that returns the string itself when it is lower case already, and one copy
    per distinct mixed-case value (user agents repeat across thousands of contacts)."""

    def __init__(self) -> None:
        self._copies: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        copy = self._copies.get(value)
        if copy is None:
            copy = value.lower()
            if copy == value:
                return value
            self._copies[value] = copy
        return copy


@dataclass
class History:
    """The last `size` samples of one metric (None = no data that poll), with their times (a plot
    puts each at its time: a gap is a gap, a few samples do not stretch across the width)."""

    size: int = 150
    values: deque | None = None
    times: deque | None = None

    def __post_init__(self) -> None:
        self.values = deque(maxlen=self.size)
        self.times = deque(maxlen=self.size)

    def add(self, value: float | int | None, at: float | None = None) -> None:
        if value is not None:
            self.values.append(float(value))
            self.times.append(float(at) if at is not None else float(len(self.times)))

    def data(self) -> list[float]:
        return list(self.values)


def parse_mi_command(line: str) -> tuple[str, object]:
    """The MI screen's line in the one MI parameter grammar (console.mi_params, also the CLI's).
    Raises ValueError (mi_params.ParamError) with an operator-readable message."""
    from .mi_params import parse_command

    return parse_command(line)


# --------------------------------------------------------------------------- SIP health series (Overview)

SIP_SHARE_CLASSES = ("4xx", "5xx", "6xx")


@dataclass(frozen=True)
class SipSeries:
    """Per interval between two consecutive `SipCounters` samples (one per poll): final replies per
    second by class, the 4xx/5xx/6xx share of the finals (None: no final reply in that interval),
    retransmissions and INVITE timeouts.  `times`: each interval's end (epoch s)."""

    times: tuple[float, ...] = ()
    per_s: dict[str, tuple[float | None, ...]] = field(default_factory=dict)  # '2xx'..'6xx' -> replies/s
    share: dict[str, tuple[float | None, ...]] = field(default_factory=dict)  # '4xx'..'6xx' -> % of finals
    retransmissions: tuple[int | None, ...] = ()
    timeouts_inv: tuple[int | None, ...] = ()

    @property
    def span_s(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0


def sip_series(samples: Sequence[SipCounters]) -> SipSeries:
    """The series between consecutive samples (oldest first; None per class where the server did
    not report it); an interval across a restart (a counter going backwards) is skipped."""
    times: list[float] = []
    per_s: dict[str, list] = {cls: [] for cls in SIP_REPLY_CLASSES[1:]}
    share: dict[str, list] = {cls: [] for cls in SIP_SHARE_CLASSES}
    retransmissions: list[int | None] = []
    timeouts: list[int | None] = []
    for earlier, later in zip(samples, samples[1:]):
        window = sip_window(earlier, later)
        if window is None:
            continue
        times.append(later.at)
        for cls in per_s:
            per_s[cls].append(window.per_s(cls) if cls in window.finals else None)
        for cls in share:
            share[cls].append(window.share(cls))
        retransmissions.append(window.retransmissions)
        timeouts.append(window.timeouts_inv)
    return SipSeries(tuple(times), {c: tuple(v) for c, v in per_s.items()}, {c: tuple(v) for c, v in share.items()},
                     tuple(retransmissions), tuple(timeouts))
