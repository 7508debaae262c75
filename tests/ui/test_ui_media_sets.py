"""The Media screen's RTPengine sets (#16): set → engines with weight, OpenSIPS's state, the engine's own
answer, ping, sessions and ports; `e` toggles an engine through `rtpengine_enable` only with --allow-write
and a confirmation (the service audits it)."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import DataTable

from console.model.topology import RECHECK_NEVER, EngineHealth, RtpEngineNode, RtpSet, Topology
from console.ui.screens import ConfirmScreen

from .data import FakeService, lab_snapshot
from .helpers import screen_text, settle

URL_A, URL_B = "udp:127.0.0.1:4000", "udp:127.0.0.1:4001"


def _snapshot():
    engines = (
        RtpEngineNode(URL_A, 0, 0, True, 1, RECHECK_NEVER, EngineHealth("127.0.0.1:4000", True, 0.42, 3, 12, 200)),
        RtpEngineNode(URL_B, 0, 1, False, 2, 0, EngineHealth("127.0.0.1:4001", False, error="refused")),
    )
    topology = Topology("node1", True, (RtpSet(0, engines),), False, None, opensips_local=True)
    snap = lab_snapshot()
    return replace(snap, parts={**snap.parts, "topology": topology})


def _rows(app) -> dict[str, list[str]]:
    table = app.screen.query_one("#rtp-sets", DataTable)
    return {table.get_row_at(n)[1].plain: [c.plain for c in table.get_row_at(n)] for n in range(table.row_count)}


async def _on_sets(app, pilot):
    await settle(app, pilot)
    await pilot.press("4")
    await settle(app, pilot)
    app.screen.query_one("#rtp-sets", DataTable).focus()
    await pilot.pause()


async def test_media_screen_shows_sets_with_each_engines_answer(make_app):
    app = make_app(FakeService([_snapshot()]))
    async with app.run_test(size=(180, 50)) as pilot:
        await _on_sets(app, pilot)
        rows = _rows(app)
        assert rows[URL_A] == ["0", URL_A, "1", "disabled (MI)", "answers", "0.4 ms", "3", "12/200"]
        assert rows[URL_B] == ["0", URL_B, "2", "enabled", "NO ANSWER", "-", "?", "?"]
        assert "1 of 2 engines enabled" in screen_text(app)


async def test_sets_hidden_without_topology(make_app):
    app = make_app(FakeService([lab_snapshot()]))
    async with app.run_test(size=(180, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        assert not app.screen.query_one("#media-sets").display


async def test_enable_refused_without_allow_write(make_app):
    service = FakeService([_snapshot()])
    app = make_app(service)
    async with app.run_test(size=(180, 50)) as pilot:
        await _on_sets(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert "REFUSED" in screen_text(app) and not isinstance(app.screen, ConfirmScreen)
        assert service.mi_calls == []


async def test_enable_confirmed_with_allow_write(make_app):
    service = FakeService([_snapshot()], write_methods={"rtpengine_enable"}, mi_results={"rtpengine_enable": "OK"})
    app = make_app(service, allow_write=True)
    async with app.run_test(size=(180, 50)) as pilot:
        await _on_sets(app, pilot)
        await pilot.press("e")  # cursor on engine A, disabled: enable it
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert service.mi_calls == [] and "cancelled" in screen_text(app)
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert service.mi_calls == [("rtpengine_enable", {"url": URL_A, "enable": "1"}, True)]
        assert "enabled in OpenSIPS" in screen_text(app)


async def test_enable_through_the_real_service_is_sent_and_audited(mi_server, tmp_path):
    """Real plugins, the fake OpenSIPS MI (captured rtpengine_show; its engine on a dead port): `e` on the
    engine, confirmed, reaches OpenSIPS as rtpengine_enable and is written to the audit log first."""
    import json as json_module

    from console.config import Config
    from console.service import ConsoleService
    from console.ui.app import create_app

    audit = tmp_path / "audit.log"
    mi_server.set_response("rtpengine_enable", "OK")
    service = ConsoleService(Config(mi_url=mi_server.url, ng=None, cli=None, timeout=0.3, allow_write=True,
                                    audit_log=str(audit)))
    app = create_app(service, interval=3600, allow_write=True)
    try:
        async with app.run_test(size=(180, 50)) as pilot:
            await _on_sets(app, pilot)
            assert _rows(app)[mi_server.relay_url][3:5] == ["enabled", "NO ANSWER"]
            await pilot.press("e")
            await pilot.pause()
            await pilot.press("y")
            await settle(app, pilot)
    finally:
        await service.aclose()
    assert ("rtpengine_enable", {"url": mi_server.relay_url, "enable": "0"}) in mi_server.requests
    entry = json_module.loads(audit.read_text().splitlines()[-1])
    assert entry["method"] == "rtpengine_enable" and entry["outcome"] == "ok"
    assert entry["params"] == {"url": mi_server.relay_url, "enable": "0"}
