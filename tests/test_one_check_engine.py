"""One check engine (#12): the TUI's Checks screen runs the checks `diagnose` runs, on the same
complete inputs — the merged live state (LiveState.check_snapshot), not the latest poll alone,
which in live mode lacks the lists fetched on their own cadence (contacts, dialogs)."""

from __future__ import annotations

import json
from dataclasses import replace

from console import cli
from console.config import Config, Thresholds
from opsconsole_demo import DemoPlatform
from console.model import Dialog, MediaSession, MediaState, SignallingState, Snapshot, SourceStatus, Status
from console.plugins import CheckContext, CollectOptions
from console.service import ConsoleService
from console.ui.app import create_app
from console.live_state import LiveState
from opsconsole_opensips import checks as opensips_checks
from opsconsole_rtpengine import checks as rtpengine_checks

from ui.helpers import settle

NOW = 1_800_000_000.0


def _sources(at: float) -> dict[str, SourceStatus]:
    return {name: SourceStatus(name, True, "", 1.0, at) for name in ("opensips", "rtpengine")}


def _poll(at: float, *, dialogs=None, contacts=None, sessions=()) -> Snapshot:
    sig = SignallingState(dialogs=dialogs, contacts=contacts)
    media = MediaState(sessions=tuple(sessions), sessions_total=len(sessions))
    return Snapshot(collected_at=at, sources=_sources(at), signalling=sig, media=media)


def test_check_snapshot_holds_the_merged_lists_and_marks_old_ones():
    state = LiveState()
    dialogs = (Dialog("1.1", "a", state=4, start=int(NOW) - 100),)
    state.apply(_poll(NOW, dialogs=dialogs, contacts=()), CollectOptions())
    # the next poll asked for neither list (the Checks screen): the poll alone has none
    state.apply(_poll(NOW + 2, sessions=(MediaSession("a", created=int(NOW) - 100),)),
                CollectOptions(contacts=False, dialogs=False))
    assert state.latest.signalling.dialogs is None
    merged = state.check_snapshot()
    assert merged.signalling.dialogs == dialogs and merged.signalling.contacts == ()
    assert merged.stale == {"contacts": 2.0, "dialogs": 2.0}
    # a comparison of a 2 s old dialog list with current sessions is no finding either way
    ctx = CheckContext(merged, Config(ng=None, cli=None, thresholds=Thresholds(zombie_age_s=60)), NOW + 2)
    result = rtpengine_checks.check_sessions(ctx)
    assert result.status is Status.UNKNOWN and "not matched" in result.summary


def test_check_snapshot_leaves_a_failed_source_missing_as_diagnose_sees_it():
    state = LiveState()
    state.apply(_poll(NOW, dialogs=(), contacts=()), CollectOptions())
    failed = Snapshot(collected_at=NOW + 2, sources=_sources(NOW + 2) | {
        "opensips": SourceStatus("opensips", False, "connection refused", 1.0, NOW + 2)},
        media=MediaState())
    state.apply(failed, CollectOptions())
    merged = state.check_snapshot()
    assert merged.signalling is None  # not the last good data: opensips.mi must FAIL, as in diagnose
    ctx = CheckContext(merged, Config(ng=None, cli=None), NOW + 2)
    assert opensips_checks.check_mi(ctx).status is Status.FAIL


async def _diagnose_statuses(args, capsys) -> dict[str, str]:
    capsys.readouterr()
    await cli._diagnose(args)
    report = json.loads(capsys.readouterr().out)
    return {check["id"]: check["status"] for check in report["checks"]}


async def test_checks_screen_equals_diagnose_check_by_check(capsys):
    """One demo platform, held still (tick=None): diagnose's statuses and the Checks screen's
    after `r` (its re-run on a poll made on the Checks screen, which asks for no list)."""
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=2) as demo:
        argv = ["diagnose", "--json", "--mi-url", demo.mi_url, "--ng", f"{demo.ng[0]}:{demo.ng[1]}",
                "--cli", f"{demo.cli[0]}:{demo.cli[1]}"]
        args = cli.build_parser().parse_args(argv)
        service = ConsoleService(cli._load_config(args, {}))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(160, 50)) as pilot:
                await settle(app, pilot)
                await pilot.press("5")
                app.poll_now()  # a poll made on the Checks screen: no contacts, no dialogs in it
                await settle(app, pilot)
                assert app.state.latest.signalling.dialogs is None
                await pilot.press("R")  # re-run (r reverses the list, #14)
                await settle(app, pilot)
                tui = {result.id: result.status.value for result in app.state.checks}
                tui_summaries = {result.id: result.summary for result in app.state.checks}
        finally:
            await service.aclose()
        diagnose = await _diagnose_statuses(args, capsys)
    assert set(tui) == set(diagnose)
    # the checks the issue saw disagree, ran on the same data in both faces
    assert tui["rtpengine.sessions"] != "skip" and tui["opensips.ws"] != "skip"
    assert "WebSocket ok: 0 contacts" not in tui_summaries["opensips.ws"]
    assert tui == diagnose
