"""`opsconsole diagnose --json` on a real OpenSIPS + RTPengine: silent when healthy, the right finding per fault.

Destructive faults run on platforms of their own (start_real_platform), so the session platform stays healthy.
"""

from __future__ import annotations

import json
import time

import pytest

from real.conftest import checks_by_id
from support.platform import UDP_CALLS, WS_USERS
from support.rtpengine_daemon import free_port, plain_sdp

pytestmark = pytest.mark.opensips

# What the healthy platform may legitimately answer besides ok: checks that do not apply to a userspace,
# loopback lab (no kernel table) skip.
HEALTHY_STATUSES = {"ok", "skip"}


def _diagnose(opsconsole, platform, *extra: str, config: str = "", timeout: float = 3.0) -> tuple[int, dict]:
    return opsconsole.json("diagnose", *platform.target_args(timeout), *extra, config=config)


def _evidence(check: dict) -> str:
    return check["summary"] + " " + json.dumps(check["evidence"]) + " " + (check.get("remedy") or "")


def test_healthy_platform_has_no_finding(real_platform, opsconsole):
    code, report = _diagnose(opsconsole, real_platform)
    statuses = {cid: check["status"] for cid, check in checks_by_id(report).items()}
    print(f"OpenSIPS {real_platform.version} healthy diagnose: {statuses}")
    findings = {cid: checks_by_id(report)[cid]["summary"] for cid, s in statuses.items() if s not in HEALTHY_STATUSES}
    assert not findings, findings
    for cid in ("opensips.mi", "opensips.rtpengine_sock", "opensips.ws", "rtpengine.ng", "rtpengine.cli",
                "rtpengine.ports", "rtpengine.sessions"):
        assert statuses[cid] == "ok", checks_by_id(report)[cid]
    assert code == 0


def test_rtpengine_stopped(start_real_platform, opsconsole):
    platform = start_real_platform(traffic=False)
    platform.rtpengine.stop()
    code, report = _diagnose(opsconsole, platform, timeout=1.0)
    checks = checks_by_id(report)
    assert checks["rtpengine.ng"]["status"] == "fail" and checks["rtpengine.ng"]["remedy"]
    assert str(platform.ng[1]) in checks["rtpengine.ng"]["summary"]
    assert checks["rtpengine.cli"]["status"] == "fail"
    sock = checks["opensips.rtpengine_sock"]
    assert sock["status"] == "fail" and f"udp:127.0.0.1:{platform.ng[1]}" in _evidence(sock)
    assert checks["opensips.mi"]["status"] == "ok"
    assert code == 2


def test_rtpengine_sock_pointing_at_a_dead_port(start_real_platform, opsconsole):
    dead = f"udp:127.0.0.1:{free_port()}"  # nothing listens there
    platform = start_real_platform(traffic=False, rtpengine_sock=dead)
    assert platform.mi("rtpengine_show" if platform.version == "3.4" else "rtpengine:show")[0]["Nodes"][0]["url"] == dead
    code, report = _diagnose(opsconsole, platform)
    sock = checks_by_id(report)["opensips.rtpengine_sock"]
    assert sock["status"] == "fail", sock
    assert dead in _evidence(sock)
    assert f"{platform.ng[0]}:{platform.ng[1]}" in sock["remedy"]  # where the live ng listener is
    assert checks_by_id(report)["rtpengine.ng"]["status"] == "ok"
    assert code == 2


def test_dialog_whose_media_session_was_deleted(start_real_platform, opsconsole):
    platform = start_real_platform()
    dialogs = platform.opensips.dialogs()
    victim = next(d["callid"] for d in dialogs if d["callid"].startswith("call-udp-"))
    platform.ng_request({"command": "delete", "call-id": victim})
    assert victim not in platform.ng_calls()

    code, report = _diagnose(opsconsole, platform)
    sessions = checks_by_id(report)["rtpengine.sessions"]
    assert sessions["status"] == "warn", sessions
    assert "1 confirmed dialogs have no rtpengine session" in sessions["summary"]
    assert sessions["evidence"]["dialogs without media"] == [victim]
    assert code == 1

    code, snap = opsconsole.json("snapshot", *platform.target_args())
    calls = {c["callid"]: c for c in snap["calls"]}
    assert calls[victim]["has_dialog"] and not calls[victim]["has_media"]
    assert all(c["has_dialog"] and c["has_media"] for cid, c in calls.items() if cid != victim)


def test_media_session_without_a_sip_dialog(start_real_platform, opsconsole):
    platform = start_real_platform(traffic=False)
    ghost = "ghost-offer-without-call@127.0.0.1"
    platform.ng_request({"command": "offer", "call-id": ghost, "from-tag": "ghost-ft", "sdp": plain_sdp(40000),
                         "transport-protocol": "RTP/AVP", "ICE": "remove"})
    assert platform.opensips.dialogs() == []
    # Zombie = a session without dialog older than zombie_age_s: 0 makes this one count at once.
    code, report = _diagnose(opsconsole, platform, config="[thresholds]\nzombie_age_s = 0\n")
    sessions = checks_by_id(report)["rtpengine.sessions"]
    assert sessions["status"] == "warn", sessions
    assert "1 zombie sessions" in sessions["summary"]
    assert ghost in json.dumps(sessions["evidence"]["zombie sessions"])
    assert code == 1

    code, snap = opsconsole.json("snapshot", *platform.target_args())
    (call,) = snap["calls"]
    assert call["callid"] == ghost and call["has_media"] and not call["has_dialog"]


def test_media_port_range_nearly_exhausted(start_real_platform, opsconsole):
    # The traffic holds 5 calls x 4 ports = 20 ports of 22: past ports_warn (80 %), below ports_fail (95 %).
    platform = start_real_platform(rtpengine_ports=22)
    code, report = _diagnose(opsconsole, platform)
    ports = checks_by_id(report)["rtpengine.ports"]
    assert ports["status"] == "warn", ports
    assert "20" in ports["summary"] and "22" in ports["summary"], ports["summary"]
    assert code == 1


def test_opensips_stopped_mid_session(start_real_platform, opsconsole):
    platform = start_real_platform()
    media_before = set(platform.ng_calls())
    platform.opensips.stop()
    code, report = _diagnose(opsconsole, platform, timeout=1.0)
    checks = checks_by_id(report)
    assert checks["opensips.mi"]["status"] == "fail", checks["opensips.mi"]
    assert str(platform.opensips.http_port) in _evidence(checks["opensips.mi"])
    # Dialogs are unknown now: no finding about sessions "without dialog" may come from that.
    assert checks["rtpengine.sessions"]["status"] == "skip", checks["rtpengine.sessions"]
    assert checks["rtpengine.ng"]["status"] == "ok"
    assert code == 2

    code, snap = opsconsole.json("snapshot", *platform.target_args(1.0))
    assert code == 1 and snap["sources"]["opensips"]["ok"] is False
    assert snap["dialogs"] is None and snap["registrations"] is None
    assert {s["callid"] for s in snap["media"]["sessions"]} == media_before
    assert all(c["has_media"] and not c["dialog_known"] for c in snap["calls"])
    assert len(UDP_CALLS) <= len(snap["calls"])


def test_websocket_check_counts_equal_the_daemon(real_platform, opsconsole):
    code, report = _diagnose(opsconsole, real_platform, "--only", "opensips.ws")
    ws = checks_by_id(report)["opensips.ws"]
    contacts = [c for a in real_platform.opensips.ul_dump()["Domains"][0]["AORs"] for c in a["Contacts"]]
    dialogs = real_platform.opensips.dialogs()
    conns = real_platform.mi("list_tcp_conns" if real_platform.version == "3.4" else "tcp:list")["Connections"]
    assert ws["status"] == "ok", ws
    assert ws["evidence"]["ws_contacts"] == sum(c["Socket"].startswith("ws:") for c in contacts) == len(WS_USERS)
    assert ws["evidence"]["ws_dialogs"] == sum(
        "ws:" in d["caller_bind_addr"] + d["CALLEES"][0]["callee_bind_addr"] for d in dialogs) == 2
    assert ws["evidence"]["ws_connections"] == sum(c["Type"] == "ws" for c in conns)


def test_websocket_registration_whose_connection_closed_is_stale(start_real_platform, opsconsole):
    platform = start_real_platform()
    gone = WS_USERS[-1]  # registered, in no call
    platform.ws_uas.pop(gone).close()
    assert gone in {a["AOR"].split("@")[0] for a in platform.opensips.ul_dump()["Domains"][0]["AORs"]}

    def closed_seen() -> bool:  # OpenSIPS notices the closed WebSocket on its own time
        conns = platform.mi("list_tcp_conns" if platform.version == "3.4" else "tcp:list")["Connections"]
        return sum(c["Type"] == "ws" for c in conns) == len(WS_USERS) - 1

    deadline = time.monotonic() + 10
    while not closed_seen():
        assert time.monotonic() < deadline, "OpenSIPS still lists the closed WebSocket"
        time.sleep(0.05)
    code, report = _diagnose(opsconsole, platform)
    ws = checks_by_id(report)["opensips.ws"]
    assert ws["status"] == "warn", ws
    assert "1 stale WS registrations" in ws["summary"] and gone in ws["summary"]
    assert code == 1
