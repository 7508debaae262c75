"""The other ways in, against a real OpenSIPS: the Event Interface (event_datagram over UDP, event_stream over
TCP) through our EventListener, the config variant without the event modules, and MI over mi_fifo.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from opsconsole_opensips.client import HTTPMIClient
from opsconsole_opensips.events import ContactEvent, DialogStateEvent, EventListener
from support.ws_sip import WsUA

pytestmark = pytest.mark.opensips

WAIT_S = 15.0  # only stops a hang; never a speed assertion


class Collected:
    def __init__(self) -> None:
        self.events: list = []

    def apply(self, event) -> None:
        self.events.append(event)


async def _wait_for(sink: Collected, predicate) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = next((e for e in sink.events if predicate(e)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"event not received; got {sink.events!r}")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_events_of_a_real_registration_and_call(start_real_platform, transport):
    platform = start_real_platform(traffic=False, events=True)

    async def scenario():
        mi = HTTPMIClient(platform.mi_url, timeout=3.0)
        sink = Collected()
        listener = EventListener(mi, sink, transports=(transport,), verify_every=None, target=platform.mi_url)
        callee = caller = None
        try:
            assert await listener.start(), listener.fallback_reason or listener.last_error
            assert listener.socket.startswith(f"{transport}:127.0.0.1:")
            callee = await asyncio.to_thread(WsUA, platform.opensips.ws_url, "ws7002")
            caller = await asyncio.to_thread(WsUA, platform.opensips.ws_url, "ws7001")
            await asyncio.to_thread(callee.register)
            insert = await _wait_for(sink, lambda e: isinstance(e, ContactEvent) and e.kind == "insert")
            assert insert.aor.split("@")[0] == "ws7002" and insert.contact.transport == "ws"
            code, callid = await asyncio.to_thread(caller.call, "ws7002")
            assert code == 200
            confirmed = await _wait_for(sink, lambda e: isinstance(e, DialogStateEvent) and e.new_state == 4)
            assert confirmed.callid == callid
            assert callid in await asyncio.to_thread(platform.ng_calls)  # WS<->WS through rtpengine too
        finally:
            for ua in (caller, callee):
                if ua is not None:
                    ua.close()
            await listener.aclose()
            await mi.aclose()

    asyncio.run(scenario())


def test_without_event_modules_the_listener_falls_back_and_snapshot_works(start_real_platform, opsconsole):
    platform = start_real_platform(traffic=False, events=False)

    async def subscribe():
        mi = HTTPMIClient(platform.mi_url, timeout=3.0)
        listener = EventListener(mi, Collected(), verify_every=None)
        try:
            return await listener.start(), listener.fallback_reason
        finally:
            await listener.aclose()
            await mi.aclose()

    started, reason = asyncio.run(subscribe())
    assert not started
    assert "event_datagram" in reason and "event_stream" in reason and "polling" in reason
    code, snap = opsconsole.json("snapshot", *platform.target_args())
    assert code == 0 and snap["sources"]["opensips"]["ok"], snap["sources"]


def test_snapshot_over_mi_fifo_equals_mi_http(real_platform, opsconsole):
    _, over_http = opsconsole.json("snapshot", *real_platform.target_args())
    ng, cli = real_platform.ng, real_platform.cli
    code, over_fifo = opsconsole.json("snapshot", "--mi-fifo", str(real_platform.fifo), "--ng", f"{ng[0]}:{ng[1]}",
                                      "--cli", f"{cli[0]}:{cli[1]}", "--timeout", "5")
    assert code == 0, over_fifo["sources"]
    assert {(r["aor"], r["contact"], r["user_agent"]) for r in over_fifo["registrations"]} == \
        {(r["aor"], r["contact"], r["user_agent"]) for r in over_http["registrations"]}
    assert {d["callid"] for d in over_fifo["dialogs"]} == {d["callid"] for d in over_http["dialogs"]}
    assert len(over_fifo["dialogs"]) == real_platform.expected_dialogs
    assert over_fifo["overview"]["opensips"]["version"] == over_http["overview"]["opensips"]["version"]
