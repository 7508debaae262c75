"""opensips.* checks on snapshots built from the real captures."""

import time

import pytest

from console.config import Config, Thresholds
from console.model import Connection, Contact, SignallingOverview, SignallingState, Snapshot, SourceStatus, Status, replace
from console.plugins import CheckContext, CollectOptions
from opsconsole_opensips.checks import CHECKS, check_load, check_mi, check_shm, check_ws, contact_address
from opsconsole_opensips.source import OpenSIPSSource

CONFIG = Config(thresholds=Thresholds(load_warn=20, load_fail=40, shm_warn=70, shm_fail=85))


def ctx(sig: SignallingState | None, error: str = "", configured: bool = True) -> CheckContext:
    sources = {"opensips": SourceStatus("opensips", ok=sig is not None, error=error)} if configured else {}
    return CheckContext(Snapshot(collected_at=time.time(), sources=sources, signalling=sig), CONFIG, time.time())


@pytest.fixture
async def lab_state(mi_server) -> SignallingState:
    source = OpenSIPSSource(Config(mi_url=mi_server.url, timeout=1.0))
    try:
        return await source.collect(CollectOptions())
    finally:
        await source.aclose()


def assert_well_formed(result, check_id):
    assert result.id == check_id and result.summary and "\n" not in result.summary
    if result.status not in (Status.OK, Status.SKIP):
        assert result.remedy


async def test_all_ok_on_the_lab(lab_state):
    for spec in CHECKS:
        result = await spec(ctx(lab_state))
        assert_well_formed(result, spec.id)
        # the captured lab has no tracer module: the trace check is informational, SKIP there
        assert result.status == (Status.SKIP if spec.id == "opensips.trace_ready" else Status.OK), result.summary
    mi = check_mi(ctx(lab_state))
    assert "3.4.18" in mi.summary and mi.evidence["uptime_s"] == 27


def test_source_failed():
    mi = check_mi(ctx(None, "OpenSIPS MI not reachable at http://x (connection refused)"))
    assert mi.status == Status.FAIL and "connection refused" in mi.summary and mi.remedy
    for func, cid in ((check_load, "opensips.load"), (check_shm, "opensips.shm"), (check_ws, "opensips.ws")):
        result = func(ctx(None, "boom"))
        # The cause is reported once, by opensips.mi; the others point there and keep it as evidence.
        assert result.status == Status.UNKNOWN and result.id == cid
        assert "opensips.mi" in result.summary and result.evidence["error"] == "boom"


def test_not_configured_skips():
    assert all(spec.run(ctx(None, configured=False)).status == Status.SKIP for spec in CHECKS)


@pytest.mark.parametrize("load,status", [(0.0, Status.OK), (19.9, Status.OK), (20, Status.WARN), (39, Status.WARN),
                                         (40, Status.FAIL), (100, Status.FAIL), (None, Status.UNKNOWN)])
def test_load_thresholds(load, status):
    sig = SignallingState(overview=SignallingOverview(load=load))
    result = check_load(ctx(sig))
    assert result.status == status and result.evidence["load"] == load
    assert_well_formed(result, "opensips.load")


@pytest.mark.parametrize("used,status", [(10, Status.OK), (69, Status.OK), (70, Status.WARN), (85, Status.FAIL),
                                         (None, Status.UNKNOWN)])
def test_shm_thresholds(used, status):
    sig = SignallingState(overview=SignallingOverview(shm_used=used, shm_total=100 if used is not None else None))
    result = check_shm(ctx(sig))
    assert result.status == status
    assert_well_formed(result, "opensips.shm")


def test_ws_skip_without_ws(lab_state):
    plain = replace(lab_state, contacts=tuple(c for c in lab_state.contacts if not c.ws),
                    dialogs=tuple(d for d in lab_state.dialogs if "ws" not in (d.caller_transport, d.callee_transport)))
    assert check_ws(ctx(plain)).status == Status.SKIP


def test_ws_stale_registrations(lab_state):
    ws_contacts = [c for c in lab_state.contacts if c.ws]
    dead = {contact_address(c) for c in ws_contacts[:3]}
    live = tuple(c for c in lab_state.connections if c.remote not in dead)
    result = check_ws(ctx(replace(lab_state, connections=live)))
    assert result.status == Status.WARN and "3 stale WS registrations" in result.summary and "2554" in result.remedy
    assert {s["address"] for s in result.evidence["stale"]} == dead
    assert_well_formed(result, "opensips.ws")


def test_ws_received_wins_over_contact_uri():
    contact = Contact(aor="a", contact="sip:x@10.0.0.1:1;transport=ws", received="sip:127.0.0.1:40000", ws=True,
                      transport="ws")
    assert contact_address(contact) == "127.0.0.1:40000"
    conn = Connection(id=1, type="ws", remote="127.0.0.1:40000", local="127.0.0.1:8080")
    sig = SignallingState(contacts=(contact,), connections=(conn,), listeners=("ws:127.0.0.1:8080",),
                          commands=("ws_trace",))
    assert check_ws(ctx(sig)).status == Status.OK


def test_ws_missing_listener_and_proto_ws(lab_state):
    no_listener = replace(lab_state, listeners=("udp:127.0.0.1:5060",), connections=())
    assert check_ws(ctx(no_listener)).status == Status.FAIL
    no_proto = replace(lab_state, commands=("ul_dump", "version"), modules=())
    result = check_ws(ctx(no_proto))
    assert result.status == Status.WARN and "proto_ws" in result.summary


def test_ws_unknown_without_connection_list(lab_state):
    result = check_ws(ctx(replace(lab_state, connections=None)))
    assert result.status == Status.UNKNOWN and result.remedy
