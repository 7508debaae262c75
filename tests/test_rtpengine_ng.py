"""NgClient and CliClient against real rtpengine daemons (and fake UDP peers where a daemon can't misbehave)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from console.errors import ConnectionRefused, ProtocolError, Timeout
from opsconsole_rtpengine import cli as cli_mod
from opsconsole_rtpengine.cli import CliClient, CliError
from opsconsole_rtpengine.codec import LegacyListenerError, decode, encode
from opsconsole_rtpengine.ng import NgClient, NgError
from support.rtpengine_daemon import make_call

pytestmark = pytest.mark.rtpengine


@pytest.fixture
async def ng(rtpengine):
    client = NgClient(*rtpengine.ng, timeout=2.0)
    yield client
    await client.aclose()


async def test_ping(ng):
    await ng.ping()
    assert ng.ignored_replies == 0


async def test_each_request_uses_a_new_cookie(ng, monkeypatch):
    sent: list[str] = []
    original = encode

    def spy(cookie, message):
        sent.append(cookie)
        return original(cookie, message)

    monkeypatch.setattr("opsconsole_rtpengine.codec.encode", spy)
    await ng.ping()
    calls = await ng.list(5)  # a reused cookie would be answered with the cached pong
    assert isinstance(calls, list)
    assert len(sent) == 2 and sent[0] != sent[1]


async def test_many_concurrent_requests_each_get_their_own_reply(ng):
    callids = [f"conc-{i}" for i in range(60)]
    results = await asyncio.gather(*(ng.query(c) for c in callids), return_exceptions=True)
    # none of these calls exist: every reply is the error for *its* request
    assert all(isinstance(r, NgError) and r.reason == "Unknown call-id" for r in results)
    pings = await asyncio.gather(*(ng.request({"command": "ping"}) for _ in range(100)))
    assert [p["result"] for p in pings] == ["pong"] * 100


async def test_offer_answer_query_delete_lifecycle(ng, rtpengine):
    callid = "lifecycle-udp-to-ws"
    from_tag, to_tag = await make_call(ng, callid, "udp_to_ws")
    assert callid in await ng.list(1000)
    reply = await ng.query(callid)
    assert set(reply["tags"]) == {from_tag, to_tag}
    protocols = {t["medias"][0]["protocol"] for t in reply["tags"].values()}
    assert protocols == {"RTP/AVP", "UDP/TLS/RTP/SAVPF"}
    ports = [s["local port"] for t in reply["tags"].values() for m in t["medias"] for s in m["streams"]]
    assert all(rtpengine.port_min <= p <= rtpengine.port_max for p in ports)
    deleted = await ng.delete(callid, from_tag)
    assert deleted["result"] == "ok"
    assert callid not in await ng.list(1000)
    with pytest.raises(NgError, match="Unknown call-id"):
        await ng.query(callid)


@pytest.mark.parametrize("kind", ["udp_udp", "ws_to_udp", "ws_to_ws"])
async def test_call_kinds_have_the_lab_protocols(ng, kind):
    callid = f"kind-{kind}"
    from_tag, to_tag = await make_call(ng, callid, kind)
    try:
        reply = await ng.query(callid)
        caller = reply["tags"][from_tag]["medias"][0]
        callee = reply["tags"][to_tag]["medias"][0]
        expected = {"udp_udp": ("RTP/AVP", "RTP/AVP"), "ws_to_udp": ("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
                    "ws_to_ws": ("UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVPF")}[kind]
        assert (caller["protocol"], callee["protocol"]) == expected
        if kind == "ws_to_udp":
            assert "ICE" in caller["flags"] and "DTLS-SRTP" in caller["flags"]
    finally:
        await ng.delete(callid, from_tag)


async def test_list_honours_a_limit_above_32(start_rtpengine):
    daemon = start_rtpengine(ports=200)
    client = NgClient(*daemon.ng)
    try:
        made = [f"many-{i}" for i in range(40)]
        for callid in made:
            await make_call(client, callid)
        assert len(await client.list(32)) == 32
        assert sorted(await client.list(1000)) == sorted(made)
        assert len(await client.list(5)) == 5
    finally:
        await client.aclose()


async def test_warning_reply_is_returned_not_raised(ng):
    reply = await ng.delete("no-such-call", "x")
    assert reply["result"] == "ok" and "not found" in reply["warning"]


async def test_error_reply_raises_ng_error_with_reason(ng):
    with pytest.raises(NgError) as info:
        await ng.request({"command": "bogus"})
    assert info.value.reason == "Unrecognized command"
    assert "bogus" in str(info.value)
    with pytest.raises(NgError, match="No SDP body"):
        await ng.request({"command": "offer", "call-id": "x-nosdp", "from-tag": "f"})


async def test_legacy_listener_gives_dedicated_error(start_rtpengine):
    daemon = start_rtpengine(legacy=True, ports=8)
    client = NgClient(*daemon.legacy, timeout=1.0)
    try:
        with pytest.raises(LegacyListenerError) as info:
            await client.ping()
        assert "-u/--listen-udp" in str(info.value) and "--listen-ng" in str(info.value)
    finally:
        await client.aclose()


async def test_refused_names_the_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = NgClient("127.0.0.1", port, timeout=1.0)
    try:
        with pytest.raises(ConnectionRefused, match=f"127.0.0.1:{port}"):
            await client.ping()
    finally:
        await client.aclose()


class FakePeer(asyncio.DatagramProtocol):
    """A UDP peer on loopback: records datagrams and answers through `reply(data)`."""

    def __init__(self, reply):
        self.reply = reply
        self.received: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received.append(data)
        for answer in self.reply(data, len(self.received)):
            self.transport.sendto(answer, addr)


async def fake_peer(reply):
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(lambda: FakePeer(reply), local_addr=("127.0.0.1", 0))
    return transport, peer, transport.get_extra_info("sockname")[1]


async def test_reply_with_foreign_cookie_is_ignored():
    def reply(data, count):
        cookie, _ = decode(data)
        yield encode("someone-else", {"result": "error", "error-reason": "not yours"})
        yield encode(cookie, {"result": "pong"})

    transport, peer, port = await fake_peer(reply)
    client = NgClient("127.0.0.1", port, timeout=1.0)
    try:
        await client.ping()
        assert client.ignored_replies == 1
    finally:
        await client.aclose()
        transport.close()


async def test_timeout_on_silent_peer_retries_with_the_same_cookie():
    transport, peer, port = await fake_peer(lambda data, count: ())
    client = NgClient("127.0.0.1", port, timeout=0.3, retries=2)
    try:
        with pytest.raises(Timeout, match=f"127.0.0.1:{port}"):
            await client.ping()
        assert len(peer.received) == 3
        assert len({decode(d)[0] for d in peer.received}) == 1
    finally:
        await client.aclose()
        transport.close()


async def test_late_reply_to_a_retry_is_accepted():
    def reply(data, count):
        if count >= 2:  # the first send is "lost"
            yield encode(decode(data)[0], {"result": "pong"})

    transport, peer, port = await fake_peer(reply)
    client = NgClient("127.0.0.1", port, timeout=1.5, retries=2)
    try:
        await client.ping()
        assert len(peer.received) == 2
    finally:
        await client.aclose()
        transport.close()


async def test_garbage_reply_is_a_protocol_error_for_that_request():
    transport, peer, port = await fake_peer(lambda data, count: [decode(data)[0].encode() + b" d4:resu"])
    client = NgClient("127.0.0.1", port, timeout=1.0)
    try:
        with pytest.raises(ProtocolError, match="not valid bencode"):
            await client.ping()
    finally:
        await client.aclose()
        transport.close()


async def test_big_reply_over_1500_bytes():
    big = "x" * 30000
    transport, peer, port = await fake_peer(lambda data, count: [encode(decode(data)[0], {"result": "ok", "sdp": big})])
    client = NgClient("127.0.0.1", port, timeout=1.0)
    try:
        assert (await client.request({"command": "query"}))["sdp"] == big
    finally:
        await client.aclose()
        transport.close()


# --------------------------------------------------------------------------- CLI against the real daemon


async def test_cli_ports_used_is_four_per_call(start_rtpengine):
    daemon = start_rtpengine(ports=100)
    ng_client = NgClient(*daemon.ng)
    cli = CliClient(*daemon.cli)
    try:
        (before,) = await cli.interfaces()
        assert (before.used, before.total) == (0, 100)
        assert (before.port_min, before.port_max) == (daemon.port_min, daemon.port_max)
        kinds = ["udp_udp", "udp_to_ws", "ws_to_udp", "ws_to_ws", "udp_udp"]
        tags = [await make_call(ng_client, f"cli-{i}", kind) for i, kind in enumerate(kinds)]
        (after,) = await cli.interfaces()
        assert after.used == 4 * len(kinds)
        listed = await cli.sessions("all")
        assert sorted(s.callid for s in listed) == sorted(f"cli-{i}" for i in range(len(kinds)))
        assert (await cli.numsessions())["sessions_total"] == len(kinds)
        assert (await cli.totals()).total_sessions == len(kinds)
        detail = await cli.session("cli-1")
        assert [leg.protocol for leg in detail.legs] == ["RTP/AVP", "UDP/TLS/RTP/SAVPF"]
        assert {leg.tag for leg in detail.legs} == set(tags[1])
        assert await cli.session("no-such-call") is None
        stats = await cli.jsonstats()
        assert stats["currentstatistics"]["sessionstotal"] == len(kinds)
    finally:
        await ng_client.aclose()


async def test_cli_unknown_command_is_cli_error(rtpengine):
    cli = CliClient(*rtpengine.cli)
    with pytest.raises(CliError, match="bogus"):
        await cli.command("bogus")
    with pytest.raises(CliError, match="More parameters"):
        await cli.command("list sessions")


async def test_cli_empty_command_is_refused_locally(rtpengine):
    with pytest.raises(ProtocolError):
        await CliClient(*rtpengine.cli).command("   ")


async def test_cli_refused_and_byte_cap(rtpengine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefused, match=f"127.0.0.1:{port}"):
        await CliClient("127.0.0.1", port, timeout=1.0).command("list totals")
    with pytest.raises(cli_mod.ResponseTooLarge):
        await CliClient(*rtpengine.cli, max_bytes=100).command("list totals")


async def test_cli_timeout_on_a_silent_server():
    held = []  # keep the connection open and silent
    server = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(Timeout, match=f"127.0.0.1:{port}"):
            await CliClient("127.0.0.1", port, timeout=0.2).command("list totals")
        assert held  # the client did connect: it was the answer that never came
    finally:
        for writer in held:
            writer.close()
        server.close()


# --------------------------------------------------------------------------- the daemon fixture itself


def test_missing_binary_skips_locally_and_fails_in_ci(monkeypatch):
    from support import rtpengine_daemon

    monkeypatch.setattr(rtpengine_daemon, "RTPENGINE", "/nonexistent/rtpengine")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        rtpengine_daemon._require_binary()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        rtpengine_daemon._require_binary()


async def test_daemon_with_only_the_legacy_listener(start_rtpengine):
    daemon = start_rtpengine(ng=False, legacy=True, port_range=(31000, 31007))
    assert daemon.ng is None and daemon.process.poll() is None
    client = NgClient(*daemon.legacy, timeout=1.0)
    with pytest.raises(LegacyListenerError):
        await client.ping()
    await client.aclose()
    (iface,) = await CliClient(*daemon.cli).interfaces()
    assert (iface.port_min, iface.port_max, iface.total) == (31000, 31007, 8)
    daemon.stop()
    assert daemon.process.poll() is not None


def test_a_daemon_that_cannot_start_reports_its_log():
    from support import rtpengine_daemon

    rtpengine_daemon._require_binary()
    with pytest.raises(RuntimeError, match="Missing option --listen") as info:
        rtpengine_daemon.start_daemon(ng=False, ports=8)  # no control listener at all
    assert "exited with status" in str(info.value)
