"""RTPengine-side cost of per-call `query` (the call-quality figures) at 1 000 calls, per minute.

Starts a real RTPengine (userspace, loopback; tests/support/rtpengine_daemon.start_daemon), places
`--calls` offer/answer calls, RTP + RTCP flowing on `--talking` of them (so their replies carry SSRC
statistics), then asks `query` at each budget (queries per second) for `--seconds` and reads what it
cost RTPengine: its own accounting of time spent in `query` (ng `statistics`
controlstatistics, per proxy `queryduration`) and the CPU time of the daemon
process (/proc utime+stime, which includes the RTP it relays meanwhile, so the idle baseline is
measured first and subtracted).  Also the client side: our decode+parse per reply, and the wall time
of one round over every call at the source's concurrency (what one-shot `diagnose` would spend).

`live`: the console's own live session (console/live.py, the rotating detail budget) against the same
RTPengine for `--live-seconds`: 2 s polls, 30 s checks, the Calls screen with 40 rows on screen.  What it
cost RTPengine per minute (its `query` accounting, and its CPU less the idle baseline: that includes
the CLI `list sessions all` / `list interfaces` and ng `statistics` of every poll), how many queries
per second it sent, and how long it took until every call had been queried (the coverage bound).

    .venv/bin/python bench/bench_quality.py [--calls 1000] [--talking 16] [--seconds 20] [--budgets 15,33,100]
                                            [--live-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "real"))

from opsconsole_demo.rtcp import Reception  # noqa: E402
from opsconsole_rtpengine import codec, parse  # noqa: E402
from opsconsole_rtpengine.ng import NgClient  # noqa: E402
from opsconsole_rtpengine.source import QUERY_CONCURRENCY  # noqa: E402
from support.rtpengine_daemon import make_call, start_daemon  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb() -> float:
    """This process's resident set now (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def query_accounting(ng: NgClient) -> tuple[int, float]:
    """(queries, seconds) RTPengine counted for `query` so far (its controlstatistics)."""
    stats = await ng.statistics()
    proxies = stats.get("controlstatistics", {}).get("proxies", [])
    count = sum(int(p.get("querycount", 0)) for p in proxies)
    seconds = sum(float(p.get("queryduration", 0)) for p in proxies)
    return count, seconds


async def talk(calls, stop: asyncio.Event) -> None:
    """RTP every 20 ms and an RTCP round every ~1 s on the talking calls (RTPengine then has MOS)."""
    while not stop.is_set():
        now = time.time()
        for call in calls:
            call.tick(now)
        await asyncio.sleep(0.02)


async def run(args) -> dict:
    import test_real_quality as real  # the real test's endpoints: RTP + RTCP from local sockets

    # the quiet calls carry no media: without a long --timeout RTPengine ends them after 60 s
    daemon = start_daemon(ports=4 * args.calls + 64, extra_args=("--timeout=3600", "--silent-timeout=3600"))
    ng = NgClient(*daemon.ng, timeout=5.0)
    talking, stop = [], asyncio.Event()
    try:
        good, bad = Reception(0, 5, 20), Reception(5, 160, 20, 40)
        for n in range(args.talking):
            talking.append(await real._place(ng, f"bench-talk-{n}", bad if n % 4 == 0 else good, good))
        for n in range(args.calls - args.talking):
            await make_call(ng, f"bench-quiet-{n}")
        callids = [f"bench-talk-{n}" for n in range(args.talking)] + \
                  [f"bench-quiet-{n}" for n in range(args.calls - args.talking)]
        pump = asyncio.ensure_future(talk(talking, stop))
        await asyncio.sleep(4)  # RTCP rounds: the talking calls have MOS entries now

        # idle baseline: the daemon's CPU while only the talking calls' media flows
        cpu0 = cpu_seconds(daemon.pid)
        await asyncio.sleep(args.seconds)
        idle_cpu_per_s = (cpu_seconds(daemon.pid) - cpu0) / args.seconds

        results = {"calls": args.calls, "talking": args.talking, "seconds": args.seconds,
                   "idle_rtpengine_cpu_per_min_s": round(idle_cpu_per_s * 60, 3), "budgets": []}
        for budget in args.budgets:
            results["budgets"].append(await measure(ng, daemon.pid, callids, budget, args.seconds, idle_cpu_per_s))

        if args.live_seconds > 0:
            results["live"] = await live_session(daemon, ng, args.live_seconds, idle_cpu_per_s)
        results["client"] = await client_side(ng, callids)
        results["one_round"] = await one_round(ng, callids)
        stop.set()
        await pump
        return results
    finally:
        stop.set()
        for call in talking:
            call.close()
        await ng.aclose()
        daemon.stop()
        daemon.log_path.unlink(missing_ok=True)


async def measure(ng: NgClient, pid: int, callids: list[str], budget: float, seconds: float,
                  idle_cpu_per_s: float) -> dict:
    """`budget` queries per second, round-robin over every call, for `seconds`."""
    count0, spent0 = await query_accounting(ng)
    cpu0 = cpu_seconds(pid)
    started = time.monotonic()
    sent, turn = 0, 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * budget) - sent
        if due > 0:
            batch = [callids[(turn + i) % len(callids)] for i in range(due)]
            turn += due
            await asyncio.gather(*(ng.query(c) for c in batch))
            sent += due
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    count1, spent1 = await query_accounting(ng)
    cpu = cpu_seconds(pid) - cpu0 - idle_cpu_per_s * elapsed
    per_min = 60 / elapsed
    return {
        "queries_per_s": budget,
        "every_call_within_s": round(len(callids) / budget, 1),
        "queries": count1 - count0,
        "rtpengine_query_time_per_min_ms": round((spent1 - spent0) * per_min * 1000, 2),
        "rtpengine_cpu_per_min_ms": round(max(0.0, cpu) * per_min * 1000, 1),
        "rtpengine_us_per_query": round((spent1 - spent0) / max(1, count1 - count0) * 1e6, 1),
    }


async def live_session(daemon, ng: NgClient, seconds: float, idle_cpu_per_s: float, rows: int = 40) -> dict:
    """The live session's own budget: the rows on screen plus the rotation, as the console polls."""
    from console.live import Interest, LiveSession
    from console.plugins import load_plugins
    from console.service import ConsoleService

    service = ConsoleService(daemon.config(timeout=5.0), plugins=load_plugins())
    session = LiveSession(service, interval=2.0, heavy_interval=30.0)
    try:
        rss0 = rss_mb()
        count0, spent0 = await query_accounting(ng)
        started = time.perf_counter()
        await session.poll_once()  # every session: the first checks judge every call
        first_poll_ms = (time.perf_counter() - started) * 1000
        count1, spent1 = await query_accounting(ng)
        listed = sorted(s.callid for s in session.view.media.sessions)
        session.set_interest(Interest(screen="calls", detail_callids=frozenset(listed[:rows])))
        cpu0, started, client0 = cpu_seconds(daemon.pid), time.monotonic(), time.process_time()
        first_asked: dict[str, float] = {}
        polls = 0
        while time.monotonic() - started < seconds:
            await session.poll_once()
            polls += 1
            asked = session.last_options.media_detail_callids or frozenset(listed)
            for callid in asked:
                first_asked.setdefault(callid, time.monotonic() - started)
            await asyncio.sleep(session.interval)
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - client0
        count2, spent2 = await query_accounting(ng)
        cpu = cpu_seconds(daemon.pid) - cpu0 - idle_cpu_per_s * elapsed
        per_min = 60 / elapsed
        covered = [first_asked[c] for c in listed if c in first_asked]
        return {
            "seconds": round(elapsed, 1), "polls": polls, "rows_on_screen": rows,
            "rotation_per_poll": session.rotation_size(len(listed)),
            "queries_per_s": round((count2 - count1) / elapsed, 1),
            "rtpengine_query_time_per_min_ms": round((spent2 - spent1) * per_min * 1000, 2),
            "rtpengine_cpu_per_min_ms": round(max(0.0, cpu) * per_min * 1000, 1),
            "every_call_queried_within_s": round(max(covered), 1) if len(covered) == len(listed) else None,
            "calls_covered": f"{len(covered)}/{len(listed)}",
            # our side: what the session holds (every session keeps its last details) and its CPU
            "client_rss_growth_mb": round(rss_mb() - rss0, 1),
            "client_cpu_per_min_s": round(client_cpu * per_min, 2),
            "first_poll": {"queries": count1 - count0, "wall_ms": round(first_poll_ms, 1),
                           "rtpengine_query_time_ms": round((spent1 - spent0) * 1000, 2)},
        }
    finally:
        session.close()
        await service.aclose()


async def client_side(ng: NgClient, callids: list[str]) -> dict:
    """Our CPU per reply: decode (codec) + parse into the model, on real replies."""
    raws = []
    for callid in callids[:50]:
        raws.append((callid, await ng.query(callid)))
    datagrams = [codec.encode("c", reply) for _, reply in raws]
    started = time.process_time()
    rounds = 20
    for _ in range(rounds):
        for (callid, _), datagram in zip(raws, datagrams):
            parse.parse_query(callid, codec.decode(datagram)[1])
    per = (time.process_time() - started) / (rounds * len(raws))
    return {"decode_and_parse_us_per_reply": round(per * 1e6, 1),
            "with_mos_entries": sum(1 for _, reply in raws if reply.get("SSRC"))}


async def one_round(ng: NgClient, callids: list[str]) -> dict:
    """Every call once at the source's concurrency (one-shot diagnose/snapshot with media details)."""
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def one(callid: str) -> None:
        async with gate:
            parse.parse_query(callid, await ng.query(callid))

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in callids))
    return {"calls": len(callids), "wall_ms": round((time.perf_counter() - started) * 1000, 1),
            "concurrency": QUERY_CONCURRENCY}


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--talking", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--budgets", type=lambda text: [float(v) for v in text.split(",") if v], default=[15, 33, 100],
                        help="fixed query rates to measure, comma-separated ('' for none)")
    parser.add_argument("--live-seconds", type=float, default=60.0, help="0: skip the live session's run")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
