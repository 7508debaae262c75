"""Real OpenSIPS daemons (3.4 and 4.0) for tests: loopback only, every port from the OS.

The binaries come from ../shared/opensips/install.sh (CI: `.ci/run`); point the environment variable
OPSCONSOLE_TEST_OPENSIPS at the directory holding `opensips-3.4/` and `opensips-4.0/`.  Without it (or
without the binary) the tests needing OpenSIPS skip with a one-line reason, unless OPSCONSOLE_REQUIRE_REAL=1
or CI is set: then they fail.

    daemon = start_opensips("3.4", rtpengine_sock="udp:127.0.0.1:PORT", events=True)
    daemon.mi("version")              # raw JSON-RPC POST, a new connection each (mi_http's safe way)
    daemon.stop()                     # SIGTERM by PID (SIGKILL to its process group if it hangs)

The config is the lab's (tests/fixtures/opensips-lab/opensips-VERSION.cfg.in: the tutorial's routing, UDP/TCP/WS
sockets, usrloc, dialog, rtpengine offer/answer per transport, mi_http, mi_fifo) with the module path, ports,
fifo, pid file and rtpengine_sock substituted; `events=True` also loads event_datagram and event_stream;
`trace=True` loads proto_hep + tracer with hep_udp/hep_tcp sockets (`hep_transports`) on `daemon.hep_port`
(from the OS).
A start that fails raises RuntimeError with the tail of OpenSIPS's stderr log.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.rtpengine_daemon import free_port

HOST = "127.0.0.1"
VERSIONS = ("3.4", "4.0")
TEMPLATES = Path(__file__).resolve().parent.parent / "fixtures" / "opensips-lab"
READY_TIMEOUT_S = 15.0
EVENT_MODULES = 'loadmodule "event_datagram.so"\nloadmodule "event_stream.so"\n'
# trace=True: OpenSIPS's tracer ships SIP as HEP through a hep_udp (+ hep_tcp) socket on a port from the OS.
TRACE_MODULES = 'loadmodule "proto_hep.so"\nloadmodule "tracer.so"\n'
_ids = itertools.count(1)
# Read once at import: the suite's isolation fixture removes every OPSCONSOLE_* variable before each test.
INSTALL_DIR = os.environ.get("OPSCONSOLE_TEST_OPENSIPS")
REQUIRE_REAL = os.environ.get("OPSCONSOLE_REQUIRE_REAL") == "1"


class MIRemoteError(Exception):
    """OpenSIPS answered the JSON-RPC request with an error object."""


def opensips_root(version: str) -> Path | None:
    """DIR/opensips-VERSION from OPSCONSOLE_TEST_OPENSIPS when its binary is there."""
    if not INSTALL_DIR:
        return None
    root = Path(INSTALL_DIR) / f"opensips-{version}"
    return root if os.access(root / "sbin" / "opensips", os.X_OK) else None


def real_required() -> bool:
    return REQUIRE_REAL or bool(os.environ.get("CI"))


def require_real(version: str) -> Path:
    """The install root of this version, or skip (fail when real daemons are required) with one line."""
    root = opensips_root(version)
    missing = None
    if root is None:
        missing = (f"no OpenSIPS {version} binary under OPSCONSOLE_TEST_OPENSIPS={INSTALL_DIR}" if INSTALL_DIR else
                   "OPSCONSOLE_TEST_OPENSIPS is not set (sh ../shared/opensips/install.sh DIR, then export it)")
    elif not shutil.which("sipp"):
        missing = "sipp (Debian sip-tester) is not installed"
    elif not os.access("/usr/bin/rtpengine", os.X_OK):
        missing = "/usr/bin/rtpengine is not installed (Debian rtpengine-daemon)"
    if missing is None:
        return root
    if real_required():
        pytest.fail(f"{missing}; OPSCONSOLE_REQUIRE_REAL/CI is set: the real-OpenSIPS tests must run")
    pytest.skip(missing)


@dataclass
class OpenSIPSDaemon:
    version: str
    sip_port: int          # UDP and TCP
    ws_port: int
    http_port: int
    fifo: Path
    workdir: Path
    log_path: Path
    config_path: Path
    process: subprocess.Popen
    rtpengine_sock: str
    events: bool
    hep_port: int | None = None  # the hep_udp/hep_tcp socket when started with trace=True

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def mi_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/mi"

    @property
    def sip(self) -> tuple[str, int]:
        return (HOST, self.sip_port)

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}"

    def mi(self, method: str, params: Any = None, timeout: float = 10.0) -> Any:
        """One JSON-RPC call on a new connection; returns `result`, raises MIRemoteError on an error object."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(_ids)}
        if params is not None:
            request["params"] = params
        post = urllib.request.Request(self.mi_url, data=json.dumps(request).encode(), method="POST",
                                      headers={"Content-Type": "application/json", "Connection": "close"})
        with urllib.request.urlopen(post, timeout=timeout) as reply:
            answer = json.loads(reply.read())
        if "error" in answer:
            raise MIRemoteError(f"{method}: {answer['error']}")
        return answer["result"]

    def mi_any(self, *methods: str, params: Any = None) -> Any:
        """The first of several names that this version knows (4.0 renamed many MI commands)."""
        last: Exception | None = None
        for method in methods:
            try:
                return self.mi(method, params)
            except MIRemoteError as exc:
                last = exc
        raise last or MIRemoteError("no method given")

    def ul_dump(self) -> dict:
        return self.mi_any("ul_dump", "usrloc:dump")

    def dialogs(self) -> list[dict]:
        return self.mi_any("dlg_list", "dialog:list")["Dialogs"]

    def log(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the main process (it stops its children); SIGKILL to its own process group if stuck."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group started with it (start_new_session)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def render_config(version: str, root: Path, *, sip_port: int, ws_port: int, http_port: int, fifo: Path,
                  rtpengine_sock: str, events: bool, workers: int = 2, hep_port: int | None = None,
                  hep_transports: tuple[str, ...] = ("udp", "tcp")) -> str:
    text = (TEMPLATES / f"opensips-{version}.cfg.in").read_text()
    values = {"MPATH": f"{root}/modules/", "SIP_PORT": sip_port, "WS_PORT": ws_port, "HTTP_PORT": http_port,
              "FIFO": fifo, "RTPENGINE_SOCK": rtpengine_sock, "WORKERS": workers,
              "EVENT_MODULES": EVENT_MODULES if events else "",
              "TRACE_MODULES": _trace_modules(hep_port, hep_transports) if hep_port else ""}
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    leftover = re.search(r"@[A-Z_]+@", "\n".join(l for l in text.splitlines() if not l.startswith("#")))
    if leftover:
        raise ValueError(f"unsubstituted placeholder {leftover.group()} in the template")
    return text


def _trace_modules(port: int, transports: tuple[str, ...]) -> str:
    return TRACE_MODULES + "".join(f"socket=hep_{transport}:{HOST}:{port}\n" for transport in transports)


def launch(root: Path, workdir: Path, config: str, *, shm_mb: int = 64, pkg_mb: int = 16):
    """Write the config into workdir and start OpenSIPS in the foreground, its output in opensips.log:
    (config_path, log_path, process)."""
    config_path = workdir / "opensips.cfg"
    config_path.write_text(config)
    log_path = workdir / "opensips.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(root / "sbin" / "opensips"), "-F", "-f", str(config_path), "-P", str(workdir / "opensips.pid"),
             "-m", str(shm_mb), "-M", str(pkg_mb)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir, start_new_session=True)
    return config_path, log_path, process

def start_opensips(version: str, *, rtpengine_sock: str, events: bool = True, root: Path | None = None,
                   shm_mb: int = 64, pkg_mb: int = 16, trace: bool = False,
                   hep_transports: tuple[str, ...] = ("udp", "tcp")) -> OpenSIPSDaemon:
    """Start one OpenSIPS and wait until `version` answers over mi_http."""
    root = root or opensips_root(version)
    if root is None:
        raise RuntimeError(f"OpenSIPS {version} is not installed (OPSCONSOLE_TEST_OPENSIPS)")
    workdir = Path(tempfile.mkdtemp(prefix=f"opensips-{version}-test-"))
    fifo = workdir / "opensips_fifo"
    sip_port, ws_port, http_port = free_port(), free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    hep_port = _free_udp_and_tcp_port() if trace else None
    try:
        config = render_config(version, root, sip_port=sip_port, ws_port=ws_port, http_port=http_port, fifo=fifo,
                               rtpengine_sock=rtpengine_sock, events=events, hep_port=hep_port,
                               hep_transports=hep_transports)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    config_path, log_path, process = launch(root, workdir, config, shm_mb=shm_mb, pkg_mb=pkg_mb)
    daemon = OpenSIPSDaemon(version=version, sip_port=sip_port, ws_port=ws_port, http_port=http_port, fifo=fifo,
                            workdir=workdir, log_path=log_path, config_path=config_path, process=process,
                            rtpengine_sock=rtpengine_sock, events=events, hep_port=hep_port)
    try:
        _wait_ready(daemon)
    except BaseException:
        daemon.cleanup()
        raise
    return daemon


def _free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP (hep_udp and hep_tcp share it, like the lab's)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP on loopback")


def _wait_ready(daemon: OpenSIPSDaemon) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise RuntimeError(f"OpenSIPS {daemon.version} exited with status {daemon.process.returncode}; "
                               f"log {daemon.log_path}:\n{daemon.log()}")
        try:
            answer = daemon.mi("version", timeout=1.0)
            if str(answer.get("Server", "")).startswith(f"OpenSIPS ({daemon.version}"):
                return
            raise RuntimeError(f"unexpected version answer {answer!r}")
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"OpenSIPS {daemon.version} did not answer `version` over mi_http within "
                       f"{READY_TIMEOUT_S} s; log {daemon.log_path}:\n{daemon.log()}")
