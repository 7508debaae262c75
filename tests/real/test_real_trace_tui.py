"""The TUI's Trace screen against a real OpenSIPS (3.4 and 4.0) with tracer + proto_hep + a hep_udp socket:
`T` on the callee's registration traces (scope transaction) a sipp call and a REGISTER, the screen draws
the ladder (the INVITE transaction on both legs in order, OpenSIPS in the middle column), the join names the callee's registration, and after Esc the
real MI `trace` lists no opsconsole- trace.  The fixtures are test_real_trace's (a sipp UAS, CALLEE
registered at it)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("textual")


from console.config import Config  # noqa: E402
from console.service import ConsoleService  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.panes import ContactTable, RegistrationsPane  # noqa: E402
from console.ui.trace_screen import TraceScreen  # noqa: E402
from ui.helpers import screen_text, settle  # noqa: E402

from .test_real_trace import CALLEE, call, in_order, register, traced  # noqa: E402,F401  (traced: fixture)

pytestmark = pytest.mark.opensips
WAIT_S = 20.0  # only stops a hang; never a speed assertion


async def calm(pilot, rounds: int = 10) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await asyncio.sleep(0.02)


async def wait_for(pilot, condition, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        assert loop.time() < deadline, f"no {what() if callable(what) else what} within {WAIT_S} s"
        await calm(pilot, 2)


async def our_traces(service) -> list[str]:
    listing = await service.mi("trace")
    return [row.get("name", "") for row in listing.get("trace destinations", [])
            if str(row.get("name", "")).startswith("opsconsole-")]


async def test_T_on_a_registration_traces_a_real_call_and_esc_stops_it(traced, tmp_path):
    config = Config(mi_url=traced.mi_url, ng=traced.ng, cli=traced.cli, timeout=5.0,
                    audit_log=str(tmp_path / "audit.log"))
    service = ConsoleService(config)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=(200, 60)) as pilot:
            await settle(app, pilot)
            await pilot.press("2")
            await settle(app, pilot)
            pane = app.query_one(RegistrationsPane)
            table = app.query_one(ContactTable)
            key = next(k for k, contact in pane.shown.items() if contact.aor.split("@")[0] == CALLEE)
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("T")
            screen = app.screen
            assert isinstance(screen, TraceScreen), screen_text(app)
            await wait_for(pilot, lambda: screen.live.active, "trace_start")
            assert len(await our_traces(service)) == 2  # caller=7002 and callee=7002
            assert f"TRACE ON {CALLEE}" in screen_text(app)

            _, callid = await asyncio.to_thread(call, traced)
            status, port = await asyncio.to_thread(register, traced, CALLEE, traced.uas_ports["udp"])
            assert status == 200
            registered = lambda: [r for r in screen.live.rows if r.message.sip.method == "REGISTER"]  # noqa: E731
            rows = lambda: [r for r in screen.live.rows if r.call_id == callid]  # noqa: E731
            # scope transaction: the call's INVITE transaction on both legs (its ACK and BYE are
            # transactions of their own that the filters do not name), and the REGISTER
            await wait_for(pilot, lambda: registered() and sum(
                r.message.label.startswith("200") for r in rows()) >= 2,
                lambda: f"the call's 200 OKs and the REGISTER: {[(r.call_id, r.message.label) for r in screen.live.rows]}")
            proxy = f"127.0.0.1:{traced.opensips.sip_port}"
            caller, callee = rows()[0].message.src, f"127.0.0.1:{traced.uas_ports['udp']}"
            lines = [(r.message.src, r.message.dst, r.message.label) for r in rows()]
            assert in_order([(caller, proxy, "INVITE"), (proxy, caller, "100"), (proxy, caller, "180"),
                             (proxy, caller, "200")], lines), lines
            # OpenSIPS reports the relayed INVITE only after the callee's first reply (test_real_trace)
            assert in_order([(callee, proxy, "180"), (callee, proxy, "200")], lines), lines
            assert in_order([(proxy, callee, "INVITE"), (callee, proxy, "200")], lines), lines
            assert registered()[0].message.src == f"127.0.0.1:{port}"
            await calm(pilot)
            text = screen_text(app)
            header = next(line for line in text.splitlines() if proxy in line and "Time" in line)
            columns = header.split()[2:-1]  # Time, Δ, the endpoints, Call-ID
            assert columns[len(columns) // 2] == proxy, header  # OpenSIPS in the middle
            assert any("INVITE" in line and "▶" in line for line in text.splitlines()), text
            explained = str(screen.query_one("#trace-explain").render())
            assert f"callee {CALLEE}: registered now over UDP" in explained, explained

            await pilot.press("escape")
            await calm(pilot)
            assert not isinstance(app.screen, TraceScreen)
            assert await our_traces(service) == []
            assert "TRACE ON" not in screen_text(app)
    finally:
        await service.aclose()
