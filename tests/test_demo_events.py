"""event_subscribe on the demo MI delivers E_UL_* and E_DLG_STATE_CHANGED in the captured shapes,
over UDP (event_datagram) and TCP (event_stream, objects back to back)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from opsconsole_demo import DemoPlatform
from test_demo_shapes import START, FakeClock, shape_diff

EVENTS = Path(__file__).parent / "fixtures" / "demo" / "opensips-3.4" / "events"
UL_EVENTS = ("E_UL_AOR_INSERT", "E_UL_AOR_DELETE", "E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE", "E_UL_CONTACT_DELETE")
ALL_EVENTS = UL_EVENTS + ("E_DLG_STATE_CHANGED",)
CAPTURED = {
    "E_UL_AOR_INSERT": "udp_new_register__E_UL_AOR_INSERT_1.json",
    "E_UL_AOR_DELETE": "udp_expiry_timer__E_UL_AOR_DELETE_1.json",
    "E_UL_CONTACT_INSERT": "udp_new_register__E_UL_CONTACT_INSERT_1.json",
    "E_UL_CONTACT_UPDATE": "udp_refresh_expires_change__E_UL_CONTACT_UPDATE_1.json",
    "E_UL_CONTACT_DELETE": "udp_expiry_timer__E_UL_CONTACT_DELETE_1.json",
    "E_DLG_STATE_CHANGED": "udp_call_start__E_DLG_STATE_CHANGED_1.json",
}


def captured(event: str) -> dict:
    return json.loads((EVENTS / CAPTURED[event]).read_text())


async def mi(client: httpx.AsyncClient, url: str, method: str, params=None) -> dict:
    body = {"jsonrpc": "2.0", "method": method, "id": 1, **({"params": params} if params is not None else {})}
    return (await client.post(url, json=body)).json()


async def drive(demo: DemoPlatform, clock: FakeClock, seconds: int, until=lambda: False) -> None:
    for _ in range(seconds):
        clock.now += 1
        await demo.step()
        await asyncio.sleep(0)
        if until():
            return


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data, addr) -> None:
        self.received.append(data)


def split_stream(data: bytes) -> list[dict]:
    """event_stream writes JSON objects with no delimiter: decode them one after another."""
    decoder, text, objects, index = json.JSONDecoder(), data.decode(), [], 0
    while index < len(text):
        obj, index = decoder.raw_decode(text, index)
        objects.append(obj)
    return objects


@pytest.fixture
def clock():
    return FakeClock()


async def test_udp_subscriber_gets_every_event_in_the_captured_shape(clock):
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(Datagrams, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, seed=2) as demo, \
                httpx.AsyncClient() as client:
            initial_calls = {d.callid for d in demo.state.active_dialogs()}  # up before we subscribed
            for event in ALL_EVENTS:
                reply = await mi(client, demo.mi_url, "event_subscribe",
                                 {"event": event, "socket": f"udp:127.0.0.1:{port}", "expire": 3600})
                assert reply == {"jsonrpc": "2.0", "result": "OK", "id": 1}

            def all_seen():
                return {json.loads(d)["method"] for d in listener.received} >= set(ALL_EVENTS)

            await drive(demo, clock, 900, until=all_seen)
            await asyncio.sleep(0.05)
    finally:
        transport.close()
    by_method: dict[str, list[dict]] = {}
    for datagram in listener.received:
        assert not datagram.endswith(b"\n")  # one compact JSON-RPC object per datagram
        notification = json.loads(datagram)
        by_method.setdefault(notification["method"], []).append(notification)
    assert set(by_method) == set(ALL_EVENTS)
    rejected = json.loads((EVENTS / "udp_call_404_start__E_DLG_STATE_CHANGED_1.json").read_text())
    for method, notifications in by_method.items():
        for notification in notifications:
            failed_call = method == "E_DLG_STATE_CHANGED" and notification["params"]["to_tag"] is None
            expected = rejected if failed_call else captured(method)
            assert shape_diff(expected, notification) == [], method
    for update in by_method["E_UL_CONTACT_UPDATE"]:
        assert update["params"]["expires"] > START  # an absolute timestamp, not seconds left
    first_states = {}
    for change in by_method["E_DLG_STATE_CHANGED"]:
        first_states.setdefault(change["params"]["callid"], change["params"]["old_state"])
    new_calls = set(first_states) - initial_calls
    assert new_calls and {first_states[c] for c in new_calls} == {1}  # no event at dialog creation


async def test_tcp_stream_subscriber_with_method_suffix(clock):
    received = bytearray()
    connected = asyncio.Event()

    async def on_connect(reader, writer):
        connected.set()
        while data := await reader.read(65536):
            received.extend(data)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, seed=2) as demo, \
                httpx.AsyncClient() as client:
            await mi(client, demo.mi_url, "event_subscribe",
                     {"event": "E_UL_AOR_INSERT", "socket": f"tcp:127.0.0.1:{port}/ul_aor_insert", "expire": 3600})
            await mi(client, demo.mi_url, "event_subscribe",
                     ["E_UL_CONTACT_INSERT", f"tcp:127.0.0.1:{port}", 3600])  # positional form

            def two_inserts():
                return received.count(b'"method":"E_UL_CONTACT_INSERT"') >= 2

            await drive(demo, clock, 900, until=two_inserts)
            for _ in range(50):
                if two_inserts():
                    break
                await asyncio.sleep(0.01)
    finally:
        server.close()
    assert connected.is_set()
    objects = split_stream(bytes(received))
    methods = [o["method"] for o in objects]
    assert "ul_aor_insert" in methods and "E_UL_CONTACT_INSERT" in methods
    reference = json.loads((EVENTS / "tcp_stream_new_register.json").read_text())
    for obj in objects:
        expected = reference[0] if obj["method"] == "ul_aor_insert" else reference[1]
        assert shape_diff(expected, obj) == []


async def test_subscribe_errors_and_subscribers_list(clock):
    captured_list = json.loads((EVENTS / "mi_subscribers_list_t0.reply.json").read_text())
    bad_event = json.loads((EVENTS / "mi_sub_bad_event.reply.json").read_text())
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock) as demo, \
            httpx.AsyncClient() as client:
        wrong_event = await mi(client, demo.mi_url, "event_subscribe",
                               {"event": "E_NO_SUCH", "socket": "udp:127.0.0.1:18900", "expire": 60})
        wrong_socket = await mi(client, demo.mi_url, "event_subscribe",
                                {"event": "E_UL_AOR_DELETE", "socket": "foo:127.0.0.1:18900", "expire": 60})
        remote = await mi(client, demo.mi_url, "event_subscribe",
                          {"event": "E_UL_AOR_DELETE", "socket": "udp:192.0.2.1:18900"})
        await mi(client, demo.mi_url, "event_subscribe", {"event": "E_UL_AOR_DELETE", "socket": "udp:127.0.0.1:18902"})
        await mi(client, demo.mi_url, "event_subscribe",
                 {"event": "E_UL_AOR_DELETE", "socket": "udp:127.0.0.1:18903", "expire": 10})
        await mi(client, demo.mi_url, "event_subscribe",
                 {"event": "E_DLG_STATE_CHANGED", "socket": "udp:127.0.0.1:18904", "expire": 60})
        await mi(client, demo.mi_url, "event_subscribe",
                 {"event": "E_DLG_STATE_CHANGED", "socket": "udp:127.0.0.1:18904", "expire": 0})  # unsubscribe
        clock.now += 3
        listing = await mi(client, demo.mi_url, "subscribers_list")
        clock.now += 10
        later = await mi(client, demo.mi_url, "subscribers_list")
    assert wrong_event == bad_event and wrong_socket == bad_event and remote == bad_event
    assert shape_diff(captured_list, listing) == []
    (aor_delete,) = listing["result"]["Events"]
    assert aor_delete["name"] == "E_UL_AOR_DELETE" and aor_delete["id"] == 7
    assert aor_delete["Subscribers"] == [
        {"socket": "udp:127.0.0.1:18903", "expire": 10, "ttl": 7},
        {"socket": "udp:127.0.0.1:18902", "expire": 3600, "ttl": 3597},
    ]
    assert [s["socket"] for s in later["result"]["Events"][0]["Subscribers"]] == ["udp:127.0.0.1:18902"]


async def test_event_stream_keeps_one_connection_when_a_send_task_runs_late():
    """A send task queued before the connection was up but run after it must write on that
    connection: a second one could deliver its event after later events."""
    from opsconsole_demo.events import EventHub

    connections: list[bytes] = []
    finished = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(b"")
        index = len(connections) - 1
        while data := await reader.read(65536):
            connections[index] += data
        writer.close()
        finished.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub = EventHub(clock=lambda: 0.0)
    await hub.start()
    try:
        hub.subscribe("E_UL_AOR_INSERT", f"tcp:127.0.0.1:{port}")
        sub = hub.subscribers[0]
        await hub._connect_and_send(sub, b'{"n":1}')  # connects, writes the first event
        await hub._connect_and_send(sub, b'{"n":2}')  # the late task
        hub._send(sub, b'{"n":3}')
        await sub.writer.drain()
        sub.writer.close()
        await asyncio.wait_for(finished.wait(), 5)
    finally:
        await hub.close()
        server.close()
    assert connections == [b'{"n":1}{"n":2}{"n":3}']
