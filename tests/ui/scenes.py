"""Deterministic screens shared by the snapshot tests and scripts/screenshots.py."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input

from console.ui.app import OpsConsoleApp, create_app

from .data import NOW, FakeService
from .helpers import settle

# (file stem, keys pressed after the first poll; "type:TEXT" inserts TEXT in the focused input)
SCENES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1-overview", ()),
    ("2-registrations", ("2",)),
    ("3-calls", ("3",)),
    ("4-media", ("4",)),
    ("5-checks", ("5",)),
    ("6-mi", ("6", "type:version", "enter")),
)


def scene_app() -> OpsConsoleApp:
    """The real app on the lab captures, frozen clock, no background polling."""
    return create_app(FakeService(), interval=3600, clock=lambda: NOW)


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
