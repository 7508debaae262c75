"""MI worker time the console imposes on OpenSIPS per minute at 100k contacts.

Compares living on events (subscribe + periodic re-subscribe/verify + usrloc
counters) with polling full dumps.  Dump and counter costs are the real
OpenSIPS 3.4.18 mi_http timings of tests/fixtures/opensips-3.4/events/timing_M256.jsonl
(copied from the lab's scale captures, `-M 256`, 100 000 contacts); the cost of
event_subscribe / subscribers_list was not captured and is assumed ~0.3 ms
(same order as get_statistics).  mi_http has ONE httpd process: every MI
second spent dumping is a second no other MI request (including ours) is answered.

    .venv/bin/python bench/bench_mi_load.py [--interval 2] [--heavy-interval 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

TIMINGS = Path(__file__).parent.parent / "tests" / "fixtures" / "opensips-3.4" / "events" / "timing_M256.jsonl"
SUBSCRIBE_S = 0.0003  # assumption, see module docstring
EVENTS_SUBSCRIBED = 4  # E_UL_CONTACT_INSERT/UPDATE/DELETE + E_DLG_STATE_CHANGED


def medians(path: Path) -> dict[str, tuple[float, int]]:
    """cmd -> (median seconds, contacts) from the timing lines without errors."""
    runs: dict[str, list[float]] = {}
    contacts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("error") is None:
            runs.setdefault(row["cmd"], []).append(row["seconds"])
            contacts[row["cmd"]] = row["contacts"]
    return {cmd: (statistics.median(values), contacts[cmd]) for cmd, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0, help="counter refresh (s)")
    parser.add_argument("--heavy-interval", type=float, default=30.0, help="dump refresh when polling (s)")
    parser.add_argument("--expire", type=int, default=3600, help="event subscription expiry (s)")
    parser.add_argument("--verify-every", type=float, default=60.0, help="subscribers_list check (s)")
    parser.add_argument("--timings", type=Path, default=TIMINGS)
    args = parser.parse_args()
    cost = medians(args.timings)
    stats_s, contacts = cost["stats"]
    full_s, brief_s = cost["full"][0], cost["brief"][0]
    per_minute = 60.0

    counters = per_minute / args.interval * stats_s
    resubscribe = per_minute / (args.expire * 2 / 3) * EVENTS_SUBSCRIBED * SUBSCRIBE_S
    verify = per_minute / args.verify_every * SUBSCRIBE_S
    events_total = counters + resubscribe + verify

    print(f"OpenSIPS 3.4.18 mi_http, {contacts} contacts, medians from {args.timings.name}:")
    print(f"  get_statistics usrloc: {stats_s * 1000:.2f} ms   ul_dump brief=1: {brief_s:.1f} s   "
          f"ul_dump (full): {full_s:.1f} s")
    print()
    print(f"{'strategy':58} {'MI s/min':>10} {'MI busy':>8}")
    rows = [
        (f"events: counters every {args.interval:g} s", counters),
        (f"events: re-subscribe {EVENTS_SUBSCRIBED} events at 2/3 of {args.expire} s (~0.3 ms each)", resubscribe),
        (f"events: subscribers_list every {args.verify_every:g} s (~0.3 ms)", verify),
        ("events: total", events_total),
        (f"polling: counters + full ul_dump every {args.heavy_interval:g} s",
         counters + per_minute / args.heavy_interval * full_s),
        (f"polling: counters + ul_dump brief=1 every {args.heavy_interval:g} s",
         counters + per_minute / args.heavy_interval * brief_s),
        ("polling: counters + one full ul_dump per 5 min", counters + full_s / 5),
    ]
    for label, seconds in rows:
        busy = 100.0 * seconds / per_minute
        flag = "  (saturated: dumps overlap, MI never idle)" if busy >= 100 else ""
        print(f"{label:58} {seconds:10.3f} {busy:7.2f}%{flag}")
    print()
    ratio = (counters + per_minute / args.heavy_interval * full_s) / events_total
    print(f"full-dump polling costs {ratio:,.0f}x the MI time of living on events; a full dump also takes "
          f"{full_s:.0f} s — longer than any sane refresh, holding usrloc slot locks while it walks the table.")
    print("Not counted: OpenSIPS SIP workers build and send one small datagram per usrloc/dialog change.")


if __name__ == "__main__":
    main()
