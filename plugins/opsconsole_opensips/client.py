"""Async OpenSIPS MI clients: mi_http (HTTP POST JSON-RPC) and mi_fifo.

mi_http facts (captured): without `Content-Type: application/json` it never
answers (the connection hangs), a GET is never answered either, and its single
httpd process serves one request at a time, so our own heavy calls (ul_dump,
dlg_list...) are serialized here and never overlap each other.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import select
import stat
import time
import uuid
from typing import Any, Callable, Protocol

import httpx

from console.errors import ConfigError, ConnectionRefused, OpsError, ProtocolError, Timeout, TransportError

from .codec import CHEAP_MAX_BYTES, DEFAULT_MAX_BYTES, check_size, decode_response, encode_request
from .commands import is_heavy_method, is_write_method

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# mi_http sometimes never answers a second request on a kept-alive connection (measured on real
# 3.4.18 and 4.0.1: 2 and 8 of 300 unanswered; none of 600 with a new connection each), so every
# request gets a connection of its own and says so.
ONE_SHOT_HEADERS = JSON_HEADERS | {"Connection": "close"}
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)
# The connection failed before a reply: safe to send a read again on a fresh connection, never a write.
_RETRYABLE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
FIFO_NOT_JSON_HINT = "OpenSIPS before 3.0 speaks a text protocol on mi_fifo; opsconsole needs 3.x JSON-RPC"


class MIClient(Protocol):
    target: str

    async def call(self, method: str, params: dict | list | None = None, *, timeout: float | None = None,
                   typed: Callable[[bytes], Any] | None = None) -> Any: ...

    async def aclose(self) -> None: ...


def _size_limit(method: str, max_bytes: int) -> int:
    """Only whole-table walks may be large; a huge answer to a cheap call is capped early."""
    return max_bytes if is_heavy_method(method) else min(max_bytes, CHEAP_MAX_BYTES)


def _heavy_timeout(timeout: float) -> float:
    # A 10k ul_dump takes ~0.4 s; give whole-table calls more room than cheap ones.
    return max(timeout * 5, 10.0)


class _Serializer:
    """One heavy call at a time per client; cheap calls never wait for it here."""

    def __init__(self) -> None:
        self._heavy = asyncio.Lock()

    async def run(self, method: str, coro_factory):
        if is_heavy_method(method):
            async with self._heavy:
                return await coro_factory()
        return await coro_factory()


class HTTPMIClient:
    """JSON-RPC over mi_http.  `call` returns the `result` or raises an OpsError."""

    def __init__(self, url: str, timeout: float = 2.0, auth: tuple[str, str] | httpx.Auth | None = None, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, heavy_timeout: float | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"MI URL must start with http:// or https://, got {url!r}")
        if timeout <= 0:
            raise ConfigError("MI timeout must be positive")
        self.url = url
        self.target = redact_url(url)
        self.timeout = timeout
        self.heavy_timeout = heavy_timeout or _heavy_timeout(timeout)
        self.max_bytes = max_bytes
        if isinstance(auth, tuple):
            auth = httpx.BasicAuth(*auth)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), auth=auth, headers=ONE_SHOT_HEADERS,
                                       limits=NO_KEEPALIVE, trust_env=False, follow_redirects=False)
        self._ids = itertools.count(1)
        self._serializer = _Serializer()

    def __repr__(self) -> str:  # never show credentials
        return f"HTTPMIClient({self.target!r})"

    async def call(self, method: str, params: dict | list | None = None, *, timeout: float | None = None,
                   typed: Callable[[bytes], Any] | None = None) -> Any:
        """`typed`: see codec.decode_response."""
        deadline = timeout or (self.heavy_timeout if is_heavy_method(method) else self.timeout)
        return await self._serializer.run(method, lambda: self._call(method, params, deadline, typed))

    async def _call(self, method: str, params, deadline: float, typed: Callable[[bytes], Any] | None) -> Any:
        try:
            body = encode_request(method, params, next(self._ids))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"cannot encode MI request {method!r}: {exc}") from None
        limit = _size_limit(method, self.max_bytes)
        try:
            async with asyncio.timeout(deadline):
                try:
                    status, content_type, data = await self._post(body, limit, deadline)
                except _RETRYABLE:
                    if is_write_method(method):  # it may have been done: never send a write twice
                        raise
                    # Not after a timeout: mi_http serves one request at a time, a second
                    # try would only queue behind whatever holds it.
                    status, content_type, data = await self._post(body, limit, deadline)
        except (TimeoutError, httpx.TimeoutException):
            raise Timeout(f"OpenSIPS MI did not answer {method!r} within {deadline:g} s", target=self.target,
                          hint="mi_http serves one request at a time: a long ul_dump blocks it") from None
        except httpx.ConnectError as exc:
            raise _connect_error(exc, self.target) from None
        except _RETRYABLE as exc:
            if is_write_method(method):
                raise TransportError(f"the connection to OpenSIPS MI closed before it answered {method!r}",
                                     target=self.target,
                                     hint="the write may or may not have been applied: check before sending it again") from None
            raise TransportError(f"MI request {method!r} failed twice: {type(exc).__name__}: {exc}",
                                 target=self.target) from None
        except httpx.HTTPError as exc:
            raise TransportError(f"MI request {method!r} failed: {type(exc).__name__}: {exc}",
                                 target=self.target) from None
        return decode_response(data, status=status, content_type=content_type, method=method,
                               target=self.target, max_bytes=limit, typed=typed)

    async def _post(self, body: bytes, limit: int, deadline: float | None = None) -> tuple[int, str, bytes]:
        # Per request: the client-wide timeout would cut a heavy call (ul_dump) at the cheap deadline.
        timeout = httpx.Timeout(deadline) if deadline else httpx.USE_CLIENT_DEFAULT
        async with self._http.stream("POST", self.url, content=body, timeout=timeout) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdecimal():
                check_size(int(declared), limit, target=self.target)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                check_size(size, limit, target=self.target)
                chunks.append(chunk)
            return response.status_code, response.headers.get("content-type", ""), b"".join(chunks)

    async def aclose(self) -> None:
        await self._http.aclose()


def _refused(exc: BaseException) -> bool:
    """httpx wraps the OSError a few levels deep ('All connection attempts failed')."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _connect_error(exc: Exception, url: str) -> OpsError:
    if _refused(exc):
        return ConnectionRefused(f"OpenSIPS MI not reachable at {url} (connection refused)",
                                 hint="is mi_http loaded and httpd listening on that address/port?")
    return TransportError(f"cannot connect to OpenSIPS MI at {url}: {type(exc).__name__}", target=url)


def redact_url(url: str) -> str:
    """http://user:secret@host/mi -> http://host/mi: URLs end up in messages and logs."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url.rpartition("@")[2] if "@" in url else url
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


class FIFOMIClient:
    """JSON-RPC over mi_fifo: write `:<reply-name>:<json>\\n` to the FIFO, read the reply
    from a FIFO we create in `reply_dir` (mi_fifo's reply_dir; OpenSIPS only accepts a
    bare file name there).  Blocking I/O runs in a worker thread with a deadline."""

    def __init__(self, fifo_path: str, reply_dir: str = "/tmp", timeout: float = 2.0, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, heavy_timeout: float | None = None) -> None:
        self.fifo_path = fifo_path
        self.reply_dir = reply_dir
        self.target = fifo_path
        self.timeout = timeout
        self.heavy_timeout = heavy_timeout or _heavy_timeout(timeout)
        self.max_bytes = max_bytes
        self._ids = itertools.count(1)
        self._serializer = _Serializer()

    def __repr__(self) -> str:
        return f"FIFOMIClient({self.fifo_path!r})"

    async def call(self, method: str, params: dict | list | None = None, *, timeout: float | None = None,
                   typed: Callable[[bytes], Any] | None = None) -> Any:
        """`typed`: see codec.decode_response."""
        deadline = timeout or (self.heavy_timeout if is_heavy_method(method) else self.timeout)

        async def run() -> Any:
            try:
                body = encode_request(method, params, next(self._ids))
            except (TypeError, ValueError) as exc:
                raise ProtocolError(f"cannot encode MI request {method!r}: {exc}") from None
            limit = _size_limit(method, self.max_bytes)
            data = await asyncio.to_thread(self._exchange, body, method, deadline, limit)
            return decode_response(data, method=method, target=self.fifo_path, max_bytes=limit,
                                   not_json_hint=FIFO_NOT_JSON_HINT, typed=typed)

        return await self._serializer.run(method, run)

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ blocking part (worker thread)

    def _exchange(self, body: bytes, method: str, deadline: float, limit: int) -> bytes:
        if b"\n" in body:
            raise ProtocolError("MI request for the FIFO must be a single line")
        self._check_fifo()
        name = f"opsconsole_reply_{os.getpid()}_{uuid.uuid4().hex[:12]}"
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
            return self._read_reply(reply_fd, method, time.monotonic() + deadline, deadline, limit)
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

    def _read_reply(self, fd: int, method: str, until: float, deadline: float, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise Timeout(f"OpenSIPS MI did not answer {method!r} on the FIFO within {deadline:g} s",
                              target=self.fifo_path, hint="check that mi_fifo's reply_dir is " + self.reply_dir)
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


def make_client(config) -> MIClient:
    """mi_url wins; else mi_fifo.  Credentials come from config and are never logged."""
    if config.mi_url:
        auth = (config.mi_user, config.mi_password or "") if config.mi_user else None
        return HTTPMIClient(config.mi_url, config.timeout, auth=auth)
    if config.mi_fifo:
        return FIFOMIClient(config.mi_fifo, config.mi_reply_dir, config.timeout)
    raise ConfigError("no OpenSIPS MI configured", hint="set --mi-url (mi_http) or --mi-fifo (mi_fifo)")
