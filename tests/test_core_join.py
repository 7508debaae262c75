from console.model import (Call, Dialog, DialogLeg, HostState, Media, MediaLeg, MediaSession, MediaState, MediaStream,
                           ProcessInfo)
from console.snapshot import bridge_label, join_calls, relay_version


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
    # dialogs unknown (None): the session's dialog side is unknown, not missing (#12)
    assert only_media == (Call("m", None, only_media[0].media, "SRTP", dialog_known=False),)
    assert not only_media[0].without_dialog


def test_join_reuses_a_call_whose_dialog_and_session_are_the_same_objects():
    dialog, other = _dialog("c1", "udp", "ws"), _dialog("c2", "udp", "udp")
    session = _session("c1", [("a", "RTP/AVP", 1), ("b", "UDP/TLS/RTP/SAVPF", 2)])
    first = {c.callid: c for c in join_calls((dialog, other), (session,))}
    updated = _session("c1", [("a", "RTP/AVP", 1), ("b", "UDP/TLS/RTP/SAVPF", 4)])  # new packets/ports
    again = {c.callid: c for c in join_calls((dialog, other), (updated,), first)}
    assert again["c2"] is first["c2"]  # nothing changed: the same Call
    assert again["c1"] is not first["c1"] and again["c1"].media is updated
    assert again["c1"].bridge == "UDP->WS RTP<->DTLS-SRTP"


def _relay(ng_address: str, version: str = "10.5.3.5-1+deb12u1", suspect: str = "") -> ProcessInfo:
    return ProcessInfo(pid=1, name="rtpengine", settings={"ng_address": ng_address, "version": version},
                       suspect=suspect)


def test_relay_version_from_the_local_daemon_we_talk_to():
    media = MediaState(target="127.0.0.1:2223")
    assert relay_version(media, HostState(rtpengine=(_relay("127.0.0.1:2224"), _relay("127.0.0.1:2223", "11.1")))) \
        == "11.1 (package)"
    assert relay_version(MediaState(target="localhost:2223"), HostState(rtpengine=(_relay("127.0.0.1:2223"),))) \
        == "10.5.3.5-1+deb12u1 (package)"
    assert relay_version(MediaState(target="10.0.0.9:2223"), HostState(rtpengine=(_relay("127.0.0.1:2223"),))) == ""
    assert relay_version(media, HostState(rtpengine=(_relay("127.0.0.1:2223", suspect="not a rtpengine binary"),))) == ""
    assert relay_version(media, HostState(rtpengine=(_relay("127.0.0.1:2223", version=""),))) == ""
    assert relay_version(media, None) == "" and relay_version(None, HostState()) == ""
    assert relay_version(MediaState(target="127.0.0.1:2223", version="12.0"), HostState()) == "12.0"


def test_snapshot_text_names_the_relay_version():
    import io

    from rich.console import Console

    from console.model import Snapshot
    from console.render.text import render_snapshot

    snap = Snapshot(collected_at=0, media=MediaState(target="127.0.0.1:2223", ng_ok=True, cli_ok=True),
                    host=HostState(rtpengine=(_relay("127.0.0.1:2223", "10.5.3.5-1+deb12u1\x1b[2J"),)))
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(render_snapshot(snap))
    out = console.export_text()
    assert "RTPengine 127.0.0.1:2223  10.5.3.5-1+deb12u1\\x1b[2J (package)  ng OK" in out and "\x1b" not in out
