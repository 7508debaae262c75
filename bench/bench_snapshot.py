"""One snapshot (every source, full lists) vs the floor: a plain fetch of the same MI responses + json.loads.

    .venv/bin/python bench/bench_snapshot.py [--size 70] [--size 10000] [-n 10]

Runs the demo platform in-process (simulated media so the numbers are about our code,
dump cost emulation off), then for each size: the median of N `Collector.collect()`
against the median of N plain httpx POSTs of the MI methods the OpenSIPS source sends,
each body decoded with json.loads.  Prints one line per size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

from console.config import load_config
from opsconsole_demo import DemoPlatform
from console.plugins import CollectOptions
from console.snapshot import Collector

FLOOR_METHODS = [
    ("version", None), ("uptime", None), ("get_statistics", {"statistics": ["all"]}),
    ("rtpengine_show", None), ("list_tcp_conns", None), ("ul_dump", None), ("dlg_list_ctx", None),
]


async def floor_once(client: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    for i, (method, params) in enumerate(FLOOR_METHODS):
        body = {"jsonrpc": "2.0", "method": method, "id": i}
        if params is not None:
            body["params"] = params
        reply = await client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})
        json.loads(reply.content)
    return time.perf_counter() - started


async def run(size: int, n: int) -> None:
    async with DemoPlatform(size=size, real_rtpengine=False, tick=None, time_scale=0.0) as demo:
        config = load_config(demo.overrides() | {"full_sync_max": 10**9, "timeout": 30.0}, discover=False, env={})
        collector = Collector(config)
        options = CollectOptions(full_sync_max=10**9)
        await collector.collect(options)  # warm: version detection, connections
        ours = []
        for _ in range(n):
            started = time.perf_counter()
            snap = await collector.collect(options)
            ours.append(time.perf_counter() - started)
        await collector.aclose()
        async with httpx.AsyncClient(timeout=30) as client:
            await floor_once(client, demo.mi_url)
            floor = [await floor_once(client, demo.mi_url) for _ in range(n)]
    contacts = len(snap.signalling.contacts or ())
    ok = all(s.ok for s in snap.sources.values())
    print(f"{size:>7} contacts ({contacts} parsed, {len(snap.calls)} calls, sources ok={ok}): "
          f"snapshot median {statistics.median(ours) * 1000:.1f} ms vs plain MI fetch+json.loads "
          f"{statistics.median(floor) * 1000:.1f} ms -> ratio {statistics.median(ours) / statistics.median(floor):.2f} "
          f"(snapshot also covers RTPengine ng/CLI and host)")


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--size", type=int, action="append")
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    for size in args.size or [70, 10_000]:
        asyncio.run(run(size, args.n))


if __name__ == "__main__":
    main()
