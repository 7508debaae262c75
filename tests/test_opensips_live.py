"""Live mode of OpenSIPSSource against the demo OpenSIPS (real loopback HTTP MI + real UDP events).

The demo and the source share one fake clock, so expiries, the heavy_interval
cadence and the simulation advance together and deterministically.  The MI
server's renderer is wrapped to count what the console actually sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import replace

import pytest

from console.config import Config
from console.errors import Timeout, TransportError
from console.plugins import CollectOptions
from opsconsole_opensips import live as live_module
from opsconsole_opensips.codec import MIServerError
from opsconsole_opensips.live import dump_timeout, estimate_dump_seconds, explain_dump_failure
from opsconsole_opensips.parse import parse_contacts, parse_dialogs
from opsconsole_opensips.source import OpenSIPSSource

DemoPlatform = pytest.importorskip("opsconsole_demo").DemoPlatform

LIVE = CollectOptions(live=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Counts the MI requests the demo server answered, by method (and keeps their params)."""

    def __init__(self, demo) -> None:
        self.calls: list[tuple[str, object]] = []
        renderer = demo.server.renderer
        answer = renderer.answer

        def recording_answer(request: dict) -> dict:
            self.calls.append((request["method"], request.get("params")))
            return answer(request)

        renderer.answer = recording_answer

    def count(self, method: str) -> int:
        return Counter(name for name, _ in self.calls)[method]

    def params_of(self, method: str) -> list:
        return [params for name, params in self.calls if name == method]


@pytest.fixture
def clock():
    return FakeClock()


def make_source(demo, clock, **config) -> OpenSIPSSource:
    settings = {"mi_url": demo.mi_url, "timeout": 2.0, **config}
    return OpenSIPSSource(Config(**settings), clock=clock, monotonic=clock)


async def fresh_dump(demo) -> set[tuple[str, str]]:
    """What a ul_dump says right now (asked in-process: not counted as a console request)."""
    return {(c.aor, c.contact) for c in parse_contacts(demo.server.renderer.call("ul_dump"))}


def live_set(state) -> set[tuple[str, str]]:
    return {(c.aor, c.contact) for c in state.contacts}


async def advance(demo, clock, seconds: float, steps: int = 1) -> None:
    """Move the simulation (and the shared clock) on; give the event socket a chance to drain."""
    for _ in range(steps):
        clock.now += seconds
        await demo.step(clock.now)
        await asyncio.sleep(0)


async def settle(source, demo, wanted_events: int) -> None:
    """Wait (bounded) until the listener received the events the demo published to it."""
    for _ in range(200):
        if source.live.listener.events_received >= wanted_events:
            return
        await asyncio.sleep(0.01)


class PublishedCounter:
    """Counts events the demo sent to subscribers (what our listener should receive)."""

    def __init__(self, demo) -> None:
        self.sent = 0
        hub = demo.events
        send = hub._send

        def counting_send(sub, payload):
            self.sent += 1
            send(sub, payload)

        hub._send = counting_send


async def test_small_platform_one_full_dump_then_event_fed(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=5, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock)
        try:
            first = await source.collect(LIVE)
            assert first.contacts_mode == "full"
            assert recorder.count("ul_dump") == 1
            assert live_set(first) == await fresh_dump(demo)
            assert first.events_status.startswith("live via udp:127.0.0.1:")
            dumps_before = recorder.count("ul_dump")
            for _ in range(6):
                await advance(demo, clock, 20, steps=3)
                await settle(source, demo, published.sent)
                state = await source.collect(LIVE)
                assert state.contacts_mode == "events"
                assert state.overview.registered_contacts == demo.state.contact_count
            assert published.sent > 0 and source.live.listener.events_received > 0
            assert live_set(state) != live_set(first), "registrations should have changed meanwhile"
            assert recorder.count("ul_dump") == dumps_before == 1  # no dump per poll
            assert live_set(state) == await fresh_dump(demo)
            assert recorder.count("get_statistics") == 7  # counters stay polled every collect
        finally:
            await source.aclose()


async def test_above_threshold_no_dump_and_the_note_says_why(clock):
    async with DemoPlatform(size=200, real_rtpengine=False, tick=None, seed=2, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock)
        options = CollectOptions(live=True, full_sync_max=100)
        try:
            await source.collect(options)
            for _ in range(4):
                await advance(demo, clock, 30, steps=2)
                await settle(source, demo, published.sent)
                state = await source.collect(options)
            assert recorder.count("ul_dump") == 0
            assert state.contacts_mode == "events-partial"
            count = demo.state.contact_count
            assert state.contacts_note.startswith(f"{count} registered (statistics); list live from events since ")
            assert "press S to run it" in state.contacts_note
            seen = live_set(state)
            assert seen and seen <= await fresh_dump(demo)  # partial, but nothing invented
            assert f"({len(seen)} seen)" in state.contacts_note
        finally:
            await source.aclose()


async def test_force_full_sync_does_exactly_one_dump(clock):
    async with DemoPlatform(size=200, real_rtpengine=False, tick=None, seed=4, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock)
        try:
            await source.collect(CollectOptions(live=True, full_sync_max=100))
            assert recorder.count("ul_dump") == 0
            forced = await source.collect(CollectOptions(live=True, full_sync_max=100, force_full_sync=True))
            assert recorder.count("ul_dump") == 1
            assert forced.contacts_mode == "full"
            assert live_set(forced) == await fresh_dump(demo)
            await advance(demo, clock, 30, steps=4)
            await settle(source, demo, published.sent)
            after = await source.collect(CollectOptions(live=True, full_sync_max=100))
            assert recorder.count("ul_dump") == 1
            assert after.contacts_mode == "events"  # complete since the forced sync, kept by events
            assert live_set(after) == await fresh_dump(demo)
        finally:
            await source.aclose()


async def test_dialogs_follow_events_between_slow_dialog_lists(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=11, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock, heavy_interval=1000)
        try:
            first = await source.collect(LIVE)
            assert first.dialogs
            await advance(demo, clock, 5, steps=20)
            await settle(source, demo, published.sent)
            state = await source.collect(LIVE)
            assert recorder.count("dlg_list_ctx") == 1
            listed = parse_dialogs(demo.server.renderer.call("dlg_list"))
            answered = {d.id: d.state for d in listed if 1 < d.state < 5}
            assert answered != {d.id: d.state for d in first.dialogs if 1 < d.state < 5}, "calls should have moved"
            assert {d.id: d.state for d in state.dialogs if 1 < d.state < 5} == answered
            clock.now += 1000
            await source.collect(LIVE)
            assert recorder.count("dlg_list_ctx") == 1  # events live: not every heavy interval...
            clock.now += 1000 * (live_module.LIVE_DIALOG_RESYNC_FACTOR - 1)
            await source.collect(LIVE)
            assert recorder.count("dlg_list_ctx") == 2  # ...but every few, as a safety net
        finally:
            await source.aclose()


async def test_events_unavailable_falls_back_to_bounded_polling(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock) as demo:
        demo.server.renderer.subscriptions = None  # event_subscribe -> -32601 Method not found
        recorder = Recorder(demo)
        source = make_source(demo, clock)
        try:
            for _ in range(3):
                state = await source.collect(LIVE)
            assert state.contacts_mode == "polling"
            assert state.contacts_note.startswith("events unavailable: ")
            assert "polling every 30 s" in state.contacts_note
            assert "event_subscribe" in state.events_status
            assert recorder.count("ul_dump") == 1  # three polls inside one heavy_interval
            assert recorder.count("dlg_list_ctx") == 1
            assert recorder.count("list_tcp_conns") == 1 and state.connections  # cached between heavy polls
            assert live_set(state) == await fresh_dump(demo)
            clock.now += 31
            await source.collect(LIVE)
            assert recorder.count("ul_dump") == 2
        finally:
            await source.aclose()


async def test_polling_above_threshold_asks_only_for_aor_names(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock) as demo:
        recorder = Recorder(demo)
        source = make_source(demo, clock, events=False)
        try:
            state = await source.collect(CollectOptions(live=True, full_sync_max=20))
            await source.collect(CollectOptions(live=True, full_sync_max=20))
            assert recorder.count("event_subscribe") == 0  # switched off: never subscribes
            assert recorder.params_of("ul_dump") == [{"brief": 1}]
            assert {c.aor for c in state.contacts} == {aor for aor, _ in await fresh_dump(demo)}
            assert "switched off" in state.contacts_note and "AoR names only" in state.contacts_note
            assert "Enter on an AoR asks for its contacts" in state.contacts_note
            assert state.contacts_mode == "polling"
        finally:
            await source.aclose()


async def test_http_500_during_full_sync_is_explained_and_the_list_kept(clock):
    async with DemoPlatform(size=400, real_rtpengine=False, tick=None, seed=7, clock=clock,
                            buffer_size=40_000, calls=2) as demo:
        published = PublishedCounter(demo)
        source = make_source(demo, clock)
        options = CollectOptions(live=True, full_sync_max=100)
        try:
            await source.collect(options)
            await advance(demo, clock, 30, steps=4)
            await settle(source, demo, published.sent)
            before = await source.collect(options)
            assert before.contacts, "events should have filled part of the list"
            failed = await source.collect(CollectOptions(live=True, full_sync_max=100, force_full_sync=True))
            assert live_set(failed) == live_set(before)
            assert failed.contacts_mode == "events-partial"
            reason = next(e for e in failed.errors if e.startswith("ul_dump"))
            assert "HTTP 500" in reason and "-M" in reason and "buf_size" in reason
            assert "last full sync failed" in failed.contacts_note
        finally:
            await source.aclose()


async def test_silent_mi_during_full_sync_times_out_with_an_explanation(clock, monkeypatch):
    # the dump's own deadline shortened to 0.3 s; the demo holds MI ~1 s for this ul_dump
    monkeypatch.setattr(live_module, "dump_timeout", lambda contacts, base, brief=False: 0.3)
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, time_scale=2200) as demo:
        source = make_source(demo, clock)
        try:
            await source.collect(CollectOptions(live=True, full_sync_max=10, dialogs=False))
            state = await source.collect(CollectOptions(live=True, full_sync_max=10, dialogs=False,
                                                        force_full_sync=True))
            reason = next(e for e in state.errors if e.startswith("ul_dump"))
            assert "stayed silent for 0.3 s" in reason
            assert state.contacts_mode == "events-partial"
        finally:
            await source.aclose()


async def _dump_done(source) -> None:
    for _ in range(500):  # bounded: a hung dump fails the test instead of hanging the run
        if not source.live.dump_running:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the background dump never ended")


# The demo holds MI ~1.5 s for a 70-contact dump at this time scale; a poll waits for a dump only
# 2 cheap-call timeouts (0.6 s here), then goes on without it.  The dump's own deadline is long.
SLOW_DUMP = 3300


@pytest.fixture
def patient_dumps(monkeypatch):
    monkeypatch.setattr(live_module, "dump_timeout", lambda contacts, base, brief=False: 20.0)


async def test_a_long_full_sync_runs_in_the_background_while_polls_go_on(clock, patient_dumps):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, seed=5,
                            time_scale=SLOW_DUMP) as demo:
        recorder = Recorder(demo)
        source = make_source(demo, clock, timeout=0.3)
        try:
            await source.collect(CollectOptions(live=True, full_sync_max=10))
            forced = await source.collect(CollectOptions(live=True, full_sync_max=10, force_full_sync=True))
            assert source.live.dump_running  # the poll came back while OpenSIPS was still dumping
            assert forced.contacts_mode == "events-partial" and "full sync running since" in forced.contacts_note
            sent_before = len(recorder.calls)
            during = await source.collect(CollectOptions(live=True, full_sync_max=10, force_full_sync=True))
            assert any(e.startswith("counters as of the last poll: full sync running") for e in during.errors)
            assert during.overview == forced.overview and during.contacts is not None
            await _dump_done(source)
            assert recorder.calls[sent_before:] == [("ul_dump", None)]  # nothing asked during the dump, no 2nd dump
            after = await source.collect(CollectOptions(live=True, full_sync_max=10))
            assert after.contacts_mode == "full" and live_set(after) == await fresh_dump(demo)
            assert "running" not in after.contacts_note and not any("counters as of" in e for e in after.errors)
        finally:
            await source.aclose()


async def test_a_long_polled_dump_runs_in_the_background_too(clock, patient_dumps):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, seed=5,
                            time_scale=SLOW_DUMP) as demo:
        source = make_source(demo, clock, timeout=0.3, events=False)
        try:
            first = await source.collect(CollectOptions(live=True, full_sync_max=100))
            assert first.contacts_mode == "polling" and "full dump running since" in first.contacts_note
            await _dump_done(source)
            after = await source.collect(CollectOptions(live=True, full_sync_max=100))
            assert "full list at" in after.contacts_note and "running" not in after.contacts_note
            assert live_set(after) == await fresh_dump(demo)
        finally:
            await source.aclose()


async def test_closing_during_a_background_dump_cancels_it(clock, patient_dumps):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock, time_scale=SLOW_DUMP) as demo:
        source = make_source(demo, clock, timeout=0.3)
        await source.collect(CollectOptions(live=True, full_sync_max=10))
        await source.collect(CollectOptions(live=True, full_sync_max=10, force_full_sync=True))
        live = source.live
        task = live._dump.task
        assert not task.done()
        await source.aclose()
        assert task.cancelled() and not live.dump_running


async def test_lost_subscriptions_trigger_one_resync_below_the_threshold(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=9, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock)
        try:
            await source.collect(LIVE)
            demo.events.subscribers.clear()  # e.g. OpenSIPS restarted: our subscriptions are gone
            await advance(demo, clock, 30, steps=4)  # events nobody receives
            missing = await source.live.listener.verify()
            assert set(missing) == set(source.live.listener.subscribed)
            await advance(demo, clock, 30, steps=2)
            await settle(source, demo, published.sent)
            state = await source.collect(LIVE)
            assert recorder.count("ul_dump") == 2
            assert state.contacts_mode == "full" and live_set(state) == await fresh_dump(demo)
            await source.collect(LIVE)
            assert recorder.count("ul_dump") == 2  # the gap is handled once
        finally:
            await source.aclose()


async def test_opensips_restart_resubscribes_and_resyncs(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock) as demo:
        recorder = Recorder(demo)
        source = make_source(demo, clock)
        try:
            await source.collect(LIVE)
            await advance(demo, clock, 30)
            await source.collect(LIVE)
            demo.events.subscribers.clear()  # a restarted OpenSIPS forgets subscribers ...
            demo.state.started = demo.state.now  # ... and its uptime starts again
            await source.collect(LIVE)  # notices the restart (uptime went backwards)
            state = await source.collect(LIVE)
            assert {s.event for s in demo.events.subscribers} == set(source.live.listener.subscribed)
            assert recorder.count("ul_dump") == 2
            assert live_set(state) == await fresh_dump(demo)
        finally:
            await source.aclose()


async def test_contacts_leave_the_list_at_their_absolute_expiry(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, clock=clock) as demo:
        source = make_source(demo, clock)
        try:
            first = await source.collect(LIVE)
            soonest = min(c.expires for c in first.contacts if c.expires)
            demo.events.subscribers.clear()  # no DELETE events will come
            clock.now += soonest + 1
            later = await source.collect(CollectOptions(live=True, dialogs=False))
            gone = {(c.aor, c.contact) for c in first.contacts if c.expires is not None and c.expires <= soonest + 1}
            assert gone and not gone & live_set(later)
            assert live_set(later) == live_set(first) - gone
        finally:
            await source.aclose()


@pytest.mark.parametrize(("version", "subscribe"), [("3.4", "event_subscribe"), ("4.0", "evi:subscribe")])
async def test_aclose_unsubscribes_with_expire_zero(clock, version, subscribe):
    async with DemoPlatform(size=30, version=version, real_rtpengine=False, tick=None, clock=clock) as demo:
        recorder = Recorder(demo)
        source = make_source(demo, clock)
        state = await source.collect(LIVE)
        assert state.contacts_mode == "full" and live_set(state) == await fresh_dump(demo)
        subscribed = set(source.live.listener.subscribed)
        assert subscribed and demo.events.subscribers
        await source.aclose()
        zero = {p["event"] for p in recorder.params_of(subscribe) if p.get("expire") == 0}
        assert zero == subscribed
        assert demo.events.subscribers == []


async def test_one_shot_collection_never_subscribes(clock):
    async with DemoPlatform(size=30, real_rtpengine=False, tick=None, clock=clock) as demo:
        recorder = Recorder(demo)
        source = make_source(demo, clock)
        try:
            state = await source.collect(CollectOptions())
            assert recorder.count("event_subscribe") == 0
            assert source.live is None and state.events_status == ""
            assert state.contacts_mode == "full" and live_set(state) == await fresh_dump(demo)
        finally:
            await source.aclose()


def test_dump_deadline_follows_the_measured_curve_and_is_capped():
    assert estimate_dump_seconds(10_000) == pytest.approx(0.39)
    assert estimate_dump_seconds(100_000) == pytest.approx(155, rel=0.1)
    assert estimate_dump_seconds(100_000, brief=True) < estimate_dump_seconds(100_000) / 10
    assert dump_timeout(100, 2.0) == pytest.approx(10.0)  # small table: the floor
    assert dump_timeout(100_000, 2.0) > estimate_dump_seconds(100_000)
    assert dump_timeout(10_000_000, 2.0) == 600.0


def test_dump_failures_are_explained():
    server = explain_dump_failure("ul_dump", MIServerError("HTTP 500", code=500), 20_000, 10.0)
    assert "20000 contacts" in server and "-M 256" in server and "buf_size" in server
    silent = explain_dump_failure("ul_dump", Timeout("no answer"), None, 42.0)
    assert "stayed silent for 42 s" in silent
    other = explain_dump_failure("ul_dump", TransportError("connection reset"), 5, 10.0)
    assert other.endswith("connection reset")


def test_collect_budget_leaves_room_for_a_dump_deadline():
    """The collector's safety net must not cut a legitimate (slow) dump short."""
    from console.config import Config
    from console.plugins import CollectOptions
    from opsconsole_opensips.live import DUMP_TIMEOUT_CAP, dump_timeout
    from opsconsole_opensips.source import OpenSIPSSource

    source = OpenSIPSSource(Config(timeout=2.0))
    cheap = CollectOptions(contacts=False, dialogs=False)
    assert source.collect_budget(cheap, 7.0) == 7.0
    lists = CollectOptions(full_sync_max=10_000)
    assert source.collect_budget(lists, 7.0) == 7.0 + dump_timeout(10_000, 2.0) > 7.0
    forced = CollectOptions(force_full_sync=True)
    assert source.collect_budget(forced, 7.0) == 7.0 + DUMP_TIMEOUT_CAP


async def test_an_unchanged_live_table_yields_the_same_tuple_counted_from_a_fixed_moment(clock):
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=5, clock=clock) as demo:
        published = PublishedCounter(demo)
        source = make_source(demo, clock)
        try:
            first = await source.collect(LIVE)
            assert first.contacts_mode == "full" and first.contacts_as_of == int(clock.now)
            clock.now += 7  # time passes, no event: nothing to rebuild
            again = await source.collect(LIVE)
            assert again.contacts is first.contacts and again.contacts_as_of == first.contacts_as_of
            await advance(demo, clock, 20, steps=3)
            await settle(source, demo, published.sent)
            later = await source.collect(LIVE)
            assert later.contacts is not first.contacts and later.contacts_as_of == first.contacts_as_of
            shared = {id(c) for c in first.contacts} & {id(c) for c in later.contacts}
            assert shared, "contacts no event touched are the same objects"
            elapsed = clock.now - later.contacts_as_of
            for contact in later.contacts:  # seconds left now, from the fixed moment
                if contact.expires is not None:
                    left = contact.expires - elapsed
                    assert left == source.live.registrations.expires_at(contact.aor, contact.contact) - int(clock.now)
        finally:
            await source.aclose()


@contextlib.asynccontextmanager
async def calls_started_since_the_dialog_list(clock):
    """A live source that listed the dialogs once; then the demo started calls (known only from
    events).  Yields (source, recorder, the dialog ids of that first list)."""
    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=11, clock=clock) as demo:
        recorder, published = Recorder(demo), PublishedCounter(demo)
        source = make_source(demo, clock, heavy_interval=1000)
        try:
            known = {d.id for d in (await source.collect(LIVE)).dialogs}
            await advance(demo, clock, 5, steps=20)
            await settle(source, demo, published.sent)
            yield source, recorder, known
        finally:
            await source.aclose()


def callids_asked(recorder) -> list[str]:
    return [p["callid"] for p in recorder.params_of("dlg_list") if isinstance(p, dict) and "callid" in p]


async def test_calls_started_between_dialog_lists_get_their_parties(clock):
    """Events say a dialog exists, not who talks: each new one is asked for once with
    `dlg_list callid` (bounded per poll), so the Calls screen shows From/To at once."""
    from opsconsole_opensips.live import DIALOG_DETAILS_PER_POLL

    async with calls_started_since_the_dialog_list(clock) as (source, recorder, known):
        state = await source.collect(LIVE)
        new = [d for d in state.dialogs if d.id not in known]
        asked = callids_asked(recorder)
        assert new, "the demo should have started calls"
        assert recorder.count("dlg_list_ctx") == 1  # no full list: one cheap call per new dialog
        assert 0 < len(asked) <= DIALOG_DETAILS_PER_POLL and len(set(asked)) == len(asked)
        detailed = [d for d in new if d.callid in asked and d.from_uri]
        assert detailed and all(d.from_uri.startswith("sip:") and d.caller.contact for d in detailed)
        await source.collect(LIVE)
        assert not set(asked) & set(callids_asked(recorder)[len(asked):])  # each Call-ID is asked once


async def test_new_dialogs_get_parties_only_for_the_rows_on_screen(clock):
    """A Calls screen at 1 000 calls shows a few dozen rows: only their Call-IDs are asked for
    (one HTTP request each); the others keep blank parties until the next full list."""
    async with calls_started_since_the_dialog_list(clock) as (source, recorder, known):
        undetailed = source.live.dialog_store.undetailed()
        assert len(undetailed) >= 2, "the demo should have started calls"
        shown = frozenset(undetailed[:1])
        state = await source.collect(replace(LIVE, dialog_detail_callids=shown))
        assert callids_asked(recorder) == list(shown)
        by_callid = {d.callid: d for d in state.dialogs if d.id not in known}
        assert by_callid[undetailed[0]].from_uri.startswith("sip:")
        assert not by_callid[undetailed[1]].from_uri  # not on screen: not asked
        await source.collect(replace(LIVE, dialog_detail_callids=frozenset()))
        assert len(callids_asked(recorder)) == 1
