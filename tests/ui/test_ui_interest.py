"""The TUI only renders and sends interest: what is on screen reaches the live session (screen, rows' Call-IDs,
the contact list's selection), and what the screens show is the session's published view."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import DataTable

from console.live import DEFAULT_SELECTION

from .data import NOW, FakeService, lab_snapshot
from .helpers import open_screen, settle


async def test_the_screen_shown_is_the_sessions_interest(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "4")
        interest = app.session.interest
        assert interest.screen == "media"
        shown = {row.key.value for row in app.screen.query_one("#sessions", DataTable).ordered_rows}
        assert interest.detail_callids and interest.detail_callids <= shown
        asked = service.requests[-1]  # the poll the key started: this screen's lists and rows
        assert asked.dialogs and asked.media_details and asked.media_detail_callids == interest.detail_callids
        await open_screen(app, pilot, "1")
        assert app.session.interest.screen == "overview" and app.session.interest.detail_callids is None


async def test_the_contact_lists_selection_is_sent_up_to_the_session(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "2")
        assert app.session.interest.selection == DEFAULT_SELECTION
        await pilot.press("s", "r", "t")
        await settle(app, pilot)
        assert app.session.interest.selection == ("", "ws", "transport", True)  # t: all -> ws


async def test_every_screen_renders_the_published_view(make_app, clock):
    snap = lab_snapshot()
    service = FakeService([snap, replace(snap, collected_at=NOW + 10, media=None)])
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        first = app.session.view
        assert app.query_one("#overview").view is first  # what was rendered
        clock.advance(10)
        app.poll_now()
        await settle(app, pilot)
        later = app.session.view
        assert later is not first and later.media_stale() and first.media is not None
        assert app.query_one("#overview").view is later  # the visible screen got the new view
        assert first.polls == 1 and later.polls == 2  # the first view did not change after it was published
        await open_screen(app, pilot, "2")
        assert app.query_one("#registrations").view is app.session.view
        assert app.query_one("#overview").view.latest is None  # a hidden screen keeps no old view alive
