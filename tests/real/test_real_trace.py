"""`opsconsole trace` against a real OpenSIPS (3.4 and 4.0) with tracer + proto_hep + a hep_udp socket.

A sipp call (caller → OpenSIPS → sipp UAS) is traced with scope dialog: its ladder holds INVITE, 100, 180, 200,
ACK, BYE, 200 in order with the right directions on both legs, the pcap read back by tshark holds the same
messages, and the trace is gone from MI `trace` after SIGTERM.  A REGISTER is traced with scope message and
the command ends by itself (--duration).  After a kill -9 the trace stays in OpenSIPS; the next
`opsconsole trace` removes it.  Every `opsconsole trace` here is a real subprocess (signals are real).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from support.opensips_daemon import VERSIONS, require_real, start_opensips
from support.platform import SCENARIOS, RealPlatform, start_uas, stop_process
from support.rtpengine_daemon import free_port, start_daemon

pytestmark = pytest.mark.opensips

WAIT_S = 20.0  # only stops a hang; never a speed assertion
CALLER, CALLEE = "7001", "7002"
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}\s+(?:new|[+-]\d+\.\d{3})\s+(\S+) → (\S+)\s+(UDP|TCP)\s+(.+?)\s{2,}(\S+)$")


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"opensips-{v}" for v in VERSIONS])
def traced(request):
    """OpenSIPS with the tracer, a sipp UAS on UDP, and CALLEE registered at it."""
    require_real(request.param)
    rtpengine = start_daemon(ports=20)
    opensips = None
    try:
        opensips = start_opensips(request.param, events=False, trace=True,
                                  rtpengine_sock=f"udp:{rtpengine.ng[0]}:{rtpengine.ng[1]}")
        platform = RealPlatform(request.param, opensips, rtpengine, Path(tempfile.mkdtemp(prefix="real-trace-")))
    except BaseException:
        if opensips is not None:
            opensips.cleanup()
        rtpengine.stop()
        raise
    try:
        start_uas(platform)
        status, _ = register(platform, CALLEE, platform.uas_ports["udp"])
        assert status == 200
        yield platform
    finally:
        platform.close()


def register(platform: RealPlatform, user: str, contact_port: int) -> tuple[int, int]:
    """One REGISTER over UDP from a port of the OS; returns (status code, our source port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        message = (f"REGISTER sip:127.0.0.1:{platform.opensips.sip_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{user}-{time.monotonic_ns()};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{port}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
                   f"Call-ID: reg-{user}-{port}@127.0.0.1\r\nCSeq: 1 REGISTER\r\n"
                   f"Contact: <sip:{user}@127.0.0.1:{contact_port}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(message.encode(), platform.opensips.sip)
        reply = sock.recv(65535).decode(errors="replace")
    return int(reply.split()[1]), port


def call(platform: RealPlatform) -> tuple[int, str]:
    """One sipp call CALLER -> CALLEE held 300 ms, then BYE; returns (sipp's source port, Call-ID)."""
    csv = platform.workdir / "call.csv"
    csv.write_text(f"SEQUENTIAL\n{CALLER};{CALLEE}\n")
    port = free_port()
    callid = f"trace-call-{port}@127.0.0.1"
    done = subprocess.run(
        ["sipp", "-sf", str(SCENARIOS / "uac_call.xml"), "-i", "127.0.0.1", "-t", "u1", "-nostdin",
         "-cp", str(free_port()), f"127.0.0.1:{platform.opensips.sip_port}", "-inf", str(csv), "-m", "1",
         "-p", str(port), "-mi", "127.0.0.1", "-mp", str(free_port()), "-d", "300", "-cid_str", callid,
         "-timeout", "15s", "-timeout_error"],
        cwd=platform.workdir, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]
    return port, callid


def invite_nobody(platform: RealPlatform, callee: str) -> str:
    """An INVITE to a user with no registration (OpenSIPS answers 404 itself), ACKed; returns its Call-ID."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        callid = f"nobody-{port}@127.0.0.1"
        head = (f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{port}-inv;rport\r\n"
                f"From: <sip:{CALLER}@127.0.0.1>;tag=n{port}\r\nTo: <sip:{callee}@127.0.0.1>\r\n"
                f"Call-ID: {callid}\r\n")
        sock.sendto((f"INVITE sip:{callee}@127.0.0.1:{platform.opensips.sip_port} SIP/2.0\r\n{head}"
                     f"CSeq: 1 INVITE\r\nContact: <sip:{CALLER}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), platform.opensips.sip)
        while True:
            reply = sock.recv(65535).decode(errors="replace")
            if int(reply.split()[1]) >= 200:
                break
        to = next(line for line in reply.split("\r\n") if line.lower().startswith("to:"))
        sock.sendto((f"ACK sip:{callee}@127.0.0.1:{platform.opensips.sip_port} SIP/2.0\r\n"
                     + head.replace(f"To: <sip:{callee}@127.0.0.1>", to) +
                     "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), platform.opensips.sip)
    assert reply.startswith("SIP/2.0 404"), reply
    return callid


class Trace:
    """`opsconsole trace ARGS` as a subprocess; `wait_started()` returns once its trace is on."""

    def __init__(self, platform: RealPlatform, tmp_path: Path, *args: str) -> None:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCONSOLE_")} | {
            "HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config")}
        config = tmp_path / "empty.toml"
        config.write_text("")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "trace", "--mi-url", platform.mi_url, "--config", str(config),
             "--timeout", "5", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        self.stderr = b""

    def wait_started(self) -> str:
        """The banner line on stderr (the trace is on in OpenSIPS once it is printed)."""
        deadline = time.monotonic() + WAIT_S
        while b"tracing as" not in self.stderr:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.finish(signal.SIGKILL)
                raise AssertionError(f"no trace banner; stderr: {self.stderr.decode(errors='replace')}")
            ready, _, _ = select.select([self.process.stderr], [], [], 0.1)
            if ready:
                self.stderr += os.read(self.process.stderr.fileno(), 65536)
        return self.stderr.decode(errors="replace")

    def finish(self, sig: int | None = None) -> tuple[int, str, str]:
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            raise
        self.stderr += err
        return self.process.returncode, out.decode(errors="replace"), self.stderr.decode(errors="replace")


def trace_id(banner: str) -> str:
    return re.search(r"tracing as (opsconsole-\S+)", banner).group(1)


def active_traces(platform: RealPlatform) -> list[str]:
    listing = platform.opensips.mi_any("trace", "tracer:trace")
    return [row["name"] for row in listing["trace destinations"]]


def ladder(out: str) -> list[tuple[str, str, str, str]]:
    """(src, dst, label, call-id) per ladder line of stdout."""
    return [(m.group(1), m.group(2), m.group(4).strip(), m.group(5)) for m in map(LINE.match, out.splitlines()) if m]


def test_the_tracer_commands_have_the_names_we_map(traced):
    from opsconsole_opensips.commands import map_method

    which = traced.opensips.mi_any("which", "core:which")
    assert {map_method(name, traced.version) for name in ("trace", "trace_start", "trace_stop")} <= set(which)


def test_a_traced_call_its_ladder_pcap_and_sigterm(traced, tmp_path):
    pcap = tmp_path / "call.pcap"
    trace = Trace(traced, tmp_path, "--scope", "dialog", "--callee", CALLEE, "--pcap", str(pcap))
    ident = trace_id(trace.wait_started())
    assert ident in active_traces(traced)
    caller_port, callid = call(traced)
    time.sleep(1.5)  # the explanation comes once the call is quiet for a second
    code, out, err = trace.finish(signal.SIGTERM)
    assert code == 0, err
    assert ident not in active_traces(traced)  # trace_stop went out on SIGTERM

    proxy = f"127.0.0.1:{traced.opensips.sip_port}"
    caller, callee = f"127.0.0.1:{caller_port}", f"127.0.0.1:{traced.uas_ports['udp']}"
    lines = [(src, dst, label) for src, dst, label, cid in ladder(out) if cid == callid]
    caller_leg = [(caller, proxy, "INVITE"), (proxy, caller, "100"), (proxy, caller, "180"), (proxy, caller, "200"),
                  (caller, proxy, "BYE"), (proxy, caller, "200")]
    assert in_order(caller_leg, lines), f"{caller_leg}\nnot in order in\n{out}"
    # the caller's ACK: after the callee's 200 and before the BYE; OpenSIPS 4.0 now and then reports it before its
    # own relayed 200 to the caller (stamped within 1 ms; seen once in six CI runs), so not ordered against that one
    ack_leg = [(callee, proxy, "200"), (caller, proxy, "ACK"), (caller, proxy, "BYE")]
    assert in_order(ack_leg, lines), f"{ack_leg}\nnot in order in\n{out}"
    callee_leg = [(callee, proxy, "180"), (callee, proxy, "200"), (proxy, callee, "ACK")]
    assert in_order(callee_leg, lines), f"{callee_leg}\nnot in order in\n{out}"
    # the relayed BYE and the callee's 200 for it: OpenSIPS reports them in either order (seen both on
    # 4.0, as for the relayed INVITE below), both after the ACK
    after_ack = lines[lines.index((proxy, callee, "ACK")) + 1:]
    assert in_order([(proxy, callee, "BYE")], after_ack) and in_order([(callee, proxy, "200")], after_ack), out
    # OpenSIPS (3.4 and 4.0, scope dialog) reports the relayed INVITE only after the callee's first reply,
    # stamped so too: the ladder shows what OpenSIPS reports, in its order
    assert in_order([(proxy, callee, "INVITE"), (callee, proxy, "200")], lines), out
    assert re.search(rf"⤷ call {re.escape(callid)}: ringing after .* answered after .* talk .* caller hung up", out)

    # the pcap holds the same messages, read back by tshark as SIP
    if shutil.which("tshark") is None:
        pytest.fail("tshark is not installed (Debian tshark; .ci/run installs it)")
    shark = subprocess.run(["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "ip.src", "-e", "udp.srcport",
                            "-e", "ip.dst", "-e", "udp.dstport", "-e", "sip.Method", "-e", "sip.Status-Code",
                            "-e", "sip.Call-ID"], capture_output=True, text=True, timeout=30)
    assert shark.returncode == 0, shark.stderr
    rows = [row.split("\t") for row in shark.stdout.splitlines()]
    from_pcap = [(f"{r[0]}:{r[1]}", f"{r[2]}:{r[3]}", r[4] or r[5]) for r in rows]
    from_ladder = [(src, dst, label.split()[0]) for src, dst, label, _ in ladder(out)]
    assert from_pcap == from_ladder
    assert {r[6] for r in rows} == {callid}


def in_order(expected: list[tuple[str, str, str]], lines: list[tuple[str, str, str]]) -> bool:
    """`expected` is a subsequence of `lines` (labels compared by their first word: '180 Ringing' ~ '180')."""
    position = 0
    for src, dst, label in lines:
        if position < len(expected) and (src, dst, label.split()[0]) == expected[position]:
            position += 1
    return position == len(expected)


def test_a_register_traced_with_scope_message_and_a_normal_exit(traced, tmp_path):
    trace = Trace(traced, tmp_path, "--scope", "message", "--duration", "2")
    ident = trace_id(trace.wait_started())
    status, port = register(traced, "7100", traced.uas_ports["udp"])
    assert status == 200
    code, out, err = trace.finish()
    assert code == 0, err
    registers = [line for line in ladder(out) if line[2] == "REGISTER"]
    assert (f"127.0.0.1:{port}", f"127.0.0.1:{traced.opensips.sip_port}", "REGISTER",
            f"reg-7100-{port}@127.0.0.1") in registers, out
    assert ident not in active_traces(traced)


def test_a_trace_left_by_kill_9_is_removed_by_the_next_start(traced, tmp_path):
    first = Trace(traced, tmp_path, "--scope", "message")
    ident = trace_id(first.wait_started())
    first.finish(signal.SIGKILL)
    assert ident in active_traces(traced)  # nobody stopped it: OpenSIPS still sends to a dead port

    second = Trace(traced, tmp_path, "--duration", "0.2")
    banner = second.wait_started()
    code, _, err = second.finish()
    assert code == 0, err
    assert f"removed 1 trace(s) left behind by a crash: {ident}" in banner
    assert not [name for name in active_traces(traced) if name.startswith("opsconsole-")]


def test_a_404_is_explained_with_the_location_table(traced, tmp_path):
    trace = Trace(traced, tmp_path, "--callee", "nobody")
    trace.wait_started()
    callid = invite_nobody(traced, "nobody")
    time.sleep(1.5)  # explained once the call is quiet for a second
    code, out, err = trace.finish(signal.SIGTERM)
    assert code == 0, err
    labels = [label.split()[0] for _, _, label, cid in ladder(out) if cid == callid]
    # The ACK to the 404 is traced by the worker that receives it, the 404 by the one that sends it: seen
    # once in four CI runs reported before the 404, in the same millisecond.  The ladder shows OpenSIPS's order.
    assert [label for label in labels if label != "ACK"][:3] == ["INVITE", "100", "404"], out
    assert "ACK" in labels, out
    assert f"⤷ call {callid}: failed after" in out and "404 Not Found from OpenSIPS" in out
    assert re.search(r"location table: nobody(@127\.0\.0\.1)? has no contact registered right now", out), out


def test_diagnose_says_trace_ready(traced, tmp_path, capsys, monkeypatch):
    from console.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "empty.toml"
    config.write_text("")
    code = main(["diagnose", "--only", "opensips.trace_ready", "--json", *traced.target_args(), "--config", str(config)])
    import json

    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["checks"][0]["status"] == "ok", report


def test_hep_over_tcp_when_opensips_has_only_a_hep_tcp_socket(opensips_version, tmp_path):
    """No hep_udp receiver in `ps`: the trace asks for transport=tcp and OpenSIPS connects to us."""
    opensips = start_opensips(opensips_version, events=False, trace=True, hep_transports=("tcp",),
                              rtpengine_sock=f"udp:127.0.0.1:{free_port()}")
    try:
        platform = RealPlatform(opensips_version, opensips, None, tmp_path)
        trace = Trace(platform, tmp_path, "--scope", "message", "--duration", "2")
        banner = trace.wait_started()
        assert ";transport=tcp;version=3" in banner
        status, port = register(platform, "7200", free_port())
        assert status == 200
        code, out, err = trace.finish()
        assert code == 0, err
        assert (f"127.0.0.1:{port}", f"127.0.0.1:{opensips.sip_port}", "REGISTER",
                f"reg-7200-{port}@127.0.0.1") in ladder(out), out
        assert re.search(r" TCP  REGISTER", out) is None  # the REGISTER itself came over UDP
    finally:
        opensips.cleanup()
