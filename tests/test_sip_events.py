"""sipp REGISTERs reach opsconsole's live registration store as E_UL_* events, and the
`python -m opsconsole_demo --sip` entry point announces a working SIP port."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import pytest

from opsconsole_opensips.client import HTTPMIClient
from opsconsole_opensips.events import EventListener
from opsconsole_opensips.events_store import DialogStore, EventRouter, RegistrationStore
from opsconsole_opensips.parse import parse_contacts
from test_sip_sipp import CLEAR_SCREEN, MARKUP, RLO, SIPP, sipp_command, sipp_failure

from opsconsole_demo import DemoPlatform

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed")


async def run_sipp(command: list[str], workdir) -> None:
    process = await asyncio.create_subprocess_exec(*command, cwd=workdir, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 40)
    except asyncio.TimeoutError:
        process.kill()  # by PID: the process we started
        await process.wait()
        raise AssertionError("sipp did not finish within 40 s")
    assert process.returncode == 0, sipp_failure(workdir, process.returncode, output)


async def until(condition, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.02)
    return await condition()


async def test_sipp_registrations_arrive_as_events_in_the_live_store(tmp_path):
    user_agents = {"ev1": f"ua{MARKUP}", "ev2": f"ua{CLEAR_SCREEN}{RLO}"}
    rows = [f"{user};127.0.0.1:5070;600;transport=udp;{ua};" for user, ua in user_agents.items()]
    async with DemoPlatform(size=3, real_rtpengine=False, tick=None, calls=0, sip=True) as demo:
        mi = HTTPMIClient(demo.mi_url, timeout=5.0)
        router = EventRouter(RegistrationStore(), DialogStore())
        listener = EventListener(mi, router, transports=("udp",), verify_every=None)
        try:
            assert await listener.start()
            router.registrations.begin_sync()
            router.registrations.load_full(parse_contacts(await mi.call("ul_dump")), now=time.time())

            async def live_user_agents():
                return {c.aor: c.user_agent for c in router.registrations.contacts() if c.aor in user_agents}

            async def registered():
                return await live_user_agents() == user_agents

            async def unregistered():
                return await live_user_agents() == {}

            await run_sipp(sipp_command(demo.sip, tmp_path, rows), tmp_path)
            assert await until(registered), await live_user_agents()
            dump = {(c.aor, c.contact) for c in parse_contacts(await mi.call("ul_dump"))}
            assert dump == {(c.aor, c.contact) for c in router.registrations.contacts()}

            await run_sipp(sipp_command(demo.sip, tmp_path, [r.replace(";600;", ";0;") for r in rows]), tmp_path)
            assert await until(unregistered), await live_user_agents()
            assert listener.protocol_errors == 0
        finally:
            await listener.aclose()
            await mi.aclose()


def test_python_m_console_demo_sip_announces_a_port_that_answers_options():
    command = [sys.executable, "-m", "opsconsole_demo", "--sip", "--json", "--sim-media", "--size", "3", "--tick", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        addresses = json.loads(process.stdout.readline())
        host, port = addresses["sip"]
        options = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-o\r\n"
                   "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: probe-1\r\n"
                   "CSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(10)
            sock.sendto(options, (host, port))
            reply, _ = sock.recvfrom(65535)
        assert reply.startswith(b"SIP/2.0 200 OK\r\n") and b"CSeq: 7 OPTIONS\r\n" in reply
        assert f"SIP registrar: udp:{host}:{port}  tcp:" in process.stdout.readline() + process.stdout.readline() \
            + process.stdout.readline() + process.stdout.readline()
    finally:
        process.terminate()  # by PID; SIGTERM stops the demo cleanly
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_bytes_that_are_not_utf8_reach_event_subscribers_raw_and_the_ua_still_gets_its_200():
    async with DemoPlatform(size=3, real_rtpengine=False, tick=None, calls=0, sip=True) as demo:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[bytes] = asyncio.Queue()
        listener, _ = await loop.create_datagram_endpoint(
            lambda: Collector(events), local_addr=("127.0.0.1", 0))
        sip, client = await loop.create_datagram_endpoint(lambda: Collector(asyncio.Queue()), local_addr=("127.0.0.1", 0))
        try:
            port = listener.get_extra_info("sockname")[1]
            mi = HTTPMIClient(demo.mi_url, timeout=5.0)
            try:
                await mi.call("event_subscribe", {"event": "E_UL_CONTACT_INSERT", "socket": f"udp:127.0.0.1:{port}"})
            finally:
                await mi.aclose()
            raw_ua = b"ua-\xff\xfe-\x1b[2J"
            sip.sendto(b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-r\r\n"
                       b"From: <sip:raw1@127.0.0.1>;tag=1\r\nTo: <sip:raw1@127.0.0.1>\r\nCall-ID: raw-1@h\r\n"
                       b"CSeq: 1 REGISTER\r\nContact: <sip:raw1@127.0.0.1:5070>\r\nUser-Agent: " + raw_ua
                       + b"\r\nContent-Length: 0\r\n\r\n", demo.sip)
            reply = await asyncio.wait_for(client.queue.get(), 10)
            assert reply.startswith(b"SIP/2.0 200 OK\r\n")
            event = await asyncio.wait_for(events.get(), 10)
            assert b'"user_agent":"' + raw_ua.replace(b"\x1b", b"\\u001b") + b'"' in event
        finally:
            listener.close()
            sip.close()


class Collector(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue) -> None:
        self.queue = queue

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait(data)
