"""Media ports on the Calls / Media screens, and what the contact list is in live mode."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from textual.widgets import DataTable

from console.ui.app import OpsConsoleApp
from console.ui.panes import ContactTable, RegistrationsPane
from console.ui.screens import HelpScreen

from .data import NG, FakeService, lab_snapshot
from .helpers import screen_text, settle

WS_TO_UDP = "gqc9y5p4vytlkldkolvytokm"  # the lab's WS->UDP call (caller ws2000)
UDP_TO_WS = "call-udp2ws-2-27552@127.0.0.1"


def capture_ports(name: str) -> set[int]:
    """RTPengine's local ports in a raw ng `query` capture."""
    query = json.loads((NG / f"{name}.json").read_text())["response"]
    return {s["local port"] for tag in query["tags"].values() for m in tag["medias"] for s in m["streams"]}


def numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d{4,}", text)}


async def open_screen(app, pilot, key: str) -> str:
    await settle(app, pilot)
    await pilot.press(key)
    await settle(app, pilot)
    return screen_text(app)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_ws_to_udp_call_shows_bridge_and_ports(clock, size):
    app = OpsConsoleApp(FakeService(), interval=3600, clock=clock)
    async with app.run_test(size=size) as pilot:
        text = await open_screen(app, pilot, "3")
        line = next(line for line in text.splitlines() if "ws2000" in line)
        assert "WS->UDP" in line
        assert numbers(line) >= capture_ports("query.ws_to_udp")  # all four, untruncated
        if size == (120, 40):  # complete: media protocols, codec, packets all on screen
            assert "WS->UDP DTLS-SRTP<->RTP" in line
            header = next(line for line in text.splitlines() if "Caller" in line)
            assert "Pkts A/B" in header and "Codecs" in header


async def test_call_without_media_session_falls_back_to_the_sent_sdp_ports(clock):
    snap = lab_snapshot()
    media = replace(snap.media, sessions=tuple(s for s in snap.media.sessions if s.callid != UDP_TO_WS))
    app = OpsConsoleApp(FakeService([replace(snap, media=media)]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_screen(app, pilot, "3")
        row = app.query_one("#calls-table", DataTable).get_row(UDP_TO_WS)
        dialog = next(d for d in snap.signalling.dialogs if d.callid == UDP_TO_WS)
        # The ports RTPengine wrote into the SDPs OpenSIPS sent (m=audio 30910 / 30890).
        assert row[4].plain == f"A {dialog.caller.media_ports[0]} B {dialog.callee.media_ports[0]} SDP"
        assert "30910" in dialog.caller.sent_sdp and "30890" in dialog.callee.sent_sdp
        assert row[2].plain == "NO MEDIA"


async def test_media_sessions_list_ports_per_leg(clock):
    app = OpsConsoleApp(FakeService(), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_screen(app, pilot, "4")
        row = app.query_one("#sessions", DataTable).get_row(WS_TO_UDP)
        cells = [cell.plain for cell in row]
        ports = next(cell for cell in cells if cell.startswith("A "))
        assert numbers(ports) == capture_ports("query.ws_to_udp")
        assert " B " in ports


# --------------------------------------------------------------------------- live mode

NOTE = ("70 registered (statistics); list live from events since 05:12 (5 seen); "
        "full sync would hold OpenSIPS MI for ~1 s — press S to run it")
EVENTS = "live via udp:127.0.0.1:40000 [bold]E_UL_CONTACT_INSERT[/bold] 12 events"


def partial_snapshot():
    snap = lab_snapshot()
    sig = replace(snap.signalling, contacts=snap.signalling.contacts[:5], contacts_note=NOTE,
                  contacts_mode="events-partial", events_status=EVENTS)
    return replace(snap, signalling=sig)


async def test_partial_list_is_never_shown_as_the_whole(clock):
    service = FakeService([partial_snapshot()])
    app = OpsConsoleApp(service, interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        overview = await open_screen(app, pilot, "1")
        assert "list PARTIAL" in overview  # in the header, on every screen
        text = await open_screen(app, pilot, "2")
        assert app.query_one(ContactTable).row_count == 5
        assert "PARTIAL" in text and "5 listed of 70 registered" in text
        assert "press S to run it" in text
        assert EVENTS in text  # the subscription status, literally (markup stays text)


async def test_capital_s_on_registrations_asks_for_a_full_sync(clock):
    service = FakeService([partial_snapshot()])
    app = OpsConsoleApp(service, interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_screen(app, pilot, "2")
        assert not any(options.force_full_sync for options in service.requests)
        await pilot.press("S")
        await settle(app, pilot)
        forced = [options for options in service.requests if options.force_full_sync]
        assert len(forced) == 1 and forced[0].contacts
        assert app.query_one(RegistrationsPane).reverse is False  # S is not the sort key any more
        await pilot.press("r")
        await settle(app, pilot)
        assert app.query_one(RegistrationsPane).reverse is True


@pytest.mark.parametrize("mode,word", [("full", "COMPLETE"), ("events", "COMPLETE"), ("polling", "POLLED")])
async def test_complete_and_polled_lists_say_so(clock, mode, word):
    snap = lab_snapshot()
    snap = replace(snap, signalling=replace(snap.signalling, contacts_mode=mode))
    app = OpsConsoleApp(FakeService([snap]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        text = await open_screen(app, pilot, "2")
        assert f"List {word}" in text and f"list {word}" in text
        assert "PARTIAL" not in text and "listed of" not in text


async def test_help_lists_full_sync(clock):
    app = OpsConsoleApp(FakeService(), interval=3600, clock=clock)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        line = next(line for line in screen_text(app).splitlines() if " S " in line)
        assert "full contact sync" in line
