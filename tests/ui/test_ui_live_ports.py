"""Media ports on the Calls / Media screens, and what the contact list is in live mode."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from rich.text import Text
from textual.widgets import DataTable

from console.ui.app import OpsConsoleApp
from console.ui.panes import ContactTable, RegistrationsPane
from console.ui.screens import HelpScreen

from .data import NG, NOW, FakeService, lab_snapshot
from .helpers import open_screen, screen_text, settle
from .scenes import LIVE_EVENTS, live_snapshot

WS_TO_UDP = "gqc9y5p4vytlkldkolvytokm"  # the lab's WS->UDP call (caller ws2000)
UDP_TO_WS = "call-udp2ws-2-27552@127.0.0.1"


def capture_ports(name: str) -> set[int]:
    """RTPengine's local ports in a raw ng `query` capture."""
    query = json.loads((NG / f"{name}.json").read_text())["response"]
    return {s["local port"] for tag in query["tags"].values() for m in tag["medias"] for s in m["streams"]}


def numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d{4,}", text)}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_ws_to_udp_call_shows_bridge_and_ports(clock, size):
    app = OpsConsoleApp(FakeService(), interval=3600, clock=clock)
    async with app.run_test(size=size) as pilot:
        text = await open_screen(app, pilot, "3")
        line = next(line for line in text.splitlines() if "ws2000" in line)
        header = next(line for line in text.splitlines() if "Caller" in line)
        if size == (80, 24) and "Media ports" not in header:  # dropped whole, and said so (#14)
            assert "cols →" in text and "Media ports" in text
        else:
            assert "WS->UDP" in line
            assert numbers(line) >= capture_ports("query.ws_to_udp")  # all four, untruncated
        if size == (120, 40):  # ports, codec, packets all on screen (the media protocols: from 140 columns)
            assert "WS->UDP" in line and numbers(line) >= capture_ports("query.ws_to_udp")
            header = next(line for line in text.splitlines() if "Caller" in line)
            assert "Pkts A/B" in header and "Codecs" in header


async def test_call_without_media_session_falls_back_to_the_sent_sdp_ports(clock):
    snap = lab_snapshot()
    sessions = tuple(s for s in snap.media.sessions if s.callid != UDP_TO_WS)
    # RTPengine has no session for it (its count agrees: a complete list, so NO MEDIA is a verdict)
    media = replace(snap.media, sessions=sessions, sessions_total=len(sessions))
    app = OpsConsoleApp(FakeService([replace(snap, media=media)]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_screen(app, pilot, "3")
        row = app.query_one("#calls-table", DataTable).get_row(UDP_TO_WS)
        dialog = next(d for d in snap.signalling.dialogs if d.callid == UDP_TO_WS)
        # The ports RTPengine wrote into the SDPs OpenSIPS sent (m=audio 30910 / 30890).
        ports = app.query_one("#calls-table", DataTable).get_cell(UDP_TO_WS, "ports")
        assert ports.plain == f"A {dialog.caller.media_ports[0]} B {dialog.callee.media_ports[0]} SDP"
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

async def test_partial_list_is_never_shown_as_the_whole(clock):
    service = FakeService([live_snapshot()])
    app = OpsConsoleApp(service, interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        overview = await open_screen(app, pilot, "1")
        assert "contacts PARTIAL" in overview  # in the header, on every screen
        text = await open_screen(app, pilot, "2")
        assert app.query_one(ContactTable).row_count == 5
        assert "PARTIAL" in text and "5 listed of 70 registered" in text
        assert "press S to run it" in text
        assert LIVE_EVENTS in text  # the subscription status


async def test_event_status_and_note_are_never_markup(clock):
    hostile = "[bold red]fake OK[/bold red] \x1b[2J"
    snap = live_snapshot()
    snap = replace(snap, signalling=replace(snap.signalling, events_status=hostile, contacts_note=hostile))
    app = OpsConsoleApp(FakeService([snap]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        text = await open_screen(app, pilot, "2")
        assert text.count("[bold red]fake OK[/bold red] \\x1b[2J") == 2


async def test_capital_s_on_registrations_asks_for_a_full_sync(clock):
    service = FakeService([live_snapshot()])
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


@pytest.mark.parametrize("mode,word", [("full", "ALL LISTED"), ("events", "ALL LISTED"), ("polling", "POLLED")])
async def test_complete_and_polled_lists_say_so(clock, mode, word):
    snap = lab_snapshot()
    snap = replace(snap, signalling=replace(snap.signalling, contacts_mode=mode))
    app = OpsConsoleApp(FakeService([snap]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        text = await open_screen(app, pilot, "2")
        assert f"List {word}" in text and f"contacts {word}" in text
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


# --------------------------------------------------------------------------- many calls


def test_polls_without_details_keep_the_last_ports():
    from console.plugins import CollectOptions
    from console.live_state import LiveState

    snap = lab_snapshot()
    state = LiveState()
    state.apply(snap, CollectOptions(media_details=True))
    listed = tuple(replace(s, legs=(), detailed=False) for s in snap.media.sessions)
    state.apply(replace(snap, collected_at=snap.collected_at + 10, media=replace(snap.media, sessions=listed)),
                CollectOptions(media_details=False))
    by_callid = {s.callid: s for s in state.media.sessions}
    assert by_callid[WS_TO_UDP].legs and set(by_callid[WS_TO_UDP].ports) == capture_ports("query.ws_to_udp")
    assert state.details_at == snap.collected_at


DETAIL_EVERY = 4  # s: a screenful of sessions at DETAIL_QUERIES_PER_S


def many_sessions_service(count: int = 1000) -> FakeService:
    from console.model import MediaSession

    snap = lab_snapshot()
    many = tuple(MediaSession(callid=f"c{n:04d}", created=int(NOW) - 2 * count + n) for n in range(count))
    return FakeService([replace(snap, media=replace(snap.media, sessions=many))])


@pytest.mark.parametrize("key, table_id", [("3", "#calls-table"), ("4", "#sessions")])
async def test_details_are_asked_only_for_the_sessions_on_screen(clock, key, table_id):
    from console.ui.rows import DETAIL_MARGIN

    app = OpsConsoleApp(many_sessions_service(), interval=2.0, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, key)
        app.paused = True
        table = app.screen.query_one(table_id, DataTable)
        order = [row.key.value for row in table.ordered_rows]
        session = app.session

        def on_screen_asked():
            """The options now, and what they ask besides the rotating budget's share (the rows on screen)."""
            options = app.collect_options()
            return options, (options.media_detail_callids or frozenset()) - session.last_rotation

        just_detailed, just_screen = on_screen_asked()  # the poll opening the screen detailed them
        clock.advance(DETAIL_EVERY)
        first, first_screen = on_screen_asked()
        clock.advance(DETAIL_EVERY)
        soon, soon_screen = on_screen_asked()
        # between, only the rotation's share (every call once per checks interval), not the screenful
        assert not just_screen and len(just_detailed.media_detail_callids) == session.rotation_size(1000)
        # a screenful (plus a margin) every few seconds, not 1000 queries every 10 s
        assert first.media_details and soon.media_details and first_screen and soon_screen
        assert first_screen <= set(order[:40 + DETAIL_MARGIN])
        assert order[0] in first_screen and order[-1] not in first_screen
        table.scroll_end(animate=False)
        await settle(app, pilot)
        clock.advance(DETAIL_EVERY)
        scrolled = on_screen_asked()[1]
        assert order[-1] in scrolled and order[1] not in scrolled
        assert order[0] in scrolled  # the cursor's row (Enter opens its detail)
        # new calls' parties (one MI request each): only the Calls screen's rows on screen
        dialog_wanted = app.collect_options().dialog_detail_callids
        if key == "3":
            assert order[-1] in dialog_wanted and order[1] not in dialog_wanted
        else:
            assert dialog_wanted == frozenset()  # the Media screen shows no parties


def test_a_ringing_call_sorts_by_its_offer_not_at_the_top():
    from console.model import Call, Dialog, MediaSession
    from console.ui.calls import call_order

    answered = Call("a", Dialog(id="1", callid="a", start=1000))
    ringing = Call("r", Dialog(id="2", callid="r", start=0), MediaSession("r", created=1500))
    unknown = Call("u", Dialog(id="3", callid="u", start=0))
    orphan = Call("o", None, MediaSession("o", created=900))
    assert [c.callid for c in sorted([unknown, ringing, answered, orphan], key=call_order)] == ["o", "a", "r", "u"]


async def test_off_screen_ages_wait_until_scrolled_into_view(clock):
    app = OpsConsoleApp(many_sessions_service(), interval=3600, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "4")
        pane = app.screen.query_one("#media")
        table = app.screen.query_one("#sessions", DataTable)
        top_key, bottom_key = pane.order[0], pane.order[-1]
        top_age, bottom_age = str(table.get_cell(top_key, "age")), str(table.get_cell(bottom_key, "age"))
        clock.advance(65)
        pane.refresh_view(app.state, app.now())
        assert str(table.get_cell(top_key, "age")) != top_age  # on screen: moves
        assert str(table.get_cell(bottom_key, "age")) == bottom_age  # off screen: untouched
        table.scroll_end(animate=False)
        await settle(app, pilot)
        pane.tick(app.state, app.now())
        assert str(table.get_cell(bottom_key, "age")) != bottom_age  # scrolled into view: moved


def test_row_cells_are_reused_for_unchanged_items():
    from console.ui.rows import RowCells

    built: list[str] = []

    def build(item, now, narrow):
        built.append(item)
        return (Text(item), Text(f"{now:.0f}"))

    cells = RowCells(build, lambda item, now: Text(f"{now:.0f}"), 1)
    first = dict(cells.rows([("a", "A"), ("b", "B")], 10, False, range(0, 2)))
    again = dict(cells.rows([("a", "A"), ("b", "B")], 10, False, range(0, 2)))
    assert built == ["A", "B"] and again["a"] is first["a"] and again["b"] is first["b"]
    later = dict(cells.rows([("a", "A"), ("b", "B2")], 20, False, range(0, 1)))
    assert built == ["A", "B", "B2"]  # only the changed item is rebuilt
    assert later["a"][1].plain == "20" and later["a"][0] is first["a"][0]  # on screen: only the age moved
    assert dict(cells.rows([("a", "A")], 30, False, range(5, 6)))["a"] is later["a"]  # off screen: untouched


def test_codecs_and_packets_cells():
    from console.model import Media, MediaLeg, MediaStream
    from console.ui.format import legs_codecs, legs_packets

    def leg(codec: str, packets: int, errors: int) -> MediaLeg:
        return MediaLeg(tag=codec, medias=(Media(codec=codec, streams=(MediaStream(packets=packets, errors=errors),)),))

    pcma, opus = leg("PCMA/8000", 236, 0), leg("opus/48000/2", 230, 3)
    assert legs_codecs((pcma, pcma)) == "PCMA/8000"
    assert legs_codecs((pcma, opus), short=True) == "A PCMA B opus"
    assert legs_codecs((pcma, None), short=True) == "A PCMA B -"
    assert legs_codecs((None, None)) == "-"
    assert legs_packets(pcma, pcma).plain == "236/236"
    assert legs_packets(pcma, opus).plain == "236/230 err 0/3"


def test_a_call_keeps_its_place_when_answered():
    """Answering gives the dialog a start later than its offer: the row must not move (a moving
    row slides under the cursor, and reorders the whole table on every poll)."""
    from console.model import Call, Dialog, MediaSession
    from console.ui.calls import call_order

    older = Call("x", Dialog(id="9", callid="x", start=1400), MediaSession("x", created=1390))
    ringing = Call("r", Dialog(id="2", callid="r", start=0), MediaSession("r", created=1300))
    answered = Call("r", Dialog(id="2", callid="r", start=1600), MediaSession("r", created=1300))
    assert [c.dialog.start for c in sorted([older, ringing], key=call_order)] == [0, 1400]
    assert [c.dialog.start for c in sorted([older, answered], key=call_order)] == [1600, 1400]


async def test_a_call_keeps_its_row_when_its_dialog_ends_before_its_media(clock):
    """BYE: the dialog goes, RTPengine keeps the session for its delete-delay.  The call's time
    is then the offer's only, later than the dialog's start: the row must stay where it was."""
    from console.model import Call, Dialog, MediaSession
    from console.ui.calls import CallsPane

    def calls(*items):
        return tuple(items)

    first = Call("a", Dialog(id="1", callid="a", start=1000), MediaSession("a", created=1100))
    second = Call("b", Dialog(id="2", callid="b", start=1050), MediaSession("b", created=1060))
    ending = Call("a", None, MediaSession("a", created=1100, deleted=True))
    fresh = Call("c", None, MediaSession("c", created=0))  # no time known yet: placed when one is
    timed = Call("c", Dialog(id="3", callid="c", start=900), MediaSession("c", created=900))
    pane = CallsPane()
    assert [c.callid for c in pane._in_order(calls(first, second, fresh))] == ["a", "b", "c"]
    assert [c.callid for c in pane._in_order(calls(ending, second, fresh))] == ["a", "b", "c"]
    assert [c.callid for c in pane._in_order(calls(ending, second, timed))] == ["c", "a", "b"]
    assert set(pane.order_keys) == {"a", "b", "c"}
    assert [c.callid for c in pane._in_order(calls(second))] == ["b"] and set(pane.order_keys) == {"b"}
