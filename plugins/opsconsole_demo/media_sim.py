"""A simulated RTPengine 10.5: ng (UDP, bencode `<cookie> <dict>`) and CLI (TCP, `command\\n` -> text).

Used when /usr/bin/rtpengine is not installed.  Replies follow the shapes of
fixtures/rtpengine-10.5 (ng/*.json, ctl/*.txt): error strings, `list` default
limit 32, 4 ports per call from the range, deletion mark + delete-delay,
cached reply for a reused cookie.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

import bencode

from . import quality, sdp
from .rtcp import Reception

LIST_DEFAULT_LIMIT = 32
DELETE_DELAY = 30
COOKIE_CACHE = 1000
PACKETS_PER_SECOND = 50
_STRING_KEYS = ("command", "call-id", "from-tag", "to-tag", "sdp", "transport-protocol", "label")
RTP_BYTES = 172  # 160 bytes of G.711 + RTP header


class PortsExhausted(Exception):
    pass


class PortPool:
    """Even RTP ports (RTCP = port+1) from [low, high], lowest free first."""

    def __init__(self, low: int = 30000, high: int = 30999) -> None:
        self.low, self.high = low, high
        self._free = list(range(low + low % 2, high, 2))[::-1]  # pop() yields the lowest
        self._pairs = len(self._free)
        self.last = 0

    @property
    def total(self) -> int:
        return self.high - self.low + 1

    @property
    def used(self) -> int:
        return 2 * (self._pairs - len(self._free))

    def take(self) -> int:
        if not self._free:
            raise PortsExhausted
        self.last = self._free.pop()
        return self.last

    def give(self, port: int) -> None:
        bisect.insort(self._free, port, key=lambda p: -p)


@dataclass
class SimTag:
    tag: str
    created: int
    protocol: str
    codec: str
    local_port: int
    endpoint_port: int
    label: str = ""
    peer: str = ""
    ssrc: int = 0


@dataclass
class SimSession:
    callid: str
    created: int
    created_us: int
    last_signal: int
    tags: dict[str, SimTag] = field(default_factory=dict)
    deleted_at: int | None = None
    answered: float | None = None


def _codec(body: str) -> str:
    for line in body.splitlines():
        if line.startswith("a=rtpmap:"):
            return line.split(" ", 1)[1]
    return "PCMU/8000"


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _ok(**values) -> dict:
    return {**values, "result": "ok"}


def _error(reason: str) -> dict:
    return {"result": "error", "error-reason": reason}


RTCP_BYTES = 76  # an SR with one report block + SDES CNAME


def mos_x10(rtt_us: int, jitter_ms: int, loss_pct: int) -> int:
    """RTPengine's MOS formula (daemon/ssrc.c mos_calc, MOS-CQ), x10 as it reports it; 0: no RTT."""
    if not rtt_us:
        return 0
    eff_rtt = rtt_us // 1000 + jitter_ms * 2 + 10
    r = (93.2 - eff_rtt / 40.0 if eff_rtt < 160 else 93.2 - (eff_rtt - 120) / 10.0) - loss_pct * 2.5
    mos = 1.0 if r < 0 else 1.0 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r)
    value = int(mos * 10.0)
    return value if value >= 10 else 0


def _ssrc_entry(reception: Reception, answered: int, rounds: int) -> dict:
    """One "SSRC" entry of a query reply, in RTPengine's shape and units (MOS x10, us, ms, %)."""
    leg_us = int(reception.rtt_leg_ms * 1000)
    jitter, loss = int(reception.jitter_ms), int(reception.fraction_lost() * 100 / 256)
    mos = mos_x10(2 * leg_us, jitter, loss)

    def block(at: int, value: int, rtt: int) -> dict:
        return {"MOS": value, "round-trip time": rtt, "round-trip time leg": leg_us, "jitter": jitter,
                "packet loss": loss, "reported at": at}

    blocks = [block(answered + 1, 0, 0)] + [block(answered + i, mos, 2 * leg_us) for i in range(2, rounds + 1)]
    interval = max(0, (blocks[-1]["reported at"] - blocks[0]["reported at"]) // 10)
    shown, step = [], blocks[0]["reported at"]
    for item in blocks:
        if item["reported at"] >= step:
            shown.append(item)
            step += interval
    average = {k: v for k, v in block(0, mos, 2 * leg_us).items() if k != "reported at"} | {"samples": rounds - 1}
    return {"cumulative loss": reception.cumulative_lost, "average MOS": average, "lowest MOS": blocks[-1],
            "highest MOS": blocks[-1], "MOS progression": {"interval": interval, "entries": shown}}


class SimEngine:
    """The ng command logic, I/O-free (also driven directly by DemoPlatform)."""

    def __init__(self, clock: Callable[[], float] = time.time, port_min: int = 30000, port_max: int = 30999) -> None:
        self.clock = clock
        self.ports = PortPool(port_min, port_max)
        self.sessions: "OrderedDict[str, SimSession]" = OrderedDict()
        self.started = int(clock())
        self.totals = {"managedsessions": 0, "rejectedsessions": 0, "regularterminatedsessions": 0}
        self.commands: dict[str, int] = {}
        self._deleted: deque[tuple[int, str]] = deque()  # (deleted_at, call-id), in deletion order
        self.profiles = quality.Profiles()  # each answered call's media quality (quality.py)

    def handle(self, request) -> dict:
        """One decoded ng request (bytes or str keys/values) -> the reply dict."""
        if not isinstance(request, dict):
            return _error("Invalid NG data format")
        request = {_text(k): _text(v) for k, v in request.items()}
        if any(not isinstance(request.get(key, ""), str) for key in _STRING_KEYS):
            return _error("Invalid NG data format")
        self._purge()
        command = request.get("command")
        if command is None:
            return _error('Dictionary contains no key "command"')
        handler = getattr(self, f"_ng_{command}", None)
        if handler is None:
            return _error("Unrecognized command")
        self.commands[command] = self.commands.get(command, 0) + 1
        return handler(request)

    def _purge(self) -> None:
        """Forget sessions deleted more than DELETE_DELAY ago (oldest deletions first)."""
        now = int(self.clock())
        deleted = self._deleted
        while deleted and now - deleted[0][0] >= DELETE_DELAY:
            _, callid = deleted.popleft()
            session = self.sessions.pop(callid, None)
            for tag in session.tags.values() if session else ():
                self.ports.give(tag.local_port)

    # ------------------------------------------------------------------ commands

    def _ng_ping(self, request: dict) -> dict:
        return {"result": "pong"}

    def _ng_list(self, request: dict) -> dict:
        try:
            limit = int(request.get("limit", LIST_DEFAULT_LIMIT))
        except (TypeError, ValueError):
            limit = LIST_DEFAULT_LIMIT
        return {"calls": list(self.sessions)[:limit], "result": "ok"}

    def _ng_offer(self, request: dict) -> dict:
        body = request.get("sdp")
        if not body:
            return _error("No SDP body in message")
        callid, from_tag = request.get("call-id"), request.get("from-tag")
        if not callid:
            return _error("No call-id in message")
        media = sdp.media_lines(str(body))
        if not media:
            return _error("Failed to parse SDP")
        try:
            caller_port, callee_port = self._take_pair()
        except PortsExhausted:
            self.totals["rejectedsessions"] += 1
            return _error("Ran out of ports")
        now = self.clock()
        session = self.sessions.get(callid)
        if session is None:
            session = SimSession(callid, int(now), int(now % 1 * 1e6), int(now))
            self.sessions[callid] = session
            self.totals["managedsessions"] += 1
        (endpoint, offered_protocol), codec = media[0], _codec(body)
        protocol = request.get("transport-protocol") or offered_protocol
        session.tags[str(from_tag)] = SimTag(str(from_tag), int(now), offered_protocol, codec, caller_port, endpoint,
                                             label=str(request.get("label", "")))
        session.tags["<untagged 1>"] = SimTag("", int(now), protocol, codec, callee_port, 0)
        session.last_signal = int(now)
        return _ok(sdp=sdp.rewrite(body, callee_port, protocol))

    def _take_pair(self) -> tuple[int, int]:
        first = self.ports.take()
        try:
            return first, self.ports.take()
        except PortsExhausted:
            self.ports.give(first)
            raise

    def _ng_answer(self, request: dict) -> dict:
        body = request.get("sdp")
        if not body:
            return _error("No SDP body in message")
        session = self.sessions.get(request.get("call-id"))
        from_tag, to_tag = request.get("from-tag"), str(request.get("to-tag", ""))
        if session is None or from_tag not in session.tags:
            return _error("Unknown call-id")
        media = sdp.media_lines(str(body))
        untagged = next((k for k in session.tags if k.startswith("<untagged")), None)
        if not media or untagged is None:
            return _error("Failed to parse SDP" if not media else "Unknown call-id")
        callee = session.tags.pop(untagged)
        callee.tag, callee.endpoint_port, callee.codec = to_tag, media[0][0], _codec(body)
        callee.peer, session.tags[from_tag].peer = from_tag, to_tag
        session.tags[to_tag] = callee
        session.last_signal = int(self.clock())
        session.answered = self.clock()
        self.profiles.of(session.callid)
        session.tags[from_tag].ssrc = zlib.crc32(session.callid.encode())
        callee.ssrc = zlib.crc32(f"{session.callid}/callee".encode())
        caller = session.tags[from_tag]
        protocol = request.get("transport-protocol") or caller.protocol
        return _ok(sdp=sdp.rewrite(body, caller.local_port, protocol))

    def _ng_delete(self, request: dict) -> dict:
        session = self.sessions.get(request.get("call-id"))
        if session is None:
            return {"warning": "Call-ID not found or tags didn't match", "result": "ok"}
        if session.deleted_at is None:
            session.deleted_at = int(self.clock())
            self._deleted.append((session.deleted_at, session.callid))
            self.totals["regularterminatedsessions"] += 1
        return _ok(created=session.created, **{"created_us": session.created_us, "last signal": session.last_signal},
                   SSRC={}, tags=self._tags(session), totals=self._totals(session))

    def _ng_query(self, request: dict) -> dict:
        callid = request.get("call-id")
        if not callid:
            return _error("No call-id in message")
        session = self.sessions.get(callid)
        if session is None:
            return _error("Unknown call-id")
        return {"created": session.created, "created_us": session.created_us, "last signal": session.last_signal,
                "SSRC": self._ssrc_stats(session), "tags": self._tags(session), "totals": self._totals(session),
                "result": "ok"}

    # ------------------------------------------------------------------ RTCP-derived quality (quality.py)

    def _role(self, session: SimSession, tag: SimTag) -> str:
        return "caller" if next(iter(session.tags.values()), None) is tag else "callee"

    def _sends(self, session: SimSession, tag: SimTag) -> bool:
        return session.answered is not None and quality.sends(self.profiles.of(session.callid),
                                                               self._role(session, tag))

    def _rtcp_rounds(self, session: SimSession) -> int:
        """RTCP report rounds since the answer (one a second, as the real pump sends them)."""
        if session.answered is None or quality.receptions(self.profiles.of(session.callid)) is None:
            return 0
        until = session.deleted_at if session.deleted_at is not None else self.clock()
        return max(0, int(until - session.answered))

    def _ssrc_stats(self, session: SimSession) -> dict:
        """What RTPengine's query shows once both endpoints' RTCP gave it a round-trip time: from the
        second round on, one MOS per round per reporting SSRC (the first round has no RTT: MOS 0)."""
        rounds = self._rtcp_rounds(session)
        kind = self.profiles.of(session.callid)
        chosen = quality.receptions(kind)
        if rounds < 2 or chosen is None:
            return {}
        out = {}
        for tag, reception in zip([t for t in session.tags.values() if t.tag], chosen):
            if not quality.sends(kind, self._role(session, tag)):
                continue
            out[str(tag.ssrc)] = _ssrc_entry(reception, int(session.answered or 0), rounds)
        return out

    def _tags(self, session: SimSession) -> dict:
        out = {}
        for key, tag in session.tags.items():
            peers = [{"tag": tag.peer, "type": "offer/answer"}] if tag.peer else []
            out[key] = {"tag": tag.tag, "created": tag.created, "subscriptions": peers, "subscribers": peers,
                        "medias": [self._media(tag, session)]}
            if tag.label:
                out[key]["label"] = tag.label
        return out

    def _media(self, tag: SimTag, session: SimSession) -> dict:
        sends = bool(tag.tag) and self._sends(session, tag)
        packets = self._packets(session) if sends else 0
        reports = self._rtcp_rounds(session) if sends else 0

        def stream(port: int, endpoint: int, rtcp: bool) -> dict:
            address = {"family": "IPv4", "address": "127.0.0.1", "port": endpoint} if endpoint else {}
            out = {"local port": port, "local address": "127.0.0.1", "family": "IPv4",
                   "endpoint": address, "advertised endpoint": dict(address),
                   "last packet": int(self.clock()) if (reports if rtcp else packets) else session.last_signal,
                   "flags": ["RTCP", "filled"] if rtcp else ["RTP", "filled"] + (["confirmed"] if packets else []),
                   "stats": {"packets": reports if rtcp else packets,
                             "bytes": reports * RTCP_BYTES if rtcp else packets * RTP_BYTES, "errors": 0}}
            if (reports if rtcp else packets):
                out["SSRC"] = tag.ssrc
            return out
        return {"index": 1, "type": "audio", "protocol": tag.protocol, "codec": tag.codec,
                "streams": [stream(tag.local_port, tag.endpoint_port, False),
                            stream(tag.local_port + 1, tag.endpoint_port + 1 if tag.endpoint_port else 0, True)],
                "flags": ["initialized", "send", "recv"]}

    def _packets(self, session: SimSession) -> int:
        """20 ms G.711 frames relayed since the answer (the demo's calls talk)."""
        if session.answered is None:
            return 0
        until = session.deleted_at if session.deleted_at is not None else self.clock()
        return max(0, int((until - session.answered) * PACKETS_PER_SECOND))

    def _totals(self, session: SimSession) -> dict:
        senders = [tag for tag in session.tags.values() if tag.tag and self._sends(session, tag)]
        packets = self._packets(session) * len(senders)
        reports = self._rtcp_rounds(session) * len(senders)
        return {"RTP": {"packets": packets, "bytes": packets * RTP_BYTES, "errors": 0},
                "RTCP": {"packets": reports, "bytes": reports * RTCP_BYTES, "errors": 0}}

    def _ng_statistics(self, request: dict) -> dict:
        own = len(self.sessions)
        uptime = int(self.clock()) - self.started
        current = dict.fromkeys(("sessionsown", "sessionsforeign", "sessionstotal", "transcodedmedia",
                                 "packetrate_user", "byterate_user", "errorrate_user", "packetrate_kernel",
                                 "byterate_kernel", "errorrate_kernel", "packetrate", "byterate", "errorrate",
                                 "media_userspace", "media_kernel", "media_mixed"), 0)
        current.update(sessionsown=own, sessionstotal=own, media_userspace=2 * own)
        total = {key: 0 for key in (
            "managedsessions", "rejectedsessions", "timeoutsessions", "silenttimeoutsessions", "finaltimeoutsessions",
            "offertimeoutsessions", "regularterminatedsessions", "forcedterminatedsessions", "relayedpackets_user",
            "relayedpacketerrors_user", "relayedbytes_user", "relayedpackets_kernel", "relayedpacketerrors_kernel",
            "relayedbytes_kernel", "relayedpackets", "relayedpacketerrors", "relayedbytes", "zerowaystreams",
            "onewaystreams")}
        total.update(self.totals)
        total = {"uptime": str(uptime), **total, "avgcallduration": "0.000000", "totalcallsduration": "0.000000",
                 "totalcallsduration2": "0.000000", "totalcallsduration_stddev": "0.000000"}
        interval: dict = {"totalcallsduration": "0.000000", "minmanagedsessions": own, "maxmanagedsessions": own}
        for suffix in ("delay", "requestrate"):
            for name in _NG_COMMAND_NAMES:
                for prefix in ("min", "max", "avg"):
                    interval[f"{prefix}{name}{suffix}"] = "0.000000" if suffix == "delay" else "0"
        proxy: dict = {"proxy": "127.0.0.1"}
        for short, command in _CONTROL_COUNTS:
            proxy[f"{short}count"] = self.commands.get(command, 0)
            proxy[f"{short}duration"] = "0.000000"
        proxy["errorcount"] = 0
        control: dict = {"proxies": [proxy]}
        control.update({f"total{n}count": self.commands.get(c, 0) for n, c in _CONTROL_COUNTS})
        pool = self.ports
        interfaces = [{"name": "default", "address": "127.0.0.1", "ports": {
            "min": pool.low, "max": pool.high, "used": pool.used, "used_pct": f"{100 * pool.used / pool.total:.2f}",
            "free": pool.total - pool.used, "totals": pool.total, "last": pool.last}}]
        return {"statistics": {"currentstatistics": current, "totalstatistics": total,
                               "intervalstatistics": interval,
                               "mos": {"mos_total": "0.000000", "mos2_total": "0.000000", "mos_samples_total": 0,
                                       "mos_average": "0.000000", "mos_stddev": "0.000000"},
                               "controlstatistics": control, "interfaces": interfaces, "transcoders": []},
                "result": "ok"}

    # ------------------------------------------------------------------ CLI

    def cli(self, line: str) -> str:
        words = line.split()
        if words[:2] == ["list", "interfaces"]:
            pool = self.ports
            return (f"Interface 'default' address '127.0.0.1' (IPv4)\n Port range: {pool.low} - {pool.high}\n"
                    f" Ports used: {pool.used:5d} / {pool.total:5d} ({100 * pool.used / pool.total:5.1f}%)\n"
                    f" Last port used: {pool.last}\n")
        if words[:2] == ["list", "numsessions"]:
            own = len(self.sessions)
            return (f"Current sessions own: {own}\nCurrent sessions foreign: 0\nCurrent sessions total: {own}\n"
                    f"Current transcoded media: 0\nCurrent sessions ipv4 only media: {own}\n"
                    "Current sessions ipv6 only media: 0\nCurrent sessions ip mixed  media: 0\n")
        if words[:2] == ["list", "totals"]:
            return self._cli_totals()
        if words[:2] == ["list", "sessions"] and len(words) == 3:
            return self._cli_sessions(words[2])
        return f"Unknown or incomplete command::{line.strip()}\n"

    def _cli_totals(self) -> str:
        own = len(self.sessions)
        rows = [("Owned sessions", own), ("Foreign sessions", 0), ("Total sessions", own), ("Transcoded media", 0)]
        rows += [(f"{what} per second ({where})", 0) for where in ("userspace", "kernel", "total")
                 for what in ("Packets", "Bytes", "Errors")]
        rows += [("Userspace-only media streams", 2 * own), ("Kernel-only media streams", 0),
                 ("Mixed kernel/userspace media streams", 0)]
        head = "\nStatistics over currently running sessions:\n\n"
        body = "".join(f" {name:<48}:{value}\n" for name, value in rows)
        uptime = int(self.clock()) - self.started
        tail = ("\nTotal statistics (does not include current running sessions):\n\n"
                f" {'Uptime of rtpengine':<48}:{uptime} seconds\n"
                f" {'Total managed sessions':<48}:{self.totals['managedsessions']}\n"
                f" {'Total rejected sessions':<48}:{self.totals['rejectedsessions']}\n"
                f" {'Total regular terminated sessions':<48}:{self.totals['regularterminatedsessions']}\n")
        return head + body + tail

    def _cli_sessions(self, which: str) -> str:
        if which in ("all", "own", "foreign"):
            sessions = [] if which == "foreign" else list(self.sessions.values())
            return "".join(
                f"callid: {s.callid:>60} | deletionmark: {'yes' if s.deleted_at else ' no'} | created: "
                f"{s.created:>11} | proxy:127.0.0.1:0 | redis_keyspace:0 | foreign:no\n" for s in sessions)
        session = self.sessions.get(which)
        if session is None:
            return f"\nCall ID not found ({which}).\n\n"
        out = [f"\ncallid: {session.callid}", f"deletionmark: {'yes' if session.deleted_at else 'no'}",
               f"created: {session.created}", "proxy: 127.0.0.1:0", "tos: 0", f"last_signal: {session.last_signal}",
               "redis_keyspace: 0", "foreign: no", ""]
        for index, tag in enumerate(session.tags.values()):
            out.append(f"--- Tag '{tag.tag}', type: {'FROM_TAG' if index == 0 else 'TO_TAG'}, label '{tag.label}', "
                       f"branch '', callduration {self.clock() - session.created:.6f}")
            out.append(f"------ Media #1 (audio over {tag.protocol}) using {tag.codec}")
            out.append(f"-------- Port {'127.0.0.1:' + str(tag.local_port):>20} <> "
                       f"{'127.0.0.1:' + str(tag.endpoint_port):>20} , SSRC 0, 0 p, 0 b, 0 e, {session.last_signal} ts")
            out.append(f"-------- Port {'127.0.0.1:' + str(tag.local_port + 1):>20} <> "
                       f"{'127.0.0.1:' + str(tag.endpoint_port + 1):>20}  (RTCP), SSRC 0, 0 p, 0 b, 0 e, "
                       f"{session.last_signal} ts")
        return "\n".join(out) + "\n\n"


_NG_COMMAND_NAMES = ("ping", "offer", "answer", "delete", "query", "list", "start recording", "stop recording",
                     "start forwarding", "stop forwarding", "block DTMF", "unblock DTMF", "block media",
                     "unblock media", "play media", "stop media", "play DTMF", "statistics", "silence media",
                     "unsilence media", "publish", "subscribe request", "subscribe answer", "unsubscribe")
_CONTROL_COUNTS = (("ping", "ping"), ("offer", "offer"), ("answer", "answer"), ("delete", "delete"),
                   ("query", "query"), ("list", "list"), ("startrec", "start recording"),
                   ("stoprec", "stop recording"), ("startfwd", "start forwarding"), ("stopfwd", "stop forwarding"),
                   ("blkdtmf", "block DTMF"), ("unblkdtmf", "unblock DTMF"), ("blkmedia", "block media"),
                   ("unblkmedia", "unblock media"), ("playmedia", "play media"), ("stopmedia", "stop media"),
                   ("playdtmf", "play DTMF"), ("stats", "statistics"), ("slnmedia", "silence media"),
                   ("unslnmedia", "unsilence media"), ("pub", "publish"), ("subreq", "subscribe request"),
                   ("subans", "subscribe answer"), ("unsub", "unsubscribe"))


# ---------------------------------------------------------------------- network front-ends


def decode_datagram(data: bytes) -> tuple[bytes, object]:
    """`<cookie> <bencode>` -> (cookie, decoded or None when the payload is not bencode)."""
    cookie, sep, payload = data.partition(b" ")
    if not sep:
        return cookie, None
    try:
        return cookie, bencode.bdecode(payload)
    except Exception:  # bencode.py raises several types for garbage
        return cookie, None


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine
        self.replies: "OrderedDict[bytes, bytes]" = OrderedDict()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        cookie, request = decode_datagram(data)
        reply = self.replies.get(cookie)  # RTPengine replays its cached reply for a reused cookie
        if reply is None:
            response = self.engine.handle(request) if request is not None else _error("Invalid NG data format")
            reply = cookie + b" " + bencode.bencode(response)
            self.replies[cookie] = reply
            while len(self.replies) > COOKIE_CACHE:
                self.replies.popitem(last=False)
        self.transport.sendto(reply, addr)


class SimRtpengine:
    """ng on UDP and CLI on TCP, both on loopback free ports."""

    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine
        self.ng: tuple[str, int] = ("127.0.0.1", 0)
        self.cli: tuple[str, int] = ("127.0.0.1", 0)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _NgProtocol(self.engine),
                                                           local_addr=("127.0.0.1", 0))
        self.ng = ("127.0.0.1", self._udp.get_extra_info("sockname")[1])
        self._tcp = await asyncio.start_server(self._serve_cli, "127.0.0.1", 0)
        self.cli = ("127.0.0.1", self._tcp.sockets[0].getsockname()[1])

    async def _serve_cli(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            writer.write(self.engine.cli(line.decode("utf-8", "replace")).encode())
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def request(self, command: dict) -> dict:
        return self.engine.handle(command)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
