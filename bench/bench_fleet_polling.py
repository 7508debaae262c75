"""Polling cost of the fleet (console/fleet.py) at N demo nodes: MI requests and ng commands per second per
node, the node on screen apart, and the console's CPU.  By hand (not a test):

    .venv/bin/python bench/bench_fleet_polling.py [--nodes 20] [--seconds 65] [--size 70]

Every node is an embedded demo platform (simulated RTPengine) in this process, so the CPU figure includes the
simulators'; the request counts are exact (counted where the demo answers them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter

from console.config import load_config
from console.fleet import FleetSession, TargetSpec

OUR_NG = {"ping", "statistics", "list", "query"}  # the demo's own simulation sends offer/answer/delete


async def main(nodes: int, seconds: float, size: int) -> None:
    from opsconsole_demo import DemoPlatform

    async with contextlib.AsyncExitStack() as stack:
        demos, mi, ng = [], [Counter() for _ in range(nodes)], [Counter() for _ in range(nodes)]
        for n in range(nodes):
            demo = await stack.enter_async_context(DemoPlatform(size=size, version=("3.4", "4.0")[n % 2],
                                                                real_rtpengine=False, calls=4, tick=None))
            _count(demo, mi[n], ng[n])
            demos.append(demo)
        specs = [TargetSpec(f"node-{n:02d}", mi_url=d.mi_url, ng=(f"{d.ng[0]}:{d.ng[1]}",),
                            cli=(f"{d.cli[0]}:{d.cli[1]}",)) for n, d in enumerate(demos)]
        fleet = FleetSession(specs, load_config({}, env={}, discover=False), focus=specs[0].name)
        started, cpu = time.monotonic(), time.process_time()
        runner = asyncio.ensure_future(fleet.run(until=lambda: time.monotonic() - started >= seconds))
        await runner
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
        await fleet.aclose()
    focused, others = mi[0], mi[1:]
    per_node = [sum(c.values()) / elapsed for c in others]
    ng_per_node = [sum(v for k, v in c.items() if k in OUR_NG) / elapsed for c in ng[1:]]
    print(f"{nodes} nodes, {elapsed:.0f} s, interval {fleet.interval:g} s, background {fleet.background_interval:g} s")
    print(f"node on screen: {sum(focused.values()) / elapsed:.2f} MI req/s {dict(focused.most_common(6))}")
    print(f"each other node: {min(per_node):.2f}-{max(per_node):.2f} MI req/s {dict(others[0].most_common(8))}")
    print(f"each other node: {min(ng_per_node):.2f}-{max(ng_per_node):.2f} ng commands/s "
          f"{ {k: v for k, v in ng[1].items() if k in OUR_NG} }")
    print(f"all nodes: {sum(sum(c.values()) for c in mi) / elapsed:.1f} MI req/s; "
          f"CPU {100 * cpu / elapsed:.1f} % of a core (console + {nodes} simulators)")


def _count(demo, mi: Counter, ng: Counter) -> None:
    renderer = demo.server.renderer
    answer = renderer.answer

    def counting_answer(request):
        mi[str(request.get("method"))] += 1
        return answer(request)

    renderer.answer = counting_answer
    engine = demo.media.engine
    handle = engine.handle

    def counting_handle(request):
        command = request.get("command")
        ng[command.decode() if isinstance(command, bytes) else str(command)] += 1
        return handle(request)

    engine.handle = counting_handle


if __name__ == "__main__":
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=65.0)
    parser.add_argument("--size", type=int, default=70)
    args = parser.parse_args()
    asyncio.run(main(args.nodes, args.seconds, args.size))
