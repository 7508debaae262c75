"""The ladder model and the per-call explanations (I/O-free): messages built as OpenSIPS's tracer reports them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole_opensips.hep import FAMILY_IPV4, PROTO_UDP, TYPE_SIP, HEPPacket
from opsconsole_opensips.ladder import (
    Ladder, LadderLine, TracedMessage, explain, explanation_text, line_text, parse_sip,
)

CALLER, PROXY, CALLEE = ("10.0.0.5", 5070), ("10.0.0.1", 5060), ("10.0.0.9", 5080)
CALLID = "abc-1@10.0.0.5"


class Flow:
    """Builds a call as the proxy in the middle sees it; `t` advances by the given seconds."""

    def __init__(self, callid: str = CALLID, start: float = 1_760_000_000.0) -> None:
        self.callid, self.t, self.ladder = callid, start, Ladder()

    def request(self, method: str, src, dst, *, cseq: int = 1, to_tag: str = "", from_tag: str = "a1",
                contact: str = "sip:1000@10.0.0.5:5070", after: float = 0.001, callee: str = "1001") -> LadderLine:
        text = (f"{method} sip:{callee}@example.org SIP/2.0\r\nVia: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{self.t}\r\n"
                f"From: <sip:1000@example.org>;tag={from_tag}\r\nTo: <sip:{callee}@example.org>"
                f"{';tag=' + to_tag if to_tag else ''}\r\nCall-ID: {self.callid}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <{contact}>\r\nContent-Length: 0\r\n\r\n")
        return self._add(text, src, dst, after)

    def reply(self, code: int, reason: str, src, dst, *, method: str = "INVITE", cseq: int = 1,
              to_tag: str = "b2", after: float = 0.001, contact: str = "") -> LadderLine:
        text = (f"SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1\r\n"
                f"From: <sip:1000@example.org>;tag=a1\r\nTo: <sip:1001@example.org>;tag={to_tag}\r\n"
                f"Call-ID: {self.callid}\r\nCSeq: {cseq} {method}\r\n"
                + (f"Contact: <{contact}>\r\n" if contact else "") + "Content-Length: 0\r\n\r\n")
        return self._add(text, src, dst, after)

    def _add(self, text: str, src, dst, after: float) -> LadderLine:
        self.t += after
        seconds = int(self.t)
        packet = HEPPacket(family=FAMILY_IPV4, proto=PROTO_UDP, src=src[0], dst=dst[0], src_port=src[1],
                           dst_port=dst[1], ts_sec=seconds, ts_usec=round((self.t - seconds) * 1e6),
                           proto_type=TYPE_SIP, payload=text.encode())
        return self.ladder.add(TracedMessage.from_hep(packet), arrived=self.t)

    @property
    def flow(self):
        return self.ladder.calls[self.callid]

    def invite_to_ringing(self) -> None:
        self.request("INVITE", CALLER, PROXY)
        self.reply(100, "Giving it a try", PROXY, CALLER, to_tag="")
        self.request("INVITE", PROXY, CALLEE)
        self.reply(180, "Ringing", CALLEE, PROXY, after=0.049)
        self.reply(180, "Ringing", PROXY, CALLER)


def answered_call(f: Flow, *, bye_by_caller: bool = True) -> None:
    f.invite_to_ringing()
    f.reply(200, "OK", CALLEE, PROXY, after=0.95)
    f.reply(200, "OK", PROXY, CALLER)
    f.request("ACK", CALLER, PROXY, to_tag="b2")
    f.request("ACK", PROXY, CALLEE, to_tag="b2")
    if bye_by_caller:
        f.request("BYE", CALLER, PROXY, cseq=2, to_tag="b2", after=32.0)
        f.request("BYE", PROXY, CALLEE, cseq=2, to_tag="b2")
        f.reply(200, "OK", CALLEE, PROXY, method="BYE", cseq=2)
        f.reply(200, "OK", PROXY, CALLER, method="BYE", cseq=2)
    else:  # the callee's BYE: From/To swapped, its own tag as From tag
        f.request("BYE", CALLEE, PROXY, cseq=1, from_tag="b2", to_tag="a1", after=32.0)
        f.request("BYE", PROXY, CALLER, cseq=1, from_tag="b2", to_tag="a1")
        f.reply(200, "OK", CALLER, PROXY, method="BYE")
        f.reply(200, "OK", PROXY, CALLEE, method="BYE")


# ------------------------------------------------------------------------------------------ parsing


def test_parse_a_request_and_a_response_with_compact_and_folded_headers():
    sip = parse_sip(b"INVITE sip:1001@h SIP/2.0\r\ni: cid-1\r\nf: \"A\" <sip:1000@h>;tag=x\r\nt: <sip:1001@h.org>\r\n"
                    b"CSeq: 7\r\n INVITE\r\nm: <sip:1000@192.168.1.2:5060>\r\n\r\nv=0\r\n")
    assert (sip.request, sip.method, sip.call_id, sip.cseq, sip.from_user, sip.from_tag, sip.to_user, sip.to_host,
            sip.contact) == (True, "INVITE", "cid-1", 7, "1000", "x", "1001", "h.org", "sip:1000@192.168.1.2:5060")
    reply = parse_sip(b"SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\nCall-ID: c\r\n\r\n")
    assert (reply.request, reply.status, reply.reason, reply.method, reply.label) == (
        False, 486, "Busy Here", "INVITE", "486 Busy Here")


@pytest.mark.parametrize("payload", [b"", b"HELLO", b"GET / HTTP/1.1\r\n\r\n", b"SIP/2.0 abc\r\n", b"\x00\xff" * 50])
def test_what_is_not_sip_is_none(payload):
    assert parse_sip(payload) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_raises_on_hostile_bytes(data):
    for payload in (data, b"SIP/2.0 200 OK\r\n" + data, b"INVITE sip:x SIP/2.0\r\n" + data):
        parse_sip(payload)


# ------------------------------------------------------------------------------------------ ladder


def test_messages_group_per_call_id_with_the_delta_within_their_call():
    f = Flow()
    first = f.request("INVITE", CALLER, PROXY)
    other = Flow("other@x")
    other.ladder = f.ladder
    other.t = f.t
    unrelated = other.request("OPTIONS", CALLER, PROXY, after=0.5)
    f.t = other.t
    second = f.reply(100, "Trying", PROXY, CALLER, after=0.25)
    assert (first.delta, first.first_of_call) == (None, True)
    assert unrelated.first_of_call
    assert second.delta == pytest.approx(0.75) and not second.first_of_call
    assert set(f.ladder.calls) == {CALLID, "other@x"} and f.ladder.count == 3
    assert f.flow.proxy == "10.0.0.1:5060" and f.flow.caller == "10.0.0.5:5070" and f.flow.kind == "INVITE"


def test_a_call_is_due_for_its_explanation_once_ended_and_quiet():
    f = Flow()
    answered_call(f)
    assert f.flow.ended
    assert f.ladder.due(f.t + 0.5, settle=1.0) == []
    assert f.ladder.due(f.t + 1.0, settle=1.0) == [f.flow]
    f.flow.explained = True
    assert f.ladder.due(f.t + 5, settle=1.0) == [] and f.ladder.unexplained() == []


def test_an_answered_call_still_up_has_not_ended():
    f = Flow()
    f.invite_to_ringing()
    f.reply(200, "OK", CALLEE, PROXY)
    assert not f.flow.ended


def test_the_ladder_keeps_at_most_max_calls():
    ladder = Ladder(max_calls=2)
    for n in range(3):
        f = Flow(f"c{n}")
        f.ladder = ladder
        f.request("OPTIONS", CALLER, PROXY)
    assert list(ladder.calls) == ["c1", "c2"]


# ------------------------------------------------------------------------------------------ explanations


def test_answered_call_timings_and_who_hung_up():
    f = Flow()
    answered_call(f)
    e = explain(f.flow)
    assert e.outcome == "answered" and not e.failed
    assert e.summary == "ringing after 52 ms · answered after 1.0 s · talk 32 s · caller hung up"
    g = Flow()
    answered_call(g, bye_by_caller=False)
    assert explain(g.flow).summary.endswith("callee hung up")


def test_404_from_opensips_asks_about_the_location_table():
    f = Flow()
    f.request("INVITE", CALLER, PROXY)
    f.reply(100, "Trying", PROXY, CALLER, to_tag="")
    f.reply(404, "Not Found", PROXY, CALLER, after=0.003)
    f.request("ACK", CALLER, PROXY, to_tag="b2")
    e = explain(f.flow)
    assert e.outcome == "failed" and e.status == 404 and f.flow.ended
    assert "404 Not Found from OpenSIPS" in e.summary
    assert (e.lookup_aor, e.lookup_domain) == ("1001", "example.org")
    assert any("location table" in d for d in e.details)


def test_486_from_the_far_end_is_not_a_platform_problem():
    f = Flow()
    f.invite_to_ringing()
    f.reply(486, "Busy Here", CALLEE, PROXY, after=2.0)
    f.reply(486, "Busy Here", PROXY, CALLER)
    e = explain(f.flow)
    assert "486 Busy Here from the far end" in e.summary and e.lookup_aor == ""
    assert any("nothing is wrong with the platform" in d for d in e.details)


@pytest.mark.parametrize("far_end, words", [(False, "OpenSIPS answered 503 itself"), (True, "the far end answered 503")])
def test_503_from_opensips_or_from_the_far_end(far_end, words):
    f = Flow()
    f.request("INVITE", CALLER, PROXY)
    if far_end:
        f.request("INVITE", PROXY, CALLEE)
        f.reply(503, "Service Unavailable", CALLEE, PROXY)
    f.reply(503, "Service Unavailable", PROXY, CALLER)
    e = explain(f.flow)
    assert e.details[0].startswith(f"503: {words}")
    assert any(d.startswith("fix: ") for d in e.details)


@pytest.mark.parametrize("code", [408, 480])
def test_no_answer_asks_whether_the_callee_is_registered(code):
    f = Flow()
    f.invite_to_ringing()
    f.reply(code, "No answer", PROXY, CALLER, after=30)
    e = explain(f.flow)
    assert e.status == code and e.lookup_aor == "1001"


def test_200_ok_retransmitted_without_ack():
    f = Flow()
    f.invite_to_ringing()
    for _ in range(3):
        f.reply(200, "OK", CALLEE, PROXY, after=0.5)
        f.reply(200, "OK", PROXY, CALLER)
    e = explain(f.flow)
    assert e.outcome == "no-ack" and e.failed
    assert "200 OK sent 3 times, no ACK" in e.summary
    assert any("~32 s" in d for d in e.details) and any("ACK is not reaching" in d for d in e.details)


def test_a_challenge_loop():
    f = Flow()
    for cseq in (1, 2, 3):
        f.request("INVITE", CALLER, PROXY, cseq=cseq)
        f.reply(407, "Proxy Authentication Required", PROXY, CALLER, cseq=cseq)
    e = explain(f.flow)
    assert e.outcome == "challenge-loop" and "challenged 3 times (407)" in e.summary
    assert any("credentials are wrong" in d for d in e.details)


def test_one_challenge_then_success_is_not_a_loop():
    f = Flow()
    f.request("INVITE", CALLER, PROXY)
    f.reply(407, "Proxy Authentication Required", PROXY, CALLER)
    f.request("INVITE", CALLER, PROXY, cseq=2)
    f.reply(200, "OK", PROXY, CALLER, cseq=2)
    assert explain(f.flow).outcome == "answered"


def test_cancel_before_answer_and_the_cancel_200_race():
    f = Flow()
    f.invite_to_ringing()
    f.request("CANCEL", CALLER, PROXY, after=4.0)
    f.reply(487, "Request Terminated", PROXY, CALLER)
    e = explain(f.flow)
    assert e.outcome == "cancelled" and "caller cancelled after 4.1 s" in e.summary

    race = Flow()
    race.invite_to_ringing()
    race.request("CANCEL", CALLER, PROXY, after=4.0)
    race.reply(200, "OK", CALLEE, PROXY)
    race.reply(200, "OK", PROXY, CALLER)
    race.request("ACK", CALLER, PROXY, to_tag="b2")
    e = explain(race.flow)
    assert e.outcome == "answered" and any("CANCEL crossed the 200 OK" in d for d in e.details)


def test_private_contact_behind_a_public_source_is_nat():
    f = Flow()
    f.request("INVITE", ("81.2.69.160", 40000), PROXY, contact="sip:1000@192.168.1.20:5060")
    f.reply(486, "Busy Here", PROXY, ("81.2.69.160", 40000))
    assert any("behind NAT" in d for d in explain(f.flow).details)
    g = Flow()
    g.request("INVITE", CALLER, PROXY, contact="sip:1000@192.168.1.20:5060")  # private source: no NAT claim
    assert not any("NAT" in d for d in explain(g.flow).details)


def test_registrations():
    f = Flow("reg-1")
    f.request("REGISTER", CALLER, PROXY)
    e = explain(f.flow)
    assert e.kind == "REGISTER" and "reply was not traced" in e.summary
    f.reply(200, "OK", PROXY, CALLER, method="REGISTER")
    assert explain(f.flow).outcome == "registered" and f.flow.ended
    g = Flow("reg-2")
    g.request("REGISTER", CALLER, PROXY)
    g.reply(403, "Forbidden", PROXY, CALLER, method="REGISTER")
    assert explain(g.flow).outcome == "refused"


# ------------------------------------------------------------------------------------------ text


def test_text_escapes_what_the_wire_sent():
    f = Flow("evil\x1b[2J\x1b]52;c;AAAA\x07[bold]x[/]")
    line = f.reply(486, "Busy\x1b[31m Here", PROXY, CALLER)
    text = line_text(line)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text and "[bold]x[/]" in text  # shown as text, never interpreted
    assert " 10.0.0.1:5060 → 10.0.0.5:5070 " in text and "UDP" in text
    lines = explanation_text(explain(f.flow), "location table: \x1b[31m")
    assert all("\x1b" not in entry for entry in lines)
    assert lines[0].startswith("  ⤷ call evil\\x1b[2J")


def test_what_is_worth_a_line_under_the_ladder():
    f = Flow("reg-3")
    f.request("REGISTER", CALLER, PROXY)
    assert not explain(f.flow).noteworthy  # the usual REGISTER: its reply is not traced
    f.reply(401, "Unauthorized", PROXY, CALLER, method="REGISTER")
    f.request("REGISTER", CALLER, PROXY, cseq=2)
    f.reply(401, "Unauthorized", PROXY, CALLER, method="REGISTER", cseq=2)
    assert explain(f.flow).outcome == "challenge-loop" and explain(f.flow).noteworthy
    g = Flow()
    g.invite_to_ringing()
    assert explain(g.flow).noteworthy  # every call is
