"""Live detail screens (#12): Enter on a call, a media session or a contact opens a detail that
follows the row at each poll (age, packet counters, countdown) and, once the row is gone, says
so with the time and keeps its last content."""

from __future__ import annotations

import re
from dataclasses import replace

from console.model import MediaSession, Snapshot
from console.ui.panes import CallsPane, ContactTable, MediaPane
from console.ui.screens import DetailScreen, clock_time

from .data import FakeService, lab_snapshot
from .helpers import open_screen, screen_text, settle


def with_more_packets(snap: Snapshot, callid: str, extra: int) -> Snapshot:
    """The same platform, `extra` more packets on every stream of one media session."""
    def bumped(session: MediaSession) -> MediaSession:
        if session.callid != callid:
            return session
        legs = tuple(replace(leg, medias=tuple(replace(media, streams=tuple(
            replace(stream, packets=stream.packets + extra) for stream in media.streams)) for media in leg.medias))
            for leg in session.legs)
        return replace(session, legs=legs)

    media = replace(snap.media, sessions=tuple(bumped(s) for s in snap.media.sessions))
    return replace(snap, media=media)


def without_call(snap: Snapshot, callid: str) -> Snapshot:
    sig = replace(snap.signalling, dialogs=tuple(d for d in snap.signalling.dialogs if d.callid != callid))
    sessions = tuple(s for s in snap.media.sessions if s.callid != callid)
    media = replace(snap.media, sessions=sessions, sessions_total=len(sessions))
    calls = tuple(c for c in snap.calls if c.callid != callid)
    return replace(snap, signalling=sig, media=media, calls=calls)


def field(text: str, name: str) -> str:
    """The value of the first 'name  value' line of the detail."""
    match = re.search(rf"^\s*{name}\s+(\S.*?)\s*$", text, re.MULTILINE)
    assert match, f"no {name} line in:\n{text}"
    return match.group(1)


def packet_counts(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"pkts (\d+)", text)]


async def poll(app, pilot, service: FakeService, snap: Snapshot) -> str:
    service.snapshots = [snap]
    app.poll_now()
    await settle(app, pilot)
    return screen_text(app)


async def test_call_detail_follows_the_call_and_says_when_it_is_gone(make_app, service, clock):
    app = make_app()
    async with app.run_test(size=(140, 160)) as pilot:  # tall: the SDPs come before the media session
        await open_screen(app, pilot, "3")
        callid = app.query_one(CallsPane).order[0]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        before = screen_text(app)
        duration, age, packets = field(before, "Duration"), field(before, "Age"), packet_counts(before)
        assert packets, before

        clock.advance(125)
        after = await poll(app, pilot, service, with_more_packets(lab_snapshot(clock.now), callid, 500))
        assert field(after, "Age") != age and field(after, "Duration") != duration
        assert packet_counts(after) == [n + 500 for n in packets]
        assert "GONE" not in after

        clock.advance(10)
        gone_at = clock.now
        gone = await poll(app, pilot, service, without_call(lab_snapshot(clock.now), callid))
        assert f"GONE since {clock_time(gone_at)}" in gone
        assert packet_counts(gone) == [n + 500 for n in packets]  # the last content is kept
        clock.advance(10)
        later = await poll(app, pilot, service, without_call(lab_snapshot(clock.now), callid))
        assert f"GONE since {clock_time(gone_at)}" in later  # since it vanished, not since the last poll


async def test_media_session_detail_follows_the_counters(make_app, service, clock):
    app = make_app()
    async with app.run_test(size=(140, 80)) as pilot:
        await open_screen(app, pilot, "4")
        callid = app.query_one(MediaPane).order[0]
        await pilot.press("enter")
        await settle(app, pilot)
        before = screen_text(app)
        packets = packet_counts(before)
        assert packets and isinstance(app.screen, DetailScreen)
        clock.advance(30)
        after = await poll(app, pilot, service, with_more_packets(lab_snapshot(clock.now), callid, 7))
        assert packet_counts(after) == [n + 7 for n in packets]
        assert field(after, "Age") != field(before, "Age")


async def test_contact_detail_says_when_the_contact_is_gone(make_app, service, clock):
    app = make_app()
    async with app.run_test(size=(140, 60)) as pilot:
        await open_screen(app, pilot, "2")
        table = app.query_one(ContactTable)
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        await pilot.press("enter")
        await settle(app, pilot)
        before = screen_text(app)
        assert "100s" not in field(before, "Expires")
        clock.advance(20)
        snap = lab_snapshot(clock.now)
        # re-registered meanwhile with a short expiry: the detail shows the new binding
        contacts = tuple(replace(c, expires=100) if c.key == key else c for c in snap.signalling.contacts)
        after = await poll(app, pilot, service, replace(snap, signalling=replace(snap.signalling, contacts=contacts)))
        assert field(after, "Expires") == "1m40s"
        clock.advance(5)
        contacts = tuple(c for c in snap.signalling.contacts if c.key != key)
        gone = await poll(app, pilot, service, replace(snap, signalling=replace(snap.signalling, contacts=contacts)))
        assert f"GONE since {clock_time(clock.now)}" in gone
        assert field(gone, "Expires") == "1m40s"  # the last content is kept


async def test_call_detail_rebuilds_when_its_dialog_ends_before_its_media(make_app, service, clock):
    """BYE seen: the dialog is gone, RTPengine keeps the session for its delete-delay; the detail
    loses the dialog's sections and says NO DIALOG (both lists of one poll: a verdict)."""
    app = make_app()
    async with app.run_test(size=(140, 160)) as pilot:
        await open_screen(app, pilot, "3")
        callid = app.query_one(CallsPane).order[0]
        await pilot.press("enter")
        await settle(app, pilot)
        assert "SDP sent to the caller" in screen_text(app)
        clock.advance(5)
        snap = lab_snapshot(clock.now)
        sig = replace(snap.signalling, dialogs=tuple(d for d in snap.signalling.dialogs if d.callid != callid))
        text = await poll(app, pilot, service, replace(snap, signalling=sig))
        assert "SDP sent to the caller" not in text and "GONE" not in text
        assert field(text, "Note") == "NO DIALOG"
        assert packet_counts(text)  # the media session is still shown
