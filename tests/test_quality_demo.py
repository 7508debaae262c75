"""The demo shows every quality state: the simulated relay answers `query` in RTPengine's shapes with the
figures RTPengine would compute; the real-relay pump sends the RTCP that makes the real RTPengine compute them."""

from __future__ import annotations

import json
from pathlib import Path

from opsconsole_demo import quality
from opsconsole_demo.media_sim import SimEngine, mos_x10
from console.model import Call, Dialog, DialogLeg, QualityState, call_quality
from opsconsole_rtpengine import parse
from test_demo_media import engine_with_calls
from test_demo_shapes import FakeClock, shape_diff

CAPTURES = Path(__file__).parent / "fixtures" / "rtpengine-10.5-quality"


def _captured(name: str) -> dict:
    return json.loads((CAPTURES / name).read_text())["response"]


def test_the_profiles_cover_every_state_from_the_first_calls():
    profiles = quality.Profiles()
    first = [profiles.of(f"demo-call-{n}") for n in range(8)]
    assert first[:3] == [quality.OK, quality.POOR, quality.ONE_WAY]  # a fresh demo's few plain calls
    assert set(first) == {quality.OK, quality.POOR, quality.ONE_WAY, quality.SILENT, quality.NO_RTCP}
    assert profiles.of("demo-call-1") == quality.POOR  # a call keeps its profile


def test_simulated_mos_is_rtpengines_formula():
    # the real 10.5 captures: 5 % loss + 160 ms jitter -> 28; no loss, 5 ms -> 43 (both with ~40 ms RTT)
    assert mos_x10(40000, 160, 5) == _captured("query.poor_rtcp.json")["SSRC"]["315112382"]["average MOS"]["MOS"]
    assert mos_x10(40000, 5, 0) == 43 and mos_x10(0, 5, 0) == 0


async def test_simulated_query_has_the_captured_shapes_and_every_state():
    clock = FakeClock()
    engine, state = await engine_with_calls(clock, confirmed=12)
    clock.now += 20  # past the silent limit and enough RTCP rounds
    real_entry = next(iter(_captured("query.poor_rtcp.json")["SSRC"].values()))
    states = {}
    for dialog in [d for d in state.active_dialogs() if d.state == 4]:
        reply = engine.handle({"command": "query", "call-id": dialog.callid})
        for entry in reply["SSRC"].values():
            assert shape_diff(real_entry, entry) == []
        session = parse.parse_query(dialog.callid, reply, queried_at=clock.now)
        legs = [t for t in reply["tags"]]
        dlg = Dialog(id="1", callid=dialog.callid, state=4, start=int(clock.now - 25),
                     caller=DialogLeg(tag=legs[0]), callees=(DialogLeg(tag=legs[1]),))
        got = call_quality(Call(dialog.callid, dlg, session, ""), clock.now, mos_poor=3.5, silent_after_s=10)
        expected = {quality.OK: QualityState.OK, quality.POOR: QualityState.POOR, quality.ONE_WAY:
                    QualityState.ONE_WAY, quality.SILENT: QualityState.SILENT,
                    quality.NO_RTCP: QualityState.NO_RTCP}[engine.profiles.of(dialog.callid)]
        assert got.state is expected, (dialog.callid, got)
        states[expected] = got
    assert len(states) == 5, states  # a dozen calls show every state
    if QualityState.POOR in states:
        assert states[QualityState.POOR].mos == 2.8


async def test_a_young_call_has_no_mos_yet():
    clock = FakeClock()
    engine, state = await engine_with_calls(clock, confirmed=12)
    with_rtcp = next(d for d in state.active_dialogs()
                     if d.state == 4 and quality.receptions(engine.profiles.of(d.callid)))
    assert engine.handle({"command": "query", "call-id": with_rtcp.callid})["SSRC"]  # talked 10 s: MOS
    session = engine.sessions[with_rtcp.callid]
    session.answered = clock.now - 1  # one RTCP round: RTPengine has no round-trip time yet
    assert engine.handle({"command": "query", "call-id": with_rtcp.callid})["SSRC"] == {}
