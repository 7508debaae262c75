"""`opsconsole diagnose` wall time: median of N runs, against bare `python -c pass`.

Run by hand against a platform (the demo by default):
    .venv/bin/python bench/bench_diagnose.py            # starts the demo platform in a child process
    .venv/bin/python bench/bench_diagnose.py --mi-url http://127.0.0.1:8888/mi --ng 127.0.0.1:2223 --cli 127.0.0.1:9900
Target: ≤ 0.5 s on a healthy local platform.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def start_demo() -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "opsconsole_demo", "--json"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    info = json.loads(line)
    target = ["--mi-url", info["mi_url"], "--ng", f"{info['ng'][0]}:{info['ng'][1]}",
              "--cli", f"{info['cli'][0]}:{info['cli'][1]}"]
    return proc, target


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("target", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    demo = None
    target = args.target
    if not target:
        demo, target = start_demo()
        time.sleep(2)  # let the demo place its calls
    try:
        cmd = [sys.executable, "-m", "console", "diagnose", "--json", *target]
        timed(cmd)  # warm the page cache
        runs = [timed(cmd) for _ in range(args.n)]
        bare = [timed([sys.executable, "-c", "pass"]) for _ in range(args.n)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        data = json.loads(out.stdout)
        slowest = sorted(data["checks"], key=lambda c: -c["elapsed_ms"])[:3]
        print(f"diagnose median {statistics.median(runs) * 1000:.0f} ms (min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f}) "
              f"over {args.n} runs; bare python -c pass median {statistics.median(bare) * 1000:.0f} ms; "
              f"in-process elapsed {data['elapsed_ms']:.0f} ms; status {data['status']}")
        print("slowest checks:", ", ".join(f"{c['id']} {c['elapsed_ms']:.0f} ms" for c in slowest))
    finally:
        if demo is not None:
            demo.terminate()
            demo.wait(10)


if __name__ == "__main__":
    main()
