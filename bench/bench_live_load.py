"""MI worker time a live console imposes on OpenSIPS, events vs polling dumps, at 100k contacts.

Runs the real OpenSIPSSource against the demo OpenSIPS (loopback mi_http + UDP
events) for N polls on a simulated clock (`--interval` s apart), and sums the
MI server-side handling time of every request it sent.  The demo sleeps the
measured OpenSIPS 3.4 ul_dump curve times `--time-scale`; that sleep is replaced
by the unscaled curve (what a real 3.4 would spend), every other request counts
its measured demo handling time.  mi_http has one worker: a second spent here
is a second no other MI client is answered (60 s/min = MI saturated).

    .venv/bin/python bench/bench_live_load.py [--size 100000] [--polls 30] [--time-scale 0.001]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections import defaultdict

import psutil

from console.config import Config
from opsconsole_demo import DemoPlatform
from opsconsole_demo.mi_server import ul_dump_cost
from console.plugins import CollectOptions
from opsconsole_opensips.source import OpenSIPSSource


class SimClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class WorkerMeter:
    """Wraps the demo server's request handler: modelled OpenSIPS seconds per MI method."""

    def __init__(self, demo: DemoPlatform) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.requests: dict[str, int] = defaultdict(int)
        server = demo.server
        handle = server._handle

        async def metered(body: bytes):
            method, brief = _method_of(body)
            contacts = server.renderer.state.contact_count
            started = time.perf_counter()
            reply = await handle(body)
            spent = time.perf_counter() - started
            if method in ("ul_dump", "usrloc:dump"):
                emulated = ul_dump_cost(contacts, brief)
                spent = max(0.0, spent - emulated * server.time_scale) + emulated
            self.seconds[method] += spent
            self.requests[method] += 1
            return reply

        server._handle = metered

    def reset(self) -> None:
        self.seconds.clear()
        self.requests.clear()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _method_of(body: bytes) -> tuple[str, bool]:
    try:
        request = json.loads(body)
        params = request.get("params")
        return str(request.get("method")), isinstance(params, dict) and bool(params.get("brief"))
    except (ValueError, AttributeError):
        return "?", False


async def run_console(demo, clock, meter, options: CollectOptions, polls: int, interval: float, **config):
    """N collections `interval` simulated seconds apart; returns (last state, source)."""
    source = OpenSIPSSource(Config(mi_url=demo.mi_url, timeout=30.0, **config), clock=clock, monotonic=clock)
    meter.reset()
    state = None
    for _ in range(polls):
        state = await source.collect(options)
        clock.now += interval
        await demo.step(clock.now)
        await asyncio.sleep(0.01)  # let the event socket drain
    return state, source


def report(label: str, meter: WorkerMeter, minutes: float, state) -> None:
    per_minute = meter.total / minutes
    busy = "SATURATED" if per_minute >= 60 else f"{per_minute / 60:.2%}"
    print(f"{label:44} {per_minute:10.3f} s/min  MI busy {busy:>9}  mode={state.contacts_mode or '-':15}"
          f" contacts={len(state.contacts or ()):>6}")
    heavy = sorted(meter.seconds.items(), key=lambda item: -item[1])[:4]
    print("    " + ", ".join(f"{m} x{meter.requests[m]}: {s:.3f} s" for m, s in heavy))


async def main(args) -> None:
    clock = SimClock()
    process = psutil.Process()
    async with DemoPlatform(size=args.size, real_rtpengine=False, tick=None, time_scale=args.time_scale,
                            clock=clock, buffer_size=args.buffer_mb * 1024 * 1024, calls=args.calls) as demo:
        meter = WorkerMeter(demo)
        minutes = args.polls * args.interval / 60
        print(f"demo OpenSIPS 3.4, {demo.state.contact_count} contacts, {args.polls} polls every {args.interval:g} s "
              f"({minutes:g} simulated min), mi_http buffer {args.buffer_mb} MB, time_scale {args.time_scale:g}")
        print(f"{'console':44} {'MI worker':>15}")

        gc.collect()
        rss_demo = process.memory_info().rss
        live, live_source = await run_console(demo, clock, meter, CollectOptions(live=True), args.polls, args.interval)
        report("live: events + counters (no dump)", meter, minutes, live)
        print(f"    events received: {live_source.live.listener.events_received}; {live.contacts_note[:110]}")

        meter.reset()
        forced = await live_source.collect(CollectOptions(live=True, force_full_sync=True))
        gc.collect()
        rss_full = process.memory_info().rss
        print(f"forced full sync (S): {meter.total:.1f} s of MI worker time, mode={forced.contacts_mode}, "
              f"{len(forced.contacts or ())} contacts, errors={list(forced.errors)[:1]}")
        started = time.perf_counter()
        for _ in range(5):
            clock.now += args.interval
            await live_source.collect(CollectOptions(live=True))
        print(f"live collect with {len(live_source.live.registrations)} contacts in the store: "
              f"{(time.perf_counter() - started) / 5 * 1000:.0f} ms each (console side, wall)")
        await live_source.aclose()

        fallback, fallback_source = await run_console(demo, clock, meter, CollectOptions(live=True),
                                                      args.polls, args.interval, events=False)
        report("no events: bounded polling (brief/30 s)", meter, minutes, fallback)
        await fallback_source.aclose()

        polls = min(args.polls, args.dump_polls)
        polling, polling_source = await run_console(
            demo, clock, meter, CollectOptions(full_sync_max=10**9), polls, args.interval)
        report(f"polling console: full ul_dump every poll ({polls})", meter, polls * args.interval / 60, polling)
        await polling_source.aclose()

        print(f"RSS: demo alone {rss_demo / 2**20:.0f} MiB; with the live console holding "
              f"{len(forced.contacts or ())} contacts {rss_full / 2**20:.0f} MiB "
              f"(+{(rss_full - rss_demo) / 2**20:.0f} MiB, same process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--dump-polls", type=int, default=3, help="polls for the dump-every-poll console")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--time-scale", type=float, default=0.001)
    parser.add_argument("--buffer-mb", type=int, default=64, help="mi_http reply buffer (64 MB ~ -M 256)")
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
