"""The demo MI server behaves like the measured mi_http (fixtures opensips-3.4/mi, scale/)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from opsconsole_demo import DemoPlatform
from opsconsole_demo import mi_server
from opsconsole_demo.mi_server import ul_dump_cost
from test_demo_shapes import FakeClock

REQUEST = {"jsonrpc": "2.0", "method": "version", "id": 1}


def platform(**kwargs) -> DemoPlatform:
    kwargs.setdefault("real_rtpengine", False)
    return DemoPlatform(tick=None, clock=FakeClock(), **kwargs)


async def raw_exchange(url: str, request: bytes, timeout: float) -> bytes:
    """Send raw bytes to the MI port; return what came back before `timeout` (b"" if nothing)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), timeout)
    except asyncio.TimeoutError:
        return b""
    finally:
        writer.close()


async def test_post_json_is_answered_like_mi_http():
    async with platform() as demo, httpx.AsyncClient() as client:
        reply = await client.post(demo.mi_url, json=REQUEST)
        with_method = await client.post(demo.mi_url + "/version", json=REQUEST)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {"jsonrpc": "2.0", "result": {"Server": "OpenSIPS (3.4.18 (x86_64/linux))"}, "id": 1}
    assert with_method.json() == reply.json()  # POST /mi/<anything> works like /mi, as captured


@pytest.mark.parametrize("path", ["/foo", "/"])
async def test_wrong_path_gets_400_html(path):
    async with platform() as demo, httpx.AsyncClient() as client:
        reply = await client.post(demo.mi_url.replace("/mi", path), json=REQUEST)
    assert reply.status_code == 400 and reply.headers["content-type"] == "text/html"
    assert reply.text == "<html><body>Unable to parse URL!</body></html>"


@pytest.mark.parametrize("head", [
    b"POST /mi HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n",
    b"POST /mi HTTP/1.1\r\nHost: x\r\n",
    b"GET /mi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
], ids=["form-urlencoded", "no-content-type", "get"])
async def test_requests_without_json_content_type_are_never_answered(head):
    body = json.dumps(REQUEST).encode()
    request = head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    async with platform() as demo:
        silent = await raw_exchange(demo.mi_url, request, timeout=0.3)
        async with httpx.AsyncClient() as client:
            after = await client.post(demo.mi_url, json=REQUEST)  # the next proper request works
    assert silent == b""
    assert after.status_code == 200


async def test_requests_are_served_one_at_a_time(monkeypatch):
    release = asyncio.Event()

    async def held_sleep(seconds):  # the ul_dump "cost" lasts until the test releases it
        await release.wait()

    monkeypatch.setattr(mi_server, "emulate_cost", held_sleep)
    finished = []
    async with platform() as demo, httpx.AsyncClient() as client:
        async def call(method):
            await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": method, "id": 1})
            finished.append(method)

        dump = asyncio.create_task(call("ul_dump"))
        while not demo.server.lock.locked():
            await asyncio.sleep(0.01)
        version = asyncio.create_task(call("version"))
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert finished == []  # version waits behind the dump
        release.set()
        await asyncio.gather(dump, version)
    assert finished == ["ul_dump", "version"]


async def test_reply_above_the_buffer_is_http_500():
    async with platform(buffer_size=10_000) as demo, httpx.AsyncClient() as client:
        full = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "ul_dump", "id": 1})
        brief = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "ul_dump", "id": 1,
                                                     "params": {"brief": 1}})
        after = await client.post(demo.mi_url, json=REQUEST)
    assert full.status_code == 500  # 70 contacts ≈ 21 KB > 10 KB
    assert brief.status_code == 200 and len(brief.json()["result"]["Domains"][0]["AORs"]) == 70
    assert after.status_code == 200  # mi_http kept answering afterwards


async def test_default_buffer_fails_a_20k_dump_but_not_its_brief_form():
    async with platform(size=20_000, time_scale=0.0) as demo, httpx.AsyncClient(timeout=30) as client:
        full = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "ul_dump", "id": 1})
        brief = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "ul_dump", "id": 1,
                                                     "params": {"brief": 1}})
    assert full.status_code == 500  # scale.md: -M 16, 20k contacts -> HTTP 500
    assert brief.status_code == 200 and len(brief.json()["result"]["Domains"][0]["AORs"]) == 20_000


@pytest.mark.parametrize(("params", "brief"), [(None, False), ({"brief": 1}, True)])
async def test_ul_dump_waits_the_scaled_quadratic_cost(monkeypatch, params, brief):
    slept = []

    async def recording_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(mi_server, "emulate_cost", recording_sleep)
    request = {"jsonrpc": "2.0", "method": "ul_dump", "id": 1, **({"params": params} if params else {})}
    async with platform(size=700, time_scale=0.5) as demo, httpx.AsyncClient() as client:
        reply = await client.post(demo.mi_url, json=request)
    assert reply.status_code == 200
    assert slept == [pytest.approx(ul_dump_cost(700, brief=brief) * 0.5)]


def test_fitted_cost_matches_the_measurements_and_grows_quadratically():
    # scale.md medians (seconds): full 1k 0.0098, 5k 0.1068, 10k 0.3923; brief 1k 0.0026, 10k 0.0920, 20k 0.4027
    for contacts, brief, measured in ((1000, False, 0.0098), (5000, False, 0.1068), (10000, False, 0.3923),
                                      (1000, True, 0.0026), (10000, True, 0.0920), (20000, True, 0.4027)):
        assert ul_dump_cost(contacts, brief) == pytest.approx(measured, rel=0.2)
    assert ul_dump_cost(200_000, False) / ul_dump_cost(100_000, False) > 3.9


async def test_40_speaks_the_new_names_only_where_40_does():
    async with platform(version="4.0") as demo, httpx.AsyncClient() as client:
        async def call(method):
            return (await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": method, "id": 1})).json()

        new = await call("rtpengine:show")
        old = await call("rtpengine_show")
        dump = await call("usrloc:dump")
        alias = await call("ul_dump")
    assert new["result"][0]["Nodes"][0]["url"] == f"udp:{demo.ng[0]}:{demo.ng[1]}"
    assert old["error"] == {"code": -32601, "message": "Method not found"}
    assert dump["result"] == alias["result"]


async def test_overrides_feed_load_config():
    from console.config import load_config

    async with platform() as demo:
        config = load_config(demo.overrides(), env={}, discover=False)
    assert config.mi_url == demo.mi_url and config.ng == demo.ng and config.cli == demo.cli


async def test_everything_is_closed_after_exit():
    async with platform() as demo:
        url, ng, cli = demo.mi_url, demo.ng, demo.cli
    host, port = url.split("//")[1].split("/")[0].split(":")
    for address in ((host, int(port)), cli):
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)


async def test_rtpengine_show_names_the_demo_relay():
    async with platform() as demo, httpx.AsyncClient() as client:
        reply = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "rtpengine_show", "id": 1})
        ps = await client.post(demo.mi_url, json={"jsonrpc": "2.0", "method": "ps", "id": 1})
    assert reply.json()["result"][0]["Nodes"][0]["url"] == f"udp:{demo.ng[0]}:{demo.ng[1]}"
    httpd = demo.mi_url.split("//")[1].split("/")[0]
    assert f"HTTPD {httpd}" in [p["Type"] for p in ps.json()["result"]["Processes"]]
