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
        value = decode_value(payload)
    except (ValueError, IndexError, RecursionError):
        raise ProtocolError(f"ng reply is not valid bencode ({_preview(payload)})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"ng reply is a bencoded {type(value).__name__}, expected a dictionary")
    return cookie, value


# Decoding is ours, not bencode.py's: a screenful of `query` replies, `statistics` and `list`
# arrive every poll, and bencode.py's decoder plus a second pass turning bytes into str took
# ~160 us per query reply (~5 % of the console's CPU on the Calls screen); this single pass
# takes ~95 us.  tests/test_rtpengine_codec.py checks it against bencode.py on random values.
MAX_DEPTH = 64  # ng replies nest 5 levels; deeper is garbage (and must not exhaust the stack)
_E, _I, _D, _L = b"eidl"


def decode_value(payload: bytes) -> Any:
    """One bencoded value -> Python, byte strings as str (UTF-8, undecodable bytes replaced).
    Raises ValueError (or IndexError when cut short) on anything that is not exactly one value."""
    data = bytes(payload)
    value, end = _value(data, 0, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the bencoded value")
    return value


def _value(data: bytes, i: int, depth: int) -> tuple[Any, int]:
    c = data[i]
    if c == _D:
        return _dict(data, i + 1, depth + 1)
    if c == _L:
        return _list(data, i + 1, depth + 1)
    if c == _I:
        end = data.index(b"e", i)
        return _int(data[i + 1:end]), end + 1
    return _string(data, i)


def _string(data: bytes, i: int) -> tuple[str, int]:
    colon = data.index(b":", i)
    length = data[i:colon]
    if not length.isdigit():  # also rejects "-1", "+1", " 1" and "1_0", which int() would take
        raise ValueError(f"bad string length {length[:20]!r}")
    start = colon + 1
    end = start + int(length)
    if end > len(data):
        raise ValueError("string cut short")
    return data[start:end].decode("utf-8", "replace"), end


def _int(digits: bytes) -> int:
    if not digits or not (digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit())):
        raise ValueError(f"bad integer {digits[:20]!r}")
    return int(digits)


def _dict(data: bytes, i: int, depth: int) -> tuple[dict[str, Any], int]:
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    out: dict[str, Any] = {}
    string, value = _string, _value
    while data[i] != _E:
        key, i = string(data, i)
        if 48 <= data[i] <= 57:  # most values are strings: skip _value's dispatch
            out[key], i = string(data, i)
        else:
            out[key], i = value(data, i, depth)
    return out, i + 1


def _list(data: bytes, i: int, depth: int) -> tuple[list[Any], int]:
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    out: list[Any] = []
    append, string, value = out.append, _string, _value
    while data[i] != _E:
        item, i = string(data, i) if 48 <= data[i] <= 57 else value(data, i, depth)
        append(item)
    return out, i + 1


def _preview(data: bytes, limit: int = 40) -> str:
    text = data[:limit].decode("ascii", "backslashreplace")
    return f"{len(data)} bytes: {text!r}{'...' if len(data) > limit else ''}"
