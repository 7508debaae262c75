"""The SIP side: contacts, dialogs, relays, SIP counters, the signalling state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss", "sctp")


@dataclass(frozen=True, slots=True)
class Contact:
    aor: str
    contact: str
    contact_id: str = ""
    socket: str = ""  # "udp:127.0.0.1:5060"; "" for MI-added contacts
    transport: str = ""  # one of TRANSPORTS, "" if unknown
    ws: bool = False  # ws/wss transport or a WS branch flag (DST_WS)
    flags: int = 0
    cflags: tuple[str, ...] = ()
    received: str = ""
    path: str = ""
    user_agent: str = ""
    expires: int | None = None  # seconds left; None when expires_state says why
    expires_state: str = ""  # "", "permanent", "expired", "deleted"
    callid: str = ""
    cseq: int = 0
    q: str = ""
    state: str = ""
    methods: int | None = None
    target: str = ""  # node name: several OpenSIPS nodes may share one console

    @property
    def key(self) -> str:
        """Stable identity for keyed table updates."""
        return f"{self.aor}\x00{self.contact_id or self.contact}"


DIALOG_STATES = {
    1: "unconfirmed",
    2: "early",
    3: "confirmed-not-acked",
    4: "confirmed",
    5: "deleted",
}


@dataclass(frozen=True, slots=True)
class DialogLeg:
    tag: str = ""
    contact: str = ""
    bind_addr: str = ""  # "ws:127.0.0.1:8080"
    transport: str = ""
    sdp: str = ""  # as received
    sent_sdp: str = ""  # as sent (rewritten by RTPengine)
    media_ports: tuple[int, ...] = ()  # from m= lines of sent_sdp
    media_protocols: tuple[str, ...] = ()  # "RTP/AVP", "UDP/TLS/RTP/SAVPF"


@dataclass(frozen=True, slots=True)
class Dialog:
    id: str
    callid: str
    from_uri: str = ""
    to_uri: str = ""
    state: int = 0
    start: int = 0  # unix time
    timeout: int = 0  # unix time
    caller: DialogLeg = field(default_factory=DialogLeg)
    callees: tuple[DialogLeg, ...] = ()
    profiles: tuple[tuple[str, str], ...] = ()  # (profile, value)
    user_flags: str = ""
    target: str = ""

    @property
    def state_name(self) -> str:
        return DIALOG_STATES.get(self.state, f"state {self.state}")

    @property
    def callee(self) -> DialogLeg:
        return self.callees[0] if self.callees else DialogLeg()

    @property
    def caller_transport(self) -> str:
        return self.caller.transport

    @property
    def callee_transport(self) -> str:
        return self.callee.transport

    def duration(self, now: float) -> int:
        return max(0, int(now - self.start)) if self.start else 0


@dataclass(frozen=True, slots=True)
class RelayNode:
    """A media relay as the SIP server sees it (rtpengine_show / rtpengine:show)."""

    url: str  # "udp:127.0.0.1:60000"
    set_id: int = 0
    index: int = 0
    disabled: bool = False
    weight: int = 1
    recheck_ticks: int = 0


@dataclass(frozen=True, slots=True)
class Connection:
    """A TCP/TLS/WS connection held by the SIP server (list_tcp_conns)."""

    id: int
    type: str  # tcp, tls, ws, wss
    state: int = 0
    remote: str = ""
    local: str = ""
    lifetime: str = ""
    alias_port: int = 0


SIP_REPLY_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx")


@dataclass(frozen=True, slots=True)
class SipCounters:
    """The SIP server's reply and transaction counters at one moment (OpenSIPS `sl:` and `tm:`
    statistics).  Counters only grow; a rate or a share needs two samples (`SipWindow`).
    A field is None when the server did not report it (module not loaded)."""

    at: float = 0.0  # epoch s of the sample
    # replies OpenSIPS sent itself, statelessly (sl_send_reply: a 404 for an unknown user, REGISTER 200s)
    sl_replies: tuple[int | None, ...] = (None,) * 6  # 1xx..6xx
    # transactions completed with a final reply of that class (relayed from a UAS or t_reply)
    tm_transactions: tuple[int | None, ...] = (None,) * 5  # 2xx..6xx
    retransmissions: int | None = None  # tm:retransmission_* summed (requests and replies)
    timeouts_inv: int | None = None  # tm:timeout_finalresponse_inv: INVITEs that got no final reply
    timeouts: int | None = None  # tm:timeout_finalresponse: any request without a final reply

    def finals(self, cls: str) -> int | None:
        """Final replies of class '2xx'..'6xx' (stateless + transactions); None when neither is known."""
        index = SIP_REPLY_CLASSES.index(cls)
        values = [self.sl_replies[index], self.tm_transactions[index - 1] if index else None]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    @property
    def known(self) -> bool:
        return any(v is not None for v in self.sl_replies + self.tm_transactions)


@dataclass(frozen=True, slots=True)
class SipWindow:
    """What happened between two `SipCounters` samples: final replies per class, retransmissions
    and INVITE timeouts, over `seconds`.  A counter that went backwards (restart) makes it None."""

    seconds: float
    finals: dict[str, int] = field(default_factory=dict)  # '2xx'..'6xx' -> count in the window
    retransmissions: int | None = None
    timeouts_inv: int | None = None

    @property
    def total(self) -> int:
        return sum(self.finals.values())

    def share(self, *classes: str) -> float | None:
        """Percent of the window's final replies in these classes (None: no final reply)."""
        total = self.total
        return 100.0 * sum(self.finals.get(c, 0) for c in classes) / total if total else None

    def per_s(self, cls: str) -> float | None:
        return self.finals.get(cls, 0) / self.seconds if self.seconds > 0 else None


def sip_window(earlier: SipCounters | None, later: SipCounters | None) -> SipWindow | None:
    """The window between two samples; None when either is missing, they are not in order, or a
    counter went backwards (the server restarted between them: the difference means nothing)."""
    if earlier is None or later is None or not earlier.known or not later.known or later.at <= earlier.at:
        return None
    finals: dict[str, int] = {}
    for cls in SIP_REPLY_CLASSES[1:]:
        before, after = earlier.finals(cls), later.finals(cls)
        if before is None or after is None:
            continue
        if after < before:
            return None
        finals[cls] = after - before

    def delta(before: int | None, after: int | None) -> int | None:
        return after - before if before is not None and after is not None and after >= before else None

    return SipWindow(seconds=later.at - earlier.at, finals=finals,
                     retransmissions=delta(earlier.retransmissions, later.retransmissions),
                     timeouts_inv=delta(earlier.timeouts_inv, later.timeouts_inv))


@dataclass(frozen=True, slots=True)
class SignallingOverview:
    server: str = ""  # "OpenSIPS (3.4.18 (x86_64/linux))"
    version: str = ""  # "3.4.18"
    uptime_s: int | None = None
    load: float | None = None  # percent, core load
    load_1m: float | None = None
    shm_used: int | None = None
    shm_total: int | None = None
    active_dialogs: int | None = None
    early_dialogs: int | None = None
    processed_dialogs: int | None = None
    failed_dialogs: int | None = None
    inuse_transactions: int | None = None
    registered_contacts: int | None = None  # usrloc location-contacts
    registered_users: int | None = None
    rcv_requests: int | None = None
    rcv_replies: int | None = None
    drop_requests: int | None = None
    err_requests: int | None = None
    sip: SipCounters | None = None  # reply classes, retransmissions, timeouts (None: not reported)

    @property
    def shm_percent(self) -> float | None:
        if self.shm_used is None or not self.shm_total:
            return None
        return 100.0 * self.shm_used / self.shm_total


@dataclass(frozen=True, slots=True)
class SignallingState:
    """What one SIP server (OpenSIPS node) reported in one collection."""

    backend: str = "opensips"
    target: str = ""  # e.g. the MI URL or fifo path
    overview: SignallingOverview = field(default_factory=SignallingOverview)
    contacts: tuple[Contact, ...] | None = None  # None: not fetched (too big / skipped)
    contacts_note: str = ""  # why the list is missing or partial
    dialogs: tuple[Dialog, ...] | None = None
    relays: tuple[RelayNode, ...] = ()
    connections: tuple[Connection, ...] | None = None
    commands: tuple[str, ...] = ()  # from `which`
    modules: tuple[str, ...] = ()  # loaded modules, when known
    listeners: tuple[str, ...] = ()  # "ws:127.0.0.1:8080", when known
    statistics: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # partial failures (one command failed, others ok)
    # where `contacts` came from: "full" (a ul_dump by this collection), "events" (complete table kept
    # current by events), "events-partial" (only what events reported since subscribing), "polling"
    # (events unavailable: bounded polling), "none" (no list); "" when the source does not say
    contacts_mode: str = ""
    events_status: str = ""  # the event listener's status line (live mode), "" otherwise
    # the moment (epoch s) every Contact.expires counts from; None: the collection time.  Live lists
    # keep it fixed so time passing rebuilds no contact: seconds left = expires - (now - contacts_as_of)
    contacts_as_of: float | None = None
    # when `dialogs` was listed (epoch s) if before this collection (a live source without events
    # keeps the last dlg_list between its slow lists); None: current as of this collection
    dialogs_as_of: float | None = None
    # an earlier sample of overview.sip from the same server: the start of the window the SIP
    # failure share is judged over (one-shot: a short interval before; live: ~sip_window_s ago)
    sip_earlier: SipCounters | None = None

    @property
    def sip_window(self) -> SipWindow | None:
        return sip_window(self.sip_earlier, self.overview.sip)
