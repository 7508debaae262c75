"""Live registration / dialog stores fed by captured-shape events."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from console.model import Contact, Dialog, DialogLeg
from opsconsole_opensips.events import AorEvent, parse_event
from opsconsole_opensips.events_store import Change, ChangeSet, DialogStore, EventRouter, RegistrationStore

EVENTS = Path(__file__).parent / "fixtures" / "opensips-3.4" / "events"
NOW = 1795672000  # a moment inside the captures' expiry times


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def event(name: str, now: float = NOW, **params):
    obj = load(name)
    obj["params"].update(params)
    return parse_event(obj, now=now)


INSERT = "udp_new_register__E_UL_CONTACT_INSERT_1.json"
UPDATE = "udp_refresh_expires_change__E_UL_CONTACT_UPDATE_1.json"
DELETE = "udp_unregister_expires0__E_UL_CONTACT_DELETE_1.json"
KEY_1001 = "ev1001\x00sip:ev1001@127.0.0.1:5371;transport=udp"


def dumped(aor: str, uri: str, expires: int | None = 3600, contact_id: str = "", **kw) -> Contact:
    return Contact(aor=aor, contact=uri, contact_id=contact_id, expires=expires, **kw)


def test_insert_update_delete_report_the_changed_key():
    store = RegistrationStore()
    assert store.apply(event(INSERT)) == Change(added=(KEY_1001,))
    assert store.count == 1 and store.aor_count == 1
    assert store.apply(event(UPDATE)) == Change(updated=(KEY_1001,))
    assert store.get("ev1001", "sip:ev1001@127.0.0.1:5371;transport=udp").cseq == 3
    assert store.expires_at("ev1001", "sip:ev1001@127.0.0.1:5371;transport=udp") == 1795674091
    assert store.apply(event(DELETE)) == Change(removed=(KEY_1001,))
    assert store.count == 0 and store.aor_count == 0 and store.contacts() == []


def test_delete_of_unknown_contact_and_aor_insert_change_nothing():
    store = RegistrationStore()
    assert not store.apply(event(DELETE))
    assert not store.apply(event("udp_new_register__E_UL_AOR_INSERT_1.json"))
    assert store.count == 0


def test_update_of_contact_not_seen_before_adds_it():
    # the 100k case: the table only holds what changed since the subscription
    store = RegistrationStore()
    assert store.apply(event(UPDATE)).added == (KEY_1001,)
    assert not store.complete


def test_two_contacts_of_one_aor_are_separate_rows():
    store = RegistrationStore()
    store.apply(event(INSERT))
    store.apply(event(INSERT, uri="sip:ev1001@10.0.0.9:5060"))
    assert store.count == 2 and store.aor_count == 1 and len(store.contacts_of("ev1001")) == 2
    change = store.apply(AorEvent(kind="delete", aor="ev1001"))  # sweeps leftovers
    assert sorted(change.removed) == sorted([KEY_1001, "ev1001\x00sip:ev1001@10.0.0.9:5060"])
    assert store.count == 0


def test_load_full_keeps_contact_id_keys_through_event_updates():
    store = RegistrationStore()
    change = store.load_full([
        dumped("ev1001", "sip:ev1001@127.0.0.1:5371;transport=udp", contact_id="42", state="CS_NEW", methods=31,
               cflags=("DST_WS",), ws=True),
        dumped("1000", "sip:1000@127.0.0.1:5070", contact_id="7"),
        dumped("static1", "sip:static@127.0.0.1", expires=None, expires_state="permanent"),
        dumped("gone", "sip:gone@127.0.0.1", expires=None, expires_state="expired"),
    ], now=NOW)
    assert store.complete and store.count == 3
    assert sorted(change.added) == sorted(["ev1001\x0042", "1000\x007", "static1\x00sip:static@127.0.0.1"])
    update = store.apply(event(UPDATE))
    assert update == Change(updated=("ev1001\x0042",))
    kept = store.get("ev1001", "sip:ev1001@127.0.0.1:5371;transport=udp")
    assert (kept.contact_id, kept.state, kept.methods, kept.cseq) == ("42", "CS_NEW", 31, 3)
    assert (kept.cflags, kept.ws) == (("DST_WS",), True)  # events carry bflags as a number only
    assert store.apply(event(DELETE)) == Change(removed=("ev1001\x0042",))


def test_load_full_reports_a_keyed_diff_against_the_previous_table():
    store = RegistrationStore()
    store.load_full([dumped("a", "sip:a@h", contact_id="1"), dumped("b", "sip:b@h", contact_id="2")], now=NOW)
    change = store.load_full([dumped("b", "sip:b@h", contact_id="2", cseq=9),
                              dumped("c", "sip:c@h", contact_id="3")], now=NOW)
    assert change == Change(added=("c\x003",), updated=("b\x002",), removed=("a\x001",))


def test_expire_drops_contacts_whose_absolute_expiry_passed():
    store = RegistrationStore()
    store.load_full([dumped("short", "sip:s@h", expires=10), dumped("long", "sip:l@h", expires=3600),
                     dumped("perm", "sip:p@h", expires=None, expires_state="permanent")], now=NOW)
    assert not store.expire(NOW + 9)
    assert store.expire(NOW + 10) == Change(removed=("short\x00sip:s@h",))
    assert store.expire(NOW + 10**7).removed == ("long\x00sip:l@h",)
    assert [c.aor for c in store.contacts()] == ["perm"]


def test_refresh_moves_the_expiry_and_stale_heap_entries_are_ignored():
    store = RegistrationStore()
    store.apply(event(INSERT, expires=NOW + 60))
    store.apply(event(UPDATE, expires=NOW + 600))
    assert not store.expire(NOW + 61)  # the old expiry no longer applies
    assert store.expire(NOW + 600).removed == (KEY_1001,)


def test_contacts_with_now_recompute_seconds_left():
    store = RegistrationStore()
    store.apply(event(INSERT, expires=NOW + 100))
    assert store.contacts()[0].expires == 100
    assert store.contacts(now=NOW + 40)[0].expires == 60
    assert store.contacts(now=NOW + 100)[0].expires_state == "expired"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["insert", "update", "delete"]), st.integers(0, 5),
                          st.integers(1, 50)), max_size=60))
def test_store_matches_a_plain_model_under_any_event_sequence(ops):
    store, model = RegistrationStore(), {}
    names = {"insert": INSERT, "update": UPDATE, "delete": DELETE}
    for kind, n, expiry in ops:
        uri = f"sip:u{n}@127.0.0.1"
        change = store.apply(event(names[kind], aor=f"u{n}", uri=uri, expires=NOW + expiry))
        key = f"u{n}\x00{uri}"
        if kind == "delete":
            assert change.removed == ((key,) if key in model else ())
            model.pop(key, None)
        else:
            assert (change.updated if key in model else change.added) == (key,)
            model[key] = NOW + expiry
    assert sorted(c.key for c in store.contacts()) == sorted(model)
    expired = store.expire(NOW + 25)
    assert sorted(expired.removed) == sorted(k for k, at in model.items() if at <= NOW + 25)


def test_apply_all_reports_the_net_change_of_a_batch():
    store = RegistrationStore()
    store.apply(event(INSERT, aor="old", uri="sip:old@h"))
    change = store.apply_all([
        event(INSERT),  # added then removed: nothing for the UI
        event(DELETE),
        event(DELETE, aor="old", uri="sip:old@h"),  # removed then added: an update
        event(INSERT, aor="old", uri="sip:old@h"),
        event(INSERT, aor="new", uri="sip:new@h"),
        event(UPDATE, aor="new", uri="sip:new@h"),  # added then updated: added
    ])
    assert change == Change(added=("new\x00sip:new@h",), updated=("old\x00sip:old@h",))


def test_changeset_net_effect():
    changes = ChangeSet()
    for change in (Change(added=("a",)), Change(removed=("a",)), Change(updated=("b",)), Change(removed=("b",))):
        changes.add(change)
    assert changes.result() == Change(removed=("b",))


def call_events(prefix: str, count: int):
    return [parse_event(load(f"{prefix}{n}.json")) for n in range(1, count + 1)]


def test_dialog_lifecycle_1_2_4_5():
    store = DialogStore()
    first, early_to_cnf, confirmed, deleted = call_events("udp_call_start__E_DLG_STATE_CHANGED_", 4)
    assert store.apply(first, now=NOW) == Change(added=("638.bf81ae34",))
    dialog = store.get("638.bf81ae34")
    assert (dialog.state_name, dialog.callid, dialog.caller.tag, dialog.callee.tag) == (
        "early", "ev-call-1-2159", "2159SIPpTag001", "2146SIPpTag011")
    assert dialog.start == 0  # not confirmed yet
    assert store.apply(early_to_cnf, now=NOW + 1).updated == ("638.bf81ae34",)
    assert store.apply(confirmed, now=NOW + 2).updated == ("638.bf81ae34",)
    assert store.get("638.bf81ae34").state == 4 and store.get("638.bf81ae34").start == NOW + 2
    assert store.state_counts() == {4: 1}
    assert store.apply(deleted, now=NOW + 5) == Change(removed=("638.bf81ae34",))
    assert store.count == 0 and store.get("638.bf81ae34") is None


def test_dialog_404_1_to_5_never_appears():
    store = DialogStore()
    (failed,) = call_events("udp_call_404_start__E_DLG_STATE_CHANGED_", 1)
    assert not store.apply(failed)
    assert store.count == 0


def test_dialog_loaded_from_dlg_list_keeps_its_details_on_events():
    store = DialogStore()
    leg = DialogLeg(tag="2146SIPpTag011", transport="udp", media_ports=(30000,))
    store.load_full([Dialog(id="638.bf81ae34", callid="ev-call-1-2159", state=3, start=0,
                            from_uri="sip:a@h", callees=(leg,)),
                     Dialog(id="1.1", callid="other", state=4)])
    confirmed = call_events("udp_call_start__E_DLG_STATE_CHANGED_", 3)[2]
    assert store.apply(confirmed, now=NOW) == Change(updated=("638.bf81ae34",))
    dialog = store.get("638.bf81ae34")
    assert (dialog.state, dialog.from_uri, dialog.callee.media_ports, dialog.start) == (4, "sip:a@h", (30000,), NOW)
    assert [d.id for d in store.by_callid("other")] == ["1.1"]


def test_a_new_dialog_list_keeps_the_objects_of_unchanged_dialogs():
    """The screens tell unchanged rows by identity: equal dialogs keep their objects."""
    store = DialogStore()
    store.load_full([Dialog(id="1.1", callid="a", state=4, from_uri="sip:a@h"),
                     Dialog(id="2.2", callid="b", state=4, from_uri="sip:b@h")])
    a, b = store.get("1.1"), store.get("2.2")
    change = store.load_full([Dialog(id="1.1", callid="a", state=4, from_uri="sip:a@h"),
                              Dialog(id="2.2", callid="b", state=4, from_uri="sip:b2@h"),
                              Dialog(id="3.3", callid="c", state=2)])
    assert store.get("1.1") is a
    assert store.get("2.2") is not b and store.get("2.2").from_uri == "sip:b2@h"
    assert change.added == ("3.3",) and change.updated == ("2.2",)


def test_router_sends_each_event_to_its_store():
    router = EventRouter(RegistrationStore(), DialogStore())
    assert router.apply(event(INSERT)).added == (KEY_1001,)
    assert router.apply(call_events("udp_call_start__E_DLG_STATE_CHANGED_", 1)[0]).added == ("638.bf81ae34",)
    assert router.registrations.count == 1 and router.dialogs.count == 1
    assert not EventRouter().apply(event(INSERT))  # no store: ignored, no crash


def test_dialog_early_straight_to_confirmed_then_deleted():
    # 1->2->4->5: a 200 OK ACKed fast enough that no 3 is reported
    store = DialogStore()
    events = call_events("udp_call_start__E_DLG_STATE_CHANGED_", 4)
    skip = parse_event(dict(load("udp_call_start__E_DLG_STATE_CHANGED_3.json"),
                            params=dict(load("udp_call_start__E_DLG_STATE_CHANGED_3.json")["params"], old_state=2)))
    changes = [store.apply(e, now=NOW) for e in (events[0], skip)]
    assert changes == [Change(added=("638.bf81ae34",)), Change(updated=("638.bf81ae34",))]
    assert store.get("638.bf81ae34").state_name == "confirmed"
    assert store.apply(events[3]).removed == ("638.bf81ae34",) and store.count == 0


def test_store_loaded_from_a_real_ul_dump_follows_events_with_stable_keys():
    from opsconsole_opensips.parse import parse_contacts

    dump = json.loads((EVENTS.parent / "mi" / "ul_dump.populated.json").read_text())["result"]
    contacts = parse_contacts(dump, "node1")
    store = RegistrationStore()
    assert len(store.load_full(contacts, now=NOW).added) == store.count == len(contacts) == 70
    dumped_1000 = store.contacts_of("1000")[0]
    refresh = event(UPDATE, aor="1000", uri=dumped_1000.contact, socket=dumped_1000.socket, cseq=7)
    assert refresh.contact.transport == dumped_1000.transport  # both parsers agree
    assert store.apply(refresh) == Change(updated=(dumped_1000.key,))
    assert store.contacts_of("1000")[0].contact_id == dumped_1000.contact_id != ""
    assert store.apply(event(DELETE, aor="1000", uri=dumped_1000.contact)).removed == (dumped_1000.key,)
    assert store.count == 69


def test_events_seen_during_a_dump_are_replayed_on_top_of_it():
    store = RegistrationStore()
    store.load_full([dumped("old", "sip:old@h", contact_id="9")], now=NOW)
    store.begin_sync()  # subscribed already; the slow ul_dump starts now
    store.apply(event(INSERT))  # registered while the dump ran: not in it
    store.apply(event(DELETE, aor="1000", uri="sip:1000@h"))  # unregistered after the dump read it
    change = store.load_full([dumped("1000", "sip:1000@h", contact_id="5")], now=NOW)
    assert sorted(c.aor for c in store.contacts()) == ["ev1001"]
    assert change == Change(removed=("old\x009",))  # ev1001 was reported when its event came
    assert store.complete and not store.journal.recording
    # the journal is one-shot: a later dump without begin_sync replays nothing
    store.load_full([], now=NOW)
    assert store.count == 0


def test_journal_overflow_marks_the_table_incomplete():
    store = RegistrationStore()
    store.journal.limit = 1
    store.begin_sync()
    store.apply(event(INSERT))
    store.apply(event(INSERT, aor="x", uri="sip:x@h"))
    store.load_full([], now=NOW)
    assert not store.complete and store.journal.overflowed


def test_dialog_events_during_dlg_list_are_replayed():
    store = DialogStore()
    store.begin_sync()
    first, second, third, _ = call_events("udp_call_start__E_DLG_STATE_CHANGED_", 4)
    for e in (first, second, third):
        store.apply(e, now=NOW)
    store.load_full([Dialog(id="638.bf81ae34", callid="ev-call-1-2159", state=2, from_uri="sip:a@h")])
    dialog = store.get("638.bf81ae34")
    assert (dialog.state, dialog.from_uri, dialog.start) == (4, "sip:a@h", NOW)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 50)), max_size=6,
                unique_by=lambda t: t[:2]),
       st.lists(st.tuples(st.sampled_from(["insert", "update", "delete", "aor-delete"]), st.integers(0, 3),
                          st.integers(0, 2), st.integers(1, 50)), max_size=50),
       st.integers(0, 60))
def test_several_contacts_per_aor_match_a_plain_model(dump, ops, expire_at):
    """AoRs of one and of several contacts (stored differently) behave alike, from a dump on."""
    store, model = RegistrationStore(), {}
    names = {"insert": INSERT, "update": UPDATE, "delete": DELETE}
    store.load_full([dumped(f"u{a}", f"sip:u{a}-{c}@h", expires=left) for a, c, left in dump], now=NOW)
    model = {(f"u{a}", f"sip:u{a}-{c}@h"): NOW + left for a, c, left in dump}
    for kind, a, c, expiry in ops:
        aor, uri = f"u{a}", f"sip:u{a}-{c}@h"
        if kind == "aor-delete":
            change = store.apply(AorEvent(kind="delete", aor=aor))
            gone = sorted(f"{k[0]}\x00{k[1]}" for k in model if k[0] == aor)
            assert sorted(change.removed) == gone
            model = {k: v for k, v in model.items() if k[0] != aor}
            continue
        change = store.apply(event(names[kind], aor=aor, uri=uri, expires=NOW + expiry))
        if kind == "delete":
            assert bool(change.removed) == ((aor, uri) in model)
            model.pop((aor, uri), None)
        else:
            model[(aor, uri)] = NOW + expiry
    assert sorted((c.aor, c.contact) for c in store.contacts()) == sorted(model)
    assert store.aor_count == len({aor for aor, _ in model})
    for aor, uri in model:
        assert store.expires_at(aor, uri) == model[(aor, uri)]
        assert store.get(aor, uri).contact == uri
        assert sorted(c.contact for c in store.contacts_of(aor)) == sorted(u for a, u in model if a == aor)
    store.expire(NOW + expire_at)
    assert sorted((c.aor, c.contact) for c in store.contacts()) == sorted(k for k, at in model.items()
                                                                          if at > NOW + expire_at)


def test_a_dialog_known_from_events_gets_its_details_and_keeps_the_events_state():
    """E_DLG_STATE_CHANGED has no From/To: the store says which dialogs lack them, and a dlg_list
    answer fills them in without rolling back a state the events already moved on."""
    import json

    from opsconsole_opensips.events import parse_event
    from opsconsole_opensips.parse import parse_dialogs

    from conftest import FIXTURES

    listed = parse_dialogs(json.loads((FIXTURES / "opensips-3.4" / "mi" / "dlg_list.callid.udp_udp.json")
                                      .read_text())["result"])[0]
    store = DialogStore()
    store.apply(parse_event({"jsonrpc": "2.0", "method": "E_DLG_STATE_CHANGED", "params": {
        "id": listed.id, "db_id": "1", "callid": listed.callid, "from_tag": listed.caller.tag,
        "to_tag": "", "old_state": 1, "new_state": 2}}), now=100.0)
    assert store.undetailed() == [listed.callid]
    early = dataclasses.replace(listed, state=2)
    assert store.fill(dataclasses.replace(early, id="someone-else")) is False
    assert store.fill(early)
    filled = store.get(listed.id)
    assert filled.from_uri == listed.from_uri and filled.caller.contact == listed.caller.contact
    assert filled.state == 2 and store.undetailed() == []
    store.apply(parse_event({"jsonrpc": "2.0", "method": "E_DLG_STATE_CHANGED", "params": {
        "id": listed.id, "db_id": "1", "callid": listed.callid, "from_tag": listed.caller.tag,
        "to_tag": "t", "old_state": 2, "new_state": 4}}), now=200.0)
    assert store.fill(early) and store.get(listed.id).state == 4  # an older answer keeps the newer state
