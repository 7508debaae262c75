"""Call quality and SIP health, without daemons: parsing real captures, the derived call state, the checks,
the thresholds, the JSON and text faces.  (The same on real daemons: tests/real/test_real_quality.py.)"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from console.config import Config, Thresholds, check_thresholds, load_config
from opsconsole_demo import rtcp
from console.errors import ConfigError
from console.model import (Call, Dialog, DialogLeg, MediaState, QualityState, SignallingOverview, SignallingState,
                           SipCounters, Snapshot, SourceStatus, Status, call_quality, sip_window)
from console.plugins import CheckContext
from console.render.jsonout import snapshot_dict
from console.render.text import make_console, render_snapshot
from opsconsole_opensips.checks import check_sip_failures
from opsconsole_opensips.parse import parse_overview, parse_sip_counters, parse_statistics
from opsconsole_rtpengine import cli, parse
from opsconsole_rtpengine.checks import check_one_way, check_quality, check_silent

FIXTURES = Path(__file__).parent / "fixtures"
QUALITY = FIXTURES / "rtpengine-10.5-quality"
MI = FIXTURES / "opensips-3.4" / "mi"
LIMITS = {"mos_poor": 3.5, "silent_after_s": 10.0}


def _reply(name: str) -> dict:
    return json.loads((QUALITY / name).read_text())["response"]


def _session(name: str = "query.poor_rtcp.json", **changes):
    reply = _reply(name)
    session = parse.parse_query(f"call-{name}", reply, queried_at=reply["created"] + 5)
    return replace(session, **changes) if changes else session


def _dialog(session, state: int = 4, start: int | None = None) -> Dialog:
    caller, callee = session.legs
    return Dialog(id="1.2", callid=session.callid, state=state, start=session.created if start is None else start,
                  caller=DialogLeg(tag=caller.tag), callees=(DialogLeg(tag=callee.tag),))


# --------------------------------------------------------------------------- parsing (real 10.5 captures)


def test_query_with_rtcp_gives_rtpengines_figures_in_our_units():
    session = _session()
    poor = session.ssrc_quality(315112382)
    assert poor.average.mos == 2.8 and poor.lowest.mos == 2.8 and poor.samples == 3
    assert poor.average.jitter_ms == 160 and poor.average.loss_pct == 5 and poor.cumulative_loss == 40
    assert poor.average.rtt_ms == pytest.approx(39.953) and poor.average.rtt_leg_ms == pytest.approx(19.978)
    # the first report had no round-trip time for both legs: RTPengine's MOS 0 means "none", not 0
    assert [s.mos for s in poor.progression] == [None, 2.8, 2.8, 2.8]
    assert session.ssrc_quality(3939640140).average.mos == 4.3
    assert [s.ssrc for s in session.legs[0].medias[0].streams] == [315112382, 315112382]
    assert session.rtcp_packets == 10 and session.queried_at == session.created + 5
    assert poor.packets is None and poor.last_seq is None  # 10.5 does not report them


def test_query_without_rtcp_is_an_empty_ssrc_dict_not_a_zero_mos():
    session = _session("query.rtp_no_rtcp.json")
    assert session.quality == () and session.rtcp_packets == 0
    assert parse.parse_query("x", json.loads((FIXTURES / "rtpengine-10.5" / "ng" / "query.udp_udp.json")
                                             .read_text())["response"]).quality == ()


def test_newer_ssrc_fields_and_garbage_are_tolerated():
    entries = parse.parse_ssrc_stats({"7": {"packets": 10, "bytes": 1720, "last RTP seq": "99", "cumulative loss": 1},
                                      "not-a-number": {}, "8": "junk"})
    assert len(entries) == 1 and (entries[0].packets, entries[0].bytes, entries[0].last_seq) == (10, 1720, 99)
    assert entries[0].average is None
    with pytest.raises(Exception):
        parse.parse_ssrc_stats(["not", "a", "dict"])


def test_global_mos_from_statistics_and_none_without_samples():
    with_mos = parse.parse_statistics(_reply("statistics.with_mos.json")["statistics"])
    assert with_mos.mos_samples == 7 and with_mos.mos_average == pytest.approx(3.657143)
    assert with_mos.jitter_average_ms is None  # 10.5 has no voip_metrics
    empty = parse.parse_statistics(json.loads((FIXTURES / "rtpengine-10.5" / "ng" / "statistics.json").read_text())
                                   ["response"]["statistics"])
    assert empty.mos_samples == 0 and empty.mos_average is None


def test_interface_quality_from_list_interfaces():
    newer = cli.parse_interface_quality((FIXTURES / "rtpengine-12.4-source" / "list_interfaces.txt").read_text())
    assert [(q.name, q.mos, q.loss_pct, q.jitter_ms, q.rtt_ms) for q in newer] == [
        ("default", 4.1, 2.0, 12.0, 48.21), ("public", 2.9, 7.0, 85.0, 310.4)]
    no_samples = cli.parse_interface_quality(
        (FIXTURES / "rtpengine-12.4-source" / "list_interfaces.no_samples.txt").read_text())
    assert no_samples[0].mos is None and no_samples[0].jitter_ms is None  # -nan is unknown, not a figure
    assert cli.parse_interface_quality((QUALITY / "list_interfaces.txt").read_text()) is None  # 10.5: not reported
    ports = cli.parse_interfaces((FIXTURES / "rtpengine-12.4-source" / "list_interfaces.txt").read_text())
    assert [(p.used, p.total) for p in ports] == [(48, 10000), (12, 10000)]


def test_interface_quality_from_newer_ng_statistics():
    stats = {"interfaces": [{"name": "default", "address": "192.0.2.10", "voip_metrics": {
        "mos_average": 4.2, "mos_samples_total": 12, "packetloss_average": 1.5, "packetloss_samples_total": 12,
        "jitter_average": 9, "jitter_samples_total": 12, "rtt_e2e_average": 41000, "rtt_e2e_samples_total": 12}},
        {"name": "quiet", "address": "192.0.2.11", "voip_metrics": {"mos_average": 0, "mos_samples_total": 0}}]}
    busy, quiet = parse.parse_statistics_interface_quality(stats)
    assert (busy.mos, busy.loss_pct, busy.jitter_ms, busy.rtt_ms, busy.samples) == (4.2, 1.5, 9.0, 41.0, 12)
    assert quiet.mos is None and quiet.samples == 0
    assert parse.parse_statistics_interface_quality({"interfaces": [{"name": "x", "ports": {}}]}) is None


# --------------------------------------------------------------------------- the derived state


def _quality(session, dialog=None, now=None, **limits):
    call = Call(session.callid, dialog, session, "", dialog_known=dialog is not None)
    return call_quality(call, now if now is not None else session.queried_at, **{**LIMITS, **limits})


def test_states_from_a_real_query():
    session = _session()
    poor = _quality(session, _dialog(session))
    assert poor.state is QualityState.POOR and poor.mos == 2.8 and poor.caller.mos == 2.8 and poor.callee.mos == 4.3
    assert poor.jitter_ms == 160 and poor.loss_pct == 5 and "2.8" in poor.reason
    assert _quality(session, _dialog(session), mos_poor=2.5).state is QualityState.OK
    no_rtcp = _quality(_session("query.rtp_no_rtcp.json"))
    assert no_rtcp.state is QualityState.NO_RTCP and no_rtcp.reason == "no RTCP — MOS unavailable"
    assert no_rtcp.mos is None and no_rtcp.caller.packets > 0


def test_unknown_is_never_a_finding():
    session = _session()
    listed = replace(session, detailed=False, quality=None, legs=())
    assert _quality(listed).state is QualityState.UNKNOWN and _quality(listed).reason == "not queried yet"
    assert _quality(replace(session, deleted=True)).state is QualityState.UNKNOWN
    early = _quality(session, _dialog(session, state=2))
    assert early.state is QualityState.UNKNOWN and early.reason == "not answered yet"
    assert call_quality(Call("x", media=None, media_known=False), 0, **LIMITS).state is QualityState.UNKNOWN
    cli_detail = replace(session, quality=None)  # legs from `list sessions <callid>`: no RTCP data asked for
    assert _quality(cli_detail).state is QualityState.NO_RTCP and "not queried" in _quality(cli_detail).reason


def _stopped(session, leg_index: int, seconds_ago: float):
    """The session as if the leg's endpoint had sent its last packet `seconds_ago` before the query."""
    legs = list(session.legs)
    leg = legs[leg_index]
    media = leg.medias[0]
    streams = tuple(replace(s, last_packet=int(session.queried_at - seconds_ago)) for s in media.streams)
    legs[leg_index] = replace(leg, medias=(replace(media, streams=streams),))
    return replace(session, legs=tuple(legs))


def test_one_way_names_the_silent_direction_after_the_limit():
    base = _session()
    answered = base.queried_at - 60
    callee_quiet = _stopped(base, 1, 30)
    quality = _quality(callee_quiet, _dialog(base, start=answered))
    assert quality.state is QualityState.ONE_WAY and quality.silent_directions == ("callee -> caller",)
    assert quality.callee.last_packet_age_s == 30 and quality.caller.last_packet_age_s == 0
    # within the limit: not (yet) one-way
    assert _quality(_stopped(base, 1, 8), _dialog(base, start=answered)).state is QualityState.POOR
    both = _quality(_stopped(_stopped(base, 0, 30), 1, 30), _dialog(base, start=answered))
    assert both.state is QualityState.SILENT and len(both.silent_directions) == 2


def test_a_leg_that_says_it_does_not_send_is_not_silent():
    base = _session()
    quiet = _stopped(base, 1, 30)
    leg = quiet.legs[1]
    held = replace(leg, medias=(replace(leg.medias[0], flags=("initialized", "send")),))  # recvonly: no "recv"
    quality = _quality(replace(quiet, legs=(quiet.legs[0], held)), _dialog(base, start=base.queried_at - 60))
    assert quality.state is not QualityState.ONE_WAY and not quality.callee.silent


def test_never_sent_counts_from_the_answer():
    base = _session("query.rtp_no_rtcp.json")
    leg = base.legs[1]
    mute = replace(leg, medias=(replace(leg.medias[0], streams=tuple(
        replace(s, packets=0) for s in leg.medias[0].streams)),))
    session = replace(base, legs=(base.legs[0], mute))
    young = _quality(session, _dialog(base, start=int(base.queried_at - 5)))
    assert young.state is QualityState.NO_RTCP and young.callee.last_packet_age_s is None
    old = _quality(session, _dialog(base, start=int(base.queried_at - 20)))
    assert old.state is QualityState.ONE_WAY and old.silent_directions == ("callee -> caller",)


# --------------------------------------------------------------------------- the calls.* checks


def _ctx(calls, *, thresholds=None, stale=None, media=True, sources=("rtpengine",)) -> CheckContext:
    snapshot = Snapshot(collected_at=0, sources={s: SourceStatus(s, True) for s in sources},
                        media=MediaState() if media else None, calls=tuple(calls), stale=stale or {})
    config = Config(thresholds=thresholds or Thresholds())
    now = max((c.media.queried_at or 0 for c in calls if c.media), default=0)
    return CheckContext(snapshot=snapshot, config=config, now=now)


def _call(session, dialog=None):
    return Call(session.callid, dialog, session, "", dialog_known=dialog is not None)


def test_calls_quality_names_poor_calls_and_counts_the_rest():
    poor = _session()
    ok = _session("query.rtp_no_rtcp.json")
    result = check_quality(_ctx([_call(poor, _dialog(poor)), _call(ok)]))
    assert result.status is Status.WARN and poor.callid in result.summary
    assert list(result.evidence["poor calls"]) == [poor.callid]
    assert "callee -> caller (caller's RTCP): MOS 2.8" in result.evidence["poor calls"][poor.callid]
    assert result.evidence["calls without RTCP (MOS unknown)"] == 1 and result.remedy
    failing = check_quality(_ctx([_call(poor, _dialog(poor))], thresholds=Thresholds(poor_calls_warn=0.5,
                                                                                      poor_calls_fail=1)))
    assert failing.status is Status.FAIL


def test_no_rtcp_anywhere_is_no_finding():
    ok = _session("query.rtp_no_rtcp.json")
    for check in (check_quality, check_one_way, check_silent):
        assert check(_ctx([_call(ok)])).status is Status.OK


def test_calls_checks_without_data_say_unknown_or_skip():
    listed = replace(_session(), detailed=False, quality=None, legs=())
    for check in (check_quality, check_one_way, check_silent):
        assert check(_ctx([_call(listed)])).status is Status.UNKNOWN
        assert check(_ctx([])).status is Status.OK
        assert check(_ctx([_call(_session())], stale={"media": 12})).status is Status.UNKNOWN
        assert check(_ctx([], media=False, sources=())).status is Status.SKIP
        assert check(_ctx([], media=False)).status is Status.UNKNOWN


def test_one_way_and_silent_checks_name_call_and_direction():
    base = _session()
    dialog = _dialog(base, start=base.queried_at - 60)
    one_way = replace(_stopped(base, 1, 30), callid="one-way-call")
    silent = replace(_stopped(_stopped(base, 0, 30), 1, 30), callid="silent-call")
    ctx = _ctx([_call(one_way, replace(dialog, callid="one-way-call")),
                _call(silent, replace(dialog, callid="silent-call"))])
    result = check_one_way(ctx)
    assert result.status is Status.WARN and "one-way-call callee -> caller" in result.summary
    assert "last packet 30 s ago" in result.evidence["one-way calls"]["one-way-call"]
    silent_result = check_silent(ctx)
    assert silent_result.status is Status.WARN and list(silent_result.evidence["silent calls"]) == ["silent-call"]


# --------------------------------------------------------------------------- SIP counters and opensips.sip_failures


def _mi(name: str) -> dict:
    return json.loads((MI / name).read_text())["result"]


def test_sip_counters_from_real_sl_and_tm_statistics():
    stats = parse_statistics(_mi("get_statistics.sl.json") | _mi("get_statistics.tm.json"))
    counters = parse_sip_counters(stats, at=100.0)
    assert counters.finals("2xx") == 70 + 11 and counters.finals("5xx") == 0
    assert counters.retransmissions == 0 and counters.timeouts_inv == 0
    assert parse_sip_counters(parse_statistics(_mi("get_statistics.core.json")), 1.0) is None
    overview = parse_overview(None, None, _mi("get_statistics.all.json"), at=5.0)
    assert overview.sip is not None and overview.sip.at == 5.0


def _counters(at: float, **finals) -> SipCounters:
    sl = tuple(finals.get(f"sl{c}", 0) for c in ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx"))
    tm = tuple(finals.get(f"tm{c}", 0) for c in ("2xx", "3xx", "4xx", "5xx", "6xx"))
    return SipCounters(at=at, sl_replies=sl, tm_transactions=tm, retransmissions=finals.get("re", 0),
                       timeouts_inv=finals.get("to", 0))


def test_sip_window_deltas_shares_and_restarts():
    window = sip_window(_counters(10, tm2xx=100, sl4xx=5), _counters(12, tm2xx=160, sl4xx=25, tm5xx=20, re=3))
    assert window.seconds == 2 and window.finals == {"2xx": 60, "3xx": 0, "4xx": 20, "5xx": 20, "6xx": 0}
    assert window.share("5xx", "6xx") == 20.0 and window.per_s("2xx") == 30 and window.retransmissions == 3
    assert sip_window(_counters(10, tm2xx=100), _counters(12, tm2xx=5)) is None  # restarted in between
    assert sip_window(None, _counters(1)) is None and sip_window(_counters(5), _counters(5)) is None


def _sip_ctx(earlier, later, **thresholds) -> CheckContext:
    sig = SignallingState(overview=SignallingOverview(sip=later), sip_earlier=earlier)
    snapshot = Snapshot(collected_at=0, sources={"opensips": SourceStatus("opensips", True)}, signalling=sig)
    return CheckContext(snapshot=snapshot, config=Config(thresholds=Thresholds(**thresholds)), now=0)


def test_sip_failures_check():
    busy = check_sip_failures(_sip_ctx(_counters(0), _counters(1, tm2xx=80, tm5xx=15, tm6xx=5)))
    assert busy.status is Status.FAIL and "20.0%" in busy.summary and busy.remedy
    assert busy.evidence["5xx replies"] == 15 and busy.evidence["6xx replies"] == 5
    warn = check_sip_failures(_sip_ctx(_counters(0), _counters(1, tm2xx=90, tm5xx=10)))
    assert warn.status is Status.WARN
    calm = check_sip_failures(_sip_ctx(_counters(0), _counters(1, tm2xx=95, sl4xx=40, tm5xx=2)))
    assert calm.status is Status.OK  # 4xx (404, 486, 487) are call outcomes, not failures
    quiet = check_sip_failures(_sip_ctx(_counters(0), _counters(1, tm5xx=3)))
    assert quiet.status is Status.OK and "too little traffic" in quiet.summary
    assert check_sip_failures(_sip_ctx(None, _counters(1))).status is Status.UNKNOWN
    assert check_sip_failures(_sip_ctx(None, None)).status is Status.UNKNOWN


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("changes, words", [
    ({"mos_poor": 7}, "is not a MOS"),
    ({"silent_after_s": 0}, "must be above 0"),
    ({"poor_calls_warn": 5, "poor_calls_fail": 2}, "must be below"),
    ({"sip_failure_warn": 30, "sip_failure_fail": 20}, "must be below"),
    ({"sip_failure_fail": 150}, "above 100"),
])
def test_bad_quality_thresholds_are_refused(changes, words):
    with pytest.raises(ConfigError, match=words):
        check_thresholds(Thresholds(**changes))


def test_quality_thresholds_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[thresholds]\nmos_poor = 3.0\nsilent_after_s = 5\nsip_failure_warn = 2\n")
    config = load_config(config_file=str(path))
    assert (config.thresholds.mos_poor, config.thresholds.silent_after_s, config.thresholds.sip_failure_warn) == (
        3.0, 5, 2)
    path.write_text("[thresholds]\nmos_pour = 3.0\n")
    with pytest.raises(ConfigError, match="mos_poor"):
        load_config(config_file=str(path))


# --------------------------------------------------------------------------- JSON and text


def _snapshot() -> Snapshot:
    poor, no_rtcp = _session(), _session("query.rtp_no_rtcp.json")
    listed = replace(_session(), callid="listed", detailed=False, quality=None, legs=())
    stats = parse_statistics(_mi("get_statistics.sl.json") | _mi("get_statistics.tm.json"))
    sig = SignallingState(overview=SignallingOverview(sip=parse_sip_counters(stats, 10.0)),
                          sip_earlier=_counters(9.5, sl2xx=60, tm2xx=11))
    media = MediaState(sessions=(poor, no_rtcp, listed))
    return Snapshot(collected_at=poor.queried_at, sources={}, signalling=sig, media=media,
                    calls=(_call(poor, _dialog(poor)), _call(no_rtcp), _call(listed)))


def test_snapshot_json_quality_and_sip():
    data = snapshot_dict(_snapshot())
    poor, no_rtcp, listed = (c["quality"] for c in data["calls"])
    assert poor["state"] == "poor" and poor["mos"] == 2.8 and poor["mos_min"] == 2.8 and poor["loss_pct"] == 5
    assert poor["packets_a"] == 218 and poor["packets_b"] == 218 and poor["last_packet_age_a_s"] == 0
    assert no_rtcp["state"] == "no RTCP" and no_rtcp["mos"] is None and no_rtcp["jitter_ms"] is None
    assert listed["state"] == "unknown" and listed["packets_a"] is None and listed["last_packet_age_b_s"] is None
    sip = data["overview"]["sip"]
    assert sip["final_replies"]["2xx"] == 81 and sip["window"]["final_replies"]["2xx"] == 10
    assert sip["window"]["seconds"] == 0.5 and sip["sl_replies"]["2xx"] == 70
    json.dumps(data)


def test_snapshot_text_shows_quality_and_sip_health():
    console = make_console()
    with console.capture() as captured:
        console.print(render_snapshot(_snapshot(), clip_ids=False))
    text = captured.get()
    assert "poor MOS 2.8" in text and "no RTCP" in text and "unknown (not queried yet)" in text
    assert "SIP final replies since start: 2xx 81" in text and "last 0.5 s: 10 replies" in text


# --------------------------------------------------------------------------- the RTCP builder


def test_sender_report_layout():
    block = rtcp.ReportBlock(0xABCDEF01, fraction_lost=13, cumulative_lost=40, highest_seq=7, jitter=1280,
                             lsr=0x12345678, dlsr=65536)
    packet = rtcp.sender_report(0x11223344, 1_700_000_000.5, 160, 10, 1600, (block,), cname="x")
    first, pt, length = struct.unpack("!BBH", packet[:4])
    assert first == 0x81 and pt == rtcp.PT_SR and (length + 1) * 4 == 28 + 24
    ssrc, msw, lsw = struct.unpack("!III", packet[4:16])
    assert ssrc == 0x11223344 and msw == 1_700_000_000 + rtcp.NTP_EPOCH_OFFSET and lsw == 1 << 31
    reported, lost_word, _, jitter, lsr, dlsr = struct.unpack("!IIIIII", packet[28:52])
    assert (reported, lost_word >> 24, lost_word & 0xFFFFFF, jitter, lsr, dlsr) == (
        0xABCDEF01, 13, 40, 1280, 0x12345678, 65536)
    assert packet[52 + 1] == rtcp.PT_SDES and len(packet) % 4 == 0


def test_reporting_pair_echoes_the_peer_sr_and_our_chosen_delay():
    caller = rtcp.ReportingEndpoint(1, rtcp.Reception(loss_pct=5, jitter_ms=160, rtt_leg_ms=20))
    callee = rtcp.ReportingEndpoint(2, rtcp.Reception())
    pair = rtcp.ReportingPair(caller, callee)
    first, _ = pair.reports(1000.0)
    assert struct.unpack("!II", first[44:52]) == (0, 0)  # no SR from the peer yet: LSR/DLSR 0
    second, _ = pair.reports(1001.0)
    lost_word, _, jitter, lsr, dlsr = struct.unpack("!IIIII", second[32:52])
    assert lost_word >> 24 == 13 and jitter == 1280 and lsr == rtcp.ntp_middle(1000.0)
    assert dlsr == round((1.0 - 0.020) * 65536)  # RTPengine: leg RTT = elapsed - DLSR = 20 ms


def test_live_window_starts_about_sip_window_s_back_and_restarts_with_opensips():
    from opsconsole_opensips.source import OpenSIPSSource

    source = OpenSIPSSource(Config(thresholds=Thresholds(sip_window_s=60)))
    assert source._sip_window_start(_counters(0, tm2xx=1)) is None  # one sample: no window yet
    assert source._sip_window_start(_counters(30, tm2xx=5)).at == 0  # younger than the window: the oldest
    assert source._sip_window_start(_counters(70, tm2xx=9)).at == 0  # 70 s back is the newest >= 60 s old
    assert source._sip_window_start(_counters(95, tm2xx=12)).at == 30
    assert source._sip_window_start(_counters(100, tm2xx=2)) is None  # counters went back: restarted
    assert source._sip_window_start(_counters(102, tm2xx=3)).at == 100
    assert source._sip_window_start(None) is None
