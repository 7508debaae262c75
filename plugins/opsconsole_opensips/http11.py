"""One HTTP/1.1 POST on a connection of its own, on asyncio alone: what mi_http needs, nothing more.

mi_http is answered one request at a time and every request gets a fresh connection (see
client.ONE_SHOT_HEADERS), so no pool, no keep-alive, no redirects, no proxies, no compression are
needed.  httpx did the same job at an import cost of ~70 ms (httpx, httpcore, anyio, h11, idna,
email...) per one-shot command, more than a whole 70-contact snapshot's I/O (bench/bench_oneshot.py).

The reply is collected as raw chunks by an asyncio protocol and joined once: the body reaches the
decoder as the bytes that came off the socket.  A TLS context is built only for https:// URLs.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, urlsplit

from console.errors import ConfigError, ConnectionRefused, ProtocolError, TransportError

from .codec import check_size

HEAD_MAX_BYTES = 64 * 1024  # status line + headers; mi_http sends a few hundred bytes


class ConnectionDropped(Exception):
    """The server closed or reset the connection before a complete reply (safe to retry a read)."""


def parse_url(url: str) -> tuple[str, int, str, bool, tuple[str, str] | None]:
    """(host, port, request target, tls, userinfo credentials) of an http(s):// URL."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ConfigError(f"MI URL has an invalid port: {parts.netloc.rpartition('@')[2]!r}") from None
    if not parts.hostname:
        raise ConfigError(f"MI URL has no host: {url.rpartition('@')[2]!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    userinfo = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    return parts.hostname, port, path, tls, userinfo


def tls_context() -> Any:
    """A verifying context with the CA bundle httpx used (certifi when installed), built only for https."""
    import ssl

    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def build_request(host: str, port: int, path: str, tls: bool, body: bytes, headers: dict[str, str],
                  auth: tuple[str, str] | None) -> bytes:
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if tls else 80
    lines = [f"POST {path} HTTP/1.1", f"Host: {shown_host}" + ("" if port == default_port else f":{port}")]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        lines.append(f"Authorization: Basic {token}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ReplyReader:
    """Sends the request, collects the reply; `done` resolves to (status, content type, body).

    An asyncio protocol by its methods (not a subclass: this module loads before asyncio does when a
    one-shot command prefetches its dump, prefetch.py)."""

    def __init__(self, request: bytes, limit: int, target: str, done) -> None:
        self.request, self.limit, self.target, self.done = request, limit, target, done
        self.transport = None
        self.head = bytearray()
        self.status = 0
        self.content_type = ""
        self.length: int | None = None  # Content-Length; None: chunked or until the connection closes
        self.chunked = False
        self.chunks: list[bytes] = []
        self.size = 0
        self.got_any = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.got_any = True
        try:
            if not self.status:
                data = self._take_head(data)
                if data is None:
                    return
            self._take_body(data)
        except Exception as exc:  # too large, malformed: the caller gets it, the connection goes
            self._finish(exc)

    def _take_head(self, data: bytes) -> bytes | None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > HEAD_MAX_BYTES:
                raise ProtocolError(f"MI reply headers larger than {HEAD_MAX_BYTES} bytes", target=self.target)
            return None
        lines = bytes(self.head[:end]).decode("latin-1").split("\r\n")
        rest = bytes(self.head[end + 4:])
        self.head = bytearray()
        self._parse_head(lines)
        return rest

    def _parse_head(self, lines: list[str]) -> None:
        version, _, status = lines[0].partition(" ")
        code = status[:3]
        if not version.startswith("HTTP/") or not code.isdecimal():
            raise ProtocolError(f"not an HTTP reply: {lines[0][:80]!r}", target=self.target)
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        self.content_type = fields.get("content-type", "")
        self.chunked = "chunked" in fields.get("transfer-encoding", "").lower()
        declared = fields.get("content-length", "")
        if not self.chunked and declared.isdecimal():
            self.length = int(declared)
            check_size(self.length, self.limit, target=self.target)
        self.status = int(code)

    def _take_body(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            check_size(self.size, self.limit, target=self.target)
            self.chunks.append(data)
        if self.chunked:
            # Dechunked only once the terminating chunk may be there (not on every packet).
            tail = b"".join(self.chunks[-2:])[-5:]
            body = _dechunk(b"".join(self.chunks)) if tail.endswith(b"\r\n\r\n") else None
            if body is not None:
                self._finish((self.status, self.content_type, body))
        elif self.length is not None and self.size >= self.length:
            self._finish((self.status, self.content_type, b"".join(self.chunks)[:self.length]))

    def eof_received(self) -> None:
        return None  # let the transport close: connection_lost tells a complete reply from a cut one

    def pause_writing(self) -> None:  # the request is a few hundred bytes: nothing to pause
        return None

    def resume_writing(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self.status and self.length is None and not self.chunked:
            self._finish((self.status, self.content_type, b"".join(self.chunks)))  # close-delimited body
            return
        if self.chunked:
            try:
                body = _dechunk(b"".join(self.chunks))
            except ProtocolError as error:
                self._finish(error)
                return
            if body is not None:
                self._finish((self.status, self.content_type, body))
                return
        what = "without a reply" if not self.got_any else "before the reply was complete"
        reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        self._finish(ConnectionDropped(f"the server closed the connection {what}{reason}"))

    def _finish(self, outcome: Any) -> None:
        if not self.done.done():
            if isinstance(outcome, BaseException):
                self.done.set_exception(outcome)
            else:
                self.done.set_result(outcome)
        if self.transport is not None:
            self.transport.close()


def _dechunk(data: bytes) -> bytes | None:
    """The body of a complete chunked message; None while the last chunk has not arrived."""
    out: list[bytes] = []
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"malformed chunked reply (chunk size {size_text[:20]!r})") from None
        start = line_end + 2
        if size == 0:
            return b"".join(out) if data.find(b"\r\n", start) >= 0 else None
        if len(data) < start + size + 2:
            return None
        out.append(data[start:start + size])
        pos = start + size + 2


async def post(host: str, port: int, request: bytes, *, limit: int, target: str, ssl: Any = None,
               server_hostname: str | None = None) -> tuple[int, str, bytes]:
    """Connect, send `request`, return (status, content type, body).  Raises ConnectionRefused,
    TransportError (cannot connect), ConnectionDropped (closed before a complete reply) or the
    OpsError a reply check raised."""
    import asyncio

    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    try:
        transport, _ = await loop.create_connection(lambda: ReplyReader(request, limit, target, done), host, port,
                                                    ssl=ssl, server_hostname=server_hostname if ssl else None)
    except ConnectionRefusedError:
        raise ConnectionRefused(f"OpenSIPS MI not reachable at {target} (connection refused)",
                                hint="is mi_http loaded and httpd listening on that address/port?") from None
    except OSError as exc:
        if "refused" in str(exc).lower():  # several addresses, each refused: one OSError naming them
            raise ConnectionRefused(f"OpenSIPS MI not reachable at {target} (connection refused)",
                                    hint="is mi_http loaded and httpd listening on that address/port?") from None
        raise TransportError(f"cannot connect to OpenSIPS MI at {target}: {type(exc).__name__}: {exc}",
                             target=target) from None
    try:
        return await done
    finally:
        transport.close()
