"""Screen 0, Fleet, on the demo's nodes (`--demo-nodes`): one row per node from real FleetSession
polls of real demo MI servers and simulated RTPengines; sort, filter, and Enter focusing a node so
that screens 1–6 (and MI) talk to that node.  Expectations come from the demo nodes themselves
(their DemoState, their MI answers), never from the code under test."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from console.config import Config
from console.fleet import FleetSession
from console.ui.app import create_app
from console.ui.fleet import FleetPane
from console.ui.panes import ContactTable
from opsconsole_demo.fleet import UNHEALTHY_LOAD, DemoFleet

from .helpers import open_screen, screen_text, settle, type_into

NODES = 5


@pytest.fixture
async def demo_fleet():
    async with DemoFleet(NODES, size=70, real_rtpengine=False, tick=None) as demo:
        config = Config(timeout=2.0, audit_log="/dev/null", demo=True, demo_simulated_relay=True,
                        targets=demo.targets())
        fleet = FleetSession(demo.targets(), config, interval=3600)
        await fleet.poll_once()  # every node once (the app polls only the node on screen at once)
        try:
            yield demo, fleet
        finally:
            await fleet.aclose()


def table_keys(app) -> list[str]:
    return [row.key.value for row in app.query_one("#fleet-table", DataTable).ordered_rows]


def row_text(app, key: str) -> str:
    table = app.query_one("#fleet-table", DataTable)
    return " ".join(getattr(cell, "plain", str(cell)) for cell in table.get_row(key))


async def test_one_row_per_node_with_the_unhealthy_node_failing_its_check(demo_fleet):
    demo, fleet = demo_fleet
    app = create_app(None, fleet=fleet, interval=3600)
    async with app.run_test(size=(220, 40)) as pilot:
        text = await open_screen(app, pilot, "0")
        assert table_keys(app) == [f"node-{n:02d}" for n in range(1, NODES + 1)]
        for n in range(1, NODES + 1):
            assert f"node-{n:02d}" in text
        sick = row_text(app, "node-05")
        assert "FAIL" in sick and "opensips.load" in sick and f"{UNHEALTHY_LOAD}%" in sick
        assert "role=active" in row_text(app, "node-01") and "role=backup" in row_text(app, "node-02")
        # the set with the disabled engine is node-02's: its worst check is an RTPengine one, not OK
        engines = row_text(app, "node-02")
        assert ("WARN" in engines or "FAIL" in engines) and "rtpengine" in engines
        # the counts are each node's own (node-01 runs 70 contacts, the others 40)
        contacts = {n: demo.platform(f"node-0{n}").state.contact_count for n in (1, 2)}
        assert contacts[1] != contacts[2]
        assert f" {contacts[1]} " in row_text(app, "node-01") and f" {contacts[2]} " in row_text(app, "node-02")


async def test_sort_and_filter(demo_fleet):
    _demo, fleet = demo_fleet
    app = create_app(None, fleet=fleet, interval=3600)
    async with app.run_test(size=(220, 40)) as pilot:
        await open_screen(app, pilot, "0")
        pane = app.query_one(FleetPane)
        while pane.listing.sort != "load":
            await pilot.press("s")
        await pilot.press("r")
        await settle(app, pilot)
        assert table_keys(app)[0] == "node-05"  # the highest load first
        while pane.listing.sort != "status":
            await pilot.press("s")
        await pilot.press("r")  # back to ascending: worst first
        await settle(app, pilot)
        worst = [row.worst_status for row in pane.shown]
        assert worst[0] == "FAIL" and worst == sorted(worst, key=["FAIL", "WARN", "UNKNOWN", "OK"].index)
        await pilot.press("slash")
        await type_into(app, pilot, "backup")
        assert table_keys(app) == ["node-02"]
        assert "1 of 5 nodes match backup" in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert len(table_keys(app)) == NODES and app.query_one("#fleet-filter", Input).has_class("hidden")
        assert app.current == "fleet"  # Esc closed the filter, not the screen


async def test_enter_focuses_a_node_and_the_screens_show_that_node(demo_fleet):
    demo, fleet = demo_fleet
    app = create_app(None, fleet=fleet, interval=3600)
    async with app.run_test(size=(220, 50)) as pilot:
        await open_screen(app, pilot, "0")
        assert app.node == "node-01"
        table = app.query_one("#fleet-table", DataTable)
        table.move_cursor(row=table.get_row_index("node-03"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert (app.node, app.current) == ("node-03", "overview")
        assert "node-03" in screen_text(app).splitlines()[0]  # the header names the node shown
        assert fleet.focused == "node-03" and app.session is fleet.session("node-03")
        await open_screen(app, pilot, "2")
        shown = {getattr(row[0], "plain", str(row[0])).strip() for row in
                 (app.query_one(ContactTable).get_row_at(i) for i in range(app.query_one(ContactTable).row_count))}
        own = {contact.aor for contact in demo.platform("node-03").state.online_contacts()}
        first = {contact.aor for contact in demo.platform("node-01").state.online_contacts()}
        assert shown == own and own != first  # node-03's contacts, not node-01's
        # MI goes to the focused node: node-03 has no clusterer (node-01 has), so this is node-03 answering
        await open_screen(app, pilot, "6")
        await pilot.press("ctrl+a")
        await type_into(app, pilot, "clusterer_list")
        await pilot.press("enter")
        await settle(app, pilot)
        assert "Method not found" in screen_text(app)
        # back on the Fleet screen (the MI input has the keys: no "0" there) the focused node is marked
        app.action_show("fleet")
        await settle(app, pilot)
        assert "▶ node-03" in row_text(app, "node-03") and "▶" not in row_text(app, "node-01")


async def test_enter_on_node_02_shows_its_disabled_engine_over_mi(demo_fleet):
    demo, fleet = demo_fleet
    app = create_app(None, fleet=fleet, interval=3600)
    async with app.run_test(size=(220, 50)) as pilot:
        await open_screen(app, pilot, "0")
        app.focus_node("node-02")
        await settle(app, pilot)
        assert app.service is fleet.service("node-02")
        sets = await app.service.mi("rtpengine_show")
        assert [node["disabled"] for node in sets[0]["Nodes"]] == [0, 1]
        assert sets[0]["Nodes"][0]["url"] == "udp:%s:%d" % demo.platform("node-02").ng
        # the Media screen shows node-02's set as its OpenSIPS sees it: the spare engine disabled
        text = await open_screen(app, pilot, "4")
        spare = sets[0]["Nodes"][1]["url"].removeprefix("udp:")
        lines = [line for line in text.splitlines() if spare in line]
        assert lines and "disabled" in lines[0], text


async def test_one_target_still_has_a_fleet_screen_of_one_row(make_app):
    app = make_app()
    async with app.run_test(size=(220, 40)) as pilot:
        text = await open_screen(app, pilot, "0")
        assert len(table_keys(app)) == 1
        assert "1 node" in text
        row = app.query_one(FleetPane).shown[0]
        assert row.contacts == app.session.view.signalling.overview.registered_contacts


async def test_the_nodes_not_on_screen_are_polled_on_their_slower_cadence(demo_fleet):
    demo, _fleet = demo_fleet
    config = Config(timeout=2.0, audit_log="/dev/null", demo=True, demo_simulated_relay=True, targets=demo.targets())
    fleet = FleetSession(demo.targets(), config, interval=0.3, background_interval=0.6)
    app = create_app(None, fleet=fleet, interval=0.3)
    try:
        async with app.run_test(size=(220, 40)) as pilot:
            await pilot.pause(0.5)
            before = {name: fleet.session(name).polls for name in fleet.names}
            await pilot.pause(3.0)
            after = {name: fleet.session(name).polls for name in fleet.names}
            others = [name for name in fleet.names if name != app.node]
            for name in others:  # each one polled by the app, at most once per 0.6 s (+ a tick)
                assert 1 <= after[name] - before[name] <= 3.0 / 0.6 + 1, (name, before, after)
                assert fleet.session(name).interest.screen == "fleet"  # no screen's heavy list for them
            assert after[app.node] - before[app.node] > max(after[n] - before[n] for n in others)
            assert app.session.interest.screen == "overview"
    finally:
        await fleet.aclose()


async def test_what_a_node_says_is_shown_literally_never_as_markup():
    """A node's version, its labels and a source's error come from the network or the config: text."""
    from dataclasses import replace

    from console.targets import TargetSpec

    from .data import NOW, FakeService, lab_snapshot, sources

    hostile = "[bold red]pwn[/] \x1b[2J\u202e"
    snap = lab_snapshot()
    snap = replace(snap, sources=sources(failing="rtpengine", error=f"boom {hostile}"),
                   signalling=replace(snap.signalling, overview=replace(snap.signalling.overview, version=hostile)))
    specs = [TargetSpec("a", labels={"site": hostile}), TargetSpec("b")]
    services = {"a": FakeService([snap]), "b": FakeService()}
    fleet = FleetSession(specs, Config(), interval=3600, clock=lambda: NOW, services=services)
    await fleet.poll_once()
    app = create_app(None, fleet=fleet, interval=3600, clock=lambda: NOW)
    async with app.run_test(size=(260, 30)) as pilot:
        await open_screen(app, pilot, "0")
        text = screen_text(app)
        assert "[bold red]pwn[/]" in text and "\\x1b[2J" in text and "\\u202e" in text  # escaped, visible
        assert "\x1b" not in row_text(app, "a") and "\u202e" not in row_text(app, "a")
        assert "boom [bold red]pwn[/]" in row_text(app, "a") and "site=[bold red]pwn[/]" in row_text(app, "a")
