"""ng `query` / `statistics` replies -> models, on every captured reply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.errors import ProtocolError
from opsconsole_rtpengine import cli, parse

FIXTURES = Path(__file__).parent / "fixtures"
NG = FIXTURES / "rtpengine-10.5" / "ng"
PROBE = FIXTURES / "rtpengine-10.5-probe"
QUERIES = sorted(NG.glob("query.*.json")) + [PROBE / n for n in ("07-query-1-call.json", "15-query-after-delete.json",
                                                                  "23-query-offer-only-call.json",
                                                                  "28-query-bench-call-250calls.json")]
STATISTICS = sorted(NG.glob("statistics*.json")) + sorted(PROBE.glob("*-statistics-*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.name)
def test_every_captured_query(path):
    capture = load(path)
    reply = capture["response"]
    session = parse.parse_query(capture["request"]["call-id"], reply)
    assert session.callid == capture["request"]["call-id"] and session.detailed
    assert session.created == reply["created"]
    assert {leg.tag for leg in session.legs} == {t["tag"] or key for key, t in reply["tags"].items()}
    expected_ports = sorted(s["local port"] for t in reply["tags"].values() for m in t["medias"] for s in m["streams"])
    assert sorted(session.ports) == expected_ports
    rtp_total = reply["totals"]["RTP"]["packets"] + reply["totals"]["RTCP"]["packets"] if "totals" in reply else None
    if rtp_total is not None:
        assert sum(leg.packets for leg in session.legs) == rtp_total


def test_query_udp_to_ws_shows_bridging_and_flags():
    capture = load(NG / "query.udp_to_ws.json")
    session = parse.parse_query("call-udp2ws-1-27552@127.0.0.1", capture["response"])
    caller = session.leg("27552SIPpTag001")
    callee = session.leg("hivka05l9w")
    assert (caller.protocol, caller.codec, caller.packets) == ("RTP/AVP", "PCMA/8000", 236)
    assert callee.protocol == "UDP/TLS/RTP/SAVPF"
    assert {"ICE", "DTLS-SRTP", "rtcp-mux"} <= set(callee.medias[0].flags)
    rtp = caller.medias[0].streams[0]
    assert (rtp.local_port, rtp.endpoint, rtp.bytes, rtp.rtcp) == (30812, "127.0.0.1:6100", 59472, False)
    assert caller.medias[0].streams[1].rtcp
    # a stream without a known peer yet
    assert callee.medias[0].streams[1].endpoint == ""
    assert session.last_signal == 1795670897


def test_query_offer_only_keeps_untagged_side():
    capture = load(PROBE / "23-query-offer-only-call.json")
    session = parse.parse_query("offeronly-1", capture["response"])
    assert {leg.tag for leg in session.legs} == {"<untagged 1>", "f1"}


def test_query_matches_cli_detail_for_the_same_call():
    ng = parse.parse_query("call-udp2ws-1-27552@127.0.0.1", load(NG / "query.udp_to_ws.json")["response"])
    text = (FIXTURES / "rtpengine-10.5" / "ctl" / "list_sessions_callid.udp_to_ws.txt").read_text()
    ctl = cli.parse_session_detail(text)
    assert [leg.tag for leg in ctl.legs] == [leg.tag for leg in ng.legs]
    assert ctl.leg("27552SIPpTag001").ports == ng.leg("27552SIPpTag001").ports


@pytest.mark.parametrize("path", STATISTICS, ids=lambda p: p.name)
def test_every_captured_statistics(path):
    stats = load(path)["response"]["statistics"]
    totals = parse.parse_statistics(stats)
    current = stats["currentstatistics"]
    assert totals.total_sessions == current["sessionstotal"]
    assert totals.owned_sessions == current["sessionsown"]
    assert totals.uptime_s == int(stats["totalstatistics"]["uptime"])  # a string on the wire
    assert isinstance(totals.uptime_s, int) and isinstance(totals.packets_per_s_user, float)
    ports = parse.parse_statistics_ports(stats)
    assert ports.total == stats["interfaces"][0]["ports"]["totals"]
    assert ports.used == stats["interfaces"][0]["ports"]["used"]


def test_statistics_equal_cli_totals_for_the_same_state():
    ng = parse.parse_statistics(load(NG / "statistics.json")["response"]["statistics"])
    ctl = cli.parse_totals((FIXTURES / "rtpengine-10.5" / "ctl" / "list_totals.txt").read_text())
    for name in ("owned_sessions", "total_sessions", "relayed_packets_user", "relayed_packets_kernel",
                 "managed_sessions", "rejected_sessions"):
        assert getattr(ng, name) == getattr(ctl, name), name
    ports = parse.parse_statistics_ports(load(NG / "statistics.json")["response"]["statistics"])
    assert ports.interfaces == cli.parse_interfaces(
        (FIXTURES / "rtpengine-10.5" / "ctl" / "list_interfaces.txt").read_text())


def test_jsonstats_parse_like_ng_statistics():
    stats = cli.parse_jsonstats((FIXTURES / "rtpengine-10.5-probe" / "ctl-250calls-ports-exhausted-list-jsonstats.txt")
                                .read_text())
    assert parse.parse_statistics(stats).total_sessions == 250
    assert parse.parse_statistics_ports(stats).interfaces[0].percent == 100.0


@pytest.mark.parametrize("reply", [{"tags": []}, {"tags": {"a": "x"}}, {"tags": {"a": {"medias": ["x"]}}}])
def test_malformed_query_is_protocol_error(reply):
    with pytest.raises(ProtocolError):
        parse.parse_query("c", reply)


@pytest.mark.parametrize("stats", [[], {}, {"currentstatistics": "x"}])
def test_malformed_statistics_is_protocol_error(stats):
    with pytest.raises(ProtocolError):
        parse.parse_statistics(stats)


def test_numbers_as_strings():
    assert parse.to_int("0.000000") == 0 and parse.to_int("1378") == 1378 and parse.to_int("x", 7) == 7
    assert parse.to_float("410.668767") == pytest.approx(410.668767) and parse.to_float(None) is None
