"""RTCP sender/receiver reports whose loss, jitter and delay we choose (RFC 3550 §6.4), I/O-free.

RTPengine computes a call's MOS itself from the endpoints' RTCP: an endpoint's report block about
the other side's SSRC gives the fraction lost and the jitter; the round-trip time comes from the
block's LSR/DLSR, matched against the sender report RTPengine saw from the other side.  RTPengine
computes a MOS only once it has a round-trip time for both legs, so *both* endpoints must send
sender reports and report on each other (`ReportingPair`).

The demo's RTP pump and the tests use this to make RTPengine see a good call, a poor one, or
none at all — the MOS shown is RTPengine's own figure, never ours.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
PT_SR, PT_RR, PT_SDES = 200, 201, 202
SDES_CNAME = 1
CLOCK_RATE = 8000  # G.711: RTP timestamp units per second (RTCP jitter is in these units)


def ntp_timestamp(unix_time: float) -> tuple[int, int]:
    """(most, least) significant 32-bit words of the 64-bit NTP timestamp."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * (1 << 32)) & 0xFFFFFFFF
    return (seconds + NTP_EPOCH_OFFSET) & 0xFFFFFFFF, fraction


def ntp_middle(unix_time: float) -> int:
    """The middle 32 bits of the NTP timestamp: what a report block's LSR echoes."""
    msw, lsw = ntp_timestamp(unix_time)
    return ((msw & 0xFFFF) << 16) | (lsw >> 16)


@dataclass(frozen=True)
class ReportBlock:
    """One reception report about `ssrc` (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int = 0  # 0..255: lost/expected x 256 since the last report
    cumulative_lost: int = 0
    highest_seq: int = 0  # extended highest sequence number received
    jitter: int = 0  # interarrival jitter, RTP timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP timestamp from `ssrc` (0: none yet)
    dlsr: int = 0  # delay since that SR, 1/65536 s

    def pack(self) -> bytes:
        lost = max(-(1 << 23), min((1 << 23) - 1, self.cumulative_lost)) & 0xFFFFFF
        return struct.pack("!IIIIII", self.ssrc & 0xFFFFFFFF, (self.fraction_lost & 0xFF) << 24 | lost,
                           self.highest_seq & 0xFFFFFFFF, self.jitter & 0xFFFFFFFF, self.lsr & 0xFFFFFFFF,
                           self.dlsr & 0xFFFFFFFF)


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    if count > 31 or len(body) % 4:
        raise ValueError("an RTCP packet holds at most 31 items and whole 32-bit words")
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one CNAME item (every compound RTCP packet carries one)."""
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc & 0xFFFFFFFF, SDES_CNAME, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return _header(1, PT_SDES, chunk)


def sender_report(ssrc: int, unix_time: float, rtp_timestamp: int, packets: int, octets: int,
                  blocks: tuple[ReportBlock, ...] = (), cname: str = "opsconsole") -> bytes:
    """Compound RTCP: SR (with its report blocks) + SDES CNAME."""
    msw, lsw = ntp_timestamp(unix_time)
    body = struct.pack("!IIIIII", ssrc & 0xFFFFFFFF, msw, lsw, rtp_timestamp & 0xFFFFFFFF,
                       packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)
    body += b"".join(block.pack() for block in blocks)
    return _header(len(blocks), PT_SR, body) + sdes_cname(ssrc, cname)


def receiver_report(ssrc: int, blocks: tuple[ReportBlock, ...], cname: str = "opsconsole") -> bytes:
    """Compound RTCP: RR + SDES CNAME (an endpoint that receives but does not send)."""
    body = struct.pack("!I", ssrc & 0xFFFFFFFF) + b"".join(block.pack() for block in blocks)
    return _header(len(blocks), PT_RR, body) + sdes_cname(ssrc, cname)


@dataclass(frozen=True)
class Reception:
    """What one endpoint reports about the audio it receives."""

    loss_pct: float = 0.0
    jitter_ms: float = 5.0
    rtt_leg_ms: float = 20.0  # the delay it makes RTPengine measure for its leg (via DLSR)
    cumulative_lost: int = 0

    def fraction_lost(self) -> int:
        return max(0, min(255, round(self.loss_pct * 256 / 100)))

    def jitter_units(self) -> int:
        return max(0, round(self.jitter_ms * CLOCK_RATE / 1000))


class ReportingEndpoint:
    """One endpoint's RTCP state: its own SSRC and counters, and the last SR it got from the peer."""

    def __init__(self, ssrc: int, reception: Reception, cname: str = "opsconsole") -> None:
        self.ssrc, self.reception, self.cname = ssrc, reception, cname
        self.packets = self.octets = self.rtp_timestamp = 0
        self.highest_seq = 0  # of the peer's stream
        self._peer_sr: tuple[float, int] | None = None  # (when it was sent, its NTP middle bits)

    def sent_rtp(self, packets: int, payload_bytes: int, timestamp: int) -> None:
        self.packets += packets
        self.octets += payload_bytes
        self.rtp_timestamp = timestamp

    def report(self, peer_ssrc: int, now: float) -> bytes:
        """An SR about our sending with one block about the peer (LSR/DLSR from its last SR)."""
        reception, lsr, dlsr = self.reception, 0, 0
        if self._peer_sr is not None:
            sent_at, lsr = self._peer_sr
            # RTPengine's leg RTT = (this report's arrival - the peer SR's arrival) - DLSR
            dlsr = max(1, round((now - sent_at - reception.rtt_leg_ms / 1000) * 65536))
        block = ReportBlock(peer_ssrc, reception.fraction_lost(), reception.cumulative_lost, self.highest_seq,
                            reception.jitter_units(), lsr, dlsr)
        return sender_report(self.ssrc, now, self.rtp_timestamp, self.packets, self.octets, (block,), self.cname)

    def peer_sent_report(self, sent_at: float) -> None:
        self._peer_sr = (sent_at, ntp_middle(sent_at))


class ReportingPair:
    """Two endpoints of one call reporting on each other, as RTPengine needs them to for a MOS."""

    def __init__(self, caller: ReportingEndpoint, callee: ReportingEndpoint) -> None:
        self.caller, self.callee = caller, callee

    def reports(self, now: float) -> tuple[bytes, bytes]:
        """(caller's packet, callee's packet) for this round; each names the other's last SR."""
        caller_packet = self.caller.report(self.callee.ssrc, now)
        callee_packet = self.callee.report(self.caller.ssrc, now)
        self.callee.peer_sent_report(now)
        self.caller.peer_sent_report(now)
        return caller_packet, callee_packet
