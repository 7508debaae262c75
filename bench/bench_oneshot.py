"""One-shot commands at the speed of the wire (#18): `snapshot --json` and `diagnose --json`, whole process,
against a real OpenSIPS 3.4 + RTPengine, next to the yardsticks.

    .venv/bin/python bench/bench_oneshot.py [-n 9] [--before REV] [--sizes 70,10000] [--instances 3,5]

Starts what tests/support starts (RTPengine, OpenSIPS 3.4 with its lab config, sipp UAS/UAC with 5 calls up,
14 contacts over UDP/TCP/WS; every port from the OS; OpenSIPS builds from $OPSCONSOLE_TEST_OPENSIPS, default
~/.cache/opsconsole/opensips), registers more contacts with sipp up to each size (the time it takes is printed),
then runs the commands of one size alternately, n rounds, and prints medians of wall time, CPU (user+sys) and
peak RSS of each whole process:

- opsconsole `snapshot --json` (this checkout; with --before REV also that revision, from a git worktree run
  with this venv: the A/B pair before/after a change);
- opensips-cli `-x mi ul_dump` (opensipscli from PyPI, in its own venv bench/.venv-yardstick, created if missing);
- a plain `urllib` POST of the same ul_dump + `json.load` (the floor: what fetching and decoding costs in Python);
- `diagnose --json` with 0 and with N extra local OpenSIPS instances (real OpenSIPS processes on ports from
  the OS, stopped by PID), which the host checks and discovery look at.

Bytecode is compiled first and written (PYTHONDONTWRITEBYTECODE is dropped for the children), as after a
pip install.  Targets (#18): diagnose <= 0.25 s whatever the instances; snapshot at 10 000 contacts <= 0.6x
opensips-cli and <= 1.2x urllib + json.load; snapshot at 70 contacts <= 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("OPSCONSOLE_TEST_OPENSIPS", str(Path.home() / ".cache" / "opsconsole" / "opensips"))

from support import opensips_daemon  # noqa: E402
from support.platform import SCENARIOS, SIPP, start_platform  # noqa: E402
from support.rtpengine_daemon import free_port  # noqa: E402

YARDSTICK_VENV = ROOT / "bench" / ".venv-yardstick"
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("OPSCONSOLE_")}
UL_DUMP = b'{"jsonrpc":"2.0","method":"ul_dump","id":1}'
URLLIB_DUMP = ("import json, sys, urllib.request\n"
               "request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST', "
               "headers={'Content-Type': 'application/json', 'Connection': 'close'})\n"
               "with urllib.request.urlopen(request, timeout=60) as reply:\n"
               "    json.load(reply)\n")


# --------------------------------------------------------------------------- running one whole process


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak RSS MiB, exit code) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode


def alternate(commands: dict[str, tuple[list[str], Path, dict[str, str]]], rounds: int) -> dict[str, dict]:
    """Each command once to warm the page cache, then `rounds` rounds of all of them in turn."""
    samples: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in commands}
    for argv, cwd, env in commands.values():
        run_once(argv, cwd, env)
    for _ in range(rounds):
        for name, (argv, cwd, env) in commands.items():
            samples[name].append(run_once(argv, cwd, env))
    return {name: {"wall": statistics.median(s[0] for s in runs), "cpu": statistics.median(s[1] for s in runs),
                   "rss": max(s[2] for s in runs), "min": min(s[0] for s in runs), "codes": sorted({s[3] for s in runs})}
            for name, runs in samples.items()}


def show(results: dict[str, dict], title: str) -> None:
    print(f"\n{title}")
    for name, r in results.items():
        print(f"  {name:<34} {r['wall'] * 1000:7.0f} ms wall (min {r['min'] * 1000:4.0f})  {r['cpu'] * 1000:6.0f} ms cpu"
              f"  {r['rss']:5.0f} MiB peak  exit {','.join(map(str, r['codes']))}")


def ratio(results: dict[str, dict], a: str, b: str) -> str:
    return f"{a} / {b}: {results[a]['wall'] / results[b]['wall']:.2f}"


# --------------------------------------------------------------------------- the commands


def opsconsole(checkout: Path, *argv: str) -> tuple[list[str], Path, dict[str, str]]:
    """This checkout's console, or an older revision's from its worktree (its modules first on the path)."""
    env = dict(CHILD_ENV)
    if checkout != ROOT:
        env["PYTHONPATH"] = f"{checkout}:{checkout / 'plugins'}"
    return [sys.executable, "-m", "console", *argv], checkout, env


def yardstick_cli() -> Path:
    """opensips-cli from PyPI in the bench's own venv (created on first use)."""
    binary = YARDSTICK_VENV / "bin" / "opensips-cli"
    if not binary.exists():
        print(f"creating {YARDSTICK_VENV} with opensipscli from PyPI ...", flush=True)
        venv.create(YARDSTICK_VENV, with_pip=True)
        subprocess.run([str(YARDSTICK_VENV / "bin" / "pip"), "install", "-q", "opensipscli"], check=True)
    return binary


def yardsticks(mi_url: str, home: Path) -> dict[str, tuple[list[str], Path, dict[str, str]]]:
    env = dict(CHILD_ENV, HOME=str(home))  # no ~/.opensips-cli.cfg of the machine's: the -o options rule
    cli = [str(yardstick_cli()), "-o", "communication_type=http", "-o", f"url={mi_url}", "-x", "mi", "ul_dump"]
    return {"opensips-cli -x mi ul_dump": (cli, home, env),
            "urllib + json.load (ul_dump)": ([sys.executable, "-c", URLLIB_DUMP, mi_url, UL_DUMP.decode()], home, env)}


def compile_bytecode(checkout: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", "console", "plugins"], cwd=checkout, env=CHILD_ENV,
                   stdout=subprocess.DEVNULL, check=False)


def worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="oneshot-before-"))
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True)
    return path


# --------------------------------------------------------------------------- the platform


def contact_count(platform) -> int:
    stats = platform.mi("get_statistics", {"statistics": ["usrloc:"]})
    return int(stats.get("usrloc:location-contacts", 0))


def register(platform, count: int, first: int) -> float:
    """`count` more contacts (one per AoR, UDP, pointing at the sipp UAS) with sipp; seconds it took."""
    rows = [f"b{first + n:06d};127.0.0.1:{platform.uas_ports['udp']};3600;transport=udp;bench-oneshot"
            for n in range(count)]
    csv = platform.workdir / f"bench_users_{first}.csv"
    csv.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    subprocess.run([SIPP, "-sf", str(SCENARIOS / "register.xml"), "-i", "127.0.0.1", "-t", "u1", "-nostdin",
                    "-cp", str(free_port(socket.SOCK_DGRAM)), f"127.0.0.1:{platform.opensips.sip_port}",
                    "-inf", str(csv), "-m", str(count), "-r", "2000", "-l", "400", "-p", str(free_port()),
                    "-cid_str", f"bench-{first}-%u-%p@%s", "-nd", "-timeout", "120s"],
                   cwd=platform.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=180)
    return time.perf_counter() - started


def fill_to(platform, size: int) -> None:
    have = contact_count(platform)
    if have >= size:
        return
    seconds = register(platform, size - have, first=have)
    print(f"\nregistered {size - have} contacts with sipp in {seconds:.1f} s "
          f"({(size - have) / seconds:.0f}/s); OpenSIPS now holds {contact_count(platform)}", flush=True)


def extra_instances(count: int, already: list) -> list:
    """Real OpenSIPS 3.4 processes (the lab config, ports from the OS) until `count` run."""
    while len(already) < count:
        dead_relay = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        already.append(opensips_daemon.start_opensips("3.4", rtpengine_sock=dead_relay, events=False))
    return already


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=9, help="rounds (medians of this many runs each)")
    parser.add_argument("--before", metavar="REV", help="also run this git revision's console (A/B)")
    parser.add_argument("--sizes", default="70,10000", help="contact counts, ascending")
    parser.add_argument("--instances", default="3,5", help="extra local OpenSIPS instances for diagnose")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    instances = [int(s) for s in args.instances.split(",") if s]
    opensips_daemon.INSTALL_DIR = os.environ["OPSCONSOLE_TEST_OPENSIPS"]
    before = worktree(args.before) if args.before else None
    home = Path(tempfile.mkdtemp(prefix="oneshot-home-"))
    platform = extras = None
    try:
        for checkout in filter(None, (ROOT, before)):
            compile_bytecode(checkout)
        yardstick_cli()
        started = time.perf_counter()
        platform = start_platform("3.4")
        print(f"platform up in {time.perf_counter() - started:.1f} s: OpenSIPS 3.4 {platform.mi_url}, RTPengine ng "
              f"{platform.ng[0]}:{platform.ng[1]}, {platform.expected_dialogs} calls up", flush=True)
        target = platform.target_args(timeout=10.0)
        versions = {"after": ROOT} | ({f"before ({args.before})": before} if before else {})
        extras = []
        for size in sizes:
            fill_to(platform, size)
            commands = {f"opsconsole snapshot --json, {name}": opsconsole(path, "snapshot", "--json", *target)
                        for name, path in versions.items()} | yardsticks(platform.mi_url, home)
            results = alternate(commands, args.n)
            show(results, f"snapshot at {contact_count(platform)} contacts, medians of {args.n}")
            for name in versions:
                ours = f"opsconsole snapshot --json, {name}"
                print("  " + ratio(results, ours, "opensips-cli -x mi ul_dump") + "   "
                      + ratio(results, ours, "urllib + json.load (ul_dump)"))
            if size == sizes[0]:
                for count in [0, *instances]:
                    extras = extra_instances(count, extras)
                    running = sum(1 for _ in Path("/proc").glob("[0-9]*/comm")
                                  if _.read_text(errors="replace").strip() == "opensips") if count else None
                    commands = {f"opsconsole diagnose --json, {name}": opsconsole(path, "diagnose", "--json", *target)
                                for name, path in versions.items()}
                    where = f"{count} extra local OpenSIPS instances ({running} opensips processes on the host)" \
                        if count else "no extra OpenSIPS instance"
                    show(alternate(commands, args.n), f"diagnose, {where}, medians of {args.n}")
                for daemon in extras:  # the next size's snapshots see the platform alone again
                    daemon.cleanup()
                extras = []
    finally:
        for daemon in extras or []:
            daemon.cleanup()
        if platform is not None:
            platform.close()
        shutil.rmtree(home, ignore_errors=True)
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
