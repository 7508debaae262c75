"""`opsconsole snapshot` against a real OpenSIPS + RTPengine carrying real SIP traffic: every count and every join
equals what the daemons say when asked directly (ul_dump / usrloc:dump, dlg_list / dialog:list, ng list/query,
the rtpengine CLI), and the hostile User-Agent comes back intact in JSON and harmless in text.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from opsconsole_rtpengine.cli import CliClient
from support.platform import HOSTILE_UA, HOSTILE_USER, TCP_USERS, UDP_USERS, WS_USERS

pytestmark = pytest.mark.opensips

RAW_UNSAFE = ("\x1b", "\x07", "\x00", "\x9b")


def _snapshot(real_platform, opsconsole) -> dict:
    code, snap = opsconsole.json("snapshot", *real_platform.target_args())
    assert code == 0, snap["sources"]
    assert all(source["ok"] for source in snap["sources"].values()), snap["sources"]
    return snap


def _dump_contacts(real_platform) -> list[tuple[str, dict]]:
    dump = real_platform.opensips.ul_dump()
    return [(aor["AOR"], contact) for domain in dump["Domains"] for aor in domain["AORs"]
            for contact in aor["Contacts"]]


def _user(aor: str) -> str:
    return aor.split("@")[0]  # 4.0 AoRs carry the domain


def test_contacts_per_aor_and_transport_equal_ul_dump(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    truth = _dump_contacts(real_platform)
    assert {(r["aor"], r["contact"]) for r in snap["registrations"]} == {(a, c["Contact"]) for a, c in truth}
    assert Counter(r["aor"] for r in snap["registrations"]) == Counter(a for a, _ in truth)
    truth_transport = Counter(c["Socket"].split(":")[0] for _, c in truth)
    assert Counter(r["transport"] for r in snap["registrations"]) == truth_transport
    # and the daemon holds what the traffic registered
    assert truth_transport == {"udp": len(UDP_USERS) + 1, "tcp": len(TCP_USERS), "ws": len(WS_USERS)}
    by_contact = {(a, c["Contact"]): c for a, c in truth}
    for reg in snap["registrations"]:
        contact = by_contact[(reg["aor"], reg["contact"])]
        assert reg["socket"] == contact["Socket"]
        assert reg["user_agent"] == contact["User-agent"]
        assert reg["callid"] == contact["Callid"]
        assert reg["ws"] == (contact["Socket"].startswith("ws:") or "DST_WS" in contact["Cflags"])
        assert abs(reg["expires"] - contact["Expires"]) <= 2  # seconds passed between the two asks
    assert {_user(r["aor"]) for r in snap["registrations"] if r["ws"]} == set(WS_USERS)


def test_overview_counts_equal_the_daemons(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    stats = real_platform.mi("get_statistics", {"statistics": ["usrloc:", "dialog:"]})
    opensips, rtpengine = snap["overview"]["opensips"], snap["overview"]["rtpengine"]
    assert opensips["version"] == real_platform.mi("version")["Server"].split()[1].lstrip("(")
    assert opensips["active_dialogs"] == stats["dialog:active_dialogs"] == real_platform.expected_dialogs
    assert opensips["registered_contacts"] == len(_dump_contacts(real_platform)) == len(snap["registrations"])
    ng_stats = real_platform.ng_request({"command": "statistics"})["statistics"]["currentstatistics"]
    assert rtpengine["total_sessions"] == ng_stats["sessionstotal"] == len(real_platform.ng_calls())


def test_dialogs_equal_dlg_list(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    truth = {d["callid"]: d for d in real_platform.opensips.dialogs()}
    assert {d["callid"] for d in snap["dialogs"]} == set(truth)
    assert len(truth) == real_platform.expected_dialogs
    for dialog in snap["dialogs"]:
        real = truth[dialog["callid"]]
        assert dialog["state"] == real["state"] == 4
        assert dialog["caller_bind_addr"] == real["caller_bind_addr"]
        assert dialog["callee_bind_addr"] == real["CALLEES"][0]["callee_bind_addr"]
    pairs = Counter((d["caller_transport"], d["callee_transport"]) for d in snap["dialogs"])
    assert pairs == {("udp", "udp"): 2, ("udp", "ws"): 1, ("tcp", "tcp"): 1, ("ws", "udp"): 1}


def _query_ports(real_platform, callid: str) -> set[int]:
    reply = real_platform.ng_request({"command": "query", "call-id": callid})
    return {stream["local port"] for tag in reply["tags"].values() for media in tag["medias"]
            for stream in media["streams"]}


def test_media_sessions_and_ports_equal_rtpengine(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    listed = set(real_platform.ng_calls())
    assert {s["callid"] for s in snap["media"]["sessions"]} == listed
    assert len(listed) == real_platform.expected_dialogs
    for session in snap["media"]["sessions"]:
        assert set(session["ports"]) == _query_ports(real_platform, session["callid"])
        assert not session["deleted"]
    interfaces = asyncio.run(CliClient(*real_platform.cli, timeout=3.0).interfaces())
    assert snap["media"]["ports"]["used"] == sum(i.used for i in interfaces)
    assert snap["media"]["ports"]["total"] == sum(i.total for i in interfaces)


def test_calls_join_dialogs_and_sessions_by_callid(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    dialogs = {d["callid"]: d for d in real_platform.opensips.dialogs()}
    sessions = set(real_platform.ng_calls())
    calls = {c["callid"]: c for c in snap["calls"]}
    assert set(calls) == set(dialogs) | sessions
    for callid, call in calls.items():
        assert call["has_dialog"] == (callid in dialogs)
        assert call["has_media"] == (callid in sessions)
        assert call["has_dialog"] and call["has_media"], f"{callid} flagged as missing a side: {call}"
        assert set(call["ports"]) == _query_ports(real_platform, callid)
        real = dialogs[callid]
        caller = real["caller_bind_addr"].split(":")[0].upper()
        callee = real["CALLEES"][0]["callee_bind_addr"].split(":")[0].upper()
        assert call["bridge"].startswith(f"{caller}->{callee} ")
        if "WS" in (caller, callee):
            assert "DTLS-SRTP" in call["bridge"], call["bridge"]


def test_hostile_user_agent_intact_in_json(real_platform, opsconsole):
    snap = _snapshot(real_platform, opsconsole)
    (hostile,) = [r for r in snap["registrations"] if _user(r["aor"]) == HOSTILE_USER]
    assert hostile["user_agent"] == HOSTILE_UA  # markup, ESC sequences and length as the UA sent them
    assert len(HOSTILE_UA) == 254


def test_hostile_user_agent_never_markup_or_escapes_in_text(real_platform, opsconsole, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    code, text = opsconsole.run("snapshot", *real_platform.target_args())
    assert code == 0
    for char in RAW_UNSAFE:
        assert char not in text, f"raw {char!r} reached the terminal output"
    assert "[bold red]x[/]" in text  # shown literally, not interpreted as Rich markup
    assert "\\x1b[31m" in text or "␛[31m" in text or "^[[31m" in text, "escape not shown in a visible form"
