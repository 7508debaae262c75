"""OpenSIPS Event Interface emulation: event_subscribe / subscribers_list and delivery.

event_datagram (`udp:HOST:PORT`) sends one JSON-RPC notification per datagram;
event_stream (`tcp:HOST:PORT[/method]`) writes the objects back to back with no
delimiter on one TCP connection.  A `/method` suffix replaces the JSON-RPC method.
Only loopback destinations are accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Callable

from .mi_render import MiError
from .mi_server import utf8_bytes
from .state import StateEvent

log = logging.getLogger(__name__)

# event ids as OpenSIPS 3.4 numbered them in the lab (subscribers_list capture)
EVENT_IDS = {
    "E_CORE_THRESHOLD": 1, "E_CORE_SHM_THRESHOLD": 2, "E_CORE_PKG_THRESHOLD": 3, "E_CORE_PROC_AUTO_SCALE": 4,
    "E_CORE_TCP_DISCONNECT": 5, "E_UL_AOR_INSERT": 6, "E_UL_AOR_DELETE": 7, "E_UL_CONTACT_INSERT": 8,
    "E_UL_CONTACT_UPDATE": 9, "E_UL_CONTACT_DELETE": 10, "E_UL_CONTACT_REFRESH": 11, "E_UL_LATENCY_UPDATE": 12,
    "E_DLG_STATE_CHANGED": 13, "E_RTPENGINE_STATUS": 14,
}
LOOPBACK = ("127.0.0.1", "localhost")
DEFAULT_EXPIRE = 3600


def _bad_value() -> MiError:
    return MiError(400, "Bad parameter value")


@dataclass
class Subscriber:
    event: str
    socket: str  # as given, e.g. "tcp:127.0.0.1:18901/ul_aor_insert"
    proto: str
    host: str
    port: int
    method: str
    expire: int
    since: float
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] | None = None  # events raised while event_stream connects

    def ttl(self, now: float) -> int:
        return int(self.since + self.expire - now)


def parse_socket(socket: str, event: str) -> tuple[str, str, int, str]:
    proto, sep, rest = socket.partition(":")
    if not sep or proto not in ("udp", "tcp"):
        raise _bad_value()
    address, _, method = rest.partition("/")
    host, sep, port_text = address.rpartition(":")
    if not sep or host not in LOOPBACK or not port_text.isdecimal() or not 0 < int(port_text) < 65536:
        raise _bad_value()
    return proto, "127.0.0.1", int(port_text), method or event


def encode(method: str, params: dict) -> bytes:
    return utf8_bytes(json.dumps({"jsonrpc": "2.0", "method": method, "params": params},
                                 separators=(",", ":"), ensure_ascii=False))


class EventHub:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.subscribers: list[Subscriber] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sub in self.subscribers:
            if sub.writer is not None:
                sub.writer.close()
        self.subscribers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    # ------------------------------------------------------------------ MI side

    def subscribe(self, event, socket, expire=DEFAULT_EXPIRE) -> str:
        if not isinstance(event, str) or event not in EVENT_IDS or not isinstance(socket, str):
            raise _bad_value()
        try:
            expire = int(expire)
        except (TypeError, ValueError):
            raise _bad_value() from None
        proto, host, port, method = parse_socket(socket, event)
        self._drop(lambda s: s.event == event and s.socket == socket)
        if expire > 0:  # expire 0 unsubscribes
            self.subscribers.insert(0, Subscriber(event, socket, proto, host, port, method, expire, self.clock()))
        return "OK"

    def listing(self, event=None, socket=None) -> dict:
        self.prune()
        now = self.clock()
        events = []
        for name, event_id in EVENT_IDS.items():
            if event is not None and name != event:
                continue
            subs = [s for s in self.subscribers if s.event == name and (socket is None or s.socket == socket)]
            if subs:
                events.append({"name": name, "id": event_id, "Subscribers": [
                    {"socket": s.socket, "expire": s.expire, "ttl": s.ttl(now)} for s in subs]})
        return {"Events": events}

    def prune(self) -> None:
        now = self.clock()
        self._drop(lambda s: s.ttl(now) <= 0)

    def _drop(self, predicate) -> None:
        keep = []
        for sub in self.subscribers:
            if predicate(sub):
                if sub.writer is not None:
                    sub.writer.close()
            else:
                keep.append(sub)
        self.subscribers = keep

    # ------------------------------------------------------------------ delivery

    def publish(self, events: list[StateEvent]) -> None:
        if not events or not self.subscribers:
            return
        self.prune()
        for event in events:
            for sub in self.subscribers:
                if sub.event == event.name:
                    self._send(sub, encode(sub.method, event.params))

    def _send(self, sub: Subscriber, payload: bytes) -> None:
        if sub.proto == "udp":
            if self._udp is not None:
                self._udp.sendto(payload, (sub.host, sub.port))
            return
        if sub.writer is not None and not sub.writer.is_closing():
            sub.writer.write(payload)
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(sub, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, sub: Subscriber, payload: bytes) -> None:
        """event_stream connects on the first event; later events reuse the connection."""
        if sub.writer is not None and not sub.writer.is_closing():
            # Connected while this task waited its turn: a second connection could deliver
            # this event after later ones (seen as a rare test flake under load).
            sub.writer.write(payload)
            return
        if sub.pending is not None:
            sub.pending.append(payload)
            return
        sub.pending = [payload]
        try:
            _, writer = await asyncio.open_connection(sub.host, sub.port)
        except OSError as exc:
            log.info("event_stream %s unreachable: %s", sub.socket, exc)
            sub.pending = None
            return
        sub.writer = writer
        writer.write(b"".join(sub.pending))
        sub.pending = None
