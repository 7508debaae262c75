"""Media for the demo: a real RTPengine when installed, else the simulated one.

Both drivers expose `ng`, `cli` (host, port), `request(dict) -> dict` and
`apply(MediaWork)`, which runs the ng offer/answer/delete of a simulated call
with the lab's flags per direction and writes the SDPs RTPengine returned into
the dialog (`callee.sent_sdp` from the offer, `caller.sent_sdp` from the answer).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from console.errors import OpsError, TransportError
from . import sdp
from .media_sim import SimEngine, SimRtpengine
from .state import MediaWork

log = logging.getLogger(__name__)

RTPENGINE = "rtpengine"
START_TIMEOUT = 5.0
NG_TIMEOUT = 1.0
REAL_MAX_CALLS = 200  # 1000 ports (the lab's range) at 4 ports a call, with room to spare
SIM_PORT_MIN = 30000


def rtpengine_binary() -> str | None:
    return shutil.which(RTPENGINE)


def free_port(kind: int) -> int:
    """A currently free loopback port for SOCK_DGRAM or SOCK_STREAM."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ng_request(op: str, work: MediaWork) -> dict:
    dialog = work.dialog
    request = {"command": op, "call-id": dialog.callid, "from-tag": dialog.caller.tag}
    if op == "offer":
        request.update(sdp.offer_flags(dialog.kind), sdp=dialog.caller.sdp)
    elif op == "answer":
        request.update(sdp.answer_flags(dialog.kind), sdp=dialog.callee.sdp)
        request["to-tag"] = dialog.callee.tag
    return request


class MediaDriver:
    ng: tuple[str, int]
    cli: tuple[str, int]
    real = False

    async def request(self, command: dict) -> dict:
        raise NotImplementedError

    async def apply(self, work: MediaWork) -> None:
        reply = await self.request(ng_request(work.op, work))
        if reply.get("result") != "ok":
            log.info("rtpengine %s for %s failed: %s", work.op, work.dialog.callid, reply.get("error-reason"))
            return
        if work.op == "offer":
            work.dialog.callee.sent_sdp = reply.get("sdp", "")
        elif work.op == "answer":
            work.dialog.caller.sent_sdp = reply.get("sdp", "")

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SimulatedMedia(MediaDriver):
    def __init__(self, clock=time.time, port_max: int = SIM_PORT_MIN + 999) -> None:
        self.engine = SimEngine(clock, port_min=SIM_PORT_MIN, port_max=port_max)
        self.server = SimRtpengine(self.engine)

    async def start(self) -> None:
        await self.server.start()
        self.ng, self.cli = self.server.ng, self.server.cli

    async def request(self, command: dict) -> dict:
        return self.engine.handle(command)

    async def close(self) -> None:
        await self.server.close()


PR_SET_PDEATHSIG = 1
START_ATTEMPTS = 3


class _Exited(TransportError):
    """The daemon exited during start-up."""



def _parent_death_signal():
    """A preexec_fn making the daemon get SIGTERM when we die, even by SIGKILL (Linux only).

    libc is loaded here, before fork: the child may only call into it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class RealRtpengine(MediaDriver):
    """`rtpengine --foreground` on free loopback ports, userspace only, killed by PID on close."""

    real = True

    def __init__(self, binary: str, port_min: int | None = None, port_max: int | None = None) -> None:
        self.binary = binary
        self.port_min = port_min
        self.port_max = port_max
        self.process: subprocess.Popen | None = None
        self.client = None
        self._log = None

    def command_line(self) -> list[str]:
        return [self.binary, "--config-file=none", "--foreground", "--log-stderr", "--log-level=3",
                "--table=-1", "--interface=127.0.0.1",
                f"--listen-ng=127.0.0.1:{self.ng[1]}", f"--listen-cli=127.0.0.1:{self.cli[1]}",
                "-m", str(self.port_min), "-M", str(self.port_max)]

    async def start(self) -> None:
        from opsconsole_rtpengine.ng import NgClient  # lazily: only the real-relay path needs it

        for attempt in range(START_ATTEMPTS):
            self._spawn()
            try:
                self.client = NgClient(self.ng[0], self.ng[1], NG_TIMEOUT)
                await self._wait_ready()
                return
            except _Exited:
                await self.close()  # most likely a port taken between our probe and its bind
                if attempt + 1 == START_ATTEMPTS:
                    raise
            except BaseException:
                await self.close()
                raise

    def _spawn(self) -> None:
        self.ng = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
        self.cli = ("127.0.0.1", free_port(socket.SOCK_STREAM))
        if self.port_min is None:
            # a range of its own per instance, away from the ephemeral range
            self.port_min = 20000 + (self.ng[1] % 10) * 1000
            self.port_max = self.port_min + 999
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._log, preexec_fn=_parent_death_signal())
        self._atexit = functools.partial(_kill, self.process.pid)
        atexit.register(self._atexit)  # also on crash paths that skip close()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise _Exited(f"rtpengine exited with status {self.process.returncode}: {self._stderr()}",
                              target=f"{self.ng[0]}:{self.ng[1]}")
            try:
                reply = await self.client.request({"command": "ping"})
                if reply.get("result") == "pong":
                    return
            except OpsError:
                pass
            if time.monotonic() > deadline:
                raise TransportError("rtpengine did not answer ng ping within "
                                     f"{START_TIMEOUT:.0f} s: {self._stderr()}", target=f"{self.ng[0]}:{self.ng[1]}")
            await asyncio.sleep(0.05)

    def _stderr(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-500:].decode("utf-8", "replace").strip()

    async def request(self, command: dict) -> dict:
        return await self.client.request(command)

    async def close(self) -> None:
        if self.client is not None:
            try:
                await self.client.aclose()
            except Exception:  # closing a client must not keep the daemon alive
                log.debug("ng client close failed", exc_info=True)
            self.client = None
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, 3)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait, 3)
            atexit.unregister(self._atexit)
        if self._log is not None:
            self._log.close()
            self._log = None


async def start_media(real: bool | None, clock=time.time, calls: int = 0) -> MediaDriver:
    """real=None: the real RTPengine if the binary exists and the calls fit its port range, else simulated."""
    binary = rtpengine_binary()
    if real and binary is None:
        raise OpsError("rtpengine is not installed (no `rtpengine` on PATH)",
                       hint="install rtpengine-daemon or run the demo with the simulated relay")
    if binary and (real or (real is None and calls <= REAL_MAX_CALLS)):
        driver = RealRtpengine(binary)
        try:
            await driver.start()
            return driver
        except ImportError as exc:  # the ng client is not available: only auto mode may fall back
            if real:
                raise OpsError(f"cannot drive rtpengine: {exc}") from None
            log.warning("rtpengine found but its ng client is unavailable (%s); simulating media", exc)
    driver = SimulatedMedia(clock, port_max=SIM_PORT_MIN + max(999, min(calls * 5, 65535 - SIM_PORT_MIN)))
    await driver.start()
    return driver
