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
from support.faults import (HugeHTTP, assert_clean_output, assert_mi_read_only, assert_ng_read_only, clean_home,
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


MI_FAULTS = [
    MIFault("refused", "connection refused"),
    MIFault("silent", "did not answer 'version' within 0.5 s", "silent"),
    MIFault("http500", "HTTP 500", "http500"),
    MIFault("http400_html", "MI URL path is wrong", "http400_html"),
    MIFault("html_page", "is not JSON", "html"),
    MIFault("non_json", "is not JSON", "non_json"),
    MIFault("truncated_json", "truncated JSON", "truncated"),
    MIFault("jsonrpc_error", "Internal error (code -32000)", "jsonrpc_error"),
    MIFault("wrong_type", "no 'Server' string", "wrong_type"),
    MIFault("huge_50MB", "larger than", "huge", {"size": 50_000_000}),
    MIFault("huge_50MB_unsized", "larger than", "huge", {"size": 50_000_000, "declare_length": False}),
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
    assert faulty_mi.fault.reason in opensips["error"]
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
