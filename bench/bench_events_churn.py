"""Live registration table at 100k contacts: cost of 1 % churn.

Builds a RegistrationStore of N contacts generated in the captured
E_UL_CONTACT_INSERT schema, then applies batches of churn events (refreshes,
unregisters, new registrations) as raw event_datagram bytes and as one
event_stream read, timing decode + parse + apply per batch.

    .venv/bin/python bench/bench_events_churn.py [--contacts 100000] [--churn 0.01] [--batches 20]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
from pathlib import Path

import psutil

from opsconsole_opensips.events import EventStreamDecoder, contact_from_event, decode_datagram, parse_event
from opsconsole_opensips.events_store import RegistrationStore

TEMPLATE = (Path(__file__).parent.parent / "tests" / "fixtures" / "opensips-3.4" / "events"
            / "udp_new_register__E_UL_CONTACT_INSERT_1.json")


def payload(template: dict, method: str, n: int, now: int, cseq: int = 1) -> dict:
    obj = copy.deepcopy(template)
    obj["method"] = method
    params = obj["params"]
    params.update(aor=f"u{n:06d}", uri=f"sip:u{n:06d}@127.0.0.1:{5000 + n % 60000};transport=udp",
                  callid=f"bench-{n}", cseq=cseq, expires=now + 3600)
    return obj


def churn_events(template: dict, live: list[int], next_id: int, count: int, now: int) -> tuple[list[bytes], list[int], int]:
    """60 % refresh, 20 % unregister, 20 % new registration (each as wire bytes)."""
    wire: list[bytes] = []
    chosen = random.sample(live, int(count * 0.8))
    refresh, gone = chosen[: int(count * 0.6)], chosen[int(count * 0.6):]
    for n in refresh:
        wire.append(json.dumps(payload(template, "E_UL_CONTACT_UPDATE", n, now, cseq=2), separators=(",", ":")).encode())
    for n in gone:
        wire.append(json.dumps(payload(template, "E_UL_CONTACT_DELETE", n, now), separators=(",", ":")).encode())
    fresh = list(range(next_id, next_id + count - len(wire)))
    for n in fresh:
        wire.append(json.dumps(payload(template, "E_UL_CONTACT_INSERT", n, now), separators=(",", ":")).encode())
    gone_set = set(gone)
    return wire, [n for n in live if n not in gone_set] + fresh, next_id + len(fresh)


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--churn", type=float, default=0.01, help="fraction of the table changed per batch")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    random.seed(1)
    template = json.loads(TEMPLATE.read_text())
    now = int(time.time())

    started = time.perf_counter()
    contacts = [contact_from_event(payload(template, "E_UL_CONTACT_INSERT", n, now)["params"], now=now)
                for n in range(args.contacts)]
    generated = time.perf_counter() - started
    store = RegistrationStore()
    started = time.perf_counter()
    store.load_full(contacts, now=now)
    loaded = time.perf_counter() - started
    rss_mb = psutil.Process().memory_info().rss / 1e6
    print(f"store: {store.count} contacts (generated in {generated:.2f} s, load_full {loaded * 1000:.0f} ms, "
          f"process RSS {rss_mb:.0f} MB)")

    live, next_id = list(range(args.contacts)), args.contacts
    per_batch = max(1, int(args.contacts * args.churn))
    datagram_times, stream_times, changed = [], [], 0
    for batch in range(args.batches):
        wire, live, next_id = churn_events(template, live, next_id, per_batch, now)
        started = time.perf_counter()
        if batch % 2 == 0:  # event_datagram: one datagram per event
            for data in wire:
                changed += store.apply(parse_event(decode_datagram(data), now=now)).size
            datagram_times.append(time.perf_counter() - started)
        else:  # event_stream: objects back to back, read in 64 KiB chunks
            stream, decoder = b"".join(wire), EventStreamDecoder()
            for offset in range(0, len(stream), 65536):
                for obj in decoder.feed(stream[offset:offset + 65536]):
                    changed += store.apply(parse_event(obj, now=now)).size
            stream_times.append(time.perf_counter() - started)
    assert store.count == len(live), (store.count, len(live))
    started = time.perf_counter()
    expired = store.expire(now + 1800)
    expire_ms = (time.perf_counter() - started) * 1000

    for label, times in (("datagram", datagram_times), ("stream", stream_times)):
        if times:
            median = statistics.median(times)
            print(f"{label:8}: {per_batch} events/batch, median {median * 1000:.1f} ms/batch "
                  f"({median / per_batch * 1e6:.1f} µs/event, max {max(times) * 1000:.1f} ms), {len(times)} batches")
    print(f"changed keys reported: {changed}; table now {store.count}; expire() with nothing due: "
          f"{expire_ms:.2f} ms ({len(expired.removed)} removed)")


if __name__ == "__main__":
    main()
