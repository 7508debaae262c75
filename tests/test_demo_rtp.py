"""The demo's RTP pump: real packets through the real RTPengine for RTP<->RTP calls, none elsewhere."""

from __future__ import annotations

import asyncio
import shutil
import socket

import pytest

from opsconsole_demo import DemoPlatform, sdp
from opsconsole_demo.rtp import RtpPump
from opsconsole_demo.state import DemoState, MediaWork
from test_demo_shapes import FakeClock


def _relay_sdp(address: str, port: int) -> str:
    """What RTPengine hands an endpoint (lab flags RTP/AVP): its own address and port."""
    return sdp.rewrite(sdp.answer_sdp("udp", "x", port).replace("127.0.0.1", address), port)


def _dialog(kind: tuple[str, str] = ("udp", "udp"), pump: RtpPump | None = None):
    """A dialog up to its answer; with `pump`, its endpoints' SDP ports are the pump's (from the OS)."""
    state = DemoState(70, seed=3, clock=FakeClock(), initial_calls=False, media_port=pump.reserve if pump else None)
    contacts = state.online_contacts()
    caller = next(c for c in contacts if c.transport == kind[0])
    callee = next(c for c in contacts if c.transport == kind[1] and c is not caller)
    dialog = state._create_dialog(kind, caller, callee)
    state._answer(dialog)
    return dialog


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sdp_port(body: str) -> int:
    return sdp.media_lines(body)[0][0]


async def test_answer_starts_and_delete_stops_a_plain_call():
    pump = RtpPump(burst=0.02)
    dialog = _dialog(pump=pump)
    ports = {_sdp_port(dialog.caller.sdp), _sdp_port(dialog.callee.sdp)}
    assert set(pump.reserved) == ports  # bound now, on ports the OS chose
    relay_a, relay_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for relay in (relay_a, relay_b):
        relay.bind(("127.0.0.1", 0))
        relay.settimeout(2)
    dialog.caller.sent_sdp = _relay_sdp("127.0.0.1", relay_a.getsockname()[1])
    dialog.callee.sent_sdp = _relay_sdp("127.0.0.1", relay_b.getsockname()[1])
    pump.start()
    try:
        pump.update(MediaWork("answer", dialog))
        packet, source = await asyncio.to_thread(relay_a.recvfrom, 2048)
        other, _ = await asyncio.to_thread(relay_b.recvfrom, 2048)
        assert source == ("127.0.0.1", _sdp_port(dialog.caller.sdp))  # from the endpoint's SDP port
        assert packet[0] == 0x80 and packet[1] == 0 and len(packet) == 12 + 160  # RTP v2, PCMU, 20 ms
        assert other[8:12] != packet[8:12]  # one SSRC per endpoint
        assert pump.reserved == {}  # the call's sockets are its streams now
        streams = pump.calls[dialog.callid]
        pump.update(MediaWork("delete", dialog))
        assert dialog.callid not in pump.calls and all(s.sock.fileno() == -1 for s in streams)
    finally:
        await pump.close()
        relay_a.close()
        relay_b.close()


@pytest.mark.parametrize("case", ["ws", "not ours", "not loopback", "no relay sdp", "full"])
async def test_calls_that_must_stay_silent(case):
    pump = RtpPump(max_calls=0 if case == "full" else 4)
    dialog = _dialog(("udp", "ws") if case == "ws" else ("udp", "udp"), pump=pump)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    orphan = set()
    if case == "not ours":  # somebody else's socket is the callee's SDP port: nothing may be sent there
        orphan = {_sdp_port(dialog.callee.sdp)}  # reserved for the SDP this test replaces
        dialog.callee.sdp = sdp.answer_sdp("udp", "x", taken.getsockname()[1])
    port = _free_udp_port()
    dialog.caller.sent_sdp = _relay_sdp("192.0.2.1" if case == "not loopback" else "127.0.0.1", port)
    dialog.callee.sent_sdp = "" if case == "no relay sdp" else _relay_sdp("127.0.0.1", port)
    try:
        pump.update(MediaWork("answer", dialog))
        assert pump.calls == {}
        assert set(pump.reserved) == orphan  # the ports reserved for this call were given back
        if case == "ws":
            assert _sdp_port(dialog.callee.sdp) != 0 and taken.getsockname()[1] != _sdp_port(dialog.caller.sdp)
    finally:
        taken.close()
        await pump.close()


def test_reserved_ports_come_from_the_os_and_are_bounded():
    pump = RtpPump(max_calls=2)
    ports = [pump.reserve("udp") for _ in range(20)]
    assert pump.reserve("ws") is None  # WebRTC legs never send
    held = [p for p in ports if p is not None]
    assert len(held) == 8 and len(set(held)) == 8 and ports[8:] == [None] * 12
    for port in held:  # really bound by the pump: nobody else can have them meanwhile
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    asyncio.run(pump.close())
    assert pump.reserved == {}


def test_without_the_pump_the_sdp_ports_are_only_simulated_numbers():
    dialog = _dialog()
    assert 6000 <= _sdp_port(dialog.caller.sdp) < 7000 and 7000 <= _sdp_port(dialog.callee.sdp) < 8000


def _packets(query: dict) -> list[int]:
    """Packets RTPengine received per tag (summed over the tag's streams)."""
    return [sum(stream["stats"]["packets"] for media in tag["medias"] for stream in media["streams"])
            for tag in query["tags"].values()]


@pytest.mark.rtpengine
@pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine binary not installed")
async def test_real_rtpengine_counts_the_demo_rtp():
    clock = FakeClock()
    async with DemoPlatform(size=70, real_rtpengine=True, tick=None, clock=clock, seed=3, calls=6, rtp=True) as demo:
        for _ in range(60):
            clock.now += 1
            await demo.step()
            if demo.rtp.calls and any("ws" in d.kind and d.state == 4 for d in demo.state.active_dialogs()):
                break
        plain = next(d for d in demo.state.active_dialogs() if d.callid in demo.rtp.calls)
        sending = {stream.sock.getsockname()[1] for stream in demo.rtp.calls[plain.callid]}
        assert sending == {_sdp_port(plain.caller.sdp), _sdp_port(plain.callee.sdp)}  # the OS's ports, in the SDP
        mixed = next(d for d in demo.state.active_dialogs() if "ws" in d.kind and d.state == 4)
        await asyncio.sleep(0.5)
        talking = await demo.media.request({"command": "query", "call-id": plain.callid})
        silent = await demo.media.request({"command": "query", "call-id": mixed.callid})
    assert all(n > 0 for n in _packets(talking)) and len(_packets(talking)) == 2  # both ways, through the relay
    assert sum(_packets(silent)) == 0 and mixed.callid not in demo.rtp.calls
    assert demo.rtp.calls == {}  # closed with the platform
