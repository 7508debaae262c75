"""The demo registrar's SIP parsing and its effect on DemoState (no sockets)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole_demo.mi_render import MiRenderer
from opsconsole_demo.sip import (MAX_MESSAGE, SipRegistrar, effective_expires, parse_name_addr, parse_request,
                              read_stream_message, split_list)
from opsconsole_demo.state import DemoState
from console.errors import ProtocolError

SOURCE = ("127.0.0.1", 5099)


class Clock:
    def __init__(self, now: float = 1_795_670_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def register(user: str = "alice", contacts: tuple[str, ...] = ("<sip:alice@127.0.0.1:5070>;expires=600",),
             *, callid: str = "reg-1@h", cseq: int = 1, extra: str = "", compact: bool = False, sep: str = "\r\n") -> bytes:
    names = ("v", "f", "t", "i", "m") if compact else ("Via", "From", "To", "Call-ID", "Contact")
    lines = [f"REGISTER sip:127.0.0.1 SIP/2.0",
             f"{names[0]}: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport",
             f"{names[1]}: <sip:{user}@127.0.0.1>;tag=t1",
             f"{names[2]}: <sip:{user}@127.0.0.1>",
             f"{names[3]}: {callid}",
             f"CSeq: {cseq} REGISTER"]
    lines += [f"{names[4]}: {c}" for c in contacts]
    if extra:
        lines.append(extra)
    return (sep.join(lines + ["Content-Length: 0", "", ""])).encode("utf-8", "surrogateescape")


def registrar(version: str = "3.4") -> SipRegistrar:
    state = DemoState(3, seed=2, clock=Clock(), version=version, calls=0)
    state.take_events()
    return SipRegistrar(state, socket="udp:127.0.0.1:5060")


def reply_lines(reply: bytes) -> list[str]:
    return reply.decode("utf-8", "surrogateescape").split("\r\n")


# ------------------------------------------------------------------ parsing


def test_compact_forms_map_to_full_names_case_insensitively():
    request = parse_request(register(compact=True).replace(b"CSeq", b"cSEQ"))
    assert request.method == "REGISTER"
    assert request.first("call-id") == "reg-1@h"
    assert request.first("contact") == "<sip:alice@127.0.0.1:5070>;expires=600"
    assert request.first("cseq") == "1 REGISTER"
    assert request.first("via").startswith("SIP/2.0/UDP")


def test_folded_header_lines_are_joined():
    data = register(extra="User-Agent: first\r\n  second\r\n\tthird")
    assert parse_request(data).first("user-agent") == "first second third"


def test_bare_lf_line_endings_are_accepted():
    assert parse_request(register(sep="\n")).first("to") == "<sip:alice@127.0.0.1>"


def test_several_contacts_in_one_header_and_in_several_headers():
    data = register(contacts=('"A, the first" <sip:a@1.2.3.4:5>;expires=10, <sip:b@1.2.3.4;x=1,y>', "sip:c@1.2.3.4;expires=0"))
    values = parse_request(data).all("contact")
    assert values == ['"A, the first" <sip:a@1.2.3.4:5>;expires=10', "<sip:b@1.2.3.4;x=1,y>", "sip:c@1.2.3.4;expires=0"]
    bindings = [parse_name_addr(v) for v in values]
    assert [b.uri for b in bindings] == ["sip:a@1.2.3.4:5", "sip:b@1.2.3.4;x=1,y", "sip:c@1.2.3.4"]
    assert bindings[0].display == "A, the first" and bindings[0].expires == 10
    assert bindings[1].expires is None and bindings[2].expires == 0  # without <>, ;expires belongs to the header


def test_split_list_keeps_escaped_quotes_inside_display_names():
    assert split_list(r'"a \", b" <sip:x@h>, <sip:y@h>') == [r'"a \", b" <sip:x@h>', "<sip:y@h>"]


@pytest.mark.parametrize(("param", "header", "expected"), [
    ("600", None, 600), (None, "120", 120), (None, None, 3600), ("0", "3600", 0),
    ("5", None, 10), ("99999", None, 7200), ("abc", "30", 30), ("9" * 5000, "9" * 5000, 3600), ("\u0663", None, 3600),
])
def test_expires_comes_from_the_contact_then_the_header_then_the_default(param, header, expected):
    contact = "<sip:a@h>" + (f";expires={param}" if param is not None else "")
    assert effective_expires(parse_name_addr(contact), header) == expected


@pytest.mark.parametrize("garbage", [
    b"", b"\r\n\r\n", b"hello world", b"\x00\xff" * 40, b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nNoColonHere\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nVia: x\r\nFrom: <sip:a@h>\r\n\r\n",  # To/Call-ID/CSeq missing
    b"REG ISTER sip:x SIP/2.0\r\n\r\n", b"X" * (MAX_MESSAGE + 1),
])
def test_garbage_is_a_protocol_error(garbage):
    with pytest.raises(ProtocolError):
        parse_request(garbage)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda tail: register() + tail, st.binary(max_size=50))
       | st.builds(lambda cut: register()[:cut], st.integers(0, 300)))
def test_any_datagram_is_answered_or_dropped_and_counted(data):
    reg = registrar()
    reply = reg.handle(data, SOURCE)
    assert reg.stats["received"] == 1
    if reply is None:
        assert reg.stats["dropped"] == 1
    else:
        assert reply.startswith(b"SIP/2.0 ") and reply.endswith(b"\r\n\r\n")


header_text = st.lists(st.sampled_from(list('<>";,=*: \t@abc09\x1b\u202e[]/') + ["sip:", "expires", "\\"]),
                       max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(contact=header_text, expires=header_text, to=header_text, cseq=header_text)
def test_any_header_values_get_a_reply_never_an_exception(contact, expires, to, cseq):
    data = register(contacts=(contact,), extra=f"Expires: {expires}")
    data = data.replace(b"To: <sip:alice@127.0.0.1>", f"To: {to}".encode()).replace(b"CSeq: 1", f"CSeq: {cseq}".encode())
    reg = registrar()
    reply = reg.handle(data, SOURCE)
    if reply is None:  # only when the header text broke the message itself (e.g. To: lost its name)
        assert reg.stats["dropped"] == 1
    else:
        assert reply_lines(reply)[0] == "SIP/2.0 200 OK" or reply_lines(reply)[0].startswith("SIP/2.0 400 ")


# ------------------------------------------------------------------ registrar


def test_register_adds_refreshes_and_removes_with_events_and_mi_shape():
    reg = registrar()
    state, mi = reg.state, MiRenderer(reg.state)
    reply = reg.handle(register(extra="User-Agent: phone/1.0"), SOURCE)
    lines = reply_lines(reply)
    assert lines[0] == "SIP/2.0 200 OK"
    assert "Call-ID: reg-1@h" in lines and "CSeq: 1 REGISTER" in lines
    assert "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport" in lines
    assert any(line.startswith("To: <sip:alice@127.0.0.1>;tag=") for line in lines)
    assert "Contact: <sip:alice@127.0.0.1:5070>;expires=600" in lines
    assert [e.name for e in state.take_events()] == ["E_UL_AOR_INSERT", "E_UL_CONTACT_INSERT"]
    entry = mi.call("ul_show_contact", {"table_name": "location", "aor": "alice"})["Contacts"][0]
    assert (entry["User-agent"], entry["Callid"], entry["Expires"], entry["Socket"]) == \
        ("phone/1.0", "reg-1@h", 600, "udp:127.0.0.1:5060")

    state.clock.now += 100
    reg.handle(register(cseq=2, extra="User-Agent: phone/1.1"), SOURCE)
    events = state.take_events()
    assert [e.name for e in events] == ["E_UL_CONTACT_UPDATE"] and events[0].params["cseq"] == 2
    assert mi.call("ul_show_contact", {"table_name": "location", "aor": "alice"})["Contacts"][0]["User-agent"] == "phone/1.1"

    reg.handle(register(contacts=("<sip:alice@127.0.0.1:5070>;expires=0",), cseq=3), SOURCE)
    assert [e.name for e in state.take_events()] == ["E_UL_CONTACT_DELETE", "E_UL_AOR_DELETE"]
    assert "alice" not in {a["AOR"] for a in mi.call("ul_dump")["Domains"][0]["AORs"]}


def test_several_contacts_of_one_aor_are_one_ul_dump_entry_and_star_removes_them_all():
    reg = registrar()
    reg.handle(register(contacts=("<sip:alice@10.0.0.1>, <sip:alice@10.0.0.2>;expires=60",)), SOURCE)
    aors = {a["AOR"]: a for a in MiRenderer(reg.state).call("ul_dump")["Domains"][0]["AORs"]}
    assert [c["Contact"] for c in aors["alice"]["Contacts"]] == ["sip:alice@10.0.0.1", "sip:alice@10.0.0.2"]
    assert [c["Expires"] for c in aors["alice"]["Contacts"]] == [3600, 60]
    before = reg.state.contact_count
    reply = reg.handle(register(contacts=("*",), cseq=2, extra="Expires: 0"), SOURCE)
    assert reply_lines(reply)[0] == "SIP/2.0 200 OK"
    assert reg.state.contact_count == before - 2 and reg.state.contacts_of("alice") == []


def test_star_without_expires_zero_is_rejected():
    reg = registrar()
    reply = reg.handle(register(contacts=("*",)), SOURCE)
    assert reply_lines(reply)[0].startswith("SIP/2.0 400 ")
    assert reg.stats["rejected"] == 1


def test_contacts_expire_on_their_own_and_the_simulation_leaves_them_alone():
    reg = registrar()
    reg.handle(register(contacts=("<sip:alice@10.0.0.1>;expires=60",)), SOURCE)
    reg.state.take_events()
    reg.state.advance(reg.state.clock.now + 59)
    assert len(reg.state.contacts_of("alice")) == 1
    reg.state.advance(reg.state.clock.now + 61)
    assert reg.state.contacts_of("alice") == []
    names = [e.name for e in reg.state.take_events() if e.params.get("aor") == "alice"]
    assert names == ["E_UL_CONTACT_DELETE", "E_UL_AOR_DELETE"]
    reg.state.advance(reg.state.clock.now + 7200)
    assert reg.state.contacts_of("alice") == []  # never re-registered by the simulation


def test_aor_is_user_on_34_and_user_at_domain_on_40():
    reg34, reg40 = registrar("3.4"), registrar("4.0")
    for reg in (reg34, reg40):
        reg.handle(register(), SOURCE)
        reg.handle(register(user="bob").replace(b"bob@127.0.0.1>", b"bob@example.org>"), SOURCE)
    aors34 = {a["AOR"] for a in MiRenderer(reg34.state).call("ul_dump")["Domains"][0]["AORs"]}
    aors40 = {a["AOR"] for a in MiRenderer(reg40.state).call("ul_dump")["Domains"][0]["AORs"]}
    assert {"alice", "bob"} <= aors34
    assert {"alice@127.0.0.1", "bob@example.org"} <= aors40
    shown = MiRenderer(reg40.state).call("ul_show_contact", {"table_name": "location", "aor": "bob@example.org"})
    assert shown["Contacts"][0]["Contact"] == "sip:alice@127.0.0.1:5070"


def test_options_is_200_and_other_methods_501():
    reg = registrar()
    options = register().replace(b"REGISTER sip:", b"OPTIONS sip:").replace(b"1 REGISTER", b"1 OPTIONS")
    invite = register().replace(b"REGISTER sip:", b"INVITE sip:").replace(b"1 REGISTER", b"1 INVITE")
    assert reply_lines(reg.handle(options, SOURCE))[0] == "SIP/2.0 200 OK"
    assert reply_lines(reg.handle(invite, SOURCE))[0] == "SIP/2.0 501 Not Implemented"
    assert reg.state.contacts_of("alice") == []


def test_bad_to_uri_and_bad_cseq_get_400_and_change_nothing():
    reg = registrar()
    before = reg.state.contact_count
    no_user = register().replace(b"To: <sip:alice@127.0.0.1>", b"To: <sip:127.0.0.1>")
    bad_cseq = register().replace(b"CSeq: 1 REGISTER", b"CSeq: one REGISTER")
    huge_cseq = register().replace(b"CSeq: 1 REGISTER", b"CSeq: " + b"9" * 5000 + b" REGISTER")
    for data in (no_user, bad_cseq, huge_cseq):
        assert reply_lines(reg.handle(data, SOURCE))[0].startswith("SIP/2.0 400 ")
    assert reg.state.contact_count == before


def test_bytes_that_are_not_utf8_round_trip_exactly():
    reg = registrar()
    raw_ua = b"UA-\xff\xfe-\x1b[2J-\x00-end"
    data = register(extra="User-Agent: X").replace(b"User-Agent: X", b"User-Agent: " + raw_ua)
    reg.handle(data, SOURCE)
    stored = reg.state.contacts_of("alice")[0].user_agent
    assert stored.encode("utf-8", "surrogateescape") == raw_ua


# ------------------------------------------------------------------ TCP framing


async def read_all(data: bytes) -> list[bytes]:
    reader = asyncio.StreamReader(limit=MAX_MESSAGE)
    reader.feed_data(data)
    reader.feed_eof()
    messages = []
    while (message := await read_stream_message(reader)) is not None:
        messages.append(message)
    return messages


async def test_stream_framing_uses_content_length_full_or_compact():
    with_body = register().replace(b"Content-Length: 0\r\n", b"l: 5\r\n") + b"hello"
    keepalive = b"\r\n\r\n"
    assert await read_all(keepalive + register() + keepalive + with_body + keepalive) == [register(), with_body]
    assert parse_request(with_body).body == b"hello"


@pytest.mark.parametrize("data", [
    register()[:-10],  # cut inside the head
    register().replace(b"Content-Length: 0", b"Content-Length: 9") + b"short",  # cut inside the body
    register().replace(b"Content-Length: 0", b"Content-Length: 999999"),
    b"X" * (MAX_MESSAGE + 10),  # no end of head within the limit
])
async def test_stream_framing_errors_are_protocol_errors(data):
    with pytest.raises(ProtocolError):
        await read_all(data)


def test_a_real_ua_takes_over_a_simulated_contact_with_the_same_uri():
    reg = registrar()
    state = reg.state
    simulated = state.find_contact("1000")
    count = state.contact_count
    uri = simulated.uri
    reg.handle(register(user="1000", contacts=(f"<{uri}>;expires=60",), extra="User-Agent: real-phone"), SOURCE)
    assert state.contact_count == count  # refreshed, not duplicated
    (contact,) = state.contacts_of("1000")
    assert (contact.uri, contact.user_agent, contact.socket) == (uri, "real-phone", "udp:127.0.0.1:5060")
    assert [e.name for e in state.take_events()] == ["E_UL_CONTACT_UPDATE"]
    state.advance(state.clock.now + 61)
    assert state.contacts_of("1000") == []  # expired like any SIP contact
    state.advance(state.clock.now + 7200)
    assert state.contacts_of("1000") == []  # and the simulation no longer brings it back
