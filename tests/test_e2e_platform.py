"""End to end: the real RTPengine + the MI test server on the real captures, through the CLI.

The MI server answers with the lab's captured state (70 contacts, 9 dialogs); the real
RTPengine gets one real offer/answer per captured dialog, with the same Call-IDs, so the
join, the port counts and the checks run on real media state.
"""

import asyncio
import gzip
import json
import socket
import time
from pathlib import Path

import pytest

from console.cli import main
from opsconsole_rtpengine.cli import CliClient
from opsconsole_rtpengine.ng import NgClient
from support.faults import free_port
from support.rtpengine_daemon import place_captured_calls

FIXTURES = Path(__file__).parent / "fixtures"


def _captured(name: str):
    return json.loads((FIXTURES / "opensips-3.4" / "mi" / name).read_text())["result"]


@pytest.fixture
def platform(mi_server, start_rtpengine):
    daemon = start_rtpengine(ports=200)
    dialogs = _captured("dlg_list.populated.json")["Dialogs"]

    async def place_calls():
        ng = NgClient(*daemon.ng, timeout=2.0)
        try:
            await place_captured_calls(ng, dialogs)
        finally:
            await ng.aclose()

    asyncio.run(place_calls())
    target = ["--mi-url", mi_server.url, "--ng", f"{daemon.ng[0]}:{daemon.ng[1]}",
              "--cli", f"{daemon.cli[0]}:{daemon.cli[1]}", "--timeout", "2"]
    return mi_server, daemon, dialogs, target


def _run_json(capsys, argv):
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_snapshot_reports_exactly_what_the_platform_holds(platform, capsys):
    mi, daemon, dialogs, target = platform
    code, snap = _run_json(capsys, ["snapshot", "--json", *target])
    assert code == 0, snap["sources"]

    dump = _captured("ul_dump.populated.json")["Domains"][0]["AORs"]
    expected = {(a["AOR"], c["Contact"]) for a in dump for c in a["Contacts"]}
    assert {(r["aor"], r["contact"]) for r in snap["registrations"]} == expected
    ws_expected = {(a["AOR"], c["Contact"]) for a in dump for c in a["Contacts"]
                   if c.get("Socket", "").startswith("ws:") or "DST_WS" in c.get("Cflags", "")}
    assert {(r["aor"], r["contact"]) for r in snap["registrations"] if r["ws"]} == ws_expected
    assert len(ws_expected) == 10
    for reg in snap["registrations"]:
        assert {"aor", "contact", "socket", "transport", "ws", "user_agent", "expires"} <= set(reg)

    assert {d["callid"] for d in snap["dialogs"]} == {d["callid"] for d in dialogs}
    assert {d["callid"] for d in snap["media"]["sessions"]} == {d["callid"] for d in dialogs}

    async def cli_ports():
        return await CliClient(*daemon.cli, timeout=2.0).interfaces()

    interfaces = asyncio.run(cli_ports())
    assert snap["media"]["ports"]["used"] == sum(i.used for i in interfaces) == 4 * len(dialogs)
    assert snap["media"]["ports"]["total"] == sum(i.total for i in interfaces)

    calls = {c["callid"]: c for c in snap["calls"]}
    assert set(calls) == {d["callid"] for d in dialogs}
    assert all(c["has_media"] and c["has_dialog"] for c in calls.values())
    for d in dialogs:
        caller = d["caller_bind_addr"].split(":")[0].upper()
        callee = d["CALLEES"][0]["callee_bind_addr"].split(":")[0].upper()
        assert calls[d["callid"]]["bridge"].startswith(f"{caller}->{callee} ")
        if (caller, callee) == ("WS", "UDP"):
            assert "DTLS-SRTP" in calls[d["callid"]]["bridge"] and "RTP" in calls[d["callid"]]["bridge"]
        assert len(calls[d["callid"]]["ports"]) == 4


def test_snapshot_with_rtpengine_stopped_still_prints_opensips(platform, capsys):
    mi, daemon, dialogs, target = platform
    daemon.stop()
    started = time.monotonic()
    code, snap = _run_json(capsys, ["snapshot", "--json", *target[:-1], "1"])
    elapsed = time.monotonic() - started
    assert code == 1
    assert snap["sources"]["rtpengine"]["ok"] is False
    assert "refused" in snap["sources"]["rtpengine"]["error"] or "no answer" in snap["sources"]["rtpengine"]["error"]
    assert snap["sources"]["opensips"]["ok"] is True
    assert len(snap["registrations"]) == 70 and len(snap["dialogs"]) == 9
    assert all(c["has_dialog"] and not c["has_media"] for c in snap["calls"])
    assert elapsed < 1 + 1 + 3  # the timeout plus a second, plus slack for a loaded CI box


def test_snapshot_with_opensips_stopped_still_prints_media(platform, capsys):
    mi, daemon, dialogs, target = platform
    mi.set_fault("refuse")
    code, snap = _run_json(capsys, ["snapshot", "--json", *target])
    assert code == 1
    assert snap["sources"]["opensips"]["ok"] is False and "refused" in snap["sources"]["opensips"]["error"]
    assert snap["registrations"] is None and snap["dialogs"] is None
    assert len(snap["media"]["sessions"]) == 9
    assert all(c["has_media"] and not c["has_dialog"] for c in snap["calls"])


def _checks(data):
    return {c["id"]: c for c in data["checks"]}


def test_diagnose_healthy_rtpengine_and_wrong_rtpengine_sock(platform, capsys):
    mi, daemon, dialogs, target = platform
    # The captured rtpengine_show points at udp:127.0.0.1:60000, where another RTPengine may listen on
    # this machine: point it at a port the OS just gave us and nobody listens on.
    dead = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    mi.set_response("rtpengine_show", [{"Set": 0, "Nodes": [
        {"url": dead, "index": 0, "disabled": 0, "weight": 1, "recheck_ticks": 0}]}])
    code, data = _run_json(capsys, ["diagnose", "--json", *target])
    checks = _checks(data)
    for cid in ("rtpengine.ng", "rtpengine.cli", "rtpengine.ports"):
        assert checks[cid]["status"] == "ok", checks[cid]
    sock = checks["opensips.rtpengine_sock"]
    assert sock["status"] == "fail"
    assert dead in sock["summary"] + json.dumps(sock["evidence"])
    assert f"{daemon.ng[0]}:{daemon.ng[1]}" in sock["summary"] + sock["remedy"] + json.dumps(sock["evidence"])
    assert code == 2

    # Point OpenSIPS's rtpengine set at the real ng listener: the mismatch is gone.
    mi.set_response("rtpengine_show", [{"Set": 0, "Nodes": [
        {"url": f"udp:{daemon.ng[0]}:{daemon.ng[1]}", "index": 0, "disabled": 0, "weight": 1, "recheck_ticks": 0}]}])
    code, data = _run_json(capsys, ["diagnose", "--json", "--only", "opensips.rtpengine_sock,rtpengine", *target])
    checks = _checks(data)
    assert checks["opensips.rtpengine_sock"]["status"] == "ok", checks["opensips.rtpengine_sock"]


def test_diagnose_rtpengine_stopped_fails_with_remedy(platform, capsys):
    mi, daemon, dialogs, target = platform
    daemon.stop()
    code, data = _run_json(capsys, ["diagnose", "--json", "--only", "rtpengine", *target[:-1], "1"])
    checks = _checks(data)
    assert checks["rtpengine.ng"]["status"] == "fail" and checks["rtpengine.ng"]["remedy"]
    assert str(daemon.ng[1]) in checks["rtpengine.ng"]["summary"]
    assert code == 2
