#!/usr/bin/env python3
"""CPU and memory of the real TUI, idle-watching a big platform.

The demo platform (10 000 contacts, 1 000 calls, simulated RTPengine) runs in a
child process; the real `opsconsole` runs in a detached tmux session (a real
terminal, the default 2 s poll) against it.  For each screen asked for, the
bench reads the app process's CPU time (psutil) over `--seconds` and prints it
as % of one core (target <= 3 %).  Then, with a 100 000-contact demo, it opens
Registrations, presses S (full sync) and prints the app's RSS once the whole
list is shown (target <= 150 MB).

    .venv/bin/python bench/bench_tui_cpu.py [--seconds 60] [--screens 1,2,3,4] [--skip-rss]

Every process it starts (demo child, tmux session) is stopped by PID / name at
the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
OPSCONSOLE = str(Path(PYTHON).parent / "opsconsole")
CPU_TARGET = 3.0  # % of one core
RSS_TARGET_MB = 150.0
SCREENS = {"1": "overview", "2": "registrations", "3": "calls", "4": "media", "5": "checks", "6": "mi"}


# --------------------------------------------------------------------------- the demo child


def serve_demo(size: int, calls: int, time_scale: float) -> None:
    """Child process: the demo platform, addresses as one JSON line, until SIGTERM."""
    from opsconsole_demo import DemoPlatform

    async def serve() -> None:
        # A reply buffer big enough for a 100k ul_dump (the default imitates OpenSIPS's, which fails).
        async with DemoPlatform(size=size, calls=calls, real_rtpengine=False, time_scale=time_scale,
                                buffer_size=1 << 30) as demo:
            print(json.dumps({"mi_url": demo.mi_url, "ng": list(demo.ng), "cli": list(demo.cli)}), flush=True)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    asyncio.run(serve())


@contextlib.contextmanager
def demo_platform(size: int, calls: int, time_scale: float) -> Iterator[dict]:
    child = subprocess.Popen([PYTHON, __file__, "--serve-demo", str(size), str(calls), str(time_scale)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = child.stdout.readline() if child.stdout else ""
        if not line:
            raise RuntimeError(f"demo platform did not start (exit {child.poll()})")
        yield json.loads(line)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --------------------------------------------------------------------------- the app in tmux


class TmuxApp:
    """opsconsole in a detached tmux session: a real terminal, real rendering."""

    def __init__(self, addresses: dict, width: int = 120, height: int = 40) -> None:
        self.session = f"bench-tui-{uuid.uuid4().hex[:8]}"
        ng, cli = addresses["ng"], addresses["cli"]
        command = [OPSCONSOLE, "--mi-url", addresses["mi_url"], "--ng", f"{ng[0]}:{ng[1]}",
                   "--cli", f"{cli[0]}:{cli[1]}"]
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                        *command], check=True, cwd=ROOT)
        self.process = self._find_app()

    def _find_app(self) -> psutil.Process:
        pane = subprocess.run(["tmux", "display-message", "-p", "-t", self.session, "#{pane_pid}"],
                              capture_output=True, text=True, check=True).stdout.strip()
        root = psutil.Process(int(pane))
        for process in [root, *root.children(recursive=True)]:
            if any("opsconsole" in part for part in process.cmdline()):
                return process
        raise RuntimeError("opsconsole did not start in tmux")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen():
                return True
            time.sleep(0.5)
        return False

    def cpu_percent(self, seconds: float) -> float:
        before, started = self.process.cpu_times(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = self.process.cpu_times(), time.monotonic() - started
        used = (after.user - before.user) + (after.system - before.system)
        return 100.0 * used / elapsed

    def rss_mb(self) -> float:
        return self.process.memory_info().rss / 2**20

    def close(self) -> None:
        """Close the terminal; the app must notice and exit by itself (else: killed, and said)."""
        subprocess.run(["tmux", "kill-session", "-t", self.session], check=False, capture_output=True)
        try:
            self.process.wait(timeout=15)
        except psutil.TimeoutExpired:
            print(f"WARNING: opsconsole (pid {self.process.pid}) did not exit after its terminal closed; killing it",
                  flush=True)
            self.process.kill()
        except psutil.NoSuchProcess:
            pass


@contextlib.contextmanager
def tmux_app(addresses: dict) -> Iterator[TmuxApp]:
    app = TmuxApp(addresses)
    try:
        yield app
    finally:
        app.close()


# --------------------------------------------------------------------------- measurements


def measure_cpu(args: argparse.Namespace) -> list[tuple[str, float]]:
    results = []
    with demo_platform(args.size, args.calls, args.time_scale) as addresses, tmux_app(addresses) as app:
        if not app.wait_for("opensips OK", 30):
            raise RuntimeError("the app never showed opensips OK:\n" + app.screen())
        for key in args.screens.split(","):
            app.keys(key)
            time.sleep(args.warmup)  # first heavy fetch of that screen, index build, GC settle
            percent = app.cpu_percent(args.seconds)
            results.append((SCREENS.get(key, key), percent))
            print(f"screen {key} {SCREENS.get(key, key):<14} {percent:5.2f} % of one core over {args.seconds:.0f} s "
                  f"({'OK' if percent <= CPU_TARGET else 'over target'}; target <= {CPU_TARGET:.0f} %)", flush=True)
        print(f"RSS at {args.size:,} contacts: {app.rss_mb():.0f} MB", flush=True)
    return results


def measure_rss(args: argparse.Namespace) -> float:
    with demo_platform(args.rss_size, args.calls, args.rss_time_scale) as addresses, tmux_app(addresses) as app:
        if not app.wait_for("opensips OK", 30):
            raise RuntimeError("the app never showed opensips OK:\n" + app.screen())
        app.keys("2")
        time.sleep(2)
        app.keys("S")  # above full_sync_max the list comes only on request
        shown = app.wait_for("List COMPLETE", 180)
        time.sleep(2 * 2.0 + 1)  # a couple of polls with the list held
        rss = app.rss_mb()
        cpu = app.cpu_percent(min(args.seconds, 20))
        state = "whole list shown" if shown else "LIST NOT SHOWN (timeout)"
        print(f"RSS with {args.rss_size:,} contacts on Registrations: {rss:.0f} MB ({state}; "
              f"{'OK' if rss <= RSS_TARGET_MB else 'over target'}; target <= {RSS_TARGET_MB:.0f} MB); "
              f"CPU there {cpu:.2f} % of one core", flush=True)
        return rss


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-demo"]:
        serve_demo(int(argv[1]), int(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="CPU sampling window per screen")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds after switching screen before sampling")
    parser.add_argument("--screens", default="1", help="comma-separated screen keys to sample, e.g. 1,2,3,4")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--time-scale", type=float, default=0.05, help="demo ul_dump cost multiplier")
    parser.add_argument("--rss-size", type=int, default=100_000)
    parser.add_argument("--rss-time-scale", type=float, default=0.001)
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is required", file=sys.stderr)
        return 2
    os.environ.setdefault("TERM", "xterm-256color")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanups (tmux session, demo child)
    print(f"opsconsole TUI CPU: demo {args.size:,} contacts, {args.calls:,} calls, default 2 s poll, 120x40 tmux",
          flush=True)
    measure_cpu(args)
    if not args.skip_rss:
        measure_rss(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
