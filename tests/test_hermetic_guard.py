"""The hermeticity guard itself (tests/support/hermetic.py): it refuses exactly the well-known ports."""

import socket

import pytest

from support import hermetic


@pytest.mark.parametrize("kind, address", [
    (socket.SOCK_DGRAM, ("127.0.0.1", 2223)),
    (socket.SOCK_DGRAM, ("127.0.0.1", 5060)),
    (socket.SOCK_STREAM, ("127.0.0.1", 8888)),
    (socket.SOCK_STREAM, ("::1", 9900, 0, 0)),
    (socket.SOCK_STREAM | socket.SOCK_NONBLOCK, ("localhost", 5060)),
])
def test_well_known_loopback_ports_are_forbidden(kind, address):
    assert hermetic.forbidden(kind, address, hermetic.UDP_PORTS)


@pytest.mark.parametrize("kind, address", [
    (socket.SOCK_DGRAM, ("127.0.0.1", 9900)),     # the CLI decoy is TCP only
    (socket.SOCK_STREAM, ("127.0.0.1", 2223)),    # ng is UDP only
    (socket.SOCK_DGRAM, ("127.0.0.1", 60000)),    # inside the ephemeral range: only where a decoy holds it
    (socket.SOCK_DGRAM, ("192.0.2.1", 2223)),     # not loopback
    (socket.SOCK_DGRAM, "/tmp/some.sock"),
])
def test_other_destinations_pass(kind, address):
    assert hermetic.forbidden(kind, address, hermetic.UDP_PORTS) is None


def test_decoy_port_guarded_when_decoys_run():
    assert hermetic.forbidden(socket.SOCK_DGRAM, ("127.0.0.1", 60000),
                              hermetic.UDP_PORTS | hermetic.DECOY_UDP_PORTS) == "udp 127.0.0.1:60000"


def test_a_datagram_to_the_ng_default_is_refused_and_recorded():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ConnectionRefusedError, match="127.0.0.1:2223"):
            sock.sendto(b"x d7:command4:pinge", ("127.0.0.1", 2223))
    assert len(hermetic._violations) == 1 and hermetic._violations[0].startswith("udp 127.0.0.1:2223 (from ")
    hermetic._violations.clear()   # this test tripped the guard on purpose
