"""OpenSIPS Event Interface, the asyncio half: `EventListener`.

At 100k contacts `ul_dump` takes minutes and holds usrloc locks (OpenSIPS 3.4),
so the console subscribes to E_UL_CONTACT_* / E_DLG_STATE_CHANGED and keeps its
own tables (events_store.py).  The listener binds loopback UDP (event_datagram)
or TCP (event_stream), subscribes through an MI client, re-subscribes on a
timer, feeds the decoded events (events_codec.py) to the stores and tells the
UI when it must fall back to polling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from console.errors import OpsError, ProtocolError, RemoteError

from .events_codec import (
    DIALOG_SUBSCRIPTIONS,
    REGISTRATION_SUBSCRIPTIONS,
    Event,
    EventStreamDecoder,
    decode_datagram,
    parse_event,
)


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
