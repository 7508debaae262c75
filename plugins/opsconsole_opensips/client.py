"""Async OpenSIPS MI client: one `MIClient` over pluggable transports.

`MIClient` owns everything that does not depend on how the bytes travel: the
JSON-RPC id, encoding, the response size cap, the deadline, one heavy call at a
time, decoding and typed errors.  A transport only moves one request body and
brings back `(status, content_type, data)`:

* `HTTPTransport`: mi_http, an HTTP POST per request on a connection of its own;
* `FIFOTransport`: mi_fifo, blocking FIFO I/O in a worker thread;
* `MemoryTransport`: a callable body -> reply bytes, for tests.

mi_http facts (captured): without `Content-Type: application/json` it never
answers (the connection hangs), a GET is never answered either, and its single
httpd process serves one request at a time, so our own heavy calls (ul_dump,
dlg_list...) are serialized here and never overlap each other.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import itertools
import os
import select
import stat
import time
from typing import Any, Awaitable, Callable, Protocol

from console.errors import ConfigError, ConnectionRefused, ProtocolError, Timeout, TransportError
from console.redact import without_userinfo

from .codec import CHEAP_MAX_BYTES, DEFAULT_MAX_BYTES, check_size, decode_response, encode_request
from .commands import is_heavy_method, is_write_method
from .http11 import ConnectionDropped, build_request, parse_url, post, tls_context

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# mi_http sometimes never answers a second request on a kept-alive connection (measured on real
# 3.4.18 and 4.0.1: 2 and 8 of 300 unanswered; none of 600 with a new connection each), so every
# request gets a connection of its own and says so.
ONE_SHOT_HEADERS = JSON_HEADERS | {"Connection": "close"}
FIFO_NOT_JSON_HINT = "OpenSIPS before 3.0 speaks a text protocol on mi_fifo; opsconsole needs 3.x JSON-RPC"
HTTP_NOT_JSON_HINT = "is this URL an OpenSIPS mi_http root?"

Reply = tuple[int, str, bytes]  # (HTTP-like status, content type, body)

# One URL redactor for the whole console (console/redact.py); kept importable here.
redact_url = without_userinfo


class ConnectionLost(TransportError):
    """A transport's connection failed before a reply (after its one retry, when it may retry).
    MIClient turns it into a message naming the method."""

    def __init__(self, detail: str, *, retried: bool) -> None:
        super().__init__(detail)
        self.retried = retried


class MITransport(Protocol):
    target: str  # where the requests go, never with credentials
    timeout_hint: str  # shown when the deadline passes
    via: str  # " on the FIFO": for messages
    not_json_hint: str
    deadline_grace: float  # seconds the transport may need past the deadline to clean up

    async def exchange(self, body: bytes, *, limit: int, deadline: float, retry_safe: bool) -> Reply:
        """Send one request, return the reply.  Raise builtin TimeoutError when `deadline` passed,
        ConnectionLost when the connection failed, another OpsError for anything else."""

    async def aclose(self) -> None: ...


def _require_positive(timeout: float) -> None:
    if timeout <= 0:
        raise ConfigError("MI timeout must be positive")


def _size_limit(method: str, max_bytes: int) -> int:
    """Only whole-table walks may be large; a huge answer to a cheap call is capped early."""
    return max_bytes if is_heavy_method(method) else min(max_bytes, CHEAP_MAX_BYTES)


def _heavy_timeout(timeout: float) -> float:
    # A 10k ul_dump takes ~0.4 s; give whole-table calls more room than cheap ones.
    return max(timeout * 5, 10.0)


class MIClient:
    """JSON-RPC over any MITransport.  `call` returns the `result` or raises an OpsError."""

    def __init__(self, transport: MITransport, timeout: float = 2.0, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 heavy_timeout: float | None = None) -> None:
        _require_positive(timeout)
        self.transport = transport
        self.target = transport.target
        self.timeout = timeout
        self.heavy_timeout = heavy_timeout or _heavy_timeout(timeout)
        self.max_bytes = max_bytes
        self._ids = itertools.count(1)
        self._heavy = asyncio.Lock()  # one heavy call at a time; cheap calls never wait for it

    def __repr__(self) -> str:  # the target is already without credentials
        return f"{type(self).__name__}({self.target!r})"

    async def call(self, method: str, params: dict | list | None = None, *, timeout: float | None = None,
                   typed: Callable[[bytes], Any] | None = None) -> Any:
        """`typed`: see codec.decode_response."""
        deadline = timeout or (self.heavy_timeout if is_heavy_method(method) else self.timeout)
        if not is_heavy_method(method):
            return await self._call(method, params, deadline, typed)
        async with self._heavy:
            return await self._call(method, params, deadline, typed)

    async def _call(self, method: str, params, deadline: float, typed: Callable[[bytes], Any] | None) -> Any:
        try:
            body = encode_request(method, params, next(self._ids))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"cannot encode MI request {method!r}: {exc}") from None
        limit = _size_limit(method, self.max_bytes)
        transport = self.transport
        try:
            async with asyncio.timeout(deadline + transport.deadline_grace):
                status, content_type, data = await transport.exchange(
                    body, limit=limit, deadline=deadline, retry_safe=not is_write_method(method))
        except TimeoutError:
            raise Timeout(f"OpenSIPS MI did not answer {method!r}{transport.via} within {deadline:g} s",
                          target=self.target, hint=transport.timeout_hint) from None
        except ConnectionLost as exc:
            raise self._lost(method, exc) from None
        return decode_response(data, status=status, content_type=content_type, method=method, target=self.target,
                               max_bytes=limit, not_json_hint=transport.not_json_hint, typed=typed)

    def adopt(self, method: str, reply: Reply, *, typed: Callable[[bytes], Any] | None = None) -> Any:
        """The result of a reply that came another way (a prefetch, prefetch.py), decoded and checked
        exactly as `call` does its own."""
        status, content_type, data = reply
        limit = _size_limit(method, self.max_bytes)
        return decode_response(data, status=status, content_type=content_type, method=method, target=self.target,
                               max_bytes=limit, not_json_hint=self.transport.not_json_hint, typed=typed)

    def _lost(self, method: str, exc: ConnectionLost) -> TransportError:
        if is_write_method(method):
            return TransportError(f"the connection to OpenSIPS MI closed before it answered {method!r}",
                                  target=self.target,
                                  hint="the write may or may not have been applied: check before sending it again")
        twice = " twice" if exc.retried else ""
        return TransportError(f"MI request {method!r} failed{twice}: {exc.message}", target=self.target)

    async def aclose(self) -> None:
        await self.transport.aclose()


# --------------------------------------------------------------------------- mi_http


class HTTPTransport:
    """POST to mi_http, one connection per request (see ONE_SHOT_HEADERS), over asyncio alone
    (http11.py: no HTTP library to import for a one-shot command)."""

    via = ""
    timeout_hint = "mi_http serves one request at a time: a long ul_dump blocks it"
    not_json_hint = HTTP_NOT_JSON_HINT
    deadline_grace = 0.0

    def __init__(self, url: str, auth: tuple[str, str] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            shown = redact_url(url) if "://" in url else url.rpartition("@")[2]  # 'ops:pw@host/mi' too
            raise ConfigError(f"MI URL must start with http:// or https://, got {shown!r}")
        if auth is not None and not (isinstance(auth, tuple) and len(auth) == 2):
            raise ConfigError("MI credentials must be a (user, password) pair (mi_http speaks Basic auth)")
        self.url = url
        self.target = redact_url(url)
        self._host, self._port, self._path, tls, userinfo = parse_url(url)
        self._auth = auth or userinfo  # credentials in the URL count, as they did with httpx
        # A plain http:// URL never needs TLS: no SSL context (and no CA bundle load) for it.
        self._ssl = tls_context() if tls else None

    async def exchange(self, body: bytes, *, limit: int, deadline: float, retry_safe: bool) -> Reply:
        # The deadline is MIClient's (asyncio.timeout around this call): cancelling closes the socket.
        request = build_request(self._host, self._port, self._path, self._ssl is not None, body, ONE_SHOT_HEADERS,
                                self._auth)
        try:
            return await self._post(request, limit)
        except ConnectionDropped as first:
            if not retry_safe:  # it may have been done: never send a write twice
                raise ConnectionLost(str(first), retried=False) from None
        # Not after a timeout: mi_http serves one request at a time, a second
        # try would only queue behind whatever holds it.
        try:
            return await self._post(request, limit)
        except ConnectionDropped as second:
            raise ConnectionLost(str(second), retried=True) from None

    async def _post(self, request: bytes, limit: int) -> Reply:
        return await post(self._host, self._port, request, limit=limit, target=self.target, ssl=self._ssl,
                          server_hostname=self._host)

    async def aclose(self) -> None:
        return None


# --------------------------------------------------------------------------- mi_fifo


class FIFOTransport:
    """Write `:<reply-name>:<json>\\n` to the FIFO, read the reply from a FIFO we create in
    `reply_dir` (mi_fifo's reply_dir; OpenSIPS only accepts a bare file name there).
    Blocking I/O runs in a worker thread that keeps the deadline itself."""

    via = " on the FIFO"
    not_json_hint = FIFO_NOT_JSON_HINT
    # The worker thread notices its deadline within one select() tick and removes its
    # reply FIFO; the outer deadline waits for that instead of leaving the thread behind.
    deadline_grace = 1.0

    def __init__(self, fifo_path: str, reply_dir: str = "/tmp") -> None:
        self.fifo_path = fifo_path
        self.reply_dir = reply_dir
        self.target = fifo_path
        self.timeout_hint = "check that mi_fifo's reply_dir is " + reply_dir

    async def exchange(self, body: bytes, *, limit: int, deadline: float, retry_safe: bool) -> Reply:
        data = await asyncio.to_thread(self._exchange, body, deadline, limit)
        return 200, "application/json", data

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ blocking part (worker thread)

    def _exchange(self, body: bytes, deadline: float, limit: int) -> bytes:
        if b"\n" in body:
            raise ProtocolError("MI request for the FIFO must be a single line")
        self._check_fifo()
        name = f"opsconsole_reply_{os.getpid()}_{os.urandom(6).hex()}"  # 48 random bits, as uuid4().hex[:12] gave
        reply_path = os.path.join(self.reply_dir, name)
        try:
            os.mkfifo(reply_path, 0o600)
            os.chmod(reply_path, 0o622)  # OpenSIPS may run as another user: it must be able to write
        except FileNotFoundError:
            raise ConfigError(f"MI reply directory does not exist: {self.reply_dir}",
                              hint="set mi_reply_dir to mi_fifo's reply_dir") from None
        except PermissionError:
            raise TransportError(f"cannot create the MI reply FIFO in {self.reply_dir} (permission denied)") from None
        reply_fd = -1
        try:
            reply_fd = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
            self._write_request(b":" + name.encode() + b":" + body + b"\n")
            return self._read_reply(reply_fd, time.monotonic() + deadline, limit)
        finally:
            if reply_fd >= 0:
                os.close(reply_fd)
            try:
                os.unlink(reply_path)
            except OSError:
                pass

    def _check_fifo(self) -> None:
        try:
            mode = os.stat(self.fifo_path).st_mode
        except FileNotFoundError:
            raise ConnectionRefused(f"OpenSIPS MI FIFO not found at {self.fifo_path}",
                                    hint="is mi_fifo loaded and OpenSIPS running? check modparam(\"mi_fifo\",\"fifo_name\")") from None
        except PermissionError:
            raise TransportError(f"permission denied reaching the MI FIFO {self.fifo_path}") from None
        if not stat.S_ISFIFO(mode):
            raise TransportError(f"{self.fifo_path} is not a FIFO", hint="point mi_fifo at mi_fifo's fifo_name")

    def _write_request(self, line: bytes) -> None:
        try:
            fd = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
        except PermissionError:
            raise TransportError(f"permission denied writing the MI FIFO {self.fifo_path}",
                                 hint="run as the OpenSIPS user or check modparam(\"mi_fifo\",\"fifo_mode\")") from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nobody has the FIFO open for reading
                raise ConnectionRefused(f"OpenSIPS is not reading its MI FIFO {self.fifo_path}",
                                        hint="is OpenSIPS running?") from None
            raise TransportError(f"cannot open the MI FIFO {self.fifo_path}: {exc.strerror}") from None
        try:
            os.set_blocking(fd, True)
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            raise TransportError(f"writing the MI FIFO {self.fifo_path} failed: {exc.strerror}") from None
        finally:
            os.close(fd)

    def _read_reply(self, fd: int, until: float, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError  # MIClient names the method and the deadline
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # the writer closed: the reply is complete
                return b"".join(chunks)
            size += len(chunk)
            check_size(size, limit, target=self.fifo_path)
            chunks.append(chunk)


# --------------------------------------------------------------------------- in memory (tests)


class MemoryTransport:
    """`handler(body) -> reply` in process: bytes (an HTTP 200 JSON reply) or a full
    (status, content_type, data) tuple; a coroutine function works too.  Exceptions the
    handler raises (TimeoutError, ConnectionLost, any OpsError) reach MIClient as a real
    transport's would."""

    via = ""
    timeout_hint = ""
    not_json_hint = HTTP_NOT_JSON_HINT
    deadline_grace = 0.0

    def __init__(self, handler: Callable[[bytes], bytes | Reply | Awaitable[bytes | Reply]],
                 target: str = "memory") -> None:
        self.handler = handler
        self.target = target
        self.requests: list[bytes] = []

    async def exchange(self, body: bytes, *, limit: int, deadline: float, retry_safe: bool) -> Reply:
        self.requests.append(body)
        reply = self.handler(body)
        if inspect.isawaitable(reply):
            reply = await reply
        status, content_type, data = reply if isinstance(reply, tuple) else (200, "application/json", reply)
        check_size(len(data), limit, target=self.target)
        return status, content_type, data

    async def aclose(self) -> None:
        return None


# --------------------------------------------------------------------------- constructors


class HTTPMIClient(MIClient):
    """An MIClient over mi_http."""

    def __init__(self, url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, heavy_timeout: float | None = None) -> None:
        _require_positive(timeout)  # before the transport (and an https URL's TLS context) is built
        super().__init__(HTTPTransport(url, auth), timeout, max_bytes=max_bytes, heavy_timeout=heavy_timeout)

    @property
    def url(self) -> str:
        return self.transport.url


class FIFOMIClient(MIClient):
    """An MIClient over mi_fifo."""

    def __init__(self, fifo_path: str, reply_dir: str = "/tmp", timeout: float = 2.0, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, heavy_timeout: float | None = None) -> None:
        super().__init__(FIFOTransport(fifo_path, reply_dir), timeout, max_bytes=max_bytes,
                         heavy_timeout=heavy_timeout)

    @property
    def fifo_path(self) -> str:
        return self.transport.fifo_path

    @property
    def reply_dir(self) -> str:
        return self.transport.reply_dir


def make_client(config) -> MIClient:
    """mi_url wins; else mi_fifo.  Credentials come from config and are never logged."""
    if config.mi_url:
        auth = (config.mi_user, config.mi_password or "") if config.mi_user else None
        return HTTPMIClient(config.mi_url, config.timeout, auth=auth)
    if config.mi_fifo:
        return FIFOMIClient(config.mi_fifo, config.mi_reply_dir, config.timeout)
    raise ConfigError("no OpenSIPS MI configured", hint="set --mi-url (mi_http) or --mi-fifo (mi_fifo)")
