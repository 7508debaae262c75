"""The demo's SIP endpoint on real loopback sockets: garbage never stops it, TCP framing holds."""

from __future__ import annotations

import asyncio
import random

from opsconsole_demo import DemoPlatform
from opsconsole_demo.sip import MAX_MESSAGE

# (asyncio never sends an empty datagram, so b"" is covered by the parser tests only)
GARBAGE = [b"\x00" * 100, b"SIP/2.0 200 OK\r\n\r\n", b"REGISTER\r\n\r\n", b"\xff\xfe" * 3000,
           b"REGISTER sip:x SIP/2.0\r\nVia: a\r\n\r\n", b"\r\n\r\n", b"INVITE sip:x SIP/2.0\r\n" + b"X: y\r\n" * 600]


def request(method: str, callid: str, *, user: str = "probe", extra: str = "") -> bytes:
    return (f"{method} sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{callid}\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag=p\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {callid}\r\n"
            f"CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n").encode()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.replies.put_nowait(data)


async def test_garbage_datagrams_are_counted_and_the_endpoint_keeps_answering():
    rng = random.Random(7)
    noise = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(40)]
    async with DemoPlatform(size=3, real_rtpengine=False, tick=None, calls=0, sip=True) as demo:
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0),
                                                                remote_addr=demo.sip)
        try:
            for datagram in GARBAGE + noise:
                transport.sendto(datagram)
            transport.sendto(request("OPTIONS", "after-garbage"))
            reply = await asyncio.wait_for(client.replies.get(), 10)
            assert reply.startswith(b"SIP/2.0 200 OK\r\n") and b"Call-ID: after-garbage\r\n" in reply
            stats = demo.sip_endpoint.stats
            assert stats["dropped"] == len(GARBAGE) + len(noise) and stats["options"] == 1
            assert client.replies.empty()  # nothing was answered but the OPTIONS
        finally:
            transport.close()


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def test_tcp_carries_several_requests_and_survives_an_oversized_one():
    async with DemoPlatform(size=3, real_rtpengine=False, tick=None, calls=0, sip=True) as demo:
        reader, writer = await asyncio.open_connection(*demo.sip_tcp)
        try:
            contact = "Contact: <sip:t1@127.0.0.1:5071;transport=tcp>;expires=60\r\nUser-Agent: tcp-ua\r\n"
            writer.write(b"\r\n\r\n" + request("REGISTER", "tcp-1", user="t1", extra=contact)
                         + request("OPTIONS", "tcp-2"))
            first, second = await read_reply(reader), await read_reply(reader)
            assert b"Call-ID: tcp-1\r\n" in first and b"Contact: <sip:t1@127.0.0.1:5071;transport=tcp>;expires=60" in first
            assert second.startswith(b"SIP/2.0 200 OK\r\n") and b"Call-ID: tcp-2\r\n" in second
            (stored,) = demo.state.contacts_of("t1")
            assert (stored.user_agent, stored.socket) == ("tcp-ua", f"tcp:127.0.0.1:{demo.sip_tcp[1]}")

            writer.write(b"X" * (MAX_MESSAGE + 100))  # no end of head within the bound: the connection goes
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()
        reader, writer = await asyncio.open_connection(*demo.sip_tcp)
        try:
            writer.write(request("OPTIONS", "tcp-3"))
            assert b"Call-ID: tcp-3\r\n" in await read_reply(reader)
        finally:
            writer.close()
