"""Small misbehaving peers for the fault matrix (tests/test_faults_*.py).

Every peer is a context manager running one daemon thread on loopback and
stops (closing its sockets) on exit, also when the test failed.

    SilentTCP()                   accepts TCP connections, reads, never answers (MI or CLI "silent")
    SlowHTTP(delay)               answers every POST in one piece after `delay` s of silence
    HugeHTTP(size=50_000_000)     answers every POST with a `size`-byte JSON-looking body, streamed
                                  from one small buffer (no big allocation here); `declare_length`
    NgResponder(mode="normal")    an ng peer answering from the captures; `.mode` switchable at any time:
                                  normal, silent, foreign_cookie (a `pong` under another cookie),
                                  foreign_then_real, truncated (bencode cut short), error (`result: error`
                                  for every command), big_list (a `list` reply of `list_size` call-ids),
                                  proxy (relay to `.upstream`, e.g. a real daemon's ng or -u listener);
                                  `.commands` = ng commands received, in order
    CliResponder(mode="normal")   an rtpengine `--listen-cli` peer answering from the captures;
                                  modes: normal, silent, unknown (rtpengine's "Unknown or incomplete
                                  command" text for everything); `.commands` = lines received
    mi_server_at(port)            the MI fake (tests/support/mi_server.py) bound to a given port, so a
                                  refused MI can come back at the same address
    release_hung(server)          unsticks MI fake handlers parked by `silent`/`drip` (their clients
                                  gave up long ago) and clears the fault: "OpenSIPS recovered"
    free_port(kind)               a loopback port nobody listens on

Shared row assertions and fixtures (import them into the test module):
    targets(mi_url, ng, cli)      CLI target options (--timeout 0.5); None = a port nobody listens on
    assert_clean_output(*texts)   no traceback reached the operator
    assert_mi_read_only(server, allow=())
                                  every MI method the fake received is read-only (is_write_method);
                                  the live TUI passes allow=LIVE_SUBSCRIPTIONS (event_subscribe)
    assert_ng_read_only(commands) only ping/list/query/statistics were sent
    ng_commands                   fixture: every ng command any NgClient sent (real daemons too)
    clean_home                    fixture: HOME = tmp_path, no OPSCONSOLE_* variables
"""

from __future__ import annotations

import secrets
import socket
import threading
from pathlib import Path
from typing import Any

import bencodepy
import pytest

from support.mi_server import FIFOServer, MIServer, _HTTPServer, _Handler

HOST = "127.0.0.1"
CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "faults"
READ_ONLY_NG = frozenset({"ping", "list", "query", "statistics"})


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def _payload(name: str) -> bytes:
    """A captured ng reply without its cookie (the responder adds the request's)."""
    return _capture(name).partition(b" ")[2]


class _Peer:
    """A thread serving one socket until `stop()`."""

    def __init__(self, kind: int, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, port))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()[:2]
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _TCPPeer(_Peer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(socket.SOCK_STREAM, port)
        self.sock.listen(16)
        self.connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.address[1]}/mi"

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)
            threading.Thread(target=self._handle_safely, args=(conn,), daemon=True).start()

    def _handle_safely(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass  # the client gave up: fine

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        super().stop()
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass


class SilentTCP(_TCPPeer):
    """Accepts and reads but never writes: a hung mi_http or rtpengine CLI."""

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self.stop_event.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue


def _read_request_head(conn: socket.socket) -> bytes | None:
    """Read up to the end of the HTTP headers; None if the client hung up first."""
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


class HugeHTTP(_TCPPeer):
    """An HTTP peer whose every answer is `size` bytes, streamed (bounded memory on this side)."""

    def __init__(self, size: int = 50_000_000, declare_length: bool = False) -> None:
        super().__init__()
        self.size = size
        self.declare_length = declare_length
        self.sent = 0

    def handle(self, conn: socket.socket) -> None:
        if _read_request_head(conn) is None:
            return
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {self.size}\r\n" if self.declare_length else "Connection: close\r\n"
        conn.sendall(head.encode() + b"\r\n")
        block = b'{"jsonrpc":"2.0","result":"' + b"x" * 65536
        left = self.size
        while left > 0 and not self.stop_event.is_set():
            piece = block[: min(left, len(block))]
            conn.sendall(piece)
            self.sent += len(piece)
            left -= len(piece)
            block = b"x" * 65536
        conn.close()


class SlowHTTP(_TCPPeer):
    """Answers every POST with `body`, all at once, after `delay` seconds of silence."""

    def __init__(self, delay: float, body: bytes = b'{"jsonrpc":"2.0","result":{},"id":1}') -> None:
        super().__init__()
        self.delay = delay
        self.body = body

    def handle(self, conn: socket.socket) -> None:
        if _read_request_head(conn) is None:
            return
        if self.stop_event.wait(self.delay):
            return
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
                "Connection: close\r\n\r\n")
        conn.sendall(head.encode() + self.body)
        conn.close()


class CliResponder(_TCPPeer):
    """rtpengine's --listen-cli: one command line in, text out, then close."""

    ANSWERS = {
        "list interfaces": "ctl.list_interfaces.txt",
        "list sessions all": "ctl.list_sessions_all.txt",
        "list totals": "ctl.list_totals.txt",
        "list numsessions": "ctl.list_numsessions.txt",
    }

    def __init__(self, mode: str = "normal", port: int = 0) -> None:
        super().__init__(port)
        self.mode = mode
        self.commands: list[str] = []

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        line = b""
        while b"\n" not in line:
            if self.stop_event.is_set():
                return
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return
            line += chunk
        command = line.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        self.commands.append(command)
        if self.mode == "silent":
            self.stop_event.wait(30)
            return
        if self.mode == "unknown" or command not in self.ANSWERS:
            conn.sendall(_capture("ctl.bogus_command.txt").replace(b"bogus command", command.encode()))
        else:
            conn.sendall(_capture(self.ANSWERS[command]))
        conn.close()


class NgResponder(_Peer):
    """An ng peer over UDP whose behaviour is `mode` (see the module docstring)."""

    def __init__(self, mode: str = "normal", list_size: int = 100, upstream: tuple[str, int] | None = None) -> None:
        super().__init__(socket.SOCK_DGRAM)
        self.mode = mode
        self.list_size = list_size
        self.upstream = upstream  # mode "proxy": relay every datagram to this address
        self.commands: list[str] = []

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            cookie, _, body = data.partition(b" ")
            self.last_body = body
            try:
                command = bencodepy.decode(body).get(b"command", b"").decode()
            except Exception:
                command = "?"
            self.commands.append(command)
            for reply in self.replies(cookie, command):
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def replies(self, cookie: bytes, command: str) -> list[bytes]:
        mode = self.mode
        if mode == "silent":
            return []
        if mode == "proxy":
            return self.relay(cookie + b" " + self.last_body)
        foreign = secrets.token_hex(6).encode() + b" " + _payload("ng.ping.response.bencode")
        if mode == "foreign_cookie":
            return [foreign]
        if mode == "truncated":
            payload = self.payload(command)
            return [cookie + b" " + payload[: max(1, len(payload) // 2)]]
        if mode == "error":
            return [cookie + b" " + _payload("ng.error.unknown_command.response.bencode")]
        real = cookie + b" " + self.payload(command)
        return [foreign, real] if mode == "foreign_then_real" else [real]

    def relay(self, datagram: bytes) -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(1.0)
            upstream.sendto(datagram, self.upstream)
            try:
                return [upstream.recv(65535)]
            except OSError:
                return []

    def payload(self, command: str) -> bytes:
        if command == "list" and self.mode == "big_list":
            calls = [f"call-big-{i:04d}-{secrets.token_hex(8)}@127.0.0.1" for i in range(self.list_size)]
            return bencodepy.encode({"calls": calls, "result": "ok"})
        names = {"ping": "ng.ping", "statistics": "ng.statistics", "list": "ng.list",
                 "query": "ng.error.query_unknown_callid"}
        return _payload(names.get(command, "ng.error.unknown_command") + ".response.bencode")


def mi_server_at(port: int, version: str = "3.4") -> MIServer:
    """The MI fake listening on `port` (MIServer itself always takes a fresh one)."""
    server = MIServer.__new__(MIServer)
    super(MIServer, server).__init__(version, "populated")
    server._http = _HTTPServer((HOST, port), _Handler)
    server._http.fake = server
    server.base_url = f"http://{HOST}:{port}"
    server.url = f"{server.base_url}/mi"
    server._thread = threading.Thread(target=server._http.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"mi-server-{port}", daemon=True)
    server._thread.start()
    server._stopped = False
    return server


def release_hung(server: MIServer | FIFOServer) -> None:
    """Clear the fault and wake HTTP handlers parked in `hang()`/`drip` (they hold the serve lock).
    The FIFO fake never parks (its drip ends when the client closes the reply FIFO), and its
    serving loop ends on `stop_event`: it only needs the lock to come free."""
    server.clear_fault()
    if isinstance(server, MIServer):
        server.stop_event.set()
    with server.serve_lock:  # every parked handler has let go
        server.stop_event.clear()


# --------------------------------------------------------------------------- shared assertions

def targets(mi_url: str | None, ng: tuple[str, int] | None, cli: tuple[str, int] | None,
            timeout: str = "0.5") -> list[str]:
    """CLI target options; an unused channel points at a port nobody listens on."""
    ng = ng or (HOST, free_port(socket.SOCK_DGRAM))
    cli = cli or (HOST, free_port())
    return ["--mi-url", mi_url or f"http://{HOST}:{free_port()}/mi", "--ng", f"{ng[0]}:{ng[1]}",
            "--cli", f"{cli[0]}:{cli[1]}", "--timeout", timeout]


def assert_clean_output(*streams: str) -> None:
    """No traceback and no raw exception dump reached the operator."""
    for text in streams:
        assert "Traceback" not in text, text[-2000:]
        assert 'File "' not in text, text[-2000:]


# The live console subscribes to OpenSIPS events (an expiring subscription, off with --no-events);
# `is_write_method` lists it because `opsconsole mi event_subscribe` must need --allow-write.
LIVE_SUBSCRIPTIONS = ("event_subscribe", "evi:subscribe")


def assert_mi_read_only(server: MIServer | None, allow: tuple[str, ...] = ()) -> None:
    """Nothing written to the platform: every MI method the fake received is read-only."""
    from opsconsole_opensips.commands import is_write_method

    if server is None:
        return
    written = [method for method, _params in server.requests if is_write_method(method) and method not in allow]
    assert not written, f"write methods sent: {written}"


def assert_ng_read_only(commands: list[str]) -> None:
    assert set(commands) <= READ_ONLY_NG, f"ng commands beyond ping/list/query/statistics: {commands}"


@pytest.fixture
def ng_commands(monkeypatch) -> list[str]:
    """Every ng command any NgClient sends during the test (real daemons included)."""
    from opsconsole_rtpengine.ng import NgClient

    sent: list[str] = []
    original = NgClient.request

    async def recording(self, message):
        sent.append(str(message.get("command")))
        return await original(self, message)

    monkeypatch.setattr(NgClient, "request", recording)
    return sent


@pytest.fixture
def clean_home(monkeypatch, tmp_path):
    """No operator config file or OPSCONSOLE_* variable leaks into a test."""
    import os

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.startswith("OPSCONSOLE_"):
            monkeypatch.delenv(name)
    return tmp_path
