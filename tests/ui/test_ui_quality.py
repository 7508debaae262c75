"""Call quality and SIP health in the TUI (#15), on the embedded demo (its simulated RTPengine answers
`query` with RTPengine's SSRC statistics; its calls take the quality profiles in turn): the Calls
screen's quality column (filter, sort worst first), the call detail's per-leg figures and MOS
sparkline, the Overview's calls by quality (the snapshot JSON's counts) and SIP health, the Media
screen's per-interface figures (12.4's `list interfaces`, parsed from the source-derived fixture)."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from textual.widgets import DataTable

from console.config import load_config
from console.model import QualityState
from console.plugins import load_plugins
from console.render.jsonout import snapshot_dict
from console.service import ConsoleService
from console.ui.app import create_app
from console.ui.calls import CallsPane
from console.ui.quality import quality_sort_key
from opsconsole_demo import DemoPlatform
from opsconsole_rtpengine.cli import parse_interface_quality

from .data import FakeService, lab_snapshot
from .helpers import screen_text, settle, type_into

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FINDINGS = ("poor", "one-way", "silent")


@contextlib.asynccontextmanager
async def demo_app(tmp_path: Path, calls: int = 10):
    """The app on the embedded demo (simulated relay), polling every 0.5 s until every quality state
    the demo's first calls take has its figures (MOS from the second RTCP round on) and two SIP
    samples were taken; then paused (what the tests compare is one view)."""
    config_file = tmp_path / "opsconsole.toml"
    config_file.write_text("")
    async with DemoPlatform(size=20, real_rtpengine=False, calls=calls) as demo:
        plugins = load_plugins()
        config = load_config(demo.overrides() | {"timeout": 5.0, "audit_log": str(tmp_path / "audit.log")},
                             config_file=str(config_file), discover=False,
                             plugin_sections=plugins.config_sections(), discoverers=())
        service = ConsoleService(config, plugins=plugins)
        app = create_app(service, interval=0.5)
        try:
            async with app.run_test(size=(180, 50)) as pilot:
                await until(app, pilot, lambda: all(app.session.view.quality_counts()[w] for w in ("ok", *FINDINGS))
                            and len(app.session.view.sip_health().times) >= 2)
                app.paused = True  # the rows compared below stay those of one view
                await settle(app, pilot)
                yield app, pilot
        finally:
            await service.aclose()


async def until(app, pilot, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {app.session.view.quality_counts()}"
        await pilot.pause(0.2)


def calls_pane(app) -> CallsPane:
    return app.screen.query_one(CallsPane)


def quality_cells(app) -> list[str]:
    table = app.screen.query_one("#calls-table", DataTable)
    column = list(table.columns).index(next(key for key in table.columns if key.value == "quality"))
    return [table.get_row_at(n)[column].plain for n in range(table.row_count)]


async def test_the_calls_screen_shows_quality_sorts_worst_first_and_filters(tmp_path):
    async with demo_app(tmp_path) as (app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        cells = quality_cells(app)
        words = {cell.split(" ", 1)[-1] if cell[:1].isdigit() else cell for cell in cells}
        assert {"poor", "one-way", "silent", "ok", "no RTCP"} <= words, cells
        poor = [cell for cell in cells if cell.endswith(" poor")]
        assert poor and all(float(cell.split()[0]) < app.session.view.thresholds.mos_poor for cell in poor)
        pane = calls_pane(app)
        for _ in range(len(pane.COLUMNS)):  # `s` walks the columns to Quality
            if pane.listing.sort == "quality":
                break
            await pilot.press("s")
        assert pane.listing.sort == "quality"
        await settle(app, pilot)
        ranked = [quality_sort_key(cell) for cell in quality_cells(app)]
        assert ranked == sorted(ranked) and ranked[0][0] == 0  # worst first: a silent call at the top
        assert "Quality" in screen_text(app) and screen_text(app).count("silent") >= 1
        await pilot.press("r")  # reversed: the unknown / no-RTCP calls first, the worst last
        await settle(app, pilot)
        # the demo is live (a poll may move a call's figures between two readings): judge the order shown now
        reversed_ranks = [quality_sort_key(cell) for cell in quality_cells(app)]
        assert reversed_ranks == sorted(reversed_ranks, reverse=True) and reversed_ranks[-1][0] == 0
        await pilot.press("slash")
        await type_into(app, pilot, "one-way")
        await settle(app, pilot)
        cells = quality_cells(app)
        assert cells and all(cell.endswith("one-way") for cell in cells)


async def test_the_call_detail_shows_each_legs_figures_and_the_mos_sparkline(tmp_path):
    async with demo_app(tmp_path) as (app, pilot):
        view = app.session.view
        callid, quality = next((c, q) for c, q in view.qualities.items() if q.state is QualityState.POOR)
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#calls-table", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(callid))
        await pilot.press("enter")
        await settle(app, pilot)
        text = screen_text(app)
        assert "Quality" in text and "poor" in text and "caller sends" in text and "callee sends" in text
        caller = quality.caller
        assert f"avg {caller.mos:.1f}" in text and f"{caller.jitter_ms:.0f} ms" in text
        assert f"{caller.loss_pct:.1f} %" in text and f"{caller.rtt_ms:.0f} ms" in text
        assert "packets" in text and "before the query" in text
        line = next(line for line in text.splitlines() if "MOS over the call" in line)
        assert any(block in line for block in "▁▂▃▄▅▆▇█") and "min " in line and "max " in line and "samples" in line


async def test_the_overview_counts_calls_by_quality_as_the_snapshot_does_and_shows_sip_health(tmp_path):
    async with demo_app(tmp_path) as (app, pilot):
        view = app.session.view
        snapshot = snapshot_dict(app.session.state.check_snapshot(), thresholds=view.thresholds)  # what `snapshot` prints
        states = Counter(call["quality"]["state"] for call in snapshot["calls"])
        expected = {"ok": states["ok"], "poor": states["poor"], "one-way": states["one-way"],
                    "silent": states["silent"], "unknown": states["unknown"] + states["no RTCP"]}
        text = screen_text(app)
        line = next(line for line in text.splitlines() if "calls by quality" in line)
        shown = " ".join(line.split())
        for word, count in expected.items():
            assert f"{word} {count}" in shown, (shown, expected)
        assert sum(expected.values()) == len(snapshot["calls"]) and all(expected[w] for w in FINDINGS)
        assert "SIP health" in text and "2xx/s" in text and "5xx %" in text and "INVITE timeouts" in text


async def test_the_media_screen_shows_per_interface_quality(make_app):
    quality = parse_interface_quality((FIXTURES / "rtpengine-12.4-source" / "list_interfaces.txt").read_text())
    assert quality is not None and len(quality) == 2
    snap = lab_snapshot()
    interfaces = tuple(replace(i, name=q.name, address=q.address) for i, q in zip(
        snap.media.ports.interfaces * 2, quality))
    media = replace(snap.media, interface_quality=quality,
                    ports=replace(snap.media.ports, interfaces=interfaces))
    app = make_app(FakeService([replace(snap, media=media)]))
    async with app.run_test(size=(180, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        table = app.screen.query_one("#ports", DataTable)
        rows = {table.get_row_at(n)[0].plain: [c.plain if hasattr(c, "plain") else str(c) for c in table.get_row_at(n)]
                for n in range(table.row_count)}
        assert rows["default"][-3:] == ["4.1", "2.0 %", "12 ms"]
        assert rows["public"][-3:] == ["2.9", "7.0 %", "85 ms"]
        assert "MOS" in screen_text(app) and "Jitter" in screen_text(app)


async def test_the_media_screen_says_when_the_relay_reports_no_per_interface_quality(make_app):
    app = make_app()
    async with app.run_test(size=(180, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        assert app.session.view.media.interface_quality is None
        assert "not reported by this RTPengine" in screen_text(app)
