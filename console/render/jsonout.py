"""JSON views of a snapshot and of a diagnose run.

Strings are emitted unchanged (JSON escapes what it must); the JSON is a
contract for users' scripts, so keys only ever get added.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Mapping

from ..config import Thresholds
from .topology import topology_dict
from ..model import (SIP_REPLY_CLASSES, Call, CallQuality, CheckResult, Contact, Dialog, HostState, MediaSession,
                     ProcessInfo, SignallingState, Snapshot, call_quality, overall_status)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def contact_dict(c: Contact) -> dict[str, Any]:
    return {
        "aor": c.aor,
        "contact": c.contact,
        "contact_id": c.contact_id,
        "socket": c.socket,
        "transport": c.transport,
        "ws": c.ws,
        "user_agent": c.user_agent,
        "expires": c.expires if c.expires is not None else c.expires_state,
        "flags": c.flags,
        "cflags": list(c.cflags),
        "received": c.received,
        "path": c.path,
        "callid": c.callid,
        "cseq": c.cseq,
        "q": c.q,
        "state": c.state,
    }


def dialog_dict(d: Dialog, now: float) -> dict[str, Any]:
    return {
        "id": d.id,
        "callid": d.callid,
        "state": d.state,
        "state_name": d.state_name,
        "from_uri": d.from_uri,
        "to_uri": d.to_uri,
        "caller_tag": d.caller.tag,
        "callee_tag": d.callee.tag,
        "caller_transport": d.caller_transport,
        "callee_transport": d.callee_transport,
        "caller_bind_addr": d.caller.bind_addr,
        "callee_bind_addr": d.callee.bind_addr,
        "start": d.start,
        "duration": d.duration(now),
        "caller_media_ports": list(d.caller.media_ports),
        "callee_media_ports": list(d.callee.media_ports),
        "profiles": [{k: v} for k, v in d.profiles],
    }


def session_dict(s: MediaSession) -> dict[str, Any]:
    return {
        "callid": s.callid,
        "created": s.created,
        "deleted": s.deleted,
        "ports": list(s.ports),
        # RTPengine's RTCP-derived statistics per SSRC (MOS 1.0-5.0, ms, %); null: not queried over ng
        "ssrc_quality": _plain(s.quality) if s.quality is not None else None,
        "legs": [
            {
                "tag": leg.tag,
                "protocol": leg.protocol,
                "codec": leg.codec,
                "ports": list(leg.ports),
                "packets": leg.packets,
                "errors": leg.errors,
                "medias": _plain(leg.medias),
            }
            for leg in s.legs
        ],
    }


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def quality_dict(q: CallQuality) -> dict[str, Any]:
    """calls[].quality: the derived state and its figures (worst leg), null where unknown.
    packets_a / _b and last_packet_age_a_s / _b_s: what RTPengine received from the caller (a)
    and from the callee (b)."""
    a, b = q.caller, q.callee
    return {
        "state": q.state.value,
        "reason": q.reason,
        "mos": _rounded(q.mos),
        "mos_min": _rounded(q.mos_min),
        "jitter_ms": _rounded(q.jitter_ms),
        "loss_pct": _rounded(q.loss_pct),
        "rtt_ms": _rounded(q.rtt_ms),
        "packets_a": a.packets if a else None,
        "packets_b": b.packets if b else None,
        "last_packet_age_a_s": _rounded(a.last_packet_age_s) if a else None,
        "last_packet_age_b_s": _rounded(b.last_packet_age_s) if b else None,
        "silent_directions": list(q.silent_directions),
        "as_of": q.as_of,  # when RTPengine was asked (epoch s); null when not queried
    }


def call_dict(c: Call, quality: CallQuality | None = None) -> dict[str, Any]:
    return {
        "callid": c.callid,
        "bridge": c.bridge,
        "has_media": c.has_media,
        "has_dialog": c.has_dialog,
        # false: the other side's list is unknown (failed, not fetched, partial): has_* false is no finding
        "dialog_known": c.has_dialog or c.dialog_known,
        "media_known": c.has_media or c.media_known,
        "state": c.dialog.state_name if c.dialog else None,
        "ports": list(c.media.ports) if c.media else [],
        "quality": quality_dict(quality) if quality is not None else None,
    }


def sip_dict(sig: SignallingState) -> dict[str, Any] | None:
    """overview.sip: the reply-class counters (since OpenSIPS started) and, when two samples were
    taken, the window between them (counts, per second, shares)."""
    counters = sig.overview.sip
    if counters is None:
        return None
    window = sig.sip_window
    return {
        "sl_replies": dict(zip(SIP_REPLY_CLASSES, counters.sl_replies)),
        "tm_transactions": dict(zip(SIP_REPLY_CLASSES[1:], counters.tm_transactions)),
        "final_replies": {cls: counters.finals(cls) for cls in SIP_REPLY_CLASSES[1:]},
        "retransmissions": counters.retransmissions,
        "timeouts_inv": counters.timeouts_inv,
        "timeouts": counters.timeouts,
        "window": None if window is None else {
            "seconds": round(window.seconds, 3),
            "final_replies": dict(window.finals),
            "per_s": {cls: _rounded(window.per_s(cls), 2) for cls in window.finals},
            "share_pct": {cls: _rounded(window.share(cls)) for cls in window.finals},
            "retransmissions": window.retransmissions,
            "timeouts_inv": window.timeouts_inv,
        },
    }


def snapshot_dict(snap: Snapshot, plugin_parts: Mapping[str, Any] | None = None, *,
                  thresholds: Thresholds | None = None) -> dict[str, Any]:
    """`plugin_parts`: each plugin's own part (its `json_part` hook), under "plugins".
    `thresholds`: the configured ones, for the calls' quality state (default: the defaults)."""
    sig, media = snap.signalling, snap.media
    th = thresholds or Thresholds()
    overview: dict[str, Any] = {}
    if sig is not None:
        overview["opensips"] = _plain(sig.overview) | {"shm_percent": sig.overview.shm_percent}
        overview["sip"] = sip_dict(sig)
    if media is not None:
        overview["rtpengine"] = _plain(media.totals) | {
            "ng_ok": media.ng_ok, "cli_ok": media.cli_ok, "sessions": len(media.sessions),
            "interface_quality": _plain(media.interface_quality) if media.interface_quality is not None else None,
        }
    ports = media.ports if media else None
    return {
        "collected_at": snap.collected_at,
        "sources": {name: {"ok": s.ok, "error": s.error or None, "elapsed_ms": round(s.elapsed_ms, 2)}
                    for name, s in snap.sources.items()},
        "discovery": list(snap.discovery),
        "overview": overview,
        "registrations": [contact_dict(c) for c in sig.contacts] if sig and sig.contacts is not None else None,
        "registrations_note": sig.contacts_note if sig else None,
        # what `registrations` is: "full"/"events" complete, "events-partial" only part of what is
        # registered (counts over it are not totals), "polling", "none"; "" when not said
        "registrations_mode": sig.contacts_mode if sig else None,
        "dialogs": [dialog_dict(d, snap.collected_at) for d in sig.dialogs] if sig and sig.dialogs is not None else None,
        "relays": _plain(sig.relays) if sig else None,
        "media": {
            "sessions": [session_dict(s) for s in media.sessions] if media else None,
            "ports": {
                "used": ports.used if ports else None,
                "total": ports.total if ports else None,
                "min": ports.port_min if ports else None,
                "max": ports.port_max if ports else None,
                "interfaces": _plain(ports.interfaces) if ports else [],
            },
        },
        "calls": [call_dict(c, call_quality(c, snap.collected_at, mos_poor=th.mos_poor,
                                            silent_after_s=th.silent_after_s)) for c in snap.calls],
        "errors": list((sig.errors if sig else ()) + (media.errors if media else ())),
        "host": host_dict(snap.host) if snap.host else None,
        "plugins": {name: _plain(part) for name, part in (plugin_parts or {}).items()},
        "topology": topology_dict(snap),  # RTPengine sets + clusterer as OpenSIPS sees them (#16); null: not collected
    }


def host_dict(host: HostState) -> dict[str, Any]:
    """Daemons as found (a denied or suspect process says why), kernel modules, host errors.
    Process settings stay out: a parsed opensips.cfg may hold database passwords."""
    def process(p: ProcessInfo) -> dict[str, Any]:
        return {"pid": p.pid, "name": p.name, "user": p.user, "cmdline": list(p.cmdline),
                "error": p.error, "suspect": p.suspect}

    return {
        "hostname": host.hostname,
        "rtpengine": [process(p) for p in host.rtpengine],
        "opensips": [process(p) for p in host.opensips],
        "kernel_modules": _plain(host.kernel_modules),
        "errors": list(host.errors),
    }


def diagnose_dict(results: list[CheckResult], *, elapsed_ms: float, host: str, version: str) -> dict[str, Any]:
    return {
        "status": overall_status([r.status for r in results]).value,
        "checks": [
            {
                "id": r.id,
                "status": r.status.value,
                "summary": r.summary,
                "evidence": _plain(r.evidence),
                "remedy": r.remedy,
                "elapsed_ms": r.elapsed_ms,
            }
            for r in results
        ],
        "elapsed_ms": round(elapsed_ms, 2),
        "host": host,
        "version": version,
    }


def dumps(data: Any, *, pretty: bool) -> str:
    # ensure_ascii: C1 controls and BiDi overrides must not reach a terminal raw;
    # the decoded JSON still holds the exact original strings.
    def encode(value: Any) -> str:
        return json.dumps(value, indent=2 if pretty else None, ensure_ascii=True, default=str)

    if not pretty:  # the same text, the contact list encoded ~4x faster (render/fastjson.py, #18)
        from .fastjson import dumps_spliced

        fast = dumps_spliced(data, "registrations", encode)
        if fast is not None:
            return fast
    return encode(data)
