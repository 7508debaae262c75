"""The TUI's Trace screen against the demo (its simulated OpenSIPS answers trace_start/trace_stop/trace
and sends HEP): `T` on Calls and Registrations, the ladder in order, Enter on a message (hostile text
shown literally), `w` (a pcap read back), Esc (the trace stopped: the demo's MI `trace` lists no
opsconsole- trace), the header while active, `--no-trace` / [trace] enabled = false, the join."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import struct
import subprocess

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable  # noqa: E402

from console.config import Config, load_config  # noqa: E402
from console.errors import ConfigError  # noqa: E402
from console.service import ConsoleService  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.panes import CallsPane, ContactTable  # noqa: E402
from console.ui.screens import DetailScreen  # noqa: E402
from console.ui.trace_screen import TraceScreen  # noqa: E402
from opsconsole_demo import DemoPlatform  # noqa: E402
from opsconsole_demo.tracer import Message, hep_frame  # noqa: E402
from support.faults import clean_home  # noqa: E402,F401  (fixture)
from ui.helpers import screen_text, settle  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_home")
MAX_STEPS = 12  # demo steps to wait for a call's ACK (only stops a hang)
RAW_UNSAFE = ("\x1b", "\x07", "\u202e")


def demo_config(demo, home, **extra) -> Config:
    return Config(mi_url=demo.mi_url, ng=demo.ng, cli=demo.cli, timeout=2.0,
                  audit_log=str(home / "audit.log"), **extra)


async def calm(app, pilot, rounds: int = 10) -> None:
    """Let the screen catch up.  Not `settle`: the Trace screen's reader is a worker that runs until
    the trace stops, so waiting for every worker would wait for ever."""
    for _ in range(rounds):
        await pilot.pause()
        await asyncio.sleep(0.01)


async def select_first_call(app, pilot) -> object:
    await pilot.press("3")
    await calm(app, pilot)
    pane = app.query_one(CallsPane)
    table = pane.query_one("#calls-table", DataTable)
    table.focus()
    key = next(key for key, call in pane.calls.items() if call.dialog is not None)
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()
    return pane.calls[key]


async def trace_until(app, pilot, demo, done) -> TraceScreen:
    """Step the demo until `done(screen)` (the demo sends HEP on its steps)."""
    screen = app.screen
    assert isinstance(screen, TraceScreen), screen_text(app)
    for _ in range(MAX_STEPS):
        await demo.step()
        for _ in range(20):
            await asyncio.sleep(0.02)
            await pilot.pause()
        if done(screen):
            return screen
    raise AssertionError(f"not reached after {MAX_STEPS} steps:\n{screen_text(app)}")


def explanation(screen: TraceScreen) -> str:
    return str(screen.query_one("#trace-explain").render())


async def poll(app, pilot) -> None:
    """One poll of the console now, and the Trace screen's next explanation tick."""
    app.poll_now()
    for _ in range(200):
        await calm(app, pilot, 2)
        if not app.session.polling:
            break
    await asyncio.sleep(1.2)  # the screen re-joins once a second
    await calm(app, pilot)


def labels_of(screen: TraceScreen, callid: str) -> list[str]:
    return [row.message.label.split()[0] for row in screen.live.rows if row.call_id == callid]


def first_call(screen: TraceScreen) -> str:
    invite = next(row for row in screen.live.rows if row.message.label == "INVITE")
    return invite.call_id


async def traces_listed(service) -> list[str]:
    listing = await service.mi("trace")
    return [row["name"] for row in listing.get("trace destinations", [])]


async def test_T_on_a_call_draws_the_ladder_enter_w_esc(tmp_path):
    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(demo_config(demo, tmp_path))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                await calm(app, pilot)
                call = await select_first_call(app, pilot)
                caller = call.dialog.from_uri.split(":")[1].split("@")[0]
                await pilot.press("T")
                await calm(app, pilot)
                screen = await trace_until(app, pilot, demo, lambda s: any(
                    r.message.label == "ACK" for r in s.live.rows))
                # two dynamic traces (caller=U, callee=U: the tracer ANDs its filters), both ours
                names = await traces_listed(service)
                assert len(names) == 2 and all(n.startswith("opsconsole-") for n in names)
                filters = sorted(json.dumps(row.get("filters")) for row in
                                 (await service.mi("trace"))["trace destinations"])
                assert filters == sorted(json.dumps([{side: caller}]) for side in ("callee", "caller"))
                # the header says so, in words
                text = screen_text(app)
                assert f"TRACE ON {caller}" in text
                callid = first_call(screen)
                assert labels_of(screen, callid)[:8] == ["INVITE", "100", "INVITE", "180", "180", "200", "200",
                                                         "ACK"]
                # the ladder: arrows with the labels, the proxy column in the middle
                ladder = [line for line in text.splitlines() if "INVITE" in line and "▶" in line]
                assert ladder, text
                assert "127.0.0.1:5060" in text
                # the join: the callee's registration (transport), then (a poll after the call began)
                # OpenSIPS's dialog and RTPengine's media of the same Call-ID
                explained = explanation(screen)
                assert re.search(r"callee \S+: registered now over (UDP|TCP|WS)", explained), explained
                assert "dialog in OpenSIPS: not known yet" in explained  # the lists predate the call
                await poll(app, pilot)
                explained = explanation(screen)
                assert "dialog in OpenSIPS: confirmed" in explained, explained
                packets = re.search(r"media in RTPengine: caller sent (\d+) packets, callee sent (\d+)", explained)
                assert packets, explained
                media = app.state.call(callid).media
                assert int(packets.group(1)) + int(packets.group(2)) == sum(leg.packets for leg in media.legs)

                # Enter: the whole message, escaped
                table = screen.query_one(DataTable)
                table.focus()
                table.move_cursor(row=0)
                await pilot.press("enter")
                await calm(app, pilot)
                assert isinstance(app.screen, DetailScreen)
                detail = screen_text(app)
                assert "Call-ID: " in detail and "CSeq: 1 INVITE" in detail and "Max-Forwards: 70" in detail
                await pilot.press("escape")
                await calm(app, pilot)
                assert app.screen is screen

                # c: only the Call-ID under the cursor (the after-the-fact filter), again: all
                await pilot.press("c")
                await calm(app, pilot)
                assert "only Call-ID" in screen_text(app) and screen.only == callid
                assert table.row_count == len(labels_of(screen, callid))
                await pilot.press("c")
                await calm(app, pilot)
                assert "only Call-ID" not in screen_text(app) and table.row_count == len(screen.live.rows)

                # w: the pcap, read back
                await pilot.press("w")
                await calm(app, pilot)
                path = screen.live.pcap_path()
                assert str(path).startswith(str(tmp_path / ".local" / "state" / "opsconsole"))
                assert str(path) in screen_text(app).replace("\n", "")  # the path is on screen
                assert pcap_sip_count(path) == len(screen.live.rows)

                # Esc: the trace is stopped, nothing of ours left in OpenSIPS; the header says so
                await pilot.press("escape")
                await calm(app, pilot)
                assert not isinstance(app.screen, TraceScreen)
                assert not [n for n in await traces_listed(service) if n.startswith("opsconsole-")]
                assert "TRACE ON" not in screen_text(app)
            audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
            assert [(r["method"], r["outcome"]) for r in audit] == [("trace_start", "ok")] * 2 + [
                ("trace_stop", "ok")] * 2
        finally:
            await service.aclose()


def pcap_sip_count(path) -> int:
    """SIP messages in the pcap: tshark when installed, else our own reading of the records."""
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return len([line for line in out.splitlines() if line.strip()])
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    count, offset = 0, 24
    while offset < len(data):
        included = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        assert b"SIP/2.0" in data[offset + 16:offset + 16 + included]
        offset += 16 + included
        count += 1
    return count


async def test_a_hostile_message_is_shown_literally_and_app_exit_stops_the_trace(tmp_path):
    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(demo_config(demo, tmp_path))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                await calm(app, pilot)
                await pilot.press("2")
                await calm(app, pilot)
                table = app.query_one(ContactTable)
                table.focus()
                table.move_cursor(row=0)
                await pilot.press("T")
                await calm(app, pilot)
                screen = app.screen
                assert isinstance(screen, TraceScreen) and screen.live.target.scope == "transaction"
                for _ in range(50):
                    if screen.live.active:
                        break
                    await asyncio.sleep(0.02)
                port = screen.live.session.listener.port
                hostile = ("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: evil[bold red]x[/]\x1b[2J\r\n"
                           "CSeq: 1 OPTIONS\r\nUser-Agent: ua[link=http://x]y[/link]\x07\u202e\r\n\r\n")
                frame = hep_frame(Message(("127.0.0.1", 5099), ("127.0.0.1", 5060), False, hostile, "x", "x",
                                          "127.0.0.1"), demo.clock())
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.sendto(frame, ("127.0.0.1", port))
                for _ in range(100):
                    await pilot.pause()
                    if screen.live.rows:
                        break
                    await asyncio.sleep(0.02)
                await calm(app, pilot)
                text = screen_text(app)
                assert not any(char in text for char in RAW_UNSAFE)
                assert "evil[bold red]x[/]\\x1b[2J" in text
                ladder = screen.query_one(DataTable)
                ladder.focus()
                ladder.move_cursor(row=0)
                await pilot.press("enter")
                await calm(app, pilot)
                detail = screen_text(app)
                assert not any(char in detail for char in RAW_UNSAFE)
                assert "User-Agent: ua[link=http://x]y[/link]\\x07\\u202e" in detail
                assert (await traces_listed(service))  # still tracing under the detail
            # the app closed with the trace screen open (q, Ctrl+C): the trace is stopped
            assert not [n for n in await traces_listed(service) if n.startswith("opsconsole-")]
        finally:
            await service.aclose()


async def test_no_trace_makes_T_refuse_with_a_message(tmp_path):
    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(demo_config(demo, tmp_path, trace=False))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                await calm(app, pilot)
                await select_first_call(app, pilot)
                await pilot.press("T")
                await calm(app, pilot)
                assert not isinstance(app.screen, TraceScreen)
                notes = [str(n.message) for n in app._notifications]
                assert any("tracing is turned off" in n and "--no-trace" in n for n in notes), notes
                assert await traces_listed(service) == []
        finally:
            await service.aclose()


def test_no_trace_and_the_trace_section_turn_tracing_off(tmp_path):
    from console.cli import _overrides, build_parser

    assert _overrides(build_parser().parse_args(["--no-trace"]))["trace"] is False
    off = tmp_path / "off.toml"
    off.write_text("[trace]\nenabled = false\n")
    assert load_config(config_file=str(off), discover=False, env={}).trace is False
    typo = tmp_path / "typo.toml"
    typo.write_text("[trace]\nenable = false\n")
    with pytest.raises(ConfigError, match="did you mean enabled"):
        load_config(config_file=str(typo), discover=False, env={})
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[trace]\nenabled = "no"\n')
    with pytest.raises(ConfigError, match="true or false"):
        load_config(config_file=str(wrong), discover=False, env={})


async def test_a_screen_key_leaves_the_trace_screen_and_stops_the_trace(tmp_path):
    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(demo_config(demo, tmp_path))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                await calm(app, pilot)
                await select_first_call(app, pilot)
                await pilot.press("T")
                screen = app.screen
                assert isinstance(screen, TraceScreen)
                for _ in range(100):
                    if screen.live.active:
                        break
                    await calm(app, pilot, 2)
                assert len(await traces_listed(service)) == 2
                await pilot.press("1")
                await calm(app, pilot)
                assert not isinstance(app.screen, TraceScreen) and app.current == "overview"
                assert await traces_listed(service) == []
                assert "TRACE ON" not in screen_text(app)
        finally:
            await service.aclose()


async def test_cannot_trace_is_said_on_the_screen_and_nothing_crashes(tmp_path):
    from ui.data import FakeService  # the lab captures, no MI behind: no trace_session either

    app = create_app(FakeService(), interval=3600)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        await select_first_call(app, pilot)
        await pilot.press("T")
        await calm(app, pilot)
        assert isinstance(app.screen, TraceScreen)
        assert "cannot trace: this console's service offers no SIP trace" in screen_text(app)
        assert "TRACE ON" not in screen_text(app)
        await pilot.press("escape")
        await calm(app, pilot)
        assert not isinstance(app.screen, TraceScreen) and app.return_code is None
