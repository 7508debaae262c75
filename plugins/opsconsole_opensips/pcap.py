"""Traced SIP messages as a classic pcap file (I/O-free: bytes out).

Each HEP packet becomes one frame: Ethernet, then IPv4 or IPv6, then UDP or TCP built from the
HEP addresses and ports, then the SIP message, so tshark/Wireshark and sngrep decode it as SIP.
TCP segments carry PSH|ACK with a running sequence number per direction (no handshake is
invented; Wireshark shows the SIP all the same).
"""

from __future__ import annotations

import ipaddress
import struct

from .hep import FAMILY_IPV4, PROTO_TCP, HEPPacket

LINKTYPE_ETHERNET = 1
SNAPLEN = 262_144
GLOBAL_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
_MAC_SRC, _MAC_DST = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class PcapWriter:
    """`header()` once, then `record(packet)` per message; keeps TCP sequence numbers."""

    def __init__(self) -> None:
        self._seq: dict[tuple[str, int, str, int], int] = {}

    @staticmethod
    def header() -> bytes:
        return GLOBAL_HEADER

    def record(self, packet: HEPPacket) -> bytes:
        frame = self.frame(packet)
        length = min(len(frame), SNAPLEN)
        return struct.pack("<IIII", packet.ts_sec, packet.ts_usec, length, len(frame)) + frame[:length]

    def frame(self, packet: HEPPacket) -> bytes:
        src, dst = ipaddress.ip_address(packet.src).packed, ipaddress.ip_address(packet.dst).packed
        proto = PROTO_TCP if packet.proto == PROTO_TCP else 17
        if proto == PROTO_TCP:
            segment = self._tcp(packet, src, dst)
        else:
            segment = self._udp(packet, src, dst)
        if packet.family == FAMILY_IPV4:
            ethertype, ip = 0x0800, self._ipv4(src, dst, proto, segment)
        else:
            ethertype, ip = 0x86DD, struct.pack("!IHBB16s16s", 6 << 28, len(segment), proto, 64, src, dst) + segment
        return _MAC_DST + _MAC_SRC + struct.pack("!H", ethertype) + ip

    @staticmethod
    def _ipv4(src: bytes, dst: bytes, proto: int, segment: bytes) -> bytes:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, proto, 0, src, dst)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + segment

    @staticmethod
    def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
        if len(src) == 4:
            return src + dst + struct.pack("!BBH", 0, proto, length)
        return src + dst + struct.pack("!I3xB", length, proto)

    def _udp(self, packet: HEPPacket, src: bytes, dst: bytes) -> bytes:
        length = 8 + len(packet.payload)
        header = struct.pack("!HHHH", packet.src_port, packet.dst_port, length, 0)
        checksum = _checksum(self._pseudo(src, dst, 17, length) + header + packet.payload) or 0xFFFF
        return header[:6] + struct.pack("!H", checksum) + packet.payload

    def _tcp(self, packet: HEPPacket, src: bytes, dst: bytes) -> bytes:
        flow = (packet.src, packet.src_port, packet.dst, packet.dst_port)
        seq = self._seq.get(flow, 1)
        self._seq[flow] = (seq + len(packet.payload)) & 0xFFFFFFFF
        ack = self._seq.get((packet.dst, packet.dst_port, packet.src, packet.src_port), 1)
        header = struct.pack("!HHIIBBHHH", packet.src_port, packet.dst_port, seq, ack, 5 << 4, 0x18, 65535, 0, 0)
        checksum = _checksum(self._pseudo(src, dst, PROTO_TCP, len(header) + len(packet.payload)) + header + packet.payload)
        return header[:16] + struct.pack("!H", checksum) + header[18:] + packet.payload
