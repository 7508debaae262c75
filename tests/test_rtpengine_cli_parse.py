"""CLI (`--listen-cli`) parsers on every captured rtpengine-ctl output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.errors import ProtocolError
from opsconsole_rtpengine import cli

FIXTURES = Path(__file__).parent / "fixtures"
CTL = FIXTURES / "rtpengine-10.5" / "ctl"
PROBE = FIXTURES / "rtpengine-10.5-probe"


def read(path: Path) -> str:
    return path.read_text()


TOTALS = [CTL / "list_totals.txt", *sorted(PROBE.glob("ctl-*-list-totals.txt"))]
NUMSESSIONS = [CTL / "list_numsessions.txt", *sorted(PROBE.glob("ctl-*-list-numsessions.txt"))]
INTERFACES = [CTL / "list_interfaces.txt", *sorted(PROBE.glob("ctl-*-list-interfaces.txt"))]
SESSION_LISTS = [*sorted(CTL.glob("list_sessions_[aof]*.txt")), *sorted(PROBE.glob("ctl-*-list-sessions-all.txt")),
                 *sorted(PROBE.glob("ctl-*-list-sessions-own.txt"))]
DETAILS = [*sorted(CTL.glob("list_sessions_callid.*.txt")),
           *sorted(PROBE.glob("ctl-*-list-sessions-*probe-call-1.txt")),
           PROBE / "ctl-250calls-ports-exhausted-list-sessions-bench-full-7.txt"]
JSONSTATS = [CTL / "list_jsonstats.txt", *sorted(PROBE.glob("ctl-*-list-jsonstats.txt"))]


def ids(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", TOTALS, ids=ids)
def test_totals_every_capture(path):
    totals = cli.parse_totals(read(path))
    numsessions = path.name.replace("totals", "numsessions")
    if (path.parent / numsessions).exists():
        counts = cli.parse_numsessions(read(path.parent / numsessions))
        assert totals.total_sessions == counts["sessions_total"]
        assert totals.owned_sessions == counts["sessions_own"]
    assert totals.uptime_s is not None and totals.uptime_s > 0
    assert isinstance(totals.packets_per_s_user, float)
    assert "Total relayed packets" in totals.raw


def test_totals_lab_values():
    totals = cli.parse_totals(read(CTL / "list_totals.txt"))
    assert (totals.owned_sessions, totals.total_sessions, totals.uptime_s) == (9, 9, 1376)
    assert (totals.relayed_packets_user, totals.relayed_packets_kernel, totals.managed_sessions) == (9843, 0, 24)
    assert totals.raw["Average call duration"] == "410.668767 seconds"


@pytest.mark.parametrize("path", NUMSESSIONS, ids=ids)
def test_numsessions_every_capture(path):
    counts = cli.parse_numsessions(read(path))
    assert counts["sessions_total"] == counts["sessions_own"] + counts["sessions_foreign"]
    assert "sessions_ip_mixed_media" in counts


def test_numsessions_250_calls():
    counts = cli.parse_numsessions(read(PROBE / "ctl-250calls-ports-exhausted-list-numsessions.txt"))
    assert counts["sessions_total"] == 250 and counts["sessions_ipv4_only_media"] == 249


@pytest.mark.parametrize("path", INTERFACES, ids=ids)
def test_interfaces_every_capture(path):
    (iface,) = cli.parse_interfaces(read(path))
    assert (iface.name, iface.address) == ("default", "127.0.0.1")
    assert iface.total == iface.port_max - iface.port_min + 1 == 1000
    assert 0 <= iface.used <= iface.total and iface.used % 4 == 0


def test_interfaces_lab_and_exhausted():
    (lab,) = cli.parse_interfaces(read(CTL / "list_interfaces.txt"))
    assert (lab.used, lab.total, lab.port_min, lab.port_max, lab.last_port) == (36, 1000, 30000, 30999, 30002)
    assert lab.calls_left == 241
    (full,) = cli.parse_interfaces(read(PROBE / "ctl-250calls-ports-exhausted-list-interfaces.txt"))
    assert (full.used, full.percent, full.calls_left) == (1000, 100.0, 0)


def test_interfaces_several():
    text = ("Interface 'pub' address '192.0.2.1' (IPv4)\n Port range: 30000 - 30099\n Ports used:     8 /   100 "
            "(  8.0%)\n Last port used: 30007\nInterface 'priv' address '10.0.0.1' (IPv4)\n Port range: 40000 - "
            "40009\n Ports used:    10 /    10 (100.0%)\n Last port used: 40009\n")
    pub, priv = cli.parse_interfaces(text)
    assert (pub.name, pub.used, pub.total) == ("pub", 8, 100)
    assert (priv.address, priv.percent, priv.port_max) == ("10.0.0.1", 100.0, 40009)


@pytest.mark.parametrize("path", SESSION_LISTS, ids=ids)
def test_session_lists_every_capture(path):
    sessions = cli.parse_sessions_list(read(path))
    callids = [line.split("|")[0].split(":", 1)[1].strip() for line in read(path).splitlines()
               if line.startswith("callid:")]
    assert [s.callid for s in sessions] == callids
    assert all(s.created > 1_700_000_000 and s.proxy.startswith("127.0.0.1:") for s in sessions)
    assert [s.deleted for s in sessions] == ["deletionmark: yes" in line for line in read(path).splitlines()
                                             if line.startswith("callid:")]


def test_session_list_deletion_mark_and_empty():
    sessions = cli.parse_sessions_list(read(CTL / "list_sessions_all.with_deleted_pending.txt"))
    assert len(sessions) == 10
    assert [s.callid for s in sessions if s.deleted] == ["short-1-28608@127.0.0.1"]
    assert cli.parse_sessions_list(read(CTL / "list_sessions_foreign.txt")) == ()
    assert cli.parse_sessions_list("No sessions on this media relay.\n") == ()
    assert len(cli.parse_sessions_list(read(PROBE / "ctl-250calls-ports-exhausted-list-sessions-all.txt"))) == 250


@pytest.mark.parametrize("path", DETAILS, ids=ids)
def test_session_detail_every_capture(path):
    session = cli.parse_session_detail(read(path))
    text = read(path)
    assert session is not None and session.detailed
    assert f"callid: {session.callid}\n" in text
    assert len(session.legs) == text.count("--- Tag '")
    assert len(session.ports) == text.count("-------- Port ")
    assert session.deleted == ("deletionmark: yes" in text)
    assert {leg.tag_type for leg in session.legs} <= {"FROM_TAG", "TO_TAG"}


def test_session_detail_udp_to_ws_bridging():
    session = cli.parse_session_detail(read(CTL / "list_sessions_callid.udp_to_ws.txt"))
    caller, callee = session.legs
    assert (caller.tag, caller.protocol, caller.codec, caller.ports) == ("27552SIPpTag001", "RTP/AVP", "PCMA/8000",
                                                                       (30812, 30813))
    assert (callee.tag, callee.protocol, callee.codec) == ("hivka05l9w", "UDP/TLS/RTP/SAVPF", "")
    rtp, rtcp = caller.medias[0].streams
    assert (rtp.endpoint, rtp.packets, rtp.bytes, rtp.errors, rtp.rtcp) == ("127.0.0.1:6100", 236, 59472, 0, False)
    assert rtcp.rtcp and rtcp.endpoint == "127.0.0.1:6101"
    assert session.last_signal == 1795670897


def test_session_detail_unknown_endpoint_is_empty():
    session = cli.parse_session_detail(read(CTL / "list_sessions_callid.ws_to_udp.txt"))
    assert session.legs[0].medias[0].streams[1].endpoint == ""
    assert session.legs[0].medias[0].streams[1].rtcp


@pytest.mark.parametrize("path", [CTL / "list_sessions_nosuchcallid.txt",
                                  PROBE / "ctl-1call-list-sessions-no-such-call.txt",
                                  CTL / "terminate_unknown_callid.txt"], ids=ids)
def test_session_detail_unknown_callid_is_none(path):
    assert cli.parse_session_detail(read(path)) is None


@pytest.mark.parametrize("path", JSONSTATS, ids=ids)
def test_jsonstats_every_capture(path):
    stats = cli.parse_jsonstats(read(path))
    assert stats["currentstatistics"]["sessionstotal"] >= 0
    assert stats["interfaces"][0]["ports"]["totals"] == 1000


@pytest.mark.parametrize("parser", [cli.parse_totals, cli.parse_numsessions, cli.parse_interfaces,
                                    cli.parse_sessions_list, cli.parse_session_detail, cli.parse_jsonstats])
@pytest.mark.parametrize("path", [CTL / "bogus_command.txt", PROBE / "ctl-1call-help.txt",
                                  PROBE / "ctl-1call-list-timeout.txt"], ids=ids)
def test_parsers_reject_other_outputs(parser, path):
    with pytest.raises(ProtocolError):
        parser(read(path))


def test_jsonstats_matches_ng_statistics_numbers():
    stats = cli.parse_jsonstats(read(CTL / "list_jsonstats.txt"))
    ng = json.loads((FIXTURES / "rtpengine-10.5" / "ng" / "statistics.json").read_text())["response"]["statistics"]
    assert stats["currentstatistics"] == ng["currentstatistics"]
    assert stats["totalstatistics"]["relayedpackets"] == ng["totalstatistics"]["relayedpackets"]


def test_session_detail_callid_that_looks_like_an_error_is_still_parsed():
    text = (CTL / "list_sessions_callid.udp_udp.txt").read_text()
    original = cli.parse_session_detail(text).callid
    tricky = text.replace(original, "Call ID not found (x)")
    assert cli.parse_session_detail(tricky).callid == "Call ID not found (x)"
