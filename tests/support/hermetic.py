"""Hermeticity guard: no test (in this process) talks to the well-known ports of daemons it did not start.

The machine may run other OpenSIPS and RTPengine instances on their default ports — CI starts decoys there on
purpose (.ci/run).  Every test port comes from the OS, so a packet or a connection to one of these is a test
reaching something that is not its own: a real bug in the test or in a default of the code under test.

The guard refuses such a `connect`/`sendto` (ConnectionRefusedError, as if nothing listened) and fails the test
that tried, naming the address.  The ports are per protocol, as the decoys hold them: ports below the OS's
ephemeral range can never be a test's own; 60000 UDP (rtpengine ng's usual port) is inside that range, so it is
guarded only where a decoy holds it (OPSCONSOLE_DECOYS=1, set by .ci/run) and the OS cannot hand it to a test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import traceback

import pytest

TCP_PORTS = frozenset({5060, 8888, 9900})   # SIP over TCP, mi_http, rtpengine CLI
UDP_PORTS = frozenset({5060, 2223})         # SIP, rtpengine ng (Debian's default)
DECOY_UDP_PORTS = frozenset({60000})        # rtpengine ng (the tutorial's), guarded when a decoy holds it

_violations: list[str] = []
_lock = threading.Lock()
# Read once at start: tests/conftest.py removes every OPSCONSOLE_* variable while a test runs.
_guarded_udp_ports = UDP_PORTS


def _guarded_udp() -> frozenset[int]:
    return _guarded_udp_ports


def _is_loopback(host: object) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def forbidden(sock_type: int, address: object, udp_ports: frozenset[int]) -> str | None:
    """'udp 127.0.0.1:60000' when this destination is a well-known port of a daemon no test started."""
    if not isinstance(address, tuple) or len(address) < 2 or not isinstance(address[1], int):
        return None
    host, port = address[0], address[1]
    kind = sock_type & 0xF  # strip SOCK_NONBLOCK / SOCK_CLOEXEC
    if kind == socket.SOCK_DGRAM and port in udp_ports and _is_loopback(host):
        return f"udp {host}:{port}"
    if kind == socket.SOCK_STREAM and port in TCP_PORTS and _is_loopback(host):
        return f"tcp {host}:{port}"
    return None


def _refuse(sock: socket.socket, address: object) -> None:
    where = forbidden(sock.type, address, _guarded_udp())
    if where:
        # where from: the innermost frames outside this module and the stdlib's socket/asyncio
        frames = [f for f in traceback.extract_stack()[:-2]
                  if "/asyncio/" not in f.filename and not f.filename.endswith(("socket.py", "selectors.py"))]
        origin = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames[-7:]))
        with _lock:
            _violations.append(f"{where} (from {origin})")
        raise ConnectionRefusedError(f"hermetic tests: {where} is a well-known port no test owns")


def install() -> None:
    """Wraps socket.socket's connect/connect_ex/sendto once for the whole session."""
    cls = socket.socket
    if getattr(cls, "_opsconsole_guarded", False):
        return
    original_connect, original_connect_ex, original_sendto = cls.connect, cls.connect_ex, cls.sendto

    def connect(self, address):
        _refuse(self, address)
        return original_connect(self, address)

    def connect_ex(self, address):
        _refuse(self, address)
        return original_connect_ex(self, address)

    def sendto(self, data, *args):
        _refuse(self, args[-1])
        return original_sendto(self, data, *args)

    cls.connect, cls.connect_ex, cls.sendto = connect, connect_ex, sendto
    cls._opsconsole_guarded = True


def pytest_configure(config) -> None:
    global _guarded_udp_ports
    if os.environ.get("OPSCONSOLE_DECOYS") == "1":
        _guarded_udp_ports = UDP_PORTS | DECOY_UDP_PORTS
    install()


@pytest.fixture(autouse=True)
def no_well_known_ports():
    """Fails the test that tried to reach a well-known port (also when the code under test swallowed the error)."""
    with _lock:
        _violations.clear()
    yield
    with _lock:
        seen = sorted(set(_violations))
        _violations.clear()
    if seen:
        pytest.fail("not hermetic: tried to reach " + ", ".join(seen), pytrace=False)
