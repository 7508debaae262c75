"""TraceSession and HEPListener on loopback (ports from the OS) against a scripted MI: prerequisites, the
trace_start parameters, HEP over UDP and TCP, pcap, audit records, leftovers of a crash, always stopping."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess

import pytest

from console.config import Config
from console.errors import ConnectionRefused, RemoteError
from console.service import AuditEntry
from opsconsole_opensips.hep import FAMILY_IPV4, PROTO_UDP, TYPE_SIP, HEPPacket, encode
from opsconsole_opensips.trace import (
    CONFIG_LINES, HEPListener, TraceNotReady, TraceOptions, TraceSession, leftover, location_note, readiness,
)

PS_34 = {"Processes": [{"ID": 0, "PID": 1, "Type": "attendant"},
                       {"ID": 5, "PID": 6, "Type": "SIP receiver udp:127.0.0.1:5060"},
                       {"ID": 7, "PID": 8, "Type": "SIP receiver hep_udp:127.0.0.1:9060"}]}
WHICH_34 = ["version", "which", "ps", "trace", "trace_start", "trace_stop", "ul_show_contact", "dlg_list"]


class FakeMI:
    """Answers like OpenSIPS 3.4 with the tracer (captured shapes from the real build); records every call."""

    def __init__(self, which=WHICH_34, ps=PS_34, traces=(), refuse_start=None, stop_error=None) -> None:
        self.which, self.ps, self.refuse_start, self.stop_error = list(which), ps, refuse_start, stop_error
        self.traces = {row["name"]: row for row in traces}
        self.calls: list[tuple[str, object]] = []

    async def __call__(self, method: str, params=None):
        self.calls.append((method, params))
        if method == "which":
            return self.which
        if method == "ps":
            return self.ps
        if method == "trace":
            return {"global": "on", "trace destinations": list(self.traces.values())}
        if method == "trace_start":
            if self.refuse_start:
                raise self.refuse_start
            self.traces[params["id"]] = {"name": params["id"], "type": "HEP", "state": "dynamic",
                                         "uri": params["uri"].split(":", 1)[1].split(";")[0]}
            return "OK"
        if method == "trace_stop":
            if self.stop_error:
                raise self.stop_error
            if self.traces.pop(params["id"], None) is None:
                raise RemoteError("Bad parameter value", code=400)
            return "OK"
        raise RemoteError("Method not found", code=-32601)

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


def sip_packet(method: str = "INVITE", callid: str = "c1@h", port: int = 5070) -> HEPPacket:
    payload = (f"{method} sip:1001@h SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK1\r\n"
               f"From: <sip:1000@h>;tag=a\r\nTo: <sip:1001@h>\r\nCall-ID: {callid}\r\nCSeq: 1 {method}\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    return HEPPacket(family=FAMILY_IPV4, proto=PROTO_UDP, src="127.0.0.1", dst="127.0.0.1", src_port=port,
                     dst_port=5060, ts_sec=1_760_000_000, ts_usec=5, proto_type=TYPE_SIP, payload=payload)


def audit_of(tmp_path):
    config = Config(audit_log=str(tmp_path / "audit.log"), mi_url="http://127.0.0.1:1/mi")
    return lambda method, params: AuditEntry(config, method, params)


def audit_lines(tmp_path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def next_lines(session: TraceSession, count: int) -> list:
    lines = []
    async for line in session.lines():
        lines.append(line)
        if len(lines) == count:
            return lines


# ------------------------------------------------------------------------------------------ pure parts


def test_readiness_from_which_and_ps():
    ready = readiness(WHICH_34, PS_34)
    assert ready.ready and ready.transport == "udp" and ready.hep_udp == ("127.0.0.1:9060",)
    assert readiness(["tracer:start", "core:which"], {"Processes": []}).transport == "tcp"  # hep_tcp only
    assert readiness(["trace_start"], None).transport == "udp"  # ps not known: the usual setup
    missing = readiness(["version", "which"], PS_34)
    assert not missing.ready and "tracer module is not loaded" in missing.problem()
    assert all(line in missing.remedy() for line in CONFIG_LINES)


def test_leftover_is_our_id_of_a_dead_pid_sending_to_this_host():
    def alive(pid):
        return pid == 42

    def local(host):
        return host == "127.0.0.1"

    assert leftover("opsconsole-41-ab12cd34", "127.0.0.1:40000", alive=alive, local=local)
    assert not leftover("opsconsole-42-ab12cd34", "127.0.0.1:40000", alive=alive, local=local)  # still running
    assert not leftover("opsconsole-41-ab12cd34", "10.9.9.9:40000", alive=alive, local=local)  # another host's
    assert not leftover("homer", "127.0.0.1:9060", alive=alive, local=local)  # not ours
    assert not leftover("opsconsole-x", "127.0.0.1:40000", alive=alive, local=local)


@pytest.mark.parametrize("options, words", [
    (TraceOptions(callee="a b"), "--callee"), (TraceOptions(caller="x;y"), "--caller"),
    (TraceOptions(ip="not-an-ip"), "--ip"), (TraceOptions(scope="all"), "--scope"),
])
def test_options_the_tracer_cannot_take_are_refused(options, words):
    with pytest.raises(ValueError, match=words):
        options.validate()


def test_filters_are_the_tracers_own():
    assert TraceOptions(caller="1000", callee="1001", ip="10.0.0.5").filters() == [
        "caller=1000", "callee=1001", "ip=10.0.0.5"]


# ------------------------------------------------------------------------------------------ the session


async def test_start_sends_the_tracers_named_params_and_stop_always_follows(tmp_path):
    mi = FakeMI()
    session = TraceSession(mi, TraceOptions(callee="1001", scope="message"), audit=audit_of(tmp_path))
    async with session:
        assert session.trace_id.startswith("opsconsole-") and session.trace_id in mi.traces
        start = next(params for method, params in mi.calls if method == "trace_start")
        assert start == {"id": session.trace_id, "uri": f"hep:127.0.0.1:{session.listener.port};transport=udp;version=3",
                         "filter": ["callee=1001"], "scope": "m", "type": "sip"}
    assert mi.methods() == ["which", "ps", "trace", "trace_start", "trace_stop"]
    assert mi.traces == {}
    assert [(r["method"], r["outcome"]) for r in audit_lines(tmp_path)] == [("trace_start", "ok"), ("trace_stop", "ok")]
    assert audit_lines(tmp_path)[0]["params"]["id"] == session.trace_id


async def test_the_trace_is_stopped_when_the_reader_is_cancelled(tmp_path):
    mi = FakeMI()
    session = TraceSession(mi, audit=audit_of(tmp_path))

    async def run():
        async with session:
            await asyncio.sleep(30)

    task = asyncio.create_task(run())
    while not session.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert mi.traces == {} and mi.methods()[-1] == "trace_stop"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_hep_over_udp_and_tcp_becomes_ladder_lines(tmp_path, transport):
    ps = PS_34 if transport == "udp" else {"Processes": []}
    session = TraceSession(FakeMI(ps=ps), audit=audit_of(tmp_path))
    async with session:
        assert session.uri.endswith(f";transport={transport};version=3")
        frames = [encode(sip_packet("INVITE")), encode(sip_packet("OPTIONS", callid="c2@h")), b"HEP3junk",
                  encode(sip_packet("ACK"))]
        reader = asyncio.create_task(next_lines(session, 3))
        if transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for frame in frames:
                    sock.sendto(frame, ("127.0.0.1", session.listener.port))
        else:
            _, writer = await asyncio.open_connection("127.0.0.1", session.listener.port)
            writer.write(b"".join(frames[:2]) + frames[3])  # one stream, frames back to back
            await writer.drain()
            writer.close()
        lines = await asyncio.wait_for(reader, 10)
    assert [(line.message.label, line.message.call_id) for line in lines] == [
        ("INVITE", "c1@h"), ("OPTIONS", "c2@h"), ("ACK", "c1@h")]
    assert lines[2].delta == 0 and lines[1].first_of_call
    assert set(session.ladder.calls) == {"c1@h", "c2@h"}
    if transport == "udp":
        assert session.listener.bad_frames == 1 and "refused" in session.listener_note()


async def test_not_ready_says_what_to_add_and_starts_nothing(tmp_path):
    mi = FakeMI(which=["version", "which", "ps"])
    with pytest.raises(TraceNotReady) as refused:
        async with TraceSession(mi, audit=audit_of(tmp_path)):
            pass
    assert 'loadmodule "tracer.so"' in str(refused.value) and "socket=hep_udp:" in str(refused.value)
    assert "trace_start" not in mi.methods() and audit_lines(tmp_path) == []


async def test_a_refused_trace_start_is_audited_as_an_error(tmp_path):
    mi = FakeMI(refuse_start=RemoteError("Bad parameter value", code=500, data="dynamic trace id already used"))
    with pytest.raises(TraceNotReady, match="refused trace_start"):
        async with TraceSession(mi, audit=audit_of(tmp_path)):
            pass
    assert [(r["method"], r["outcome"]) for r in audit_lines(tmp_path)] == [("trace_start", "error")]
    assert "trace_stop" not in mi.methods()


async def test_a_stop_that_fails_is_kept_for_the_caller(tmp_path):
    mi = FakeMI(stop_error=ConnectionRefused("MI down"))
    session = TraceSession(mi, audit=audit_of(tmp_path))
    async with session:
        pass
    assert "MI down" in session.stop_error
    assert [(r["method"], r["outcome"]) for r in audit_lines(tmp_path)] == [("trace_start", "ok"), ("trace_stop", "error")]
    await session.stop()  # once only
    assert mi.methods().count("trace_stop") == 1


async def test_leftovers_of_a_crash_are_removed_others_are_not(tmp_path):
    dead, living = "opsconsole-999999-00aa11bb", "opsconsole-1-00aa11bb"
    rows = [{"name": dead, "type": "HEP", "uri": "127.0.0.1:40000", "state": "dynamic"},
            {"name": living, "type": "HEP", "uri": "127.0.0.1:40001", "state": "dynamic"},
            {"name": "homer", "type": "HEP", "uri": "127.0.0.1:9060", "state": "dynamic"}]
    mi = FakeMI(traces=rows)
    session = TraceSession(mi, audit=audit_of(tmp_path), alive=lambda pid: pid == 1)
    async with session:
        assert session.removed_leftovers == [dead]
        assert set(mi.traces) == {living, "homer", session.trace_id}
    assert [(r["method"], r["params"]["id"]) for r in audit_lines(tmp_path)][0] == ("trace_stop", dead)


async def test_the_pcap_holds_what_arrived(tmp_path):
    pcap = tmp_path / "t.pcap"
    session = TraceSession(FakeMI(), audit=audit_of(tmp_path))
    with open(pcap, "wb") as file:
        async with session:
            session.attach_pcap(file)
            reader = asyncio.create_task(next_lines(session, 2))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for method in ("INVITE", "BYE"):
                    sock.sendto(encode(sip_packet(method)), ("127.0.0.1", session.listener.port))
            await asyncio.wait_for(reader, 10)
    again = tmp_path / "again.pcap"
    with open(again, "wb") as file:
        assert session.write_pcap(file) == 2
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    for path in (pcap, again):
        shark = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Method"],
                               capture_output=True, text=True, timeout=30)
        assert shark.stdout.split() == ["INVITE", "BYE"], shark.stderr


async def test_listener_port_from_the_os_for_udp_and_tcp():
    listener = HEPListener()
    await listener.start()
    try:
        assert listener.port > 0
        with pytest.raises(OSError):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", listener.port))
    finally:
        await listener.aclose()


# ------------------------------------------------------------------------------------------ location note


async def test_location_note_asks_ul_show_contact():
    async def not_registered(method, params):
        raise RemoteError("AOR not found", code=404)

    assert "no contact registered right now" in await location_note(not_registered, "1001", "h")

    asked = []

    async def needs_domain(method, params):  # OpenSIPS 4.0: the AoR carries the domain
        asked.append(params["aor"])
        if "@" not in params["aor"]:
            raise RemoteError("Domain missing in AOR", code=400)
        return {"AOR": params["aor"], "Contacts": [{"Contact": "sip:1001@127.0.0.1:5070"}]}

    note = await location_note(needs_domain, "1001", "example.org")
    assert asked == ["1001", "1001@example.org"]
    assert "1001@example.org is registered now with 1 contact(s) (sip:1001@127.0.0.1:5070)" in note


# ------------------------------------------------------------------------------------------ the check


def test_trace_ready_check_is_ok_with_the_tracer_and_skips_without_never_fails():
    import time as _time

    from console.model import SignallingOverview, SignallingState, Snapshot, SourceStatus, Status
    from console.plugins import CheckContext
    from opsconsole_opensips.checks import CHECKS, check_trace_ready

    def run(commands, ok=True):
        sig = SignallingState(target="t", overview=SignallingOverview(), commands=tuple(commands)) if ok else None
        snapshot = Snapshot(collected_at=_time.time(), sources={"opensips": SourceStatus("opensips", ok=ok, error="x")},
                            signalling=sig)
        return check_trace_ready(CheckContext(snapshot, Config(), _time.time()))

    assert "opensips.trace_ready" in {spec.id for spec in CHECKS}
    assert run(WHICH_34).status == Status.OK
    assert run(["core:which", "tracer:start", "tracer:stop"]).status == Status.OK
    without = run(["version", "which"])
    assert without.status == Status.SKIP and 'loadmodule "tracer.so"' in without.remedy
    assert run([]).status == Status.SKIP
    assert run([], ok=False).status == Status.UNKNOWN  # no data is not a finding (opensips.mi says why)


async def test_a_trace_start_without_answer_is_still_stopped(tmp_path):
    from console.errors import Timeout

    class SlowMI(FakeMI):
        async def __call__(self, method, params=None):
            if method == "trace_start":  # OpenSIPS took it, the answer never came
                await super().__call__(method, params)
                raise Timeout("MI did not answer in time")
            return await super().__call__(method, params)

    mi = SlowMI()
    session = TraceSession(mi, audit=audit_of(tmp_path))
    with pytest.raises(Timeout):
        await session.start()
    await session.stop()
    assert mi.traces == {} and session.stop_error == ""
    assert [(r["method"], r["outcome"]) for r in audit_lines(tmp_path)] == [("trace_start", "error"), ("trace_stop", "ok")]

    plain = FakeMI()

    async def lost(method, params=None):  # the request itself was lost: OpenSIPS has no such trace
        if method == "trace_start":
            raise Timeout("MI did not answer in time")
        return await plain(method, params)

    quiet = TraceSession(lost, audit=audit_of(tmp_path))
    with pytest.raises(Timeout):
        await quiet.start()
    await quiet.stop()
    assert quiet.stop_error == ""  # 400 for a trace that never began is no error


async def test_scope_dialog_needs_the_dialog_module(tmp_path):
    which = [name for name in WHICH_34 if name != "dlg_list"]  # the dialog module is not loaded
    with pytest.raises(TraceNotReady, match="--scope message"):
        await TraceSession(FakeMI(which=which), audit=audit_of(tmp_path)).start()
    session = TraceSession(FakeMI(which=which), TraceOptions(scope="message"), audit=audit_of(tmp_path))
    async with session:
        assert session.started
    async with TraceSession(FakeMI(which=which + ["dialog:list"]), audit=audit_of(tmp_path)) as with_dialog:
        assert with_dialog.started


async def test_dialog_note_joins_the_call_with_opensips_dialog():
    from opsconsole_opensips.trace import dialog_note

    async def confirmed(method, params):
        assert (method, params) == ("dlg_list", {"callid": "c1@h"})
        return {"Dialog": {"state": 4, "datestart": "2026-11-26 05:28:16", "callid": "c1@h"}}

    async def gone(method, params):
        raise RemoteError("No such dialog", code=404)

    assert await dialog_note(confirmed, "c1@h") == (
        "dialog in OpenSIPS: state 4, confirmed (answered and ACKed) since 2026-11-26 05:28:16")
    assert "none now" in await dialog_note(gone, "c1@h")


class HeadOnlyMI(FakeMI):
    """OpenSIPS 3.4/4.0 as tried: the newest dynamic trace first in `trace`, and trace_stop answers OK for
    any of them but removes only the first of the list."""

    async def __call__(self, method: str, params=None):
        if method == "trace_start":
            result = await super().__call__(method, params)
            self.traces = {params["id"]: self.traces.pop(params["id"]), **self.traces}  # newest first
            return result
        if method == "trace_stop" and params["id"] in self.traces and next(iter(self.traces)) != params["id"]:
            self.calls.append((method, params))
            return "OK"  # not the head: OpenSIPS leaves it in place
        return await super().__call__(method, params)


async def test_a_user_is_traced_both_ways_and_both_traces_are_stopped_despite_opensips(tmp_path):
    mi = HeadOnlyMI()
    session = TraceSession(mi, TraceOptions(user="alice", scope="transaction"), audit=audit_of(tmp_path))
    async with session:
        assert len(session.trace_ids) == 2 and set(mi.traces) == set(session.trace_ids)
        starts = [params for method, params in mi.calls if method == "trace_start"]
        assert [s["filter"] for s in starts] == [["caller=alice"], ["callee=alice"]]
        assert {s["scope"] for s in starts} == {"t"}
        assert session.active
    assert mi.traces == {} and session.stop_error == ""
    assert not session.active
    stops = [params["id"] for method, params in mi.calls if method == "trace_stop"]
    assert len(stops) == 3  # the first one OpenSIPS ignored was sent again


def test_a_user_filter_takes_no_caller_or_callee_besides():
    with pytest.raises(ValueError, match="no --caller/--callee"):
        TraceOptions(user="alice", caller="bob").validate()
    with pytest.raises(ValueError, match="--user"):
        TraceOptions(user="al ice").validate()
    assert TraceOptions(user="alice", ip="10.0.0.1").filter_sets() == [["caller=alice", "ip=10.0.0.1"],
                                                                     ["callee=alice", "ip=10.0.0.1"]]

