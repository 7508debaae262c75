"""Registrations on a live list: what is reused between polls (cells, index) and what moves on."""

from __future__ import annotations

from dataclasses import replace

from console.ui.registrations import EXPIRES_CELL, ContactTable, RegistrationsPane, expires_text

from .data import lab_snapshot
from .helpers import open_screen, screen_text, settle


async def test_an_unchanged_contact_keeps_its_cells_and_only_the_countdown_moves(make_app, service, clock):
    snap = lab_snapshot()
    contacts = snap.signalling.contacts
    live = replace(snap, signalling=replace(snap.signalling, contacts_as_of=clock.now))
    service.snapshots = [live]
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await open_screen(app, pilot, "2")
        pane = app.query_one(RegistrationsPane)
        first = pane.matches[0]
        cells = pane.cells.cache[first.key][2]
        shown = screen_text(app)
        clock.advance(30)  # the same tuple again, 30 s later: seconds left count down from contacts_as_of
        second = contacts.index(pane.matches[1])  # re-registered with a new user agent
        later = contacts[:second] + (replace(contacts[second], user_agent="Zoiper 5"),) + contacts[second + 1:]
        service.snapshots = [replace(live, collected_at=clock.now,
                                     signalling=replace(live.signalling, contacts=later))]
        app.poll_now()
        await settle(app, pilot)
        again = pane.cells.cache[first.key][2]
        assert again[:EXPIRES_CELL] == cells[:EXPIRES_CELL] and all(
            a is b for a, b in zip(again[EXPIRES_CELL + 1:], cells[EXPIRES_CELL + 1:]))
        assert again[EXPIRES_CELL] is not cells[EXPIRES_CELL]
        assert again[EXPIRES_CELL].plain == expires_text(first, 30) != cells[EXPIRES_CELL].plain
        assert "Zoiper 5" in screen_text(app) and shown != screen_text(app)
        table = app.query_one(ContactTable)
        assert table.get_row_at(table.get_row_index(first.key))[EXPIRES_CELL].plain == expires_text(first, 30)


async def test_a_big_list_is_indexed_only_for_the_registrations_screen(make_app, service, clock):
    """Elsewhere a live list's index would be rebuilt at every contacts refresh for nobody; the
    switch to screen 2 has it built by a poll, in a thread, not inline on the key."""
    from console.live import OFFSCREEN_INDEX_EVERY, PREPARE_IN_THREAD

    from .data import many_contacts

    snap = lab_snapshot()
    big = many_contacts(PREPARE_IN_THREAD + 10)
    service.snapshots = [replace(snap, signalling=replace(snap.signalling, contacts=big))]
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await open_screen(app, pilot, "3")
        first = app.state.contact_index  # what the session published
        assert first is not None and first.contacts is big  # the first big list: indexed at once
        refreshed = big[1:] + (replace(big[0], user_agent="Zoiper 5"),)
        clock.advance(app.heavy_interval)  # off screen the list is refreshed on the slow cadence
        service.snapshots = [replace(snap, collected_at=clock.now,
                                     signalling=replace(snap.signalling, contacts=refreshed))]
        app.poll_now()
        await settle(app, pilot)
        assert app.state.contacts is refreshed and app.state.contact_index is first  # not indexed again for nobody
        shown = []
        pane = app.query_one(RegistrationsPane)
        original = pane.render_view

        def recording(view, now):
            shown.append(view.contact_index)
            return original(view, now)

        pane.render_view = recording
        await pilot.press("2")
        await settle(app, pilot)
        assert shown[0] is first  # the key shows the last prepared list at once...
        assert app.state.contact_index is not first and app.state.contact_index.contacts is refreshed  # ...the poll indexes the new one
        assert len(pane.matches) == len(refreshed) and app.query_one(ContactTable).row_count > 0
        await pilot.press("3")
        clock.advance(OFFSCREEN_INDEX_EVERY)
        again = refreshed[1:] + refreshed[:1]
        service.snapshots = [replace(snap, collected_at=clock.now, signalling=replace(snap.signalling, contacts=again))]
        app.poll_now()
        await settle(app, pilot)
        assert app.state.contact_index.contacts is again  # off screen, now and then
