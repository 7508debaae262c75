"""Demo media: the simulated RTPengine answers ng and CLI in the captured shapes; with the real
rtpengine installed, demo calls go through it and its ports land in the dialogs' sent SDPs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import bencode
import pytest

from opsconsole_demo import DemoPlatform, quality, sdp
from opsconsole_demo.media_sim import SimEngine, SimRtpengine
from opsconsole_demo.state import DemoState, MediaWork
from opsconsole_demo.media import SimulatedMedia, ng_request
from test_demo_shapes import FakeClock, shape_diff

FIXTURES = Path(__file__).parent / "fixtures" / "demo" / "rtpengine-10.5"


def captured_ng(name: str) -> dict:
    return json.loads((FIXTURES / "ng" / f"{name}.json").read_text())


async def engine_with_calls(clock: FakeClock, confirmed: int = 3) -> tuple[SimEngine, DemoState]:
    """A SimEngine that carried a DemoState's calls through offer/answer."""
    state = DemoState(70, seed=3, clock=clock, calls=confirmed)
    media = SimulatedMedia(clock)
    for _ in range(30):
        clock.now += 1
        state.advance()
        for work in state.take_media_work():
            await media.apply(work)
        if sum(d.state == 4 for d in state.active_dialogs()) >= confirmed:
            break
    clock.now += 10  # ten seconds of "talk"
    return media.engine, state


@pytest.mark.parametrize(("name", "request_"), [
    ("ping", {"command": "ping"}),
    ("error.unknown_command", {"command": "bogus"}),
    ("error.query_unknown_callid", {"command": "query", "call-id": "no-such-call"}),
    ("error.missing_command", {"call-id": "x"}),
    ("error.offer_without_sdp", {"command": "offer", "call-id": "fixture-err", "from-tag": "a"}),
    ("warning.delete_unknown", {"command": "delete", "call-id": "no-such-call", "from-tag": "x"}),
])
def test_simple_replies_equal_the_captures(name, request_):
    assert SimEngine(FakeClock()).handle(request_) == captured_ng(name)["response"]


async def test_list_query_statistics_have_the_captured_shapes():
    clock = FakeClock()
    engine, state = await engine_with_calls(clock)
    confirmed = [d for d in state.active_dialogs() if d.state == 4]
    listing = engine.handle({"command": "list"})
    assert shape_diff(captured_ng("list")["response"], listing) == []
    assert set(listing["calls"]) == {d.callid for d in state.active_dialogs()}
    assert engine.handle({"command": "list", "limit": "2"})["calls"] == listing["calls"][:2]
    query = engine.handle({"command": "query", "call-id": confirmed[0].callid})
    real = captured_ng("query.udp_udp")["response"]
    if quality.receptions(engine.profiles.of(confirmed[0].callid)) is not None:  # it sends RTCP (demo/quality.py)
        real = json.loads((Path(__file__).parent / "fixtures" / "rtpengine-10.5-quality" / "query.poor_rtcp.json")
                          .read_text())["response"]
    assert len(query["tags"]) == len(real["tags"]) == 2
    # tags and SSRC entries are keyed by SIP tags and SSRCs: compare the objects under them
    assert shape_diff({**real, "tags": list(real["tags"].values()), "SSRC": list(real["SSRC"].values())},
                      {**query, "tags": list(query["tags"].values()), "SSRC": list(query["SSRC"].values())}) == []
    assert query["totals"]["RTP"]["packets"] > 0  # the call has been talking
    statistics = engine.handle({"command": "statistics"})
    assert shape_diff(captured_ng("statistics")["response"], statistics) == []
    assert statistics["statistics"]["currentstatistics"]["sessionsown"] == len(listing["calls"])


async def test_list_defaults_to_32_calls():
    engine = SimEngine(FakeClock())
    offer = sdp.offer_sdp("udp", "1000", 6000)
    for n in range(40):
        assert engine.handle({"command": "offer", "call-id": f"c{n}", "from-tag": "f", "sdp": offer})["result"] == "ok"
    assert len(engine.handle({"command": "list"})["calls"]) == 32
    assert len(engine.handle({"command": "list", "limit": "1000"})["calls"]) == 40


async def test_ports_of_the_query_are_in_the_dialog_sent_sdp():
    clock = FakeClock()
    engine, state = await engine_with_calls(clock)
    for dialog in (d for d in state.active_dialogs() if d.state == 4):
        query = engine.handle({"command": "query", "call-id": dialog.callid})
        ports = {s["local port"] for tag in query["tags"].values() for m in tag["medias"] for s in m["streams"]}
        sent = {port for port, _ in sdp.media_lines(dialog.caller.sent_sdp) + sdp.media_lines(dialog.callee.sent_sdp)}
        assert sent and sent <= ports


def test_ports_run_out_with_the_captured_error_and_come_back_after_delete_delay():
    clock = FakeClock()
    engine = SimEngine(clock, port_min=30000, port_max=30007)  # room for 2 calls of 4 ports
    offer = sdp.offer_sdp("udp", "1000", 6000)
    replies = [engine.handle({"command": "offer", "call-id": f"c{n}", "from-tag": "f", "sdp": offer})
               for n in range(3)]
    assert [r["result"] for r in replies] == ["ok", "ok", "error"]
    assert replies[2]["error-reason"] == "Ran out of ports"
    engine.handle({"command": "delete", "call-id": "c0", "from-tag": "f"})
    assert "c0" in engine.handle({"command": "list"})["calls"]  # still there during delete-delay
    clock.now += 31
    assert engine.handle({"command": "list"})["calls"] == ["c1"]
    again = engine.handle({"command": "offer", "call-id": "c3", "from-tag": "f", "sdp": offer})
    assert again["result"] == "ok"


async def udp_exchange(address, payload: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    reply = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            if not reply.done():
                reply.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=address)
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(reply, 2)
    finally:
        transport.close()


async def cli_exchange(address, command: str) -> str:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(command.encode() + b"\n")
    try:
        return (await asyncio.wait_for(reader.read(), 2)).decode()
    finally:
        writer.close()


async def test_ng_over_udp_keeps_the_cookie_and_replays_a_reused_one():
    server = SimRtpengine(SimEngine(FakeClock()))
    await server.start()
    try:
        pong = await udp_exchange(server.ng, b"k1 " + bencode.bencode({"command": "ping"}))
        replay = await udp_exchange(server.ng, b"k1 " + bencode.bencode({"command": "list"}))
        garbage = await udp_exchange(server.ng, b"k2 this is not bencode")
    finally:
        await server.close()
    assert pong == b"k1 d6:result4:ponge"
    assert replay == pong  # a reused cookie gets the cached reply, as RTPengine does
    assert bencode.bdecode(garbage.split(b" ", 1)[1]) == captured_ng("error.garbage")["response"]


async def test_cli_answers_in_the_rtpengine_ctl_formats():
    clock = FakeClock()
    engine, state = await engine_with_calls(clock)
    server = SimRtpengine(engine)
    await server.start()
    callid = next(d.callid for d in state.active_dialogs() if d.state == 4)
    try:
        interfaces = await cli_exchange(server.cli, "list interfaces")
        numsessions = await cli_exchange(server.cli, "list numsessions")
        sessions = await cli_exchange(server.cli, "list sessions all")
        one = await cli_exchange(server.cli, f"list sessions {callid}")
        missing = await cli_exchange(server.cli, "list sessions nosuchcallid")
        bogus = await cli_exchange(server.cli, "bogus command")
    finally:
        await server.close()
    used = int(re.search(r"Ports used:\s+(\d+) /\s+(\d+)", interfaces).group(1))
    assert used == 4 * len(engine.sessions)
    captured_interfaces = (FIXTURES / "ctl" / "list_interfaces.txt").read_text()
    assert [line.split(":")[0] for line in interfaces.splitlines()] == \
        [line.split(":")[0] for line in captured_interfaces.splitlines()]
    assert f"Current sessions own: {len(engine.sessions)}" in numsessions
    assert len(sessions.splitlines()) == len(engine.sessions) and callid in sessions
    assert f"callid: {callid}" in one and "------ Media #1 (audio over" in one
    assert missing == (FIXTURES / "ctl" / "list_sessions_nosuchcallid.txt").read_text()
    assert bogus.strip() == (FIXTURES / "ctl" / "bogus_command.txt").read_text().strip()


def test_ng_requests_carry_the_tutorial_flags_per_direction():
    clock = FakeClock()
    state = DemoState(70, seed=3, clock=clock)
    caller = next(c for c in state.online_contacts() if c.transport == "udp")
    callee = next(c for c in state.online_contacts() if c.transport == "ws")
    state._create_dialog(("udp", "ws"), caller, callee)
    dialog = state.active_dialogs()[-1]
    offer = ng_request("offer", MediaWork("offer", dialog))
    assert offer["transport-protocol"] == "UDP/TLS/RTP/SAVPF" and offer["ICE"] == "force"
    answer = ng_request("answer", MediaWork("answer", dialog))
    assert answer["transport-protocol"] == "RTP/AVP" and answer["ICE"] == "remove"
    assert sdp.offer_flags(("ws", "ws")) == {"ICE": "force-relay", "DTLS": "passive"}
    assert sdp.offer_flags(("ws", "udp"))["ICE"] == "remove"


def _ng_client_available() -> bool:
    try:
        import opsconsole_rtpengine.ng  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.rtpengine
@pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine binary not installed")
@pytest.mark.skipif(not _ng_client_available(), reason="opsconsole_rtpengine.ng not available")
async def test_real_rtpengine_carries_the_demo_calls():
    clock = FakeClock()
    async with DemoPlatform(size=70, real_rtpengine=True, tick=None, clock=clock, seed=3, calls=4) as demo:
        pid = demo.media.process.pid
        for _ in range(30):
            clock.now += 1
            await demo.step()
            if sum(d.state == 4 for d in demo.state.active_dialogs()) >= 2:
                break
        listing = await demo.media.request({"command": "list", "limit": "100"})
        confirmed = [d for d in demo.state.active_dialogs() if d.state == 4]
        assert confirmed
        for dialog in confirmed:
            assert dialog.callid in listing["calls"]
            query = await demo.media.request({"command": "query", "call-id": dialog.callid})
            ports = {s["local port"] for tag in query["tags"].values() for m in tag["medias"] for s in m["streams"]}
            sent = [port for port, _ in sdp.media_lines(dialog.callee.sent_sdp) + sdp.media_lines(dialog.caller.sent_sdp)]
            if dialog.kind == ("ws", "ws"):  # ICE=force-relay keeps the endpoint's port on the m= line
                relay = re.findall(r"typ relay raddr \S+ rport (\d+)", dialog.caller.sent_sdp + dialog.callee.sent_sdp)
                sent = [int(port) for port in relay]
            assert sent and set(sent) <= ports
        assert os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/proc/{pid}")  # terminated and reaped on exit


@pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine binary not installed")
async def test_rtpengine_that_fails_to_start_is_reported_and_reaped(monkeypatch, tmp_path):
    from opsconsole_demo import media
    from console.errors import OpsError

    fake = tmp_path / "rtpengine"
    fake.write_text("#!/bin/sh\necho 'bad option' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setitem(__import__("sys").modules, "opsconsole_rtpengine.ng", _FakeNgModule())
    driver = media.RealRtpengine(str(fake))
    with pytest.raises(OpsError, match="exited with status 3: bad option"):
        await driver.start()
    assert driver.process is None


class _FakeNgModule:
    class NgClient:
        def __init__(self, host, port, timeout):
            pass

        async def request(self, command):
            from console.errors import Timeout

            raise Timeout("no answer")

        async def aclose(self):
            pass
