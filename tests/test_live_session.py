"""The live session (console/live.py), headless: several polls against the embedded demo and against a real
OpenSIPS + RTPengine in a process where textual cannot be imported; interest decides what is fetched; polls
never overlap, however slow the source; the contact index is prepared off the loop without sharing state."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from console.live import CHECKS_DETAILS_MAX, PREPARE_IN_THREAD, ROTATION_MAX_PER_S, Interest, LiveSession
from console.views import ContactIndex
from support.opensips_daemon import VERSIONS, require_real
from ui.data import NOW, FakeService, lab_snapshot, many_contacts

HEADLESS = Path(__file__).resolve().parent / "support" / "headless_live.py"


def run_headless(tmp_path: Path, *target: str) -> dict:
    """tests/support/headless_live.py in a fresh interpreter (textual blocked there): its report."""
    config = tmp_path / "opsconsole.toml"
    config.write_text("")
    done = subprocess.run([sys.executable, "-P", str(HEADLESS), str(config), *target], capture_output=True,
                          text=True, timeout=120, env=os.environ | {"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def assert_a_sound_session(report: dict, *, contacts_at_least: int, calls_at_least: int) -> None:
    polls = report["polls"]
    assert report["textual_blocked"] and report["textual_modules"] == []
    assert [p["polls"] for p in polls] == list(range(1, len(polls) + 1))  # one poll per call, in order
    assert report["published"] == len(polls) and report["same_views"] and report["frozen"]
    first, again, registrations, media, calls, _checks = polls
    assert all(first["sources"].values()), first["sources"]
    # the first poll brings every list, queries every media session and runs the checks on them: the
    # first checks judge every call (calls.* not UNKNOWN for want of details), as diagnose does
    assert first["asked_contacts"] and first["asked_dialogs"] and first["asked_details"] == "all"
    assert first["detailed"] == first["sessions"] and len(first["sessions"]) >= calls_at_least
    assert all(first["checks"][check] != "UNKNOWN" for check in ("calls.one_way", "calls.silent", "calls.quality"))
    assert first["contacts"] == first["registered"] == first["index"] >= contacts_at_least
    assert first["checks"]["opensips.mi"] == "OK" and first["checks"]["rtpengine.ng"] == "OK"
    # the overview again: the heavy lists are not fetched again, and say so (stale, with their age)
    assert not again["asked_contacts"] and not again["asked_dialogs"]
    assert {"contacts", "dialogs"} <= set(again["stale"])
    assert again["checks_at"] == first["checks_at"]  # the checks keep their own (slower) cadence
    # the Registrations screen wants the contacts every poll
    assert registrations["asked_contacts"] and "contacts" not in registrations["stale"]
    # the Media screen with one session on screen: that one is queried, with the rotation's share only
    wanted, on_screen = media["asked_details"], media["on_screen"]
    assert wanted != "all" and len(on_screen) == 1 and set(on_screen) <= set(wanted) and media["queried"] == wanted
    assert len(wanted) <= 1 + media["rotation_size"] < len(media["sessions"])
    # the rotating budget: every poll after the first queries its share, the sessions asked longest ago,
    # so these five polls (room for every session) queried every one
    later, sessions = polls[1:], set(first["sessions"])
    assert all(0 <= len(p["asked_details"]) - p["rotation_size"] <= len(p["on_screen"]) for p in later)
    assert sum(p["rotation_size"] for p in later) >= len(sessions)
    assert set().union(*(p["asked_details"] for p in later)) >= sessions
    # the Calls screen: dialogs every poll, joined once with the media sessions
    assert calls["asked_dialogs"] and "dialogs" not in calls["stale"]
    joined = [c for c in calls["calls"] if c["dialog"] and c["media"]]
    assert len(joined) >= calls_at_least
    assert {c["callid"] for c in joined} <= set(calls["dialogs"]) & set(calls["sessions"])
    assert all(p["collector_calls"] == 0 for p in polls)  # joined once, by the session, not by the collector too
    assert [p["history"] for p in polls] == [p["polls"] for p in polls]  # one sample per poll


def test_a_live_session_runs_headless_on_the_demo(tmp_path):
    report = run_headless(tmp_path, "demo")
    assert_a_sound_session(report, contacts_at_least=70, calls_at_least=6)


@pytest.mark.opensips
@pytest.mark.parametrize("version", VERSIONS)
def test_a_live_session_runs_headless_on_real_opensips(tmp_path, version):
    require_real(version)
    from support.platform import UDP_CALLS, UDP_USERS, start_platform

    platform = start_platform(version)
    try:
        report = run_headless(tmp_path, platform.mi_url, f"{platform.ng[0]}:{platform.ng[1]}",
                              f"{platform.cli[0]}:{platform.cli[1]}")
    finally:
        platform.close()
    assert_a_sound_session(report, contacts_at_least=len(UDP_USERS), calls_at_least=len(UDP_CALLS))


# --------------------------------------------------------------------------- interest


def session_on(service: FakeService, **kwargs) -> LiveSession:
    return LiveSession(service, interval=2.0, clock=lambda: NOW, **kwargs)


async def test_interest_decides_which_lists_and_sessions_are_fetched():
    service = FakeService()
    session = session_on(service)
    await session.poll_once()  # the first poll brings everything (the checks need it)
    listed = {s.callid for s in session.view.media.sessions}
    share = session.rotation_size(len(listed))
    assert share < len(listed)
    session.set_interest(Interest(screen="overview"))
    await session.poll_once()
    overview = service.requests[-1]
    assert not overview.contacts and not overview.dialogs
    assert len(overview.media_detail_callids) == share and overview.media_detail_callids <= listed  # the rotation only
    session.set_interest(Interest(screen="media", detail_callids=frozenset({"a", "b"})))
    await session.poll_once()
    media = service.requests[-1]
    assert media.dialogs and media.media_details and media.media_detail_callids - {"a", "b"} <= listed
    assert {"a", "b"} <= media.media_detail_callids and len(media.media_detail_callids) == 2 + share
    assert media.dialog_detail_callids == frozenset()  # the Media screen shows no parties
    session.set_interest(Interest(screen="calls", detail_callids=frozenset({"c"})))
    await session.poll_once()
    calls = service.requests[-1]
    assert "c" in calls.media_detail_callids and calls.dialog_detail_callids == {"c"}
    session.set_interest(Interest(screen="registrations"))
    await session.poll_once()
    registrations = service.requests[-1]
    assert registrations.contacts and len(registrations.media_detail_callids) == share


async def test_a_requested_full_sync_and_checks_ride_the_next_poll_only():
    service = FakeService()
    session = session_on(service)
    assert not session.request_checks()  # nothing to check before the first poll
    await session.poll_once()
    runs = service.checks_runs
    session.request_full_sync()
    assert session.request_checks() and session.current_view().checks_pending
    await session.poll_once()
    assert service.requests[-1].force_full_sync and service.requests[-1].host_facts
    assert service.checks_runs == runs + 1 and not session.view.checks_pending
    await session.poll_once()
    assert not service.requests[-1].force_full_sync and service.checks_runs == runs + 1


async def test_the_first_poll_and_a_checks_poll_with_few_calls_query_every_session():
    few = FakeService()
    session = session_on(few)
    await session.poll_once()  # none known yet: every one, so the first checks judge every call
    assert few.requests[-1].media_details and few.requests[-1].media_detail_callids is None
    await session.poll_once()  # between checks: the rotation's share only
    assert few.requests[-1].media_detail_callids is not None
    session.request_checks()
    await session.poll_once()
    assert few.requests[-1].media_details and few.requests[-1].media_detail_callids is None  # all, as diagnose


def crowded_service(calls: int) -> FakeService:
    from console.model import MediaSession

    snap = lab_snapshot()
    many = tuple(MediaSession(callid=f"c{n}", created=int(NOW)) for n in range(calls))
    return FakeService([replace(snap, media=replace(snap.media, sessions=many))])


async def test_the_rotating_budget_covers_every_call_within_bounded_polls_and_the_screen_every_poll():
    calls = 1000
    crowded = crowded_service(calls)
    session = session_on(crowded)  # 2 s polls, 30 s checks
    await session.poll_once()
    assert crowded.requests[-1].media_detail_callids is None  # the first checks judge every call
    on_screen = frozenset({"c1", "c500", "c999"})
    session.set_interest(Interest(screen="calls", detail_callids=on_screen))
    share = session.rotation_size(calls)
    rounds = -(-calls // share)  # ceil: the bound on polls for a full round
    assert share == -(-calls * 2 // 30) and rounds * session.interval <= session.heavy_interval
    asked: list[frozenset] = []
    for _ in range(rounds):
        await session.poll_once()
        wanted = crowded.requests[-1].media_detail_callids
        assert wanted is not None and on_screen <= wanted  # the rows on screen every poll
        assert len(wanted - on_screen) <= share  # never a burst of one query per call
        asked.append(wanted)
    assert set().union(*asked) == {f"c{n}" for n in range(calls)}  # every call within `rounds` polls
    assert CHECKS_DETAILS_MAX < calls
    session.request_checks()  # a checks poll over many calls: the rotation, no burst
    await session.poll_once()
    assert len(crowded.requests[-1].media_detail_callids or ()) <= share + len(on_screen)


async def test_a_new_call_is_queried_by_the_next_poll_and_the_rotation_is_capped():
    from console.model import MediaSession

    snap = lab_snapshot()
    old = tuple(MediaSession(callid=f"c{n}", created=int(NOW)) for n in range(400))
    new = old + (MediaSession(callid="fresh", created=int(NOW)),)
    service = FakeService([replace(snap, media=replace(snap.media, sessions=s)) for s in (old, old, new, new)])
    session = LiveSession(service, interval=0.5, heavy_interval=1.0, clock=lambda: NOW)
    await session.poll_once()
    await session.poll_once()
    await session.poll_once()  # "fresh" listed by this poll: never asked, so first in the next share
    await session.poll_once()
    assert "fresh" in service.requests[-1].media_detail_callids
    # 400 calls in 1 s would be 400 queries/s: capped, the round then takes longer
    assert session.rotation_size(400) == int(ROTATION_MAX_PER_S * 0.5) < 400 * 0.5 / 1.0


# --------------------------------------------------------------------------- no overlap


class SlowService(FakeService):
    """A source that takes `delay` seconds per poll and counts how many polls run at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.running, self.most = delay, 0, 0

    async def snapshot(self, options=None):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
            return await super().snapshot(options)
        finally:
            self.running -= 1


async def test_polls_never_overlap_under_a_slow_source():
    service = SlowService(0.05)
    session = LiveSession(service, interval=0.01)
    runner = asyncio.create_task(session.run())
    await asyncio.sleep(0.02)
    callers = await asyncio.gather(*(session.poll_once() for _ in range(5)))  # e.g. keys while a poll runs
    session.request_full_sync()
    await asyncio.sleep(0.15)
    session.close()
    await asyncio.wait_for(runner, 1.0)
    assert service.most == 1
    assert len({id(view) for view in callers}) == 1  # the callers arriving meanwhile shared one poll
    assert any(options.force_full_sync for options in service.requests)
    assert session.polls == len(service.requests) >= 3


async def test_a_cancelled_caller_does_not_cancel_the_poll():
    service = SlowService(0.05)
    session = LiveSession(service, interval=0.01)
    impatient = asyncio.create_task(session.poll_once())
    await asyncio.sleep(0.01)
    impatient.cancel()
    view = await session.poll_once()  # waits for that poll, then runs its own
    assert view.polls == 2 and service.most == 1 and len(service.requests) == 2


async def test_pause_stops_the_runner_and_resume_polls_at_once():
    service = FakeService()
    session = LiveSession(service, interval=0.05)
    session.pause()
    runner = asyncio.create_task(session.run())
    await asyncio.sleep(0.12)
    assert session.polls == 0
    session.resume()
    await asyncio.sleep(0.02)
    assert session.polls >= 1
    session.close()
    await asyncio.wait_for(runner, 1.0)


# --------------------------------------------------------------------------- the contact index


async def test_a_big_list_is_published_only_once_prepared_and_for_the_screen_that_shows_it():
    snap = lab_snapshot()
    big = many_contacts(PREPARE_IN_THREAD + 10)
    service = FakeService([replace(snap, signalling=replace(snap.signalling, contacts=big))])
    session = session_on(service)
    view = await session.poll_once()
    assert view.contact_index.contacts is big  # the first big list: indexed at once
    assert view.contact_index.select("", "all", "aor", False)  # prepared: answers without building
    changed = big[1:] + big[:1]
    service.snapshots = [replace(snap, signalling=replace(snap.signalling, contacts=changed))]
    session.set_interest(Interest(screen="registrations"))
    later = await session.poll_once()
    assert later.contact_index.contacts is changed and view.contact_index.contacts is big  # views stay as published


def test_a_new_index_takes_what_the_previous_one_built_when_it_was_made():
    """The previous index keeps answering keys on the event loop while the new one is prepared in a
    thread: what the new one inherits is copied at construction, so later keys cannot change it."""
    contacts = many_contacts(200)
    previous = ContactIndex(contacts)
    previous.select(sort="user_agent")
    refreshed = contacts[:-1] + (replace(contacts[-1], expires=1),)
    new = ContactIndex(refreshed, previous=previous)
    previous.select(sort="socket")  # a key on the old list after the new one was made
    new.prepare()
    assert "user_agent" in new._orders and "socket" not in new._orders


def test_preparing_in_a_thread_while_keys_use_the_previous_index():
    contacts = many_contacts(3000)
    previous = ContactIndex(contacts).prepare()
    refreshed = contacts[1:] + contacts[:1]
    sorts = ("aor", "contact", "transport", "socket", "received", "user_agent", "expires", "flags")
    failures: list[BaseException] = []
    new = ContactIndex(refreshed, previous=previous)

    def prepare() -> None:
        try:
            new.prepare("lab", "udp", "expires", True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    thread = threading.Thread(target=prepare)
    thread.start()
    while thread.is_alive():
        for sort in sorts:
            previous.select("1", "all", sort, False)
    thread.join()
    assert not failures
    fresh = ContactIndex(refreshed)
    for sort in sorts:
        assert list(new.select("lab", "udp", sort, True)) == list(fresh.select("lab", "udp", sort, True))


# --------------------------------------------------------------------------- one memory policy


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(f"{node.module or ''}.{alias.name}" for alias in node.names)
            names.add(node.module or "")
    return names


def test_only_the_heap_module_touches_the_gc_and_only_the_live_session_applies_it():
    root = Path(__file__).resolve().parent.parent
    sources = sorted([*(root / "console").rglob("*.py"), *(root / "plugins").rglob("*.py")])
    assert len(sources) > 40  # the walk found the code
    touching_gc = {str(p.relative_to(root)) for p in sources if "gc" in _imports(p)}
    assert touching_gc == {"console/heap.py"}
    policy = {"console.heap.HeapPolicy", "console.heap.FrozenHeap"}
    applying = {str(p.relative_to(root)) for p in sources if _imports(p) & policy}
    assert applying == {"console/live.py"}
