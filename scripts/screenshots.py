#!/usr/bin/env python3
"""Regenerate screenshots/<n>-<name>.svg: one per TUI screen, from the real app.

Deterministic: a fake service answering with the lab captures
(tests/fixtures/ui), a frozen clock, no background polling.  The Fleet screen (8-fleet) is shot on
the demo's own nodes (`--demo --demo-nodes 6`, simulated RTPengines; its ports and ages vary); the Trace
screen (9-trace) on the demo's tracer (`T` on a call: the call it places for the traced user, to its ACK).

    .venv/bin/python scripts/screenshots.py [--size 120x40] [--out screenshots] [--only 8-fleet]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ui.scenes import SCENES, prepare, scene_app  # noqa: E402  (needs the path above)


async def shoot(name: str, keys: tuple[str, ...], size: tuple[int, int], out: Path) -> Path:
    app = scene_app(name)
    async with app.run_test(size=size) as pilot:
        await prepare(keys)(pilot)
        return Path(app.save_screenshot(filename=f"{name}.svg", path=str(out)))


FLEET_SHOT = "8-fleet"


async def shoot_fleet(size: tuple[int, int], out: Path) -> Path:
    """Screen 0 on six demo nodes, each polled once (checks included) before the shot.  The demo
    runs on the real clock: its simulated media counts packets by elapsed time."""
    from console.config import Config
    from console.fleet import FleetSession
    from console.ui.app import create_app
    from opsconsole_demo.fleet import DemoFleet

    async with DemoFleet(6, real_rtpengine=False, tick=None) as demo:
        config = Config(timeout=2.0, audit_log="/dev/null", demo=True, demo_simulated_relay=True,
                        targets=demo.targets())
        fleet = FleetSession(demo.targets(), config, interval=3600)
        try:
            await fleet.poll_once()
            for name in fleet.names:  # a second checks run: the SIP failure share needs two counter samples
                fleet.session(name).request_checks()
            await fleet.poll_once()
            app = create_app(None, fleet=fleet, interval=3600)
            async with app.run_test(size=size) as pilot:
                await prepare(("0",))(pilot)
                return Path(app.save_screenshot(filename=f"{FLEET_SHOT}.svg", path=str(out)))
        finally:
            await fleet.aclose()


TRACE_SHOT = "9-trace"


async def shoot_trace(size: tuple[int, int], out: Path) -> Path:
    """Calls, the first call selected, T: the demo's tracer sends HEP for the call it places for the
    traced user (stepped by hand until its ACK), one poll for the join, then the shot."""
    from textual.widgets import DataTable

    from console.config import Config
    from console.service import ConsoleService
    from console.ui.app import create_app
    from opsconsole_demo import DemoPlatform

    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(Config(mi_url=demo.mi_url, ng=demo.ng, cli=demo.cli, audit_log="/dev/null"))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=size) as pilot:
                await prepare(("3",))(pilot)
                table = app.query_one("#calls-table", DataTable)
                table.focus()
                await pilot.press("T")
                for _ in range(12):  # demo steps until the call's ACK (only stops a hang)
                    await demo.step()
                    await asyncio.sleep(0.3)
                    if any(row.message.label == "ACK" for row in app.screen.live.rows):
                        break
                app.poll_now()
                while app.session.polling or app.session.polls < 2:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.2)  # the screen joins once a second
                await pilot.pause()
                path = Path(app.save_screenshot(filename=f"{TRACE_SHOT}.svg", path=str(out)))
                await pilot.press("escape")  # the trace is stopped before the demo goes
                await pilot.pause()
                return path
        finally:
            await service.aclose()


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(120, 40), help="terminal size, e.g. 120x40")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output directory")
    parser.add_argument("--only", metavar="NAME", action="append",
                        help="only this screenshot (e.g. 8-fleet); repeat for several")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [(name, lambda name=name, keys=keys: shoot(name, keys, args.size, args.out)) for name, keys in SCENES]
    shots.append((FLEET_SHOT, lambda: shoot_fleet(args.size, args.out)))
    shots.append((TRACE_SHOT, lambda: shoot_trace(args.size, args.out)))
    unknown = set(args.only or ()) - {name for name, _ in shots}
    if unknown:
        parser.error(f"no screenshot named {', '.join(sorted(unknown))}; names: {', '.join(n for n, _ in shots)}")
    for name, take in shots:
        if args.only and name not in args.only:
            continue
        path = asyncio.run(take())
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
