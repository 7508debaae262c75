"""OpenSIPS event codec against the real event_datagram / event_stream captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.errors import ProtocolError
from opsconsole_opensips.events import (
    AorEvent,
    ContactEvent,
    DialogStateEvent,
    EventStreamDecoder,
    OtherEvent,
    contact_from_event,
    decode_datagram,
    expires_left,
    parse_event,
    q_text,
)

EVENTS = Path(__file__).parent / "fixtures" / "opensips-3.4" / "events"
DATAGRAMS = sorted(EVENTS.glob("udp_*.bin"))
STREAMS = sorted(EVENTS.glob("tcp_stream_*.bin"))
# the AoR-insert stream subscription used the custom method suffix `/ul_aor_insert`
STREAM_ALIASES = {"ul_aor_insert": "E_UL_AOR_INSERT"}
ALL_STREAM_BYTES = b"".join(p.read_bytes() for p in STREAMS)
ALL_STREAM_OBJECTS = [obj for p in STREAMS for obj in json.loads(p.with_suffix(".json").read_text())]


def event_name(path: Path) -> str:
    return path.stem.split("__")[1].rsplit("_", 1)[0]


def test_fixtures_present():
    assert len(DATAGRAMS) == 17 and len(STREAMS) == 3


@pytest.mark.parametrize("path", DATAGRAMS, ids=lambda p: p.stem)
def test_every_captured_datagram_decodes_to_its_json(path):
    obj = decode_datagram(path.read_bytes())
    assert obj == json.loads(path.with_suffix(".json").read_text())
    event = parse_event(obj, now=1795670000)
    assert not isinstance(event, OtherEvent)
    assert event.name == event_name(path)


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_every_captured_stream_read_decodes(path):
    decoder = EventStreamDecoder()
    objects = decoder.feed(path.read_bytes())
    assert objects == json.loads(path.with_suffix(".json").read_text())
    events = [parse_event(o, now=1795670000, aliases=STREAM_ALIASES) for o in objects]
    assert [type(e) for e in events] == [AorEvent, ContactEvent]
    assert events[0].aor == events[1].aor and decoder.buffered == 0


def test_stream_split_at_every_byte_boundary_of_a_multi_object_read():
    for cut in range(len(ALL_STREAM_BYTES) + 1):
        decoder = EventStreamDecoder()
        objects = decoder.feed(ALL_STREAM_BYTES[:cut]) + decoder.feed(ALL_STREAM_BYTES[cut:])
        assert objects == ALL_STREAM_OBJECTS, cut
        assert decoder.error_count == 0


def test_stream_fed_one_byte_at_a_time_inside_utf8_sequences():
    # a non-ASCII User-Agent: 2-, 3- and 4-byte UTF-8 sequences get split
    obj = json.loads((EVENTS / "udp_new_register__E_UL_CONTACT_INSERT_1.json").read_text())
    obj["params"]["user_agent"] = "Téléphone ☎ 🦊 \"quoted\" \\ {brace}"
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() * 2
    decoder = EventStreamDecoder()
    objects = [o for i in range(len(data)) for o in decoder.feed(data[i:i + 1])]
    assert objects == [obj, obj]
    assert parse_event(objects[0], now=0).contact.user_agent == obj["params"]["user_agent"]


def test_stream_garbage_is_recorded_and_resynced_at_next_object():
    decoder = EventStreamDecoder()
    objects = decoder.feed(b"\x00\xffnot json" + ALL_STREAM_BYTES)
    assert objects == ALL_STREAM_OBJECTS
    errors = decoder.take_errors()
    assert len(errors) == 1 and isinstance(errors[0], ProtocolError)
    assert "garbage" in str(errors[0])
    assert decoder.take_errors() == []


def test_stream_truncated_object_followed_by_a_new_one_loses_only_the_truncated():
    first = STREAMS[0].read_bytes()
    decoder = EventStreamDecoder()
    objects = decoder.feed(first[:50] + ALL_STREAM_BYTES)
    assert objects == ALL_STREAM_OBJECTS
    assert decoder.error_count == 1


def test_stream_invalid_utf8_inside_an_object_is_an_error_not_a_crash():
    bad = STREAMS[0].read_bytes().replace(b"sipp-lab-UDP", b"sipp-\xff\xfe-UDP")
    decoder = EventStreamDecoder()
    objects = decoder.feed(bad + ALL_STREAM_BYTES)
    assert objects[-len(ALL_STREAM_OBJECTS):] == ALL_STREAM_OBJECTS
    assert any("UTF-8" in str(e) for e in decoder.take_errors())


def test_stream_oversized_object_is_dropped_and_memory_stays_bounded():
    decoder = EventStreamDecoder(max_object_bytes=1000)
    assert decoder.feed(b'{"jsonrpc":"2.0","method":"x","params":{"a":"' + b"A" * 5000) == []
    assert decoder.error_count == 1 and decoder.buffered < 1000
    assert decoder.feed(b'"}}' + ALL_STREAM_BYTES) == ALL_STREAM_OBJECTS


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(ALL_STREAM_BYTES)), max_size=12))
def test_stream_any_chunking_gives_the_same_objects(cuts):
    bounds = sorted(set(cuts))
    pieces = [ALL_STREAM_BYTES[a:b] for a, b in zip([0] + bounds, bounds + [len(ALL_STREAM_BYTES)])]
    decoder = EventStreamDecoder()
    assert [o for piece in pieces for o in decoder.feed(piece)] == ALL_STREAM_OBJECTS


@settings(max_examples=150)
@given(st.binary(max_size=80).filter(lambda b: b"{" not in b), st.integers(min_value=1, max_value=40))
def test_stream_garbage_before_objects_never_loses_them(garbage, chunk):
    data = garbage + ALL_STREAM_BYTES
    decoder = EventStreamDecoder()
    objects = [o for i in range(0, len(data), chunk) for o in decoder.feed(data[i:i + chunk])]
    assert objects == ALL_STREAM_OBJECTS
    assert decoder.error_count == (1 if garbage.strip(b" \t\r\n") else 0)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_stream_arbitrary_bytes_only_produce_dicts_or_recorded_errors(data):
    decoder = EventStreamDecoder(max_object_bytes=200)
    objects = decoder.feed(data) + decoder.feed(data)
    assert all(isinstance(o, dict) for o in objects)
    assert decoder.buffered <= 200 + len(data)


@pytest.mark.parametrize("data, message", [
    (b"", "not JSON"),
    (b"\xff\xfe", "UTF-8"),
    (b"[1, 2]", "not an object"),
    (b'{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT"', "not JSON"),
])
def test_bad_datagrams_raise_protocol_error(data, message):
    with pytest.raises(ProtocolError, match=message):
        decode_datagram(data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_datagram_fuzz_raises_only_protocol_error(data):
    try:
        parse_event(decode_datagram(data), now=0)
    except ProtocolError:
        pass


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_contact_event_maps_every_captured_field():
    obj = load("udp_new_register__E_UL_CONTACT_INSERT_1.json")
    event = parse_event(obj, now=obj["params"]["expires"] - 3600, target="node1")
    assert isinstance(event, ContactEvent) and event.kind == "insert"
    contact = event.contact
    assert (contact.aor, contact.contact) == ("ev1001", "sip:ev1001@127.0.0.1:5371;transport=udp")
    assert contact.expires == 3600 and contact.expires_state == ""
    assert event.expires_at == 1795675826
    assert (contact.socket, contact.transport, contact.ws) == ("udp:127.0.0.1:5260", "udp", False)
    assert (contact.received, contact.path, contact.q) == ("", "", "")  # null / null / qval -1
    assert (contact.user_agent, contact.callid, contact.cseq) == ("sipp-lab-UDP", "ev-cid-1001", 1)
    assert contact.target == "node1" and event.domain == "location" and event.bflags == 0
    assert contact.key == "ev1001\x00sip:ev1001@127.0.0.1:5371;transport=udp"


def test_expires_absolute_becomes_seconds_left():
    params = load("udp_refresh_expires_change__E_UL_CONTACT_UPDATE_1.json")["params"]
    assert contact_from_event(params, now=params["expires"] - 1800).expires == 1800
    assert contact_from_event(params, now=params["expires"] - 0.5).expires == 1
    late = contact_from_event(params, now=params["expires"] + 5)
    assert (late.expires, late.expires_state) == (None, "expired")
    assert expires_left(0, 123.0) == (None, "permanent")
    assert expires_left(1000, 400.0) == (600, "")


def test_ws_contact_and_received_path_and_q():
    params = dict(load("udp_new_register__E_UL_CONTACT_INSERT_1.json")["params"],
                  socket="ws:127.0.0.1:8080", received="sip:10.0.0.1:3456", path="<sip:edge;lr>", qval=500)
    contact = contact_from_event(params, now=0)
    assert (contact.transport, contact.ws) == ("ws", True)
    assert (contact.received, contact.path, contact.q) == ("sip:10.0.0.1:3456", "<sip:edge;lr>", "0.5")
    no_socket = contact_from_event(dict(params, socket=""), now=0)
    assert no_socket.transport == "udp"  # from ;transport= in the URI


@pytest.mark.parametrize("qval, text", [(-1, ""), (0, "0"), (500, "0.5"), (1000, "1"), (123, "0.123"), (50, "0.05")])
def test_q_text_matches_ul_dump_style(qval, text):
    assert q_text(qval) == text


def test_dialog_events_of_a_call_and_of_a_404():
    states = [parse_event(load(f"udp_call_start__E_DLG_STATE_CHANGED_{n}.json")) for n in range(1, 5)]
    assert all(isinstance(e, DialogStateEvent) for e in states)
    assert [(e.old_state, e.new_state) for e in states] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert {e.id for e in states} == {"638.bf81ae34"} and states[-1].ended and not states[0].ended
    assert states[0].to_tag == "2146SIPpTag011" and states[0].db_id == "9029160671483"
    failed = parse_event(load("udp_call_404_start__E_DLG_STATE_CHANGED_1.json"))
    assert (failed.old_state, failed.new_state, failed.to_tag) == (1, 5, None)
    assert failed.transition == "unconfirmed -> deleted"


def test_aor_events():
    event = parse_event(load("udp_unregister_expires0__E_UL_AOR_DELETE_1.json"))
    assert event == AorEvent(kind="delete", aor="ev1001", domain="location")


def test_unknown_event_is_kept_not_fatal():
    event = parse_event({"jsonrpc": "2.0", "method": "E_UL_CONTACT_REFRESH", "params": {"aor": "x"}})
    assert isinstance(event, OtherEvent) and event.name == "E_UL_CONTACT_REFRESH"


@pytest.mark.parametrize("mutate, message", [
    (lambda o: o.pop("method"), "no method"),
    (lambda o: o.update(params=[1, 2]), "params are not an object"),
    (lambda o: o["params"].pop("aor"), "missing 'aor'"),
    (lambda o: o["params"].update(aor=""), "'aor' is empty"),
    (lambda o: o["params"].update(expires="soon"), "'expires' should be an integer"),
    (lambda o: o["params"].update(cseq=True), "'cseq' should be an integer"),
    (lambda o: o["params"].update(uri={"a": 1}), "'uri' should be a string"),
])
def test_malformed_contact_events_raise_readable_protocol_errors(mutate, message):
    obj = load("udp_new_register__E_UL_CONTACT_INSERT_1.json")
    mutate(obj)
    with pytest.raises(ProtocolError, match=message):
        parse_event(obj, now=0)


def test_malformed_dialog_event_names_the_field():
    obj = load("udp_call_start__E_DLG_STATE_CHANGED_1.json")
    obj["params"]["new_state"] = "4"
    with pytest.raises(ProtocolError, match="E_DLG_STATE_CHANGED event: 'new_state'"):
        parse_event(obj)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=6)


@settings(max_examples=300)
@given(st.sampled_from(DATAGRAMS), st.data())
def test_mutated_captured_events_parse_or_raise_protocol_error(path, data):
    obj = json.loads(path.with_suffix(".json").read_text())
    key = data.draw(st.sampled_from(sorted(obj["params"])))
    obj["params"][key] = data.draw(JSON_VALUES)
    try:
        event = parse_event(obj, now=0)
    except ProtocolError as exc:
        assert key in str(exc)
    else:
        assert event.name == event_name(path)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=12).filter(lambda b: b"{" not in b)),
                min_size=1, max_size=5),
       st.lists(st.integers(min_value=1, max_value=3000), max_size=10))
def test_stream_with_unicode_and_garbage_under_any_chunking(items, cuts):
    base = json.loads((EVENTS / "udp_new_register__E_UL_CONTACT_INSERT_1.json").read_text())
    expected, data, garbage_runs = [], b"", 0
    for user_agent, garbage in items:
        obj = json.loads(json.dumps(base))
        obj["params"]["user_agent"] = user_agent
        expected.append(obj)
        garbage_runs += 1 if garbage.strip(b" \t\r\n") else 0
        data += garbage + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    bounds = sorted({c for c in cuts if c < len(data)})
    pieces = [data[a:b] for a, b in zip([0] + bounds, bounds + [len(data)])]
    decoder = EventStreamDecoder()
    assert [o for piece in pieces for o in decoder.feed(piece)] == expected
    assert decoder.error_count == garbage_runs


# --------------------------------------------------------------------------- module split (issue #13)


def _imported_modules(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_codec_does_no_io_and_the_old_module_still_exports_everything():
    import opsconsole_opensips.events as shim
    import opsconsole_opensips.events_codec as codec
    import opsconsole_opensips.events_listener as listener

    assert not _imported_modules(Path(codec.__file__)) & {"asyncio", "socket", "selectors", "ssl"}
    for module in (shim, codec, listener):
        assert len(Path(module.__file__).read_text().splitlines()) <= 600, module.__name__
    assert shim.parse_event is codec.parse_event and shim.EventListener is listener.EventListener
    assert shim.kernel_udp_drops is listener.kernel_udp_drops and shim.q_text is codec.q_text
