"""The SIP ladder of a trace, and what it means (I/O-free).

OpenSIPS's tracer ships every message it receives and sends as a HEP packet (hep.py).  Here each
packet becomes a `TracedMessage` (the SIP start line and the few headers a ladder needs, parsed once),
messages are grouped per Call-ID in arrival order (`Ladder`, `CallFlow`), and a finished call is
explained in plain words (`explain`): timings (ringing, answer, talk, who hung up) or, when it
failed, the final response, whether OpenSIPS or the far end gave it, its usual causes and the fix.

Everything from the wire is untrusted: it is kept as plain `str` and never interpreted as markup;
renderers escape it (console.render.safe) before showing it.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field

from .hep import HEPPacket

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via", "l": "content-length"}
_WANTED = frozenset({"call-id", "cseq", "from", "to", "contact", "via", "user-agent", "reason", "expires"})
_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})\s*(.*)$")
_REQUEST_LINE = re.compile(r"^([A-Za-z]+)\s+(\S+)\s+SIP/2\.0$")
_TAG = re.compile(r";\s*tag=([^;>\s]+)", re.IGNORECASE)
MAX_HEAD = 16_384  # a SIP head larger than this is not read further (hostile input)


@dataclass(frozen=True, slots=True)
class SipSummary:
    """What the ladder needs from one SIP message.  method is the CSeq method for a response."""

    request: bool
    method: str  # INVITE, ACK, BYE, … (a response: its CSeq method)
    status: int = 0  # responses only
    reason: str = ""
    request_uri: str = ""
    call_id: str = ""
    cseq: int = 0
    from_user: str = ""
    from_tag: str = ""
    to_user: str = ""
    to_host: str = ""
    to_tag: str = ""
    contact: str = ""
    user_agent: str = ""
    expires: str = ""

    @property
    def label(self) -> str:
        """'INVITE' or '180 Ringing'."""
        if self.request:
            return self.method
        return f"{self.status} {self.reason}".strip()


def parse_sip(payload: bytes) -> SipSummary | None:
    """The start line and the ladder's headers; None when the payload is not SIP."""
    head = payload[:MAX_HEAD].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    first = lines[0].strip()
    status = _STATUS_LINE.match(first)
    request = None if status else _REQUEST_LINE.match(first)
    if not status and not request:
        return None
    headers = _headers(lines[1:])
    cseq_num, _, cseq_method = headers.get("cseq", "").strip().partition(" ")
    from_user, _, from_tag = _party(headers.get("from", ""))
    to_user, to_host, to_tag = _party(headers.get("to", ""))
    method = request.group(1).upper() if request else cseq_method.strip().upper()
    return SipSummary(
        request=request is not None, method=method,
        status=int(status.group(1)) if status else 0, reason=status.group(2).strip() if status else "",
        request_uri=request.group(2) if request else "", call_id=headers.get("call-id", "").strip(),
        cseq=int(cseq_num) if cseq_num.isdigit() else 0, from_user=from_user, from_tag=from_tag,
        to_user=to_user, to_host=to_host, to_tag=to_tag, contact=_uri(headers.get("contact", "")),
        user_agent=headers.get("user-agent", "").strip(), expires=headers.get("expires", "").strip())


def _headers(lines: list[str]) -> dict[str, str]:
    """First value of each wanted header (folded lines joined, compact names expanded)."""
    found: dict[str, str] = {}
    last = ""
    for line in lines:
        if line[:1] in (" ", "\t") and last:
            found[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = ""
            continue
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        last = name if name in _WANTED and name not in found else ""
        if last:
            found[name] = value.strip()
    return found


def _uri(value: str) -> str:
    """The URI of a name-addr ('"A" <sip:a@h>;tag=1' -> 'sip:a@h'), or the addr-spec before ';'."""
    if "<" in value:
        return value.partition("<")[2].partition(">")[0].strip()
    return value.split(";", 1)[0].split(",", 1)[0].strip()


def _party(value: str) -> tuple[str, str, str]:
    """(user, host, tag) of a From/To header."""
    uri = _uri(value)
    rest = uri.partition(":")[2] if ":" in uri else uri
    user, at, host = rest.partition("@")
    if not at:
        user, host = "", user
    host = host.split(";", 1)[0].split("?", 1)[0]
    tag = _TAG.search(value.partition(">")[2] if "<" in value else value)
    return user, host, tag.group(1) if tag else ""


@dataclass(frozen=True, slots=True)
class TracedMessage:
    time: float  # epoch seconds (the HEP timestamp: when OpenSIPS saw it)
    src: str  # "ip:port"
    dst: str
    transport: str  # "udp" / "tcp"
    sip: SipSummary
    packet: HEPPacket  # the whole message (payload) and its addresses, for the pcap and a detail view

    @property
    def label(self) -> str:
        return self.sip.label

    @property
    def call_id(self) -> str:
        return self.sip.call_id

    @classmethod
    def from_hep(cls, packet: HEPPacket) -> "TracedMessage | None":
        sip = parse_sip(packet.payload)
        if sip is None:
            return None
        return cls(time=packet.timestamp, src=_hostport(packet.src, packet.src_port),
                   dst=_hostport(packet.dst, packet.dst_port), transport=packet.transport, sip=sip, packet=packet)


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class LadderLine:
    """One message as the ladder shows it: its call's previous message was `delta` seconds before."""

    message: TracedMessage
    delta: float | None  # None: the first message of its call
    first_of_call: bool


@dataclass
class CallFlow:
    call_id: str
    messages: list[TracedMessage] = field(default_factory=list)
    explained: bool = False
    last_arrival: float = 0.0  # the reader's monotonic clock (HEP times are OpenSIPS's clock)

    @property
    def first_request(self) -> TracedMessage | None:
        return next((m for m in self.messages if m.sip.request), None)

    @property
    def kind(self) -> str:
        """The method of the request that opened it: INVITE (a call), REGISTER, OPTIONS, …"""
        first = self.first_request
        return first.sip.method if first is not None else (self.messages[0].sip.method if self.messages else "")

    @property
    def proxy(self) -> str:
        """OpenSIPS's address in this flow: where the opening request arrived."""
        first = self.first_request
        return first.dst if first is not None else ""

    @property
    def caller(self) -> str:
        first = self.first_request
        return first.src if first is not None else ""

    @property
    def last_time(self) -> float:
        return self.messages[-1].time if self.messages else 0.0

    @property
    def ended(self) -> bool:
        """Nothing more is expected: the INVITE's final failure reached the caller, or the BYE was
        answered; for another request, its final response was sent."""
        if self.kind == "INVITE":
            return self._bye_answered() or self._invite_failed() is not None
        return any(not m.sip.request and m.sip.status >= 200 and m.sip.method == self.kind for m in self.messages)

    def _bye_answered(self) -> bool:
        return any(not m.sip.request and m.sip.method == "BYE" and m.sip.status >= 200 for m in self.messages)

    def _invite_failed(self) -> TracedMessage | None:
        """The final non-2xx answer to the INVITE as sent towards the caller (or the last seen)."""
        finals = [m for m in self.messages if not m.sip.request and m.sip.method == "INVITE" and m.sip.status >= 300]
        if not finals or self._answered() is not None:
            return None
        to_caller = [m for m in finals if m.dst == self.caller]
        return (to_caller or finals)[-1]

    def _answered(self) -> TracedMessage | None:
        return next((m for m in self.messages
                     if not m.sip.request and m.sip.method == "INVITE" and 200 <= m.sip.status < 300), None)


class Ladder:
    """Messages of a trace grouped per Call-ID, in arrival order."""

    def __init__(self, max_calls: int = 2_000) -> None:
        self.calls: dict[str, CallFlow] = {}
        # A long trace of a busy node must not grow without bound: the oldest Call-ID goes first
        # (~13 messages of ~1 kB per call: about 26 MB at the cap).
        self.max_calls = max_calls
        self.count = 0

    def add(self, message: TracedMessage, arrived: float | None = None) -> LadderLine:
        flow = self.calls.get(message.call_id)
        first = flow is None
        if flow is None:
            if len(self.calls) >= self.max_calls:
                self.calls.pop(next(iter(self.calls)))
            flow = self.calls[message.call_id] = CallFlow(message.call_id)
        delta = None if first else message.time - flow.messages[-1].time
        flow.messages.append(message)
        flow.last_arrival = time.monotonic() if arrived is None else arrived
        self.count += 1
        return LadderLine(message, delta, first)

    def due(self, now: float, settle: float) -> list[CallFlow]:
        """Ended calls quiet for `settle` seconds of `now` (the monotonic clock add() used), not yet explained."""
        return [f for f in self.calls.values() if not f.explained and f.ended and now - f.last_arrival >= settle]

    def unexplained(self) -> list[CallFlow]:
        return [f for f in self.calls.values() if not f.explained]


# --------------------------------------------------------------------------- explanations

@dataclass(frozen=True, slots=True)
class Explanation:
    call_id: str
    kind: str  # INVITE, REGISTER, …
    outcome: str  # answered, failed, cancelled, no-ack, unanswered, registered, refused, challenge-loop, other
    summary: str  # one line: "answered: ringing after 50 ms · answered after 1.0 s · talk 32 s · callee hung up"
    details: tuple[str, ...] = ()  # the failure in plain words, then the fix
    status: int = 0  # the final response that decided it, 0 when none
    lookup_aor: str = ""  # ask the location table about this AoR (404/480/408: is the callee registered?)
    lookup_domain: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome not in ("answered", "registered", "other", "unanswered")

    @property
    def noteworthy(self) -> bool:
        """Worth a line under the ladder: every call, and any other request that failed (a REGISTER
        whose stateless 200 OpenSIPS does not trace is not news)."""
        return self.kind == "INVITE" or self.failed


# Usual causes and fixes, by final response (RFC 3261 meanings, in the words an operator needs).
CAUSES: dict[int, tuple[str, str]] = {
    400: ("the request was malformed for the receiver", "look at the request (Enter on it) for a broken header"),
    401: ("the request needs credentials (challenge)", "a UA retries with credentials; a loop means a wrong password or realm"),
    403: ("forbidden: refused by policy or authentication", "check the caller's permissions / credentials and the script's checks"),
    404: ("not found: nobody by that name here (usually not registered)",
          "is the callee in the location table right now? register the device, or check the dialled number"),
    405: ("the method is not allowed at this hop", "the script answers 405 for methods it does not route"),
    407: ("the proxy needs credentials (challenge)", "a UA retries with credentials; a loop means a wrong password or realm"),
    408: ("no answer in time: the next hop did not respond (unreachable contact, NAT, firewall, stale registration)",
          "is the callee's contact reachable from OpenSIPS (NAT keepalives, received address)? fr_timeout / fr_inv_timeout"),
    480: ("temporarily unavailable: the callee did not answer, is not registered, or is on DND",
          "is the callee registered and reachable? a ring timeout (fr_inv_timeout) gives 480/408 too"),
    481: ("the dialog/transaction does not exist at the receiver", "a BYE/ACK after the other side forgot the call: check Record-Route and timers"),
    482: ("loop detected", "the request came back to the proxy: check routing (Max-Forwards, lookup pointing at itself)"),
    483: ("too many hops", "a routing loop: check where the script relays the request"),
    484: ("address incomplete", "the dialled number is too short (the script's 484 check)"),
    486: ("busy here: the callee is busy or rejected the call", "nothing is wrong with the platform; try again later"),
    487: ("request terminated: cancelled before it was answered", "the caller hung up (CANCEL) while it rang"),
    488: ("not acceptable here: the offered media (codecs, SRTP/DTLS, ICE) was refused",
          "compare the SDP offer with what the callee accepts; check the rtpengine flags for this path"),
    500: ("server error at the answering hop", "look at the log of the hop that answered"),
    502: ("bad gateway: the next hop gave an invalid answer", "check the gateway/trunk behind the proxy"),
    503: ("service unavailable", ""),
    504: ("gateway timeout: a server further on did not answer", "check the trunk/gateway behind the proxy"),
    603: ("declined by the callee", "the callee rejected the call; nothing is wrong with the platform"),
}
PROXY_503 = ("OpenSIPS answered 503 itself: it found no destination it could relay to "
             "(t_relay failed, every gateway down, or a dependency such as rtpengine refused)",
             "look at OpenSIPS's log for this Call-ID; check the destinations (dispatcher/drouting) and rtpengine")
FAR_503 = ("the far end answered 503: the next hop (callee or gateway) is overloaded or out of service",
           "check that hop; OpenSIPS only relayed its answer")
PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                        "100.64.0.0/10", "fc00::/7"))


def explain(flow: CallFlow) -> Explanation:
    if flow.first_request is None:  # its request went by before the trace started
        labels = ", ".join(dict.fromkeys(m.label for m in flow.messages))
        return Explanation(flow.call_id, flow.kind, "other", f"replies only ({labels}): the request came before the trace")
    if flow.kind == "INVITE":
        return _explain_call(flow)
    if flow.kind == "REGISTER":
        return _explain_register(flow)
    final = _final(flow, flow.kind)
    words = f"{flow.kind} answered {final.label}" if final else f"{flow.kind}, no final response traced"
    return Explanation(flow.call_id, flow.kind, "other", words, status=final.sip.status if final else 0)


def _final(flow: CallFlow, method: str) -> TracedMessage | None:
    finals = [m for m in flow.messages if not m.sip.request and m.sip.method == method and m.sip.status >= 200]
    return finals[-1] if finals else None


def _ms(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _explain_call(flow: CallFlow) -> Explanation:
    invite = flow.first_request
    start, caller, proxy = invite.time, flow.caller, flow.proxy
    callee = invite.sip.to_user or invite.sip.request_uri
    notes = _nat_notes(flow)
    to_caller = [m for m in flow.messages if m.dst == caller and not m.sip.request and m.sip.method == "INVITE"]
    ringing = next((m for m in to_caller if m.sip.status in (180, 183)), None)
    parts = [f"ringing after {_ms(ringing.time - start)}"] if ringing else []
    cancel = next((m for m in flow.messages if m.sip.request and m.sip.method == "CANCEL"), None)
    answer = flow._answered()
    if answer is not None:
        return _explain_answered(flow, start, parts, answer, cancel, notes)
    failure = flow._invite_failed()
    if failure is None:
        if cancel is not None:
            parts.append(f"cancelled after {_ms(cancel.time - start)}, no final response traced")
            return Explanation(flow.call_id, "INVITE", "cancelled", " · ".join(parts), tuple(notes))
        parts.append("no final response traced yet")
        return Explanation(flow.call_id, "INVITE", "unanswered", " · ".join(parts), tuple(notes))
    status = failure.sip.status
    if cancel is not None and status == 487:
        parts.append(f"caller cancelled after {_ms(cancel.time - start)} (487 Request Terminated)")
        return Explanation(flow.call_id, "INVITE", "cancelled", " · ".join(parts), tuple(notes), status=status)
    challenges = [m for m in flow.messages if not m.sip.request and m.sip.status in (401, 407)]
    if status in (401, 407) and len({m.sip.cseq for m in challenges}) >= 2:
        return _challenge_loop(flow, "INVITE", challenges, parts, notes)
    from_far_end = any(m.sip.status == status and m.src != proxy and m.dst == proxy for m in flow.messages
                       if not m.sip.request and m.sip.method == "INVITE")
    who = "the far end" if from_far_end else "OpenSIPS"
    parts.append(f"failed after {_ms(failure.time - start)}: {failure.label} from {who}")
    cause, fix = _cause(status, from_far_end)
    details = [f"{status}: {cause}"] + ([f"fix: {fix}"] if fix else []) + notes
    lookup = callee if status in (404, 408, 480) and callee else ""
    return Explanation(flow.call_id, "INVITE", "failed", " · ".join(parts), tuple(details), status=status,
                       lookup_aor=lookup, lookup_domain=invite.sip.to_host)


def _cause(status: int, from_far_end: bool) -> tuple[str, str]:
    if status == 503:
        return FAR_503 if from_far_end else PROXY_503
    if status in CAUSES:
        return CAUSES[status]
    klass = {3: "redirected", 4: "refused by the callee side", 5: "a server failed", 6: "refused everywhere"}
    return klass.get(status // 100, "failed"), ""


def _explain_answered(flow: CallFlow, start: float, parts: list[str], answer: TracedMessage,
                      cancel: TracedMessage | None, notes: list[str]) -> Explanation:
    parts.append(f"answered after {_ms(answer.time - start)}")
    details = list(notes)
    if cancel is not None:
        details.append("CANCEL crossed the 200 OK (race): the call was answered anyway; the caller must "
                       "ACK it and then send BYE")
    acks = [m for m in flow.messages if m.sip.request and m.sip.method == "ACK" and m.time >= answer.time]
    oks = [m for m in flow.messages if not m.sip.request and m.sip.method == "INVITE" and 200 <= m.sip.status < 300
           and m.src == answer.src]
    bye = next((m for m in flow.messages if m.sip.request and m.sip.method == "BYE"), None)
    if not acks and len(oks) >= 2:
        parts.append(f"200 OK sent {len(oks)} times, no ACK")
        details += ["the callee keeps retransmitting its 200 OK because no ACK reaches it: the call drops after "
                    "~32 s (Timer H)",
                    "fix: the ACK is not reaching the callee's Contact: check the Contact/Record-Route of the 200 "
                    "OK (a private address behind NAT needs fix_nated_contact), and loose_route for the ACK"]
        return Explanation(flow.call_id, "INVITE", "no-ack", " · ".join(parts), tuple(details), status=200)
    if bye is None:
        parts.append("still up")
        return Explanation(flow.call_id, "INVITE", "answered", " · ".join(parts), tuple(details), status=200)
    talk_from = acks[0].time if acks else answer.time
    parts.append(f"talk {_ms(bye.time - talk_from)}")
    parts.append("caller hung up" if bye.sip.from_tag == flow.first_request.sip.from_tag else "callee hung up")
    bye_final = _final(flow, "BYE")
    if bye_final is not None and bye_final.sip.status >= 300:
        details.append(f"the BYE was answered {bye_final.label}: the other side had already forgotten the call")
    return Explanation(flow.call_id, "INVITE", "answered", " · ".join(parts), tuple(details), status=200)


def _explain_register(flow: CallFlow) -> Explanation:
    first = flow.first_request
    who = first.sip.to_user or first.sip.from_user
    final = _final(flow, "REGISTER")
    challenges = [m for m in flow.messages if not m.sip.request and m.sip.status in (401, 407)]
    if final is not None and final.sip.status in (401, 407) and len({m.sip.cseq for m in challenges}) >= 2:
        return _challenge_loop(flow, "REGISTER", challenges, [f"REGISTER {who}"], [])
    if final is None:
        expires = f", Expires {first.sip.expires}" if first.sip.expires else ""
        return Explanation(flow.call_id, "REGISTER", "other",
                           f"REGISTER {who} from {first.src}{expires} (the reply was not traced)")
    if final.sip.status < 300:
        return Explanation(flow.call_id, "REGISTER", "registered", f"REGISTER {who}: {final.label}", status=200)
    cause, fix = _cause(final.sip.status, False)
    return Explanation(flow.call_id, "REGISTER", "refused", f"REGISTER {who} refused: {final.label}",
                       (f"{final.sip.status}: {cause}",) + ((f"fix: {fix}",) if fix else ()),
                       status=final.sip.status)


def _challenge_loop(flow: CallFlow, kind: str, challenges: list[TracedMessage], parts: list[str],
                    notes: list[str]) -> Explanation:
    code = challenges[-1].sip.status
    parts.append(f"challenged {len(challenges)} times ({code}), never accepted")
    details = ["each retry with credentials was challenged again: the credentials are wrong "
               "(password, username or realm)",
               "fix: check the device's SIP password/username and the realm the proxy asks for"] + notes
    return Explanation(flow.call_id, kind, "challenge-loop", " · ".join(parts), tuple(details), status=code)


def _nat_notes(flow: CallFlow) -> list[str]:
    """A Contact with a private address sent from a public source: the device is behind NAT."""
    notes = []
    for message in flow.messages:
        host = _contact_ip(message.sip.contact)
        source = message.packet.src
        if host and _private(host) and _public(source):
            notes.append(f"Contact {host} is private but the message came from {source}: the device is behind "
                         "NAT; fix_nated_contact()/fix_nated_register() must rewrite it, or calls to it fail")
            break
    return notes


def _contact_ip(contact: str) -> str:
    rest = contact.partition(":")[2].rpartition("@")[2]
    host = rest.split(";", 1)[0].split(">", 1)[0]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _private(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in PRIVATE_NETS if net.version == address.version)


def _public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


# --------------------------------------------------------------------------- text (plain, escaped)

ARROW = "→"


def line_text(line: LadderLine) -> str:
    """'12:00:01.050  +0.012  127.0.0.1:5070 → 127.0.0.1:5060  UDP  180 Ringing  CALL-ID' (escaped)."""
    from console.render.safe import escape_controls

    message = line.message
    stamp = time.strftime("%H:%M:%S", time.localtime(message.time)) + f".{int(message.time * 1000) % 1000:03d}"
    delta = "     new" if line.delta is None else f"{line.delta:+8.3f}"
    return (f"{stamp} {delta}  {message.src:>21} {ARROW} {message.dst:<21} {message.transport.upper():<3}  "
            f"{escape_controls(message.label):<24}  {escape_controls(message.call_id)}")


def explanation_text(explanation: Explanation, *notes: str) -> list[str]:
    """The explanation as indented lines under the ladder (escaped); `notes`: what the platform's state
    says about the call (location table, dialog), one line each."""
    from console.render.safe import escape_controls

    kind = "call" if explanation.kind == "INVITE" else explanation.kind
    lines = [f"  ⤷ {kind} {escape_controls(explanation.call_id)}: {escape_controls(explanation.summary)}"]
    lines += [f"      {escape_controls(detail)}" for detail in (*explanation.details, *notes) if detail]
    return lines
