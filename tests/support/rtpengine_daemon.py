"""Real RTPengine daemons for tests (userspace, loopback only) and a call maker.

Fixtures
    rtpengine           session-scoped daemon: ng + CLI on free loopback ports, media ports
                        `.port_min`..`.port_max` (200 ports = 50 calls), --delete-delay=0 (a deleted
                        call disappears at once).  Shared by every test: create calls with unique
                        call-ids and delete them, or use `start_rtpengine` when counting.
    start_rtpengine     factory `start_rtpengine(ports=200, port_range=None, legacy=False, ng=True,
                        extra_args=())`: one more daemon for this test (e.g. `ports=8` = 2 calls, to
                        fill the range; or `port_range=(lo, hi)`); `legacy=True` adds a `--listen-udp`
                        listener (`.legacy`) answering ng with E8; `ng=False, legacy=True` starts it with
                        only the legacy listener (rtpengine needs some control listener);
                        `extra_args=("--delete-delay=30",)` keeps deleted calls visible with a
                        deletion mark (later options win).  Killed at the end of the test.

Both yield an `RTPengineDaemon`:
    .ng, .cli, .legacy   (host, port) tuples (`.legacy` None unless asked for)
    .port_min, .port_max media port range;  .pid;  .log_path (its stderr)
    .config(**kw)        a console Config pointing at it (ng, cli, timeout=1.0 unless given)

Helpers
    `await make_call(ng_client, callid, kind="udp_udp")` -> (from_tag, to_tag)
        offer + answer with lab-shaped SDP and the OpenSIPS WebSocket-tutorial flags;
        kind: "udp_udp" | "tcp_tcp" | "udp_to_ws" | "ws_to_udp" | "ws_to_ws" (WS legs are UDP/TLS/RTP/SAVPF
        with ICE + DTLS, so the session shows RTP/AVP <-> UDP/TLS/RTP/SAVPF bridging).
        Each call holds 4 media ports.
    `start_daemon(**opts)` / `daemon.stop()`  the same without pytest (bench, demo).

The daemon is killed by PID at teardown, also when the test failed.  Without
/usr/bin/rtpengine the fixtures skip, unless the CI environment variable is
set: then they fail.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

RTPENGINE = "/usr/bin/rtpengine"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0


@dataclass
class RTPengineDaemon:
    ng: tuple[str, int] | None
    cli: tuple[str, int]
    port_min: int
    port_max: int
    process: subprocess.Popen
    log_path: Path
    legacy: tuple[str, int] | None = None
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def config(self, **overrides: Any):
        from console.config import Config

        values: dict[str, Any] = {"ng": self.ng, "cli": self.cli, "timeout": 1.0, "mi_url": None}
        values.update(overrides)
        return Config(**values)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill this daemon (by PID) and reap it."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on loopback (the OS picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind((HOST, 0))
            port = first.getsockname()[1]
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port")


def _media_range(ports: int) -> tuple[int, int]:
    """A random block above the ephemeral range is unlikely to collide (rtpengine skips busy ports anyway)."""
    low = random.randrange(20000, 32000 - ports, 2)
    return low, low + ports - 1


def _ping(address: tuple[str, int], timeout: float = 0.2) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(b"ready" + secrets.token_hex(4).encode() + b" d7:command4:pinge", address)
            return sock.recv(65535)
        except OSError:
            return None


def _cli_answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5) as sock:
            sock.sendall(b"list numsessions\n")
            return bool(sock.recv(100))
    except OSError:
        return False


def start_daemon(*, ports: int = 200, port_range: tuple[int, int] | None = None, legacy: bool = False,
                 ng: bool = True, extra_args: tuple[str, ...] = ()) -> RTPengineDaemon:
    """Start one rtpengine and wait until it answers; raises RuntimeError with its log if it does not."""
    ng_addr = (HOST, free_port()) if ng else None
    cli_addr = (HOST, free_port(socket.SOCK_STREAM))
    legacy_addr = (HOST, free_port()) if legacy else None
    port_min, port_max = port_range or _media_range(ports)
    args = [RTPENGINE, "--config-file=none", "--foreground", "--log-stderr", "--log-level=3",
            "--table=-1", f"--interface={HOST}", f"--listen-cli={HOST}:{cli_addr[1]}",
            f"--port-min={port_min}", f"--port-max={port_max}", "--delete-delay=0", "--num-threads=2"]
    if ng_addr:
        args.append(f"--listen-ng={HOST}:{ng_addr[1]}")
    if legacy_addr:
        args.append(f"--listen-udp={HOST}:{legacy_addr[1]}")
    args.extend(extra_args)
    log_fd, log_name = tempfile.mkstemp(prefix="rtpengine-test-", suffix=".log")
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, close_fds=True)
    os.close(log_fd)
    daemon = RTPengineDaemon(ng=ng_addr, cli=cli_addr, port_min=port_min, port_max=port_max, process=process,
                             log_path=Path(log_name), legacy=legacy_addr, args=args)
    try:
        _wait_ready(daemon)
    except BaseException:
        daemon.stop()
        daemon.log_path.unlink(missing_ok=True)
        raise
    return daemon


def _wait_ready(daemon: RTPengineDaemon) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"rtpengine exited with status {daemon.process.returncode}: {daemon.log()}")
        ready = _ping(daemon.ng) is not None if daemon.ng else _cli_answers(daemon.cli)
        if ready and (daemon.legacy is None or _ping(daemon.legacy) is not None):
            return
        time.sleep(0.02)
    raise RuntimeError(f"rtpengine did not answer within {READY_TIMEOUT_S} s: {daemon.log()}")


def _require_binary() -> None:
    if shutil.which(RTPENGINE) or os.access(RTPENGINE, os.X_OK):
        return
    message = f"{RTPENGINE} is not installed (Debian package rtpengine-daemon)"
    if os.environ.get("CI"):
        pytest.fail(message + " and CI is set: the real-daemon tests must run")
    pytest.skip(message)


@pytest.fixture(scope="session")
def rtpengine() -> Iterator[RTPengineDaemon]:
    _require_binary()
    daemon = start_daemon()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.log_path.unlink(missing_ok=True)


@pytest.fixture
def start_rtpengine():
    _require_binary()
    started: list[RTPengineDaemon] = []

    def start(**opts: Any) -> RTPengineDaemon:
        daemon = start_daemon(**opts)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()
            daemon.log_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- calls

PLAIN_FLAGS = {"transport-protocol": "RTP/AVP", "replace": ["session-connection", "origin"], "ICE": "remove"}
TO_WS_FLAGS = {"transport-protocol": "UDP/TLS/RTP/SAVPF", "ICE": "force"}
WS_WS_FLAGS = {"ICE": "force-relay", "DTLS": "passive"}

# (offer flags, answer flags, caller is WS, callee is WS): branch_route / onreply_route of the lab opensips.cfg
CALL_KINDS = {
    "udp_udp": (PLAIN_FLAGS, PLAIN_FLAGS, False, False),
    "tcp_tcp": (PLAIN_FLAGS, PLAIN_FLAGS, False, False),  # SIP transport is invisible to rtpengine
    "udp_to_ws": (TO_WS_FLAGS, PLAIN_FLAGS, False, True),
    "ws_to_udp": (PLAIN_FLAGS, TO_WS_FLAGS, True, False),
    "ws_to_ws": (WS_WS_FLAGS, WS_WS_FLAGS, True, True),
}


def plain_sdp(port: int) -> str:
    """What sipp's uac/uas send in the lab (G.711 + telephone-event)."""
    session = random.randint(1000, 9999)
    return "\r\n".join([
        "v=0", f"o=user1 {session} {session} IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio {port} RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000", "a=sendrecv",
    ]) + "\r\n"


def webrtc_sdp(port: int, setup: str) -> str:
    """A browser-like offer/answer, as the lab's ws_client.py sends."""
    fingerprint = ":".join(f"{b:02X}" for b in os.urandom(32))
    return "\r\n".join([
        "v=0", f"o=- {random.randint(10**17, 10**18)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
        "a=group:BUNDLE 0", "a=msid-semantic: WMS labstream",
        f"m=audio {port} UDP/TLS/RTP/SAVPF 111 0 8 101", "c=IN IP4 127.0.0.1",
        f"a=rtcp:{port} IN IP4 127.0.0.1",
        f"a=candidate:{random.randint(10**8, 10**9)} 1 udp 2122260223 127.0.0.1 {port} typ host generation 0",
        f"a=ice-ufrag:{secrets.token_hex(2)}", f"a=ice-pwd:{secrets.token_hex(12)}", "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {fingerprint}", f"a=setup:{setup}", "a=mid:0", "a=sendrecv", "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
        f"a=ssrc:{random.randint(10**8, 4 * 10**9)} cname:{secrets.token_hex(8)}",
    ]) + "\r\n"


async def make_call(ng_client, callid: str, kind: str = "udp_udp") -> tuple[str, str]:
    """Offer + answer one call through `ng_client` (an NgClient); returns (from_tag, to_tag)."""
    if kind not in CALL_KINDS:
        raise ValueError(f"unknown call kind {kind!r}; one of {', '.join(CALL_KINDS)}")
    offer_flags, answer_flags, caller_ws, callee_ws = CALL_KINDS[kind]
    from_tag, to_tag = f"ft-{secrets.token_hex(4)}", f"tt-{secrets.token_hex(4)}"
    caller_port, callee_port = 2 * random.randrange(3000, 4000), 2 * random.randrange(4000, 5000)
    offer = webrtc_sdp(caller_port, "actpass") if caller_ws else plain_sdp(caller_port)
    await ng_client.offer(callid, from_tag, offer, dict(offer_flags))
    answer = webrtc_sdp(callee_port, "active") if callee_ws else plain_sdp(callee_port)
    await ng_client.answer(callid, from_tag, to_tag, answer, dict(answer_flags))
    return from_tag, to_tag


def call_kind(dialog: dict) -> str:
    """The make_call kind matching a captured dlg_list dialog's caller/callee transports."""
    caller = dialog["caller_bind_addr"].split(":")[0]
    callee = dialog["CALLEES"][0]["callee_bind_addr"].split(":")[0]
    kinds = {("udp", "udp"): "udp_udp", ("tcp", "tcp"): "tcp_tcp", ("udp", "ws"): "udp_to_ws",
             ("ws", "udp"): "ws_to_udp", ("ws", "ws"): "ws_to_ws"}
    return kinds[(caller, callee)]


async def place_captured_calls(ng_client, dialogs: list[dict]) -> None:
    """One real offer/answer per captured dialog, with the dialog's own Call-ID."""
    for dialog in dialogs:
        await make_call(ng_client, dialog["callid"], call_kind(dialog))
