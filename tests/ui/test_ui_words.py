"""#14 items 12-14 and 16: pause says so, engineer words, SDES keys masked, the NO_COLOR cursor."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.widgets import DataTable

from console.model import CheckResult, Status
from console.ui import format as fmt
from console.ui.panes import ContactTable
from console.ui.screens import DetailScreen

from .data import FakeService, lab_snapshot, sources
from .helpers import screen_text, settle
from .scenes import LIVE_EVENTS


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


# --------------------------------------------------------------------------- item 12: pause


async def test_paused_nothing_claims_to_be_live(make_app):
    snap = lab_snapshot()
    live = replace(snap, signalling=replace(snap.signalling, contacts_mode="events", events_status=LIVE_EVENTS))
    app = make_app(FakeService([live]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2")
        assert "kept current by OpenSIPS events" in screen_text(app)
        await press(app, pilot, "p")
        text = screen_text(app)
        assert "PAUSED" in text.splitlines()[0]  # the header
        assert "kept current by OpenSIPS events" not in text and "live via" not in text
        assert "not updated" in text and "Expires frozen" in text


# --------------------------------------------------------------------------- item 13: words


async def test_contact_detail_decodes_methods_and_state(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2", "enter")
        text = screen_text(app)
        assert "4294967295" not in text and "any (no Allow header in the REGISTER)" in text
        assert "not yet in a database" in text and "(CS_NEW)" in text


def test_methods_bitmask_in_opensips_bit_order():
    # parser/msg_parser.h: INVITE 1, CANCEL 2, ACK 4, BYE 8, ..., OPTIONS 32, REGISTER 128, PUBLISH 8192
    assert fmt.methods_text(1 | 2 | 4 | 8 | 32) == "INVITE CANCEL ACK BYE OPTIONS"
    assert fmt.methods_text(128 | 8192) == "REGISTER PUBLISH"
    assert fmt.methods_text(0) == "none" and fmt.methods_text(None) == "-"


async def test_words_an_engineer_reads(make_app):
    checks = [CheckResult("opensips.load", Status.UNKNOWN, "load unknown: the statistics were not answered in time "
                          "(OpenSIPS busy with a dump)", {"samples": {"load": None, "load1m": 2.0}, "nodes": ["a", "b"]},
                          "wait for the next poll")]
    app = make_app(FakeService(checks=checks))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "UNKNOWNopensips" not in text and "UNKNOWN opensips.load" in text
        assert "(1m " not in text and "1-min avg" in text
        assert "list COMPLETE" not in text and "[web]" not in text
        for line in text.splitlines():
            assert line.strip(" │") != "ago)"  # the transport line wraps between counts, not inside one
        await press(app, pilot, "4")
        assert "managed," not in screen_text(app)
        await press(app, pilot, "5", "enter")
        detail = screen_text(app)
        assert "{'" not in detail and "['" not in detail  # no Python reprs
        assert "load1m" in detail and "a, b" in detail


def test_summaries_are_cut_at_a_word_with_an_ellipsis():
    assert fmt.brief("1 media session without a dialog since 3m", 20) == "1 media session…"
    assert fmt.brief("short", 20) == "short"


async def test_a_failing_source_never_breaks_the_header_mid_word(make_app):
    snap = lab_snapshot()
    error = "connection refused by http://10.20.30.40:8888/mi after 3 attempts (timeout 2.0 s each, see opensips.log)"
    snap = replace(snap, sources=sources(failing="opensips", error=error))
    app = make_app(FakeService([snap]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        lines = screen_text(app).splitlines()[:4]
        # the sources that are fine share a line; the failure has a line of its own, cut with an ellipsis
        assert lines[1].strip() == "rtpengine OK · host OK"
        assert lines[2].startswith(" opensips FAIL: connection refused") and lines[2].rstrip().endswith("…")


# --------------------------------------------------------------------------- item 14: SDES keys


KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyBvcGVuKEYsICI"


async def test_sdes_keys_are_masked_in_call_details_until_asked(make_app):
    snap = lab_snapshot()
    sdp = f"v=0\r\nm=audio 30910 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4\r\n"
    dialogs = tuple(replace(d, caller=replace(d.caller, sent_sdp=sdp)) for d in snap.signalling.dialogs)
    snap = replace(snap, signalling=replace(snap.signalling, dialogs=dialogs))
    app = make_app(FakeService([snap]))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "3", "enter")
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in text
        assert KEY[:12] not in text and "k shows keys" in text
        await press(app, pilot, "k")
        assert KEY[:40] in screen_text(app)
        await press(app, pilot, "k")
        assert KEY[:12] not in screen_text(app)


def test_mask_keeps_the_rest_of_the_line_and_its_styles():
    text = Text("a=crypto:1 X inline:SECRET|2^20 tail", style="bold")
    masked = fmt.mask_keys(text)
    assert "SECRET" not in masked.plain and masked.plain.endswith("|2^20 tail") and masked.style == "bold"


# --------------------------------------------------------------------------- item 16: NO_COLOR


async def test_no_color_cursor_row_is_reverse_video(make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        assert app.no_color and table.cursor_row == 0
        cursor_line = table.render_line(table.header_height)  # the first row, under the cursor
        assert any(segment.style is not None and segment.style.reverse for segment in cursor_line)
        other_line = table.render_line(table.header_height + 1)
        assert not any(segment.style is not None and segment.style.reverse for segment in other_line)
        for screen, table_id in (("3", "#calls-table"), ("5", "#checks-table")):  # Calls paints its own rows
            await press(app, pilot, screen)
            table = app.query_one(table_id, DataTable)
            assert any(s.style is not None and s.style.reverse for s in table.render_line(table.header_height))


# --------------------------------------------------------------------------- item 15: sparklines


async def test_trends_show_their_scale_and_span_and_few_samples_do_not_stretch(make_app, clock):
    from .data import NOW

    app = make_app(FakeService([lab_snapshot(at=NOW + 2 * n) for n in range(3)]))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        for _ in range(2):
            clock.advance(2)
            app.poll_now()
            await settle(app, pilot)
        view = app.session.current_view()
        times = view.history_at["registrations"]
        assert len(times) == len(view.history["registrations"]) and times[-1] - times[0] == 4
        line = next(line for line in screen_text(app).splitlines() if "Registrations " in line and "min" in line)
        assert "70  min 70 max 70 over 4s" in line
        plot = line.split("Registrations", 1)[1].split("70  min", 1)[0].strip()
        assert 1 <= len(plot) <= len(times)  # a few samples: a few cells, not stretched over the width
