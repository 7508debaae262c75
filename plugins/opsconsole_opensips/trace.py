"""A live SIP trace from OpenSIPS's own tracer: HEP listener + MI trace_start/trace_stop.

    session = TraceSession(mi.call, TraceOptions(callee="1001"), audit=audit_factory)
    async with session:                      # checks prerequisites, cleans leftovers, trace_start
        async for line in session.lines():   # LadderLine per message, as they arrive
            ...
    # trace_stop has been sent, whatever ended the block

OpenSIPS (3.4 and 4.0, tried on the real builds) needs `loadmodule "proto_hep.so"`, `loadmodule "tracer.so"`
and a HEP socket (`socket=hep_udp:IP:PORT`); proto_hep refuses to start without one, and each hep_udp socket
shows in MI `ps` as "SIP receiver hep_udp:IP:PORT" (hep_tcp sockets are served by the generic TCP receivers,
so a TCP-only setup is only found by trying).  MI `trace_start` (4.0: `tracer:start`) takes the named sets
{id, uri}, {id, uri, filter}, {id, uri, filter, scope, type}; `trace_stop id`; `trace` lists the destinations
as {"global": "on", "trace destinations": [{"name", "type", "uri", "state": "dynamic", "filters"}]}.  Dynamic
traces are lost when OpenSIPS restarts, and one left behind by a crashed opsconsole keeps sending to a dead
port: the next start removes those (ids `opsconsole-PID-RANDOM` of a PID no longer alive on this host).

A trace changes the platform only transiently (like event_subscribe): it is allowed in read-only mode,
but every trace_start/trace_stop goes through `audit(method, params)` (a context manager that records the
outcome; console.service.AuditEntry).  The session is UI-neutral: a TUI screen drives it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, BinaryIO, Callable, ContextManager, Iterable

from console.errors import OpsError, RemoteError
from console.lifecycle import StartStop

from .hep import HEPError, HEPPacket, HEPStreamDecoder, decode
from .ladder import CallFlow, Explanation, Ladder, LadderLine, TracedMessage, explain, explanation_text, line_text
from .pcap import PcapWriter
from .trace_join import join_lines
from .trace_notes import DIALOG_STATES, dialog_note, location_note  # noqa: F401  (callers import them here)

ID_PREFIX = "opsconsole-"
_ID = re.compile(r"^opsconsole-(\d+)-[0-9a-f]+$")
_FILTER_VALUE = re.compile(r"^[^\s;,=]+$")
SCOPES = {"dialog": "d", "message": "m", "transaction": "t"}  # the tracer takes one of m, t, d
NO_SUCH_TRACE = 400  # trace_stop of an unknown id: {"code": 400, "message": "Bad parameter value"} (3.4 and 4.0)
CONFIG_LINES = ('loadmodule "proto_hep.so"', 'loadmodule "tracer.so"', "socket=hep_udp:127.0.0.1:9060")
QUEUE_LIMIT = 10_000  # packets waiting for the reader; beyond, newer ones are dropped (and counted)
UDP_BUFFER = 4 << 20  # bytes asked for the HEP socket's receive buffer (the kernel caps it at rmem_max)

MICall = Callable[[str, Any], Awaitable[Any]]
Audit = Callable[[str, Any], ContextManager]


class TraceNotReady(OpsError):
    """OpenSIPS cannot trace for us: tracer/proto_hep/HEP socket missing, or the trace was refused."""


# --------------------------------------------------------------------------- prerequisites (pure)

@dataclass(frozen=True, slots=True)
class Readiness:
    tracer: bool  # trace_start is a known MI command
    dialog: bool = True  # the dialog module is loaded (scope "d" follows dialogs)
    hep_udp: tuple[str, ...] = ()  # "127.0.0.1:9060" per hep_udp socket seen in `ps`
    processes_known: bool = False  # `ps` answered

    @property
    def ready(self) -> bool:
        return self.tracer

    @property
    def transport(self) -> str:
        """What OpenSIPS can send HEP over: udp when a hep_udp socket is seen, else tcp (hep_tcp sockets
        are not visible in `ps`; proto_hep cannot be loaded without one of the two)."""
        return "udp" if self.hep_udp or not self.processes_known else "tcp"

    def problem(self) -> str:
        if not self.tracer:
            return "OpenSIPS cannot trace: the tracer module is not loaded (no trace_start MI command)"
        return ""

    @staticmethod
    def remedy() -> str:
        return "add to opensips.cfg and restart OpenSIPS: " + "; ".join(CONFIG_LINES)


def readiness(commands: Iterable[str], processes: Any = None) -> Readiness:
    """From `which` (names in either spelling) and the `ps` reply (None: not asked or failed)."""
    names = set(commands)
    tracer = bool(names & {"trace_start", "tracer:start"})
    dialog = bool(names & {"dlg_list", "dialog:list"}) or names <= {"trace_start"}  # `which` unknown: assume
    hep = _hep_udp_sockets(processes)
    return Readiness(tracer=tracer, dialog=dialog, hep_udp=hep, processes_known=processes is not None)


def _hep_udp_sockets(processes: Any) -> tuple[str, ...]:
    rows = processes.get("Processes") if isinstance(processes, dict) else None
    found = []
    for row in rows if isinstance(rows, list) else ():
        kind = row.get("Type") if isinstance(row, dict) else None
        if isinstance(kind, str) and "hep_udp:" in kind:
            address = kind.partition("hep_udp:")[2].strip()
            if address not in found:
                found.append(address)
    return tuple(found)


# --------------------------------------------------------------------------- options

@dataclass(frozen=True, slots=True)
class TraceOptions:
    caller: str = ""
    callee: str = ""
    ip: str = ""
    # "caller or callee": the tracer's filters all have to match (AND), so a user traced in both
    # directions is two dynamic traces to the same listener, one `caller=USER`, one `callee=USER`
    user: str = ""
    scope: str = "dialog"  # "dialog" (calls from their INVITE; no REGISTERs) or "message" (each message)
    listen_host: str = ""  # "": loopback for a local OpenSIPS, else the address that routes to it
    listen_port: int = 0  # 0: from the OS

    def validate(self) -> None:
        if self.user and (self.caller or self.callee):
            raise ValueError("a user traced as caller or callee takes no --caller/--callee besides")
        for name in ("caller", "callee", "user"):
            value = getattr(self, name)
            if value and not _FILTER_VALUE.match(value):
                raise ValueError(f"--{name} {value!r}: a SIP user, without spaces, ';', ',' or '='")
        if self.ip:
            try:
                ipaddress.ip_address(self.ip)
            except ValueError:
                raise ValueError(f"--ip {self.ip!r} is not an IP address") from None
        if self.scope not in SCOPES:
            raise ValueError(f"--scope must be dialog, transaction or message, not {self.scope!r}")
        if not 0 <= self.listen_port <= 65535:
            raise ValueError(f"listen port {self.listen_port} is out of range")

    def filters(self) -> list[str]:
        return [f"{key}={value}" for key, value in (("caller", self.caller), ("callee", self.callee),
                                                     ("ip", self.ip)) if value]

    def filter_sets(self) -> list[list[str]]:
        """One filter list per dynamic trace: two for `user` (caller=USER, callee=USER), else one."""
        if not self.user:
            return [self.filters()]
        return [[f"{side}={self.user}", *self.filters()] for side in ("caller", "callee")]

    def describe(self) -> str:
        """What is traced, in words: 'alice (caller or callee)', 'caller=alice, ip=…', 'everything'."""
        if self.user:
            extra = f", {', '.join(self.filters())}" if self.filters() else ""
            return f"{self.user} (caller or callee{extra})"
        return ", ".join(self.filters()) or "everything"


def new_trace_id() -> str:
    return f"{ID_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"


def leftover(name: str, uri: str, *, alive: Callable[[int], bool], local: Callable[[str], bool]) -> bool:
    """A trace an opsconsole on this host started and could not stop: our id of a dead PID, sending here."""
    match = _ID.match(name)
    if match is None:
        return False
    host = uri.rsplit(":", 1)[0].strip("[]") if ":" in uri else uri
    return local(host) and not alive(int(match.group(1)))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def is_local_address(host: str) -> bool:
    """True when this host owns `host` (it can bind it)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
        return True
    except (OSError, ValueError):
        return False


def route_source(target_host: str) -> str:
    """The local address this host uses to reach `target_host` (no packet is sent)."""
    try:
        family = socket.AF_INET6 if ":" in target_host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target_host, 9))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


# --------------------------------------------------------------------------- HEP listener

class _UDPReceiver(asyncio.DatagramProtocol):
    def __init__(self, listener: "HEPListener") -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            self.listener.deliver(decode(data))
        except HEPError as exc:
            self.listener.refused(str(exc))


class HEPListener:
    """UDP and TCP on one address and port (port 0: one the OS gives that is free for both)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self.host, self.port = host, port
        self.queue: asyncio.Queue[HEPPacket | None] = asyncio.Queue()
        self.queue_limit = queue_limit
        self.received = self.dropped = self.bad_frames = 0
        self.last_error = ""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        attempts = 20 if self.port == 0 else 1
        for attempt in range(attempts):
            udp, _ = await loop.create_datagram_endpoint(lambda: _UDPReceiver(self), local_addr=(self.host, self.port))
            with contextlib.suppress(OSError):  # a burst of HEP (a busy trace) waits in the kernel, not dropped
                udp.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve, self.host, port)
            except OSError:
                udp.close()
                if attempt == attempts - 1:
                    raise
                continue
            self._udp, self.port = udp, port
            return

    def uri(self, transport: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"hep:{host}:{self.port};transport={transport};version=3"

    def deliver(self, packet: HEPPacket) -> None:
        self.received += 1
        if self.queue.qsize() >= self.queue_limit:
            self.dropped += 1
            return
        self.queue.put_nowait(packet)

    def refused(self, error: str) -> None:
        self.bad_frames += 1
        self.last_error = error

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        decoder = HEPStreamDecoder()
        try:
            while data := await reader.read(65536):
                for packet in decoder.feed(data):
                    self.deliver(packet)
        except HEPError as exc:  # no resynchronising a HEP stream: drop this connection
            self.refused(str(exc))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def packets(self) -> AsyncIterator[HEPPacket]:
        while (packet := await self.queue.get()) is not None:
            yield packet

    async def aclose(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
            self._tcp = None
        self.queue.put_nowait(None)  # ends packets()


# --------------------------------------------------------------------------- the session

@dataclass
class TraceSession(StartStop):
    """One dynamic trace.  `call(method, params)` is the MI session's (3.x names, mapped for 4.0);
    `mi_host` is the MI target's host ("" for a FIFO: OpenSIPS runs here)."""

    call: MICall
    options: TraceOptions = field(default_factory=TraceOptions)
    audit: Audit | None = None
    mi_host: str = ""
    trace_id: str = field(default_factory=new_trace_id)
    alive: Callable[[int], bool] = pid_alive
    local: Callable[[str], bool] = is_local_address

    def __post_init__(self) -> None:
        self.ladder = Ladder()
        self.listener: HEPListener | None = None
        self.readiness: Readiness | None = None
        self.removed_leftovers: list[str] = []
        self.trace_ids: list[str] = [self.trace_id]  # one per filter set (TraceOptions.filter_sets)
        self._sent: list[str] = []  # ids trace_start was sent for (stop() must send trace_stop)
        self._confirmed: set[str] = set()  # ... and OpenSIPS said OK
        self._seen: dict[tuple, None] = {}  # recent messages: two traces of ours may both send one
        self.started_at = 0.0
        self.uri = ""
        self.stop_error = ""
        self._pcap: BinaryIO | None = None
        self._pcap_writer = PcapWriter()

    # ------------------------------------------------------------------ lifecycle (async with: console.lifecycle)

    async def check(self) -> Readiness:
        """The prerequisites, from `which` (via the session's command map) and `ps`."""
        commands = await self._which()
        processes = None
        with contextlib.suppress(OpsError):
            processes = await self.call("ps", None)
        self.readiness = readiness(commands, processes)
        if not self.readiness.ready:
            raise TraceNotReady(self.readiness.problem(), hint=self.readiness.remedy())
        if self.options.scope == "dialog" and not self.readiness.dialog:
            raise TraceNotReady("scope dialog follows calls through the dialog module, which this OpenSIPS does "
                                "not load", hint="trace with --scope message (each message) instead")
        return self.readiness

    async def _which(self) -> list[str]:
        try:
            result = await self.call("which", None)
        except RemoteError:
            return ["trace_start"]  # `which` itself unknown: let trace_start say
        return [c for c in result if isinstance(c, str)] if isinstance(result, list) else []

    async def start(self) -> None:
        self.options.validate()
        ready = await self.check()
        await self.remove_leftovers()
        self.listener = HEPListener(self._listen_host(), self.options.listen_port)
        try:
            await self.listener.start()
        except OSError as exc:
            raise TraceNotReady(f"cannot listen for HEP on {self.listener.host}:{self.listener.port}: "
                                f"{exc.strerror or exc}", hint="choose another --listen HOST:PORT") from None
        self.uri = self.listener.uri(ready.transport)
        sets = self.options.filter_sets()
        self.trace_ids = [self.trace_id] + [new_trace_id() for _ in sets[1:]]
        for trace_id, filters in zip(self.trace_ids, sets):
            await self._start_one(trace_id, filters)
        self.started_at = time.time()

    async def _start_one(self, trace_id: str, filters: list[str]) -> None:
        params = {"id": trace_id, "uri": self.uri, "filter": filters, "scope": SCOPES[self.options.scope],
                  "type": "sip"}
        # From here the trace may exist in OpenSIPS even if no answer comes back (a timeout, a
        # cancellation): stop() then still sends trace_stop, and "no such trace" is no error.
        self._sent.append(trace_id)
        with self._audited("trace_start", params) as entry:
            try:
                await self.call("trace_start", params)
                entry.succeeded()
            except RemoteError as exc:
                self._sent.remove(trace_id)  # refused: nothing to stop
                raise TraceNotReady(f"OpenSIPS refused trace_start: {exc}", hint=Readiness.remedy()) from None
        self._confirmed.add(trace_id)

    @property
    def started(self) -> bool:
        """trace_start was sent for at least one of our traces and no trace_stop yet."""
        return bool(self._sent)

    @property
    def active(self) -> bool:
        """OpenSIPS confirmed a trace of ours and it was not stopped yet (the header's TRACE ON)."""
        return bool(self._confirmed & set(self._sent))

    def _listen_host(self) -> str:
        if self.options.listen_host:
            return self.options.listen_host
        host = self.mi_host.strip("[]")
        if not host or host in ("localhost",) or _is_loopback(host):
            return "127.0.0.1"
        return route_source(host)

    async def stop(self) -> None:
        """trace_stop each of our traces (once; a failure is kept in `stop_error`), then the listener closes."""
        sent, self._sent = self._sent, []
        for trace_id in sent:
            await self._stop_one(trace_id)
        if len(sent) > 1:
            await self._stop_again(sent)
        if self.listener is not None:
            await self.listener.aclose()

    async def _stop_again(self, ids: list[str]) -> None:
        left = await self._stop_listed(ids)
        if left:
            self.stop_error = self.stop_error or (f"OpenSIPS still lists {', '.join(left)} after trace_stop "
                                                  "(it removes only the first dynamic trace of its list)")

    async def _stop_listed(self, ids: list[str]) -> list[str]:
        """OpenSIPS 3.4/4.0 answer OK to trace_stop but remove only the first dynamic trace of their list
        (tried: of three, stopping the last first removes none): what is still listed is stopped again,
        in the list's order, until none of `ids` is left (or nothing moves).  Returns those left."""
        left: list[str] = []
        for attempt in range(len(ids) + 1):
            try:
                listing = destinations(await self.call("trace", None))
            except OpsError:
                return []  # unknown: the first trace_stop's answers stand
            left = [name for name in (row.get("name") for row in listing) if name in ids]
            if not left or attempt == len(ids):
                break
            for trace_id in left:
                await self._stop_one(trace_id)
        return left

    async def _stop_one(self, trace_id: str) -> None:
        params = {"id": trace_id}
        try:
            with self._audited("trace_stop", params) as entry:
                await self.call("trace_stop", params)
                entry.succeeded()
        except RemoteError as exc:
            if trace_id in self._confirmed or exc.code != NO_SUCH_TRACE:  # unconfirmed and unknown: never began
                self.stop_error = str(exc)
        except Exception as exc:  # the caller reports it: the trace may still be running
            self.stop_error = str(exc) or type(exc).__name__

    async def remove_leftovers(self) -> list[str]:
        """trace_stop every `opsconsole-PID-…` trace of a PID that is gone and whose URI is on this host."""
        try:
            listing = await self.call("trace", None)
        except OpsError:
            return []
        for row in destinations(listing):
            name, uri = row.get("name"), row.get("uri", "")
            if isinstance(name, str) and isinstance(uri, str) and leftover(name, uri, alive=self.alive,
                                                                           local=self.local):
                params = {"id": name}
                with contextlib.suppress(RemoteError), self._audited("trace_stop", params) as record:
                    await self.call("trace_stop", params)
                    record.succeeded()
                    self.removed_leftovers.append(name)
        return self.removed_leftovers

    def _audited(self, method: str, params: Any) -> ContextManager:
        return self.audit(method, params) if self.audit is not None else contextlib.nullcontext(_NoEntry())

    # ------------------------------------------------------------------ messages

    async def messages(self) -> AsyncIterator[TracedMessage]:
        """Each traced SIP message as it arrives (HEP packets that are not SIP are skipped); written to
        the attached pcap as it goes (flushed: a killed process leaves a readable file)."""
        async for packet in self.listener.packets():
            message = TracedMessage.from_hep(packet)
            if message is None or self._again(packet):
                continue
            if self._pcap is not None:
                self._pcap.write(self._pcap_writer.record(packet))
                self._pcap.flush()
            yield message

    def _again(self, packet: HEPPacket) -> bool:
        """True for a message a second trace of ours sent too (a call from the traced user to itself,
        a REGISTER whose From and To are both the user): the same time, addresses and payload."""
        if len(self.trace_ids) < 2:
            return False
        key = (packet.timestamp, packet.src, packet.src_port, packet.dst, packet.dst_port, packet.payload)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > 256:  # both copies arrive together: a short memory is enough
            self._seen.pop(next(iter(self._seen)))
        return False

    def attach_pcap(self, file: BinaryIO) -> None:
        """Write every message from now on to `file` as a pcap (header first)."""
        file.write(PcapWriter.header())
        file.flush()
        self._pcap = file

    def write_pcap(self, file: BinaryIO) -> int:
        """Every message traced so far, as one pcap (a screen's "write"); returns how many."""
        writer = PcapWriter()
        file.write(writer.header())
        messages = sorted((m for flow in self.ladder.calls.values() for m in flow.messages), key=lambda m: m.time)
        for message in messages:
            file.write(writer.record(message.packet))
        return len(messages)

    @staticmethod
    def line_text(line: LadderLine) -> str:
        return line_text(line)

    async def explain_text(self, flow: CallFlow) -> list[str]:
        """The lines to show under the ladder for `flow`; none when it is not news (Explanation.noteworthy)."""
        explanation, notes = await self.explain(flow)
        return explanation_text(explanation, *notes) if explanation.noteworthy else []

    def state_lines(self, flow: CallFlow, view: Any = None, now: float | None = None, *,
                    mos_poor: float = 3.5, silent_after_s: float = 10.0, notes: Iterable[str] = ()) -> list[str]:
        """The flow explained as it stands (pure: no MI, the flow is not marked explained), joined with
        what the console knows now (`view`: a LiveView; trace_join), then `notes` (explain()'s MI notes)."""
        joined = join_lines(flow, view, time.time() if now is None else now, mos_poor=mos_poor,
                            silent_after_s=silent_after_s)
        return explanation_text(explain(flow), *joined, *notes)

    def listener_note(self) -> str:
        listener = self.listener
        notes = []
        if listener is not None and listener.dropped:
            notes.append(f"{listener.dropped} dropped (reader too slow)")
        if listener is not None and listener.bad_frames:
            notes.append(f"{listener.bad_frames} frame(s) refused: {listener.last_error}")
        return f" ({'; '.join(notes)})" if notes else ""

    async def lines(self) -> AsyncIterator[LadderLine]:
        async for message in self.messages():
            yield self.ladder.add(message, asyncio.get_running_loop().time())

    async def explain(self, flow: CallFlow) -> tuple[Explanation, tuple[str, ...]]:
        """The call in plain words, joined with OpenSIPS's state: the location table about the callee when
        it failed for want of one, the dialog when the call is (still) up.  Marks the flow explained."""
        flow.explained = True
        explanation = explain(flow)
        notes = []
        if explanation.lookup_aor:
            notes.append(await location_note(self.call, explanation.lookup_aor, explanation.lookup_domain))
        if explanation.kind == "INVITE" and explanation.outcome in ("answered", "no-ack") and not flow.ended:
            notes.append(await dialog_note(self.call, flow.call_id))
        return explanation, tuple(note for note in notes if note)


class _NoEntry:
    def succeeded(self) -> None:
        pass


def destinations(listing: Any) -> list[dict]:
    rows = listing.get("trace destinations") if isinstance(listing, dict) else None
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
