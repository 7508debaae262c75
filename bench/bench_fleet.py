#!/usr/bin/env python3
"""CPU of the real console watching a fleet of demo nodes (#16: 20 nodes on a 2-core VM).

Two measurements, each of the real `opsconsole` in a detached tmux session (a real terminal, the
default 2 s poll), CPU of the opsconsole process over `--seconds` (psutil) per screen asked:

1. console only: the N demo nodes (opsconsole_demo.fleet.DemoFleet, simulated RTPengines) run in a
   child process; the console watches them through a config file of N [[targets]].  The child
   reports the MI requests each node served, so the MI requests/s of the console are printed too
   (the focused node's and the N-1 others').
2. all in one: `opsconsole --demo --demo-nodes N`, simulators included (what a user runs).

(bench/bench_fleet_polling.py counts the same requests headless, without the TUI.)

    .venv/bin/python bench/bench_fleet.py [--nodes 20] [--seconds 30] [--screens 0,1] [--skip-all-in-one]

Every process it starts (demo child, tmux sessions) is stopped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tui_cpu import OPSCONSOLE, PYTHON, ROOT, TmuxApp  # noqa: E402

SCREENS = {"0": "fleet", "1": "overview", "2": "registrations", "3": "calls", "4": "media"}


# --------------------------------------------------------------------------- the demo child


def serve_fleet(nodes: int) -> None:
    """Child process: N demo nodes; their targets as one JSON line, then for each line read from
    stdin the MI requests every node has served so far (a JSON list), until SIGTERM."""
    from opsconsole_demo.fleet import DemoFleet

    async def serve() -> None:
        async with DemoFleet(nodes, real_rtpengine=False) as fleet:
            targets = [{"name": t.name, "mi_url": t.mi_url, "ng": list(t.ng), "cli": list(t.cli),
                        "labels": dict(t.labels)} for t in fleet.targets()]
            print(json.dumps(targets), flush=True)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

            async def answer() -> None:
                while await reader.readline():
                    print(json.dumps([p.server.requests_served for p in fleet.platforms]), flush=True)

            task = loop.create_task(answer())
            await stop.wait()
            task.cancel()

    asyncio.run(serve())


@contextlib.contextmanager
def fleet_child(nodes: int) -> Iterator[tuple[list[dict], subprocess.Popen]]:
    child = subprocess.Popen([PYTHON, __file__, "--serve-fleet", str(nodes)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"demo fleet did not start (exit {child.poll()})")
        yield json.loads(line), child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def served(child: subprocess.Popen) -> list[int]:
    child.stdin.write("?\n")
    child.stdin.flush()
    return json.loads(child.stdout.readline())


def targets_toml(targets: list[dict]) -> str:
    blocks = []
    for t in targets:
        labels = ", ".join(f'{k} = "{v}"' for k, v in t["labels"].items())
        blocks.append(f'[[targets]]\nname = "{t["name"]}"\nmi_url = "{t["mi_url"]}"\n'
                      f'ng = {json.dumps(t["ng"])}\ncli = {json.dumps(t["cli"])}\nlabels = {{ {labels} }}\n')
    return "\n".join(blocks)


class Console(TmuxApp):
    """opsconsole with the given arguments in a detached tmux session."""

    def __init__(self, arguments: list[str], width: int = 160, height: int = 45) -> None:
        self.session = f"bench-fleet-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                        OPSCONSOLE, *arguments], check=True, cwd=ROOT)
        self.process = self._find_app()


@contextlib.contextmanager
def console(arguments: list[str]) -> Iterator[Console]:
    app = Console(arguments)
    try:
        yield app
    finally:
        app.close()


# --------------------------------------------------------------------------- measurements


def sample(app: Console, args: argparse.Namespace, child: subprocess.Popen | None, label: str) -> None:
    for key in args.screens.split(","):
        app.keys(key)
        time.sleep(args.warmup)
        before = served(child) if child is not None else None
        started = time.monotonic()
        percent = app.cpu_percent(args.seconds)
        line = f"{label}: screen {key} {SCREENS.get(key, key):<13} {percent:5.2f} % of one core over {args.seconds:.0f} s"
        if before is not None:
            after, elapsed = served(child), time.monotonic() - started
            rates = [(a - b) / elapsed for a, b in zip(after, before)]
            line += (f"; MI {sum(rates):.2f} requests/s in all (focused node {rates[0]:.2f}/s, the other "
                     f"{len(rates) - 1} {sum(rates[1:]):.2f}/s, {sum(rates[1:]) / max(1, len(rates) - 1):.2f}/s each)")
        print(line, flush=True)
    print(f"{label}: RSS {app.rss_mb():.0f} MB", flush=True)


def fleet_shown(app: Console, nodes: int) -> None:
    app.wait_for("opsconsole", 30)
    app.keys("0")
    if not app.wait_for(f"{nodes} nodes", 60):
        raise RuntimeError("the Fleet screen never showed every node:\n" + app.screen())


def console_only(args: argparse.Namespace) -> None:
    with fleet_child(args.nodes) as (targets, child), tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "fleet.toml"
        config.write_text(targets_toml(targets))
        with console(["--config", str(config)]) as app:
            fleet_shown(app, args.nodes)
            time.sleep(args.warmup)
            sample(app, args, child, f"console only, {args.nodes} nodes")


def all_in_one(args: argparse.Namespace) -> None:
    with console(["--demo", "--demo-nodes", str(args.nodes)]) as app:
        fleet_shown(app, args.nodes)
        time.sleep(args.warmup)
        sample(app, args, None, f"--demo --demo-nodes {args.nodes} (simulators in the process)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-fleet"]:
        serve_fleet(int(argv[1]))
        return 0
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU sampling window per screen")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds after a key before sampling")
    parser.add_argument("--screens", default="0,1", help="comma-separated screen keys to sample")
    parser.add_argument("--skip-all-in-one", action="store_true")
    parser.add_argument("--skip-console-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_console_only:
        console_only(args)
    if not args.skip_all_in_one:
        all_in_one(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
