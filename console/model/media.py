"""The media side: sessions, legs, streams, RTCP quality per SSRC, ports, totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
