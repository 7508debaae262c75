"""ng replies (already str-decoded by codec) -> frozen models.

Tolerant of missing keys (older/newer daemons add and drop fields), strict
about shape: a reply that is not the documented structure is a ProtocolError.
"""

from __future__ import annotations

from typing import Any

from console.errors import ProtocolError
from console.model import InterfacePorts, Media, MediaLeg, MediaSession, MediaStream, MediaTotals, PortUsage


def to_int(value: Any, default: int = 0) -> int:
    """ng numbers arrive as ints or as strings ("1378", "0.000000")."""
    number = to_float(value)
    return default if number is None else int(number)


def to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"ng reply: {what} is a {type(value).__name__}, expected a dictionary")
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(value))


def parse_query(callid: str, reply: dict[str, Any]) -> MediaSession:
    """ng `query` reply -> MediaSession with one leg per tag."""
    tags = _dict(reply.get("tags", {}), "'tags'")
    legs = tuple(_leg(key, _dict(value, f"tag {key!r}")) for key, value in tags.items())
    return MediaSession(
        callid=callid,
        created=to_int(reply.get("created")),
        last_signal=to_int(reply.get("last signal")),
        legs=legs,
        detailed=True,
    )


def _leg(key: str, tag: dict[str, Any]) -> MediaLeg:
    # An unanswered offer shows its other side as "<untagged 1>" with tag "": keep the key, it is unique.
    medias = tuple(_media(_dict(m, "media")) for m in _list(tag.get("medias")))
    return MediaLeg(tag=str(tag.get("tag") or key), medias=medias, label=str(tag.get("label", "")))


def _media(media: dict[str, Any]) -> Media:
    return Media(
        index=to_int(media.get("index")),
        type=str(media.get("type", "audio")),
        protocol=str(media.get("protocol", "")),
        codec=str(media.get("codec", "")),
        streams=tuple(_stream(_dict(s, "stream")) for s in _list(media.get("streams"))),
        flags=_strs(media.get("flags")),
    )


def _stream(stream: dict[str, Any]) -> MediaStream:
    flags = _strs(stream.get("flags"))
    stats = stream.get("stats") if isinstance(stream.get("stats"), dict) else {}
    return MediaStream(
        local_address=str(stream.get("local address", "")),
        local_port=to_int(stream.get("local port")),
        endpoint=_endpoint(stream.get("endpoint")),
        rtcp="RTCP" in flags and "RTP" not in flags,
        packets=to_int(stats.get("packets")),
        bytes=to_int(stats.get("bytes")),
        errors=to_int(stats.get("errors")),
        last_packet=to_int(stream.get("last packet")),
        flags=flags,
    )


def _endpoint(value: Any) -> str:
    if not isinstance(value, dict) or not value.get("address"):
        return ""
    address = str(value["address"])
    if ":" in address:  # IPv6
        address = f"[{address}]"
    return f"{address}:{to_int(value.get('port'))}"


# statistics section/key -> MediaTotals field
_TOTALS_KEYS = {
    "owned_sessions": ("currentstatistics", "sessionsown"),
    "foreign_sessions": ("currentstatistics", "sessionsforeign"),
    "total_sessions": ("currentstatistics", "sessionstotal"),
    "packets_per_s_user": ("currentstatistics", "packetrate_user"),
    "packets_per_s_kernel": ("currentstatistics", "packetrate_kernel"),
    "errors_per_s": ("currentstatistics", "errorrate"),
    "uptime_s": ("totalstatistics", "uptime"),
    "relayed_packets_user": ("totalstatistics", "relayedpackets_user"),
    "relayed_packets_kernel": ("totalstatistics", "relayedpackets_kernel"),
    "relayed_errors": ("totalstatistics", "relayedpacketerrors"),
    "managed_sessions": ("totalstatistics", "managedsessions"),
    "rejected_sessions": ("totalstatistics", "rejectedsessions"),
    "timeout_sessions": ("totalstatistics", "timeoutsessions"),
}
_FLOAT_FIELDS = {"packets_per_s_user", "packets_per_s_kernel", "errors_per_s"}


def parse_statistics(stats: dict[str, Any]) -> MediaTotals:
    """ng `statistics` (the inner dict) or CLI `list jsonstats` -> MediaTotals (strings -> numbers)."""
    stats = _dict(stats, "'statistics'")
    if not isinstance(stats.get("currentstatistics"), dict):
        raise ProtocolError("ng statistics reply has no 'currentstatistics' section")
    values: dict[str, Any] = {}
    for field_name, (section, key) in _TOTALS_KEYS.items():
        block = stats.get(section)
        number = to_float(block.get(key)) if isinstance(block, dict) else None
        if number is not None:
            values[field_name] = number if field_name in _FLOAT_FIELDS else int(number)
    raw = {k: v for k, v in stats.items() if k in ("currentstatistics", "totalstatistics")}
    return MediaTotals(raw=raw, **values)


def parse_statistics_ports(stats: dict[str, Any]) -> PortUsage:
    """The `interfaces` list of ng `statistics` -> PortUsage (a fallback when the CLI is unreachable)."""
    interfaces = []
    for item in _list(_dict(stats, "'statistics'").get("interfaces")):
        if not isinstance(item, dict) or not isinstance(item.get("ports"), dict):
            continue
        ports = item["ports"]
        interfaces.append(InterfacePorts(
            name=str(item.get("name", "")),
            address=str(item.get("address", "")),
            used=to_int(ports.get("used")),
            total=to_int(ports.get("totals")),
            port_min=to_int(ports.get("min")),
            port_max=to_int(ports.get("max")),
            last_port=to_int(ports.get("last")),
        ))
    return port_usage(tuple(interfaces))


def port_usage(interfaces: tuple[InterfacePorts, ...]) -> PortUsage:
    lows = [i.port_min for i in interfaces if i.port_min]
    highs = [i.port_max for i in interfaces if i.port_max]
    return PortUsage(interfaces=interfaces, port_min=min(lows, default=0), port_max=max(highs, default=0))
