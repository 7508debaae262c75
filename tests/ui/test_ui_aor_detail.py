"""Registrations known by AoR name only (`ul_dump brief` above the full-sync threshold): Enter asks
OpenSIPS for that one AoR (`ul_show_contact`) and shows its contacts, or says why it cannot."""

from __future__ import annotations

import json
from dataclasses import replace

from console.errors import Timeout
from console.model import Contact
from console.ui.screens import DetailScreen
from opsconsole_opensips.parse import parse_contacts

from .data import FakeService, lab_snapshot
from .helpers import screen_text, settle
from conftest import FIXTURES

HOSTILE_AOR = "evil\x1b[2J[bold]x[/bold]"


def captured_contacts(name: str) -> tuple[Contact, ...]:
    reply = json.loads((FIXTURES / "opensips-3.4" / "mi" / f"ul_show_contact.{name}.json").read_text())
    return parse_contacts(reply["result"], "node1")


def brief_service(aors: tuple[str, ...]) -> FakeService:
    snap = lab_snapshot()
    names_only = tuple(Contact(aor=aor, contact="", target="node1") for aor in aors)
    signalling = replace(snap.signalling, contacts=names_only, contacts_mode="polling")
    return FakeService([replace(snap, signalling=signalling)])


async def open_first_row(app, pilot) -> DetailScreen:
    await settle(app, pilot)
    await pilot.press("2")
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)
    for _ in range(20):  # the detail's own worker
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
    assert isinstance(app.screen, DetailScreen)
    return app.screen


async def test_enter_on_an_aor_name_shows_its_contacts_from_ul_show_contact(make_app):
    service = brief_service(("ws2003",))
    service.aor_contacts["ws2003"] = captured_contacts("ws")
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(app, pilot)
        text = screen_text(app)
        assert service.shown_aors == ["ws2003"]
        assert "sip:qwtemf9m@127.0.0.1:32794;transport=ws" in text
        assert "lab-ws-client (WebRTC-like)" in text and "Contact 1 of 1" in text
        assert "asking OpenSIPS" not in text


async def test_an_aor_gone_meanwhile_says_so(make_app):
    app = make_app(brief_service(("1000",)))  # nothing registered for it any more
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(app, pilot)
        assert "1000 has no contact now" in screen_text(app)


async def test_a_failed_lookup_is_shown_and_the_console_keeps_running(make_app):
    service = brief_service(("1000",))
    service.aor_contacts["1000"] = Timeout("OpenSIPS MI did not answer 'ul_show_contact' within 2 s")
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(app, pilot)
        assert "FAIL ul_show_contact 1000: OpenSIPS MI did not answer" in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, DetailScreen)


async def test_a_hostile_aor_is_shown_escaped_not_interpreted(make_app):
    service = brief_service((HOSTILE_AOR,))
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(app, pilot)
        text = screen_text(app)
        assert service.shown_aors == [HOSTILE_AOR]  # asked with the exact name
        assert "\x1b" not in text and "[bold]x[/bold]" in text
