"""A fake OpenSIPS MI (mi_http and mi_fifo) for tests, answering from the real captures.

Fixtures
    mi_server       OpenSIPS 3.4 over HTTP, lab state "populated" (70 contacts, 9 dialogs)
    mi_server_40    OpenSIPS 4.0 over HTTP (11 contacts, 4 dialogs; `rtpengine_show` -> -32601)
    mi_fifo_server  OpenSIPS 3.4 over mi_fifo (`.fifo_path`, `.reply_dir`)

`MIServer(version="3.4", state="populated")` is also a context manager.  API:
    .url                 "http://127.0.0.1:<port>/mi"  (.base_url without /mi)
    .set_state(s)        "populated" | "empty" | "10k"  (which capture variant answers)
    .set_response(method, body, status=200, content_type="application/json")
                         body: dict/list/str/int = a JSON-RPC `result` to wrap; bytes = raw reply.
                         Keyed by the 3.x name, so "ul_dump" also overrides 4.0 "usrloc:dump".
    .set_error(method, code, message, data=None)
    .set_fault(name, methods=None, **opts) / .clear_fault()
        refuse (stop listening), silent (never answer), http500, html (200 text/html page),
        non_json, truncated (real reply cut in half), jsonrpc_error (code=, message=),
        wrong_type (result is a string), huge (size=2_000_000, declare_length=True),
        drip (real reply, one byte per `delay`=0.2 s),
        keepalive_stall (like the real mi_http now and then: a second request on a kept-alive
        connection is never answered), drop (close the connection without a reply, `times`=1)
    .connections         how many TCP connections were accepted (HTTP)
    .relay_url           where the captured rtpengine_show's node points: udp:127.0.0.1:<a port from the
                         OS> instead of the lab's 60000 (.relay_port; nothing listens there unless a test does)
    .requests            [(method, params)] received, in order (.request_ids: their ids)
    .last_headers        headers of the last HTTP POST
    .stop()
Like mi_http it answers HTTP 400 + HTML on a path other than /mi, never answers a GET or a POST
without `Content-Type: application/json` there (one rule with the demo's server:
opsconsole_demo.mi_server.mi_http_route), and serves one request at a time.

Why this is not the demo's server: the code under test here often owns the thread's event loop
(`main(argv)` runs `asyncio.run`), so the fake runs on threads of its own and also speaks mi_fifo;
it replays the captured bytes and injects transport faults (drip, drop, keep-alive stall, unsized
bodies).  The demo's server lives in the console's own loop, answers from the simulated platform's
state, emulates timing costs, and ships in the product, where fault injection has no place.
"""

from __future__ import annotations

import gzip
import json
import os
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsconsole_demo.mi_server import BAD_PATH_BODY, mi_http_route
from opsconsole_opensips.commands import NO_ALIAS_40, OLD_NAMES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HANG_LIMIT_S = 30.0
_VARIANTS = (".empty", ".10k", ".fresh_start", ".after_hang", ".populated")


def _key(method: str, params: Any) -> tuple[str, str]:
    return method, json.dumps(params, sort_keys=True)


def _logical(method: str) -> str:
    return OLD_NAMES.get(method, method)


class Captures:
    """method+params -> capture file names, for one OpenSIPS version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.dir = FIXTURES / f"opensips-{version}" / "mi"
        self.index: dict[tuple[str, str], list[str]] = {}
        self.methods: set[str] = set()
        for request in sorted(self.dir.glob("*.request.json")):
            name = request.name[: -len(".request.json")]
            if name.startswith("error.") and not name.startswith(("error.bad_params.", "error.unknown_method")):
                continue
            try:
                req = json.loads(request.read_bytes())
            except ValueError:
                continue
            self.index.setdefault(_key(req["method"], req.get("params")), []).append(name)
            self.methods.add(req["method"])
        self._cache: dict[str, bytes] = {}

    def body(self, name: str) -> bytes:
        if name not in self._cache:
            path = self.dir / f"{name}.json"
            self._cache[name] = path.read_bytes() if path.exists() else gzip.open(f"{path}.gz").read()
        return self._cache[name]

    def result(self, name: str) -> Any:
        return json.loads(self.body(name))["result"]

    @staticmethod
    def pick(names: list[str], state: str) -> str:
        def rank(name: str) -> int:
            if state == "empty" and (".empty" in name or ".fresh_start" in name):
                return 0
            if state == "10k" and ".10k" in name:
                return 0
            if ".populated" in name:
                return 1
            if not any(v in name for v in _VARIANTS):
                return 2
            return 3
        return min(names, key=rank)

    def find(self, method: str, params: Any, state: str) -> str | None:
        names = self.index.get(_key(method, params))
        return self.pick(names, state) if names else None


def _rpc(result: Any, rid: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "result": result, "id": rid}, separators=(",", ":")).encode()


def _rpc_error(code: int, message: str, rid: Any, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "error": error, "id": rid}, separators=(",", ":")).encode()


def _with_id(body: bytes, rid: Any) -> bytes:
    """Captured replies carry id 1; echo the request's id instead."""
    tail = b',"id":1}'
    if body.endswith(tail):
        return body[: -len(tail)] + b',"id":' + json.dumps(rid).encode() + b"}"
    return body


CAPTURED_RELAY = b"udp:127.0.0.1:60000"


def _unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Responder:
    """JSON-RPC request bytes -> reply bytes, from captures + emulation + overrides."""

    def __init__(self, version: str, state: str = "populated") -> None:
        self.version = version
        self.state = state
        self.captures = Captures(version)
        self.overrides: dict[str, tuple[int, str, Any]] = {}
        self.requests: list[tuple[str, Any]] = []
        self.request_ids: list[Any] = []
        # The lab's rtpengine_show names udp:127.0.0.1:60000, a well-known port where this host may run
        # an RTPengine of its own (opensips.rtpengine_sock pings every node): a port from the OS instead.
        self.relay_port = _unused_udp_port()
        self.relay_url = f"udp:127.0.0.1:{self.relay_port}"

    def answer(self, raw: bytes) -> tuple[int, str, bytes, str]:
        """-> (status, content_type, body, method)."""
        try:
            req = json.loads(raw)
        except ValueError:
            return 200, "application/json", self.captures.body("error.invalid_json"), ""
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return 200, "application/json", self.captures.body("error.not_jsonrpc"), ""
        method, params, rid = req["method"], req.get("params"), req.get("id")
        self.requests.append((method, params))
        self.request_ids.append(rid)
        override = self.overrides.get(_logical(method))
        if override is not None:
            status, ctype, body = override
            if not isinstance(body, bytes):
                body = _rpc(body, rid) if not (isinstance(body, dict) and "jsonrpc" in body) else json.dumps(body).encode()
            return status, ctype, _with_id(body, rid), method
        return 200, "application/json", self._from_captures(method, params, rid), method

    def _relays_here(self, body: bytes) -> bytes:
        return body.replace(CAPTURED_RELAY, self.relay_url.encode()) if CAPTURED_RELAY in body else body

    def _from_captures(self, method: str, params: Any, rid: Any) -> bytes:
        if self.state == "empty" and _logical(method) == "dlg_list_ctx" and params is None:
            return _with_id(self.captures.body("dlg_list.empty"), rid)  # no dlg_list_ctx.empty capture
        name = self.captures.find(method, params, self.state)
        if name:
            return self._relays_here(_with_id(self.captures.body(name), rid))
        if self.version.startswith("4"):
            if method in NO_ALIAS_40:
                return _rpc_error(-32601, "Method not found", rid)
            old = OLD_NAMES.get(method)
            if old:
                name = self.captures.find(old, params, self.state)
                if name:
                    return _with_id(self.captures.body(name), rid)
        elif ":" in method:
            return _rpc_error(-32601, "Method not found", rid)
        logical = _logical(method)
        if logical == "get_statistics":
            return self._statistics(params, rid)
        if logical in ("dlg_list", "dlg_list_ctx") and isinstance(params, dict):
            return self._dialogs(logical, params, rid)
        if logical in self.captures.methods or method in self.captures.methods:
            return _rpc_error(-32602, "Invalid params", rid, "Too few or too many parameters")
        return _rpc_error(-32601, "Method not found", rid)

    def _statistics(self, params: Any, rid: Any) -> bytes:
        """get_statistics semantics seen in the captures: 'group:' = group, bare name matches
        'group:name', a qualified 'group:name' matches nothing."""
        wanted = params.get("statistics") if isinstance(params, dict) else None
        if not isinstance(wanted, list):
            return _rpc_error(-32602, "Invalid params", rid, "Bad type for parameter 'statistics'")
        source = "get_statistics.all.fresh_start" if self.state == "empty" else "get_statistics.all"
        stats = self.captures.result(source)
        out: dict[str, Any] = {}
        for item in wanted:
            for key, value in stats.items():
                group, _, name = key.partition(":")
                if item == "all" or (item.endswith(":") and key.startswith(item)) or (":" not in item and name == item):
                    out[key] = value
        return _rpc(out, rid)

    def _dialogs(self, logical: str, params: dict, rid: Any) -> bytes:
        name = self.captures.find(logical, None, self.state)
        dialogs = self.captures.result(name)["Dialogs"] if name else []
        if "callid" in params:
            found = [d for d in dialogs if d.get("callid") == params["callid"]]
            return _rpc({"Dialog": found[0]}, rid) if found else _rpc_error(404, "No such dialog", rid)
        index, counter = int(params.get("index", 0)), int(params.get("counter", len(dialogs)))
        return _rpc({"count": len(dialogs), "Dialogs": dialogs[index:index + counter]}, rid)


class _Fault:
    def __init__(self, name: str, methods: set[str] | None, opts: dict[str, Any]) -> None:
        self.name, self.methods, self.opts = name, methods, opts

    def applies(self, method: str) -> bool:
        return self.methods is None or method in self.methods or _logical(method) in self.methods


class _Base:
    """Shared state/fault/override API of the HTTP and FIFO fakes."""

    def __init__(self, version: str, state: str) -> None:
        self.version = version
        self.responder = Responder(version, state)
        self.fault: _Fault | None = None
        self.last_headers: dict[str, str] = {}  # HTTP only
        self.stop_event = threading.Event()
        self.connections = 0  # HTTP: accepted TCP connections
        self.serve_lock = threading.Lock()  # mi_http/mi_fifo: one request at a time

    @property
    def requests(self) -> list[tuple[str, Any]]:
        return self.responder.requests

    @property
    def request_ids(self) -> list[Any]:
        return self.responder.request_ids

    @property
    def relay_url(self) -> str:
        return self.responder.relay_url

    def set_state(self, state: str) -> None:
        self.responder.state = state

    def set_response(self, method: str, body: Any, *, status: int = 200, content_type: str = "application/json") -> None:
        self.responder.overrides[_logical(method)] = (status, content_type, body)

    def set_error(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.set_response(method, _rpc_error(code, message, 1, data))

    def set_fault(self, name: str, methods: list[str] | set[str] | None = None, **opts: Any) -> None:
        self.fault = _Fault(name, set(methods) if methods else None, opts)
        if name == "refuse":
            self.stop()

    def clear_fault(self) -> None:
        self.fault = None

    def reply(self, raw: bytes) -> tuple[int, str, bytes, str] | None:
        """The reply to send, with the active fault applied; None = never answer."""
        status, ctype, body, method = self.responder.answer(raw)
        fault = self.fault
        if fault is None or not fault.applies(method):
            return status, ctype, body, method
        if fault.name == "silent":
            return None
        if fault.name == "http500":
            return 500, "text/html", b"", method
        if fault.name == "html":
            return 200, "text/html", b"<html><body><h1>It works!</h1></body></html>", method
        if fault.name == "non_json":
            return 200, "application/json", b"OK\n", method
        if fault.name == "truncated":
            return 200, "application/json", body[: max(1, len(body) // 2)], method
        if fault.name == "jsonrpc_error":
            code, message = fault.opts.get("code", -32000), fault.opts.get("message", "Internal error")
            return 200, "application/json", _rpc_error(code, message, _request_id(raw), fault.opts.get("data")), method
        if fault.name == "wrong_type":
            return 200, "application/json", _rpc("surprise", _request_id(raw)), method
        if fault.name == "huge":
            size = int(fault.opts.get("size", 2_000_000))
            return 200, "application/json", b'{"jsonrpc":"2.0","result":"' + b"x" * size + b'","id":1}', method
        return status, ctype, body, method

    def hang(self) -> None:
        self.stop_event.wait(HANG_LIMIT_S)

    def stop(self) -> None:
        self.stop_event.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _request_id(raw: bytes) -> Any:
    try:
        return json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"
    served = 0  # requests answered on this connection

    def _connection_fault(self) -> bool:
        """Faults of the connection rather than of the reply; True when the request was not answered."""
        fault = self.server.fake.fault
        if fault is None:
            return False
        if fault.name == "keepalive_stall" and self.served > 0:
            self.server.fake.hang()
            self.close_connection = True
            return True
        if fault.name == "drop" and fault.opts.get("times", 1) > 0:
            fault.opts["times"] = fault.opts.get("times", 1) - 1
            self.server.fake.responder.answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.close_connection = True
            return True
        return False

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # mi_http never answers a GET on its root
        if mi_http_route("GET", self.path, "") == "bad_path":
            self._send(400, "text/html", BAD_PATH_BODY)
            return
        self.server.fake.hang()
        self.close_connection = True

    def do_POST(self) -> None:
        fake = self.server.fake
        fake.last_headers = dict(self.headers)
        if self._connection_fault():
            return
        self.served += 1
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        route = mi_http_route("POST", self.path, self.headers.get("Content-Type") or "")
        if route == "bad_path":
            self._send(400, "text/html", BAD_PATH_BODY)
            return
        if route == "hang":
            fake.hang()  # captured: form-urlencoded POSTs hang forever
            self.close_connection = True
            return
        with fake.serve_lock:
            reply = fake.reply(raw)
            if reply is None:
                fake.hang()
                self.close_connection = True
                return
            status, ctype, body, _method = reply
            fault = fake.fault
            if fault and fault.name == "drip" and fault.applies(_method):
                self._drip(status, ctype, body, float(fault.opts.get("delay", 0.2)))
            elif fault and fault.name == "huge" and not fault.opts.get("declare_length", True):
                self._send_unsized(status, ctype, body)
            else:
                self._send(status, ctype, body)

    def _headers(self, status: int, ctype: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self._headers(status, ctype, len(body))
        self._write(body)

    def _send_unsized(self, status: int, ctype: str, body: bytes) -> None:
        self._headers(status, ctype, None)
        for start in range(0, len(body), 65536):
            if not self._write(body[start:start + 65536]):
                return

    def _drip(self, status: int, ctype: str, body: bytes, delay: float) -> None:
        self._headers(status, ctype, len(body))
        for i in range(len(body)):
            if self.server.fake.stop_event.wait(delay) or not self._write(body[i:i + 1]):
                self.close_connection = True
                return

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:  # the client gave up: fine
            self.close_connection = True
            return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: "MIServer"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open_sockets: set[socket.socket] = set()

    def process_request(self, request, client_address) -> None:
        self.fake.connections += 1
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Like a dead OpenSIPS: kept-alive connections go away too."""
        for sock in list(self.open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class MIServer(_Base):
    def __init__(self, version: str = "3.4", state: str = "populated") -> None:
        super().__init__(version, state)
        self._http = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        host, port = self._http.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self.url = f"{self.base_url}/mi"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mi-server-{port}", daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        super().stop()
        if not self._stopped:
            self._stopped = True
            self._http.shutdown()
            self._http.server_close()
            self._http.drop_connections()
            self._thread.join(timeout=5)


class FIFOServer(_Base):
    """mi_fifo: reads `:<reply-name>:<json>` lines from `fifo_path`, writes each reply to
    `reply_dir/<reply-name>` (a FIFO the client created) and closes it."""

    def __init__(self, directory: str | os.PathLike, version: str = "3.4", state: str = "populated") -> None:
        super().__init__(version, state)
        self.reply_dir = str(directory)
        self.fifo_path = os.path.join(self.reply_dir, "opensips_fifo")
        os.mkfifo(self.fifo_path, 0o666)
        self._rfd = os.open(self.fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)  # no EOF between clients
        self._thread = threading.Thread(target=self._serve, name="mi-fifo-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = b""
        while not self.stop_event.is_set():
            ready, _, _ = select.select([self._rfd], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(self._rfd, 65536)
            except BlockingIOError:
                continue
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._handle(line)

    def _handle(self, line: bytes) -> None:
        if not line.startswith(b":") or line.count(b":") < 2:
            return  # mi_fifo logs and drops malformed lines
        name, _, raw = line[1:].partition(b":")
        if b"/" in name or not name:
            return
        with self.serve_lock:
            reply = self.reply(raw)
            if reply is None:
                return  # silent: never write the reply FIFO
            body = reply[2]
            try:
                fd = os.open(os.path.join(self.reply_dir, name.decode()), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return  # the client already gave up
            try:
                os.set_blocking(fd, True)
                fault = self.fault
                if fault and fault.name == "drip" and fault.applies(reply[3]):
                    for i in range(len(body)):
                        if self.stop_event.wait(float(fault.opts.get("delay", 0.2))):
                            return
                        os.write(fd, body[i:i + 1])
                else:
                    os.write(fd, body)
            except OSError:
                pass
            finally:
                os.close(fd)

    def stop(self) -> None:
        super().stop()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._rfd, self._keep):
            try:
                os.close(fd)
            except OSError:
                pass
        self._rfd = self._keep = -1
        try:
            os.unlink(self.fifo_path)
        except OSError:
            pass


@pytest.fixture
def mi_server():
    with MIServer("3.4") as server:
        yield server


@pytest.fixture
def mi_server_40():
    with MIServer("4.0") as server:
        yield server


@pytest.fixture
def mi_fifo_server(tmp_path):
    with FIFOServer(tmp_path, "3.4") as server:
        yield server
