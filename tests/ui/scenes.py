"""Deterministic screens shared by the snapshot tests and scripts/screenshots.py."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot
from textual.widgets import Input

from console.ui.app import OpsConsoleApp, create_app

from .data import NOW, FakeService, lab_snapshot
from .helpers import settle

# (file stem, keys pressed after the first poll; "type:TEXT" inserts TEXT in the focused input)
SCENES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1-overview", ()),
    ("2-registrations", ("2",)),
    ("3-calls", ("3",)),
    ("4-media", ("4",)),
    ("5-checks", ("5",)),
    ("6-mi", ("6", "type:version", "enter")),
    ("7-registrations-live", ("2",)),  # live mode: a PARTIAL list fed by events, S offered
)

LIVE_NOTE = ("70 registered (statistics); list live from events since 05:12 (5 seen); "
             "full sync would hold OpenSIPS MI for ~1 s — press S to run it")
LIVE_EVENTS = "live via udp:127.0.0.1:40000: 12 events since 05:12:03"


def scene_app(name: str = "") -> OpsConsoleApp:
    """The real app on the lab captures, frozen clock, no background polling."""
    service = FakeService([live_snapshot()]) if name.endswith("-live") else FakeService()
    return create_app(service, interval=3600, clock=lambda: NOW)


def live_snapshot():
    """The lab as live mode reports it right after subscribing: only 5 contacts seen yet."""
    snap = lab_snapshot()
    sig = replace(snap.signalling, contacts=snap.signalling.contacts[:5], contacts_note=LIVE_NOTE,
                  contacts_mode="events-partial", events_status=LIVE_EVENTS)
    return replace(snap, signalling=sig)


def prepare(keys: tuple[str, ...]):
    """A run_before for snap_compare / the screenshot script."""

    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        for key in keys:
            if key.startswith("type:"):
                app.focused.insert_text_at_cursor(key[len("type:"):])
            else:
                await pilot.press(key)
            await settle(app, pilot)
        for box in app.query(Input):
            box.cursor_blink = False  # a blinking cursor would make screenshots flaky
        await pilot.pause()

    return run_before
