"""A real platform for end-to-end tests: OpenSIPS (3.4 or 4.0) + RTPengine + real SIP traffic.

`start_platform(version)` starts a real RTPengine (support.rtpengine_daemon.start_daemon), a real OpenSIPS whose
rtpengine_sock points at it (support.opensips_daemon.start_opensips, event modules loaded), then traffic:

    sipp UAS on UDP and on TCP (the callees' devices, RTP echo)
    sipp REGISTERs over UDP (UDP_USERS + one HOSTILE_USER whose User-Agent is Rich markup, ANSI escapes and
    very long) and over TCP (TCP_USERS), contacts pointing at the UAS of their transport
    WebSocket UAs (WS_USERS, support.ws_sip) registering over WS (the WS branch flag DST_WS is set)
    calls held up (sipp -d 1 h): UDP->UDP, UDP->WS (answered by a WS UA) and TCP->TCP from sipp UACs,
    WS->UDP from a WS UA; each has a confirmed dialog and an RTPengine session

Every port comes from the OS; everything is killed by PID in `close()` (also when the start failed).
sipp runs with -trace_err: its error logs stay in `platform.workdir` (shown when a step fails).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.opensips_daemon import OpenSIPSDaemon, start_opensips
from support.rtpengine_daemon import RTPengineDaemon, free_port, start_daemon
from support.ws_sip import WsUA

SIPP = "sipp"
SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "opensips-lab"
UDP_USERS = [f"{n}" for n in range(1000, 1006)]
TCP_USERS = [f"{n}" for n in range(3000, 3004)]
WS_USERS = ["ws2000", "ws2001", "ws2002"]
HOSTILE_USER = "1099"
HOSTILE_PREFIX = "[bold red]x[/] \x1b[31mred\x1b[0m \x1b[2J "
HOSTILE_UA = HOSTILE_PREFIX + "L" * (254 - len(HOSTILE_PREFIX))  # OpenSIPS keeps at most 254 chars ("n/a" above)
UDP_CALLS = [("1004", "1000"), ("1005", "1001"), ("1003", "ws2000")]  # caller;callee rows of the UDP UAC
TCP_CALLS = [("3003", "3000")]
WS_CALLS = [("ws2001", "1002")]
CALL_HOLD_MS = 3_600_000
STEP_TIMEOUT_S = 30.0


@dataclass
class RealPlatform:
    version: str
    opensips: OpenSIPSDaemon
    rtpengine: RTPengineDaemon
    workdir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    ws_uas: dict[str, WsUA] = field(default_factory=dict)
    uas_ports: dict[str, int] = field(default_factory=dict)   # transport -> sipp UAS port
    ws_call_ids: list[str] = field(default_factory=list)
    sipp_pids: dict[str, int] = field(default_factory=dict)   # role -> pid (part of sipp's Call-IDs)

    # ------------------------------------------------------------ addresses

    @property
    def mi_url(self) -> str:
        return self.opensips.mi_url

    @property
    def fifo(self) -> Path:
        return self.opensips.fifo

    @property
    def ng(self) -> tuple[str, int]:
        return self.rtpengine.ng

    @property
    def cli(self) -> tuple[str, int]:
        return self.rtpengine.cli

    def target_args(self, timeout: float = 5.0) -> list[str]:
        return ["--mi-url", self.mi_url, "--ng", f"{self.ng[0]}:{self.ng[1]}",
                "--cli", f"{self.cli[0]}:{self.cli[1]}", "--timeout", str(timeout)]

    @property
    def expected_dialogs(self) -> int:
        return len(UDP_CALLS) + len(TCP_CALLS) + len(WS_CALLS)

    # ------------------------------------------------------------ asking the daemons directly

    def mi(self, method: str, params: Any = None) -> Any:
        return self.opensips.mi(method, params)

    def ng_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """One ng command through the project's NgClient (a fresh socket each time)."""
        from opsconsole_rtpengine.ng import NgClient

        async def run() -> dict[str, Any]:
            client = NgClient(*self.ng, timeout=3.0)
            try:
                return await client.request(message)
            finally:
                await client.aclose()

        return asyncio.run(run())

    def ng_calls(self) -> list[str]:
        return [c.decode() if isinstance(c, bytes) else c
                for c in self.ng_request({"command": "list", "limit": 1000})["calls"]]

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        for ua in self.ws_uas.values():
            ua.close()
        for process in reversed(self.processes):
            stop_process(process)
        self.opensips.cleanup()
        self.rtpengine.stop()
        self.rtpengine.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass


def start_platform(version: str, *, events: bool = True, traffic: bool = True, rtpengine_ports: int = 200,
                   rtpengine_sock: str | None = None) -> RealPlatform:
    """RTPengine + OpenSIPS (+ the traffic); `rtpengine_sock` overrides where OpenSIPS looks for RTPengine."""
    rtpengine = start_daemon(ports=rtpengine_ports)
    try:
        opensips = start_opensips(version, events=events,
                                  rtpengine_sock=rtpengine_sock or f"udp:{rtpengine.ng[0]}:{rtpengine.ng[1]}")
    except BaseException:
        rtpengine.stop()
        rtpengine.log_path.unlink(missing_ok=True)
        raise
    platform = RealPlatform(version, opensips, rtpengine, Path(tempfile.mkdtemp(prefix="real-platform-")))
    try:
        if traffic:
            start_traffic(platform)
    except BaseException:
        platform.close()
        raise
    return platform


# ------------------------------------------------------------ traffic


def _csv(platform: RealPlatform, name: str, rows: list[str]) -> Path:
    path = platform.workdir / name
    path.write_bytes(("SEQUENTIAL\n" + "\n".join(rows) + "\n").encode("utf-8"))
    return path


def _sipp_errors(platform: RealPlatform, output: str = "") -> str:
    errors = "".join(p.read_text(errors="replace")[-1500:] for p in platform.workdir.glob("*err*.log"))
    return f"{output[-1500:]}\n{errors}\nOpenSIPS log tail:\n{platform.opensips.log(1500)}"


def _sipp(platform: RealPlatform, role: str, scenario: str, transport: str, args: list[str]) -> list[str]:
    # -cp: sipp's control port is UDP 8888 by default, a well-known port the host may use: from the OS.
    return [SIPP, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-t", transport, "-nostdin",
            "-cp", str(free_port(socket.SOCK_DGRAM)),
            "-trace_err", "-error_file", str(platform.workdir / f"sipp_{role}_err.log"), *args]


def _run_sipp(platform: RealPlatform, role: str, command: list[str]) -> None:
    """A sipp that ends by itself (REGISTERs): run it to the end; it must exit 0."""
    process = subprocess.Popen(command, cwd=platform.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise RuntimeError(f"sipp {role} did not finish in {STEP_TIMEOUT_S} s: {_sipp_errors(platform)}")
    if process.returncode != 0:
        raise RuntimeError(f"sipp {role} exit {process.returncode}: "
                           f"{_sipp_errors(platform, output.decode(errors='replace'))}")
    platform.sipp_pids[role] = process.pid


def _spawn_sipp(platform: RealPlatform, role: str, command: list[str]) -> subprocess.Popen:
    """A sipp that stays (UAS, held calls): killed by PID in platform.close()."""
    out = open(platform.workdir / f"sipp_{role}.out", "wb")
    process = subprocess.Popen(command, cwd=platform.workdir, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    platform.processes.append(process)
    platform.sipp_pids[role] = process.pid
    return process


def _wait(platform: RealPlatform, what: str, condition) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not condition():
        for process in platform.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[:3]} exited ({process.returncode}) while waiting for {what}: "
                                   f"{_sipp_errors(platform)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}: {_sipp_errors(platform)}")
        time.sleep(0.05)


def _listening(transport: str, port: int) -> bool:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True  # taken: sipp has it
    return False


BIND_ATTEMPTS = 3  # a port from the OS is free when asked, and may be taken before sipp binds it


def _lost_the_port(platform: RealPlatform, role: str) -> bool:
    """sipp said its port was taken meanwhile (errno 98): worth another port, not a failed test."""
    logs = [platform.workdir / f"sipp_{role}_err.log", platform.workdir / f"sipp_{role}.out"]
    return any("errno = 98" in p.read_text(errors="replace") for p in logs if p.exists())


def _start_uas(platform: RealPlatform, transport: str, flag: str) -> None:
    role = f"uas_{transport}"
    for attempt in range(BIND_ATTEMPTS):
        port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        process = _spawn_sipp(platform, role, _sipp(platform, role, "uas.xml", flag, [
            "-p", str(port), "-mi", "127.0.0.1", "-mp", str(free_port()), "-rtp_echo"]))
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while process.poll() is None and not _listening(transport, port) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)  # a port taken by someone else also looks "listening": sipp must still be alive
        if process.poll() is None and _listening(transport, port):
            platform.uas_ports[transport] = port
            return
        if process.poll() is not None and attempt + 1 < BIND_ATTEMPTS and _lost_the_port(platform, role):
            platform.processes.remove(process)
            (platform.workdir / f"sipp_{role}_err.log").unlink(missing_ok=True)  # the next try's words only
            continue
        raise RuntimeError(f"{process.args[:3]} exited ({process.returncode}) while waiting for sipp UAS on "
                           f"{transport} {port}: {_sipp_errors(platform)}" if process.poll() is not None
                           else f"timed out waiting for sipp UAS on {transport} {port}: {_sipp_errors(platform)}")


def start_uas(platform: RealPlatform) -> None:
    for transport, flag in (("udp", "u1"), ("tcp", "t1")):
        _start_uas(platform, transport, flag)


def register_users(platform: RealPlatform) -> None:
    sip = f"127.0.0.1:{platform.opensips.sip_port}"
    udp_contact, tcp_contact = (f"127.0.0.1:{platform.uas_ports[t]}" for t in ("udp", "tcp"))
    udp_rows = [f"{u};{udp_contact};3600;transport=udp;sipp-real-UDP" for u in UDP_USERS]
    udp_rows.append(f"{HOSTILE_USER};{udp_contact};3600;transport=udp;{HOSTILE_UA}")
    tcp_rows = [f"{u};{tcp_contact};3600;transport=tcp;sipp-real-TCP" for u in TCP_USERS]
    for transport, flag, rows in (("udp", "u1", udp_rows), ("tcp", "t1", tcp_rows)):
        csv = _csv(platform, f"users_{transport}.csv", rows)
        _run_sipp(platform, f"reg_{transport}", _sipp(platform, f"reg_{transport}", "register.xml", flag, [
            sip, "-inf", str(csv), "-m", str(len(rows)), "-r", "50", "-p", str(free_port()),
            "-cid_str", f"reg-{transport}-%u-%p@%s", "-nd", "-timeout", "20s"]))
    for user in WS_USERS:
        ua = WsUA(platform.opensips.ws_url, user)
        platform.ws_uas[user] = ua
        ua.register(3600)


def place_calls(platform: RealPlatform) -> None:
    sip = f"127.0.0.1:{platform.opensips.sip_port}"
    for transport, flag, calls in (("udp", "u1", UDP_CALLS), ("tcp", "t1", TCP_CALLS)):
        csv = _csv(platform, f"calls_{transport}.csv", [f"{a};{b}" for a, b in calls])
        _spawn_sipp(platform, f"uac_{transport}", _sipp(platform, f"uac_{transport}", "uac_call.xml", flag, [
            sip, "-inf", str(csv), "-m", str(len(calls)), "-r", "20", "-p", str(free_port()),
            "-mi", "127.0.0.1", "-mp", str(free_port()), "-d", str(CALL_HOLD_MS),
            "-cid_str", f"call-{transport}-%u-%p@%s"]))
    for caller, callee in WS_CALLS:
        code, callid = platform.ws_uas[caller].call(callee)
        if code != 200:
            raise RuntimeError(f"WS call {caller}->{callee} answered {code}: {_sipp_errors(platform)}")
        platform.ws_call_ids.append(callid)

    def all_up() -> bool:
        confirmed = [d for d in platform.opensips.dialogs() if d.get("state") == 4]
        return len(confirmed) == platform.expected_dialogs and len(platform.ng_calls()) == platform.expected_dialogs

    _wait(platform, f"{platform.expected_dialogs} confirmed dialogs and media sessions", all_up)


def start_traffic(platform: RealPlatform) -> None:
    start_uas(platform)
    register_users(platform)
    place_calls(platform)
