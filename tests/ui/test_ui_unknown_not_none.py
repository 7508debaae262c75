"""Unknown is not none, on screen (#12): a dialog list that has not arrived gives no NO DIALOG
rows, and per-transport counts over a partial contact list are not read as totals."""

from __future__ import annotations

from dataclasses import replace

from console.model import Contact
from console.plugins import CollectOptions

from .data import FakeService, lab_snapshot
from .helpers import open_screen


async def test_calls_without_a_dialog_list_are_unknown_not_orphans(make_app):
    snap = lab_snapshot(options=CollectOptions(dialogs=False))  # OpenSIPS counts 9 dialogs; none listed
    app = make_app(FakeService([snap]))
    async with app.run_test(size=(140, 40)) as pilot:
        text = await open_screen(app, pilot, "3")
        assert "NO DIALOG" not in text
        assert "DIALOG ?" in text
        assert "0 media without dialog, 10 not matched yet" in text


async def test_transport_counts_over_a_partial_list_say_of_how_many(make_app):
    snap = lab_snapshot()
    listed = tuple(Contact(aor=f"u{n}", contact="") for n in range(5))  # known by AoR only, so far
    overview = replace(snap.signalling.overview, registered_contacts=100_000)
    sig = replace(snap.signalling, overview=overview, contacts=listed, contacts_mode="events-partial")
    app = make_app(FakeService([replace(snap, signalling=sig)]))
    async with app.run_test(size=(140, 40)) as pilot:
        text = await open_screen(app, pilot, "1")
        assert "100,000" in text  # OpenSIPS's own count
        line = next(row for row in text.splitlines() if "by transport" in row)
        assert "? 5" in line and "(of 5 listed)" in line, line
