"""OpenSIPS Event Interface: live usrloc/dialog changes instead of full dumps.

At 100k contacts `ul_dump` takes minutes and holds usrloc locks (OpenSIPS 3.4),
so the console subscribes to E_UL_CONTACT_* / E_DLG_STATE_CHANGED and keeps its
own tables (events_store.py).  This module has two halves:

* codec (I/O-free): `decode_datagram`, `EventStreamDecoder`, `parse_event`,
  `contact_from_event` -> frozen event dataclasses.  Shapes follow the real
  captures in tests/fixtures/opensips-3.4/events/.
* `EventListener` (asyncio): binds loopback UDP (event_datagram) or TCP
  (event_stream), subscribes through an MI client, re-subscribes on a timer,
  feeds the stores and tells the UI when it must fall back to polling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol, Union

from console.errors import OpsError, ProtocolError, RemoteError
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


# --------------------------------------------------------------------------- listener


class MIClientLike(Protocol):
    async def call(self, method: str, params: Any = None) -> Any: ...


class EventSink(Protocol):
    """What the listener feeds (events_store.EventRouter implements it)."""

    def apply(self, event: Event) -> Any: ...


# JSON-RPC "Method not found": no event_subscribe on this OpenSIPS.  400 "Bad parameter
# value": the socket scheme has no transport module (event_datagram / event_stream
# not loaded) or the event does not exist (usrloc / dialog not loaded).
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # ~8k queued events (kernel counts ~2 KiB per small datagram)
UDP_DRAIN_MAX = 2000
UNAVAILABLE_CODES = {-32601: "method not found", 400: "bad parameter value"}
TRANSPORT_MODULES = {"udp": "event_datagram", "tcp": "event_stream"}


@dataclass(frozen=True, slots=True)
class SubscriptionFailure:
    event: str
    socket: str
    reason: str


class EventListener:
    """Receive OpenSIPS events on loopback and feed a sink (the stores).

    Usage: ``listener = EventListener(mi, sink); await listener.start()``; then
    read `active` / `fallback_reason`.  When `fallback_reason` is set the UI
    must go back to bounded polling (counters + small dumps).  OpenSIPS 3.4
    drops newer subscribers when an older one expires, so we use one long
    expiry and re-subscribe the same socket at 2/3 of it.
    """

    def __init__(
        self,
        mi: MIClientLike,
        sink: EventSink,
        *,
        events: Iterable[str] = REGISTRATION_SUBSCRIPTIONS + DIALOG_SUBSCRIPTIONS,
        transports: tuple[str, ...] = ("udp", "tcp"),
        expire: int = 3600,
        resubscribe_after: float | None = None,
        retry_after: float = 30.0,
        verify_every: float | None = 60.0,
        host: str = "127.0.0.1",
        subscribe_method: str = "event_subscribe",
        clock: Callable[[], float] = time.time,
        target: str = "",
        on_event: Callable[[Event, Any], None] | None = None,
    ) -> None:
        unknown = [t for t in transports if t not in TRANSPORT_MODULES]
        if unknown or not transports:
            raise ValueError(f"transports must be among {sorted(TRANSPORT_MODULES)}, got {transports!r}")
        try:
            loopback = ipaddress.IPv4Address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"event listener must bind an IPv4 loopback address, got {host!r}")
        self.mi = mi
        self.sink = sink
        self.events = tuple(events)
        self.transports = transports
        self.expire = expire
        self.resubscribe_after = resubscribe_after if resubscribe_after is not None else expire * 2 / 3
        self.retry_after = retry_after
        self.verify_every = verify_every
        self.host = host
        self.subscribe_method = subscribe_method
        self.clock = clock
        self.target = target
        self.on_event = on_event

        self.transport = ""  # the one in use
        self.socket = ""  # "udp:127.0.0.1:PORT" as given to OpenSIPS
        self.subscribed: tuple[str, ...] = ()
        self.failures: tuple[SubscriptionFailure, ...] = ()
        self.fallback_reason = ""
        self.last_error = ""
        self.since: float | None = None  # events are complete from here on
        self.first_event_at: float | None = None
        self.last_event_at: float | None = None
        self.events_received = 0
        self.protocol_errors = 0
        self.subscriptions_sent = 0
        self.dropped_subscriptions = 0  # found missing by verify()
        self.coverage_gap_at: float | None = None  # when verify() found events may have been missed
        self._udp: socket.socket | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._tcp_conns: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._timer: asyncio.Task | None = None
        self._partial: list[str] = []  # subscribed before a failed _subscribe_all
        self._closed = False

    # -- state the UI reads

    @property
    def active(self) -> bool:
        return bool(self.subscribed) and not self._closed

    @property
    def fallback(self) -> bool:
        return bool(self.fallback_reason)

    def status_line(self) -> str:
        if self.fallback_reason:
            return f"events unavailable: {self.fallback_reason}"
        if not self.active:
            return f"events not active{': ' + self.last_error if self.last_error else ''}"
        since = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "?"
        line = f"live via {self.socket}: {self.events_received} events since {since}"
        lost = self.udp_drops()
        if lost:
            line += f"; {lost} events LOST (socket buffer full): tables may be stale, re-sync"
        return line

    # -- lifecycle

    async def start(self) -> bool:
        """Bind and subscribe (trying transports in order).  Never raises OpsError.

        False with `fallback_reason` set: events are unavailable on this
        OpenSIPS, poll instead.  False without it: MI unreachable for now
        (`last_error`), call start() again later."""
        if self.active:
            return True
        if self._closed:
            raise RuntimeError("EventListener was closed; create a new one")
        self.fallback_reason, self.failures = "", ()
        reasons: list[str] = []
        refused: list[str] = []
        for transport in self.transports:
            try:
                await self._bind(transport)
            except OSError as exc:
                reasons.append(f"cannot listen on {transport} {self.host}: {exc.strerror or exc}")
                continue
            if await self._subscribe_all():
                self.since = self.clock()
                self._timer = asyncio.get_running_loop().create_task(self._resubscribe_loop())
                return True
            if not self.failures:  # transport/timeout problem: retrying another socket won't help
                await self._drop_partial()
                await self._unbind()
                break
            refused.append(transport)
            await self._unbind()
        if refused:
            reasons.append(self._refusal_text(refused))
        if reasons:
            self.fallback_reason = "; ".join(reasons) + " — falling back to bounded polling"
        return False

    async def aclose(self) -> None:
        """Unsubscribe (expire 0) and release the sockets.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        for event in self.subscribed:
            try:
                await self._subscribe(event, expire=0)
            except RemoteError as exc:
                self.last_error = f"unsubscribe {event}: {exc}"
            except OpsError as exc:  # MI unreachable: don't wait a timeout per event
                self.last_error = f"unsubscribe {event}: {exc}"
                break
        self.subscribed = ()
        await self._unbind()

    async def resubscribe(self) -> bool:
        """Refresh every subscription (also re-adds ones OpenSIPS dropped)."""
        ok = await self._subscribe_all()
        if ok and self.since is None:
            self.since = self.clock()
        return ok

    # -- subscription

    async def verify(self) -> tuple[str, ...]:
        """Ask `subscribers_list` whether our subscriptions still exist and
        re-subscribe the missing ones (OpenSIPS 3.4 may drop ours when an
        older subscriber of the same event expires).  Returns what was missing."""
        if not self.active:
            return ()
        try:
            present = subscribed_events(await self.mi.call("subscribers_list"), self.socket)
        except OpsError as exc:
            self.last_error = f"subscribers_list: {exc}"
            return ()
        missing = tuple(e for e in self.subscribed if e not in present)
        for event in missing:
            try:
                await self._subscribe(event, expire=self.expire)
            except OpsError as exc:
                self.last_error = f"re-subscribe {event}: {exc}"
        if missing:
            # events were lost meanwhile (e.g. OpenSIPS restarted): the UI should re-sync counts/dumps
            self.dropped_subscriptions += len(missing)
            self.coverage_gap_at = self.clock()
        return missing

    async def _subscribe_all(self) -> bool:
        subscribed: list[str] = []
        failures: list[SubscriptionFailure] = []
        self._partial = subscribed
        for event in self.events:
            try:
                await self._subscribe(event, expire=self.expire)
            except RemoteError as exc:
                if getattr(exc, "code", None) not in UNAVAILABLE_CODES:
                    self.last_error = f"subscribe {event}: {exc}"
                    return False
                failures.append(SubscriptionFailure(event, self.socket, _remote_reason(exc)))
            except OpsError as exc:  # transport/timeout/protocol: keep state, retry later
                self.last_error = f"subscribe {event}: {exc}"
                return False
            else:
                subscribed.append(event)
        self.failures = tuple(failures)
        self.subscribed = tuple(subscribed)
        if subscribed:
            self.last_error = ""
        elif failures:
            self.last_error = "OpenSIPS refused every event subscription: " + ", ".join(
                sorted({f.reason for f in failures}))
        return bool(subscribed)

    async def _drop_partial(self) -> None:
        """Best effort: don't leave OpenSIPS sending to a socket we are about to close."""
        for event in self._partial:
            try:
                await self._subscribe(event, expire=0)
            except OpsError:
                break  # MI is failing anyway; the subscription expires on its own
        self._partial = []

    async def _subscribe(self, event: str, *, expire: int) -> None:
        self.subscriptions_sent += 1
        await self.mi.call(self.subscribe_method, {"event": event, "socket": self.socket, "expire": expire})

    def _refusal_text(self, transports: list[str]) -> str:
        codes = sorted({f.reason for f in self.failures})
        if any(reason.startswith("-32601") for reason in codes):
            return f"this OpenSIPS has no MI command {self.subscribe_method!r} ({', '.join(codes)})"
        modules = " or ".join(TRANSPORT_MODULES[t] for t in transports)
        return (f"OpenSIPS refused event subscriptions on {'/'.join(transports)} ({', '.join(codes)}): "
                f"load {modules} (and usrloc/dialog for their events)")

    async def _resubscribe_loop(self) -> None:
        monotonic = asyncio.get_running_loop().time
        due = monotonic() + self.resubscribe_after
        while not self._closed:
            wait = due - monotonic()
            if self.verify_every:
                wait = min(wait, self.verify_every)
            await asyncio.sleep(max(0.0, wait))
            if monotonic() < due:
                await self.verify()
                continue
            ok = await self.resubscribe()
            due = monotonic() + (self.resubscribe_after if ok else min(self.retry_after, self.resubscribe_after))

    # -- sockets

    async def _bind(self, transport: str) -> None:
        loop = asyncio.get_running_loop()
        if transport == "udp":
            # a plain non-blocking socket drained in a loop: asyncio's datagram transport
            # reads one datagram per loop iteration, and a registration burst then
            # overflows the kernel buffer while the UI keeps the loop busy
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, 0))
                _grow_receive_buffer(sock, UDP_RECEIVE_BUFFER)
                loop.add_reader(sock.fileno(), self._drain_udp)
            except BaseException:
                sock.close()
                raise
            self._udp = sock
            port = sock.getsockname()[1]
        else:
            self._tcp = await asyncio.start_server(self._serve_stream, self.host, 0)
            port = self._tcp.sockets[0].getsockname()[1]
        self.transport = transport
        self.socket = f"{transport}:{self.host}:{port}"

    async def _unbind(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            # close the connections rather than cancel their handlers: on Python 3.11 a
            # cancelled client_connected_cb task is logged as "Exception in callback"
            for writer in self._tcp_conns.values():
                writer.close()
            if self._tcp_conns:
                _, stuck = await asyncio.wait(list(self._tcp_conns), timeout=1.0)
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tcp_conns[task] = writer
        decoder = EventStreamDecoder()
        try:
            while chunk := await reader.read(65536):
                for obj in decoder.feed(chunk):
                    self._handle(obj)
                for error in decoder.take_errors():
                    self._protocol_error(error)
        except (ConnectionError, OSError) as exc:
            self.last_error = f"event stream connection lost: {exc}"
        finally:
            if task is not None:
                self._tcp_conns.pop(task, None)
            writer.close()

    def _drain_udp(self) -> None:
        for _ in range(UDP_DRAIN_MAX):  # bounded: let the UI breathe during a storm
            try:
                data = self._udp.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.last_error = f"event socket error: {exc}"
                return
            self.handle_datagram(data)

    def udp_drops(self) -> int | None:
        """Datagrams the kernel dropped for our socket (buffer full): events lost,
        so the tables are stale.  Linux /proc/net/udp; None when unknown."""
        if self._udp is None:
            return None
        return kernel_udp_drops(*self._udp.getsockname()[:2])

    # -- event handling

    def handle_datagram(self, data: bytes) -> None:
        try:
            obj = decode_datagram(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        self._handle(obj)

    def _handle(self, obj: dict) -> None:
        now = self.clock()
        try:
            event = parse_event(obj, now=now, target=self.target)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        self.events_received += 1
        self.last_event_at = now
        if self.first_event_at is None:
            self.first_event_at = now
        try:
            change = self.sink.apply(event)
        except OpsError as exc:
            self.last_error = f"applying {event.name}: {exc}"
            return
        if self.on_event is not None:
            try:
                self.on_event(event, change)
            except Exception as exc:  # a UI callback bug must not kill the event socket
                self.last_error = f"event callback failed: {type(exc).__name__}: {exc}"

    def _protocol_error(self, error: ProtocolError) -> None:
        self.protocol_errors += 1
        self.last_error = f"bad event from OpenSIPS: {error}"


def subscribed_events(subscribers_list: Any, our_socket: str) -> set[str]:
    """Event names that have `our_socket` among their subscribers (subscribers_list reply)."""
    events = subscribers_list.get("Events") if isinstance(subscribers_list, dict) else None
    if not isinstance(events, list):
        raise ProtocolError("subscribers_list reply has no 'Events' list")
    found: set[str] = set()
    for entry in events:
        if not isinstance(entry, dict):
            continue
        subscribers = entry.get("Subscribers")
        if isinstance(subscribers, list) and any(
                isinstance(s, dict) and s.get("socket") == our_socket for s in subscribers):
            found.add(str(entry.get("name", "")))
    return found


def _grow_receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask for a big receive buffer: beyond net.core.rmem_max only root may (SO_RCVBUFFORCE)."""
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            return
        except OSError:
            continue


def kernel_udp_drops(host: str, port: int, proc_net: str = "/proc/net/udp") -> int | None:
    """`drops` of the UDP socket bound to host:port (last column of /proc/net/udp)."""
    local = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    try:
        with open(proc_net, encoding="ascii") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 12 and fields[1] == local:
                    return int(fields[-1])
    except (OSError, ValueError):
        return None
    return None


def _remote_reason(exc: RemoteError) -> str:
    code = getattr(exc, "code", None)
    return f"{code} {UNAVAILABLE_CODES.get(code, 'error')}"
