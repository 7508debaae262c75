"""Memory (and CPU) of the 100k-contact path: parse ul_dump, load a RegistrationStore, take contacts() twice.

Body generated like bench_registrations.py (captured contact schema, one contact per AoR).
Then the live console's view (counted from a fixed moment: nothing rebuilt, same tuple while unchanged).
Follows live.py's full sync (parse, pack, drop the reply, unpack, load, release_free_heap);
--unpacked measures the old path.  Prints RSS (psutil) after each stage, the full-sync peak RSS, tracemalloc's top allocation
sites (by file:line) and the time of each contacts(now) call.
Usage: .venv/bin/python bench/bench_memory.py [--count 100000] [--no-tracemalloc] [--top 12] [--generic] [--unpacked]
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_registrations import make_body  # noqa: E402
from opsconsole_opensips.codec import decode_response  # noqa: E402
from opsconsole_opensips.events_store import RegistrationStore  # noqa: E402
from opsconsole_opensips.parse import pack_contacts, parse_contacts, release_free_heap, unpack_contacts  # noqa: E402
from opsconsole_opensips.wire import decode_dump  # noqa: E402

MB = 1 << 20


class PeakRss:
    """Samples RSS in a thread: the decode peak lasts well under a second."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def rss() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / MB


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--trim", action="store_true", help="call glibc malloc_trim(0) again after the sync")
    parser.add_argument("--unpacked", action="store_true", help="skip pack/unpack + heap release (the old path)")
    parser.add_argument("--generic", action="store_true", help="decode with json.loads (no typed decoding)")
    args = parser.parse_args()

    typed = None if args.generic else decode_dump
    body = make_body(args.count)
    print(f"body {len(body) / MB:.1f} MB for {args.count} contacts; RSS with body {rss():.0f} MB")
    if not args.no_tracemalloc:
        tracemalloc.start()
    base = rss()
    now = time.time()
    with PeakRss() as peak:
        store = RegistrationStore()
        store.begin_sync()
        if args.unpacked:  # the pre-pack path, for comparison
            store.load_full(parse_contacts(decode_response(body, max_bytes=1 << 30, typed=typed), "node1"), now=now)
        else:  # what live.py does on a full sync
            packed = pack_contacts(parse_contacts(decode_response(body, max_bytes=1 << 30, typed=typed), "node1"))
            store.load_full(unpack_contacts(packed), now=now, report=False)  # as live.py
            del packed
            release_free_heap()
    print(f"after full sync: RSS {rss():.0f} MB (+{rss() - base:.0f}), peak during sync {peak.peak / MB:.0f} MB")
    del body
    print(f"body dropped:    RSS {rss():.0f} MB")
    if args.trim:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        print(f"malloc_trim(0):  RSS {rss():.0f} MB")
    # The live console's path: views counted from a fixed moment (the load), the same tuple while unchanged.
    started = time.perf_counter()
    live = store.view(int(now))
    print(f"view(epoch) first: {time.perf_counter() - started:.3f} s, RSS {rss():.0f} MB")
    started = time.perf_counter()
    same = store.view(int(now)) is live
    print(f"view(epoch) unchanged: {time.perf_counter() - started:.4f} s, same tuple: {same}")
    del live
    view: tuple = ()
    for n, later in enumerate((now + 1.5, now + 3.5)):
        started = time.perf_counter()
        view = ()  # like the live view: the new one replaces the old
        view = tuple(store.contacts(later))
        print(f"contacts(now) #{n + 1}: {time.perf_counter() - started:.3f} s, RSS {rss():.0f} MB")
    started = time.perf_counter()
    store.contacts(now + 3.5)
    print(f"contacts(same now) again: {time.perf_counter() - started:.3f} s")
    shared = sum(a is b for a, b in zip(view, store.contacts()))
    print(f"view objects shared with the store: {shared}/{len(view)}")
    if args.no_tracemalloc:
        return
    current, peak_traced = tracemalloc.get_traced_memory()
    print(f"tracemalloc: current {current / MB:.1f} MB, peak {peak_traced / MB:.1f} MB; top sites:")
    for stat in tracemalloc.take_snapshot().statistics("lineno")[:args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size / MB:7.1f} MB {stat.count:>8} blocks  {Path(frame.filename).name}:{frame.lineno}")


if __name__ == "__main__":
    main()
