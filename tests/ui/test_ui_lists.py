"""#14 items 9-11 and 17: every list has / s r, columns fit the screen and say what is hidden,
the key bar keeps ? and q, Esc never leaves a screen, the : palette finds users and Call-IDs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import ContentSwitcher, DataTable, Input, Tree

from console.model import Contact
from console.ui.listkeys import ListView, fit_columns, sort_value
from console.ui.panes import ContactTable
from console.ui.screens import DetailScreen

from .data import FakeService, lab_snapshot, mi_result
from .helpers import screen_text, settle, type_into
from .scenes import live_snapshot


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


def first_cells(table: DataTable, column: str) -> list[str]:
    return [table.get_cell_at((row, list(table.columns).index(column))).plain for row in range(table.row_count)]


# --------------------------------------------------------------------------- item 9: / s r on every list


@pytest.mark.parametrize("screen,table_id,needle,matches", [
    ("3", "#calls-table", "1041", 1),
    ("4", "#sessions", "short-1", 1),
    ("5", "#checks-table", "zombies", 1),
])
async def test_every_list_filters_on_visible_text_sorts_and_reverses(make_app, screen, table_id, needle, matches):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, screen)
        table = app.query_one(table_id, DataTable)
        everything = table.row_count
        assert everything > matches
        await press(app, pilot, "slash")
        assert isinstance(app.focused, Input)
        await type_into(app, pilot, needle)
        assert table.row_count == matches
        assert needle in screen_text(app)  # the status says what filters the list
        await press(app, pilot, "escape")  # closes the filter, clears it
        assert table.row_count == everything
        assert app.query_one(ContentSwitcher).current != "overview"
        first = [table.get_row_at(n) for n in range(table.row_count)]
        await press(app, pilot, "s")  # first column, ascending
        ascending = [table.get_row_at(n)[0].plain for n in range(table.row_count)]
        assert [sort_value(v) for v in ascending] == sorted(sort_value(v) for v in ascending)
        await press(app, pilot, "r")
        assert [table.get_row_at(n)[0].plain for n in range(table.row_count)] == ascending[::-1]
        assert table.cursor_row == 0
        assert len(first) == everything


async def test_the_mi_answer_is_a_list_too_filter_sort_reverse_and_summaries(make_app):
    service = FakeService(mi_results={"ul_dump": mi_result("ul_dump.populated"), "version": mi_result("version")})
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "6")
        await type_into(app, pilot, "ul_dump")
        await press(app, pilot, "enter")
        text = screen_text(app)
        assert "AOR 3006" in text  # a branch says what it holds, not `[0] {19}`
        assert "{2}" not in text and "{19}" not in text
        await press(app, pilot, "escape")  # leaves the command line for the answer
        assert isinstance(app.focused, Tree)
        await press(app, pilot, "slash")
        await type_into(app, pilot, "3006")
        text = screen_text(app)
        assert "AOR 3006" in text and "AOR 3007" not in text
        await press(app, pilot, "escape")
        await press(app, pilot, "s")
        tree = app.query_one(Tree)
        aors = [node for node in tree.root.children[0].children[0].children[2].children]
        labels = [node.label.plain for node in aors]
        assert labels[0].startswith("[") and "AOR 1000" in labels[0]
        await press(app, pilot, "r")
        aors = [node.label.plain for node in tree.root.children[0].children[0].children[2].children]
        assert "AOR 1000" in aors[-1]


def test_sort_values_order_numbers_and_durations_by_value():
    assert sort_value("9s") < sort_value("1m05s") < sort_value("2h00m")
    assert sort_value("2") < sort_value("10") < sort_value("1,200")
    assert sort_value("10") < sort_value("abc") < sort_value("-")


# --------------------------------------------------------------------------- item 9: the : palette


async def palette_pick(app, pilot, query: str) -> None:
    await press(app, pilot, "colon")
    await pilot.press(*query)
    for _ in range(20):
        await pilot.pause(0.05)
    await press(app, pilot, "enter")  # the first hit is highlighted


async def test_the_palette_jumps_to_a_user(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_pick(app, pilot, "1001")
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        assert "Contact 1001" in text and "sip:1001@127.0.0.1:5070" in text


async def test_the_palette_jumps_to_a_call_id(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_pick(app, pilot, "gqc9y5p4")
        assert isinstance(app.screen, DetailScreen)
        assert "Call gqc9y5p4vytlkldkolvytokm" in screen_text(app)


async def test_on_a_partial_list_the_palette_asks_opensips_for_the_user(make_app):
    service = FakeService([live_snapshot()])  # 5 contacts seen in events of 70 registered
    wanted = next(c for c in lab_snapshot().signalling.contacts if c.aor == "1020")  # in no call either
    service.aor_contacts["1020"] = (wanted,)
    app = make_app(service)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert all(c.aor != "1020" for c in app.session.current_view().contacts)
        await palette_pick(app, pilot, "1020")
        await settle(app, pilot)
        assert service.shown_aors == ["1020"]
        assert isinstance(app.screen, DetailScreen)
        text = screen_text(app)
        assert "sip:1020@127.0.0.1" in text and "asked OpenSIPS now" in text


# --------------------------------------------------------------------------- item 10: columns and the key bar


async def test_registrations_socket_is_whole_at_120_and_hidden_columns_are_named(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2")
        text = screen_text(app)
        assert "udp:127.0.0.1:5060 " in text  # was cut to 'udp:127.0.0.1:506'
        assert "cols →" in text and "Flags" in text


@pytest.mark.parametrize("screen", ["1", "2", "3", "4", "5", "6"])
async def test_at_80x24_the_key_bar_keeps_help_and_quit(make_app, screen):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, screen)
        bar = screen_text(app).splitlines()[-1]
        assert "? Help" in bar and "q Quit" in bar


async def test_at_80_columns_calls_keep_packets_and_media_keeps_errors(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "3")
        assert "Pkts A/B" in screen_text(app)
        assert "Pkts A/B" in [str(c.label) for c in app.query_one("#calls-table", DataTable).columns.values()]
        await press(app, pilot, "4")
        labels = [str(c.label) for c in app.query_one("#sessions", DataTable).columns.values()]
        assert "Errors" in labels and "Packets" in labels
        assert "cols →" in screen_text(app)


async def test_enter_on_a_check_shows_its_remedy(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "5")
        table = app.query_one("#checks-table", DataTable)
        table.move_cursor(row=table.get_row_index("calls.zombies"))
        await press(app, pilot, "enter")
        assert isinstance(app.screen, DetailScreen)
        assert "rtpengine-ctl terminate <callid>" in screen_text(app)


def test_fitting_drops_the_least_useful_columns_first():
    columns = (("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"))
    widths = {"a": 10, "b": 10, "c": 10, "d": 10}
    assert fit_columns(columns, widths, 36, ("a", "c", "d", "b")) == ("a", "c", "d")
    assert fit_columns(columns, widths, 5, ("b", "a")) == ("b",)  # the first always stays
    listing = ListView(columns)
    rows = [("k", ("1", "2", "3", "4"))]
    listing.fit(rows, 6, ("a", "b"))  # each column: its label (1) and the padding (2)
    assert listing.shown == ("a", "b") and listing.hidden() == ["C", "D"]
    projected = listing.project(rows)
    assert projected == [("k", ("1", "2"))] and listing.project(rows)[0][1] is projected[0][1]


# --------------------------------------------------------------------------- item 11: Esc


async def test_escape_on_the_mi_screen_leaves_the_input_then_stays(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "6")
        assert isinstance(app.focused, Input)
        await press(app, pilot, "escape")
        assert not isinstance(app.focused, Input)
        await press(app, pilot, "escape", "escape")
        assert app.query_one(ContentSwitcher).current == "mi"


@pytest.mark.parametrize("screen,name", [("2", "registrations"), ("3", "calls"), ("5", "checks")])
async def test_escape_closes_the_filter_and_never_leaves_the_screen(make_app, screen, name):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, screen, "slash")
        await type_into(app, pilot, "zz")
        await press(app, pilot, "escape", "escape", "escape")
        assert app.query_one(ContentSwitcher).current == name
        assert not isinstance(app.focused, Input)


# --------------------------------------------------------------------------- item 17: r on Registrations


async def test_reverse_on_registrations_shows_the_top_of_the_new_order(make_app):
    app = make_app()
    async with app.run_test(size=(120, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        await press(app, pilot, "r")
        assert table.cursor_row == 0 and table.scroll_y == 0
        assert table.get_row_at(0)[0].plain == "ws2009"
        lines = screen_text(app).splitlines()
        header = next(n for n, line in enumerate(lines) if line.split()[:1] == ["AoR"])
        assert lines[header + 1].split()[0] == "ws2009"  # the first row shown is the first of the order
        await press(app, pilot, "r", "s")
        assert table.cursor_row == 0 and table.scroll_y == 0


async def test_after_a_full_sync_the_first_row_shown_is_the_first_of_the_list(make_app):
    partial = live_snapshot()
    service = FakeService([partial, partial, lab_snapshot()])
    app = make_app(service)
    async with app.run_test(size=(120, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2")
        table = app.query_one(ContactTable)
        await press(app, pilot, "down")  # on 3004, the second of the partial list, the 54th of the full one
        assert table.get_row_at(table.cursor_row)[0].plain == "3004"
        await press(app, pilot, "S")
        await settle(app, pilot)
        assert len(app.session.current_view().contacts) == 70
        assert table.scroll_y == 0 and table.cursor_row == 0  # not scrolled after the old selection
        lines = screen_text(app).splitlines()
        header = next(n for n, line in enumerate(lines) if line.split()[:1] == ["AoR"])
        assert lines[header + 1].split()[0] == "1000"  # the first row shown: the list's first


async def test_the_registrations_filter_reaches_every_column_shown(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "2", "slash")
        await type_into(app, pilot, "tcp:127.0.0.1:5060")  # the Socket column of the TCP contacts
        assert app.query_one(ContactTable).row_count == 10


def test_a_hidden_column_does_not_flap_back_for_a_cell_or_two():
    columns = (("a", "A"), ("b", "B"), ("c", "C"))
    listing = ListView(columns)
    wide = [("k", ("x" * 10, "y" * 10, "z" * 10))]
    assert listing.fit(wide, 30, ("a", "b", "c"))  # a and b fit (12 + 12), c (12) does not
    assert listing.shown == ("a", "b")
    narrower = [("k", ("x" * 10, "y" * 10, "z" * 4))]  # c now needs 6: exactly 30, no slack
    assert not listing.fit(narrower, 30, ("a", "b", "c")) and listing.shown == ("a", "b")
    much_narrower = [("k", ("x" * 5, "y" * 5, "z" * 4))]  # plenty of room: it comes back
    assert listing.fit(much_narrower, 30, ("a", "b", "c")) and listing.shown == ("a", "b", "c")
    assert listing.fit(wide, 30, ("a", "b", "c")) and listing.shown == ("a", "b")  # no longer fits: goes


async def test_at_80_columns_the_interfaces_table_drops_whole_columns_and_says_so(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "4")
        ports = app.query_one("#ports", DataTable)
        labels = [str(c.label) for c in ports.columns.values()]
        assert labels[:3] == ["Interface", "Address", "Ports used"] and "Range" not in labels
        assert sum(c.get_render_width(ports) for c in ports.columns.values()) <= 80
        assert "interfaces: +" in screen_text(app) and "Range" in screen_text(app)
