"""The Trace screen under a burst of HEP: how many messages arrive, and the console's CPU to show them.

Runs the real app headless on the demo (its simulated OpenSIPS starts the trace), presses `T` on a call,
then sends `--messages` HEPv3 datagrams (INVITEs of `--messages`/10 Call-IDs from 4 endpoints) to the
screen's HEP listener as fast as one sender can, and waits until no new row came for a second.  Prints
how many arrived (the rest was dropped by the kernel's UDP buffer or the listener's queue), the wall and
CPU time until the last one was shown, and the process's peak RSS.

    .venv/bin/python bench/bench_trace_tui.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from console.config import Config  # noqa: E402
from console.service import ConsoleService  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.trace_screen import TraceScreen  # noqa: E402
from opsconsole_demo import DemoPlatform  # noqa: E402
from opsconsole_demo.tracer import Message, hep_frame  # noqa: E402
from textual.widgets import DataTable  # noqa: E402


async def pause(pilot, rounds: int = 10) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await asyncio.sleep(0.01)


def frames(count: int, at: float) -> list[bytes]:
    out = []
    for n in range(count):
        text = (f"INVITE sip:b@127.0.0.1 SIP/2.0\r\nCall-ID: bench-{n // 10}\r\nCSeq: 1 INVITE\r\n"
                "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nContent-Length: 0\r\n\r\n")
        out.append(hep_frame(Message(("127.0.0.1", 6000 + n % 4), ("127.0.0.1", 5060), False, text, "a", "b",
                                     "127.0.0.1"), at + n / 10_000))  # one time each: identical copies are deduplicated
    return out


async def run(count: int, home: Path) -> None:
    async with DemoPlatform(size=20, real_rtpengine=False, tick=None) as demo:
        service = ConsoleService(Config(mi_url=demo.mi_url, ng=demo.ng, cli=demo.cli, audit_log=str(home / "audit.log")))
        app = create_app(service, interval=3600)
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                await pause(pilot)
                await pilot.press("3")
                await pause(pilot)
                app.query_one("#calls-table", DataTable).focus()
                await pilot.press("T")
                screen = app.screen
                assert isinstance(screen, TraceScreen)
                while not screen.live.active:
                    await pause(pilot, 2)
                port = screen.live.session.listener.port
                burst = frames(count, demo.clock())
                cpu0, wall0 = time.process_time(), time.perf_counter()
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    for number, frame in enumerate(burst):
                        sock.sendto(frame, ("127.0.0.1", port))
                        if number % 100 == 99:
                            await asyncio.sleep(0)
                last, quiet_since = -1, time.perf_counter()
                while time.perf_counter() - quiet_since < 1.0:
                    await asyncio.sleep(0.02)
                    if len(screen.live.rows) != last:
                        last, quiet_since = len(screen.live.rows), time.perf_counter()
                cpu = time.process_time() - cpu0  # includes the quiet second (the screen idles: ~no CPU)
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{len(screen.live.rows)} of {count} messages shown in {quiet_since - wall0:.2f} s "
                      f"({cpu:.2f} s CPU, {cpu / max(1, len(screen.live.rows)) * 1000:.1f} ms each); "
                      f"listener dropped {screen.live.session.listener.dropped}; peak RSS {rss:.0f} MB")
                await pilot.press("escape")
                await pause(pilot)
        finally:
            await service.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.messages, Path(tempfile.mkdtemp(prefix="bench-trace-"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
