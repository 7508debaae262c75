"""View state that is not widgets: contact filtering/sorting, metric history.

Kept free of textual so it is cheap to test and fast at 100 000 contacts:
the lower-cased search text is built once per contact list, a sort order is
computed once per (list, column) and reused while the operator types.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

from console.model import Contact

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

    Sort orders are computed once per column (reverse is the reversed list);
    a filter that extends the previous one (the operator typing on) narrows
    the previous result instead of scanning every contact again.
    """

    def __init__(self, contacts: Sequence[Contact]) -> None:
        self.contacts = tuple(contacts)
        self._haystack: list[str] | None = None
        # Compact at 100k contacts: an array("i") takes 4 bytes per entry, a list of ints ~36.
        self._orders: dict[str, array] = {}
        self._transport: dict[str, bytearray] = {}  # per transport: 1 where the contact matches
        self._last: tuple[tuple[str, str, str, bool], Sequence[int]] | None = None

    def prepare(self) -> "ContactIndex":
        """Build what the first filter/sort would need (call off the key path,
        e.g. in a thread right after a big list arrives)."""
        self._search_text()
        for sort in SORT_KEYS:
            self._order(sort, False)
        for transport in TRANSPORT_FILTERS[1:]:
            self._in_transport(transport)
        return self

    def _search_text(self) -> list[str]:
        if self._haystack is None:
            self._haystack = [f"{c.aor}\x00{c.contact}\x00{c.user_agent}".lower() for c in self.contacts]
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
        needle = text.lower()
        query = (needle, transport, sort, reverse)
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
            haystack = self._search_text()
            order = [i for i in order if needle in haystack[i]]
        self._last = (query, order)
        return Selection(self.contacts, order)


@dataclass
class History:
    """The last `size` samples of one metric (None = no data that poll)."""

    size: int = 150
    values: deque | None = None

    def __post_init__(self) -> None:
        self.values = deque(maxlen=self.size)

    def add(self, value: float | int | None) -> None:
        if value is not None:
            self.values.append(float(value))

    def data(self) -> list[float]:
        return list(self.values)


def parse_mi_command(line: str) -> tuple[str, object]:
    """'ul_show_contact location 1000' | 'dlg_list {"callid": "x"}' | 'get_statistics statistics=all'.

    Returns (method, params): params is None, a dict (JSON object or
    key=value words) or a list (JSON array or bare words, positional).
    Raises ValueError with an operator-readable message.
    """
    import json

    text = line.strip()
    if not text:
        raise ValueError("type an MI command, e.g. version or get_statistics all")
    method, _, rest = text.partition(" ")
    rest = rest.strip()
    if not rest:
        return method, None
    if rest[0] in "{[":
        try:
            params = json.loads(rest)
        except json.JSONDecodeError as exc:
            raise ValueError(f"parameters are not valid JSON: {exc.msg} at column {exc.colno}") from None
        return method, params
    words = rest.split()
    if all("=" in w for w in words):
        return method, {k: _scalar(v) for k, _, v in (w.partition("=") for w in words)}
    if any("=" in w for w in words):
        raise ValueError("mix of key=value and positional parameters; use one style")
    return method, [_scalar(w) for w in words]


def _scalar(word: str) -> object:
    """Numbers stay numbers (MI rejects "1" where it wants 1); the rest is text."""
    try:
        return int(word)
    except ValueError:
        return word
