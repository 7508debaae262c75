"""A small SIP registrar on loopback (UDP and TCP) for the demo platform, so real SIP (sipp) feeds DemoState.

REGISTER adds, refreshes or removes contacts through `DemoState.register` (so MI ul_dump and
the E_UL_* events stay consistent); OPTIONS gets 200; every other method 501.  Parsing is
I/O-free (`parse_request`); bytes are decoded as UTF-8 with surrogateescape, so every string
is stored exactly as the UA sent it.  A datagram that is not a SIP request is dropped and
counted — the endpoint never stops for bad input.

Registrar behaviour follows the lab's opensips.cfg: min_expires 10, max_expires 7200,
default 3600; the AoR is the To user (use_domain 0) on 3.4 and user@domain on 4.0.  A REGISTER
for a simulated contact's exact URI takes that contact over (the simulation lets go of it).

    python -m opsconsole_demo --sip          # prints "SIP registrar: udp:127.0.0.1:PORT ..."
    cd tests/fixtures/sipp && sipp -sf register.xml -inf users_udp.csv -m 5 127.0.0.1:PORT -i 127.0.0.1
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from console.errors import ProtocolError
from .state import DemoState

log = logging.getLogger(__name__)

MAX_MESSAGE = 65535  # bytes; anything larger is dropped unread
MAX_HEADERS = 500
MAX_CONTACTS = 64  # bindings per REGISTER
MIN_EXPIRES, MAX_EXPIRES, DEFAULT_EXPIRES = 10, 7200, 3600  # lab opensips.cfg registrar params
COMPACT_NAMES = {"m": "contact", "i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length",
                 "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
                 "u": "allow-events", "r": "refer-to", "b": "referred-by", "x": "session-expires"}
MULTI_VALUE = {"via", "contact"}  # comma-separated lists we need to split
_LWS = " \t"
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


class SipError(ProtocolError):
    """A request we can answer, but only with an error status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"SIP {status} {reason}")
        self.status, self.reason = status, reason


@dataclass(frozen=True, slots=True)
class SipRequest:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]  # (lower-case full name, value) in arrival order, lists split
    body: bytes = b""

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def first(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact header value: `"display" <uri>;params`."""

    uri: str
    display: str = ""
    params: tuple[tuple[str, str | None], ...] = ()  # header params (outside <>), names lower-case

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)

    @property
    def expires(self) -> int | None:
        return small_int(self.param("expires"))


def small_int(text: str | None) -> int | None:
    """A non-negative decimal below 2**32 (SIP's Expires/CSeq range), else None."""
    text = (text or "").strip(_LWS)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 2**32 else None


# ------------------------------------------------------------------ parsing (I/O-free)

def decode(data: bytes) -> str:
    """Bytes to str that encode back to the same bytes (surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def parse_request(data: bytes) -> SipRequest:
    """Parse one SIP request; raises ProtocolError for anything that is not one."""
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"SIP message of {len(data)} bytes is above {MAX_MESSAGE}")
    head, body = _split_head(data)
    lines = _unfold(decode(head).replace("\r\n", "\n").split("\n"))
    if not lines:
        raise ProtocolError("empty SIP message")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].upper().startswith("SIP/") or not _TOKEN.fullmatch(parts[0]):
        raise ProtocolError(f"not a SIP request line: {lines[0][:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise ProtocolError(f"more than {MAX_HEADERS} SIP headers")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip(_LWS).lower()
        if not colon or not _TOKEN.fullmatch(name):
            raise ProtocolError(f"bad SIP header line: {line[:80]!r}")
        name = COMPACT_NAMES.get(name, name)
        value = value.strip(_LWS)
        values = split_list(value) if name in MULTI_VALUE else [value]
        headers.extend((name, v) for v in values)
    for required in ("via", "from", "to", "call-id", "cseq"):
        if not any(key == required for key, _ in headers):
            raise ProtocolError(f"SIP request without {required.title()} header")
    return SipRequest(parts[0].upper(), parts[1], tuple(headers), body)


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Head and body at the first blank line (CRLF or bare LF endings)."""
    data = data.lstrip(b"\r\n")
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    if not ends:
        return data.rstrip(b"\r\n"), b""
    index, length = min(ends)
    return data[:index], data[index + length:]


def _unfold(lines: list[str]) -> list[str]:
    """RFC 3261 7.3.1: a line starting with SP/HT continues the previous header."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] = out[-1].rstrip(_LWS) + " " + line.strip(_LWS)
        elif line:
            out.append(line)
    return out


def split_list(value: str) -> list[str]:
    """Split a comma-separated header list, ignoring commas inside quotes and <>."""
    items, start, quoted, angle, escaped = [], 0, False, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            escaped = ch == "\\"
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            items.append(value[start:i])
            start = i + 1
    items.append(value[start:])
    return [item.strip(_LWS) for item in items if item.strip(_LWS)]


def parse_name_addr(value: str) -> Binding:
    """`"display" <uri>;params`, `display <uri>;params` or `uri;params` (params then belong to the header)."""
    value = value.strip(_LWS)
    display = ""
    if value.startswith('"'):
        end = _closing_quote(value)
        display, value = value[1:end], value[end + 1:].lstrip(_LWS)
    if "<" in value:
        before, _, rest = value.partition("<")
        uri, closed, params = rest.partition(">")
        if not closed:
            raise SipError(400, "Bad Request (unclosed <)")
        display = display or before.strip(_LWS)
    else:
        uri, _, params = value.partition(";")
        params = ";" + params if params else ""
    if not uri.strip(_LWS):
        raise SipError(400, "Bad Request (empty URI)")
    return Binding(uri.strip(_LWS), display, _params(params))


def _closing_quote(value: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i
        i += 1
    raise SipError(400, "Bad Request (unclosed quote)")


def _params(text: str) -> tuple[tuple[str, str | None], ...]:
    out = []
    for item in text.split(";")[1:]:
        name, eq, value = item.partition("=")
        if name.strip(_LWS):
            out.append((name.strip(_LWS).lower(), value.strip(_LWS) if eq else None))
    return tuple(out)


def uri_user_host(uri: str) -> tuple[str, str]:
    """'sip:1000@127.0.0.1:5060;x=y' -> ('1000', '127.0.0.1')."""
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        raise SipError(400, "Bad Request (To is not a sip: URI)")
    user, at, hostport = rest.partition("@")
    if not at or not user:
        raise SipError(400, "Bad Request (To URI has no user)")
    hostport = re.split(r"[;?>]", hostport, maxsplit=1)[0]
    if hostport.startswith("["):  # IPv6 reference
        host = hostport[: hostport.find("]") + 1]
    else:
        host = hostport.partition(":")[0]
    return user.partition(";")[0], host.lower()


def cseq_number(request: SipRequest) -> int:
    number = small_int((request.first("cseq") or "").split(" ")[0])
    if number is None or number >= 2**31:
        raise SipError(400, "Bad Request (CSeq)")
    return number


def effective_expires(binding: Binding, expires_header: str | None) -> int:
    """Contact ;expires=, else Expires:, else the default; clamped like the lab registrar."""
    expires = binding.expires
    if expires is None:
        expires = small_int(expires_header)
    if expires is None:
        expires = DEFAULT_EXPIRES
    return 0 if expires == 0 else min(max(expires, MIN_EXPIRES), MAX_EXPIRES)


# ------------------------------------------------------------------ the registrar

class SipRegistrar:
    """Turns parsed requests into DemoState changes and reply bytes."""

    def __init__(self, state: DemoState, *, socket: str = "udp:127.0.0.1:5060", on_change: Callable[[], None] | None = None,
                 stats: Counter[str] | None = None):
        self.state = state
        self.socket = socket  # usrloc shows the socket the REGISTER arrived on
        self.transport = socket.split(":", 1)[0]
        self.on_change = on_change
        self.to_tag = secrets.token_hex(6)
        self.stats: Counter[str] = stats if stats is not None else Counter()

    def handle(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        """Reply bytes for one datagram, or None if it was dropped."""
        self.stats["received"] += 1
        try:
            request = parse_request(data)
        except ProtocolError as exc:
            self.stats["dropped"] += 1
            log.debug("demo sip: dropped a datagram from %s: %s", source, exc)
            return None
        if request.method == "ACK":  # for a final reply of ours: never answered
            return None
        try:
            status, reason, extra = self._dispatch(request)
        except SipError as exc:
            self.stats["rejected"] += 1
            status, reason, extra = exc.status, exc.reason, []
        self.stats[f"replied_{status}"] += 1
        return self.reply(request, status, reason, extra)

    def _dispatch(self, request: SipRequest) -> tuple[int, str, list[tuple[str, str]]]:
        if request.method == "REGISTER":
            self.stats["register"] += 1
            return 200, "OK", self._register(request)
        if request.method == "OPTIONS":
            self.stats["options"] += 1
            return 200, "OK", [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER")]
        return 501, "Not Implemented", []

    def _register(self, request: SipRequest) -> list[tuple[str, str]]:
        aor = self.aor_of(request.first("to") or "")
        callid, cseq = request.first("call-id") or "", cseq_number(request)
        user_agent = request.first("user-agent") or ""
        expires_header = request.first("expires")
        contacts = request.all("contact")
        if len(contacts) > MAX_CONTACTS:
            raise SipError(400, f"Bad Request (more than {MAX_CONTACTS} contacts)")
        if contacts == ["*"]:
            if (expires_header or "").strip(_LWS) != "0":
                raise SipError(400, "Bad Request (* contact needs Expires: 0)")
            self.state.unregister_all(aor)
        elif "*" in contacts:
            raise SipError(400, "Bad Request (* contact mixed with others)")
        else:
            bindings = [parse_name_addr(value) for value in contacts]  # all or nothing
            for binding in bindings:
                self.state.register(aor, binding.uri, user_agent=user_agent, callid=callid, cseq=cseq,
                                    expires=effective_expires(binding, expires_header),
                                    transport=self.transport, socket=self.socket)
        if self.on_change is not None:
            self.on_change()
        now = self.state.now
        return [("Contact", f"<{c.uri}>;expires={max(0, c.expires_at - now)}") for c in self.state.contacts_of(aor)]

    def aor_of(self, to_header: str) -> str:
        user, host = uri_user_host(parse_name_addr(to_header).uri)
        if self.state.version.startswith("4") and host != "127.0.0.1":
            return f"{user}@{host}"  # the demo's own domain is implied (DemoState.aor_key)
        return user

    def reply(self, request: SipRequest, status: int, reason: str, extra: list[tuple[str, str]]) -> bytes:
        to = request.first("to") or ""
        if ";tag=" not in to.lower().replace(" ", ""):
            to = f"{to};tag={self.to_tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in request.all("via")]
        lines += [f"From: {request.first('from')}", f"To: {to}", f"Call-ID: {request.first('call-id')}",
                  f"CSeq: {request.first('cseq')}"]
        lines += [f"{name}: {value}" for name, value in extra]
        lines += ["Server: opsconsole-demo", "Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode("utf-8", "surrogateescape")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, registrar: SipRegistrar | None) -> None:
        self.registrar = registrar  # set right after the bind (the socket name goes into it)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.registrar is None:  # not bound yet
            return
        try:
            reply = self.registrar.handle(data, addr)
        except Exception:  # a bug here must not take the endpoint down
            self.registrar.stats["dropped"] += 1
            log.warning("demo sip: request from %s failed", addr, exc_info=True)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc) -> None:  # e.g. ICMP port unreachable for a reply
        log.debug("demo sip: %s", exc)


_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


async def read_stream_message(reader: asyncio.StreamReader) -> bytes | None:
    """One SIP message from a stream (head up to the blank line, then Content-Length bytes); None at EOF."""
    head = b""
    while not head.strip(b"\r\n"):  # skip CRLF keep-alives (RFC 5626)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip(b"\r\n"):
                raise ProtocolError("SIP stream closed inside a message") from None
            return None
        except asyncio.LimitOverrunError:
            raise ProtocolError(f"SIP message head above {MAX_MESSAGE} bytes") from None
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    if len(head) + length > MAX_MESSAGE:
        raise ProtocolError(f"SIP message of {len(head) + length} bytes is above {MAX_MESSAGE}")
    try:
        return head + await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("SIP stream closed inside a message body") from None


class SipEndpoint:
    """SIP on 127.0.0.1: UDP on a free port, TCP on the same port number when it is free too."""

    def __init__(self, state: DemoState, *, host: str = "127.0.0.1", port: int = 0,
                 on_change: Callable[[], None] | None = None) -> None:
        if host != "127.0.0.1":
            raise ValueError("the demo SIP endpoint listens on loopback only")
        self.host, self.port, self.tcp_port = host, port, 0
        self.state, self.on_change = state, on_change
        self.stats: Counter[str] = Counter()  # both transports
        self.registrar: SipRegistrar | None = None
        self.tcp_registrar: SipRegistrar | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def tcp_address(self) -> tuple[str, int]:
        return self.host, self.tcp_port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.registrar), local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]
        self.registrar = SipRegistrar(self.state, socket=f"udp:{self.host}:{self.port}", on_change=self.on_change,
                                      stats=self.stats)
        self._transport.get_protocol().registrar = self.registrar
        try:
            self._server = await asyncio.start_server(self._serve_tcp, self.host, self.port, limit=MAX_MESSAGE)
        except OSError:  # the number is taken for TCP: any free one
            self._server = await asyncio.start_server(self._serve_tcp, self.host, 0, limit=MAX_MESSAGE)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        self.tcp_registrar = SipRegistrar(self.state, socket=f"tcp:{self.host}:{self.tcp_port}",
                                          on_change=self.on_change, stats=self.stats)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[:2]
        self._writers.add(writer)
        try:
            while (message := await read_stream_message(reader)) is not None:
                reply = self.tcp_registrar.handle(message, peer)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except ProtocolError as exc:  # framing is lost: drop the connection, as a proxy would
            self.stats["dropped"] += 1
            log.debug("demo sip: closing TCP from %s: %s", peer, exc)
        except ConnectionError:
            pass
        except Exception:  # a bug here must not take the endpoint down
            self.stats["dropped"] += 1
            log.warning("demo sip: TCP connection from %s failed", peer, exc_info=True)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.close()
            await server.wait_closed()
