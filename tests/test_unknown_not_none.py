"""Unknown is not none (#12): a list that failed, was not fetched, is older than the other side
or is partial gives no finding — no NO DIALOG / NO MEDIA, no zombie, no zero count — in the
join, the live state, `snapshot` (text and JSON) and the live OpenSIPS source."""

from __future__ import annotations

import pytest
from rich.console import Console

from console.config import Config
from console.model import Dialog, DialogLeg, MediaSession, MediaState, SignallingState, Snapshot, SourceStatus
from console.plugins import CollectOptions
from console.render.jsonout import snapshot_dict
from console.render.text import render_snapshot
from console.snapshot import join_calls
from console.ui.calls import call_mark, call_sections
from console.live_state import LiveState

NOW = 1_800_000_000.0
CALLIDS = [f"call-{n}" for n in range(9)]


def dialog(callid: str) -> Dialog:
    return Dialog(id=f"id-{callid}", callid=callid, state=4, start=int(NOW) - 60,
                  caller=DialogLeg(tag="a", transport="udp"), callees=(DialogLeg(tag="b", transport="udp"),))


def session(callid: str) -> MediaSession:
    return MediaSession(callid, created=int(NOW) - 60)


def poll(at: float, *, dialogs=None, sessions=(), total=None, opensips_ok=True) -> Snapshot:
    sources = {"opensips": SourceStatus("opensips", opensips_ok, "" if opensips_ok else "timed out", 1.0, at),
               "rtpengine": SourceStatus("rtpengine", True, "", 1.0, at)}
    media = MediaState(sessions=tuple(sessions), sessions_total=len(sessions) if total is None else total)
    sig = SignallingState(dialogs=dialogs) if opensips_ok else None
    return Snapshot(collected_at=at, sources=sources, signalling=sig, media=media)


def marks(calls) -> set[str]:
    return {call_mark(call).plain for call in calls}


# --------------------------------------------------------------------------- join


def test_join_marks_the_side_of_an_unknown_list_unknown():
    calls = join_calls(None, tuple(session(c) for c in CALLIDS))
    assert not any(call.without_dialog for call in calls)
    assert marks(calls) == {"DIALOG ?"}
    # a partial session list (rtpengine listed 1 of 2): a dialog missing from it is not "NO MEDIA"
    partial = join_calls((dialog("a"), dialog("b")), (session("a"),), sessions_complete=False)
    by_id = {call.callid: call for call in partial}
    assert not by_id["b"].without_media and call_mark(by_id["b"]).plain == "MEDIA ?"
    # both lists known and complete: an orphan is an orphan
    known = {c.callid: c for c in join_calls((dialog("a"),), (session("a"), session("z")))}
    assert known["z"].without_dialog and call_mark(known["z"]).plain == "NO DIALOG"


# --------------------------------------------------------------------------- live state


def test_first_poll_without_the_dialog_list_shows_no_false_zombies():
    """The issue: 9 healthy calls shown NO DIALOG while OpenSIPS counted 9 dialogs: the dialog
    list had not arrived (None) and was joined as if empty."""
    state = LiveState()
    state.apply(poll(NOW, dialogs=None, sessions=[session(c) for c in CALLIDS]), CollectOptions())
    assert len(state.calls) == 9
    assert "NO DIALOG" not in marks(state.calls)
    assert not any(call.without_dialog for call in state.calls)


def test_a_dialog_list_from_an_earlier_poll_makes_no_orphans():
    state = LiveState()
    state.apply(poll(NOW, dialogs=tuple(dialog(c) for c in CALLIDS), sessions=[session(c) for c in CALLIDS]),
                CollectOptions())
    assert marks(state.calls) == {""}
    # next poll (Overview shown): dialogs not asked for; a call started, another one ended
    sessions = [session(c) for c in CALLIDS[1:]] + [session("new")]
    state.apply(poll(NOW + 2, dialogs=None, sessions=sessions), CollectOptions(dialogs=False))
    by_id = {call.callid: call for call in state.calls}
    assert call_mark(by_id["new"]).plain == "DIALOG ?"  # started after the last dialog list
    assert call_mark(by_id["call-0"]).plain == "MEDIA ?"  # its dialog may be gone as well
    assert not any(call.without_dialog or call.without_media for call in state.calls)
    # both lists of the same poll again: the verdicts come back
    state.apply(poll(NOW + 4, dialogs=tuple(dialog(c) for c in CALLIDS), sessions=sessions), CollectOptions())
    by_id = {call.callid: call for call in state.calls}
    assert call_mark(by_id["new"]).plain == "NO DIALOG" and call_mark(by_id["call-0"]).plain == "NO MEDIA"


def test_opensips_failing_keeps_the_last_dialogs_but_makes_no_verdict():
    state = LiveState()
    state.apply(poll(NOW, dialogs=(dialog("a"),), sessions=[session("a")]), CollectOptions())
    state.apply(poll(NOW + 2, sessions=[session("a"), session("b")], opensips_ok=False), CollectOptions())
    by_id = {call.callid: call for call in state.calls}
    assert by_id["a"].dialog is not None  # last good data shown
    assert not by_id["b"].without_dialog
    sections = dict(call_sections(by_id["b"], NOW + 2))
    assert "NO DIALOG" not in sections["Call"].plain


def test_unchanged_calls_are_reused_across_polls():
    """The join keeps a call's object while its dialog, session and verdicts are the same."""
    state = LiveState()
    dialogs, sessions = tuple(dialog(c) for c in CALLIDS), [session(c) for c in CALLIDS]
    state.apply(poll(NOW, dialogs=dialogs, sessions=sessions), CollectOptions())
    first = state.calls
    state.apply(poll(NOW + 2, dialogs=dialogs, sessions=sessions), CollectOptions())
    assert all(a is b for a, b in zip(first, state.calls))


# --------------------------------------------------------------------------- snapshot text / JSON


def test_snapshot_text_and_json_say_unknown_not_no_dialog():
    snap = poll(NOW, dialogs=None, sessions=[session(c) for c in CALLIDS])
    snap = Snapshot(collected_at=snap.collected_at, sources=snap.sources, signalling=snap.signalling,
                    media=snap.media, calls=join_calls(None, snap.media.sessions))
    console = Console(width=160, record=True, color_system=None)
    console.print(render_snapshot(snap))
    text = console.export_text()
    assert "Calls (9)" in text and "NO DIALOG" not in text
    calls = snapshot_dict(snap)["calls"]
    assert [c["dialog_known"] for c in calls] == [False] * 9
    assert all(c["has_dialog"] is False and c["media_known"] is True for c in calls)  # old keys kept


def test_snapshot_text_says_transport_counts_cover_a_partial_list():
    from console.model import Contact, SignallingOverview

    contacts = tuple(Contact(aor=f"u{n}", contact=f"sip:u{n}@h", transport="udp") for n in range(3))
    sig = SignallingState(overview=SignallingOverview(registered_contacts=100_000), contacts=contacts,
                          contacts_mode="events-partial")
    console = Console(width=200, record=True, color_system=None)
    console.print(render_snapshot(Snapshot(collected_at=NOW, signalling=sig)))
    text = console.export_text()
    assert "UDP 3" in text and "of 3 listed, not of 100000 registered" in text


# --------------------------------------------------------------------------- live OpenSIPS source


DemoPlatform = pytest.importorskip("opsconsole_demo").DemoPlatform


async def test_live_source_reports_dialogs_unknown_until_a_dialog_list_arrived():
    """Events live, but the first dlg_list failed (mi_http busy): the event-fed store holds only
    what events reported since (no event at dialog creation), so the list is unknown, not empty."""
    from opsconsole_opensips.source import OpenSIPSSource

    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=2) as demo:
        renderer = demo.server.renderer
        answer = renderer.answer

        def busy_for_dialog_lists(request: dict) -> dict:
            if request["method"].startswith("dlg_list"):
                return {"jsonrpc": "2.0", "error": {"code": 500, "message": "busy"}, "id": request.get("id")}
            return answer(request)

        renderer.answer = busy_for_dialog_lists
        source = OpenSIPSSource(Config(mi_url=demo.mi_url, timeout=2.0))
        try:
            state = await source.collect(CollectOptions(live=True))
            assert source.live.events_live  # the event-fed store is what would be returned
            assert state.overview.active_dialogs  # OpenSIPS counts dialogs...
            assert state.dialogs is None  # ...that the console has not listed: unknown, not ()
            renderer.answer = answer
            state = await source.collect(CollectOptions(live=True, force_full_sync=True))
            assert state.dialogs  # a dialog list arrived: known again
        finally:
            await source.aclose()


async def test_live_source_without_events_says_how_old_its_dialog_list_is():
    """Without events a live source hands back its last dlg_list between slow lists: it says when
    that list was made, so the live state gives no verdict on calls started since."""
    from opsconsole_opensips.source import OpenSIPSSource

    now = [float(int(NOW))]

    def clock() -> float:
        return now[0]

    async with DemoPlatform(size=70, real_rtpengine=False, tick=None, seed=2, clock=clock) as demo:
        demo.server.renderer.subscriptions = None  # event_subscribe -> Method not found: polling
        source = OpenSIPSSource(Config(mi_url=demo.mi_url, timeout=2.0), clock=clock, monotonic=clock)
        try:
            first = await source.collect(CollectOptions(live=True))
            listed_at = now[0]
            now[0] += 4
            second = await source.collect(CollectOptions(live=True))
        finally:
            await source.aclose()
    assert first.dialogs and second.dialogs == first.dialogs
    assert second.dialogs_as_of == listed_at  # the list is 4 s old, and says so
    state = LiveState()
    sessions = [session(d.callid) for d in first.dialogs]
    sources = {"opensips": SourceStatus("opensips", True), "rtpengine": SourceStatus("rtpengine", True)}
    state.apply(Snapshot(collected_at=listed_at, sources=sources, signalling=first,
                         media=MediaState(sessions=tuple(sessions), sessions_total=len(sessions))), CollectOptions())
    sessions.append(session("started-since"))
    state.apply(Snapshot(collected_at=listed_at + 4, sources=sources, signalling=second,
                         media=MediaState(sessions=tuple(sessions), sessions_total=len(sessions))), CollectOptions())
    new = state.call("started-since")
    assert new is not None and not new.without_dialog and call_mark(new).plain == "DIALOG ?"
    assert state.check_snapshot().stale["dialogs"] == 4.0  # the checks see its age too
