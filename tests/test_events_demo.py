"""Cross-check: the listener + stores against the demo platform's emulated Event Interface.

The live tables must end up equal to what a fresh ul_dump / dlg_list says, modulo
the documented OpenSIPS semantics: no event at dialog creation (state 1 is never
seen) and deleted dialogs (state 5) leave the store at once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from opsconsole_opensips.client import HTTPMIClient
from opsconsole_opensips.events import EventListener
from opsconsole_opensips.events_store import DialogStore, EventRouter, RegistrationStore
from opsconsole_opensips.parse import parse_contacts, parse_dialogs

DemoPlatform = pytest.importorskip("opsconsole_demo").DemoPlatform


async def live_tables_match(mi, router) -> bool:
    dump = {(c.aor, c.contact) for c in parse_contacts(await mi.call("ul_dump"))}
    dialogs = {d.id: d.state for d in parse_dialogs(await mi.call("dlg_list")) if 1 < d.state < 5}
    store_contacts = {(c.aor, c.contact) for c in router.registrations.contacts()}
    return dump == store_contacts and dialogs == {d.id: d.state for d in router.dialogs.dialogs()}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_stores_follow_the_demo_platform_events(transport):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=3) as demo:
        mi = HTTPMIClient(demo.mi_url, timeout=5.0)
        router = EventRouter(RegistrationStore(), DialogStore())
        listener = EventListener(mi, router, transports=(transport,), verify_every=None)
        try:
            assert await listener.start()
            router.registrations.begin_sync()
            router.dialogs.begin_sync()
            router.registrations.load_full(parse_contacts(await mi.call("ul_dump")), now=time.time())
            router.dialogs.load_full(parse_dialogs(await mi.call("dlg_list")))
            start = time.time()
            for step in range(150):
                await demo.step(start + step * 5)
                await asyncio.sleep(0)
            for _ in range(100):
                if await live_tables_match(mi, router):
                    break
                await asyncio.sleep(0.05)
            assert await live_tables_match(mi, router)
            assert listener.events_received > 0 and listener.protocol_errors == 0
        finally:
            await listener.aclose()
            await mi.aclose()
