"""Pure view logic: contact filter/sort index, MI command parsing, live state."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugins import CollectOptions
from console.live_state import LiveState
from console.views import ContactIndex, parse_mi_command, transport_matches

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
    ("ul_show_contact location 1000", "ul_show_contact", ["location", "1000"]),
    ('dlg_list {"callid": "x"}', "dlg_list", {"callid": "x"}),
    ('get_statistics ["all"]', "get_statistics", ["all"]),
    ("dlg_list index=0 counter=3", "dlg_list", {"index": "0", "counter": "3"}),  # as the CLI: a string
    ("dlg_list index:=0 counter:=3", "dlg_list", {"index": 0, "counter": 3}),
    ("get_statistics statistics:='[\"all\"]'", "get_statistics", {"statistics": ["all"]}),
    ("ul_show_contact table_name=location aor='sip:1000@x y'", "ul_show_contact",
     {"table_name": "location", "aor": "sip:1000@x y"}),
])
def test_parse_mi_command(line, method, params):
    assert parse_mi_command(line) == (method, params)


@pytest.mark.parametrize("line,message", [
    ("", "type an MI command"),
    ('dlg_list {"callid": ', "not valid JSON"),
    ("dlg_list index=0 3", "plain words and key=value do not mix"),
    ("dlg_list index:=nope", "needs a JSON value"),
    ("dlg_list 'unclosed", "No closing quotation"),
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


# --------------------------------------------------------------------------- live lists: reuse


def _changed(contacts, positions, **fields):
    out = list(contacts)
    for i in positions:
        out[i] = replace(out[i], **fields)
    return tuple(out)


def test_a_few_changed_contacts_reuse_the_previous_index():
    contacts = LAB + many_contacts(300)
    first = ContactIndex(contacts)
    first.select("u00", "udp", "aor")
    first.select(sort="user_agent")
    refreshed = _changed(contacts, [3, 80, 200], expires=7, cseq=9)  # re-registered: same AoR, URI, UA
    second = ContactIndex(refreshed, previous=first)
    assert second.new_contacts == 3
    assert second._orders["aor"] is first._orders["aor"]  # reused, not re-sorted
    assert second._orders["user_agent"] is first._orders["user_agent"]
    for query in [("u00", "udp", "aor", False), ("", "all", "user_agent", True), ("", "all", "expires", False)]:
        assert [c.key for c in second.select(*query)] == [c.key for c in naive(refreshed, *query)]


def test_a_changed_sort_key_or_search_text_is_not_reused_stale():
    contacts = many_contacts(200)
    first = ContactIndex(contacts)
    first.select("lab-udp", sort="user_agent")
    renamed = _changed(contacts, [1, 5], user_agent="Zoiper 5")
    second = ContactIndex(renamed, previous=first)
    assert "user_agent" not in second._orders  # its order changed: rebuilt when asked for
    assert [c.aor for c in second.select("zoiper")] == ["u000001", "u000005"]
    assert [c.key for c in second.select("lab-udp", sort="user_agent")] == \
        [c.key for c in naive(renamed, "lab-udp", "all", "user_agent", False)]


@settings(max_examples=40, deadline=None)
@given(
    changes=st.lists(st.tuples(st.integers(0, 119), st.sampled_from(["expires", "ua", "transport", "upper", "drop"])),
                     max_size=10),
    query=st.tuples(st.sampled_from(["", "u0001", "lab", "zz", "udp", "sip:u0001"]), st.sampled_from(["all", "ws", "udp", "tcp"]),
                    st.sampled_from(["aor", "user_agent", "expires"]), st.booleans()),
)
def test_an_index_built_from_the_previous_one_agrees_with_a_naive_scan(changes, query):
    contacts = list(many_contacts(120))
    first = ContactIndex(tuple(contacts))
    for warm in [("lab", "udp", "aor", False), ("", "ws", "user_agent", False), ("", "all", "expires", True),
                 ("sip", "all", "aor", False)]:
        first.select(*warm)
    dropped = set()
    for i, what in changes:
        if what == "drop":
            dropped.add(i)
        else:
            fields = {"expires": {"expires": i + 1}, "ua": {"user_agent": f"zz-{i}"},
                      "transport": {"transport": "tcp", "ws": False},
                      "upper": {"contact": contacts[i].contact.upper()}}[what]
            contacts[i] = replace(contacts[i], **fields)
    new = tuple(c for n, c in enumerate(contacts) if n not in dropped)
    second = ContactIndex(new, previous=first)
    assert [c.key for c in second.select(*query)] == [c.key for c in naive(new, *query)]


def test_prepare_builds_the_shown_order_and_the_ones_used_before_not_every_column():
    contacts = many_contacts(400)
    first = ContactIndex(contacts).prepare(sort="expires")
    assert set(first._orders) == {"aor", "expires"} and first._haystack is not None  # aor: the tie order
    assert set(first._transport) == {"ws", "udp", "tcp", "tls"}  # a new list: 1 byte a contact each
    first = ContactIndex(contacts)
    first.select(sort="socket")
    moved = _changed(contacts, [0], expires=1)
    second = ContactIndex(moved[1:], previous=first).prepare()  # a removal: nothing reusable by position
    assert set(second._orders) == {"aor", "socket"} and second._haystack is not None  # always: see prepare
    assert not second._transport  # no transport filter used yet


def test_state_keeps_the_index_of_an_unchanged_list_and_builds_on_it_for_a_new_one():
    state = LiveState()
    full = lab_snapshot()
    state.apply(full, CollectOptions())
    index = state.contact_index()
    index.select(sort="user_agent")
    state.apply(replace(full, collected_at=NOW + 2), CollectOptions())  # the very same tuple
    assert state.contact_index() is index
    contacts = _changed(full.signalling.contacts, [0], expires=5)
    state.apply(replace(full, signalling=replace(full.signalling, contacts=contacts)), CollectOptions())
    successor = state.contact_index()
    assert successor is not index
    successor.select(sort="user_agent")
    assert successor._orders["user_agent"] is index._orders["user_agent"]


def test_expires_counts_from_the_lists_own_moment():
    state = LiveState()
    full = lab_snapshot()
    state.apply(full, CollectOptions())
    assert state.contacts_elapsed(NOW + 5) == 5  # a dump: counts from its collection
    live = replace(full, collected_at=NOW + 20, signalling=replace(full.signalling, contacts_as_of=NOW - 100))
    state.apply(live, CollectOptions())
    assert state.contacts_at == NOW + 20 and state.contacts_elapsed(NOW + 25) == 125


def test_search_keeps_no_copy_of_fields_already_lower_case():
    index = ContactIndex(many_contacts(50))  # AoRs and URIs lower case, user agents "sipp-lab-UDP"
    assert [c.aor for c in index.select("SIP:U00001")] == [f"u0000{n}" for n in range(10, 20)]
    aors, uris, agents = index._haystack
    assert aors is None and uris is None  # searched in the contacts themselves
    assert len({id(value) for value in agents}) == 2  # one lowered copy per distinct user agent
    assert len(index.select("LAB-ws")) == 5


def test_indexes_never_used_do_not_keep_a_chain_of_old_lists():
    contacts = many_contacts(100)
    first = ContactIndex(contacts)
    first.select(sort="user_agent")
    unused = ContactIndex(_changed(contacts, [1], expires=1), previous=first)  # e.g. screen 2 not shown
    latest = ContactIndex(_changed(contacts, [1, 2], expires=2), previous=unused)
    # both take what `first` built (a copy of its caches, not `first` itself: no chain of indexes)
    assert latest._seed is unused._seed and latest._seed.contacts is first.contacts
    latest.select(sort="user_agent")
    assert latest._orders["user_agent"] is first._orders["user_agent"]
