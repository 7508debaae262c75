"""The app on the real data layer: a real ConsoleService, the MI test server on the lab
captures (70 contacts, 9 dialogs) and a real RTPengine holding one real session per captured
dialog (same Call-IDs, placed as tests/test_e2e_platform.py does).  Every screen must show
what the platform holds: the expectations come from the captures and from RTPengine itself,
never from the code under test."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from textual.widgets import DataTable, Tree

from console.config import Config
from console.service import ConsoleService
from console.ui.app import create_app
from console.ui.panes import ContactTable
from console.ui.screens import DetailScreen
from opsconsole_rtpengine.cli import CliClient
from opsconsole_rtpengine.ng import NgClient
from support.rtpengine_daemon import place_captured_calls

from .helpers import screen_text, settle

MI = Path(__file__).parent.parent / "fixtures" / "opensips-3.4" / "mi"
def captured(name: str):
    return json.loads((MI / f"{name}.json").read_text())["result"]


def transports(dialog: dict) -> tuple[str, str]:
    return dialog["caller_bind_addr"].split(":")[0], dialog["CALLEES"][0]["callee_bind_addr"].split(":")[0]


def local_ports(query: dict) -> set[int]:
    """Every local port RTPengine reports for a session (raw ng `query` answer)."""
    return {stream["local port"] for tag in query["tags"].values() for media in tag.get("medias", ())
            for stream in media.get("streams", ())}


@pytest.fixture
def platform(mi_server, start_rtpengine):
    daemon = start_rtpengine(ports=200)
    dialogs = captured("dlg_list.populated")["Dialogs"]

    async def place_calls():
        ng = NgClient(*daemon.ng, timeout=2.0)
        try:
            await place_captured_calls(ng, dialogs)
            ports = {d["callid"]: local_ports(await ng.query(d["callid"])) for d in dialogs}
        finally:
            await ng.aclose()
        interfaces = await CliClient(*daemon.cli, timeout=2.0).interfaces()
        return ports, sum(i.used for i in interfaces), sum(i.total for i in interfaces)

    ports, used, total = asyncio.run(place_calls())
    config = Config(mi_url=mi_server.url, ng=daemon.ng, cli=daemon.cli, timeout=2.0, audit_log="/dev/null")
    return config, dialogs, ports, used, total


async def show(app, pilot, key: str) -> str:
    await pilot.press(key)
    await settle(app, pilot)
    return screen_text(app)


async def test_every_screen_shows_the_real_platform(platform):
    config, dialogs, ports, used, total = platform
    service = ConsoleService(config)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            overview = screen_text(app)
            assert "opensips OK" in overview and "rtpengine OK" in overview
            assert "3.4.18" in overview  # the captured `version`
            assert f"{used}/{total}" in overview.replace(",", "")

            await show(app, pilot, "2")
            table = app.query_one(ContactTable)
            dump = captured("ul_dump.populated")["Domains"][0]["AORs"]
            assert table.row_count == sum(len(a["Contacts"]) for a in dump) == 70
            rows = [table.get_row_at(n) for n in range(table.row_count)]
            assert {row[0].plain for row in rows} == {a["AOR"] for a in dump}
            assert sum(row[1].plain == "WS" for row in rows) == 10  # WebSocket says so by itself (#14)

            calls_text = await show(app, pilot, "3")
            calls = app.query_one("#calls-table", DataTable)
            assert {row.key.value for row in calls.ordered_rows} == {d["callid"] for d in dialogs}
            assert "NO MEDIA" not in calls_text and "NO DIALOG" not in calls_text
            for dialog in dialogs:
                bridge, media_ports = (calls.get_cell(dialog["callid"], column) for column in ("bridge", "ports"))
                caller, callee = transports(dialog)
                assert bridge.plain.split()[0] == f"{caller.upper()}->{callee.upper()}"
                shown = {int(p) for p in re.findall(r"\d+", media_ports.plain)}
                assert shown == ports[dialog["callid"]] and len(shown) == 4, media_ports.plain
                assert media_ports.plain.startswith("A ") and " B " in media_ports.plain
            assert "WS->UDP DTLS-SRTP<->RTP" in calls_text

            calls.move_cursor(row=calls.get_row_index(dialogs[0]["callid"]))
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, DetailScreen)
            detail = screen_text(app)
            assert "Media ports" in detail and str(min(ports[dialogs[0]["callid"]])) in detail
            await pilot.press("escape")
            await settle(app, pilot)
            assert not isinstance(app.screen, DetailScreen)

            await show(app, pilot, "4")
            sessions = app.query_one("#sessions", DataTable)
            assert {row.key.value for row in sessions.ordered_rows} == {d["callid"] for d in dialogs}
            for dialog in dialogs:
                shown = {int(p) for p in re.findall(r"\d+", sessions.get_row(dialog["callid"])[4].plain)}
                assert shown == ports[dialog["callid"]]
            assert used == 4 * len(dialogs)

            checks_text = await show(app, pilot, "5")
            checks = app.query_one("#checks-table", DataTable)
            ids = {row.key.value for row in checks.ordered_rows}
            assert {"rtpengine.ng", "rtpengine.ports"} <= ids
            assert "overall" in checks_text
            assert checks.get_row("rtpengine.ng")[0].plain.strip() == "OK"

            await show(app, pilot, "6")
            app.focused.insert_text_at_cursor("version")
            await pilot.press("enter")
            await settle(app, pilot)
            result = app.query_one("#mi-result", Tree)
            assert result.root.label.plain == "version"
            assert "3.4.18" in screen_text(app)

            await pilot.press("escape")  # out of the MI input: back to the overview
            await settle(app, pilot)
            await pilot.press("q")
            await pilot.pause()
            assert app._exit
    finally:
        await service.aclose()
