"""HEP (Homer Encapsulation Protocol) version 3: the I/O-free codec.

OpenSIPS's tracer module (`trace_start` over MI) ships each SIP message it sees as one HEPv3
frame to a `hep:` URI.  A frame is `"HEP3"`, a 16-bit total length, then chunks of
(vendor id 16, type id 16, length 16 including these 6 bytes, payload).  Only vendor 0's
generic chunks are read; others are skipped (their length says how far).

No maintained HEP library exists on PyPI, so this is small and strict: bytes that are not a
whole, well-formed HEPv3 frame raise `HEPError` with what is wrong; HEPv1/v2 (binary headers
starting with the version byte) are refused by name.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from console.errors import ProtocolError

MAGIC = b"HEP3"
HEADER = struct.Struct("!4sH")
CHUNK = struct.Struct("!HHH")
MAX_FRAME = 0xFFFF

# Generic chunk types (vendor 0), from the HEPv3 specification.
IP_FAMILY, IP_PROTO, IPV4_SRC, IPV4_DST, IPV6_SRC, IPV6_DST = 1, 2, 3, 4, 5, 6
SRC_PORT, DST_PORT, TS_SEC, TS_USEC, PROTO_TYPE, CAPTURE_ID = 7, 8, 9, 10, 11, 12
AUTH_KEY, PAYLOAD, PAYLOAD_COMPRESSED, CORRELATION_ID = 14, 15, 16, 17

FAMILY_IPV4, FAMILY_IPV6 = 2, 10
PROTO_UDP, PROTO_TCP = 17, 6
TYPE_SIP = 1

_UINT = {1: "!B", 2: "!H", 4: "!I"}


class HEPError(ProtocolError):
    """Bytes that are not a well-formed HEPv3 frame."""


@dataclass(frozen=True, slots=True)
class HEPPacket:
    family: int  # FAMILY_IPV4 / FAMILY_IPV6
    proto: int  # PROTO_UDP / PROTO_TCP (the transport of the traced message)
    src: str
    dst: str
    src_port: int
    dst_port: int
    ts_sec: int
    ts_usec: int
    proto_type: int  # TYPE_SIP for SIP
    payload: bytes
    capture_id: int = 0
    correlation_id: str = ""

    @property
    def timestamp(self) -> float:
        return self.ts_sec + self.ts_usec / 1_000_000

    @property
    def transport(self) -> str:
        return {PROTO_UDP: "udp", PROTO_TCP: "tcp"}.get(self.proto, str(self.proto))


def _version_word(data: bytes) -> str:
    if data[:1] in (b"\x01", b"\x02"):
        return f"HEPv{data[0]}"
    return repr(bytes(data[:4]))


def frame_length(data: bytes | memoryview) -> int | None:
    """The length of the frame starting `data`, or None while fewer than 6 bytes are there."""
    if len(data) >= 1 and bytes(data[:1]) in (b"\x01", b"\x02"):
        raise HEPError(f"{_version_word(bytes(data))} is not supported: OpenSIPS must send HEP version 3",
                       hint="trace_start uri=hep:HOST:PORT;transport=udp;version=3")
    if len(data) < HEADER.size:
        return None
    magic, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise HEPError(f"not a HEPv3 frame (starts with {_version_word(bytes(data))})")
    if length < HEADER.size:
        raise HEPError(f"HEPv3 frame declares {length} bytes, less than its own header")
    return length


def decode(data: bytes) -> HEPPacket:
    """One whole frame (a UDP datagram, or one frame cut from a TCP stream)."""
    length = frame_length(data)
    if length is None:
        raise HEPError(f"HEPv3 frame too short ({len(data)} bytes)")
    if length != len(data):
        raise HEPError(f"HEPv3 frame declares {length} bytes but {len(data)} arrived")
    fields: dict[int, bytes] = {}
    view = memoryview(data)
    offset = HEADER.size
    while offset < length:
        if length - offset < CHUNK.size:
            raise HEPError(f"HEPv3 chunk header cut at byte {offset}")
        vendor, kind, size = CHUNK.unpack_from(view, offset)
        if size < CHUNK.size or offset + size > length:
            raise HEPError(f"HEPv3 chunk {vendor}/{kind} at byte {offset} declares {size} bytes, "
                           f"{length - offset} left")
        if vendor == 0:
            fields[kind] = bytes(view[offset + CHUNK.size: offset + size])
        offset += size
    return _packet(fields)


def _uint(fields: dict[int, bytes], kind: int, name: str, default: int | None = None) -> int:
    raw = fields.get(kind)
    if raw is None:
        if default is None:
            raise HEPError(f"HEPv3 frame without {name}")
        return default
    fmt = _UINT.get(len(raw))
    if fmt is None:
        raise HEPError(f"HEPv3 {name} has {len(raw)} bytes")
    return struct.unpack(fmt, raw)[0]


def _address(fields: dict[int, bytes], family: int, v4: int, v6: int, name: str) -> str:
    kind, size = (v4, 4) if family == FAMILY_IPV4 else (v6, 16)
    raw = fields.get(kind)
    if raw is None or len(raw) != size:
        raise HEPError(f"HEPv3 frame without a valid {name} address")
    return str(ipaddress.ip_address(raw))


def _packet(fields: dict[int, bytes]) -> HEPPacket:
    family = _uint(fields, IP_FAMILY, "IP family")
    if family not in (FAMILY_IPV4, FAMILY_IPV6):
        raise HEPError(f"HEPv3 IP family {family} is neither IPv4 (2) nor IPv6 (10)")
    payload = fields.get(PAYLOAD)
    if payload is None:
        if PAYLOAD_COMPRESSED in fields:
            raise HEPError("compressed HEPv3 payloads are not supported")
        raise HEPError("HEPv3 frame without a payload")
    return HEPPacket(
        family=family,
        proto=_uint(fields, IP_PROTO, "IP protocol"),
        src=_address(fields, family, IPV4_SRC, IPV6_SRC, "source"),
        dst=_address(fields, family, IPV4_DST, IPV6_DST, "destination"),
        src_port=_uint(fields, SRC_PORT, "source port"),
        dst_port=_uint(fields, DST_PORT, "destination port"),
        ts_sec=_uint(fields, TS_SEC, "timestamp", 0),
        ts_usec=_uint(fields, TS_USEC, "timestamp microseconds", 0),
        proto_type=_uint(fields, PROTO_TYPE, "protocol type", 0),
        payload=payload,
        capture_id=_uint(fields, CAPTURE_ID, "capture id", 0),
        correlation_id=fields.get(CORRELATION_ID, b"").decode("utf-8", "replace"),
    )


def encode(packet: HEPPacket) -> bytes:
    """The frame for `packet` (the demo's tracer and the tests speak it)."""
    v4 = packet.family == FAMILY_IPV4
    src = ipaddress.ip_address(packet.src).packed
    dst = ipaddress.ip_address(packet.dst).packed
    chunks = [
        _chunk(IP_FAMILY, struct.pack("!B", packet.family)),
        _chunk(IP_PROTO, struct.pack("!B", packet.proto)),
        _chunk(IPV4_SRC if v4 else IPV6_SRC, src),
        _chunk(IPV4_DST if v4 else IPV6_DST, dst),
        _chunk(SRC_PORT, struct.pack("!H", packet.src_port)),
        _chunk(DST_PORT, struct.pack("!H", packet.dst_port)),
        _chunk(TS_SEC, struct.pack("!I", packet.ts_sec)),
        _chunk(TS_USEC, struct.pack("!I", packet.ts_usec)),
        _chunk(PROTO_TYPE, struct.pack("!B", packet.proto_type)),
        _chunk(CAPTURE_ID, struct.pack("!I", packet.capture_id)),
    ]
    if packet.correlation_id:
        chunks.append(_chunk(CORRELATION_ID, packet.correlation_id.encode()))
    chunks.append(_chunk(PAYLOAD, packet.payload))
    body = b"".join(chunks)
    total = HEADER.size + len(body)
    if total > MAX_FRAME:
        raise HEPError(f"HEPv3 frame of {total} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(MAGIC, total) + body


def _chunk(kind: int, payload: bytes) -> bytes:
    return CHUNK.pack(0, kind, CHUNK.size + len(payload)) + payload


class HEPStreamDecoder:
    """Frames from a TCP byte stream (hep_tcp): feed bytes, get whole packets.

    A malformed frame raises HEPError; the stream cannot be resynchronised after it (HEP has
    no frame marker to search for safely), so the caller closes that connection."""

    def __init__(self, max_buffer: int = 4 * MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_buffer = max_buffer

    def feed(self, data: bytes) -> list[HEPPacket]:
        self._buffer += data
        if len(self._buffer) > self._max_buffer:
            raise HEPError(f"more than {self._max_buffer} bytes buffered without a whole HEPv3 frame")
        packets = []
        while True:
            length = frame_length(self._buffer)
            if length is None or len(self._buffer) < length:
                return packets
            frame = bytes(self._buffer[:length])
            del self._buffer[:length]
            packets.append(decode(frame))

    @property
    def pending(self) -> int:
        return len(self._buffer)
