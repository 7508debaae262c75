#!/usr/bin/env python3
"""1 % churn applied to the Registrations screen at 100 000 contacts, and key latency meanwhile.

Drives the real app with Pilot (fake service, contacts built from the model, as
bench_tui_registrations.py).  Each round, the next poll brings the list with 1 % of
it changed the way events change it (half refreshed: new expiry and CSeq; a quarter
unregistered; a quarter newly registered) and the app applies it on screen 2.
Printed per round:
  apply     wall ms from the poll starting to the screen repainted with the new list
  stall     the longest time the event loop could not run anything during that
            (a key pressed then waits at most this long before it is handled)
  key       the worst wall ms of cursor keys queued every ~3 ms while the poll is
            applied, each until its action ran (Pilot's own idle wait excluded)
Target: a key < 100 ms meanwhile.

    .venv/bin/python bench/bench_tui_churn.py [--contacts 100000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ui.data import NOW, FakeService, lab_snapshot, many_contacts  # noqa: E402
from ui.helpers import screen_text, settle  # noqa: E402

from console.model import Contact  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.panes import ContactTable  # noqa: E402

TARGET_MS = 100.0


def churned(contacts: tuple[Contact, ...], round_no: int, fraction: float) -> tuple[Contact, ...]:
    """The list after `fraction` of it changed: refreshes, unregistrations, new registrations."""
    changes = max(4, int(len(contacts) * fraction))
    step = max(1, len(contacts) // changes)
    picked = list(range(round_no % step, len(contacts), step))[:changes]
    refreshed, removed = set(picked[: changes // 2]), set(picked[changes // 2: changes * 3 // 4])
    out = []
    for index, contact in enumerate(contacts):
        if index in removed:
            continue
        if index in refreshed:
            contact = replace(contact, expires=3600, cseq=contact.cseq + 1)
        out.append(contact)
    for n in range(changes - len(refreshed) - len(removed)):
        fresh = many_contacts(1)[0]
        tag = f"n{round_no:03d}{n:05d}"
        out.append(replace(fresh, aor=tag, contact=f"sip:{tag}@127.0.0.1:5070", contact_id=tag, callid=f"reg-{tag}"))
    return tuple(out)


class LoopStall:
    """Longest gap between event-loop turns while running (a 2 ms sleeper)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.002)
            self.worst = max(self.worst, time.perf_counter() - started - 0.002)

    def __enter__(self) -> "LoopStall":
        self._task = asyncio.get_running_loop().create_task(self._probe())
        return self

    def __exit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()


async def key_latency(app, key: str) -> float:
    """Wall ms from a key event being queued to its action having run (Pilot.press would add
    its idle wait; the cursor position alone is ambiguous while the poll moves rows)."""
    table = app.query_one(ContactTable)
    name = "action_cursor_down" if key == "down" else "action_cursor_up"
    original, handled = getattr(table, name), []

    def timed() -> None:
        original()
        handled.append(time.perf_counter())

    setattr(table, name, timed)
    started = time.perf_counter()
    try:
        app.simulate_key(key)
        while not handled and time.perf_counter() - started < 5:
            await asyncio.sleep(0.0005)
    finally:
        setattr(table, name, original)
    return ((handled[0] if handled else time.perf_counter()) - started) * 1000


async def run(count: int, rounds: int, fraction: float) -> list[tuple[float, float, float]]:
    snap = lab_snapshot()
    contacts = many_contacts(count)
    base = replace(snap, signalling=replace(snap.signalling, contacts=contacts))
    service = FakeService([base])
    app = create_app(service, interval=3600, clock=lambda: NOW)
    results = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        for round_no in range(rounds):
            contacts = churned(contacts, round_no, fraction)
            service.snapshots = [replace(base, signalling=replace(base.signalling, contacts=contacts))]
            with LoopStall() as stall:
                started = time.perf_counter()
                app.poll_now()
                keys = []
                while True:  # keys pressed all along the apply, ~every 3 ms
                    keys.append(await key_latency(app, "down" if len(keys) % 2 == 0 else "up"))
                    if not any(worker.is_running for worker in app.workers):
                        break
                    await asyncio.sleep(0.003)
                await settle(app, pilot)
                screen_text(app)
                apply_ms = (time.perf_counter() - started) * 1000
            results.append((apply_ms, stall.worst * 1000, max(keys), len(keys)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.contacts, args.rounds, args.churn))
    print(f"registrations screen, {args.contacts:,} contacts, {args.churn:.0%} churn per poll, {args.rounds} polls")
    print(f"{'round':>5} {'apply ms':>9} {'stall ms':>9} {'worst key ms':>13} {'keys':>5}")
    for n, (apply_ms, stall_ms, key_ms, presses) in enumerate(results, 1):
        print(f"{n:>5} {apply_ms:>9.1f} {stall_ms:>9.1f} {key_ms:>13.1f} {presses:>5}")
    stalls, worst_key = [r[1] for r in results], max(r[2] for r in results)
    print(f"apply median {statistics.median(r[0] for r in results):.1f} ms; longest loop stall {max(stalls):.1f} ms "
          f"(median {statistics.median(stalls):.1f}); worst key pressed meanwhile {worst_key:.1f} ms: "
          f"{'OK' if worst_key < TARGET_MS else 'over target'} (target < {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
