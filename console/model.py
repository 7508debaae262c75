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
    ssrc: int | None = None  # the SSRC of the packets received on this stream (ng query), when known

    @property
    def is_rtp(self) -> bool:
        return not self.rtcp


@dataclass(frozen=True, slots=True)
class MosSample:
    """One quality report RTPengine derived from an endpoint's RTCP, in our units (MOS 1.0–5.0,
    milliseconds, percent).  `mos` None: RTPengine had no round-trip time for both legs yet."""

    mos: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    rtt_ms: float | None = None  # end to end (both legs)
    rtt_leg_ms: float | None = None  # this leg only (RTPengine <-> the endpoint)
    reported_at: int = 0  # epoch s; 0 for an average


@dataclass(frozen=True, slots=True)
class SsrcQuality:
    """RTPengine's statistics for one SSRC (ng query/delete "SSRC" entry): the reports the endpoint
    sending this SSRC made, by RTCP, about the audio it *receives*."""

    ssrc: int
    average: MosSample | None = None
    lowest: MosSample | None = None
    highest: MosSample | None = None
    samples: int = 0  # reports with a MOS in the average
    cumulative_loss: int | None = None  # packets the endpoint reported lost (RTCP cumulative)
    packets: int | None = None  # newer RTPengines also count the SSRC's packets
    bytes: int | None = None
    last_seq: int | None = None
    progression: tuple[MosSample, ...] = ()  # about 10 samples over the call, oldest first
    progression_interval_s: int = 0


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
    # RTCP-derived statistics per SSRC (ng query): None = not asked over ng (unknown);
    # () = asked, and RTPengine has none (no RTCP, or RTCP without round-trip data)
    quality: tuple[SsrcQuality, ...] | None = None
    rtcp_packets: int | None = None  # RTCP packets relayed for this call (ng query totals), when known
    queried_at: float | None = None  # when the details were asked for (epoch s); None: not queried

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for leg in self.legs for p in leg.ports)

    def ssrc_quality(self, ssrc: int | None) -> SsrcQuality | None:
        if ssrc is None or not self.quality:
            return None
        return next((q for q in self.quality if q.ssrc == ssrc), None)

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
class InterfaceQuality:
    """Per-interface averages of the RTCP-derived samples (RTPengine 12.4+ `list interfaces` /
    ng statistics `interfaces[].voip_metrics`); None where the daemon has no samples."""

    name: str
    address: str
    mos: float | None = None
    loss_pct: float | None = None
    jitter_ms: float | None = None
    rtt_ms: float | None = None  # end to end
    samples: int | None = None  # MOS samples, when the daemon says


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
    # global RTCP-derived quality (`mos` / `voip_metrics` sections); None where not reported
    mos_average: float | None = None  # over every MOS sample since start (None: no sample yet)
    mos_samples: int | None = None
    jitter_average_ms: float | None = None  # RTPengine 12.4+
    loss_average_pct: float | None = None  # RTPengine 12.4+


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
    # per-interface RTCP-derived quality; None: this RTPengine does not report it (10.5 does not)
    interface_quality: tuple[InterfaceQuality, ...] | None = None


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


class QualityState(str, enum.Enum):
    """A call's media health, derived from RTPengine's view of it (`call_quality`)."""

    OK = "ok"
    ONE_WAY = "one-way"  # one direction flows, the other has been silent too long since the answer
    SILENT = "silent"  # both directions silent
    POOR = "poor"  # MOS below the threshold
    NO_RTCP = "no RTCP"  # media flows but no RTCP-derived MOS: quality unknown, no finding
    UNKNOWN = "unknown"  # not queried, not answered, ending, or no media session


@dataclass(frozen=True, slots=True)
class LegQuality:
    """One leg (endpoint) of a call: what RTPengine received from it, and the quality the endpoint
    reported by RTCP about the audio it received (RTPengine's MOS for its SSRC)."""

    tag: str
    role: str = ""  # "caller" / "callee" (or "leg 1"/"leg 2" without a dialog)
    packets: int | None = None  # RTP packets RTPengine received from this endpoint
    last_packet_age_s: float | None = None  # None: nothing received yet
    expected_to_send: bool = True  # False: its SDP says it does not send (hold, recvonly, inactive)
    silent: bool = False  # expected to send, and nothing for longer than the limit since the answer
    rtcp: SsrcQuality | None = None  # None: no RTCP-derived statistics for its SSRC

    @property
    def mos(self) -> float | None:
        return self.rtcp.average.mos if self.rtcp and self.rtcp.average else None

    @property
    def mos_min(self) -> float | None:
        return self.rtcp.lowest.mos if self.rtcp and self.rtcp.lowest else None

    @property
    def mos_max(self) -> float | None:
        return self.rtcp.highest.mos if self.rtcp and self.rtcp.highest else None

    def _average(self, name: str) -> float | None:
        return getattr(self.rtcp.average, name) if self.rtcp and self.rtcp.average else None

    @property
    def jitter_ms(self) -> float | None:
        return self._average("jitter_ms")

    @property
    def loss_pct(self) -> float | None:
        return self._average("loss_pct")

    @property
    def rtt_ms(self) -> float | None:
        return self._average("rtt_ms")

    @property
    def progression(self) -> tuple[float | None, ...]:
        """MOS over the call (about 10 points, oldest first; None where no MOS could be computed)."""
        return tuple(sample.mos for sample in self.rtcp.progression) if self.rtcp else ()


@dataclass(frozen=True, slots=True)
class CallQuality:
    """A call's derived media state and the figures behind it (worst leg where legs differ)."""

    state: QualityState
    reason: str = ""  # why, in words: "callee -> caller silent for 14 s", "no RTCP — MOS unavailable"
    caller: LegQuality | None = None
    callee: LegQuality | None = None
    silent_directions: tuple[str, ...] = ()  # "caller -> callee": the caller sends nothing
    as_of: float | None = None  # when RTPengine was asked (epoch s): the figures are as of then

    @property
    def legs(self) -> tuple[LegQuality, ...]:
        return tuple(leg for leg in (self.caller, self.callee) if leg is not None)

    def _worst(self, name: str, worst=min) -> float | None:
        values = [v for leg in self.legs if (v := getattr(leg, name)) is not None]
        return worst(values) if values else None

    @property
    def mos(self) -> float | None:
        return self._worst("mos")

    @property
    def mos_min(self) -> float | None:
        return self._worst("mos_min")

    @property
    def jitter_ms(self) -> float | None:
        return self._worst("jitter_ms", max)

    @property
    def loss_pct(self) -> float | None:
        return self._worst("loss_pct", max)

    @property
    def rtt_ms(self) -> float | None:
        return self._worst("rtt_ms", max)


ANSWERED_DIALOG_STATES = (3, 4)  # confirmed (not yet ACKed), confirmed


def call_quality(call: Call, now: float, *, mos_poor: float, silent_after_s: float) -> CallQuality:
    """The call's media state: a pure function of what is known about the call, two thresholds and
    the time.  Unknown stays unknown: a session never queried, not answered yet or being deleted
    is `unknown`, and a call without RTCP is `no RTCP`, never a MOS of 0."""
    media = call.media
    if media is None:
        return CallQuality(QualityState.UNKNOWN, "no media session" if call.without_media else "media unknown")
    if not media.detailed:
        return CallQuality(QualityState.UNKNOWN, "not queried yet")
    if media.deleted:
        return CallQuality(QualityState.UNKNOWN, "call ending (deleted in RTPengine)")
    answered_at = _answered_at(call)
    if answered_at is None:
        return CallQuality(QualityState.UNKNOWN, "not answered yet")
    as_of = media.queried_at or now  # the packet ages as of the query, not of an older reading
    caller, callee = _call_legs(call)
    since_answer = as_of - answered_at
    legs = tuple(_leg_quality(leg, role, media, as_of, since_answer, silent_after_s)
                 for leg, role in ((caller, "caller"), (callee, "callee")) if leg is not None)
    by_role = {leg.role: leg for leg in legs}
    quality = CallQuality(QualityState.OK, "", by_role.get("caller"), by_role.get("callee"), as_of=as_of)
    silent = tuple(f"{leg.role} -> {_other(leg.role)}" for leg in legs if leg.silent)
    senders = [leg for leg in legs if leg.expected_to_send]
    if silent and len(silent) == len(senders) and len(senders) == 2:
        return replace(quality, state=QualityState.SILENT, silent_directions=silent,
                       reason=f"no RTP either way for more than {silent_after_s:g} s since the answer")
    if silent:
        age = next(leg for leg in legs if leg.silent).last_packet_age_s
        when = f"for {age:.0f} s" if age is not None else "since the answer"
        return replace(quality, state=QualityState.ONE_WAY, silent_directions=silent,
                       reason=f"{silent[0]} silent {when} (nothing received from the {silent[0].split()[0]})")
    worst = quality.mos
    if worst is not None and worst < mos_poor:
        return replace(quality, state=QualityState.POOR, reason=f"MOS {worst:.1f} below {mos_poor:g}")
    if worst is None:
        return replace(quality, state=QualityState.NO_RTCP, reason=_no_mos_reason(media))
    return replace(quality, reason=f"MOS {worst:.1f}")


def _other(role: str) -> str:
    return {"caller": "callee", "callee": "caller"}.get(role, "other")


def _answered_at(call: Call) -> float | None:
    dialog, media = call.dialog, call.media
    if dialog is not None:
        return float(dialog.start) if dialog.state in ANSWERED_DIALOG_STATES and dialog.start else None
    # No dialog (not known to OpenSIPS, or unknown): answered when both sides have their tag.
    if media is None or len([leg for leg in media.legs if leg.tag and not leg.tag.startswith("<untagged")]) < 2:
        return None
    return float(media.last_signal or media.created) or None


def _call_legs(call: Call) -> tuple[MediaLeg | None, MediaLeg | None]:
    media = call.media
    assert media is not None
    caller = media.leg(call.dialog.caller.tag) if call.dialog else None
    callee = media.leg(call.dialog.callee.tag) if call.dialog and call.dialog.callees else None
    if caller is None or callee is None:
        rest = [leg for leg in media.legs if leg is not caller and leg is not callee]
        caller = caller or (rest.pop(0) if rest else None)
        callee = callee or (rest.pop(0) if rest else None)
    return caller, callee


def _leg_quality(leg: MediaLeg, role: str, media: MediaSession, as_of: float, since_answer: float,
                 silent_after_s: float) -> LegQuality:
    rtp = [s for m in leg.medias for s in m.streams if s.is_rtp]
    packets = sum(s.packets for s in rtp)
    last = max((s.last_packet for s in rtp if s.packets), default=0)
    age = max(0.0, as_of - last) if last else None
    # RTPengine's "recv" media flag: it expects to receive from this endpoint (its SDP sends).
    expected = not any(m.flags for m in leg.medias) or any("recv" in m.flags for m in leg.medias)
    quiet_for = age if age is not None else since_answer
    silent = expected and since_answer > silent_after_s and quiet_for > silent_after_s
    ssrc = next((s.ssrc for s in rtp if s.ssrc is not None), None)
    return LegQuality(tag=leg.tag, role=role, packets=packets, last_packet_age_s=age, expected_to_send=expected,
                      silent=silent, rtcp=media.ssrc_quality(ssrc))


def _no_mos_reason(media: MediaSession) -> str:
    if media.quality is None:
        return "RTCP not queried (no ng) — MOS unavailable"
    if media.rtcp_packets:
        return f"RTCP seen ({media.rtcp_packets} packets) but no round-trip data — MOS unavailable"
    return "no RTCP — MOS unavailable"


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
