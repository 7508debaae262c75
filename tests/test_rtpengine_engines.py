"""A target with several RTPengines (#16: one OpenSIPS balancing a set): each call's media is looked up on the
engine that holds it, and an engine that does not answer leaves the session list incomplete — never "a call
without media".  Two real RTPengines on loopback, ports from the OS."""

from __future__ import annotations

import secrets

import pytest

from console.config import Config
from console.model import Dialog, DialogLeg
from console.plugins import CollectOptions
from console.snapshot import join_calls, sessions_complete
from opsconsole_rtpengine.ng import NgClient
from opsconsole_rtpengine.source import RTPengineSource
from support.rtpengine_daemon import make_call

pytestmark = pytest.mark.rtpengine


def _dialog(callid: str) -> Dialog:
    return Dialog(id="1", callid=callid, state=4, caller=DialogLeg(tag="a"), callees=(DialogLeg(tag="b"),))


async def test_call_media_found_on_the_engine_that_holds_it(start_rtpengine):
    a, b = start_rtpengine(ports=20), start_rtpengine(ports=20)
    callid = f"on-b-{secrets.token_hex(4)}"
    client = NgClient(*b.ng, timeout=1.0)
    source = RTPengineSource(Config(ng=a.ng, cli=a.cli, relays_ng=(a.ng, b.ng), timeout=1.0))
    try:
        await make_call(client, callid)
        media = await source.collect(CollectOptions())
        (session,) = [s for s in media.sessions if s.callid == callid]
        assert session.target == f"127.0.0.1:{b.ng[1]}" and len(session.legs) == 2  # queried on B
        assert sessions_complete(media)
        (call,) = join_calls((_dialog(callid),), media.sessions, sessions_complete=sessions_complete(media))
        assert call.media is session
        # the same collection with only A: the call is not found (the behaviour the list of engines fixes)
        alone = RTPengineSource(Config(ng=a.ng, cli=a.cli, timeout=1.0))
        try:
            assert callid not in {s.callid for s in (await alone.collect(CollectOptions())).sessions}
        finally:
            await alone.aclose()
    finally:
        await client.delete(callid)
        await client.aclose()
        await source.aclose()


async def test_an_engine_that_does_not_answer_leaves_the_list_incomplete(start_rtpengine):
    a, b = start_rtpengine(ports=20), start_rtpengine(ports=20)
    b.stop()
    source = RTPengineSource(Config(ng=a.ng, cli=a.cli, relays_ng=(a.ng, b.ng), timeout=0.5))
    try:
        media = await source.collect(CollectOptions())
    finally:
        await source.aclose()
    assert any(f"127.0.0.1:{b.ng[1]}" in error for error in media.errors)
    assert not sessions_complete(media)
    (call,) = join_calls((_dialog("somewhere"),), media.sessions, sessions_complete=sessions_complete(media))
    assert call.media is None and not call.media_known  # unknown, not "without media"
