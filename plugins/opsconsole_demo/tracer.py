"""The demo's OpenSIPS tracer: MI trace_start/trace_stop/trace, and HEP for its calls and registrations.

Like the real tracer module (3.4/4.0, tried): `trace_start` with {id, uri[, filter[, scope, type]]} sends a
HEPv3 copy of each SIP message OpenSIPS receives or sends to `hep:HOST:PORT;transport=udp;version=3`;
scope "d" traces a dialog from its initial INVITE (no REGISTERs), scope "m" every message; filters
`caller=`, `callee=`, `ip=` must all match.  The SIP text is built from the simulation: each step's dialog
changes become the messages a proxy in the middle sees (caller → OpenSIPS → callee and back), and each
REGISTER the simulation accepts becomes one traced REGISTER (the real registrar's stateless reply is not
traced either).  A new trace also places one call at once, so whoever watches sees a ladder soon.

The HEP frames are built here (the core may not import a plugin's codec): the plugin's decoder reading
them is a test of both.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from .state import CALL_KINDS, DemoState, SimContact, SimDialog, StateEvent

PROXY = ("127.0.0.1", 5060)  # the demo's sockets say 5060 (text only: nothing is bound there)
PROXY_WS = ("127.0.0.1", 8080)
HEP_UDP_SOCKET = "hep_udp:127.0.0.1:9060"  # what the demo's `ps` shows, like a configured hep_udp socket
TRACER_34 = ("trace", "trace_start", "trace_stop")
TRACER_40 = ("tracer:trace", "tracer:start", "tracer:stop")
_URI = re.compile(r"^hep:([^;:\[\]]+|\[[0-9a-fA-F:.]+\]):(\d+)(;.*)?$")
_HOSTPORT = re.compile(r"@?([0-9.]+):(\d+)")
# (code, reason, from the far end): 408 is what tm answers itself when the forwarded INVITE gets no answer.
_FAILURES = ((486, "Busy Here", True), (480, "Temporarily Unavailable", True), (408, "Request Timeout", False))


class TraceError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


@dataclass
class DemoTrace:
    id: str
    host: str
    port: int
    filters: dict[str, str] = field(default_factory=dict)
    scope: str = "d"
    dialogs: set[str] = field(default_factory=set)  # scope d: the dialogs whose INVITE it saw

    def wants(self, caller: str, callee: str, source_ip: str) -> bool:
        wanted = {"caller": caller, "callee": callee, "ip": source_ip}
        return all(wanted.get(key) == value for key, value in self.filters.items())


@dataclass(frozen=True)
class Message:
    src: tuple[str, int]
    dst: tuple[str, int]
    tcp: bool
    text: str
    caller: str
    callee: str
    origin_ip: str  # the source of the request this belongs to (the ip= filter)


class DemoTracer:
    def __init__(self, state: DemoState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock
        self.traces: dict[str, DemoTrace] = {}
        self.sent = 0
        self._socket: socket.socket | None = None
        self._known = {callid: dialog.state for callid, dialog in state.dialogs.items()}  # callid -> last state seen
        self._branches = itertools.count(1)
        self._call_wanted = False

    # ------------------------------------------------------------------ MI

    def start(self, id: object, uri: object, filter: object = None, scope: object = None,
              type: object = None) -> str:
        if not isinstance(id, str) or not id or not isinstance(uri, str):
            raise TraceError(400, "Bad parameter value")
        if id in self.traces:
            raise TraceError(500, "Bad parameter value", "dynamic trace id already used")
        match = _URI.match(uri)
        if match is None or "transport=tcp" in (match.group(3) or ""):
            raise TraceError(400, "Bad parameter value", "the demo traces to hep:HOST:PORT;transport=udp only")
        filters = {}
        for item in filter if isinstance(filter, list) else ():
            key, sep, value = str(item).partition("=")
            if sep and key in ("caller", "callee", "ip"):
                filters[key] = value
        host = match.group(1).strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise TraceError(400, "Bad parameter value", "the demo needs an IP address in the HEP URI") from None
        # scope t (a transaction) is approximated by m: each matching message, REGISTERs included
        self.traces[id] = DemoTrace(id, host, int(match.group(2)), filters, "m" if scope in ("m", "t") else "d")
        self._call_wanted = True
        return "OK"

    def stop(self, id: object) -> str:
        if not isinstance(id, str) or self.traces.pop(id, None) is None:
            raise TraceError(400, "Bad parameter value")
        return "OK"

    def listing(self) -> dict:
        rows = []
        for trace in self.traces.values():
            row = {"name": trace.id, "type": "HEP", "uri": f"{trace.host}:{trace.port}", "state": "dynamic"}
            if trace.filters:
                row["filters"] = [{key: value} for key, value in trace.filters.items()]
            rows.append(row)
        return {"global": "on", "trace destinations": rows}

    # ------------------------------------------------------------------ simulation

    def observe(self, events: list[StateEvent]) -> None:
        """After a step: what changed becomes SIP messages, sent to every trace that wants them."""
        if not self.traces:
            self._known = {callid: dialog.state for callid, dialog in self.state.dialogs.items()}
            return
        if self._call_wanted:
            self._call_wanted = False
            self._place_call()
        now = self.clock()
        for dialog in list(self.state.dialogs.values()):
            before = self._known.get(dialog.callid)
            if before != dialog.state:
                self._send(dialog.callid, self._dialog_messages(dialog, before), now, initial=before is None)
                self._known[dialog.callid] = dialog.state
        for callid in set(self._known) - set(self.state.dialogs):
            del self._known[callid]
        for event in events:
            if event.name in ("E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE"):
                self._send("", [self._register(event.params)], now, initial=False, register=True)

    def _place_call(self) -> None:
        """One call the newest trace wants: its caller=/callee= user when online (busy or not: a
        second call, like call waiting), else anyone free."""
        wanted = list(self.traces.values())[-1].filters if self.traces else {}
        caller = self._named(wanted.get("caller")) or self.state._pick("udp")
        callee = self._named(wanted.get("callee"), exclude=caller) or self.state._pick("udp", exclude=caller)
        if caller is not None and callee is not None:
            kind = (caller.transport, callee.transport)
            self.state._create_dialog(kind if kind in CALL_KINDS else ("udp", "udp"), caller, callee)

    def _named(self, user: str | None, exclude: SimContact | None = None) -> SimContact | None:
        contact = self.state.find_contact(user) if user else None
        return contact if contact is not None and contact is not exclude else None

    def _send(self, callid: str, messages: list[Message], now: float, *, initial: bool,
              register: bool = False) -> None:
        for trace in list(self.traces.values()):
            if trace.scope == "d":
                if register or (not initial and callid not in trace.dialogs):
                    continue
            picked = [m for m in messages if trace.wants(m.caller, m.callee, m.origin_ip)]
            if not picked:
                continue
            if trace.scope == "d" and initial:
                trace.dialogs.add(callid)
            for offset, message in enumerate(picked):
                self._emit(trace, message, now + offset * 0.0015)

    def _emit(self, trace: DemoTrace, message: Message, when: float) -> None:
        if self._socket is None:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        try:
            self._socket.sendto(hep_frame(message, when), (trace.host, trace.port))
            self.sent += 1
        except OSError:
            pass  # nobody listening (any more): like the real tracer, drop it

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # ------------------------------------------------------------------ SIP text

    def _dialog_messages(self, dialog: SimDialog, before: int | None) -> list[Message]:
        state = dialog.state
        if before is None and state == 1:
            return self._invite(dialog)
        if state == 2:
            return (self._invite(dialog) if before is None else []) + self._reply(dialog, 180, "Ringing")
        if state in (3, 4) and before in (1, 2, None):
            return self._reply(dialog, 200, "OK", sdp=dialog.callee.sdp) + self._in_dialog(dialog, "ACK", 1, True)
        if state == 5 and before == 4:
            by_caller = dialog.h_id % 2 == 0
            return self._in_dialog(dialog, "BYE", 2, by_caller) + self._bye_ok(dialog, by_caller)
        if state == 5 and before in (1, 2):
            return self._failure(dialog)
        return []

    def _parties(self, dialog: SimDialog) -> tuple[tuple[str, int], tuple[str, int], bool, bool]:
        caller = _address(dialog.caller.contact or dialog.caller_contact.uri, dialog.caller_contact)
        callee = _address(dialog.callee_contact.uri, dialog.callee_contact)
        return caller, callee, dialog.kind[0] != "udp", dialog.kind[1] != "udp"

    def _message(self, dialog: SimDialog, src, dst, tcp: bool, lines: list[str], body: str = "") -> Message:
        head = "\r\n".join(lines + [f"Content-Length: {len(body.encode())}"])
        if body:
            head += "\r\nContent-Type: application/sdp"
        caller, callee = dialog.from_uri.split(":")[1].split("@")[0], dialog.to_uri.split(":")[1].split("@")[0]
        origin = _address(dialog.caller.contact or dialog.caller_contact.uri, dialog.caller_contact)[0]
        return Message(src, dst, tcp, head + "\r\n\r\n" + body, caller, callee, origin)

    def _headers(self, dialog: SimDialog, cseq: str, via: tuple[str, int], to_tag: bool = True) -> list[str]:
        to = f"<{dialog.to_uri}>" + (f";tag={dialog.callee.tag}" if to_tag and dialog.callee.tag else "")
        return [f"Via: SIP/2.0/UDP {via[0]}:{via[1]};branch=z9hG4bK-demo-{next(self._branches)}",
                f"From: <{dialog.from_uri}>;tag={dialog.caller.tag}", f"To: {to}",
                f"Call-ID: {dialog.callid}", f"CSeq: {cseq}"]

    def _invite(self, dialog: SimDialog) -> list[Message]:
        caller, callee, caller_tcp, callee_tcp = self._parties(dialog)
        proxy_in, proxy_out = _proxy(dialog.kind[0]), _proxy(dialog.kind[1])
        request = f"INVITE {dialog.to_uri} SIP/2.0"
        lines = self._headers(dialog, "1 INVITE", caller, to_tag=False)
        invite_in = [request] + lines + [f"Contact: <{dialog.caller.contact}>", "Max-Forwards: 70",
                                         "User-Agent: opsconsole-demo"]
        trying = ["SIP/2.0 100 Giving it a try"] + lines
        proxy_via = f"Via: SIP/2.0/UDP {proxy_out[0]}:{proxy_out[1]};branch=z9hG4bK-demo-{next(self._branches)}"
        forwarded = [f"INVITE {dialog.callee_contact.uri} SIP/2.0", proxy_via] + lines + [
            f"Contact: <{dialog.caller.contact}>", "Max-Forwards: 69", f"Record-Route: <sip:{proxy_out[0]}:{proxy_out[1]};lr>"]
        return [self._message(dialog, caller, proxy_in, caller_tcp, invite_in, dialog.caller.sdp),
                self._message(dialog, proxy_in, caller, caller_tcp, trying),
                self._message(dialog, proxy_out, callee, callee_tcp, forwarded, dialog.caller.sdp)]

    def _reply(self, dialog: SimDialog, code: int, reason: str, sdp: str = "", to_tag: bool = True) -> list[Message]:
        caller, callee, caller_tcp, callee_tcp = self._parties(dialog)
        proxy_in, proxy_out = _proxy(dialog.kind[0]), _proxy(dialog.kind[1])
        lines = [f"SIP/2.0 {code} {reason}"] + self._headers(dialog, "1 INVITE", caller, to_tag)
        if code < 300:
            lines.append(f"Contact: <{dialog.callee.contact or dialog.callee_contact.uri}>")
        return [self._message(dialog, callee, proxy_out, callee_tcp, lines, sdp),
                self._message(dialog, proxy_in, caller, caller_tcp, lines, sdp)]

    def _in_dialog(self, dialog: SimDialog, method: str, cseq: int, by_caller: bool) -> list[Message]:
        caller, callee, caller_tcp, callee_tcp = self._parties(dialog)
        proxy_in, proxy_out = _proxy(dialog.kind[0]), _proxy(dialog.kind[1])
        if by_caller:
            target = dialog.callee.contact or dialog.callee_contact.uri
            lines = [f"{method} {target} SIP/2.0"] + self._headers(dialog, f"{cseq} {method}", caller)
            return [self._message(dialog, caller, proxy_in, caller_tcp, lines),
                    self._message(dialog, proxy_out, callee, callee_tcp, lines)]
        lines = [f"{method} {dialog.caller.contact} SIP/2.0"] + self._headers(dialog, f"1 {method}", callee)
        lines = [_swap_from_to(line) for line in lines]
        return [self._message(dialog, callee, proxy_out, callee_tcp, lines),
                self._message(dialog, proxy_in, caller, caller_tcp, lines)]

    def _bye_ok(self, dialog: SimDialog, by_caller: bool) -> list[Message]:
        caller, callee, caller_tcp, callee_tcp = self._parties(dialog)
        proxy_in, proxy_out = _proxy(dialog.kind[0]), _proxy(dialog.kind[1])
        if by_caller:
            lines = ["SIP/2.0 200 OK"] + self._headers(dialog, "2 BYE", caller)
            return [self._message(dialog, callee, proxy_out, callee_tcp, lines),
                    self._message(dialog, proxy_in, caller, caller_tcp, lines)]
        lines = [_swap_from_to(line) for line in ["SIP/2.0 200 OK"] + self._headers(dialog, "1 BYE", callee)]
        return [self._message(dialog, caller, proxy_in, caller_tcp, lines),
                self._message(dialog, proxy_out, callee, callee_tcp, lines)]

    def _failure(self, dialog: SimDialog) -> list[Message]:
        code, reason, far_end = _FAILURES[dialog.h_id % len(_FAILURES)]
        caller, callee, caller_tcp, callee_tcp = self._parties(dialog)
        proxy_in, proxy_out = _proxy(dialog.kind[0]), _proxy(dialog.kind[1])
        lines = [f"SIP/2.0 {code} {reason}"] + self._headers(dialog, "1 INVITE", caller)
        ack = [f"ACK {dialog.to_uri} SIP/2.0"] + self._headers(dialog, "1 ACK", caller)
        messages = [self._message(dialog, callee, proxy_out, callee_tcp, lines)] if far_end else []
        messages.append(self._message(dialog, proxy_in, caller, caller_tcp, lines))
        if far_end:
            messages.append(self._message(dialog, proxy_out, callee, callee_tcp, ack))
        messages.append(self._message(dialog, caller, proxy_in, caller_tcp, ack))
        return messages

    def _register(self, params: dict) -> Message:
        aor = str(params.get("aor", ""))
        user = aor.split("@")[0]
        uri = str(params.get("uri", ""))
        transport = str(params.get("socket", "udp:")).split(":")[0]
        contact = self.state.find_contact(user) or SimContact(0, user, "udp")
        source = _address(uri, contact)
        expires = max(0, int(params.get("expires") or 0) - self.state.now)
        lines = [f"REGISTER sip:{PROXY[0]} SIP/2.0",
                 f"Via: SIP/2.0/{transport.upper()} {source[0]}:{source[1]};branch=z9hG4bK-demo-{next(self._branches)}",
                 f"From: <sip:{user}@127.0.0.1>;tag=reg{params.get('cseq', 1)}", f"To: <sip:{user}@127.0.0.1>",
                 f"Call-ID: {params.get('callid', '')}", f"CSeq: {params.get('cseq', 1)} REGISTER",
                 f"Contact: <{uri}>", f"Expires: {expires}", f"User-Agent: {params.get('user_agent', '')}",
                 "Content-Length: 0"]
        return Message(source, PROXY_WS if transport == "ws" else PROXY, transport != "udp",
                       "\r\n".join(lines) + "\r\n\r\n", user, user, source[0])


def _proxy(transport: str) -> tuple[str, int]:
    return PROXY_WS if transport == "ws" else PROXY


def _address(uri: str, contact: SimContact) -> tuple[str, int]:
    match = _HOSTPORT.search(uri.split(";", 1)[0])
    if match:
        return match.group(1), int(match.group(2))
    return "127.0.0.1", contact.remote_port or 5070


def _swap_from_to(line: str) -> str:
    """A request from the callee: its From is the dialog's To and the other way round."""
    if line.startswith("From: "):
        return "To: " + line[6:]
    if line.startswith("To: "):
        return "From: " + line[4:]
    return line


# --------------------------------------------------------------------------- HEPv3 (encode only)

def _chunk(kind: int, payload: bytes) -> bytes:
    return struct.pack("!HHH", 0, kind, 6 + len(payload)) + payload


def hep_frame(message: Message, when: float) -> bytes:
    """HEPv3: IPv4, UDP or TCP, addresses, ports, time, protocol type SIP (1), capture id, payload."""
    seconds = int(when)
    body = b"".join((
        _chunk(1, b"\x02"), _chunk(2, b"\x06" if message.tcp else b"\x11"),
        _chunk(3, socket.inet_aton(message.src[0])), _chunk(4, socket.inet_aton(message.dst[0])),
        _chunk(7, struct.pack("!H", message.src[1])), _chunk(8, struct.pack("!H", message.dst[1])),
        _chunk(9, struct.pack("!I", seconds)), _chunk(10, struct.pack("!I", int((when - seconds) * 1e6))),
        _chunk(11, b"\x01"), _chunk(12, struct.pack("!I", 2001)),
        _chunk(15, message.text.encode("utf-8", "surrogateescape")),
    ))
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body
