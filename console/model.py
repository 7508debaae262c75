"""Typed, frozen domain model shared by every layer.

Wire formats are parsed once, at the edge (the plugins' codecs/parsers), into
these dataclasses.  Everything above (snapshot, checks, renderers, UI) reads
only these.  The models are backend-neutral on purpose: a Kamailio source can
fill the same `SignallingState`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Check status, ordered by severity for aggregation."""

    OK = "ok"
    SKIP = "skip"
    UNKNOWN = "unknown"
    WARN = "warn"
    FAIL = "fail"

    @property
    def word(self) -> str:
        """Upper-case status word: the meaning must survive NO_COLOR."""
        return self.value.upper()


# Nagios plugin convention: 0 ok, 1 warn, 2 fail (critical), 3 unknown.
EXIT_CODES = {Status.OK: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2, Status.UNKNOWN: 3}


def overall_status(statuses: list[Status]) -> Status:
    """fail > warn > unknown > ok/skip (matches the exit-code contract)."""
    if Status.FAIL in statuses:
        return Status.FAIL
    if Status.WARN in statuses:
        return Status.WARN
    if Status.UNKNOWN in statuses:
        return Status.UNKNOWN
    return Status.OK


def threshold_status(value: float, warn: float, fail: float) -> Status:
    """One rule for every "warn at X %, fail at Y %" check (load, shm, ports)."""
    if value >= fail:
        return Status.FAIL
    if value >= warn:
        return Status.WARN
    return Status.OK


TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss", "sctp")


# --------------------------------------------------------------------------- SIP side


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


# --------------------------------------------------------------------------- media side


@dataclass(frozen=True, slots=True)
class MediaStream:
    local_address: str = ""
    local_port: int = 0
    endpoint: str = ""  # "127.0.0.1:6100"
    rtcp: bool = False
    packets: int = 0
    bytes: int = 0
    errors: int = 0
    last_packet: int = 0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Media:
    index: int = 0
    type: str = "audio"
    protocol: str = ""  # RTP/AVP, UDP/TLS/RTP/SAVPF ...
    codec: str = ""
    streams: tuple[MediaStream, ...] = ()
    flags: tuple[str, ...] = ()  # ICE, DTLS, SRTP, rtcp-mux ... as reported

    @property
    def packets(self) -> int:
        return sum(s.packets for s in self.streams)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.streams)


@dataclass(frozen=True, slots=True)
class MediaLeg:
    tag: str
    medias: tuple[Media, ...] = ()
    label: str = ""
    tag_type: str = ""  # FROM_TAG / TO_TAG when known

    @property
    def protocol(self) -> str:
        return self.medias[0].protocol if self.medias else ""

    @property
    def codec(self) -> str:
        return self.medias[0].codec if self.medias else ""

    @property
    def packets(self) -> int:
        return sum(m.packets for m in self.medias)

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.medias)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(s.local_port for m in self.medias for s in m.streams if s.local_port)


@dataclass(frozen=True, slots=True)
class MediaSession:
    callid: str
    created: int = 0
    last_signal: int = 0
    legs: tuple[MediaLeg, ...] = ()
    deleted: bool = False  # deletion mark (BYE seen, within delete-delay)
    foreign: bool = False
    proxy: str = ""
    detailed: bool = False  # legs were queried (False: only listed)
    target: str = ""

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for leg in self.legs for p in leg.ports)

    def leg(self, tag: str) -> MediaLeg | None:
        for leg in self.legs:
            if leg.tag == tag:
                return leg
        return None


@dataclass(frozen=True, slots=True)
class InterfacePorts:
    name: str  # "default"
    address: str  # "127.0.0.1"
    used: int
    total: int
    port_min: int = 0
    port_max: int = 0
    last_port: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0

    @property
    def calls_left(self) -> int:
        return max(0, self.total - self.used) // 4  # each call holds 4 ports


@dataclass(frozen=True, slots=True)
class PortUsage:
    interfaces: tuple[InterfacePorts, ...] = ()
    port_min: int = 0  # configured range, when known
    port_max: int = 0

    @property
    def used(self) -> int:
        return sum(i.used for i in self.interfaces)

    @property
    def total(self) -> int:
        return sum(i.total for i in self.interfaces)


@dataclass(frozen=True, slots=True)
class MediaTotals:
    """Counters from `list totals` / ng `statistics` (numbers, not strings)."""

    owned_sessions: int | None = None
    foreign_sessions: int | None = None
    total_sessions: int | None = None
    uptime_s: int | None = None
    packets_per_s_user: float | None = None
    packets_per_s_kernel: float | None = None
    errors_per_s: float | None = None
    relayed_packets_user: int | None = None
    relayed_packets_kernel: int | None = None
    relayed_errors: int | None = None
    managed_sessions: int | None = None
    rejected_sessions: int | None = None
    timeout_sessions: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaState:
    """What one media relay (RTPengine) reported in one collection."""

    backend: str = "rtpengine"
    target: str = ""  # "127.0.0.1:2223" (ng)
    ng_ok: bool | None = None  # ng ping answered pong
    ng_error: str = ""
    cli_ok: bool | None = None
    cli_error: str = ""
    version: str = ""
    sessions: tuple[MediaSession, ...] = ()
    sessions_total: int | None = None  # may exceed len(sessions) when listing is limited
    ports: PortUsage = field(default_factory=PortUsage)
    totals: MediaTotals = field(default_factory=MediaTotals)
    errors: tuple[str, ...] = ()


# --------------------------------------------------------------------------- host side


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    cmdline: tuple[str, ...] = ()
    user: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # parsed from cmdline + config file
    error: str = ""  # AccessDenied etc.
    suspect: str = ""  # why this process is probably not the real daemon ("" = trusted)


@dataclass(frozen=True, slots=True)
class HostState:
    hostname: str = ""
    rtpengine: tuple[ProcessInfo, ...] = ()
    opensips: tuple[ProcessInfo, ...] = ()
    kernel_modules: dict[str, Any] = field(default_factory=dict)  # filled by the host plugin
    facts: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


# --------------------------------------------------------------------------- joined views


@dataclass(frozen=True, slots=True)
class Call:
    """A dialog joined with its media session by Call-ID."""

    callid: str
    dialog: Dialog | None = None
    media: MediaSession | None = None
    bridge: str = ""  # "WS->UDP DTLS-SRTP<->RTP"
    # Whether a missing side is known to be missing: False when the dialog list (or the media
    # session list) failed, was not fetched, is older than the other side or is partial.  A call
    # whose other side is unknown is no orphan: it is shown as unknown, never NO DIALOG/NO MEDIA.
    dialog_known: bool = True
    media_known: bool = True

    @property
    def has_dialog(self) -> bool:
        return self.dialog is not None

    @property
    def has_media(self) -> bool:
        return self.media is not None

    @property
    def without_dialog(self) -> bool:
        """Media with no dialog, and the dialog list says so (not merely unknown)."""
        return self.dialog is None and self.dialog_known

    @property
    def without_media(self) -> bool:
        """A dialog with no media session, and the session list says so (not merely unknown)."""
        return self.media is None and self.media_known

    @property
    def key(self) -> str:
        return self.callid


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    ok: bool
    error: str = ""
    elapsed_ms: float = 0.0
    collected_at: float = 0.0
    detail: str = ""  # e.g. "plugin failed to import"


@dataclass(frozen=True, slots=True)
class Snapshot:
    collected_at: float
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    signalling: SignallingState | None = None
    media: MediaState | None = None
    host: HostState | None = None
    calls: tuple[Call, ...] = ()
    discovery: tuple[str, ...] = ()  # what config discovery found and where
    # Parts not from this collection but kept from an earlier one (a live console's merged state):
    # part ("contacts", "dialogs", "media", "host") -> its age in seconds.  Checks that compare
    # parts say UNKNOWN rather than make a finding from old data.
    stale: dict[str, float] = field(default_factory=dict)
    # States of plugins' own sources (neither signalling, media nor host): source name -> state
    parts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources.values())


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""
    elapsed_ms: float = 0.0


def replace(obj, **changes):
    """dataclasses.replace, re-exported so callers need not import dataclasses."""
    return dataclasses.replace(obj, **changes)
