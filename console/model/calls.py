"""Joined views: a dialog with its media session, and the call quality derived from both."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from .media import MediaLeg, MediaSession, SsrcQuality
from .signalling import Dialog


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
