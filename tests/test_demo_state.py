"""The simulated OpenSIPS state evolves like the lab: contacts register, refresh and expire;
calls start and end across transports with dialog states 1 -> 2 -> (3) -> 4 -> 5."""

from __future__ import annotations

from collections import defaultdict

import pytest

from opsconsole_demo.mi_render import MiError, MiRenderer
from opsconsole_demo.state import DemoState
from test_demo_shapes import START, FakeClock


def run(state: DemoState, clock: FakeClock, seconds: int) -> list:
    events = []
    for _ in range(seconds):
        clock.now += 1
        events.extend(state.advance())
        state.take_media_work()
    return events


def test_default_size_matches_the_lab_layout():
    state = DemoState(clock=FakeClock())
    contacts = list(state.online_contacts())
    by_transport = defaultdict(list)
    for contact in contacts:
        by_transport[contact.transport].append(contact.aor)
    assert len(contacts) == 70
    assert {t: len(a) for t, a in by_transport.items()} == {"udp": 50, "tcp": 10, "ws": 10}
    assert by_transport["udp"][0] == "1000" and by_transport["tcp"][0] == "3000" and by_transport["ws"][0] == "ws2000"
    assert state.target_calls == 8


@pytest.mark.parametrize("size", [3, 700, 20_000])
def test_size_scales_contacts_and_calls(size):
    state = DemoState(size, clock=FakeClock())
    aors = [c.aor for c in state.online_contacts()]
    assert len(aors) == size and len(set(aors)) == size  # unique AORs at every size
    assert state.target_calls == max(4, size // 8)


def test_same_seed_same_history_other_seed_other_history():
    def history(seed):
        clock = FakeClock()
        state = DemoState(70, seed=seed, clock=clock)
        return [(e.name, e.params) for e in run(state, clock, 300)]

    assert history(7) == history(7)
    assert history(7) != history(8)


def test_contacts_refresh_expire_and_register_again():
    clock = FakeClock()
    state = DemoState(70, seed=2, clock=clock)
    events = run(state, clock, 900)
    names = [e.name for e in events]
    for name in ("E_UL_CONTACT_UPDATE", "E_UL_CONTACT_DELETE", "E_UL_AOR_DELETE", "E_UL_CONTACT_INSERT", "E_UL_AOR_INSERT"):
        assert name in names, name
    # AOR_INSERT announces the AOR before its contact; CONTACT_DELETE comes before AOR_DELETE
    for i, event in enumerate(events):
        if event.name == "E_UL_AOR_INSERT":
            assert events[i + 1].name == "E_UL_CONTACT_INSERT" and events[i + 1].params["aor"] == event.params["aor"]
        if event.name == "E_UL_AOR_DELETE":
            assert events[i - 1].name == "E_UL_CONTACT_DELETE" and events[i - 1].params["aor"] == event.params["aor"]
    updates = [e.params for e in events if e.name == "E_UL_CONTACT_UPDATE"]
    assert all(u["cseq"] >= 2 and u["expires"] > START for u in updates)
    assert state.counters.get("usrloc:location-expires") > 0


def test_expired_contact_disappears_from_mi():
    clock = FakeClock()
    state = DemoState(70, seed=2, clock=clock)
    renderer = MiRenderer(state)
    for _ in range(900):
        clock.now += 1
        deleted = [e.params["aor"] for e in state.advance() if e.name == "E_UL_AOR_DELETE"]
        if deleted:
            break
    assert deleted
    with pytest.raises(MiError) as info:
        renderer.call("ul_show_contact", {"table_name": "location", "aor": deleted[0]})
    assert (info.value.code, info.value.message) == (404, "AOR not found")
    dumped = {a["AOR"] for a in renderer.call("ul_dump")["Domains"][0]["AORs"]}
    assert deleted[0] not in dumped and len(dumped) == state.contact_count


def test_expires_counts_down_with_the_clock():
    clock = FakeClock()
    state = DemoState(70, seed=4, clock=clock)
    renderer = MiRenderer(state)
    far = next(c for c in state.online_contacts() if c.expires_at - clock.now > 600)  # not due for refresh
    query = {"table_name": "location", "aor": far.aor}
    before = renderer.call("ul_show_contact", query)["Contacts"][0]
    clock.now += 3
    state.advance()
    after = renderer.call("ul_show_contact", query)["Contacts"][0]
    assert after["Expires"] == before["Expires"] - 3 and after["Cseq"] == before["Cseq"]


def test_calls_are_up_at_start_with_their_media_queued():
    state = DemoState(70, seed=5, clock=FakeClock())
    dialogs = state.active_dialogs()
    assert len(dialogs) == state.target_calls and all(d.state == 4 and d.callee.tag for d in dialogs)
    assert state.take_events() == []  # nobody could have subscribed before the start
    work = [(w.op, w.dialog.callid) for w in state.take_media_work()]
    assert work == [(op, d.callid) for d in dialogs for op in ("offer", "answer")]


def test_dialog_states_follow_the_captured_transitions():
    clock = FakeClock()
    state = DemoState(70, seed=5, clock=clock, initial_calls=False)
    events = [e.params for e in run(state, clock, 600) if e.name == "E_DLG_STATE_CHANGED"]
    by_call = defaultdict(list)
    for params in events:
        by_call[params["callid"]].append((params["old_state"], params["new_state"]))
    full = [(1, 2), (2, 3), (3, 4), (4, 5)]
    ended = 0
    for transitions in by_call.values():
        assert transitions == full[:len(transitions)] or transitions == [(1, 5)]
        ended += transitions[-1][1] == 5
    assert ended >= 5  # calls do end
    # no event at creation: the first one is always from state 1
    assert all(t[0][0] == 1 for t in by_call.values())


def test_calls_cover_every_transport_pair_and_bind_addresses_match():
    clock = FakeClock()
    state = DemoState(70, seed=6, clock=clock)
    seen = set()
    for _ in range(900):
        clock.now += 1
        state.advance()
        state.take_media_work()
        for dialog in state.active_dialogs():
            seen.add(dialog.kind)
            assert dialog.caller.bind_addr.startswith(dialog.kind[0] + ":")
            assert dialog.callee.bind_addr.startswith(dialog.kind[1] + ":")
    assert seen == {("udp", "udp"), ("udp", "ws"), ("ws", "udp"), ("ws", "ws"), ("tcp", "tcp")}


def test_ended_calls_leave_dlg_list_and_counters_follow():
    clock = FakeClock()
    state = DemoState(70, seed=5, clock=clock)
    renderer = MiRenderer(state)
    events = run(state, clock, 400)
    ended = {e.params["callid"] for e in events if e.name == "E_DLG_STATE_CHANGED" and e.params["new_state"] == 5}
    clock.now += 1
    state.advance()
    listed = {d["callid"] for d in renderer.call("dlg_list")["Dialogs"]}
    assert ended and not ended & listed
    stats = renderer.call("get_statistics", {"statistics": ["dialog:"]})
    active, early = state.dialog_counts()
    assert stats["dialog:active_dialogs"] == active and stats["dialog:early_dialogs"] == early
    assert stats["dialog:processed_dialogs"] >= len(ended) + len(listed)


def test_media_work_follows_the_call():
    clock = FakeClock()
    state = DemoState(70, seed=5, clock=clock)
    ops = defaultdict(list)
    for _ in range(400):
        clock.now += 1
        state.advance()
        for work in state.take_media_work():
            ops[work.dialog.callid].append(work.op)
    assert ops
    for sequence in ops.values():
        assert sequence in (["offer"], ["offer", "answer"], ["offer", "answer", "delete"], ["offer", "delete"])


def test_bad_sizes_and_versions_are_refused_with_a_config_error():
    from opsconsole_demo import DemoPlatform
    from console.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 3"):
        DemoState(2)
    with pytest.raises(ConfigError, match="3.4 or 4.0"):
        DemoPlatform(version="5.0")


def test_demo_package_imports_neither_textual_nor_other_plugins():
    """The demo imitates OpenSIPS and RTPengine on the wire; it must not lean on their plugins' code
    (the real-relay path borrows the ng client lazily, only when a real rtpengine runs)."""
    import subprocess
    import sys

    code = ("import sys, opsconsole_demo, opsconsole_demo.__main__, opsconsole_demo.plugin; "
            "bad = [m for m in sys.modules if m.startswith(('textual', 'opsconsole_'))"
            " and not m.startswith('opsconsole_demo')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
