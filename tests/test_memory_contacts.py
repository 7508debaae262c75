"""Memory of the 100k-contact path: shared strings, one Contact per row, packed full syncs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from console.model import Contact
from opsconsole_opensips.events import parse_event
from opsconsole_opensips.events_store import RegistrationStore
from opsconsole_opensips.parse import pack_contacts, parse_contacts, release_free_heap, unpack_contacts

FIXTURES = Path(__file__).parent / "fixtures" / "opensips-3.4"
NOW = 1795672000  # a moment inside the captures' expiry times
INSERT = "udp_new_register__E_UL_CONTACT_INSERT_1.json"


def dump_result() -> dict:
    return json.loads((FIXTURES / "mi" / "ul_dump.populated.json").read_text())["result"]


def insert_event(**params):
    obj = json.loads((FIXTURES / "events" / INSERT).read_text())
    obj["params"].update(params)
    return parse_event(obj, now=NOW)


def test_repeated_strings_of_a_dump_are_one_object_each():
    contacts = parse_contacts(dump_result(), "node1")
    for field in ("user_agent", "socket", "q", "state", "transport"):
        values = [getattr(c, field) for c in contacts]
        distinct_texts = len(set(values))
        distinct_objects = len({id(v) for v in values})
        assert distinct_objects == distinct_texts < len(values), field


def test_an_event_contact_shares_the_strings_a_dump_already_holds():
    dumped = parse_contacts(dump_result(), "node1")[0]
    fresh = insert_event(user_agent="".join(dumped.user_agent), socket="".join(dumped.socket)).contact
    assert fresh.user_agent == dumped.user_agent and fresh.user_agent is dumped.user_agent
    assert fresh.socket is dumped.socket


def test_packing_round_trips_every_field_and_keeps_shared_strings_shared():
    contacts = parse_contacts(dump_result(), "node1")
    unpacked = unpack_contacts(pack_contacts(contacts))
    assert unpacked == contacts and all(type(c) is Contact for c in unpacked)
    assert len({id(c.user_agent) for c in unpacked}) == len({c.user_agent for c in unpacked})
    release_free_heap()  # harmless anywhere (a no-op off glibc)


def test_views_share_the_stored_contacts_and_only_changed_ones_are_rebuilt():
    store = RegistrationStore()
    store.load_full([Contact(aor="a", contact="sip:a@h", expires=100),
                     Contact(aor="p", contact="sip:p@h", expires=None, expires_state="permanent")], now=NOW)
    first = store.contacts(now=NOW + 10)
    assert [c.expires for c in first] == [90, None]
    assert all(a is b for a, b in zip(first, store.contacts()))  # one copy: the view is the table
    again = store.contacts(now=NOW + 10.9)  # same whole second: nothing rebuilt
    assert all(a is b for a, b in zip(first, again))
    later = store.contacts(now=NOW + 30)
    assert later[0] is not first[0] and later[0].expires == 70
    assert later[1] is first[1]  # permanent: never rebuilt
    assert store.get("a", "sip:a@h", now=NOW + 30) is later[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-5, 400) | st.none()), max_size=12, unique_by=lambda t: t[0]),
       st.lists(st.integers(0, 500), max_size=6))
def test_refreshed_expiry_matches_a_plain_replace(rows, times):
    contacts = [Contact(aor=f"u{n}", contact=f"sip:u{n}@h", cseq=n, user_agent="UA", expires=left,
                        expires_state="permanent" if left is None else "") for n, left in rows]
    store = RegistrationStore()
    store.load_full(contacts, now=NOW)
    kept = {c.aor: c for c in store.contacts()}
    for offset in sorted(times):
        for contact in store.contacts(now=NOW + offset):
            original = kept[contact.aor]
            if original.expires is None:
                assert contact is original
                continue
            left = NOW + original.expires - (NOW + offset)
            want = replace(original, expires=left, expires_state="") if left > 0 else \
                replace(original, expires=None, expires_state="expired")
            assert contact == want


def test_aor_index_follows_adds_and_removes_of_several_contacts():
    store = RegistrationStore()
    store.load_full([Contact(aor="a", contact="sip:1@h", expires=100),
                     Contact(aor="a", contact="sip:2@h", expires=100),
                     Contact(aor="b", contact="sip:3@h", expires=100)], now=NOW)
    assert sorted(c.contact for c in store.contacts_of("a")) == ["sip:1@h", "sip:2@h"]
    assert store.apply(insert_event(aor="a", uri="sip:4@h", expires=NOW + 50)).added
    assert len(store.contacts_of("a")) == 3 and store.aor_count == 2
    removed = store.expire(NOW + 60)  # only the event contact is due
    assert removed.removed == ("a\x00sip:4@h",) and len(store.contacts_of("a")) == 2
    store.expire(NOW + 200)
    assert store.count == 0 and store.aor_count == 0 and store.contacts_of("a") == []
