"""Live contact and dialog tables fed by OpenSIPS events (see events.py).

Every operation is a few dict operations on the touched keys, so 1 % churn at
100k contacts costs microseconds per event; no table copy happens per event.
Mutations return a `Change` (keys added / updated / removed) so a UI can do
keyed row diffs instead of redrawing 100k rows.
"""

from __future__ import annotations

import dataclasses
import heapq
import operator
import time
from dataclasses import dataclass
from typing import Any, Iterable

from console.model import Contact, Dialog, DialogLeg, replace

from .events import AorEvent, ContactEvent, DialogStateEvent, Event
from .fastbuild import fast_constructor, gc_paused

DIALOG_DELETED = 5
DIALOG_CONFIRMED = 4


@dataclass(frozen=True, slots=True)
class Change:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    @property
    def size(self) -> int:
        return len(self.added) + len(self.updated) + len(self.removed)


NO_CHANGE = Change()


class ChangeSet:
    """Accumulates changes of a batch into the net effect per key.

    added+removed in one batch cancel out; removed+added becomes updated."""

    def __init__(self) -> None:
        self._net: dict[str, str] = {}  # key -> "added" | "updated" | "removed"

    def add(self, change: Change) -> None:
        for key in change.removed:
            self._net[key] = "gone" if self._net.get(key) == "added" else "removed"
        for key in change.added:
            self._net[key] = "updated" if self._net.get(key) == "removed" else "added"
        for key in change.updated:
            if self._net.get(key) not in ("added",):
                self._net[key] = "updated"

    def result(self) -> Change:
        groups: dict[str, list[str]] = {"added": [], "updated": [], "removed": []}
        for key, what in self._net.items():
            if what in groups:
                groups[what].append(key)
        return Change(tuple(groups["added"]), tuple(groups["updated"]), tuple(groups["removed"]))


class SyncJournal:
    """Events applied while a full dump is in flight, replayed on top of it.

    Subscribe first, then `begin_sync()`, then dump: the dump reflects some
    moment during its (long) run, and replaying every event seen since the
    dump was requested, in order, brings the loaded table up to date."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.overflowed = False
        self._events: list[Any] | None = None  # events (dialogs: with their arrival time)

    @property
    def recording(self) -> bool:
        return self._events is not None

    def start(self) -> None:
        self._events, self.overflowed = [], False

    def record(self, event: Any) -> None:
        if self._events is not None:
            if len(self._events) < self.limit:
                self._events.append(event)
            else:
                self.overflowed = True

    def take(self) -> list[Any]:
        events, self._events = self._events or [], None
        return events


_CONTACT_FIELDS = tuple(f.name for f in dataclasses.fields(Contact))
_EXPIRES_AT = _CONTACT_FIELDS.index("expires")
_contact_values = operator.attrgetter(*_CONTACT_FIELDS)
_new_contact = fast_constructor(Contact)


def _with_expiry(contact: Contact, left: int | None, state: str) -> Contact:
    """`replace(contact, expires=left, expires_state=state)` at a fifth of the cost."""
    values = _contact_values(contact)
    return _new_contact(*values[:_EXPIRES_AT], left, state, *values[_EXPIRES_AT + 2:])


def _identity(aor: str, uri: str) -> tuple[str, str]:
    # usrloc matches contacts of an AoR by URI; events carry no ContactID, so the
    # URI is the one identity both ul_dump rows and events share.
    return aor, uri


class RegistrationStore:
    """The live usrloc contact table.

    Keys reported in `Change` are `Contact.key`.  A contact loaded from ul_dump
    keeps its ContactID (and so its key) when events later update it.
    `complete` is False until `load_full`: before that the table only holds
    contacts that changed since the subscription (the 100k case).
    Order for a full sync: listener.start(), begin_sync(), ul_dump, load_full().

    Memory at 100k: one Contact per row, shared with every view handed out
    (`contacts(now)` stores the contacts it refreshes back); a contact is only
    rebuilt when its seconds-left changed since the last refresh.
    """

    def __init__(self) -> None:
        self._contacts: dict[tuple[str, str], Contact] = {}
        self._expires_at: dict[tuple[str, str], int] = {}  # 0 = permanent
        # tuples, not sets: an AoR has a contact or two, and a set costs 200+ bytes (20 MB at 100k)
        self._by_aor: dict[str, tuple[tuple[str, str], ...]] = {}
        self._expiry_heap: list[tuple[int, tuple[str, str]]] = []
        self.complete = False
        self.loaded_at: float | None = None
        self.journal = SyncJournal()

    # -- reads

    @property
    def count(self) -> int:
        return len(self._contacts)

    def __len__(self) -> int:
        return len(self._contacts)

    @property
    def aor_count(self) -> int:
        return len(self._by_aor)

    def contacts(self, now: float | None = None) -> list[Contact]:
        """All contacts; with `now`, `expires` is recomputed as seconds left.

        Refreshed contacts replace the stored ones, so the table and its views share
        one object per contact, and unchanged contacts are not rebuilt."""
        if now is None:
            return list(self._contacts.values())
        table, expires_at, whole = self._contacts, self._expires_at, int(now)
        with gc_paused():
            for ident, contact in table.items():
                at = expires_at[ident]
                if at:
                    left = at - whole
                    if left > 0:
                        if contact.expires != left or contact.expires_state:
                            table[ident] = _with_expiry(contact, left, "")  # same key: no resize mid-loop
                    elif contact.expires is not None or contact.expires_state != "expired":
                        table[ident] = _with_expiry(contact, None, "expired")
        return list(table.values())

    def get(self, aor: str, uri: str, now: float | None = None) -> Contact | None:
        ident = _identity(aor, uri)
        if ident not in self._contacts:
            return None
        if now is not None:
            self._contacts[ident] = self._fresh(ident, now)
        return self._contacts[ident]

    def contacts_of(self, aor: str) -> list[Contact]:
        return [self._contacts[i] for i in self._by_aor.get(aor, ())]

    def expires_at(self, aor: str, uri: str) -> int | None:
        return self._expires_at.get(_identity(aor, uri))

    def _fresh(self, ident: tuple[str, str], now: float) -> Contact:
        contact, at = self._contacts[ident], self._expires_at[ident]
        if at == 0:
            return contact
        left = at - int(now)
        expires, state = (left, "") if left > 0 else (None, "expired")
        if contact.expires == expires and contact.expires_state == state:
            return contact
        return _with_expiry(contact, expires, state)

    # -- writes

    def begin_sync(self) -> None:
        """Call right before requesting the ul_dump that `load_full` will get."""
        self.journal.start()

    def load_full(self, contacts: Iterable[Contact], now: float | None = None) -> Change:
        """Replace the table with a full dump (parse_contacts of ul_dump).

        Dump `expires` is seconds left at `now`; expired/deleted rows are
        dropped (usrloc only keeps them until its timer runs).  Events recorded
        since `begin_sync` are replayed on top (see SyncJournal).
        """
        now = time.time() if now is None else now
        old = self._contacts
        table: dict[tuple[str, str], Contact] = {}
        expires_at: dict[tuple[str, str], int] = {}
        by_aor: dict[str, tuple[tuple[str, str], ...]] = {}
        for contact in contacts:
            if contact.expires_state in ("expired", "deleted"):
                continue
            ident = _identity(contact.aor, contact.contact)
            table[ident] = contact
            expires_at[ident] = 0 if contact.expires is None else int(now) + contact.expires
            members = by_aor.get(ident[0])
            if members is None:
                by_aor[ident[0]] = (ident,)
            elif ident not in members:
                by_aor[ident[0]] = members + (ident,)
        self._contacts, self._expires_at, self._by_aor = table, expires_at, by_aor
        self._expiry_heap = [(at, ident) for ident, at in expires_at.items() if at]
        heapq.heapify(self._expiry_heap)  # one O(n) build instead of n pushes
        for event in self.journal.take():
            self._apply(event)
        self.complete = not self.journal.overflowed
        self.loaded_at = now
        return _diff(old, self._contacts)

    def apply(self, event: Event) -> Change:
        self.journal.record(event)
        return self._apply(event)

    def _apply(self, event: Event) -> Change:
        if isinstance(event, ContactEvent):
            if event.kind == "delete":
                return self._remove(_identity(event.aor, event.contact.contact))
            return self._upsert(event)
        if isinstance(event, AorEvent) and event.kind == "delete":
            # contact deletes come first; this only sweeps what we might have missed
            return self._remove_many(list(self._by_aor.get(event.aor, ())))
        return NO_CHANGE

    def apply_all(self, events: Iterable[Event]) -> Change:
        changes = ChangeSet()
        for event in events:
            changes.add(self.apply(event))
        return changes.result()

    def expire(self, now: float, grace: float = 0.0) -> Change:
        """Drop contacts whose absolute expiry passed (a missed DELETE must not
        leave a ghost).  Heap with lazy invalidation: cost ~ expired contacts."""
        due: list[tuple[str, str]] = []
        heap = self._expiry_heap
        while heap and heap[0][0] <= now - grace:
            at, ident = heapq.heappop(heap)
            if self._expires_at.get(ident) == at:
                due.append(ident)
        return self._remove_many(due)

    def _upsert(self, event: ContactEvent) -> Change:
        ident = _identity(event.aor, event.contact.contact)
        contact = event.contact
        previous = self._contacts.get(ident)
        if previous is not None and previous.contact_id and not contact.contact_id:
            # events lack what only ul_dump shows (ContactID, named branch flags, ...): keep it
            contact = replace(contact, contact_id=previous.contact_id, state=previous.state,
                              methods=previous.methods, cflags=previous.cflags, flags=previous.flags,
                              ws=contact.ws or previous.ws)
        self._put(ident, contact, event.expires_at)
        if previous is None:
            return Change(added=(contact.key,))
        return Change(updated=(contact.key,))

    def _put(self, ident: tuple[str, str], contact: Contact, expires_at: int) -> None:
        self._contacts[ident] = contact
        members = self._by_aor.get(ident[0], ())
        if ident not in members:
            self._by_aor[ident[0]] = members + (ident,)
        if self._expires_at.get(ident) != expires_at:
            self._expires_at[ident] = expires_at
            if expires_at:
                heapq.heappush(self._expiry_heap, (expires_at, ident))
                self._compact_heap()

    def _compact_heap(self) -> None:
        # stale entries (refreshed contacts) accumulate; rebuild when they dominate
        if len(self._expiry_heap) > 2 * len(self._contacts) + 1024:
            self._expiry_heap = [(at, i) for i, at in self._expires_at.items() if at]
            heapq.heapify(self._expiry_heap)

    def _remove(self, ident: tuple[str, str]) -> Change:
        contact = self._contacts.pop(ident, None)
        if contact is None:
            return NO_CHANGE
        self._expires_at.pop(ident, None)
        members = tuple(i for i in self._by_aor.get(ident[0], ()) if i != ident)
        if members:
            self._by_aor[ident[0]] = members
        else:
            self._by_aor.pop(ident[0], None)
        return Change(removed=(contact.key,))

    def _remove_many(self, idents: list[tuple[str, str]]) -> Change:
        removed = [key for ident in idents for key in self._remove(ident).removed]
        return Change(removed=tuple(removed)) if removed else NO_CHANGE


class DialogStore:
    """Live dialog table keyed by dialog id ("h_entry.h_id", dlg_list `ID`).

    OpenSIPS raises no event at creation: the first event of a dialog is 1->2
    (or 1->5 on a failure), so a dialog unknown to the store is created from it.
    State 5 (deleted) removes the dialog.
    """

    def __init__(self) -> None:
        self._dialogs: dict[str, Dialog] = {}
        self.complete = False
        self.journal = SyncJournal()

    @property
    def count(self) -> int:
        return len(self._dialogs)

    def __len__(self) -> int:
        return len(self._dialogs)

    def dialogs(self) -> list[Dialog]:
        return list(self._dialogs.values())

    def get(self, dialog_id: str) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def by_callid(self, callid: str) -> list[Dialog]:
        return [d for d in self._dialogs.values() if d.callid == callid]

    def state_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for dialog in self._dialogs.values():
            counts[dialog.state] = counts.get(dialog.state, 0) + 1
        return counts

    def begin_sync(self) -> None:
        """Call right before requesting the dlg_list that `load_full` will get."""
        self.journal.start()

    def load_full(self, dialogs: Iterable[Dialog]) -> Change:
        old = self._dialogs
        self._dialogs = {d.id: d for d in dialogs if d.state != DIALOG_DELETED}
        for event, at in self.journal.take():
            self._apply(event, at)
        self.complete = not self.journal.overflowed
        return _diff(old, self._dialogs)

    def apply(self, event: Event, now: float | None = None) -> Change:
        now = time.time() if now is None else now
        if isinstance(event, DialogStateEvent):
            self.journal.record((event, now))
        return self._apply(event, now)

    def _apply(self, event: Event, now: float) -> Change:
        if not isinstance(event, DialogStateEvent):
            return NO_CHANGE
        if event.new_state == DIALOG_DELETED:
            return Change(removed=(event.id,)) if self._dialogs.pop(event.id, None) else NO_CHANGE
        previous = self._dialogs.get(event.id)
        self._dialogs[event.id] = self._next(previous, event, now)
        return Change(updated=(event.id,)) if previous else Change(added=(event.id,))

    def apply_all(self, events: Iterable[Event]) -> Change:
        changes = ChangeSet()
        for event in events:
            changes.add(self.apply(event))
        return changes.result()

    @staticmethod
    def _next(previous: Dialog | None, event: DialogStateEvent, now: float) -> Dialog:
        # OpenSIPS stamps a dialog's start when it gets confirmed (state 4)
        start = int(now) if event.new_state == DIALOG_CONFIRMED else 0
        if previous is None:
            callees = (DialogLeg(tag=event.to_tag),) if event.to_tag else ()
            return Dialog(id=event.id, callid=event.callid, state=event.new_state, start=start,
                          caller=DialogLeg(tag=event.from_tag), callees=callees)
        changes: dict = {"state": event.new_state}
        if start and not previous.start:
            changes["start"] = start
        if event.to_tag and not previous.callees:
            changes["callees"] = (DialogLeg(tag=event.to_tag),)
        return replace(previous, **changes)


class EventRouter:
    """The listener's sink: routes each event to the store that owns it."""

    def __init__(self, registrations: RegistrationStore | None = None,
                 dialogs: DialogStore | None = None) -> None:
        self.registrations = registrations
        self.dialogs = dialogs

    def apply(self, event: Event) -> Change:
        if isinstance(event, (ContactEvent, AorEvent)) and self.registrations is not None:
            return self.registrations.apply(event)
        if isinstance(event, DialogStateEvent) and self.dialogs is not None:
            return self.dialogs.apply(event)
        return NO_CHANGE


def _diff(old: dict, new: dict) -> Change:
    """Keyed diff of two tables (values are frozen models, compared by value)."""
    added = tuple(v.key if isinstance(v, Contact) else k for k, v in new.items() if k not in old)
    removed = tuple(v.key if isinstance(v, Contact) else k for k, v in old.items() if k not in new)
    updated = tuple(v.key if isinstance(v, Contact) else k for k, v in new.items()
                    if k in old and old[k] != v)
    return Change(added, updated, removed)
