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


# --------------------------------------------------------------------------- views counted from a fixed epoch


def test_an_unchanged_store_hands_out_the_very_same_view():
    store = RegistrationStore()
    store.load_full([Contact(aor="a", contact="sip:a@h", expires=100),
                     Contact(aor="p", contact="sip:p@h", expires=None, expires_state="permanent")], now=NOW)
    first = store.view(NOW)
    assert [c.expires for c in first] == [100, None]
    assert store.view(NOW) is first  # nothing changed: no new tuple, nothing rebuilt
    store.expire(NOW + 10)  # nothing due
    assert store.view(NOW) is first


def test_a_view_shares_unchanged_contacts_and_counts_new_ones_from_its_epoch():
    store = RegistrationStore()
    store.load_full([Contact(aor="a", contact="sip:a@h", expires=100),
                     Contact(aor="b", contact="sip:b@h", expires=200)], now=NOW)
    first = store.view(NOW)
    store.apply(insert_event(aor="c", uri="sip:c@h", expires=NOW + 50))
    second = store.view(NOW)
    assert second is not first and second[:2] == first[:2]
    assert all(a is b for a, b in zip(first, second))  # unchanged contacts: the same objects
    assert second[2].aor == "c" and second[2].expires == 50  # counted from the epoch, not the event
    assert store.expires_at("c", "sip:c@h") == NOW + 50 and store.expires_at("a", "sip:a@h") == NOW + 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-5, 400) | st.none()), max_size=12, unique_by=lambda t: t[0]),
       st.integers(-50, 500), st.integers(0, 500))
def test_seconds_left_from_a_view_match_a_refresh_at_now(rows, epoch_offset, now_offset):
    contacts = [Contact(aor=f"u{n}", contact=f"sip:u{n}@h", expires=left,
                        expires_state="permanent" if left is None else "") for n, left in rows]
    store = RegistrationStore()
    store.load_full(contacts, now=NOW)
    epoch, now = NOW + epoch_offset, NOW + now_offset
    viewed = {c.aor: c for c in store.view(epoch)}
    for contact in store.contacts(now=now):
        seen = viewed[contact.aor]
        if contact.expires is not None and seen.expires is not None:
            assert seen.expires - (now - epoch) == contact.expires
        elif contact.expires_state == "permanent":
            assert seen.expires is None and seen.expires_state == "permanent"
        else:  # expired at now: the view's count is used up by then
            assert seen.expires is None or seen.expires - (now - epoch) <= 0


def test_one_uri_under_two_aors_stays_two_contacts():
    store = RegistrationStore()
    store.load_full([Contact(aor="a", contact="sip:shared@h", expires=100),
                     Contact(aor="b", contact="sip:shared@h", expires=200)], now=NOW)
    assert store.count == 2 and store.aor_count == 2
    assert store.get("b", "sip:shared@h").expires == 200 and store.get("a", "sip:shared@h").expires == 100
    assert store.apply(insert_event(aor="a", uri="sip:shared@h", expires=NOW + 10)).updated
    assert store.count == 2 and store.get("b", "sip:shared@h").expires == 200
    store.expire(NOW + 20)  # a's contact is due, b's is not
    assert store.get("a", "sip:shared@h") is None and store.get("b", "sip:shared@h").expires == 200
    assert store.apply(insert_event(aor="c", uri="sip:shared@h", expires=NOW + 300)).added
    assert sorted(c.aor for c in store.contacts()) == ["b", "c"]
    assert [c.aor for c in store.contacts_of("c")] == ["c"] and store.expires_at("c", "sip:shared@h") == NOW + 300


def test_unpacked_contacts_share_equal_numbers():
    """100k contacts repeat a few thousand distinct seconds-left / methods values: one int
    object each after the rebuild, not one per contact (~6 MB at 100k)."""
    contacts = tuple(Contact(aor=f"a{n}", contact=f"sip:a{n}@h", expires=3000 + n % 3, methods=4294967295,
                             cseq=1000 + n % 2, flags=0) for n in range(50))
    unpacked = unpack_contacts(pack_contacts(contacts))
    assert unpacked == contacts
    for field in ("expires", "methods", "cseq"):
        values = [getattr(c, field) for c in unpacked]
        assert len({id(v) for v in values}) == len(set(values)), field
