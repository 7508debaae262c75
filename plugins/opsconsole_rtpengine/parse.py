"""ng replies (already str-decoded by codec) -> frozen models.

Tolerant of missing keys (older/newer daemons add and drop fields), strict
about shape: a reply that is not the documented structure is a ProtocolError.
"""

from __future__ import annotations

from typing import Any

from console.errors import ProtocolError
from console.model import (InterfacePorts, InterfaceQuality, Media, MediaLeg, MediaSession, MediaStream, MediaTotals,
                           MosSample, PortUsage, SsrcQuality)


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


def parse_query(callid: str, reply: dict[str, Any], queried_at: float | None = None) -> MediaSession:
    """ng `query` (or `delete`) reply -> MediaSession with one leg per tag and the RTCP-derived
    statistics per SSRC (`quality`: () when RTPengine has none, never a MOS of 0)."""
    tags = _dict(reply.get("tags", {}), "'tags'")
    legs = tuple(_leg(key, _dict(value, f"tag {key!r}")) for key, value in tags.items())
    totals = reply.get("totals") if isinstance(reply.get("totals"), dict) else {}
    rtcp = totals.get("RTCP") if isinstance(totals.get("RTCP"), dict) else None
    return MediaSession(
        callid=callid,
        created=to_int(reply.get("created")),
        last_signal=to_int(reply.get("last signal")),
        legs=legs,
        detailed=True,
        quality=parse_ssrc_stats(reply.get("SSRC", {})),
        rtcp_packets=to_int(rtcp.get("packets")) if rtcp is not None else None,
        queried_at=queried_at,
    )


# ng units: MOS x10 as an integer, jitter ms, round-trip times us, packet loss %
def _mos_sample(value: Any) -> MosSample | None:
    if not isinstance(value, dict):
        return None
    mos = to_float(value.get("MOS"))
    rtt, rtt_leg = to_float(value.get("round-trip time")), to_float(value.get("round-trip time leg"))
    return MosSample(
        mos=mos / 10.0 if mos else None,  # 0: RTPengine could not compute one (no RTT for both legs)
        jitter_ms=to_float(value.get("jitter")),
        loss_pct=to_float(value.get("packet loss")),
        rtt_ms=rtt / 1000.0 if rtt else None,
        rtt_leg_ms=rtt_leg / 1000.0 if rtt_leg else None,
        reported_at=to_int(value.get("reported at")),
    )


def _optional_int(value: Any) -> int | None:
    number = to_float(value)
    return None if number is None else int(number)


def parse_ssrc_stats(ssrc: Any) -> tuple[SsrcQuality, ...]:
    """The top-level "SSRC" dictionary of a query/delete reply (keyed by the SSRC in decimal)."""
    entries = []
    for key, value in _dict(ssrc, "'SSRC'").items():
        if not isinstance(value, dict) or not str(key).isdigit():
            continue
        progression = value.get("MOS progression") if isinstance(value.get("MOS progression"), dict) else {}
        average = _mos_sample(value.get("average MOS"))
        samples = to_int(value["average MOS"].get("samples")) if average is not None else 0
        entries.append(SsrcQuality(
            ssrc=int(key),
            average=average,
            lowest=_mos_sample(value.get("lowest MOS")),
            highest=_mos_sample(value.get("highest MOS")),
            samples=samples,
            cumulative_loss=_optional_int(value.get("cumulative loss")),
            packets=_optional_int(value.get("packets")),
            bytes=_optional_int(value.get("bytes")),
            last_seq=_optional_int(value.get("last RTP seq")),
            progression=tuple(sample for item in _list(progression.get("entries"))
                              if (sample := _mos_sample(item)) is not None),
            progression_interval_s=to_int(progression.get("interval")),
        ))
    return tuple(entries)


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
        ssrc=_optional_int(stream.get("SSRC")),
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
    return MediaTotals(raw=raw, **values, **_quality_totals(stats))


def _quality_totals(stats: dict[str, Any]) -> dict[str, Any]:
    """The global `mos` section (every version) and `voip_metrics` (12.4+): averages over every
    sample since start; no sample yet -> None (RTPengine prints 0 then: no MOS is not a MOS of 0)."""
    out: dict[str, Any] = {}
    mos = stats.get("mos") if isinstance(stats.get("mos"), dict) else {}
    samples = _optional_int(mos.get("mos_samples_total"))
    if samples is not None:
        out["mos_samples"] = samples
        if samples > 0:
            out["mos_average"] = to_float(mos.get("mos_average"))
    voip = stats.get("voip_metrics") if isinstance(stats.get("voip_metrics"), dict) else {}
    for field_name, prefix in (("jitter_average_ms", "jitter"), ("loss_average_pct", "packetloss")):
        if to_int(voip.get(f"{prefix}_samples_total")) > 0:
            out[field_name] = to_float(voip.get(f"{prefix}_average"))
    return out


def parse_statistics_interface_quality(stats: dict[str, Any]) -> tuple[InterfaceQuality, ...] | None:
    """`interfaces[].voip_metrics` of ng `statistics` (RTPengine 12.4+); None when no interface has them."""
    found = []
    for item in _list(_dict(stats, "'statistics'").get("interfaces")):
        if not isinstance(item, dict) or not isinstance(item.get("voip_metrics"), dict):
            continue
        voip = item["voip_metrics"]

        def average(prefix: str) -> float | None:
            return to_float(voip.get(f"{prefix}_average")) if to_int(voip.get(f"{prefix}_samples_total")) else None

        rtt = average("rtt_e2e")
        found.append(InterfaceQuality(name=str(item.get("name", "")), address=str(item.get("address", "")),
                                      mos=average("mos"), loss_pct=average("packetloss"),
                                      jitter_ms=average("jitter"), rtt_ms=rtt / 1000.0 if rtt is not None else None,
                                      samples=_optional_int(voip.get("mos_samples_total"))))
    return tuple(found) if found else None


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
