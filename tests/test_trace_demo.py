"""`opsconsole trace --demo` end to end: the demo's simulated OpenSIPS answers trace_start/trace_stop/trace
and sends HEP for its calls; the ladder, the pcap, the audit log, the signals."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from console.cli import EXIT, main
from console.config import Config
from opsconsole_demo import DemoPlatform
from opsconsole_opensips.session import MISession
from opsconsole_opensips.trace import TraceOptions
from support.faults import clean_home, targets  # noqa: F401  (clean_home: fixture)

pytestmark = pytest.mark.usefixtures("clean_home")
WAIT_S = 30.0  # only stops a hang


def audit_records(home) -> list[dict]:
    path = home / ".local" / "state" / "opsconsole" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_trace_demo_prints_a_ladder_writes_the_pcap_and_audits(tmp_path, capsys):
    pcap = tmp_path / "demo.pcap"
    code = main(["trace", "--demo", "--demo-size", "20", "--duration", "5", "--pcap", str(pcap)])
    out, err = capsys.readouterr()
    assert code == EXIT["ok"]["trace"], err
    invite = re.search(r"(\S+) → 127\.0\.0\.1:5060\s+UDP\s+INVITE\s+(\S+)$", out, re.MULTILINE)
    assert invite, out
    caller, callid = invite.groups()
    call = [line for line in out.splitlines() if line.endswith(callid)]
    labels = [re.split(r"\s{2,}", line.strip())[-2].split()[0] for line in call]
    assert labels[:8] == ["INVITE", "100", "INVITE", "180", "180", "200", "200", "ACK"], out
    assert f"127.0.0.1:5060 → {caller}" in call[1]  # 100 goes back to the caller
    # joined with what the console knows (one collection): the callee's registration, dialog, media
    assert re.search(r"callee \S+: registered now over UDP \(1 contact", out), out
    assert "dialog in OpenSIPS: confirmed" in out
    assert re.search(r"media in RTPengine: caller sent \d+ packets, callee sent \d+", out), out
    assert "tracing as opsconsole-" in err and "stopped:" in err
    assert [(r["method"], r["outcome"]) for r in audit_records(tmp_path)] == [("trace_start", "ok"),
                                                                               ("trace_stop", "ok")]
    assert pcap.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1" and pcap.stat().st_size > 500


@pytest.mark.parametrize("version", ["3.4", "4.0"])
async def test_the_demo_tracer_speaks_both_versions_and_forgets_a_stopped_trace(version):
    async with DemoPlatform(size=20, version=version, tick=None) as demo:
        mi = MISession(Config(mi_url=demo.mi_url, ng=None, cli=None))
        try:
            session = mi.trace_session(TraceOptions(scope="dialog"))
            async with session:
                assert list(demo.tracer.traces) == [session.trace_id]
                listing = await mi.call("trace")
                assert listing["trace destinations"][0]["name"] == session.trace_id
                for _ in range(3):
                    await demo.step()
                lines = []
                async for line in session.lines():
                    lines.append(line)
                    if line.message.label == "ACK" and line.message.dst.endswith(":5070"):
                        break
            assert demo.tracer.traces == {}
            assert [line.message.label.split()[0] for line in lines] == [
                "INVITE", "100", "INVITE", "180", "180", "200", "200", "ACK", "ACK"]
            flow = session.ladder.calls[lines[0].message.call_id]
            explanation, notes = await session.explain(flow)
            assert explanation.outcome == "answered" and "still up" in explanation.summary
            assert notes[0].startswith("dialog in OpenSIPS: state 4, confirmed")  # joined with dlg_list
        finally:
            await mi.aclose()


def _trace_process(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCONSOLE_")} | {"HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "console", "trace", "--demo", "--demo-size", "20", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_banner(process) -> bytes:
    seen = b""
    deadline = time.monotonic() + WAIT_S
    while b"tracing as" not in seen:
        assert time.monotonic() < deadline and process.poll() is None, seen.decode(errors="replace")
        if select.select([process.stderr], [], [], 0.1)[0]:
            seen += os.read(process.stderr.fileno(), 65536)
    return seen


@pytest.mark.parametrize("sig, outcome", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "ok"), (signal.SIGHUP, "ok")])
def test_signals_stop_the_trace_before_exit(tmp_path, sig, outcome):
    process = _trace_process(tmp_path)
    try:
        _wait_for_banner(process)
        process.send_signal(sig)
        _, err = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT[outcome]["trace"], err.decode(errors="replace")
    assert b"stopped:" in err and b"Traceback" not in err
    assert [(r["method"], r["outcome"]) for r in audit_records(tmp_path)] == [("trace_start", "ok"),
                                                                               ("trace_stop", "ok")]


def test_bad_trace_options_are_refused(capsys):
    for argv, words in ((["trace", "--demo", "--callee", "a b"], "--callee"),
                        (["trace", "--listen", "nowhere:1"], "--listen"),
                        (["trace", "--duration", "0"], "--duration"),
                        (["trace", "--scope", "all"], "invalid choice")):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        assert code == EXIT["usage"]["trace"], argv
        assert words in capsys.readouterr().err


def test_trace_turned_off_in_the_configuration_starts_nothing(tmp_path, capsys):
    config = tmp_path / "off.toml"
    config.write_text("[opensips]\ntrace = false\n")
    assert main(["trace", "--demo", "--demo-size", "20", "--duration", "1", "--config", str(config)]) == \
        EXIT["partial"]["trace"]
    assert "[opensips] trace = false" in capsys.readouterr().err
    assert not (tmp_path / ".local" / "state" / "opsconsole" / "audit.log").exists()  # no trace_start sent
    bad = tmp_path / "bad.toml"
    bad.write_text("[opensips]\ntrace = 'no'\n")
    assert main(["trace", "--demo", "--config", str(bad)]) == EXIT["config"]["trace"]
    assert "true or false" in capsys.readouterr().err


def test_a_trace_that_cannot_start_leaves_no_empty_pcap(tmp_path, capsys):
    pcap = tmp_path / "never.pcap"
    argv = ["trace", *targets(None, None, None), "--pcap", str(pcap)]  # nobody at the MI port
    assert main(argv) == EXIT["unreachable"]["trace"]
    assert not pcap.exists()
    pcap.write_bytes(b"the operator's own file")
    assert main(argv) == EXIT["unreachable"]["trace"]
    assert pcap.exists()  # truncated (it was named to be written) but not removed
    assert "not reachable" in capsys.readouterr().err
