"""What the `topology` source costs per collection (#16): two real OpenSIPS nodes in one cluster and two real
RTPengines in one weighted set (tests/support/cluster.py, every port from the OS), 50 collections of node 1's
RTPengine sets + clusterer state (rtpengine_show, clusterer_list, clusterer_list_shtags, clusterer_list_cap, and an
ng ping + statistics per engine).

    OPSCONSOLE_TEST_OPENSIPS=~/.cache/opsconsole/opensips .venv/bin/python bench/bench_topology.py [3.4|4.0]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from console.config import Config  # noqa: E402
from console.plugins import CollectOptions  # noqa: E402
from opsconsole_opensips.source import OpenSIPSSource  # noqa: E402
from opsconsole_opensips.topology import TopologySource  # noqa: E402
from support.cluster import start_cluster_pair  # noqa: E402
from support.rtpengine_daemon import start_daemon  # noqa: E402

ROUNDS = 50


async def collect_times(mi_url: str) -> list[float]:
    config = Config(mi_url=mi_url, ng=None, cli=None, timeout=2.0)
    opensips = OpenSIPSSource(config)
    topology = TopologySource(config, opensips)
    try:
        await topology.collect(CollectOptions())  # detection (version, which) once
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await topology.collect(CollectOptions())
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        await opensips.aclose()


def main(version: str) -> None:
    engines = [start_daemon(ports=20), start_daemon(ports=20)]
    pair = None
    try:
        sock = " ".join(f"udp:127.0.0.1:{e.ng[1]}={weight}" for weight, e in enumerate(engines, 1))
        pair = start_cluster_pair(version, rtpengine_sock=sock)
        times = sorted(asyncio.run(collect_times(pair.active.mi_url)))
        print(f"OpenSIPS {version}: topology collection over {ROUNDS}: median {statistics.median(times):.2f} ms, "
              f"p95 {times[int(ROUNDS * 0.95) - 1]:.2f} ms, max {times[-1]:.2f} ms")
    finally:
        if pair is not None:
            pair.close()
        for engine in engines:
            engine.stop()
            engine.log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "3.4")
