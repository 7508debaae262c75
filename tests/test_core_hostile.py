"""Hostile strings from the network reach text output escaped and JSON output unchanged."""

import io
import json

from rich.console import Console

from console.model import (CheckResult, Contact, Dialog, DialogLeg, MediaState, SignallingState, Snapshot,
                           SourceStatus, Status)
from console.render.jsonout import diagnose_dict, dumps, snapshot_dict
from console.render.safe import escape_controls, safe_text
from console.render.text import render_diagnose, render_snapshot
from console.snapshot import join_calls

HOSTILE = {
    "markup": "[bold red]x[/]",
    "link": "[link=https://evil.example]click[/link]",
    "clear": "a\x1b[2Jb",
    "osc52": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "osc8": "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\",
    "bidi": "abc\u202edcba",
    "nul": "x\x00y",
    "c1": "p\x9b31mq",
    "long": "A" * 10_000,
}


def _render(renderable, width=120) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None, record=False).print(renderable)
    return buf.getvalue()


def _snapshot() -> Snapshot:
    contacts = tuple(
        Contact(aor=f"{name}-{value}", contact=f"sip:{value}@127.0.0.1", user_agent=value, callid=value, transport="udp")
        for name, value in HOSTILE.items())
    dialogs = (Dialog(id="1.1", callid=HOSTILE["osc52"], from_uri=HOSTILE["markup"], to_uri=HOSTILE["bidi"], state=4,
                      caller=DialogLeg(tag="t1", transport="ws"), callees=(DialogLeg(tag="t2", transport="udp"),)),)
    sig = SignallingState(contacts=contacts, dialogs=dialogs)
    return Snapshot(collected_at=0.0, sources={"opensips": SourceStatus("opensips", False, HOSTILE["clear"])},
                    signalling=sig, media=MediaState(), calls=join_calls(dialogs, ()))


def test_escape_controls_makes_every_control_visible():
    for value in HOSTILE.values():
        escaped = escape_controls(value)
        assert not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f or 0x202a <= ord(ch) <= 0x202e for ch in escaped)
    assert escape_controls(HOSTILE["clear"]) == "a\\x1b[2Jb"
    assert escape_controls(HOSTILE["bidi"]) == "abc\\u202edcba"
    assert escape_controls(HOSTILE["markup"]) == "[bold red]x[/]"  # markup is not a control: kept literally
    assert safe_text(HOSTILE["markup"]).plain == "[bold red]x[/]"  # and never parsed as markup


def test_snapshot_text_shows_hostile_strings_literally():
    out = _render(render_snapshot(_snapshot(), limit=100), width=400)
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out and "\x9b" not in out
    assert "[bold red]x[/]" in out
    assert "\\x1b[2J" in out
    assert "\\u202e" in out


def test_diagnose_text_shows_hostile_evidence_literally():
    results = [CheckResult("opensips.ws", Status.WARN, "stale: " + HOSTILE["clear"], {"ua": HOSTILE["osc8"]},
                           remedy=HOSTILE["markup"])]
    out = _render(render_diagnose(results, host="h\x1b]0;title\x07", elapsed_ms=1.0, verbose=True), width=200)
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold red]x[/]" in out and "\\x1b[2J" in out


def test_json_keeps_hostile_strings_unchanged_and_terminal_safe():
    snap = _snapshot()
    text = dumps(snapshot_dict(snap), pretty=True)
    assert all(ord(ch) < 0x7f and (ord(ch) >= 0x20 or ch == "\n") for ch in text)  # nothing raw reaches a terminal
    data = json.loads(text)
    agents = {c["user_agent"] for c in data["registrations"]}
    assert agents == set(HOSTILE.values())  # byte-for-byte the original strings
    assert data["dialogs"][0]["callid"] == HOSTILE["osc52"]
    assert data["sources"]["opensips"]["error"] == HOSTILE["clear"]
    diag = json.loads(dumps(diagnose_dict([CheckResult("x", Status.OK, HOSTILE["nul"])], elapsed_ms=1, host="h",
                                          version="v"), pretty=False))
    assert diag["checks"][0]["summary"] == HOSTILE["nul"]
