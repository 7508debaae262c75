"""The one slow request of a one-shot command, sent before the console has even loaded (#18).

A full `ul_dump` at 10 000 contacts keeps OpenSIPS busy ~0.4 s building its reply; loading the console
(interpreter, plugins, config) takes ~0.15 s.  One after the other they add up; here they overlap: the
core calls `start` (entry point group `opsconsole.prefetch`) right after parsing the command line, with
what the command line, the environment and the config file say (`early`).  When the MI URL is known
without discovery and OpenSIPS is a 3.x whose contact count is within `full_sync_max` (the very rule the
source applies), the ul_dump request is sent on a socket of its own and left unread: OpenSIPS builds the
reply meanwhile.  `OpenSIPSSource` takes it (`take`) and reads the reply before it asks anything else
(mi_http answers one request at a time: nothing of ours waits behind the dump), then decodes it exactly
as its own `ul_dump` call would (MIClient.adopt).  Anything unusual — https, 4.0, no answer within a
quarter of a second, a count above the limit, a reply that fails — means no prefetch, or a prefetch
dropped: the source asks as it always did.  Blocking and stdlib only: it runs before the event loop.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Mapping

from .http11 import ReplyReader, build_request, parse_url

QUICK_S = 0.25  # the two small questions before the dump: a healthy OpenSIPS answers in ~1 ms
HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Connection": "close"}
DUMP_METHOD = "ul_dump"  # 3.x's name (4.0's usrloc:dump: no prefetch there)
_pending: dict[str, "Prefetched"] = {}


class Prefetched:
    """A ul_dump request sent, its reply not read yet (the socket is non-blocking)."""

    def __init__(self, url: str, method: str, sock: socket.socket) -> None:
        self.url, self.method, self.sock = url, method, sock

    async def reply(self, *, limit: int, target: str) -> tuple[int, str, bytes]:
        """The reply, read on the running loop (the request went out already)."""
        import asyncio  # not at import: the dump is sent before the console has loaded asyncio

        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        transport, _ = await loop.create_connection(lambda: ReplyReader(b"", limit, target, done), sock=self.sock)
        try:
            return await done
        finally:
            transport.close()

    def close(self) -> None:
        self.sock.close()


def start(early: Mapping[str, Any]) -> None:
    """Send the dump if `early` allows it; never raises (a prefetch is only ever a head start)."""
    try:
        prefetched = _start(early)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return
    if prefetched is not None:
        _pending[prefetched.url] = prefetched


def take(url: str | None) -> Prefetched | None:
    """The prefetch for this MI URL, handed over once."""
    return _pending.pop(url, None) if url else None


def _start(early: Mapping[str, Any]) -> Prefetched | None:
    url = early.get("mi_url")
    if not early.get("contacts") or not isinstance(url, str) or not url.startswith("http://"):
        return None
    host, port, path, _, userinfo = parse_url(url)
    auth = early.get("mi_auth") or userinfo
    version = _ask(host, port, path, auth, "version", None)
    if not str((version or {}).get("Server", "")).startswith("OpenSIPS (3."):
        return None
    if not early.get("force_full_sync"):
        stats = _ask(host, port, path, auth, "get_statistics", {"statistics": ["usrloc:"]})
        counts = [v for k, v in (stats or {}).items() if k.startswith("usrloc:") and k.endswith("-contacts")]
        if not counts or not all(isinstance(v, int) for v in counts) or sum(counts) > early["full_sync_max"]:
            return None  # the source would not dump either
    body = json.dumps({"jsonrpc": "2.0", "method": DUMP_METHOD, "id": 1}).encode()
    sock = socket.create_connection((host, port), timeout=QUICK_S)
    try:
        sock.sendall(build_request(host, port, path, False, body, HEADERS, auth))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return Prefetched(url, DUMP_METHOD, sock)


def _ask(host: str, port: int, path: str, auth, method: str, params: Any) -> Any:
    """One small blocking JSON-RPC call (`result`, or None for anything but a plain 200 answer)."""
    request = {"jsonrpc": "2.0", "method": method, "id": 1} | ({"params": params} if params is not None else {})
    deadline = time.monotonic() + QUICK_S  # the whole answer, however it trickles in
    with socket.create_connection((host, port), timeout=QUICK_S) as sock:
        sock.sendall(build_request(host, port, path, False, json.dumps(request).encode(), HEADERS, auth))
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or sum(map(len, chunks)) > 1 << 20:
                return None
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, data = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.") or lines[0][9:12] != "200" or "chunked" in head.decode("latin-1").lower():
        return None
    return json.loads(data).get("result")
