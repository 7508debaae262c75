"""HTTP and FIFO MI clients against the capture-backed fake mi_http / mi_fifo."""

import asyncio
import base64
import json
import os
import socket

import httpx
import pytest

from console.config import Config
from console.errors import ConfigError, ConnectionRefused, ProtocolError, ResponseTooLarge, Timeout, TransportError
from opsconsole_opensips.client import FIFOMIClient, HTTPMIClient, make_client
from opsconsole_opensips.codec import MIError, MIPathError, MIServerError

GUARD_S = 10  # a hung client fails the test instead of hanging the run


async def call(client, method, params=None, **kw):
    return await asyncio.wait_for(client.call(method, params, **kw), GUARD_S)


@pytest.fixture
async def http(mi_server):
    client = HTTPMIClient(mi_server.url, timeout=0.5, max_bytes=1_000_000)
    yield client
    await client.aclose()


async def test_version_and_json_content_type(http, mi_server):
    assert (await call(http, "version"))["Server"].startswith("OpenSIPS (3.4.18")
    assert mi_server.last_headers["Content-Type"] == "application/json"
    assert "Authorization" not in mi_server.last_headers


async def test_fake_hangs_without_json_content_type(mi_server):
    """The fake behaves like mi_http: the header is what makes it answer."""
    async with httpx.AsyncClient(timeout=0.3) as raw:
        with pytest.raises(httpx.TimeoutException):
            await raw.post(mi_server.url, content=b'{"jsonrpc":"2.0","method":"version","id":1}',
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        with pytest.raises(httpx.TimeoutException):
            await raw.get(mi_server.url)


async def test_request_ids_are_unique(http, mi_server):
    await asyncio.gather(*(call(http, "version") for _ in range(5)))
    assert len(set(mi_server.request_ids)) == 5


async def test_basic_auth_sent_and_not_in_repr(mi_server):
    client = HTTPMIClient(mi_server.url, timeout=0.5, auth=("ops", "s3cret"))
    try:
        await call(client, "version")
    finally:
        await client.aclose()
    assert mi_server.last_headers["Authorization"] == "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert "s3cret" not in repr(client)


async def test_wrong_path(mi_server):
    client = HTTPMIClient(mi_server.base_url + "/foo", timeout=0.5)
    try:
        with pytest.raises(MIPathError, match="MI URL path is wrong"):
            await call(client, "version")
    finally:
        await client.aclose()


async def test_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HTTPMIClient(f"http://127.0.0.1:{port}/mi", timeout=0.5)
    try:
        with pytest.raises(ConnectionRefused) as info:
            await call(client, "version")
    finally:
        await client.aclose()
    assert f"127.0.0.1:{port}" in str(info.value) and "mi_http" in str(info.value)


async def test_refuse_fault(http, mi_server):
    mi_server.set_fault("refuse")
    with pytest.raises(ConnectionRefused):
        await call(http, "version")


@pytest.mark.parametrize("fault,error,match", [
    ("http500", MIServerError, "HTTP 500"),
    ("html", ProtocolError, "not JSON"),
    ("non_json", ProtocolError, "not JSON"),
    ("truncated", ProtocolError, "truncated"),
    ("wrong_type", None, None),
])
async def test_faults_map_to_typed_errors(http, mi_server, fault, error, match):
    mi_server.set_fault(fault)
    if error is None:
        assert await call(http, "version") == "surprise"  # the caller's parser rejects the type
        return
    with pytest.raises(error, match=match):
        await call(http, "version")


async def test_jsonrpc_error_fault(http, mi_server):
    mi_server.set_fault("jsonrpc_error", code=-32000, message="Internal error")
    with pytest.raises(MIError) as info:
        await call(http, "version")
    assert info.value.code == -32000


async def test_silent_server_times_out_naming_url(http, mi_server):
    mi_server.set_fault("silent")
    with pytest.raises(Timeout) as info:
        await call(http, "version")
    assert mi_server.url in str(info.value)


async def test_slow_drip_hits_overall_deadline(http, mi_server):
    mi_server.set_fault("drip", delay=0.1)  # each byte well within the read timeout
    with pytest.raises(Timeout):
        await call(http, "version")


@pytest.mark.parametrize("declare_length", [True, False])
async def test_huge_body_capped(http, mi_server, declare_length):
    mi_server.set_fault("huge", size=3_000_000, declare_length=declare_length)
    with pytest.raises(ResponseTooLarge):
        await call(http, "version")


async def test_method_not_found_and_recovery_after_fault(http, mi_server):
    with pytest.raises(MIError, match="no_such"):
        await call(http, "no_such_command")
    mi_server.set_fault("http500", methods=["ul_dump"])
    with pytest.raises(MIServerError):
        await call(http, "ul_dump")
    assert (await call(http, "uptime"))["Up time"] == "27 [sec]"


async def test_heavy_calls_never_overlap_but_cheap_ones_do(mi_server, monkeypatch):
    client = HTTPMIClient(mi_server.url, timeout=2)
    active = {"heavy": 0, "all": 0}
    peak = {"heavy": 0, "all": 0}
    real_exchange = client.transport.exchange

    async def tracking_exchange(body, **options):
        heavy = b"ul_dump" in body or b"dlg_list" in body
        for key in ("all",) + (("heavy",) if heavy else ()):
            active[key] += 1
            peak[key] = max(peak[key], active[key])
        try:
            await asyncio.sleep(0.05)  # hold the slot so overlaps can happen
            return await real_exchange(body, **options)
        finally:
            for key in ("all",) + (("heavy",) if heavy else ()):
                active[key] -= 1

    monkeypatch.setattr(client.transport, "exchange", tracking_exchange)
    try:
        await asyncio.wait_for(asyncio.gather(
            client.call("ul_dump"), client.call("dlg_list"), client.call("dlg_list_ctx"),
            client.call("version"), client.call("uptime")), GUARD_S)
    finally:
        await client.aclose()
    assert peak["heavy"] == 1 and peak["all"] >= 2


def test_bad_url_and_timeout():
    with pytest.raises(ConfigError):
        HTTPMIClient("127.0.0.1:8888/mi")
    for bad in ("ops:s3cret@127.0.0.1:8888/mi", "ftp://ops:s3cret@127.0.0.1/mi"):
        with pytest.raises(ConfigError) as info:
            HTTPMIClient(bad)
        assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)
    with pytest.raises(ConfigError):
        HTTPMIClient("http://127.0.0.1:8888/mi", timeout=0)


async def test_make_client():
    http = make_client(Config(mi_url="http://127.0.0.1:1/mi", mi_user="u", mi_password="p"))
    assert isinstance(http, HTTPMIClient)
    await http.aclose()
    fifo = make_client(Config(mi_url=None, mi_fifo="/tmp/x", mi_reply_dir="/var/tmp"))
    assert isinstance(fifo, FIFOMIClient) and fifo.reply_dir == "/var/tmp"
    with pytest.raises(ConfigError):
        make_client(Config(mi_url=None, mi_fifo=None))


# --------------------------------------------------------------------------- FIFO


def _leftover_replies(directory: str) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith("opsconsole_reply_")]


async def test_fifo_version_and_brief_dump(mi_fifo_server):
    client = FIFOMIClient(mi_fifo_server.fifo_path, mi_fifo_server.reply_dir, timeout=1)
    assert (await call(client, "version"))["Server"].startswith("OpenSIPS (3.4.18")
    brief = await call(client, "ul_dump", {"brief": 1})
    assert len(brief["Domains"][0]["AORs"]) == 70
    assert _leftover_replies(mi_fifo_server.reply_dir) == []


async def test_fifo_large_reply_and_concurrency(mi_fifo_server):
    mi_fifo_server.set_state("10k")
    client = FIFOMIClient(mi_fifo_server.fifo_path, mi_fifo_server.reply_dir, timeout=5)
    dump, version = await asyncio.gather(call(client, "ul_dump"), call(client, "version"))
    assert sum(len(a["Contacts"]) for a in dump["Domains"][0]["AORs"]) == 10_070 and "Server" in version


async def test_fifo_errors(mi_fifo_server):
    client = FIFOMIClient(mi_fifo_server.fifo_path, mi_fifo_server.reply_dir, timeout=0.5)
    with pytest.raises(MIError) as info:
        await call(client, "ul_show_contact", {"table_name": "location", "aor": "nobody"})
    assert info.value.code == 404
    mi_fifo_server.set_fault("silent")
    with pytest.raises(Timeout, match="FIFO"):
        await call(client, "version")
    assert _leftover_replies(mi_fifo_server.reply_dir) == []


async def test_fifo_missing_not_fifo_no_reader(tmp_path):
    missing = FIFOMIClient(str(tmp_path / "nope"), str(tmp_path), timeout=0.5)
    with pytest.raises(ConnectionRefused, match="not found"):
        await call(missing, "version")
    regular = tmp_path / "regular"
    regular.write_text("")
    with pytest.raises(TransportError, match="not a FIFO"):
        await call(FIFOMIClient(str(regular), str(tmp_path), timeout=0.5), "version")
    orphan = tmp_path / "orphan_fifo"
    os.mkfifo(orphan)
    with pytest.raises(ConnectionRefused, match="not reading"):
        await call(FIFOMIClient(str(orphan), str(tmp_path), timeout=0.5), "version")
    assert _leftover_replies(str(tmp_path)) == []


async def test_fifo_reply_dir_missing(mi_fifo_server, tmp_path):
    client = FIFOMIClient(mi_fifo_server.fifo_path, str(tmp_path / "no_such_dir"), timeout=0.5)
    with pytest.raises(ConfigError, match="reply directory"):
        await call(client, "version")


async def test_fifo_permission_denied_is_clear(mi_fifo_server, monkeypatch):
    real_open = os.open

    def deny_request_fifo(path, flags, *args):
        if path == mi_fifo_server.fifo_path:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny_request_fifo)
    client = FIFOMIClient(mi_fifo_server.fifo_path, mi_fifo_server.reply_dir, timeout=0.5)
    with pytest.raises(TransportError, match="permission denied") as info:
        await call(client, "version")
    assert "fifo_mode" in str(info.value)
    assert _leftover_replies(mi_fifo_server.reply_dir) == []


async def test_credentials_in_url_never_shown(mi_server):
    url = mi_server.url.replace("http://", "http://ops:s3cret@")
    client = HTTPMIClient(url, timeout=0.5)
    try:
        assert (await call(client, "version"))["Server"]
        assert mi_server.last_headers["Authorization"].startswith("Basic ")
        mi_server.set_fault("silent")
        with pytest.raises(Timeout) as info:
            await call(client, "version")
    finally:
        await client.aclose()
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(client) and "s3cret" not in client.target


async def test_unencodable_params_are_typed(http):
    with pytest.raises(ProtocolError, match="cannot encode"):
        await call(http, "get_statistics", "usrloc:")
    with pytest.raises(ProtocolError, match="cannot encode"):
        await call(http, "get_statistics", {"statistics": {1, 2}})


# ---------------------------------------------------------------- one request per connection (real mi_http stalls)


async def test_every_request_has_a_connection_of_its_own(mi_server):
    """Real mi_http sometimes never answers a second request on a kept-alive connection."""
    mi_server.set_fault("keepalive_stall")
    client = HTTPMIClient(mi_server.url, timeout=0.5)
    try:
        for _ in range(30):
            assert (await call(client, "version"))["Server"].startswith("OpenSIPS")
    finally:
        await client.aclose()
    assert mi_server.connections == 30
    assert mi_server.last_headers.get("Connection", "").lower() == "close"


async def test_a_read_is_retried_once_on_a_fresh_connection(http, mi_server):
    mi_server.set_fault("drop", times=1)
    assert (await call(http, "version"))["Server"].startswith("OpenSIPS")
    assert [m for m, _ in mi_server.requests] == ["version", "version"]
    assert mi_server.connections == 2


async def test_a_read_dropped_twice_is_a_transport_error(http, mi_server):
    mi_server.set_fault("drop", times=2)
    with pytest.raises(TransportError, match="failed twice"):
        await call(http, "version")
    assert len(mi_server.requests) == 2


async def test_a_write_is_never_sent_twice(mi_server):
    mi_server.set_fault("drop", times=1)
    client = HTTPMIClient(mi_server.url, timeout=0.5)
    try:
        with pytest.raises(TransportError, match="closed before it answered") as exc:
            await call(client, "ul_rm", {"table_name": "location", "AOR": "x"})
    finally:
        await client.aclose()
    assert "may or may not have been applied" in exc.value.hint
    assert [m for m, _ in mi_server.requests] == ["ul_rm"]


# ---------------------------------------------------------------- one client, pluggable transports (issue #13)

from console.errors import OpsError  # noqa: E402
from opsconsole_opensips.client import ConnectionLost, MemoryTransport, MIClient  # noqa: E402


def _answer(result) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "result": result, "id": 1}).encode()


async def test_memory_transport_gets_the_whole_pipeline():
    seen = []

    def handler(body: bytes) -> bytes:
        request = json.loads(body)
        seen.append((request["method"], request["id"], request.get("params")))
        if request["method"] == "nope":
            return json.dumps({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
                               "id": request["id"]}).encode()
        if request["method"] == "html":
            return 400, "text/html", b"<html>Unable to parse URL!</html>"
        return _answer({"Server": "OpenSIPS (3.4.18 (x86_64/linux))"})

    client = MIClient(MemoryTransport(handler), timeout=0.5)
    assert (await call(client, "version"))["Server"].startswith("OpenSIPS")
    server = _answer({"Server": "OpenSIPS (3.4.18 (x86_64/linux))"})
    assert await call(client, "uptime", {"x": 1}, typed=lambda raw: ("typed", raw)) == ("typed", server)
    with pytest.raises(MIError, match="no MI command 'nope'"):
        await call(client, "nope")
    with pytest.raises(MIPathError):
        await call(client, "html")
    with pytest.raises(ProtocolError, match="cannot encode"):
        await call(client, "get_statistics", {"statistics": {1}})
    assert [(m, i) for m, i, _ in seen] == [("version", 1), ("uptime", 2), ("nope", 3), ("html", 4)]
    assert seen[1][2] == {"x": 1} and repr(client) == "MIClient('memory')"


async def test_memory_transport_size_cap_is_per_method():
    huge = _answer("x" * 9_000_000)
    client = MIClient(MemoryTransport(lambda body: huge), timeout=0.5)
    with pytest.raises(ResponseTooLarge):  # a cheap call is capped at CHEAP_MAX_BYTES ...
        await call(client, "version")
    assert len(await call(client, "ul_dump")) == 9_000_000  # ... a table walk may be larger
    client = MIClient(MemoryTransport(lambda body: huge), timeout=0.5, max_bytes=1_000_000)
    with pytest.raises(ResponseTooLarge):  # ... up to the client's own cap
        await call(client, "ul_dump")


async def test_memory_transport_deadline_and_typed_failures():
    async def silent(body):
        await asyncio.sleep(30)

    client = MIClient(MemoryTransport(silent), timeout=0.1)
    with pytest.raises(Timeout, match=r"did not answer 'version' within 0.1 s"):
        await call(client, "version")

    def lost(body):
        raise ConnectionLost("ReadError: reset", retried=True)

    client = MIClient(MemoryTransport(lost), timeout=0.5)
    with pytest.raises(TransportError, match="'uptime' failed twice: ReadError"):
        await call(client, "uptime")
    with pytest.raises(TransportError, match="closed before it answered 'ul_rm'") as info:
        await call(client, "ul_rm", {"table_name": "location", "AOR": "x"})
    assert "may or may not" in info.value.hint


async def test_only_reads_are_marked_safe_to_retry():
    class Recording(MemoryTransport):
        async def exchange(self, body, *, limit, deadline, retry_safe):
            self.calls.append((json.loads(body)["method"], retry_safe, limit, deadline))
            return 200, "application/json", _answer({})

    transport = Recording(lambda body: b"")
    transport.calls = []
    client = MIClient(transport, timeout=0.5, max_bytes=50_000_000)
    for method in ("version", "ul_rm", "ul_dump"):
        await call(client, method)
    assert transport.calls == [("version", True, 8 * 1024 * 1024, 0.5), ("ul_rm", False, 8 * 1024 * 1024, 0.5),
                               ("ul_dump", True, 50_000_000, 10.0)]


async def test_memory_transport_heavy_calls_are_serialized():
    active, peak = [0], [0]

    async def handler(body):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.02)
        active[0] -= 1
        return _answer([])

    client = MIClient(MemoryTransport(handler), timeout=1)
    await asyncio.wait_for(asyncio.gather(*(client.call("ul_dump") for _ in range(4))), GUARD_S)
    assert peak[0] == 1
    await asyncio.wait_for(asyncio.gather(*(client.call("uptime") for _ in range(4))), GUARD_S)
    assert peak[0] == 4


async def test_plain_http_builds_no_ssl_context_https_still_verifies(monkeypatch):
    """httpx builds a verifying SSL context (CA bundle load, ~15 ms) for every client; mi_http
    over http:// never needs one."""
    import ssl

    made = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **kw: made.append(kw) or real(*a, **kw))
    plain = HTTPMIClient("http://127.0.0.1:1/mi")
    await plain.aclose()
    assert made == []
    secure = HTTPMIClient("https://127.0.0.1:1/mi")
    await secure.aclose()
    assert len(made) == 1 and made[0].get("cafile")


def test_redact_url_is_the_one_rule():
    from console.config import without_userinfo
    from opsconsole_opensips.client import redact_url

    for url, shown in [("http://ops:s3cret@127.0.0.1:8888/mi", "http://127.0.0.1:8888/mi"),
                       ("http://ops:pa/ss@host/mi", "http://host/mi"),  # unescaped '/' in the password
                       ("https://ops:p?w#x@host/mi", "https://host/mi"),
                       ("http://127.0.0.1:8888/mi", "http://127.0.0.1:8888/mi"),
                       ("/run/opensips@a/fifo", "/run/opensips@a/fifo")]:
        assert redact_url(url) == without_userinfo(url) == shown
    assert Config(mi_url="http://ops:pa/ss@host/mi").mi_target == "http://host/mi"
    assert isinstance(ConnectionLost("x", retried=False), OpsError)


@pytest.mark.parametrize("version", ["3.4", "4.0"])
def test_the_shared_mi_http_front_door_matches_every_capture(version):
    """opsconsole_demo.mi_server.mi_http_route (used by the demo's server and the tests' fake)
    against what real mi_http did with each captured request."""
    from pathlib import Path

    from opsconsole_demo.mi_server import BAD_PATH_BODY, mi_http_route

    captures = sorted((Path(__file__).parent / "fixtures" / f"opensips-{version}" / "mi").glob("*.http.txt"))
    seen = {"hang": 0, "bad_path": 0, "answer": 0}
    for capture in captures:
        lines = capture.read_text(errors="replace").splitlines()
        method, path, _ = lines[0].split(" ", 2)
        status = next((line.split()[1] for line in lines if line.startswith("HTTP/1.1 ")), None)
        if status is None:  # no reply: the capture lists the request's headers
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            expected, content_type = "hang", headers.get("Content-Type", "")
        else:  # answered; every such capture was sent as JSON
            reply = capture.with_name(capture.name.replace(".http.txt", ".json"))
            bad = status == "400" and reply.exists() and b"Unable to parse URL" in reply.read_bytes()
            expected, content_type = ("bad_path" if bad else "answer"), "application/json"
        assert mi_http_route(method, path, content_type) == expected, capture.name
        seen[expected] += 1
    assert min(seen.values()) >= 2, seen
    assert BAD_PATH_BODY == b"<html><body>Unable to parse URL!</body></html>"


async def test_fake_answers_a_wrong_path_before_looking_at_the_method(mi_server):
    """As the demo's server (and httpd, which picks its handler by path first): 400 on any method."""
    async with httpx.AsyncClient(timeout=2) as raw:
        for request in (raw.get(mi_server.base_url + "/foo"), raw.post(mi_server.base_url + "/", content=b"{}")):
            reply = await request
            assert reply.status_code == 400 and b"Unable to parse URL" in reply.content
