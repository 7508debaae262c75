"""Pure view logic: contact filter/sort index, MI command parsing, live state."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugins import CollectOptions
from console.ui.state import LiveState
from console.ui.views import ContactIndex, parse_mi_command, transport_matches

from .data import NOW, lab_snapshot, many_contacts, sources


def naive(contacts, text, transport, sort, reverse):
    needle = text.lower()
    hits = [c for c in contacts if transport_matches(c, transport)
            and needle in f"{c.aor}\x00{c.contact}\x00{c.user_agent}".lower()]
    key = {"aor": lambda c: c.aor, "user_agent": lambda c: (c.user_agent, c.aor),
           "expires": lambda c: (c.expires is None, c.expires or 0, c.aor)}[sort]
    ordered = sorted(hits, key=key)
    return ordered[::-1] if reverse else ordered


LAB = lab_snapshot().signalling.contacts


def test_lab_transport_counts():
    index = ContactIndex(LAB)
    assert len(index.select(transport="udp")) == 50
    assert len(index.select(transport="tcp")) == 10
    assert len(index.select(transport="ws")) == 10  # ws transport / DST_WS flag
    assert len(index.select(transport="tls")) == 0
    assert all(c.ws for c in index.select(transport="ws"))


def test_filter_is_case_insensitive_over_aor_contact_ua():
    index = ContactIndex(LAB)
    assert [c.aor for c in index.select("WS2003")] == ["ws2003"]
    assert len(index.select("SIPP-LAB-tcp")) == 10
    assert len(index.select(":5071;")) == 10


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["", "1", "10", "100", "ws", "ws20", "tcp", "u", "x", "lab"]),
                             st.sampled_from(["all", "ws", "udp", "tcp", "tls"]),
                             st.sampled_from(["aor", "user_agent", "expires"]),
                             st.booleans()), min_size=1, max_size=8),
)
def test_cached_index_agrees_with_a_naive_scan(steps):
    """Whatever order filters are typed in, the cached answers equal a full scan."""
    contacts = LAB + many_contacts(300)
    index = ContactIndex(contacts)
    for text, transport, sort, reverse in steps:
        got = list(index.select(text, transport, sort, reverse))
        want = naive(contacts, text, transport, sort, reverse)
        assert [c.key for c in got] == [c.key for c in want]


def test_selection_is_a_lazy_sequence():
    index = ContactIndex(many_contacts(1000))
    hits = index.select(transport="ws")
    assert len(hits) == 100
    assert hits[0].aor == "u000000" and hits[-1].aor == "u000990"
    assert [c.aor for c in hits[1:3]] == ["u000010", "u000020"]


@pytest.mark.parametrize("line,method,params", [
    ("version", "version", None),
    ("  which  ", "which", None),
    ("ul_show_contact location 1000", "ul_show_contact", ["location", 1000]),
    ('dlg_list {"callid": "x"}', "dlg_list", {"callid": "x"}),
    ('get_statistics ["all"]', "get_statistics", ["all"]),
    ("dlg_list index=0 counter=3", "dlg_list", {"index": 0, "counter": 3}),
])
def test_parse_mi_command(line, method, params):
    assert parse_mi_command(line) == (method, params)


@pytest.mark.parametrize("line,message", [
    ("", "type an MI command"),
    ('dlg_list {"callid": ', "not valid JSON"),
    ("dlg_list index=0 3", "mix of key=value and positional"),
])
def test_parse_mi_command_errors_are_readable(line, message):
    with pytest.raises(ValueError, match=message):
        parse_mi_command(line)


def test_state_keeps_contacts_when_not_requested_and_marks_media_stale():
    state = LiveState()
    full = lab_snapshot()
    state.apply(full, CollectOptions())
    assert len(state.contacts) == 70 and state.contacts_at == NOW
    light = replace(full, collected_at=NOW + 2, signalling=replace(full.signalling, contacts=None, dialogs=None),
                    media=None, sources=sources(failing="rtpengine", at=NOW + 2))
    state.apply(light, CollectOptions(contacts=False, dialogs=False))
    assert len(state.contacts) == 70 and state.contacts_at == NOW  # kept, with its own age
    assert len(state.calls) == 10  # still joined from the kept dialogs + last good media
    assert state.media_stale() and not state.signalling_stale()
    assert state.last_ok["rtpengine"] == NOW and state.last_ok["opensips"] == NOW + 2


def test_state_drops_contacts_when_requested_but_missing():
    state = LiveState()
    full = lab_snapshot()
    state.apply(full, CollectOptions())
    note = "too many contacts"
    skipped = replace(full, signalling=replace(full.signalling, contacts=None, contacts_note=note))
    state.apply(skipped, CollectOptions(contacts=True))
    assert state.contacts is None and state.contacts_note == note
    assert len(state.contact_index().contacts) == 0


def test_history_collects_one_sample_per_poll():
    state = LiveState()
    for n in range(3):
        state.apply(lab_snapshot(NOW + n), CollectOptions())
    assert state.history["registrations"].data() == [70.0, 70.0, 70.0]
    assert state.history["ports"].data() == [36.0, 36.0, 36.0]
    assert state.history["dialogs"].data() == [9.0, 9.0, 9.0]
