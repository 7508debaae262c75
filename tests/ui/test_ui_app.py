"""Pilot tests: every screen and key of the TUI on the fake service."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import ContentSwitcher, DataTable, Input, Static, Tree

from console.model import CheckResult, Contact, Dialog, DialogLeg, HostState, ProcessInfo, Snapshot, Status
from console.ui.app import OpsConsoleApp, terminal_gone
from console.ui.panes import ContactTable, RegistrationsPane
from console.ui.screens import ConfirmScreen, DetailScreen, HelpScreen

from .data import NOW, FakeService, lab_snapshot, many_contacts, sources
from .helpers import screen_text, settle, type_into


async def start(app: OpsConsoleApp, pilot) -> None:
    await settle(app, pilot)
    assert app.poll_count >= 1


async def press(app, pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(app, pilot)


def contact_rows(app) -> int:
    return app.query_one(ContactTable).row_count


# --------------------------------------------------------------------------- screens


@pytest.mark.parametrize("key,name,marker", [
    ("1", "overview", "RTPengine"),
    ("2", "registrations", "sipp-lab-UDP"),
    ("3", "calls", "WS->UDP"),
    ("4", "media", "Calls possible"),
    ("5", "checks", "calls.zombies"),
    ("6", "mi", "MI command"),
])
async def test_number_keys_switch_screens(make_app, key, name, marker):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        if key == "1":
            await press(app, pilot, "2")
        await press(app, pilot, key)
        assert app.query_one(ContentSwitcher).current == name
        assert marker in screen_text(app)


async def test_footer_lists_the_screens(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        text = screen_text(app)
        for label in ("1 Overview", "2 Regs", "3 Calls", "4 Media", "5 Checks", "6 MI"):
            assert label in text


async def test_overview_shows_both_servers_and_transport_counts(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        text = screen_text(app)
        assert "3.4.18" in text
        assert "UDP 50  TCP 10  TLS 0  WS 10" in text
        assert "36/1,000" in text
        assert "WARN" in text and "calls.zombies" in text


async def test_overview_names_the_relay_version_from_its_package_when_ng_does_not(make_app, clock):
    snap = lab_snapshot()
    daemon = ProcessInfo(pid=7, name="rtpengine", settings={"ng_address": "127.0.0.1:2223",
                                                            "version": "10.5.3.5-1+deb12u1"})
    snap = replace(snap, media=replace(snap.media, version=""), host=HostState(rtpengine=(daemon,)))
    app = make_app(FakeService([snap]))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        assert "10.5.3.5-1+deb12u1 (package)" in screen_text(app)


async def test_header_shows_target_and_every_source(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        text = screen_text(app)
        assert "http://127.0.0.1:8888/mi" in text
        for source in ("opensips OK", "rtpengine OK", "host OK"):
            assert source in text


async def test_help_lists_keys_and_escape_closes(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key in ("transport filter", "re-run", "pause", "quit"):
            assert key in text
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits(make_app):
    app = make_app()
    async with app.run_test() as pilot:
        await start(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app._exit


# --------------------------------------------------------------------------- registrations


async def test_filter_narrows_rows_as_you_type_enter_keeps_escape_clears(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        assert contact_rows(app) == 70
        await press(app, pilot, "slash")
        assert isinstance(app.focused, Input)
        await press(app, pilot, "w", "s")
        assert contact_rows(app) == 10
        await press(app, pilot, "2", "0", "0", "3")
        assert contact_rows(app) == 1
        await press(app, pilot, "enter")
        assert isinstance(app.focused, ContactTable)
        assert contact_rows(app) == 1  # filter kept
        await press(app, pilot, "escape")
        assert contact_rows(app) == 70
        assert app.query_one("#contact-filter", Input).value == ""


async def test_filter_matches_user_agent_and_contact(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2", "slash")
        await type_into(app, pilot, "lab-TCP")
        assert contact_rows(app) == 10
        await press(app, pilot, "escape", "slash")
        await type_into(app, pilot, "5071;transport=tcp")
        assert contact_rows(app) == 10


async def test_transport_filter_cycles(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        seen = []
        for _ in range(5):
            await press(app, pilot, "t")
            seen.append((app.query_one(RegistrationsPane).transport, contact_rows(app)))
        assert seen == [("ws", 10), ("udp", 50), ("tcp", 10), ("tls", 0), ("all", 70)]


async def test_ws_contacts_carry_a_visible_marker(make_app):
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2", "t")
        text = screen_text(app)
        assert sum(line.split()[1:2] == ["WS"] for line in text.splitlines()) >= 10  # 'WS', no '[web]' (#14)
        assert "[web]" not in text
        assert "DST_WS" in text


async def test_sort_key_and_reverse(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        assert table.get_row_at(0)[0].plain == "1000"
        await press(app, pilot, "r")
        assert table.get_row_at(0)[0].plain == "ws2009"
        await press(app, pilot, "s")  # next column: transport
        assert app.query_one(RegistrationsPane).sort == "transport"


async def test_enter_opens_contact_detail_and_escape_returns(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2", "enter")
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        for field in ("Contact ID", "Call-ID", "reg-udp-1-27404@127.0.0.1", "Branch flags", "Methods"):
            assert field in text
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, DetailScreen)
        assert app.query_one(ContentSwitcher).current == "registrations"


async def test_expires_counts_down_with_the_clock(make_app, clock):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        before = table.get_row_at(0)[2].plain
        clock.advance(61)
        app.render_all()
        await pilot.pause()
        after = table.get_row_at(0)[2].plain
        assert before != after
        assert after.startswith("58m") or after.startswith("57m")


async def test_contacts_note_shown_when_list_not_fetched(clock):
    base = lab_snapshot()
    note = "10,070 contacts exceed full_sync_max (10,000): showing counts only; press F to fetch anyway"
    snap = replace(base, signalling=replace(base.signalling, contacts=None, contacts_note=note))
    app = OpsConsoleApp(FakeService([snap]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        text = screen_text(app)
        assert "Contacts not listed" in text
        assert "exceed full_sync_max" in text
        assert contact_rows(app) == 0


async def test_table_rows_survive_a_poll_and_cursor_stays_on_its_contact(make_app, service, clock):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        table.move_cursor(row=5)
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        row_object = table.rows[key]
        # Next poll: the first contact unregistered.
        snap = lab_snapshot()
        contacts = tuple(c for c in snap.signalling.contacts if c.aor != "1000")
        service.snapshots = [replace(snap, signalling=replace(snap.signalling, contacts=contacts))]
        app.poll_now()
        await settle(app, pilot)
        assert table.row_count == 69
        assert table.rows[key] is row_object  # kept, not rebuilt
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key == key


async def test_hundred_thousand_contacts_held_in_a_window(clock):
    snap = lab_snapshot()
    big = replace(snap, signalling=replace(snap.signalling, contacts=many_contacts(100_000)))
    app = OpsConsoleApp(FakeService([big]), interval=3600, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2")
        pane = app.query_one(RegistrationsPane)
        assert contact_rows(app) == pane.WINDOW
        assert f"rows 1-{pane.WINDOW} of 100,000" in screen_text(app)
        table = app.query_one(ContactTable)
        table.move_cursor(row=pane.WINDOW - 1)
        await press(app, pilot, "down")  # past the window's last row: pages on
        assert pane.window_start == pane.WINDOW // 2
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == pane.matches[pane.WINDOW].key
        await press(app, pilot, "ctrl+end")
        assert pane.window_start == 100_000 - pane.WINDOW
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == pane.matches[-1].key
        assert f"rows {100_000 - pane.WINDOW + 1:,}-100,000 of 100,000" in screen_text(app)
        await press(app, pilot, "ctrl+home")
        assert pane.window_start == 0
        await press(app, pilot, "slash")
        await type_into(app, pilot, "u099999")
        assert contact_rows(app) == 1
        assert pane.window_start == 0


# --------------------------------------------------------------------------- calls / media / checks


async def test_calls_show_bridges_and_mark_media_without_dialog(make_app):
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "3")
        text = screen_text(app)
        for bridge in ("UDP->UDP RTP<->RTP", "UDP->WS RTP<->DTLS-SRTP", "WS->UDP DTLS-SRTP<->RTP",
                       "WS->WS DTLS-SRTP<->DTLS-SRTP", "TCP->TCP RTP<->RTP"):
            assert bridge in text
        assert "NO DIALOG" in text
        assert app.query_one("#calls-table", DataTable).row_count == 10


async def test_dialog_without_media_marked(clock):
    snap = lab_snapshot()
    orphan = Dialog(id="1.2", callid="no-media-call@127.0.0.1", from_uri="sip:1049@127.0.0.1", to_uri="sip:1048@127.0.0.1",
                    state=4, start=int(NOW) - 5, caller=DialogLeg(tag="x", transport="udp"),
                    callees=(DialogLeg(tag="y", transport="udp"),))
    snap = replace(snap, signalling=replace(snap.signalling, dialogs=snap.signalling.dialogs + (orphan,)))
    app = OpsConsoleApp(FakeService([snap]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "3")
        text = screen_text(app)
        assert "NO MEDIA" in text
        assert "1 without media" in text


async def test_call_detail_shows_both_rtpengine_sdps_and_media(make_app):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "3")
        table = app.query_one("#calls-table", DataTable)
        index = table.get_row_index("call-udp2ws-2-27552@127.0.0.1")
        table.move_cursor(row=index)
        await press(app, pilot, "enter")
        assert isinstance(app.screen, DetailScreen)
        body = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert "m=audio 30910 RTP/AVP 8 0 101" in body  # caller_sent_sdp
        assert "m=audio 30890 UDP/TLS/RTP/SAVPF 8 0 101" in body  # callee_sent_sdp
        assert "UDP/TLS/RTP/SAVPF" in body and "pkts" in body  # the media session
        await press(app, pilot, "escape")
        assert app.query_one(ContentSwitcher).current == "calls"


async def test_media_screen_ports_sessions_totals(make_app):
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "4")
        text = screen_text(app)
        assert "36/1,000 3.6%" in text
        assert "241" in text  # (1000 - 36) // 4 calls still possible
        assert "DELETED" in text
        assert "24 sessions ended" in text
        assert app.query_one("#sessions", DataTable).row_count == 10


async def test_checks_screen_and_r_reruns(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "5")
        runs = service.checks_runs
        assert "WARN" in screen_text(app)
        service.check_results = [CheckResult("rtpengine.ng", Status.FAIL, "ng did not answer", {}, "start rtpengine")]
        await press(app, pilot, "R")  # r reverses, as on every list (#14)
        assert service.checks_runs == runs + 1
        text = screen_text(app)
        assert "FAIL" in text and "ng did not answer" in text
        assert app.query_one("#checks-table", DataTable).row_count == 1


async def test_check_detail_shows_evidence_and_remedy(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "5")
        table = app.query_one("#checks-table", DataTable)
        table.move_cursor(row=table.get_row_index("calls.zombies"))
        await press(app, pilot, "enter")
        text = screen_text(app)
        assert "short-1-28608@127.0.0.1" in text
        assert "rtpengine-ctl terminate" in text


# --------------------------------------------------------------------------- polling


async def test_heavy_lists_only_for_the_visible_screen(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        first = service.requests[0]
        assert first.contacts and first.dialogs  # nothing cached yet
        app.poll_now()
        await settle(app, pilot)
        assert not service.requests[-1].contacts  # overview, fresh cache: counters only
        assert not service.requests[-1].dialogs
        await press(app, pilot, "2")
        assert service.requests[-1].contacts
        await press(app, pilot, "3")
        assert service.requests[-1].dialogs and service.requests[-1].media_details


async def test_heavy_lists_refreshed_on_the_slow_cadence(make_app, service, clock):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        clock.advance(service.config.heavy_interval + 1)
        app.poll_now()
        await settle(app, pilot)
        assert service.requests[-1].contacts


async def test_pause_stops_polling_and_resume_polls(make_app, service):
    app = make_app(interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "p")
        assert app.paused
        assert "PAUSED" in screen_text(app)
        count = len(service.requests)
        await press(app, pilot, "2")  # would poll at once if not paused
        await pilot.pause(0.3)  # longer than the interval: a scheduled poll would have run
        await settle(app, pilot)
        assert len(service.requests) == count
        await press(app, pilot, "p")
        assert not app.paused
        assert len(service.requests) > count
        assert "PAUSED" not in screen_text(app)


async def test_polls_never_overlap(service, clock):
    import asyncio

    class SlowService(FakeService):
        active = 0
        peak = 0

        async def snapshot(self, options=None):
            SlowService.active += 1
            SlowService.peak = max(SlowService.peak, SlowService.active)
            try:
                await asyncio.sleep(0.02)
                return await super().snapshot(options)
            finally:
                SlowService.active -= 1

    slow = SlowService()
    app = OpsConsoleApp(slow, interval=0.1, clock=clock)
    async with app.run_test() as pilot:
        await pilot.pause(0.5)
        assert len(slow.requests) >= 2
        assert SlowService.peak == 1


async def test_source_failure_shows_fail_and_stale_then_recovers(clock):
    good = lab_snapshot()
    failed = replace(good, collected_at=NOW + 60, media=None,
                     sources=sources(failing="rtpengine", error="ng 127.0.0.1:2223: no answer within 2 s", at=NOW + 60))
    recovered = replace(good, collected_at=NOW + 120, sources=sources(at=NOW + 120))
    # Switching to the media screen polls at once: the source is still down then.
    service = FakeService([good, failed, failed, recovered])
    app = OpsConsoleApp(service, interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        clock.advance(60)
        app.poll_now()
        await settle(app, pilot)
        text = screen_text(app)
        assert "rtpengine FAIL: ng 127.0.0.1:2223: no answer within 2 s" in text
        assert "STALE 1m00s" in text
        assert "media: STALE" in text  # the overview's media block is marked too
        await press(app, pilot, "4")
        assert "media: STALE, last good 1m00s ago" in screen_text(app)
        assert app.query_one("#sessions", DataTable).row_count == 10  # old data kept, visibly stale
        clock.advance(60)
        app.poll_now()
        await settle(app, pilot)
        text = screen_text(app)
        assert "rtpengine OK" in text
        assert "STALE" not in text


async def test_service_exception_becomes_a_failed_source(clock):
    class Broken(FakeService):
        async def snapshot(self, options=None):
            raise RuntimeError("boom")

    app = OpsConsoleApp(Broken(), interval=3600, clock=clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert "console FAIL: poll failed: RuntimeError: boom" in screen_text(app)


# --------------------------------------------------------------------------- MI


async def test_mi_completion_from_commands(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6", *"ul_du")
        await pilot.pause()
        await press(app, pilot, "right")  # accept the suggestion
        assert app.query_one("#mi-input", Input).value == "ul_dump"


async def test_mi_result_as_tree(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, "version")
        await press(app, pilot, "enter")
        assert service.mi_calls[-1] == ("version", None, False)
        tree = app.query_one("#mi-result", Tree)
        labels = [str(node.label) for node in tree.root.children]
        assert labels == ["Server: OpenSIPS (3.4.18 (x86_64/linux))"]
        assert "OK version" in screen_text(app)


async def test_mi_error_shown_not_raised(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, "no_such_command")
        await press(app, pilot, "enter")
        assert "FAIL Method not found" in screen_text(app)


async def test_mi_bad_json_params_explained(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, 'dlg_list {"callid": ')
        await press(app, pilot, "enter")
        assert "not valid JSON" in screen_text(app)
        assert not service.mi_calls


async def test_write_method_refused_without_allow_write(make_app, service):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, "ul_rm location 1000")
        await press(app, pilot, "enter")
        assert "REFUSED" in screen_text(app)
        assert "--allow-write" in screen_text(app)
        assert not isinstance(app.screen, ConfirmScreen)
        assert service.mi_calls == []


async def test_write_method_asks_confirmation_with_allow_write(make_app, service):
    service.mi_results["ul_rm"] = "OK"
    app = make_app(allow_write=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, "ul_rm location 1000")
        await press(app, pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "ul_rm" in screen_text(app)
        await press(app, pilot, "n")
        assert not isinstance(app.screen, ConfirmScreen)
        assert service.mi_calls == []
        assert "cancelled" in screen_text(app)
        await press(app, pilot, "enter")  # the input still holds the command
        assert isinstance(app.screen, ConfirmScreen)
        await press(app, pilot, "y")
        assert service.mi_calls == [("ul_rm", ["location", "1000"], True)]  # the one MI grammar: words are strings
        assert "OK ul_rm" in screen_text(app)


# --------------------------------------------------------------------------- hostile data


HOSTILE_UA = "[bold red]x[/] \x1b[2J \x1b]52;c;ZXZpbA==\x07 \u202eevil\x00" + "A" * 10_000
HOSTILE_CALLID = "[red]cid[/]\x1b[31m\u202e"


def hostile_snapshot() -> Snapshot:
    snap = lab_snapshot()
    evil = Contact(aor="[blink]evil[/]", contact="sip:evil@127.0.0.1\x1b[2J", transport="udp", socket="udp:127.0.0.1:5060",
                   user_agent=HOSTILE_UA, expires=60, callid=HOSTILE_CALLID)
    dialog = replace(snap.signalling.dialogs[0], callid=HOSTILE_CALLID, from_uri="sip:[b]x\u202e@127.0.0.1")
    signalling = replace(snap.signalling, contacts=(evil,) + snap.signalling.contacts,
                         dialogs=(dialog,) + snap.signalling.dialogs[1:])
    return replace(snap, signalling=signalling)


async def test_hostile_strings_render_literally_escaped(clock):
    app = OpsConsoleApp(FakeService([hostile_snapshot()]), interval=3600, clock=clock)
    async with app.run_test(size=(200, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2", "slash")
        await type_into(app, pilot, "evil")
        await press(app, pilot, "enter")
        text = screen_text(app)
        assert "[blink]evil[/]" in text
        assert "[bold red]x[/] \\x1b[2J" in text
        assert "\x1b" not in text and "\u202e" not in text and "\x00" not in text
        assert "…" in text  # the 10 kB UA is cut in the cell
        await press(app, pilot, "enter")
        detail = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert "\\x1b]52;c;ZXZpbA==\\x07 \\u202eevil\\x00" + "A" * 10_000 in detail  # full value, escaped
        assert "\x1b" not in detail
        await press(app, pilot, "escape", "3")
        text = screen_text(app)
        assert "[b]x\\u202e" in text
        assert "\x1b" not in text and "\u202e" not in text


# --------------------------------------------------------------------------- terminal loss


class FakeStream:
    def __init__(self, tty: bool, closed: bool = False) -> None:
        self.tty, self.closed = tty, closed

    def fileno(self) -> int:
        if self.closed:
            raise ValueError("closed")
        return 0 if self.tty else -1


def test_terminal_gone_when_stream_closed(monkeypatch):
    monkeypatch.setattr("os.isatty", lambda fd: fd == 0)
    monkeypatch.setattr("os.getppid", lambda: 4242)
    assert not terminal_gone(4242, (FakeStream(True),))
    assert terminal_gone(4242, (FakeStream(True, closed=True),))
    assert terminal_gone(4242, (FakeStream(False),))


def test_terminal_gone_when_orphaned(monkeypatch):
    monkeypatch.setattr("os.isatty", lambda fd: True)
    monkeypatch.setattr("os.getppid", lambda: 1)
    assert terminal_gone(4242, (FakeStream(True),))
    assert not terminal_gone(1, (FakeStream(True),))  # started by init itself: nothing changed


def test_terminal_gone_when_parent_changed(monkeypatch):
    monkeypatch.setattr("os.isatty", lambda fd: True)
    monkeypatch.setattr("os.getppid", lambda: 777)  # a subreaper adopted us
    assert terminal_gone(4242, (FakeStream(True),))


async def test_terminal_lost_exits_cleanly(make_app):
    app = make_app()
    async with app.run_test() as pilot:
        await start(app, pilot)
        app._terminal_lost()  # what SIGHUP and the watchdog call
        await pilot.pause()
        assert app._exit
    assert app.return_code == 129


async def test_no_color_keeps_status_words(monkeypatch, clock):
    monkeypatch.setenv("NO_COLOR", "1")
    failed = replace(lab_snapshot(), media=None, sources=sources(failing="rtpengine", error="refused"))
    service = FakeService([lab_snapshot(), failed])
    app = OpsConsoleApp(service, interval=3600, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        app.poll_now()
        await settle(app, pilot)
        assert app.no_color
        text = screen_text(app)
        assert "rtpengine FAIL: refused" in text and "STALE" in text
        assert "WARN" in text and "opensips OK" in text


async def test_colon_opens_command_palette_with_screen_commands(make_app):
    from textual.command import CommandList, CommandPalette

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "colon")
        assert isinstance(app.screen, CommandPalette)
        await type_into(app, pilot, "Show Media")
        for _ in range(100):  # the palette searches its providers asynchronously
            if app.screen.query_one(CommandList).option_count:
                break
            await pilot.pause(0.02)
        await press(app, pilot, "enter")
        assert app.query_one(ContentSwitcher).current == "media"


async def test_escape_never_leaves_the_screen_the_user_chose(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "4", "escape", "escape")
        assert app.query_one(ContentSwitcher).current == "media"


async def test_screen_key_from_a_detail_pane_switches_screen(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "2", "enter")
        assert isinstance(app.screen, DetailScreen)
        await press(app, pilot, "4")
        assert not isinstance(app.screen, DetailScreen)
        assert app.query_one(ContentSwitcher).current == "media"


async def test_overview_lists_each_source_with_its_full_error(clock):
    reason = "rtpengine unreachable: ng: nothing listens for ng on udp 127.0.0.1:2223 (is rtpengine running? check -n/--listen-ng)"
    failed = replace(lab_snapshot(), media=None, sources=sources(failing="rtpengine", error=reason))
    app = OpsConsoleApp(FakeService([failed]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 60)) as pilot:
        await start(app, pilot)
        text = screen_text(app)
        assert reason in text  # the header shortens it; the overview has it whole
        assert "last good never" in text


async def test_registrations_marked_stale_when_opensips_fails(clock):
    good = lab_snapshot()
    failed = replace(good, collected_at=NOW + 30, signalling=None,
                     sources=sources(failing="opensips", error="MI timed out", at=NOW + 30))
    app = OpsConsoleApp(FakeService([good, failed]), interval=3600, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await start(app, pilot)
        clock.advance(30)
        await press(app, pilot, "2")  # polls at once: OpenSIPS is down now
        text = screen_text(app)
        assert "contacts: STALE, last good 30s ago" in text
        assert "opensips FAIL: MI timed out STALE 30s" in text
        assert contact_rows(app) == 70  # the last good list, visibly stale


async def test_detail_pane_keeps_the_status_header(make_app, clock):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await press(app, pilot, "3", "enter")
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        assert "http://127.0.0.1:8888/mi" in text and "rtpengine OK" in text
        clock.advance(75)
        app.render_all()  # what the 1 s tick does
        await pilot.pause()
        assert "updated 1m15s ago" in screen_text(app)
