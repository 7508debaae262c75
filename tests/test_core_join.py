from console.model import Call, Dialog, DialogLeg, Media, MediaLeg, MediaSession, MediaStream
from console.snapshot import bridge_label, join_calls


def _dialog(callid, caller_tr, callee_tr, caller_tag="a", callee_tag="b", state=4):
    return Dialog(id="1.1", callid=callid, state=state,
                  caller=DialogLeg(tag=caller_tag, transport=caller_tr),
                  callees=(DialogLeg(tag=callee_tag, transport=callee_tr),))


def _session(callid, legs):
    return MediaSession(callid=callid, legs=tuple(
        MediaLeg(tag=tag, medias=(Media(protocol=proto, streams=(MediaStream(local_port=port),)),))
        for tag, proto, port in legs))


def test_bridge_uses_tags_not_order():
    dialog = _dialog("c1", "ws", "udp", caller_tag="ws-tag", callee_tag="udp-tag")
    # media legs listed callee first: the label must still follow caller -> callee
    media = _session("c1", [("udp-tag", "RTP/AVP", 30000), ("ws-tag", "UDP/TLS/RTP/SAVPF", 30002)])
    assert bridge_label(dialog, media) == "WS->UDP DTLS-SRTP<->RTP"


def test_join_keeps_unmatched_on_both_sides():
    dialogs = (_dialog("both", "udp", "udp"), _dialog("sig-only", "udp", "ws"))
    sessions = (_session("both", [("a", "RTP/AVP", 1), ("b", "RTP/AVP", 2)]),
                _session("media-only", [("x", "RTP/AVP", 3)]))
    calls = {c.callid: c for c in join_calls(dialogs, sessions)}
    assert set(calls) == {"both", "sig-only", "media-only"}
    assert calls["both"].has_dialog and calls["both"].has_media
    assert calls["both"].bridge == "UDP->UDP RTP<->RTP"
    assert calls["sig-only"].has_dialog and not calls["sig-only"].has_media
    assert calls["sig-only"].bridge == "UDP->WS"
    assert not calls["media-only"].has_dialog and calls["media-only"].media.ports == (3,)


def test_join_with_unknown_sides():
    assert join_calls(None, None) == ()
    only_media = join_calls(None, (_session("m", [("x", "RTP/SAVPF", 5)]),))
    assert only_media == (Call("m", None, only_media[0].media, "SRTP"),)


def test_join_reuses_a_call_whose_dialog_and_session_are_the_same_objects():
    dialog, other = _dialog("c1", "udp", "ws"), _dialog("c2", "udp", "udp")
    session = _session("c1", [("a", "RTP/AVP", 1), ("b", "UDP/TLS/RTP/SAVPF", 2)])
    first = {c.callid: c for c in join_calls((dialog, other), (session,))}
    updated = _session("c1", [("a", "RTP/AVP", 1), ("b", "UDP/TLS/RTP/SAVPF", 4)])  # new packets/ports
    again = {c.callid: c for c in join_calls((dialog, other), (updated,), first)}
    assert again["c2"] is first["c2"]  # nothing changed: the same Call
    assert again["c1"] is not first["c1"] and again["c1"].media is updated
    assert again["c1"].bridge == "UDP->WS RTP<->DTLS-SRTP"
