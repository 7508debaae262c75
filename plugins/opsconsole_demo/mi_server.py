"""An asyncio HTTP/1.1 server that behaves like OpenSIPS mi_http (3.4).

Measured behaviour it reproduces (fixtures opensips-3.4/mi and scale/):
- POST /mi or /mi/<anything> with `Content-Type: application/json` is answered;
  any other request on a /mi path is never answered (the connection hangs);
- another path gets HTTP 400 with `<html><body>Unable to parse URL!</body></html>`;
- one request at a time (single HTTPD process);
- ul_dump costs time quadratic in the contact count (a sleep of the fitted cost,
  multiplied by `time_scale`), and a reply larger than the reply buffer
  (pkg_mem/4 = 4 MB at `-M 16`) becomes HTTP 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from email.utils import formatdate

from .mi_render import MiRenderer

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 4 * 1024 * 1024
BYTES_PER_CONTACT = 300  # ul_dump reply size per 1-contact AoR (10k lab: 2,983,771 bytes)
BAD_PATH_BODY = b"<html><body>Unable to parse URL!</body></html>"
MAX_HEADER_LINES = 100
MAX_BODY = 1024 * 1024

# a*n + b*n^2 fitted on scale.md (1k and 10k contacts; 5k and 20k fall within 10-20 %)
FULL_DUMP_COST = (6.53e-6, 3.27e-9)
BRIEF_DUMP_COST = (1.87e-6, 7.33e-10)


def mi_http_route(method: str, path: str, content_type: str) -> str:
    """What the real mi_http does with a request (captures opensips-3.4/mi/error.*), shared with
    the tests' capture-backed fake (tests/support/mi_server.py): "bad_path" (HTTP 400 and
    BAD_PATH_BODY: not the /mi root), "hang" (never answered: a GET, or a POST without
    `Content-Type: application/json`) or "answer" (a JSON-RPC request)."""
    route = path.split("?", 1)[0]
    if route != "/mi" and not route.startswith("/mi/"):
        return "bad_path"
    if method != "POST" or content_type.split(";")[0].strip().lower() != "application/json":
        return "hang"
    return "answer"


def ul_dump_cost(contacts: int, brief: bool) -> float:
    """Seconds OpenSIPS 3.4 spends building a ul_dump of `contacts` one-contact AoRs."""
    linear, quadratic = BRIEF_DUMP_COST if brief else FULL_DUMP_COST
    return linear * contacts + quadratic * contacts * contacts


async def emulate_cost(seconds: float) -> None:
    """Hold the (single) MI worker like the real one does while it builds a dump."""
    await asyncio.sleep(seconds)


class MiHttpServer:
    def __init__(self, renderer: MiRenderer, *, time_scale: float = 1.0, buffer_size: int = DEFAULT_BUFFER,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.renderer = renderer
        self.time_scale = time_scale
        self.buffer_size = buffer_size
        self.host, self.port = host, port
        self.lock = asyncio.Lock()  # mi_http serves one request at a time
        self.requests_served = 0
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mi"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()  # the handlers see EOF, including those "hanging" on a bad request
        if self._connections:
            await asyncio.wait(self._connections, timeout=1.0)
        for task in list(self._connections):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    # ------------------------------------------------------------------ HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down; asyncio would log a cancelled client task as an error
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Handle one request; False when the connection is done."""
        request_line = await reader.readline()
        if not request_line.strip():
            return False
        method, path, _ = (request_line.decode("latin-1").split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            return False
        body = await reader.readexactly(length) if length else b""
        route = mi_http_route(method, path, headers.get("content-type", ""))
        if route == "bad_path":
            await self._reply(writer, 400, "Bad Request", "text/html", BAD_PATH_BODY)
        elif route == "hang":
            while await reader.read(65536):
                pass  # the real mi_http never answers: wait until the client gives up
            return False
        else:
            async with self.lock:
                status, reason, payload = await self._handle(body)
            await self._reply(writer, status, reason, "application/json" if status == 200 else "text/html", payload)
        return headers.get("connection", "").lower() != "close"

    async def _reply(self, writer: asyncio.StreamWriter, status: int, reason: str, ctype: str, body: bytes) -> None:
        head = (f"HTTP/1.1 {status} {reason}\r\nDate: {formatdate(usegmt=True)}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()
        self.requests_served += 1

    # ------------------------------------------------------------------ MI

    async def _handle(self, body: bytes) -> tuple[int, str, bytes]:
        request, error = self.renderer.decode(body)
        if request is not None and self.renderer.resolve(request["method"]) == "ul_dump":
            brief = _wants_brief(request.get("params"))
            contacts = self.renderer.state.contact_count
            await emulate_cost(ul_dump_cost(contacts, brief) * self.time_scale)
            if not brief and contacts * BYTES_PER_CONTACT > 1.5 * self.buffer_size:
                return self._too_large()  # clearly too big: do not build a huge reply to throw it away
        response = error if request is None else self.renderer.answer(request)
        payload = utf8_bytes(json.dumps(response, separators=(",", ":"), ensure_ascii=False))
        if len(payload) > self.buffer_size:
            return self._too_large()
        return 200, "OK", payload

    def _too_large(self) -> tuple[int, str, bytes]:
        log.info("print_mi_response: Failed to print JSON (reply above %d bytes)", self.buffer_size)
        return 500, "Internal Server Error", b""


def _wants_brief(params) -> bool:
    if isinstance(params, dict):
        return bool(params.get("brief"))
    return bool(params[0]) if isinstance(params, list) and params else False


def utf8_bytes(text: str) -> bytes:
    """Bytes a SIP UA sent that were not UTF-8 go back out raw (as OpenSIPS prints them)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that never was a byte (e.g. from JSON input)
        return text.encode("utf-8", "backslashreplace")
