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

from .events_codec import AorEvent, ContactEvent, DialogStateEvent, Event
from .fastbuild import fast_constructor

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


def _rebased(contact: Contact, expires_at: int, epoch: int) -> Contact:
    """`contact` with `expires` counted from `epoch` (the same object when it already is)."""
    if not expires_at:
        return contact  # permanent: nothing counts down
    left = expires_at - epoch
    expires, state = (left, "") if left > 0 else (None, "expired")
    if contact.expires == expires and contact.expires_state == state:
        return contact
    return _with_expiry(contact, expires, state)


class _ExpiryQueue:
    """Identities by expiry second, earliest first; entries may be stale (the caller checks).

    Buckets per second instead of an (at, ident) tuple per contact: contacts expire within
    an hour or so, so ~3600 buckets hold 100k contacts (6 MB of tuples saved at 100k)."""

    def __init__(self, expiries: Iterable[tuple[Key, int]] = ()) -> None:
        self._buckets: dict[int, list[Key]] = {}
        self._entries = 0
        for ident, at in expiries:
            if at:
                self._add(at, ident)
        self._times = list(self._buckets)
        heapq.heapify(self._times)  # one O(n) build instead of n pushes

    def __len__(self) -> int:
        return self._entries

    def _add(self, at: int, ident: Key) -> bool:
        self._entries += 1
        bucket = self._buckets.get(at)
        if bucket is None:
            self._buckets[at] = [ident]
            return True
        bucket.append(ident)
        return False

    def push(self, at: int, ident: Key) -> None:
        if self._add(at, ident):
            heapq.heappush(self._times, at)

    def pop_due(self, until: float) -> list[tuple[int, Key]]:
        """(at, ident) of every entry with at <= until, removed from the queue."""
        due: list[tuple[int, Key]] = []
        times = self._times
        while times and times[0] <= until:
            at = heapq.heappop(times)
            bucket = self._buckets.pop(at)
            self._entries -= len(bucket)
            due.extend((at, ident) for ident in bucket)
        return due


# Where a contact is stored: its AoR while it is the AoR's only contact (the common case), else
# (AoR, URI).  usrloc matches contacts of an AoR by URI; events carry no ContactID, so (AoR, URI)
# is the one identity both ul_dump rows and events share.  Keying a lone contact by its AoR (the
# contact's own string) needs neither an (AoR, URI) tuple per contact nor an AoR -> contacts
# index (5 + 4 MB at 100k).
Key = Any  # str | tuple[str, str]


class RegistrationStore:
    """The live usrloc contact table.

    Keys reported in `Change` are `Contact.key`.  A contact loaded from ul_dump
    keeps its ContactID (and so its key) when events later update it.
    `complete` is False until `load_full`: before that the table only holds
    contacts that changed since the subscription (the 100k case).
    Order for a full sync: listener.start(), begin_sync(), ul_dump, load_full().

    Memory at 100k: one Contact per row, shared with every view handed out
    (`contacts(now)` / `view(epoch)` store the contacts they recount back); a
    contact is only rebuilt when its seconds-left from that moment changed.  A
    live console asks `view(epoch)` with a fixed epoch: time passing rebuilds
    nothing, and an unchanged table hands out the same tuple (`version`).
    """

    def __init__(self) -> None:
        self._contacts: dict[Key, Contact] = {}  # see Key, _find and _place
        # Every stored contact counts `expires` from _base: its absolute expiry is _base + expires
        # (no expiry dict: 5 MB at 100k).  Only contacts already past it (expires None, state
        # "expired") keep their expiry in _expired_at; expires None otherwise = permanent.
        self._base: int | None = None
        self._expired_at: dict[Key, int] = {}
        self._multi: dict[str, tuple[tuple[str, str], ...]] = {}  # AoR -> its keys, AoRs of several contacts
        self._expiry = _ExpiryQueue()
        self.complete = False
        self.loaded_at: float | None = None
        self.journal = SyncJournal()
        self.version = 0  # bumped by every change of the table: an unchanged table keeps its view
        self._view: tuple[int, tuple[Contact, ...]] | None = None  # (version, contacts)

    # -- reads

    @property
    def count(self) -> int:
        return len(self._contacts)

    def __len__(self) -> int:
        return len(self._contacts)

    @property
    def aor_count(self) -> int:
        grouped = sum(len(keys) for keys in self._multi.values())
        return len(self._contacts) - grouped + len(self._multi)

    def contacts(self, now: float | None = None) -> list[Contact]:
        """All contacts; with `now`, `expires` is recomputed as seconds left.

        Refreshed contacts replace the stored ones, so the table and its views share
        one object per contact, and unchanged contacts are not rebuilt."""
        if now is not None:
            self._rebase(int(now))
        return list(self._contacts.values())

    def view(self, epoch: int) -> tuple[Contact, ...]:
        """All contacts, `expires` counted in seconds from `epoch` (not from now): time passing
        rebuilds nothing, and with a fixed epoch only the contacts events change are new
        objects.  The same tuple while the table is unchanged (see `version`);
        seconds left = expires - (now - epoch)."""
        if self._view is not None and self._view[0] == self.version and self._base == epoch:
            return self._view[1]
        self._rebase(epoch)
        self._view = (self.version, tuple(self._contacts.values()))
        return self._view[1]

    def get(self, aor: str, uri: str, now: float | None = None) -> Contact | None:
        ident = self._find(aor, uri)
        contact = None if ident is None else self._contacts[ident]
        if contact is None or now is None or int(now) == self._base:
            return contact
        return _rebased(contact, self._at(ident, contact), int(now))

    def contacts_of(self, aor: str) -> list[Contact]:
        return [self._contacts[i] for i in self._members(aor)]

    def _members(self, aor: str) -> tuple[Key, ...]:
        return (aor,) if aor in self._contacts else self._multi.get(aor, ())

    def _find(self, aor: str, uri: str) -> Key | None:
        """Where (aor, uri) is stored; None when it is not."""
        table = self._contacts
        alone = table.get(aor)
        if alone is not None:
            return aor if alone.contact == uri else None
        if aor not in self._multi:
            return None
        pair = (aor, uri)
        return pair if pair in table else None

    def _place(self, aor: str, uri: str) -> Key:
        """Where (aor, uri) is stored or goes: under the AoR while it is its only contact."""
        key = self._find(aor, uri)
        if key is not None:
            return key
        if aor not in self._contacts and aor not in self._multi:
            return aor
        if aor in self._contacts:  # a second contact: the first moves under (aor, uri) too
            self._rekey(aor, (aor, self._contacts[aor].contact))
        pair = (aor, uri)
        self._multi[aor] += (pair,)
        return pair

    def _rekey(self, old: Key, new: Key) -> None:
        contact = self._contacts.pop(old)
        self._contacts[new] = contact
        if old in self._expired_at:
            self._expired_at[new] = self._expired_at.pop(old)
        at = self._at(new, contact)
        if at:
            self._expiry.push(at, new)  # entries under the old key are stale now
        if isinstance(new, tuple):
            self._multi[new[0]] = self._multi.get(new[0], ()) + (new,)

    def expires_at(self, aor: str, uri: str) -> int | None:
        ident = self._find(aor, uri)
        return None if ident is None else self._at(ident, self._contacts[ident])

    def _at(self, ident: Key, contact: Contact) -> int:
        """Absolute expiry of a stored contact; 0 = permanent."""
        if contact.expires is not None:
            return self._base + contact.expires
        if contact.expires_state == "expired":
            return self._expired_at.get(ident, self._base or 0)
        return 0

    def _expiries(self) -> Iterable[tuple[Key, int]]:
        at = self._at
        return ((ident, at(ident, contact)) for ident, contact in self._contacts.items())

    # -- writes

    def _store(self, ident: Key, contact: Contact, at: int) -> None:
        """Store `contact` (expiring at `at`, 0 = permanent) counted from _base."""
        if self._base is None:  # the first contact's own moment: it needs no rebuild
            self._base = at - contact.expires if at and contact.expires is not None else int(time.time())
        stored = _rebased(contact, at, self._base)
        self._contacts[ident] = stored
        if at and stored.expires is None:
            self._expired_at[ident] = at
        elif self._expired_at:
            self._expired_at.pop(ident, None)

    def _rebase(self, base: int) -> None:
        """Count every stored contact from `base` (contacts whose seconds-left change are rebuilt)."""
        old = self._base
        if base == old:
            return
        table, expired_at = self._contacts, self._expired_at
        for ident, contact in table.items():
            if contact.expires is not None:
                at = old + contact.expires
            elif contact.expires_state == "expired":
                at = expired_at.get(ident, old or 0)
            else:
                continue  # permanent: nothing counts down
            left = at - base
            if left > 0:
                if contact.expires != left or contact.expires_state:
                    table[ident] = _with_expiry(contact, left, "")  # same key: no resize mid-loop
                if contact.expires is None:
                    expired_at.pop(ident, None)
            else:
                if contact.expires is not None or contact.expires_state != "expired":
                    table[ident] = _with_expiry(contact, None, "expired")
                expired_at[ident] = at
        self._base = base
        self.version += 1

    def begin_sync(self) -> None:
        """Call right before requesting the ul_dump that `load_full` will get."""
        self.journal.start()

    def load_full(self, contacts: Iterable[Contact], now: float | None = None, *, report: bool = True) -> Change:
        """Replace the table with a full dump (parse_contacts of ul_dump).

        Dump `expires` is seconds left at `now`; expired/deleted rows are
        dropped (usrloc only keeps them until its timer runs).  Events recorded
        since `begin_sync` are replayed on top (see SyncJournal).  `report=False`:
        no keyed diff is computed (NO_CHANGE returned): a key string per contact
        (~10 MB of short-lived strings at 100k) nobody would read.
        """
        now = time.time() if now is None else now
        old = self._contacts
        base = int(now)  # the dump's contacts already count from it: none is rebuilt
        self._contacts, self._multi, self._expired_at, self._base = {}, {}, {}, base
        self._expiry = _ExpiryQueue()
        for contact in contacts:
            if contact.expires_state in ("expired", "deleted"):
                continue
            ident = self._place(contact.aor, contact.contact)
            self._store(ident, contact, 0 if contact.expires is None else base + contact.expires)
        self.version += 1
        self._expiry = _ExpiryQueue(self._expiries())
        for event in self.journal.take():
            self._apply(event)
        self.complete = not self.journal.overflowed
        self.loaded_at = now
        return _diff(old, self._contacts) if report else NO_CHANGE

    def apply(self, event: Event) -> Change:
        self.journal.record(event)
        return self._apply(event)

    def _apply(self, event: Event) -> Change:
        if isinstance(event, ContactEvent):
            if event.kind == "delete":
                ident = self._find(event.aor, event.contact.contact)
                return NO_CHANGE if ident is None else self._remove(ident)
            return self._upsert(event)
        if isinstance(event, AorEvent) and event.kind == "delete":
            # contact deletes come first; this only sweeps what we might have missed
            return self._remove_many(list(self._members(event.aor)))
        return NO_CHANGE

    def apply_all(self, events: Iterable[Event]) -> Change:
        changes = ChangeSet()
        for event in events:
            changes.add(self.apply(event))
        return changes.result()

    def expire(self, now: float, grace: float = 0.0) -> Change:
        """Drop contacts whose absolute expiry passed (a missed DELETE must not
        leave a ghost).  Queue with lazy invalidation: cost ~ expired contacts."""
        table = self._contacts
        due = [ident for at, ident in self._expiry.pop_due(now - grace)
               if ident in table and self._at(ident, table[ident]) == at]
        return self._remove_many(due)

    def _upsert(self, event: ContactEvent) -> Change:
        ident = self._find(event.aor, event.contact.contact)
        contact = event.contact
        previous = None if ident is None else self._contacts[ident]
        if ident is None:
            ident = self._place(event.aor, event.contact.contact)
        if previous is not None and previous.contact_id and not contact.contact_id:
            # events lack what only ul_dump shows (ContactID, named branch flags, ...): keep it
            contact = replace(contact, contact_id=previous.contact_id, state=previous.state,
                              methods=previous.methods, cflags=previous.cflags, flags=previous.flags,
                              ws=contact.ws or previous.ws)
        self._put(ident, contact, event.expires_at, previous)
        if previous is None:
            return Change(added=(contact.key,))
        return Change(updated=(contact.key,))

    def _put(self, ident: Key, contact: Contact, expires_at: int, previous: Contact | None) -> None:
        before = None if previous is None else self._at(ident, previous)
        self._store(ident, contact, expires_at)
        self.version += 1
        if before != expires_at and expires_at:
            self._expiry.push(expires_at, ident)
            self._compact_expiry()

    def _compact_expiry(self) -> None:
        # stale entries (refreshed contacts) accumulate; rebuild when they dominate
        if len(self._expiry) > 2 * len(self._contacts) + 1024:
            self._expiry = _ExpiryQueue(self._expiries())

    def _remove(self, ident: Key) -> Change:
        contact = self._contacts.pop(ident, None)
        if contact is None:
            return NO_CHANGE
        if self._expired_at:
            self._expired_at.pop(ident, None)
        self.version += 1
        if isinstance(ident, tuple):  # one of several contacts of its AoR
            keys = tuple(key for key in self._multi.get(ident[0], ()) if key != ident)
            if keys:
                self._multi[ident[0]] = keys
            else:
                self._multi.pop(ident[0], None)
        return Change(removed=(contact.key,))

    def _remove_many(self, idents: list[Key]) -> Change:
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

    def undetailed(self) -> list[str]:
        """Call-IDs of dialogs known only from events: E_DLG_STATE_CHANGED carries ids, tags and
        states, not the From/To URIs, contacts and SDPs a dlg_list answer has."""
        return [d.callid for d in self._dialogs.values() if not d.from_uri]

    def fill(self, listed: Dialog) -> bool:
        """Details from a dlg_list answer for a dialog the store holds.  The state stays the
        events' (they may be newer than the answer); False when the dialog is gone meanwhile."""
        current = self._dialogs.get(listed.id)
        if current is None:
            return False
        self._dialogs[listed.id] = dataclasses.replace(listed, state=current.state,
                                                       start=listed.start or current.start)
        return True

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
        # An unchanged dialog keeps its object: the screens tell unchanged rows by identity
        # (a new object per dialog every full list rebuilt every row of a 1 000-call table).
        self._dialogs = {d.id: reuse_if_equal(old.get(d.id), d) for d in dialogs if d.state != DIALOG_DELETED}
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


def reuse_if_equal(previous: Dialog | None, listed: Dialog) -> Dialog:
    return previous if previous is not None and previous == listed else listed
