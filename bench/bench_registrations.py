"""ul_dump parse cost vs the json.loads floor, at 1k / 10k / 100k contacts.

Bodies are generated from the captured contact schema
(tests/fixtures/opensips-3.4/mi/ul_dump.populated.json: UDP/TCP/WS mix, DST_WS flags).
For each size it prints:
  loads      plain json.loads of the body (the floor)
  ours       decode_response(typed=decode_dump) + parse_contacts (what the collectors do)
  generic    the same through json.loads (the path for unusual replies, or without msgspec)
  fetch      ours over loopback HTTP from the fake mi_http, vs fetch + json.loads
Usage: .venv/bin/python bench/bench_registrations.py [--sizes 1000,10000,100000] [--no-fetch]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from opsconsole_opensips.client import HTTPMIClient  # noqa: E402
from opsconsole_opensips.codec import decode_response  # noqa: E402
from opsconsole_opensips.parse import parse_contacts  # noqa: E402
from opsconsole_opensips.wire import decode_dump  # noqa: E402

CAPTURE = ROOT / "tests" / "fixtures" / "opensips-3.4" / "mi" / "ul_dump.populated.json"


def make_body(count: int) -> bytes:
    """`count` AORs with one contact each, cycling through the captured contacts."""
    domain = json.loads(CAPTURE.read_bytes())["result"]["Domains"][0]
    samples = [(a["AOR"], a["Contacts"][0]) for a in domain["AORs"]]
    aors = []
    for i in range(count):
        aor, contact = samples[i % len(samples)]
        contact = dict(contact, ContactID=str(10**18 + i), Callid=f"{contact['Callid']}-{i}")
        aors.append({"AOR": f"{aor}-{i}", "Contacts": [contact]})
    reply = {"jsonrpc": "2.0", "result": {"Domains": [{"name": "location", "hash_size": 512, "AORs": aors}]}, "id": 1}
    return json.dumps(reply, separators=(",", ":")).encode()


def best_of(runs: int, func) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


async def fetch_times(body: bytes, runs: int) -> tuple[float, float]:
    import httpx
    from support.mi_server import MIServer

    with MIServer("3.4") as server:
        server.set_response("ul_dump", body)
        client = HTTPMIClient(server.url, timeout=120, max_bytes=1 << 30)
        raw = httpx.AsyncClient(timeout=120, trust_env=False)
        request = b'{"jsonrpc":"2.0","method":"ul_dump","id":1}'
        ours = floor = float("inf")
        try:
            for _ in range(runs):
                gc.collect()
                t = time.perf_counter()
                parse_contacts(await client.call("ul_dump", typed=decode_dump))
                ours = min(ours, time.perf_counter() - t)
                gc.collect()
                t = time.perf_counter()
                reply = await raw.post(server.url, content=request, headers={"Content-Type": "application/json"})
                json.loads(reply.content)
                floor = min(floor, time.perf_counter() - t)
        finally:
            await client.aclose()
            await raw.aclose()
    return ours, floor


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-fetch", action="store_true")
    args = parser.parse_args()
    print(f"{'contacts':>9} {'MB':>7} {'loads s':>8} {'ours s':>8} {'ratio':>6} {'generic':>8} {'ratio':>6}   "
          f"{'fetch+ours':>10} {'fetch+loads':>11} {'ratio':>6}")
    for size in (int(s) for s in args.sizes.split(",")):
        body = make_body(size)
        floor = best_of(args.runs, lambda: json.loads(body))
        ours = best_of(args.runs, lambda: parse_contacts(decode_response(body, max_bytes=1 << 30, typed=decode_dump)))
        generic = best_of(args.runs, lambda: parse_contacts(decode_response(body, max_bytes=1 << 30)))
        line = (f"{size:>9} {len(body) / 1e6:>7.1f} {floor:>8.3f} {ours:>8.3f} {ours / floor:>6.2f} "
                f"{generic:>8.3f} {generic / floor:>6.2f}")
        if not args.no_fetch:
            fetch_ours, fetch_floor = asyncio.run(fetch_times(body, args.runs))
            line += f"   {fetch_ours:>10.3f} {fetch_floor:>11.3f} {fetch_ours / fetch_floor:>6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
