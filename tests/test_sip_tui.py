"""Hostile values registered by sipp, shown by the TUI's Registrations screen and contact detail:
escaped and literal, never interpreted."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from console.config import Config  # noqa: E402
from opsconsole_demo import DemoPlatform  # noqa: E402
from console.service import ConsoleService  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.panes import ContactTable, RegistrationsPane  # noqa: E402
from console.ui.screens import DetailScreen  # noqa: E402
from test_sip_events import run_sipp  # noqa: E402
from test_sip_sipp import (CLEAR_SCREEN, LINK_MARKUP, MARKUP, OSC52, RAW_UNSAFE, RLO, SIPP,  # noqa: E402
                           sipp_command)
from ui.helpers import screen_text, settle  # noqa: E402

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed")


def assert_clean(text: str) -> None:
    for char in RAW_UNSAFE:
        assert char not in text, f"raw {char!r} on the screen"


async def test_registrations_screen_and_detail_show_hostile_sip_values_escaped(tmp_path):
    user_agent = f"u{MARKUP}{CLEAR_SCREEN}{RLO}"
    param = f"x={LINK_MARKUP}"
    callid = f"c{MARKUP}{OSC52}-%u"
    row = f"tui1;127.0.0.1:5070;600;{param};{user_agent};"
    async with DemoPlatform(size=3, real_rtpengine=False, tick=None, calls=0, sip=True) as demo:
        await run_sipp(sipp_command(demo.sip, tmp_path, [row], cid_str=callid), tmp_path)
        config = Config(mi_url=demo.mi_url, ng=demo.ng, cli=demo.cli, timeout=2.0, audit_log="/dev/null")
        service = ConsoleService(config)
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(220, 50)) as pilot:
                await settle(app, pilot)
                await pilot.press("2")
                await settle(app, pilot)
                text = screen_text(app)
                assert_clean(text)
                # the list cuts the User agent (its whole value is in the detail below), escaped either way
                assert "tui1" in text and "u[bold red]x[/]\\x1b[2J" in text

                pane = app.query_one(RegistrationsPane)
                table = app.query_one(ContactTable)
                (key,) = [k for k, contact in pane.shown.items() if contact.aor == "tui1"]
                table.focus()
                table.move_cursor(row=table.get_row_index(key))
                await pilot.press("enter")
                await settle(app, pilot)
                assert isinstance(app.screen, DetailScreen)
                detail = screen_text(app)
                assert_clean(detail)
                assert f"sip:tui1@127.0.0.1:5070;{param}" in detail  # markup shown as typed
                assert "c[bold red]x[/]\\x1b]52;c;aGk=\\x07-1" in detail
                assert "u[bold red]x[/]\\x1b[2J\\u202e" in detail
        finally:
            await service.aclose()
