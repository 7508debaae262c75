"""Deterministic UI data built from the real lab captures (tests/fixtures/ui/).

Both sides go through the plugins' own parsers: OpenSIPS MI bodies, RTPengine
ng `query`/`statistics` answers and the CLI `list interfaces` text.  Lab state: 70
contacts (50 UDP, 10 TCP, 10 WS with DST_WS), 9 confirmed dialogs, the same 9
media sessions plus one BYE'd session within delete-delay, 36/1000 ports.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsconsole_opensips.parse import parse_contacts, parse_dialogs, parse_overview
from opsconsole_rtpengine.cli import parse_interfaces
from opsconsole_rtpengine.parse import parse_query, parse_statistics, port_usage

from console.config import Config
from console.model import (
    CheckResult,
    Contact,
    MediaSession,
    MediaState,
    SignallingState,
    Snapshot,
    SourceStatus,
    Status,
)
from console.plugins import CollectOptions
from console.snapshot import join_calls

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ui"
MI = FIXTURES / "opensips-3.4" / "mi"
NG = FIXTURES / "rtpengine-10.5" / "ng"

# Frozen clock: 12 s after the BYE'd short call was created (all lab calls up).
NOW = 1795670960.0

# ng query captures per call-id; the other UDP calls of the lab are the same
# shape (same sipp scenario), so they reuse a capture under their own ids.
QUERY_FOR_CALLID = {
    "call-udp-1-27550@127.0.0.1": "query.udp_udp",
    "call-udp-2-27550@127.0.0.1": "query.udp_udp",
    "call-udp-3-27550@127.0.0.1": "query.udp_udp",
    "call-udp-4-27550@127.0.0.1": "query.udp_udp",
    "call-udp2ws-1-27552@127.0.0.1": "query.udp_to_ws",
    "call-udp2ws-2-27552@127.0.0.1": "query.udp_to_ws",
    "gqc9y5p4vytlkldkolvytokm": "query.ws_to_udp",
    "9sr0ww7s3ay66548yngfidas": "query.ws_to_ws",
    "call-tcp-1-27554@127.0.0.1": "query.tcp_tcp",
}
DELETED_CALLID = "short-1-28608@127.0.0.1"  # BYE seen, inside delete-delay: media without dialog


def mi_result(name: str) -> Any:
    return json.loads((MI / f"{name}.json").read_text())["result"]


def ng_response(name: str) -> dict:
    return json.loads((NG / f"{name}.json").read_text())["response"]


def media_session(callid: str, query: dict, tags: tuple[str, ...] = (), deleted: bool = False) -> MediaSession:
    """One ng `query` answer -> MediaSession; `tags` renames the legs (reused captures)."""
    session = parse_query(callid, query)
    if tags and session.leg(tags[0]) is None:  # a capture reused for another call of the same scenario
        legs = tuple(replace(leg, tag=tags[n]) if n < len(tags) else leg for n, leg in enumerate(session.legs))
        session = replace(session, legs=legs)
    return replace(session, deleted=deleted)


def signalling_state() -> SignallingState:
    overview = parse_overview(mi_result("version"), mi_result("uptime"), mi_result("get_statistics.all"))
    return SignallingState(
        target="http://127.0.0.1:8888/mi",
        overview=overview,
        contacts=parse_contacts(mi_result("ul_dump.populated")),
        dialogs=parse_dialogs(mi_result("dlg_list.populated")),
        commands=tuple(mi_result("which")),
    )


def media_state(dialogs) -> MediaState:
    by_callid = {d.callid: d for d in dialogs}
    sessions = []
    for callid, capture in QUERY_FOR_CALLID.items():
        dialog = by_callid.get(callid)
        tags = (dialog.caller.tag, dialog.callee.tag) if dialog is not None else ()
        sessions.append(media_session(callid, ng_response(capture), tags))
    sessions.append(media_session(DELETED_CALLID, ng_response("query.deleted_pending"), deleted=True))
    totals = parse_statistics(ng_response("statistics")["statistics"])
    ports = port_usage(parse_interfaces((FIXTURES / "list_interfaces.txt").read_text()))  # 36 / 1000 used
    return MediaState(target="127.0.0.1:2223", ng_ok=True, cli_ok=True, version="10.5.3.5",
                      sessions=tuple(sessions), sessions_total=len(sessions), ports=ports, totals=totals)


CHECKS = [
    CheckResult("opensips.mi", Status.OK, "MI answers (OpenSIPS 3.4.18)", {"elapsed_ms": 0.7}),
    CheckResult("rtpengine.ng", Status.OK, "ng ping answered pong", {"target": "127.0.0.1:2223"}),
    CheckResult("rtpengine.ports", Status.OK, "36 of 1000 ports in use (3.6%)", {"used": 36, "total": 1000}),
    CheckResult("calls.zombies", Status.WARN, "1 media session without a dialog",
                {"callids": ["short-1-28608@127.0.0.1"]}, "check the BYE handling; rtpengine-ctl terminate <callid>"),
]


def sources(ok: bool = True, *, failing: str = "", error: str = "connection refused", at: float = NOW) -> dict:
    out = {}
    for name in ("opensips", "rtpengine", "host"):
        bad = name == failing
        out[name] = SourceStatus(name, not bad, error if bad else "", 1.5, at)
    return out


def lab_snapshot(at: float = NOW, *, options: CollectOptions | None = None) -> Snapshot:
    """The lab, as a full collection would report it (heavy lists per `options`)."""
    options = options or CollectOptions()
    sig = signalling_state()
    media = media_state(sig.dialogs or ())
    if not options.contacts:
        sig = replace(sig, contacts=None)
    if not options.dialogs:
        sig = replace(sig, dialogs=None)
    return Snapshot(collected_at=at, sources=sources(at=at), signalling=sig, media=media,
                    calls=join_calls(sig.dialogs, media.sessions))


def many_contacts(count: int) -> tuple[Contact, ...]:
    """`count` contacts shaped like the lab's (UDP mostly, every 10th WS)."""
    out = []
    for n in range(count):
        ws = n % 10 == 0
        transport = "ws" if ws else "udp"
        out.append(Contact(
            aor=f"u{n:06d}", contact=f"sip:u{n:06d}@127.0.0.1:{5070 + n % 1000};transport={transport}",
            contact_id=str(1000000 + n), socket=f"{transport}:127.0.0.1:{8080 if ws else 5060}", transport=transport,
            ws=ws, cflags=("DST_WS",) if ws else (), user_agent=f"sipp-lab-{transport.upper()}", expires=3600 - n % 3600,
            callid=f"reg-{n}@127.0.0.1", cseq=1, state="CS_NEW"))
    return tuple(out)


class FakeService:
    """Same shape as console.service.ConsoleService, fed with fixed snapshots."""

    def __init__(self, snapshots: list[Snapshot] | None = None, *, checks: list[CheckResult] | None = None,
                 commands: list[str] | None = None, write_methods: set[str] | None = None,
                 mi_results: dict[str, Any] | None = None, config: Config | None = None) -> None:
        self.snapshots = list(snapshots or [])
        self.check_results = list(CHECKS if checks is None else checks)
        self.commands = commands if commands is not None else list(mi_result("which"))
        self.write_methods = write_methods if write_methods is not None else {"ul_rm", "ul_add", "dlg_end_dlg", "reload_routes"}
        self.mi_results = mi_results if mi_results is not None else {"version": mi_result("version")}
        self.config = config or Config(heavy_interval=30.0)
        self.requests: list[CollectOptions] = []
        self.mi_calls: list[tuple[str, Any, bool]] = []
        self.aor_contacts: dict[str, Any] = {}
        self.shown_aors: list[str] = []
        self.checks_runs = 0
        self.closed = False

    async def snapshot(self, options: CollectOptions | None = None) -> Snapshot:
        options = options or CollectOptions()
        self.requests.append(options)
        if self.snapshots:
            snap = self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]
        else:
            snap = lab_snapshot(options=options)
        if not options.contacts and snap.signalling is not None and snap.signalling.contacts is not None:
            snap = replace(snap, signalling=replace(snap.signalling, contacts=None))
        return snap

    async def checks(self, snapshot: Snapshot, *, only=None, skip=None) -> list[CheckResult]:
        self.checks_runs += 1
        return list(self.check_results)

    async def mi(self, method: str, params: Any = None, *, confirmed: bool = False) -> Any:
        from console.errors import RemoteError, WriteRefused

        self.mi_calls.append((method, params, confirmed))
        if method in self.write_methods and not confirmed:
            raise WriteRefused(f"{method} changes the platform; refused (read-only mode)")
        if method not in self.mi_results:
            raise RemoteError("Method not found", code=-32601)
        return self.mi_results[method]

    def mi_commands(self) -> list[str]:
        return list(self.commands)

    async def show_contacts(self, aor: str) -> tuple[Contact, ...]:
        """`aor_contacts[aor]`: a tuple, or an exception to raise (as ConsoleService.show_contacts)."""
        self.shown_aors.append(aor)
        found = self.aor_contacts.get(aor, ())
        if isinstance(found, BaseException):
            raise found
        return found

    def is_write_method(self, name: str) -> bool:
        return name in self.write_methods

    async def aclose(self) -> None:
        self.closed = True
