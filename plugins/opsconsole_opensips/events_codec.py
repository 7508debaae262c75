"""OpenSIPS Event Interface, the I/O-free half: bytes -> frozen event dataclasses.

`decode_datagram` (event_datagram: one JSON-RPC notification per UDP datagram),
`EventStreamDecoder` (event_stream: objects back to back on TCP), `parse_event`
and `contact_from_event`.  Shapes follow the real captures in
tests/fixtures/opensips-3.4/events/.  No sockets, no event loop: the listener
(events_listener.py) does the I/O.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Union

from console.errors import ProtocolError
from console.model import Contact, DIALOG_STATES

from .parse import shared_text

# --------------------------------------------------------------------------- event types

CONTACT_EVENTS = {
    "E_UL_CONTACT_INSERT": "insert",
    "E_UL_CONTACT_UPDATE": "update",
    "E_UL_CONTACT_DELETE": "delete",
}
AOR_EVENTS = {"E_UL_AOR_INSERT": "insert", "E_UL_AOR_DELETE": "delete"}
DIALOG_EVENT = "E_DLG_STATE_CHANGED"

REGISTRATION_SUBSCRIPTIONS = ("E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE", "E_UL_CONTACT_DELETE")
DIALOG_SUBSCRIPTIONS = (DIALOG_EVENT,)


@dataclass(frozen=True, slots=True)
class ContactEvent:
    kind: Literal["insert", "update", "delete"]
    aor: str
    contact: Contact  # expires = seconds left at parse time
    expires_at: int  # absolute unix time as sent; 0 = permanent
    domain: str = "location"  # usrloc table
    bflags: int = 0
    attr: str = ""
    latency: int = 0
    shtag: str = ""

    @property
    def name(self) -> str:
        return f"E_UL_CONTACT_{self.kind.upper()}"


@dataclass(frozen=True, slots=True)
class AorEvent:
    kind: Literal["insert", "delete"]
    aor: str
    domain: str = "location"

    @property
    def name(self) -> str:
        return f"E_UL_AOR_{self.kind.upper()}"


@dataclass(frozen=True, slots=True)
class DialogStateEvent:
    id: str  # "h_entry.h_id", same as dlg_list `ID`
    callid: str
    from_tag: str
    to_tag: str | None  # None until the callee answered (e.g. 1->5 on a 404)
    old_state: int
    new_state: int
    db_id: str = ""

    name = DIALOG_EVENT

    @property
    def ended(self) -> bool:
        return self.new_state == 5

    @property
    def transition(self) -> str:
        old = DIALOG_STATES.get(self.old_state, str(self.old_state))
        new = DIALOG_STATES.get(self.new_state, str(self.new_state))
        return f"{old} -> {new}"


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A well-formed notification for an event we do not model (kept, not fatal)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)


Event = Union[ContactEvent, AorEvent, DialogStateEvent, OtherEvent]

# --------------------------------------------------------------------------- codec

MAX_EVENT_BYTES = 256 * 1024  # an event is ~450 bytes; anything this big is garbage
_RESYNC_MARKER = b'{"jsonrpc"'
_WHITESPACE = b" \t\r\n"
_STRUCTURE = re.compile(rb'["{}\[\]]')
_IN_STRING = re.compile(rb'["\\]')
_JSON = json.JSONDecoder()


def decode_datagram(data: bytes) -> dict:
    """One event_datagram datagram (one JSON-RPC notification, no framing)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"event datagram must be bytes, got {type(data).__name__}")
    return _load_object(bytes(data), "event datagram")


def _load_object(raw: bytes, what: str) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} is not JSON ({len(raw)} bytes, starts {raw[:40]!r})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is JSON but not an object ({type(obj).__name__})")
    return obj


class EventStreamDecoder:
    """Incremental splitter for event_stream: JSON objects back to back, no delimiter.

    Objects may arrive several per read or split anywhere (also inside a UTF-8
    sequence).  Whole objects at the buffer head go straight through the C JSON
    decoder; an unfinished one is handed to a scanner that only tracks
    string/escape state and nesting depth and keeps its position across feeds
    (linear total work), then to `json.loads` once complete.  Garbage is recorded as a ProtocolError (see
    `take_errors`) and skipped up to the next `{"jsonrpc"`.
    """

    def __init__(self, max_object_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_object_bytes = max_object_bytes
        self._buf = bytearray()
        self._pos = 0  # scan position inside the current object
        self._depth = 0
        self._in_string = False
        self._resyncing = False
        self._errors: list[ProtocolError] = []
        self.error_count = 0
        self.objects_decoded = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_errors(self) -> list[ProtocolError]:
        errors, self._errors = self._errors, []
        return errors

    def feed(self, data: bytes) -> list[dict]:
        self._buf += data
        objects: list[dict] = []
        while self._buf:
            if self._resyncing and not self._resync():
                break
            if self._pos == 0 and not self._start_object():
                continue
            if self._pos == 0 and self._decode_run(objects):
                continue
            end = self._scan()
            if end is None:
                if len(self._buf) > self.max_object_bytes:
                    self._garbage(f"event stream object exceeds {self.max_object_bytes} bytes")
                    continue
                break
            raw = bytes(self._buf[:end])
            del self._buf[:end]
            self._reset_scan()
            try:
                objects.append(_load_object(raw, "event stream object"))
                self.objects_decoded += 1
            except ProtocolError as exc:
                self._record(exc)
                self._buf[:0] = raw[1:]  # a real object may hide inside the garbage
                self._resyncing = True
        return objects

    def _decode_run(self, objects: list[dict]) -> bool:
        """Fast path: let the C JSON decoder take whole objects off the buffer head.

        Stops at the first object it cannot decode (split or garbage); the
        scanner then takes over that object, so a slowly arriving one is never
        re-parsed from its start on every read.  True when it consumed bytes."""
        try:
            text = self._buf.decode("utf-8")
        except UnicodeDecodeError as exc:  # split sequence at the tail, or garbage later on
            text = self._buf[: exc.start].decode("utf-8")
        index, length = 0, len(text)
        while index < length and text[index] == "{":
            try:
                obj, end = _JSON.raw_decode(text, index)
            except (ValueError, RecursionError):
                break
            if len(text[index:end]) > self.max_object_bytes:
                self._record(ProtocolError(f"event stream object exceeds {self.max_object_bytes} bytes"))
            else:
                objects.append(obj)
                self.objects_decoded += 1
            index = end
            while index < length and text[index] in " \t\r\n":
                index += 1
        if not index:
            return False
        del self._buf[: index if text.isascii() else len(text[:index].encode("utf-8"))]
        return True

    def _start_object(self) -> bool:
        """Skip whitespace; True when the buffer starts an object (or is empty)."""
        stripped = len(self._buf) - len(self._buf.lstrip(_WHITESPACE))
        if stripped:
            del self._buf[:stripped]
        if not self._buf or self._buf[:1] == b"{":
            return True
        self._garbage(f"event stream has garbage before an object (starts {bytes(self._buf[:40])!r})")
        return False

    def _scan(self) -> int | None:
        """Advance the scanner; return the end offset of a complete object or None."""
        buf, pos = self._buf, self._pos
        while True:
            if self._in_string:
                match = _IN_STRING.search(buf, pos)
                if match is None:
                    self._pos = len(buf)
                    return None
                if match.group() == b"\\":
                    if match.end() >= len(buf):  # escape split across reads: rescan it next time
                        self._pos = match.start()
                        return None
                    pos = match.end() + 1
                    continue
                self._in_string = False
                pos = match.end()
                continue
            match = _STRUCTURE.search(buf, pos)
            if match is None:
                self._pos = len(buf)
                return None
            char, pos = match.group(), match.end()
            if char == b'"':
                self._in_string = True
            elif char == b"{" and self._depth > 0:
                start = match.start()
                if len(buf) - start < len(_RESYNC_MARKER):  # can't tell yet: wait for more bytes
                    self._pos = start
                    return None
                if buf.startswith(_RESYNC_MARKER, start):
                    # a new notification began inside an unfinished one: the bytes before are garbage
                    self._record(ProtocolError(f"event stream object truncated after {start} bytes"))
                    del buf[:start]
                    self._reset_scan()
                    pos = 0
                    continue
                self._depth += 1
            elif char in (b"{", b"["):
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth <= 0:
                    return pos

    def _garbage(self, message: str) -> None:
        self._record(ProtocolError(message))
        del self._buf[:1]
        self._reset_scan()
        self._resyncing = True

    def _resync(self) -> bool:
        """Drop bytes up to the next `{"jsonrpc"`; False while none is buffered yet."""
        index = self._buf.find(_RESYNC_MARKER)
        if index < 0:
            keep = len(_RESYNC_MARKER) - 1  # the marker may be split across reads
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            return False
        del self._buf[:index]
        self._resyncing = False
        return True

    def _reset_scan(self) -> None:
        self._pos = 0
        self._depth = 0
        self._in_string = False

    def _record(self, error: ProtocolError) -> None:
        self.error_count += 1
        if len(self._errors) < 100:  # bounded: a firehose of garbage must not grow memory
            self._errors.append(error)


def parse_event(obj: Any, *, now: float | None = None, target: str = "",
                aliases: Mapping[str, str] | None = None) -> Event:
    """A decoded JSON-RPC notification -> typed event.

    `aliases` maps custom methods (socket `tcp:host:port/<method>`) to event names.
    `now` converts the absolute `expires` of contact events to seconds left.
    """
    if not isinstance(obj, dict):
        raise ProtocolError(f"event is not a JSON object ({type(obj).__name__})")
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError("event has no method name (not a JSON-RPC notification)")
    name = (aliases or {}).get(method, method)
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError(f"{name} event params are not an object ({type(params).__name__})")
    if name in CONTACT_EVENTS:
        return _contact_event(name, params, now, target)
    if name in AOR_EVENTS:
        fields = _Fields(name, params)
        return AorEvent(kind=AOR_EVENTS[name], aor=fields.text("aor", required=True),
                        domain=fields.text("domain", default="location"))
    if name == DIALOG_EVENT:
        return _dialog_event(params)
    return OtherEvent(name=name, params=dict(params))


def contact_from_event(params: Mapping[str, Any], *, now: float | None = None, target: str = "",
                       event: str = "contact event") -> Contact:
    """usrloc contact event params -> Contact (expires = seconds left at `now`)."""
    if not isinstance(params, Mapping):
        raise ProtocolError(f"{event} params are not an object ({type(params).__name__})")
    return _contact_fields(_Fields(event, params), now, target)[0]


def _contact_event(name: str, params: Mapping[str, Any], now: float | None, target: str) -> ContactEvent:
    fields = _Fields(name, params)
    contact, expires_at = _contact_fields(fields, now, target)
    return ContactEvent(
        kind=CONTACT_EVENTS[name], aor=contact.aor, contact=contact, expires_at=expires_at,
        domain=fields.text("domain", default="location"), bflags=fields.integer("bflags"),
        attr=fields.text("attr"), latency=fields.integer("latency"), shtag=fields.text("shtag"),
    )


def _contact_fields(fields: "_Fields", now: float | None, target: str) -> tuple[Contact, int]:
    expires_at = fields.integer("expires")
    bound = fields.text("socket")
    uri = fields.text("uri", required=True)
    transport = transport_of(bound, uri)
    seconds_left, expires_state = expires_left(expires_at, time.time() if now is None else now)
    # user agent, socket, q, transport: shared with every other contact that repeats them
    contact = Contact(
        aor=fields.text("aor", required=True),
        contact=uri,
        socket=shared_text(bound),
        transport=shared_text(transport),
        ws=transport in ("ws", "wss"),
        received=fields.text("received"),
        path=fields.text("path"),
        user_agent=shared_text(fields.text("user_agent")),
        expires=seconds_left,
        expires_state=expires_state,
        callid=fields.text("callid"),
        cseq=fields.integer("cseq"),
        q=shared_text(q_text(fields.integer("qval", default=-1))),
        target=target,
    )
    return contact, expires_at


def _dialog_event(params: Mapping[str, Any]) -> DialogStateEvent:
    fields = _Fields(DIALOG_EVENT, params)
    return DialogStateEvent(
        id=fields.text("id", required=True, numeric=True),
        callid=fields.text("callid", required=True),
        from_tag=fields.text("from_tag"),
        to_tag=fields.text("to_tag", default=None),
        old_state=fields.integer("old_state", required=True),
        new_state=fields.integer("new_state", required=True),
        db_id=fields.text("db_id", numeric=True),
    )


def expires_left(expires_at: int, now: float) -> tuple[int | None, str]:
    """Absolute usrloc expiry -> (seconds left, expires_state) as Contact wants them."""
    if expires_at == 0:
        return None, "permanent"
    left = expires_at - int(now)  # OpenSIPS counts in whole seconds too
    return (left, "") if left > 0 else (None, "expired")


def q_text(qval: int) -> str:
    """usrloc q (0..1000, -1 = unset) -> the text ul_dump shows ("" when unset)."""
    if qval < 0:
        return ""
    if qval >= 1000:
        return "1"
    return f"0.{qval:03d}".rstrip("0").rstrip(".") if qval else "0"


def transport_of(bound: str, uri: str) -> str:
    """Transport from the usrloc socket ("udp:127.0.0.1:5060"), else the URI's ;transport=."""
    proto = bound.split(":", 1)[0].lower() if ":" in bound else ""
    if proto:
        return proto
    match = re.search(r";transport=([A-Za-z]+)", uri)
    return match.group(1).lower() if match else ""


class _Fields:
    """Typed access to event params with operator-readable errors."""

    def __init__(self, event: str, params: Mapping[str, Any]) -> None:
        self.event = event
        self.params = params

    def text(self, key: str, *, required: bool = False, default: str | None = "", numeric: bool = False) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if numeric and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # ids are strings in the captures; tolerate a numeric one
        if not isinstance(value, str):
            raise ProtocolError(f"{self.event} event: {key!r} should be a string, got {type(value).__name__}")
        if required and not value:
            raise ProtocolError(f"{self.event} event: {key!r} is empty")
        return value

    def integer(self, key: str, *, required: bool = False, default: int = 0) -> int:
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{self.event} event: {key!r} should be an integer, got {type(value).__name__}")
        return value

    def _get(self, key: str, required: bool) -> Any:
        value = self.params.get(key)
        if value is None and required:
            raise ProtocolError(f"{self.event} event is missing {key!r}")
        return value
