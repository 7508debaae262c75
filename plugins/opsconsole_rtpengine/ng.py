"""Async RTPengine ng client over UDP.

One datagram socket per client; any number of requests in flight, each
matched to its reply by cookie.  A request is re-sent (same cookie, so
RTPengine answers from its reply cache instead of executing it twice) a
bounded number of times within the overall timeout.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from console.errors import ConnectionRefused, ProtocolError, RemoteError, Timeout, TransportError

from . import codec

RECV_BUFFER = 1 << 20  # many replies of up to 64 KiB may arrive at once (rtpengine#1856)


class NgError(RemoteError):
    """RTPengine answered `result: error`; `reason` is its `error-reason`."""

    def __init__(self, reason: str, *, command: str = "", target: str = "") -> None:
        what = f"rtpengine rejected ng {command!r}" if command else "rtpengine returned an ng error"
        super().__init__(f"{what}: {reason}", target=target)
        self.reason = reason
        self.command = command


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: "NgClient") -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        self.client._on_socket_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_closed(exc)


class NgClient:
    def __init__(self, host: str, port: int, timeout: float = 2.0, retries: int = 2) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = max(0, retries)
        self.ignored_replies = 0  # replies whose cookie matched no pending request
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future | None = None
        self._pending: dict[str, asyncio.Future] = {}

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ commands

    async def ping(self) -> None:
        """Raises unless the daemon answers `pong`."""
        reply = await self.request({"command": "ping"})
        if reply.get("result") != "pong":
            raise ProtocolError(f"ng ping answered {reply.get('result')!r} instead of 'pong'", target=self.target)

    async def list(self, limit: int = 32) -> list[str]:
        """Call-ids; RTPengine returns at most `limit` (32 when not given)."""
        reply = await self.request({"command": "list", "limit": int(limit)})
        calls = reply.get("calls")
        if not isinstance(calls, list):
            raise ProtocolError("ng list reply has no 'calls' list", target=self.target)
        return [str(c) for c in calls]

    async def query(self, callid: str, from_tag: str | None = None) -> dict[str, Any]:
        message = {"command": "query", "call-id": callid}
        if from_tag:
            message["from-tag"] = from_tag
        return await self.request(message)

    async def statistics(self) -> dict[str, Any]:
        reply = await self.request({"command": "statistics"})
        stats = reply.get("statistics")
        if not isinstance(stats, dict):
            raise ProtocolError("ng statistics reply has no 'statistics' dictionary", target=self.target)
        return stats

    async def offer(self, callid: str, from_tag: str, sdp: str,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
        message = {**(options or {}), "command": "offer", "call-id": callid, "from-tag": from_tag, "sdp": sdp}
        return await self.request(message)

    async def answer(self, callid: str, from_tag: str, to_tag: str, sdp: str,
                     options: dict[str, Any] | None = None) -> dict[str, Any]:
        message = {**(options or {}), "command": "answer", "call-id": callid, "from-tag": from_tag,
                   "to-tag": to_tag, "sdp": sdp}
        return await self.request(message)

    async def delete(self, callid: str, from_tag: str | None = None, to_tag: str | None = None,
                     options: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {**(options or {}), "command": "delete", "call-id": callid}
        if from_tag:
            message["from-tag"] = from_tag
        if to_tag:
            message["to-tag"] = to_tag
        return await self.request(message)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one ng command; the reply dict (str values), or a typed OpsError."""
        cookie = codec.new_cookie()
        datagram = codec.encode(cookie, message)
        transport = await self._ensure_transport()
        future = asyncio.get_running_loop().create_future()
        self._pending[cookie] = future
        try:
            reply = await self._send_with_retries(transport, datagram, future)
        finally:
            self._pending.pop(cookie, None)
        if reply.get("result") == "error":
            reason = str(reply.get("error-reason") or "no error-reason given")
            raise NgError(reason, command=str(message.get("command", "")), target=self.target)
        return reply

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._fail_pending(TransportError("ng client closed", target=self.target))

    # ------------------------------------------------------------------ internals

    async def _send_with_retries(self, transport, datagram: bytes, future: asyncio.Future) -> dict[str, Any]:
        attempts = self.retries + 1
        wait = self.timeout / attempts
        for _ in range(attempts):
            try:
                transport.sendto(datagram)
            except OSError as exc:
                raise self._transport_error(exc) from None
            done, _ = await asyncio.wait({future}, timeout=wait)
            if done:
                return future.result()
        raise Timeout(
            f"no ng reply from rtpengine at {self.target} within {self.timeout:g} s ({attempts} attempts)",
            target=self.target,
            hint="is rtpengine running with --listen-ng on this address?",
        )

    async def _ensure_transport(self) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        if self._transport is not None and self._loop is loop and not self._transport.is_closing():
            return self._transport
        if self._connecting is not None and self._loop is loop:
            return await asyncio.shield(self._connecting)
        self._loop = loop
        self._connecting = loop.create_future()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _NgProtocol(self), remote_addr=(self.host, self.port))
        except OSError as exc:
            error = self._transport_error(exc)
            self._connecting.set_exception(error)
            self._connecting.exception()  # mark retrieved: waiters re-raise it
            self._connecting = None
            raise error from None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            except OSError:
                pass  # the default buffer still works for modest fan-outs
        self._transport = transport
        self._connecting.set_result(transport)
        self._connecting = None
        return transport

    def _on_datagram(self, data: bytes) -> None:
        try:
            cookie, _ = codec.split_cookie(data)
        except ProtocolError:
            self.ignored_replies += 1
            return
        future = self._pending.get(cookie)
        if future is None or future.done():
            self.ignored_replies += 1  # a late duplicate or someone else's reply
            return
        try:
            future.set_result(codec.decode(data)[1])
        except ProtocolError as exc:
            exc.target = exc.target or self.target
            future.set_exception(exc)

    def _on_socket_error(self, exc: Exception) -> None:
        self._fail_pending(self._transport_error(exc))

    def _on_closed(self, exc: Exception | None) -> None:
        self._transport = None
        if exc is not None:
            self._fail_pending(self._transport_error(exc))

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    def _transport_error(self, exc: BaseException) -> TransportError:
        if isinstance(exc, ConnectionRefusedError):
            return ConnectionRefused(
                f"nothing listens for ng on udp {self.target} (connection refused)",
                target=self.target, hint="check rtpengine's --listen-ng address",
            )
        if isinstance(exc, socket.gaierror):
            return TransportError(f"cannot resolve rtpengine host {self.host!r}: {exc}", target=self.target)
        return TransportError(f"ng socket error talking to {self.target}: {exc}", target=self.target)
