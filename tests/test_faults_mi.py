"""Fault matrix, OpenSIPS MI rows: every way mi_http can misbehave, seen through
`opsconsole snapshot`, `opsconsole diagnose` and a long-lived ConsoleService.

Each row proves: the failure is named in words an operator understands, the other
sources still report, nothing escapes as a traceback, the source recovers by itself
once the fault clears, and only read-only MI methods were ever sent.
"""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import pytest

from console.cli import main
from console.config import Config
from console.model import Status
from console.service import ConsoleService
from support.faults import (HugeHTTP, SlowHTTP, assert_clean_output, assert_mi_read_only, assert_ng_read_only, clean_home,
                            free_port, mi_server_at, ng_commands, release_hung, targets)
from support.mi_server import MIServer

pytestmark = pytest.mark.usefixtures("clean_home")

MI_CHECKS = "opensips.mi,opensips.load,opensips.shm"
HTML_400 = b"<html><body>Unable to parse URL!</body></html>"


@dataclass(frozen=True)
class MIFault:
    id: str
    reason: str  # what the operator must read in the source error / check summary
    fault: str = ""
    opts: dict[str, Any] = field(default_factory=dict)
    hint: str = ""  # what usually fixes it, as the error says


MI_FAULTS = [
    MIFault("refused", "connection refused", hint="is mi_http loaded"),
    MIFault("silent", "did not answer 'version' within 0.5 s", "silent", hint="one request at a time"),
    MIFault("http500", "HTTP 500", "http500", hint="buf_size"),
    MIFault("http400_html", "MI URL path is wrong", "http400_html", hint="check the mi_http root"),
    MIFault("html_page", "is not JSON", "html", hint="mi_http root"),
    MIFault("non_json", "is not JSON", "non_json", hint="mi_http root"),
    MIFault("truncated_json", "truncated JSON", "truncated", hint="cut short"),
    MIFault("jsonrpc_error", "Internal error (code -32000)", "jsonrpc_error"),
    MIFault("wrong_type", "no 'Server' string", "wrong_type"),
    MIFault("huge_50MB", "larger than", "huge", {"size": 50_000_000}, hint="ask for less"),
    MIFault("huge_50MB_unsized", "larger than", "huge", {"size": 50_000_000, "declare_length": False},
            hint="ask for less"),
    MIFault("drip", "did not answer 'version' within 0.5 s", "drip", {"delay": 0.2}),
]


class FaultyMI:
    """An MI endpoint showing `fault` until `clear()`; then a healthy OpenSIPS 3.4 at the same URL."""

    def __init__(self, fault: MIFault) -> None:
        self.fault = fault
        if fault.id == "refused":
            self.port = free_port()
            self.server: MIServer | None = None
            self.url = f"http://127.0.0.1:{self.port}/mi"
            return
        self.server = MIServer("3.4")
        self.url = self.server.url
        if fault.fault == "http400_html":
            self.server.set_response("version", HTML_400, status=400, content_type="text/html")
        else:
            self.server.set_fault(fault.fault, **fault.opts)

    def clear(self) -> None:
        if self.server is None:
            self.server = mi_server_at(self.port)
        else:
            self.server.responder.overrides.clear()
            release_hung(self.server)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(params=MI_FAULTS, ids=lambda f: f.id)
def faulty_mi(request):
    mi = FaultyMI(request.param)
    try:
        yield mi
    finally:
        mi.stop()


def test_snapshot_shows_mi_failed_and_the_other_sources(faulty_mi, rtpengine, capsys, ng_commands):
    code = main(["snapshot", "--json", *targets(faulty_mi.url, rtpengine.ng, rtpengine.cli)])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == 1
    opensips = data["sources"]["opensips"]
    assert opensips["ok"] is False
    assert faulty_mi.fault.reason in opensips["error"] and faulty_mi.fault.hint in opensips["error"]
    assert data["sources"]["rtpengine"]["ok"] is True and data["media"] is not None
    assert data["sources"]["host"]["ok"] is True
    assert_clean_output(out, err)
    assert_mi_read_only(faulty_mi.server)
    assert_ng_read_only(ng_commands)


def test_diagnose_fails_opensips_mi_with_reason_and_remedy(faulty_mi, rtpengine, capsys, ng_commands):
    code = main(["diagnose", "--json", "--only", MI_CHECKS, *targets(faulty_mi.url, rtpengine.ng, rtpengine.cli)])
    out, err = capsys.readouterr()
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert code == 2  # Nagios CRITICAL
    mi = checks["opensips.mi"]
    assert mi["status"] == "fail"
    assert faulty_mi.fault.reason in mi["summary"]
    assert "mi_http" in mi["remedy"]
    for dependent in ("opensips.load", "opensips.shm"):  # the cause is reported once, by opensips.mi
        assert checks[dependent]["status"] == "unknown" and "opensips.mi" in checks[dependent]["summary"]
    assert_clean_output(out, err)
    assert_mi_read_only(faulty_mi.server)


async def test_service_recovers_when_the_fault_clears(faulty_mi, rtpengine, ng_commands):
    config = Config(mi_url=faulty_mi.url, ng=rtpengine.ng, cli=rtpengine.cli, timeout=0.5)
    service = ConsoleService(config)
    try:
        broken = await service.snapshot()
        assert broken.sources["opensips"].ok is False
        assert faulty_mi.fault.reason in broken.sources["opensips"].error
        assert broken.sources["rtpengine"].ok and broken.media is not None

        faulty_mi.clear()
        healed = await service.snapshot()
        assert healed.sources["opensips"].ok, healed.sources["opensips"].error
        assert healed.signalling is not None and healed.signalling.overview.version
        results = {r.id: r for r in await service.checks(healed, only=["opensips.mi"])}
        assert results["opensips.mi"].status is Status.OK
    finally:
        await service.aclose()
    assert_mi_read_only(faulty_mi.server)
    assert_ng_read_only(ng_commands)


async def test_a_50MB_answer_is_cut_off_with_bounded_memory():
    """The peer streams 50 MB without Content-Length: we stop reading at the cap, holding at most that."""
    with HugeHTTP(size=50_000_000) as peer:
        service = ConsoleService(Config(mi_url=peer.url, ng=None, cli=None, timeout=2.0))
        tracemalloc.start()
        try:
            snap = await service.snapshot()
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await service.aclose()
        status = snap.sources["opensips"]
        assert status.ok is False and "MI response larger than" in status.error
        assert peak < 24_000_000, f"peak {peak} bytes while reading a capped reply"
        assert peer.sent < 50_000_000  # the console hung up long before the end


async def test_the_cap_is_tight_for_cheap_calls_and_roomy_for_table_walks(mi_server):
    """10 MB is absurd for `version` but plausible for a big ul_dump (100k contacts ~30 MB)."""
    from console.errors import ResponseTooLarge
    from opsconsole_opensips.client import HTTPMIClient

    client = HTTPMIClient(mi_server.url, timeout=2.0)
    try:
        mi_server.set_fault("huge", size=10_000_000)
        with pytest.raises(ResponseTooLarge):
            await client.call("version")
        assert len(await client.call("ul_dump")) == 10_000_000
    finally:
        await client.aclose()


# Once the version is known the first failing call is a cheap one (uptime, get_statistics...).
LATER_REASONS = {
    "refused": "connection refused",
    "silent": "did not answer",
    "http500": "HTTP 500",
    "html_page": "is not JSON",
    "non_json": "is not JSON",
    "truncated_json": "truncated JSON",
    "jsonrpc_error": "Internal error (code -32000)",
    "wrong_type": "instead of objects",
    "drip": "did not answer",
}


@pytest.mark.parametrize("fault", [f for f in MI_FAULTS if f.id in LATER_REASONS], ids=lambda f: f.id)
async def test_a_fault_after_healthy_polls_fails_the_source_not_just_its_commands(fault, ng_commands):
    """After detection every call is "optional"; if none of them answers, the source must still FAIL."""
    port = free_port()
    server = mi_server_at(port)
    service = ConsoleService(Config(mi_url=server.url, ng=None, cli=None, timeout=0.5))
    try:
        assert (await service.snapshot()).sources["opensips"].ok
        if fault.id == "refused":
            server.stop()
        else:
            server.set_fault(fault.fault, **fault.opts)
        broken = await service.snapshot()
        assert broken.sources["opensips"].ok is False
        assert LATER_REASONS[fault.id] in broken.sources["opensips"].error
        if fault.id == "refused":
            server = mi_server_at(port)
        else:
            release_hung(server)
        assert (await service.snapshot()).sources["opensips"].ok
    finally:
        await service.aclose()
        server.stop()
    assert_mi_read_only(server)


FIFO_FAULTS = {  # mi_fifo has no HTTP status: the rows that exist on a FIFO
    "silent": "did not answer 'version' on the FIFO within 0.5 s",
    "non_json": "is not JSON",
    "truncated": "truncated JSON",
    "jsonrpc_error": "Internal error (code -32000)",
    "wrong_type": "no 'Server' string",
    "huge": "larger than",
    "drip": "did not answer 'version' on the FIFO within 0.5 s",
}


@pytest.mark.parametrize("fault", sorted(FIFO_FAULTS))
async def test_mi_fifo_fault_is_named_and_the_source_recovers(fault, mi_fifo_server):
    mi_fifo_server.set_fault(fault, **({"size": 50_000_000} if fault == "huge" else {}))
    config = Config(mi_url=None, mi_fifo=mi_fifo_server.fifo_path, mi_reply_dir=mi_fifo_server.reply_dir,
                    ng=None, cli=None, timeout=0.5)
    service = ConsoleService(config)
    try:
        broken = (await service.snapshot()).sources["opensips"]
        assert broken.ok is False
        assert FIFO_FAULTS[fault] in broken.error and mi_fifo_server.fifo_path in broken.error
        assert "mi_http" not in broken.error  # no HTTP advice for a FIFO
        release_hung(mi_fifo_server)
        healed = await service.snapshot()
        assert healed.sources["opensips"].ok, healed.sources["opensips"].error
        assert healed.signalling.contacts
    finally:
        await service.aclose()
    assert_mi_read_only(mi_fifo_server)


@pytest.mark.parametrize("fault", [f for f in MI_FAULTS if f.id in ("refused", "silent", "http500", "huge_50MB")],
                         ids=lambda f: f.id)
def test_snapshot_text_names_the_failed_source_and_still_prints_the_others(fault, rtpengine, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    mi = FaultyMI(fault)
    try:
        code = main(["snapshot", *targets(mi.url, rtpengine.ng, rtpengine.cli)])
    finally:
        mi.stop()
    out, err = capsys.readouterr()
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ") and len(line.split()) > 3}
    assert code == 1
    assert " FAIL " in rows["opensips"] and fault.reason in rows["opensips"]
    assert " OK " in rows["rtpengine"] and " OK " in rows["host"]
    assert "RTPengine " in out  # the media section is still printed
    assert_clean_output(out, err)


async def test_a_hung_table_walk_is_cut_at_the_collection_deadline(mi_server):
    """Only ul_dump drips: the source's overall deadline (3 x timeout + 1 s, widened by the dump's
    own deadline so a slow but healthy dump is not cut) still holds, and says so."""
    from opsconsole_opensips.live import dump_timeout

    mi_server.set_fault("drip", methods=["ul_dump"])
    service = ConsoleService(Config(mi_url=mi_server.url, ng=None, cli=None, timeout=0.2))
    deadline = 0.2 * 3 + 1 + dump_timeout(service.config.full_sync_max, 0.2)
    try:
        broken = (await service.snapshot()).sources["opensips"]
        assert broken.ok is False and f"no answer within {deadline:g} s" in broken.error
        assert broken.elapsed_ms < (deadline + 1.5) * 1000
        release_hung(mi_server)
        assert (await service.snapshot()).sources["opensips"].ok
    finally:
        await service.aclose()
    assert_mi_read_only(mi_server)


async def test_a_heavy_call_gets_its_own_deadline_not_the_cheap_one():
    """The HTTP client's default timeout must not cut ul_dump at the cheap deadline (and then
    blame the heavy one in its message); a cheap call still times out at its own."""
    from console.errors import Timeout
    from opsconsole_opensips.client import HTTPMIClient

    with SlowHTTP(delay=0.4) as peer:
        client = HTTPMIClient(peer.url, timeout=0.2, heavy_timeout=5)
        try:
            assert await client.call("ul_dump") == {}
            with pytest.raises(Timeout, match="'version' within 0.2 s"):
                await client.call("version")
        finally:
            await client.aclose()


def test_a_hostile_error_text_is_printed_literally_by_snapshot(mi_server, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "400")
    mi_server.set_fault("jsonrpc_error", message="[bold red]pwned[/] \x1b[2J")
    assert main(["snapshot", *targets(mi_server.url, None, None)]) == 1
    out, err = capsys.readouterr()
    assert "[bold red]pwned[/]" in out and "\x1b" not in out
    assert_clean_output(out, err)
