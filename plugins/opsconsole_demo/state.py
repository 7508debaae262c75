"""Deterministic simulation of an OpenSIPS node's state (usrloc, dialogs, counters).

Everything is driven by `advance(now)` with an injectable clock and a seeded
`random.Random`, so a test can replay the same platform tick by tick.  The state
is I/O-free: media (RTPengine offer/answer/delete) is done by the caller from
`take_media_work()`, and the sent SDPs are written back into the dialogs.

Layout follows the lab (fixtures README): UDP AORs `1000..`, TCP `3000..`,
WS `ws2000..` (contact rewritten to `sip:<rand8>@127.0.0.1:<ephemeral>;transport=ws`,
branch flag DST_WS), in the ratio 50/10/10.
"""

from __future__ import annotations

import heapq
import random
import string
import time
from dataclasses import dataclass, field
from typing import Callable

from console.errors import ConfigError
from . import sdp

SOCKETS = {"udp": "udp:127.0.0.1:5060", "tcp": "tcp:127.0.0.1:5060", "ws": "ws:127.0.0.1:8080"}
USER_AGENTS = {"udp": "sipp-lab-UDP", "tcp": "sipp-lab-TCP", "ws": "lab-ws-client (WebRTC-like)"}
DST_WS_BFLAG = 1  # the bit of the named branch flag DST_WS (first named bflag in the lab cfg)
DIALOG_LIFETIME = 21600  # dlg default timeout seen in the captures (timeout - timestart)
TCP_CONN_LIFETIME = 3600  # list_tcp_conns "Lifetime" = last activity + this

# (expires seconds, weight): most phones register for an hour; a few short
# registrations make refreshes and expiries visible within a demo.
EXPIRES_CHOICES = ((3600, 6), (600, 2), (120, 1), (60, 1))
REFRESH_PROBABILITY = 0.85  # otherwise the contact lapses (or unregisters) and comes back later
CALL_KINDS = (("udp", "udp"), ("udp", "udp"), ("udp", "udp"), ("udp", "udp"),
              ("udp", "ws"), ("udp", "ws"), ("ws", "udp"), ("ws", "ws"), ("tcp", "tcp"))
CALL_ARRIVAL = 0.2  # share of the missing calls started per tick
MAX_INITIAL_CALLS = 100  # up at start (more arrive tick by tick): large demos start fast
_ALNUM = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class SimContact:
    slot: int
    aor: str  # user part; the renderer adds "@127.0.0.1" for 4.0
    transport: str
    uri: str = ""
    contact_id: int = 0
    callid: str = ""
    cseq: int = 1
    expires_len: int = 3600
    expires_at: int = 0
    online: bool = False
    version: int = 0  # invalidates stale timer heap entries
    conn_id: int = 0  # TCP/WS connection id (0 for UDP)
    remote_port: int = 0
    conn_touched: int = 0
    in_call: bool = False
    # Set for contacts registered by a real SIP REGISTER (plugins/opsconsole_demo/sip.py): the
    # simulation never refreshes them, they carry what the UA sent, and only expire.
    external: bool = False
    ua: str | None = None
    sock: str | None = None
    received: str | None = None

    @property
    def socket(self) -> str:
        return self.sock if self.sock is not None else SOCKETS[self.transport]

    @property
    def cflags(self) -> str:
        return "DST_WS" if self.transport == "ws" else ""

    @property
    def user_agent(self) -> str:
        return self.ua if self.ua is not None else USER_AGENTS[self.transport]


@dataclass(slots=True)
class SimLeg:
    tag: str
    contact: str
    bind_addr: str
    sdp: str = ""
    sent_sdp: str = ""


@dataclass(slots=True)
class SimDialog:
    h_entry: int
    h_id: int
    db_id: str
    callid: str
    kind: tuple[str, str]  # (caller transport, callee transport)
    from_uri: str
    to_uri: str
    caller: SimLeg
    callee: SimLeg  # exists from creation; rendered once it has a tag
    caller_contact: SimContact
    callee_contact: SimContact
    start: int
    end_at: int  # when the caller hangs up
    state: int = 1

    @property
    def id(self) -> str:
        return f"{self.h_entry:x}.{self.h_id:x}"

    @property
    def profile_value(self) -> str:
        # callsbyproto = $socket_in(proto) of the INVITE, stored lowercase
        return self.kind[0]


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One OpenSIPS event (E_UL_*, E_DLG_STATE_CHANGED) with its params, captured shape."""

    name: str
    params: dict


@dataclass(frozen=True, slots=True)
class MediaWork:
    op: str  # "offer", "answer", "delete"
    dialog: SimDialog


@dataclass
class Counters:
    values: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + n

    def get(self, key: str) -> int:
        return self.values.get(key, 0)


_EXPIRES_TOTAL = sum(w for _, w in EXPIRES_CHOICES)


def _pick_expires(draw: float) -> int:
    """EXPIRES_CHOICES by weight, for a uniform draw in [0, 1)."""
    point = draw * _EXPIRES_TOTAL
    for expires, weight in EXPIRES_CHOICES:
        if point < weight:
            return expires
        point -= weight
    return EXPIRES_CHOICES[-1][0]


def _split(size: int) -> tuple[int, int, int]:
    """UDP/TCP/WS contact counts in the lab ratio 50/10/10."""
    tcp = max(1, size // 7)
    ws = max(1, size // 7)
    udp = max(1, size - tcp - ws)
    return udp, tcp, ws


def aor_name(transport: str, index: int) -> str:
    if transport == "udp":
        return str(1000 + index) if index < 2000 else f"u{18000 + index}"
    if transport == "tcp":
        return str(3000 + index) if index < 1000 else f"t{29000 + index}"
    return f"ws{2000 + index}"


class DemoState:
    def __init__(self, size: int = 70, *, seed: int = 1, clock: Callable[[], float] = time.time,
                 version: str = "3.4", calls: int | None = None, initial_calls: bool = True,
                 media_port: Callable[[str], int | None] | None = None) -> None:
        if not isinstance(size, int) or size < 3:
            raise ConfigError(f"demo size must be a whole number of at least 3 (one UDP, TCP and WS contact), got {size!r}")
        self.size = size
        self.version = version
        # An endpoint's SDP port.  When the demo sends real RTP (rtp.py) the pump hands out ports
        # the OS gave it, already bound; otherwise the number is only text in a simulated SDP.
        self.media_port = media_port
        self.rng = random.Random(seed)
        self.clock = clock
        self.now = int(clock())
        self.started = self.now
        self.target_calls = calls if calls is not None else max(4, size // 8)
        self.counters = Counters()
        self.events: list[StateEvent] = []
        self._media: list[MediaWork] = []
        self._timers: list[tuple[int, int, int, int]] = []  # (due, seq, slot, version)
        self._seq = 0
        self._conn_ids = 1962440632
        self._dialog_ids = 0
        self._online = 0
        self.dialogs: dict[str, SimDialog] = {}
        self.by_aor: dict[str, SimContact] = {}
        self.bindings: dict[str, list[SimContact]] = {}  # SIP-registered contacts per AoR (online only)
        self._binding_ids = random.Random(seed ^ 0x5199)  # leaves the simulation's draws untouched
        udp, tcp, ws = _split(size)
        self.ranges = {"udp": (0, udp), "tcp": (udp, udp + tcp), "ws": (udp + tcp, size)}
        self.contacts: list[SimContact] = []
        self._populate(udp, tcp, ws)
        if initial_calls:
            self._seed_calls()

    # ------------------------------------------------------------------ setup

    def _populate(self, udp: int, tcp: int, ws: int) -> None:
        """Bulk registration at start-up: no events, one timer entry per contact."""
        slot = 0
        for transport, count in (("udp", udp), ("tcp", tcp), ("ws", ws)):
            for index in range(count):
                contact = SimContact(slot, aor_name(transport, index), transport)
                self.contacts.append(contact)
                self.by_aor[contact.aor] = contact
                self._register(contact, initial=True)
                slot += 1
        heapq.heapify(self._timers)
        self.counters.add("registrar:accepted_regs", len(self.contacts))
        self.counters.add("core:rcv_requests", len(self.contacts))
        self.counters.add("sl:2xx_replies", len(self.contacts))

    def _register(self, contact: SimContact, *, initial: bool = False) -> None:
        rng = self.rng
        contact.online = True
        self._online += 1
        contact.cseq = 1
        contact.contact_id = rng.getrandbits(62) | (1 << 61)
        contact.expires_len = _pick_expires(rng.random())
        elapsed = rng.randrange(contact.expires_len // 2) if initial else 0
        contact.expires_at = self.now + contact.expires_len - elapsed
        if contact.transport == "ws":
            contact.remote_port = rng.randrange(32768, 61000)
            user = "".join(rng.choices(_ALNUM, k=8))
            contact.uri = f"sip:{user}@127.0.0.1:{contact.remote_port};transport=ws"
            contact.callid = "".join(rng.choices(_ALNUM, k=22))
        else:
            port = 5070 if contact.transport == "udp" else 5071
            contact.uri = f"sip:{contact.aor}@127.0.0.1:{port};transport={contact.transport}"
            contact.callid = f"reg-{contact.transport}-{contact.slot}-{rng.randrange(10000, 99999)}@127.0.0.1"
            contact.remote_port = rng.randrange(32768, 61000) if contact.transport == "tcp" else 0
        if contact.transport != "udp":
            self._conn_ids += 1
            contact.conn_id = self._conn_ids
            contact.conn_touched = self.now - elapsed
        self._schedule(contact, contact.expires_at - self._refresh_margin(contact), heap_push=not initial)

    def _refresh_margin(self, contact: SimContact) -> int:
        return max(5, contact.expires_len // 10)

    def _schedule(self, contact: SimContact, due: int, *, heap_push: bool = True) -> None:
        contact.version += 1
        self._seq += 1
        entry = (due, self._seq, contact.slot, contact.version)
        if heap_push:
            heapq.heappush(self._timers, entry)
        else:
            self._timers.append(entry)

    # ------------------------------------------------------------------ queries

    def aor_key(self, aor: str) -> str:
        # SIP-registered AoRs on 4.0 already carry their domain
        return f"{aor}@127.0.0.1" if self.version.startswith("4") and "@" not in aor else aor

    def online_contacts(self):
        return (c for c in self.contacts if c.online)

    @property
    def contact_count(self) -> int:
        return self._online

    def find_contact(self, aor: str) -> SimContact | None:
        contact = self.by_aor.get(aor)
        return contact if contact is not None and contact.online else None

    def contacts_of(self, aor: str) -> list[SimContact]:
        """Every online contact of `aor`: the simulated one and those registered over SIP."""
        simulated = self.find_contact(aor)
        own = [simulated] if simulated is not None and not simulated.external else []
        return own + list(self.bindings.get(aor, ()))

    def active_dialogs(self) -> list[SimDialog]:
        return list(self.dialogs.values())

    @property
    def uptime(self) -> int:
        return self.now - self.started

    def take_events(self) -> list[StateEvent]:
        events, self.events = self.events, []
        return events

    def take_media_work(self) -> list[MediaWork]:
        work, self._media = self._media, []
        return work

    # ------------------------------------------------------------------ evolution

    def advance(self, now: float | None = None) -> list[StateEvent]:
        """Move the simulation to `now` (default: the clock); returns the events raised."""
        self.now = int(self.clock() if now is None else now)
        first = len(self.events)
        self._run_timers()
        self._evolve_dialogs()
        self._start_calls()
        return self.events[first:]

    def _run_timers(self) -> None:
        timers = self._timers
        while timers and timers[0][0] <= self.now:
            _, _, slot, version = heapq.heappop(timers)
            contact = self.contacts[slot]
            if version != contact.version:
                continue  # superseded by a later schedule
            if contact.external:
                if contact.online and contact.expires_at <= self.now:
                    self.counters.add("usrloc:location-expires")
                    self._remove_binding(contact)
                continue
            if not contact.online:
                self._reregister(contact)
            elif contact.expires_at <= self.now:
                self._expire(contact)
            elif self.rng.random() < REFRESH_PROBABILITY:
                self._refresh(contact)
            elif self.rng.random() < 0.3:
                self._unregister(contact)
            else:
                self._schedule(contact, contact.expires_at)  # lapses: the usrloc timer deletes it

    def _refresh(self, contact: SimContact) -> None:
        contact.cseq += 1
        contact.expires_at = self.now + contact.expires_len
        contact.conn_touched = self.now
        self._schedule(contact, contact.expires_at - self._refresh_margin(contact))
        self._count_register()
        self._emit_contact("E_UL_CONTACT_UPDATE", contact)

    def _unregister(self, contact: SimContact) -> None:
        # CONTACT_DELETE carries the stored contact (old cseq/expires), as captured
        self._count_register()
        self._remove(contact)

    def _expire(self, contact: SimContact) -> None:
        self.counters.add("usrloc:location-expires")
        self._remove(contact)

    def _remove(self, contact: SimContact) -> None:
        self._emit_contact("E_UL_CONTACT_DELETE", contact)
        self.events.append(StateEvent("E_UL_AOR_DELETE", {"domain": "location", "aor": self.aor_key(contact.aor)}))
        contact.online = False
        self._online -= 1
        contact.conn_id = 0
        self._schedule(contact, self.now + self.rng.randrange(10, 120))

    def _reregister(self, contact: SimContact) -> None:
        self._register(contact)
        self._count_register()
        self.events.append(StateEvent("E_UL_AOR_INSERT", {"domain": "location", "aor": self.aor_key(contact.aor)}))
        self._emit_contact("E_UL_CONTACT_INSERT", contact)

    def _count_register(self) -> None:
        for key in ("registrar:accepted_regs", "core:rcv_requests", "sl:2xx_replies"):
            self.counters.add(key)

    def _emit_contact(self, name: str, contact: SimContact) -> None:
        self.events.append(StateEvent(name, {
            "domain": "location",
            "aor": self.aor_key(contact.aor),
            "uri": contact.uri,
            "received": contact.received,
            "path": None,
            "qval": -1,
            "user_agent": contact.user_agent,
            "socket": contact.socket,
            "bflags": DST_WS_BFLAG if contact.transport == "ws" else 0,
            "expires": contact.expires_at,
            "callid": contact.callid,
            "cseq": contact.cseq,
            "attr": "",
            "latency": 0,
            "shtag": "",
        }))

    # ------------------------------------------------------------------ real SIP registrations

    def register(self, aor: str, contact_uri: str, *, user_agent: str, callid: str, cseq: int, expires: int,
                 transport: str = "udp", received: str | None = None, socket: str | None = None) -> SimContact | None:
        """Apply one binding of a REGISTER, like registrar save(): insert, refresh, or remove (expires 0).

        `aor` is the usrloc key (user part on 3.4, user@domain on 4.0; see `aor_key`).
        Returns the stored contact, or None when it was removed (or was not there)."""
        if transport not in SOCKETS:
            raise ConfigError(f"demo registrar: transport must be one of {', '.join(SOCKETS)}, got {transport!r}")
        self.now = max(self.now, int(self.clock()))
        self._count_register()
        contact = next((c for c in self.contacts_of(aor) if c.uri == contact_uri), None)
        if contact is not None and not contact.external:  # a real UA took over a simulated contact
            contact.external = True
            self.bindings.setdefault(aor, []).append(contact)
        if expires <= 0:
            if contact is not None:
                self._remove_binding(contact)
            return None
        if contact is None:
            return self._insert_binding(aor, contact_uri, user_agent=user_agent, callid=callid, cseq=cseq,
                                        expires=expires, transport=transport, received=received, socket=socket)
        contact.ua, contact.callid, contact.cseq, contact.received = user_agent, callid, cseq, received
        contact.transport, contact.sock = transport, socket
        contact.expires_len, contact.expires_at = expires, self.now + expires
        contact.conn_touched = self.now
        self._schedule(contact, contact.expires_at)
        self._emit_contact("E_UL_CONTACT_UPDATE", contact)
        return contact

    def unregister_all(self, aor: str) -> int:
        """`Contact: *` with `Expires: 0`: every contact of the AoR goes, the simulated one too."""
        self.now = max(self.now, int(self.clock()))
        self._count_register()
        removed = 0
        for contact in list(self.bindings.get(aor, ())):
            self._remove_binding(contact)
            removed += 1
        simulated = self.find_contact(aor)
        if simulated is not None and not simulated.external:
            self._remove(simulated)
            removed += 1
        return removed

    def _insert_binding(self, aor: str, uri: str, *, user_agent: str, callid: str, cseq: int, expires: int,
                        transport: str, received: str | None, socket: str | None) -> SimContact:
        first = not self.contacts_of(aor)
        contact = SimContact(len(self.contacts), aor, transport, uri=uri, callid=callid, cseq=cseq,
                             expires_len=expires, expires_at=self.now + expires, online=True, external=True,
                             ua=user_agent, sock=socket, received=received, conn_touched=self.now)
        contact.contact_id = self._binding_ids.getrandbits(62) | (1 << 61)
        self.contacts.append(contact)
        self.bindings.setdefault(aor, []).append(contact)
        self._online += 1
        self._schedule(contact, contact.expires_at)
        if first:
            self.events.append(StateEvent("E_UL_AOR_INSERT", {"domain": "location", "aor": self.aor_key(aor)}))
        self._emit_contact("E_UL_CONTACT_INSERT", contact)
        return contact

    def _remove_binding(self, contact: SimContact) -> None:
        self._emit_contact("E_UL_CONTACT_DELETE", contact)
        contact.online = False
        contact.version += 1  # cancels its expiry timer
        self._online -= 1
        remaining = self.bindings.get(contact.aor, [])
        remaining.remove(contact)
        if not remaining:
            self.bindings.pop(contact.aor, None)
        if not self.contacts_of(contact.aor):
            self.events.append(StateEvent("E_UL_AOR_DELETE", {"domain": "location", "aor": self.aor_key(contact.aor)}))

    # ------------------------------------------------------------------ calls

    def _pick(self, transport: str, exclude: SimContact | None = None) -> SimContact | None:
        low, high = self.ranges[transport]
        for _ in range(12):
            contact = self.contacts[self.rng.randrange(low, high)]
            if contact.online and not contact.in_call and contact is not exclude:
                return contact
        return None

    def _start_calls(self) -> None:
        """About a fifth of the missing calls arrive per tick: a steady state without bursts."""
        missing = self.target_calls - len(self.dialogs)
        for _ in range(int(missing * CALL_ARRIVAL + self.rng.random())):
            kind = self.rng.choice(CALL_KINDS)
            caller = self._pick(kind[0])
            callee = self._pick(kind[1], exclude=caller)
            if caller is not None and callee is not None:
                self._create_dialog(kind, caller, callee)

    def _seed_calls(self) -> None:
        """Calls already up when the platform starts, like the lab's 9 confirmed dialogs.

        Nobody can have subscribed yet, so their events are dropped; their media work stays queued."""
        for _ in range(min(self.target_calls, MAX_INITIAL_CALLS)):
            kind = self.rng.choice(CALL_KINDS)
            caller = self._pick(kind[0])
            callee = self._pick(kind[1], exclude=caller)
            if caller is None or callee is None:
                continue
            dialog = self._create_dialog(kind, caller, callee)
            dialog.start -= self.rng.randrange(120)
            self._ring(dialog)
            self._answer(dialog)
        self.events.clear()

    def _create_dialog(self, kind: tuple[str, str], caller: SimContact, callee: SimContact) -> SimDialog:
        rng = self.rng
        self._dialog_ids += 1
        h_entry, h_id = rng.randrange(4096), rng.getrandbits(31)
        if kind[0] == "ws":
            callid = "".join(rng.choices(_ALNUM, k=24))
            caller_tag = "".join(rng.choices(_ALNUM, k=10))
            caller_uri = caller.uri
        else:
            callid = f"call-{'udp2ws' if kind == ('udp', 'ws') else kind[0]}-{self._dialog_ids}-{rng.randrange(10000, 99999)}@127.0.0.1"
            caller_tag = f"{rng.randrange(10000, 99999)}SIPpTag{self._dialog_ids:03d}"
            caller_uri = f"sip:{caller.aor}@127.0.0.1:{5090 + self._dialog_ids % 10}"
        media_port = self._sdp_port(kind[0], 6000 + 2 * (self._dialog_ids % 500))
        dialog = SimDialog(
            h_entry=h_entry, h_id=h_id, db_id=str((h_entry << 32) | h_id), callid=callid, kind=kind,
            from_uri=f"sip:{caller.aor}@127.0.0.1", to_uri=f"sip:{callee.aor}@127.0.0.1",
            caller=SimLeg(caller_tag, caller_uri, caller.socket, sdp=sdp.offer_sdp(kind[0], caller.aor, media_port)),
            callee=SimLeg("", "", callee.socket),
            caller_contact=caller, callee_contact=callee,
            start=self.now, end_at=self.now + rng.randrange(20, 180),
        )
        caller.in_call = callee.in_call = True
        self.dialogs[callid] = dialog
        self.counters.add("core:rcv_requests")
        self.counters.add("tm:UAS_transactions")
        self.counters.add("dialog:processed_dialogs")
        self._media.append(MediaWork("offer", dialog))
        return dialog

    def _evolve_dialogs(self) -> None:
        for dialog in list(self.dialogs.values()):
            if dialog.state == 1:
                if self.rng.random() < 0.05:
                    self._fail(dialog)
                else:
                    self._ring(dialog)
            elif dialog.state == 2:
                self._answer(dialog)
            elif dialog.state == 4 and self.now >= dialog.end_at:
                self._hangup(dialog)
            elif dialog.state == 5:
                self._destroy(dialog)

    def _sdp_port(self, transport: str, simulated: int) -> int:
        """A port the pump owns (bound, from the OS) when it has one for this leg, else a number
        that is never bound: the simulated SDP just needs one."""
        port = self.media_port(transport) if self.media_port is not None else None
        return port or simulated

    def _ring(self, dialog: SimDialog) -> None:
        callee = dialog.callee_contact
        rng = self.rng
        if callee.transport == "ws":
            dialog.callee.tag = "".join(rng.choices(_ALNUM, k=10))
            dialog.callee.contact = callee.uri
        else:
            dialog.callee.tag = f"{rng.randrange(10000, 99999)}SIPpTag{rng.randrange(10, 99):03d}"
            port = 5070 if callee.transport == "udp" else 5071
            dialog.callee.contact = f"sip:127.0.0.1:{port};transport={callee.transport.upper()}"
        self.counters.add("core:rcv_replies")
        self._set_state(dialog, 2)

    def _answer(self, dialog: SimDialog) -> None:
        media_port = self._sdp_port(dialog.kind[1], 7000 + 2 * (dialog.h_id % 500))
        dialog.callee.sdp = sdp.answer_sdp(dialog.kind[1], dialog.callee_contact.aor, media_port)
        self.counters.add("core:rcv_replies")
        self.counters.add("tm:2xx_transactions")
        self._set_state(dialog, 3)  # 200 OK: confirmed, not yet ACKed
        self.counters.add("core:rcv_requests")  # the ACK
        self._set_state(dialog, 4)
        self._media.append(MediaWork("answer", dialog))

    def _hangup(self, dialog: SimDialog) -> None:
        self.counters.add("core:rcv_requests")
        self._set_state(dialog, 5)
        self._media.append(MediaWork("delete", dialog))

    def _fail(self, dialog: SimDialog) -> None:
        """INVITE rejected before any to-tag: 1 -> 5 with to_tag null, as captured for a 404."""
        self.counters.add("dialog:failed_dialogs")
        self.counters.add("tm:4xx_transactions")
        self._set_state(dialog, 5)
        self._media.append(MediaWork("delete", dialog))

    def _destroy(self, dialog: SimDialog) -> None:
        del self.dialogs[dialog.callid]
        dialog.caller_contact.in_call = dialog.callee_contact.in_call = False

    def _set_state(self, dialog: SimDialog, new_state: int) -> None:
        old_state, dialog.state = dialog.state, new_state
        self.events.append(StateEvent("E_DLG_STATE_CHANGED", {
            "id": dialog.id,
            "db_id": dialog.db_id,
            "callid": dialog.callid,
            "from_tag": dialog.caller.tag,
            "to_tag": dialog.callee.tag or None,
            "old_state": old_state,
            "new_state": new_state,
        }))

    # ------------------------------------------------------------------ statistics

    def dialog_counts(self) -> tuple[int, int]:
        active = sum(1 for d in self.dialogs.values() if d.state in (3, 4))
        early = sum(1 for d in self.dialogs.values() if d.state in (1, 2))
        return active, early
