"""SDP bodies in the shapes of the lab's dialogs (sipp on UDP/TCP, a WebRTC-like client on WS).

`offer_sdp`/`answer_sdp` build what the endpoints send; `rewrite` is what the
simulated RTPengine does to them (new ports, protocol per the ng flags).
"""

from __future__ import annotations

import re

CRLF = "\r\n"

_SIPP_OFFER = (
    "v=0", "o={user} 53655765 2353687637 IN IP4 127.0.0.1", "s=sipp-lab", "c=IN IP4 127.0.0.1", "t=0 0",
    "m=audio {port} RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv",
)
_SIPP_ANSWER = (
    "v=0", "o=user1 53655765 2353687637 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
    "m=audio {port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
)
_WEBRTC = (
    "v=0", "o=- 204696050194438788 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "a=extmap-allow-mixed", "a=msid-semantic: WMS labstream",
    "m=audio {port} UDP/TLS/RTP/SAVPF 111 0 8 101", "c=IN IP4 127.0.0.1", "a=rtcp:{port} IN IP4 127.0.0.1",
    "a=candidate:253646764 1 udp 2122260223 127.0.0.1 {port} typ host generation 0 network-id 1",
    "a=ice-ufrag:Owce", "a=ice-pwd:g7f3LPdsvYHmgTdckB7JkNd3", "a=ice-options:trickle",
    "a=fingerprint:sha-256 FD:86:04:11:4C:D3:89:07:E9:6D:78:36:78:FC:14:89:8C:B6:F2:BD:D2:48:DB:06:33:84:12:24:DF:E1:FD:82",
    "a=setup:{setup}", "a=mid:0", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=sendrecv",
    "a=msid:labstream labtrack", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
    "a=ssrc:2315043686 cname:uuj3o5g3l0phlo4p",
)


def _body(lines: tuple[str, ...], **values) -> str:
    return CRLF.join(lines).format(**values) + CRLF


def offer_sdp(transport: str, user: str, port: int) -> str:
    if transport == "ws":
        return _body(_WEBRTC, port=port, setup="actpass")
    return _body(_SIPP_OFFER, user=user, port=port)


def answer_sdp(transport: str, user: str, port: int) -> str:
    if transport == "ws":
        return _body(_WEBRTC, port=port, setup="active")
    return _body(_SIPP_ANSWER, port=port)


# ng flags per direction, from the lab's opensips.cfg (the OpenSIPS WebSocket tutorial)
_AVP = {"transport-protocol": "RTP/AVP", "replace": ["session-connection", "origin"], "ICE": "remove"}
OFFER_FLAGS = {
    ("ws", "ws"): {"ICE": "force-relay", "DTLS": "passive"},
    ("ws", "udp"): _AVP,
    ("udp", "ws"): {"transport-protocol": "UDP/TLS/RTP/SAVPF", "ICE": "force"},
    ("udp", "udp"): _AVP,
}
ANSWER_FLAGS = {
    ("ws", "ws"): {"ICE": "force-relay", "DTLS": "passive"},
    ("ws", "udp"): {"transport-protocol": "UDP/TLS/RTP/SAVPF", "ICE": "force"},
    ("udp", "ws"): _AVP,
    ("udp", "udp"): _AVP,
}


def _ws(transport: str) -> str:
    return "ws" if transport == "ws" else "udp"


def offer_flags(kind: tuple[str, str]) -> dict:
    return dict(OFFER_FLAGS[(_ws(kind[0]), _ws(kind[1]))])


def answer_flags(kind: tuple[str, str]) -> dict:
    return dict(ANSWER_FLAGS[(_ws(kind[0]), _ws(kind[1]))])


_M_LINE = re.compile(r"^m=(\w+) (\d+) (\S+) (.*)$")


def media_lines(body: str) -> list[tuple[int, str]]:
    """(port, protocol) of every m= line."""
    found = []
    for line in body.splitlines():
        match = _M_LINE.match(line)
        if match:
            found.append((int(match.group(2)), match.group(3)))
    return found


def rewrite(body: str, port: int, protocol: str | None = None) -> str:
    """What a media relay sends on: its own port on the m= line, RTCP on port+1."""
    out = []
    for line in body.splitlines():
        match = _M_LINE.match(line)
        if match:
            proto = protocol or match.group(3)
            out.append(f"m={match.group(1)} {port} {proto} {match.group(4)}")
            continue
        if line.startswith(("a=rtcp:", "a=candidate:", "a=rtcp-mux")) or line == "":
            continue
        out.append(line)
    out.append(f"a=rtcp:{port + 1}")
    return CRLF.join(out) + CRLF
