"""RTPengine ng protocol codec (I/O-free).

A datagram is `<cookie> <bencoded dict>` both ways.  Replies are decoded once,
here: bencode byte strings become `str` (UTF-8, undecodable bytes replaced),
so nothing above this module ever sees `bytes`.
"""

from __future__ import annotations

import secrets
from typing import Any

import bencodepy

from console.errors import ProtocolError

MAX_COOKIE_LEN = 64

LEGACY_HINT = (
    "this is RTPengine's -u/--listen-udp listener; OpenSIPS's rtpengine module and "
    "opsconsole need the ng listener -n/--listen-ng"
)


class LegacyListenerError(ProtocolError):
    """The peer answered `<cookie> E8`: the legacy (non-ng) UDP control protocol."""


def new_cookie() -> str:
    """A fresh cookie: RTPengine replays its cached reply for a reused one."""
    return secrets.token_hex(8)


def encode(cookie: str, message: dict[str, Any]) -> bytes:
    if not cookie or " " in cookie or len(cookie) > MAX_COOKIE_LEN:
        raise ProtocolError(f"invalid ng cookie {cookie!r}: must be 1-{MAX_COOKIE_LEN} characters without spaces")
    if not isinstance(message, dict):
        raise ProtocolError(f"an ng message must be a dictionary, got {type(message).__name__}")
    try:
        body = bencodepy.encode(message)
    except Exception as exc:  # bencode.py raises plain errors for unsupported types
        raise ProtocolError(f"cannot bencode ng message: {exc}") from None
    return cookie.encode("ascii", "replace") + b" " + body


def split_cookie(datagram: bytes) -> tuple[str, bytes]:
    """Cookie and payload; raises ProtocolError when there is no cookie."""
    cookie, sep, payload = datagram.partition(b" ")
    if not sep or not cookie or len(cookie) > MAX_COOKIE_LEN:
        raise ProtocolError(f"ng reply without a '<cookie> ' prefix ({_preview(datagram)})")
    return cookie.decode("ascii", "replace"), payload


def decode(datagram: bytes) -> tuple[str, dict[str, Any]]:
    """`<cookie> <bencoded dict>` -> (cookie, dict with str keys and values)."""
    cookie, payload = split_cookie(datagram)
    if payload.strip().startswith(b"E") and payload.strip()[1:].isdigit():
        raise LegacyListenerError(
            f"the peer answered with legacy error {payload.strip().decode('ascii')!r}", hint=LEGACY_HINT
        )
    try:
        value = to_str(bencodepy.decode(payload))
    except (bencodepy.BencodeDecodeError, ValueError, TypeError, IndexError, KeyError, RecursionError):
        raise ProtocolError(f"ng reply is not valid bencode ({_preview(payload)})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"ng reply is a bencoded {type(value).__name__}, expected a dictionary")
    return cookie, value


def to_str(value: Any) -> Any:
    """bytes -> str recursively (dict keys too); ints and others unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {to_str(k): to_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_str(v) for v in value]
    return value


def _preview(data: bytes, limit: int = 40) -> str:
    text = data[:limit].decode("ascii", "backslashreplace")
    return f"{len(data)} bytes: {text!r}{'...' if len(data) > limit else ''}"
