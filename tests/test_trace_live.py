"""The Trace screen's headless half (console/trace_live.py) and the join (opsconsole_opensips/trace_join.py):
what is traced for a selection, the ladder drawn as text, and the joined lines, on built values."""

from __future__ import annotations

import pytest

from console.live_state import LiveView
from console.model import Call, Contact, Dialog, DialogLeg, MediaLeg, MediaSession
from console.trace_live import (COLUMN, LadderRow, arrow_text, endpoints, header_text, sip_user, target_for_call,
                                target_for_contact)
from opsconsole_opensips.hep import FAMILY_IPV4, PROTO_UDP, TYPE_SIP, HEPPacket
from opsconsole_opensips.ladder import Ladder, TracedMessage
from opsconsole_opensips.trace_join import join_lines

CALLER, PROXY, CALLEE = "10.0.0.5:5070", "10.0.0.1:5060", "10.0.0.9:5080"
T0 = 1_760_000_000


def message(src: str, dst: str, first_line: str, cseq: str = "1 INVITE", at: float = 0.0,
            callid: str = "c1@h", to: str = "bob") -> TracedMessage:
    payload = (f"{first_line}\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK1\r\nFrom: <sip:alice@h>;tag=a\r\n"
               f"To: <sip:{to}@h>\r\nCall-ID: {callid}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()
    (sip, sport), (dip, dport) = src.split(":"), dst.split(":")
    packet = HEPPacket(family=FAMILY_IPV4, proto=PROTO_UDP, src=sip, dst=dip, src_port=int(sport), dst_port=int(dport),
                       ts_sec=T0 + int(at), ts_usec=int((at % 1) * 1e6), proto_type=TYPE_SIP, payload=payload)
    return TracedMessage.from_hep(packet)


def ladder_of(*messages: TracedMessage) -> tuple[Ladder, list[LadderRow]]:
    ladder = Ladder()
    rows = [LadderRow(line.message, line.delta) for line in (ladder.add(m, 0.0) for m in messages)]
    return ladder, rows


def answered_call() -> tuple[Ladder, list[LadderRow]]:
    return ladder_of(message(CALLER, PROXY, "INVITE sip:bob@h SIP/2.0"),
                     message(PROXY, CALLEE, "INVITE sip:bob@10.0.0.9:5080 SIP/2.0", at=0.01),
                     message(CALLEE, PROXY, "SIP/2.0 180 Ringing", at=0.2),
                     message(PROXY, CALLER, "SIP/2.0 180 Ringing", at=0.21),
                     message(CALLEE, PROXY, "SIP/2.0 200 OK", at=1.0),
                     message(PROXY, CALLER, "SIP/2.0 200 OK", at=1.01),
                     message(CALLER, PROXY, "ACK sip:bob@10.0.0.9:5080 SIP/2.0", "1 ACK", at=1.05))


def test_columns_put_the_caller_left_opensips_in_the_middle_and_arrows_point_the_right_way():
    ladder, rows = answered_call()
    columns = endpoints(rows, list(ladder.calls.values()))
    assert columns == [CALLER, PROXY, CALLEE]
    invite, relayed, ringing = (arrow_text(r.message, columns) for r in rows[:3])
    centre = COLUMN // 2
    assert invite.index("│") == centre and invite.index("▶") == COLUMN + centre - 1 and "INVITE" in invite
    assert relayed.index("▶") == 2 * COLUMN + centre - 1  # proxy -> callee
    assert ringing.index("◀") == COLUMN + centre + 1 and "180 Ringing" in ringing  # callee -> proxy
    assert header_text(columns).split() == columns


def test_hostile_labels_are_escaped_and_too_many_endpoints_fall_back_to_text():
    evil = message("10.0.0.7:1", PROXY, "SIP/2.0 486 Bu\x1b[2Jsy")
    columns = [CALLER, PROXY, "10.0.0.7:1"]
    assert "\x1b" not in arrow_text(evil, columns) and "\\x1b[2J" in arrow_text(evil, columns)
    many = [f"10.0.1.{n}:5060" for n in range(7)] + [PROXY]
    assert arrow_text(evil, many + ["10.0.0.7:1"]).startswith("10.0.0.7:1 → 10.0.0.1:5060  486")


def test_what_is_traced_for_a_call_and_for_a_contact():
    dialog = Dialog(id="1", callid="c1@h", from_uri="sip:alice@example.com", to_uri="sip:bob@example.com")
    target = target_for_call(Call("c1@h", dialog=dialog))
    assert (target.user, target.scope, target.callid) == ("alice", "dialog", "c1@h")
    assert target.options() == {"user": "alice", "scope": "dialog"}
    with pytest.raises(ValueError, match="no dialog"):
        target_for_call(Call("c2@h"))
    contact = target_for_contact(Contact(aor="bob@example.com", contact="sip:bob@10.0.0.9:5080"))
    assert (contact.user, contact.scope) == ("bob", "transaction")
    assert sip_user('"Bob" <sips:bob@h;transport=tls>') == "bob"


def view_with(*, contacts=None, mode="full", call=None, at=float(T0 + 5)) -> LiveView:
    return LiveView(contacts=contacts, contacts_mode=mode, calls=(call,) if call else (),
                    dialogs=(call.dialog,) if call and call.dialog else (), dialogs_at=at,
                    media=None, media_at=at)


def test_the_join_names_the_callees_registration_the_dialog_and_the_media():
    ladder, _ = answered_call()
    flow = ladder.calls["c1@h"]
    bob = Contact(aor="bob", contact="sip:bob@10.0.0.9:5080", transport="tcp")
    dialog = Dialog(id="1", callid="c1@h", state=4, start=T0 + 1, caller=DialogLeg(tag="a"),
                    callees=(DialogLeg(tag="b"),))
    media = MediaSession("c1@h", legs=(MediaLeg("a"), MediaLeg("b")))
    lines = join_lines(flow, view_with(contacts=(bob,), call=Call("c1@h", dialog=dialog, media=media)), T0 + 9)
    assert lines[0] == "callee bob: registered now over TCP (1 contact: sip:bob@10.0.0.9:5080)"
    assert lines[1] == "dialog in OpenSIPS: confirmed, 8 s old"
    assert lines[2].startswith("media in RTPengine: caller sent 0 packets, callee sent 0; quality ")
    # not in a complete list: not registered; in a partial one: unknown, never absent
    assert join_lines(flow, view_with(contacts=()), T0)[0] == "callee bob: NOT registered now (not in OpenSIPS's location table)"
    assert "unknown, not absent" in join_lines(flow, view_with(contacts=(), mode="events-partial"), T0)[0]
    # lists fetched before the call began say nothing about it yet
    early = join_lines(flow, view_with(contacts=(bob,), at=float(T0 - 5)), T0)
    assert "not known yet" in early[1] and "not known yet" in early[2]
    assert join_lines(flow, None, T0) == ()


async def test_a_long_trace_keeps_the_newest_rows_and_finds_them_by_number(monkeypatch):
    import console.trace_live as trace_live
    from console.trace_live import TraceLive, TraceTarget

    class Session:
        async def lines(self):
            for n in range(25):
                yield type("Line", (), {"message": message(CALLER, PROXY, "INVITE sip:bob@h SIP/2.0",
                                                           callid=f"c{n}@h"), "delta": None})()

    monkeypatch.setattr(trace_live, "ROWS_MAX", 10)
    live = TraceLive(service=None, target=TraceTarget("alice", "dialog"), session=Session())
    seen = [row.seq async for row in live.lines()]
    assert seen == list(range(25))
    assert len(live.rows) <= 10 and live.rows[-1].seq == 24 and live.dropped == 25 - len(live.rows)
    assert live.row(24).call_id == "c24@h" and live.row(live.dropped - 1) is None
