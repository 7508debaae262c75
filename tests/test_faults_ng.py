"""Fault matrix, RTPengine rows: the ng (UDP) and CLI (TCP) control channels misbehaving.

A healthy OpenSIPS MI fake runs beside the faulty channel, so every row also shows
that the other sources keep reporting.  Recovery: the same ConsoleService collects
again after the peer is healthy (ng: same address; CLI: same port).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from console.cli import main
from console.config import Config
from console.model import Status
from console.service import ConsoleService
from opsconsole_rtpengine.codec import LEGACY_HINT
from support.faults import (CliResponder, NgResponder, assert_clean_output, assert_mi_read_only,
                            assert_ng_read_only, clean_home, free_port, ng_commands, targets)

pytestmark = pytest.mark.usefixtures("clean_home")


@dataclass(frozen=True)
class NgFault:
    id: str
    mode: str
    reason: str


NG_FAULTS = [
    NgFault("no_answer", "silent", "no ng reply from rtpengine"),
    NgFault("legacy_E8", "proxy", LEGACY_HINT),  # relayed to a real daemon's --listen-udp
    NgFault("foreign_cookie", "foreign_cookie", "no ng reply from rtpengine"),
    NgFault("truncated_bencode", "truncated", "not valid bencode"),
    NgFault("error_result", "error", "rtpengine rejected ng 'ping': Unrecognized command"),
]


class FaultyNg:
    """An ng peer showing `fault` until `clear()`, then healthy at the same address."""

    def __init__(self, fault: NgFault, start_rtpengine) -> None:
        self.fault = fault
        self.healthy_upstream = None
        upstream = None
        if fault.mode == "proxy":  # a real daemon: its -u listener now, its ng listener once fixed
            daemon = start_rtpengine(legacy=True)
            upstream, self.healthy_upstream = daemon.legacy, daemon.ng
        self.peer = NgResponder(fault.mode, upstream=upstream).start()
        self.address = self.peer.address

    @property
    def commands(self) -> list[str]:
        return self.peer.commands

    def clear(self) -> None:
        if self.healthy_upstream:
            self.peer.upstream = self.healthy_upstream
        else:
            self.peer.mode = "normal"


@pytest.fixture(params=NG_FAULTS, ids=lambda f: f.id)
def faulty_ng(request):
    starter = request.getfixturevalue("start_rtpengine") if request.param.mode == "proxy" else None
    ng = FaultyNg(request.param, starter)
    try:
        yield ng
    finally:
        ng.peer.stop()


def test_snapshot_shows_rtpengine_failed_and_the_other_sources(faulty_ng, mi_server, capsys, ng_commands):
    code = main(["snapshot", "--json", *targets(mi_server.url, faulty_ng.address, None)])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == 1
    media = data["sources"]["rtpengine"]
    assert media["ok"] is False
    assert faulty_ng.fault.reason in media["error"]
    assert data["sources"]["opensips"]["ok"] is True and data["overview"]
    assert data["sources"]["host"]["ok"] is True
    assert_clean_output(out, err)
    assert_mi_read_only(mi_server)
    assert_ng_read_only(ng_commands)
    assert_ng_read_only(faulty_ng.commands)


def test_diagnose_fails_rtpengine_ng_with_reason_and_remedy(faulty_ng, mi_server, capsys, ng_commands):
    code = main(["diagnose", "--json", "--only", "rtpengine.ng", *targets(mi_server.url, faulty_ng.address, None)])
    out, err = capsys.readouterr()
    (check,) = json.loads(out)["checks"]
    assert code == 2
    assert check["id"] == "rtpengine.ng" and check["status"] == "fail"
    assert faulty_ng.fault.reason in check["summary"] + check["evidence"].get("error", "")
    assert "--listen-ng" in check["remedy"]
    assert_clean_output(out, err)
    assert_ng_read_only(ng_commands)


async def test_ng_recovers_when_the_fault_clears(faulty_ng, ng_commands):
    service = ConsoleService(Config(mi_url=None, ng=faulty_ng.address, cli=None, timeout=0.5))
    try:
        broken = await service.snapshot()
        assert broken.sources["rtpengine"].ok is False
        assert faulty_ng.fault.reason in broken.sources["rtpengine"].error
        faulty_ng.clear()
        healed = await service.snapshot()
        assert healed.sources["rtpengine"].ok, healed.sources["rtpengine"].error
        assert healed.media.ng_ok is True
    finally:
        await service.aclose()
    assert_ng_read_only(ng_commands)


async def test_a_reply_from_another_cookie_is_never_taken_as_ours(ng_commands):
    """The foreign reply says `pong`; only the real one, under our cookie, may count."""
    from opsconsole_rtpengine.ng import NgClient

    with NgResponder("foreign_then_real") as peer:
        client = NgClient(*peer.address, timeout=0.5)
        try:
            stats = await client.statistics()  # a `pong` taken for it would have no statistics
            assert "currentstatistics" in stats
            assert client.ignored_replies >= 1
        finally:
            await client.aclose()


def test_a_reply_larger_than_1500_bytes_is_accepted(mi_server, capsys, ng_commands):
    """rtpengine#1856: `list` and `statistics` replies outgrow one Ethernet MTU; they must be read whole."""
    with NgResponder("big_list", list_size=100) as peer:
        big = peer.payload("list")
        assert len(big) > 1500 and len(peer.payload("statistics")) > 1500
        code = main(["snapshot", "--json", *targets(mi_server.url, peer.address, None)])
        out, err = capsys.readouterr()
        data = json.loads(out)
        assert data["sources"]["rtpengine"]["ok"] is True
        assert len(data["media"]["sessions"]) == 100
        assert code == 0
        assert_clean_output(out, err)
        assert_ng_read_only(peer.commands)


# --------------------------------------------------------------------------- rtpengine CLI


@dataclass(frozen=True)
class CliFault:
    id: str
    mode: str
    reason: str


CLI_FAULTS = [
    CliFault("refused", "refused", "connection refused"),
    CliFault("silent", "silent", "did not finish answering"),
    CliFault("unknown_command", "unknown", "rejected 'list"),
]


class FaultyCli:
    """An rtpengine CLI showing `fault` until `clear()`, then healthy on the same port."""

    def __init__(self, fault: CliFault) -> None:
        self.fault = fault
        self.peer = None if fault.mode == "refused" else CliResponder(fault.mode).start()
        self.address = self.peer.address if self.peer else ("127.0.0.1", free_port())

    def clear(self) -> None:
        if self.peer is None:
            self.peer = CliResponder("normal", port=self.address[1]).start()
        else:
            self.peer.mode = "normal"


@pytest.fixture(params=CLI_FAULTS, ids=lambda f: f.id)
def faulty_cli(request):
    cli = FaultyCli(request.param)
    try:
        yield cli
    finally:
        if cli.peer is not None:
            cli.peer.stop()


def test_snapshot_shows_rtpengine_cli_failure(faulty_cli, mi_server, capsys, ng_commands):
    code = main(["snapshot", "--json", *targets(mi_server.url, None, faulty_cli.address)])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == 1
    media = data["sources"]["rtpengine"]
    assert media["ok"] is False
    assert "cli: " in media["error"] and faulty_cli.fault.reason in media["error"]
    assert data["sources"]["opensips"]["ok"] is True and data["sources"]["host"]["ok"] is True
    assert_clean_output(out, err)


def test_diagnose_fails_rtpengine_cli_with_reason_and_remedy(faulty_cli, mi_server, capsys):
    code = main(["diagnose", "--json", "--only", "rtpengine.cli",
                 *targets(mi_server.url, None, faulty_cli.address)])
    out, err = capsys.readouterr()
    (check,) = json.loads(out)["checks"]
    assert code == 2
    assert check["status"] == "fail" and faulty_cli.fault.reason in check["evidence"]["error"]
    assert "--listen-cli" in check["remedy"]
    assert_clean_output(out, err)


async def test_cli_recovers_when_the_fault_clears(faulty_cli):
    service = ConsoleService(Config(mi_url=None, ng=None, cli=faulty_cli.address, timeout=0.5))
    try:
        broken = await service.snapshot()
        assert broken.sources["rtpengine"].ok is False
        assert faulty_cli.fault.reason in broken.sources["rtpengine"].error
        faulty_cli.clear()
        healed = await service.snapshot()
        assert healed.sources["rtpengine"].ok, healed.sources["rtpengine"].error
        assert healed.media.cli_ok is True and healed.media.sessions
        results = await service.checks(healed, only=["rtpengine.cli"])
        assert results[0].status is Status.OK
    finally:
        await service.aclose()
    assert faulty_cli.peer.commands and all(c.startswith("list ") for c in faulty_cli.peer.commands)


def test_pointing_straight_at_a_real_listen_udp_listener_names_it(start_rtpengine, mi_server, capsys, ng_commands):
    daemon = start_rtpengine(legacy=True)
    code = main(["diagnose", "--json", "--only", "rtpengine.ng", *targets(mi_server.url, daemon.legacy, None)])
    out, err = capsys.readouterr()
    (check,) = json.loads(out)["checks"]
    assert code == 2 and check["status"] == "fail"
    assert "-u/--listen-udp" in check["summary"] and "--listen-ng" in check["remedy"]
    assert_clean_output(out, err)
    assert_ng_read_only(ng_commands)
