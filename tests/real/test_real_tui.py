"""The TUI (Textual Pilot) on a real OpenSIPS (3.4, 4.0) + RTPengine: what the screens say is what the daemons say.

1. Truth over time: the Registrations, Calls and Overview screens, read again and again while the console polls
   every INTERVAL_S and registrations and calls come and go, agree with OpenSIPS (dlg_list, get_statistics,
   ul_dump) and RTPengine (ng list) asked directly around each read (tui_truth.TruthSampler); no NO DIALOG /
   NO MEDIA for a call both daemons have, no transport counts of 0 next to registered contacts.
2. The Checks screen equals `diagnose --json`: healthy and for each fault (fault_setups), the same status for every
   check id, and the fault's finding on the screen.  Two allowances, each said where it is made: a host-wide
   check (HOST_WIDE) when another rtpengine on this host came or went between the two.  The calls.* checks
   agree too: a checks poll queries every media session's legs (up to the live session's cap), as diagnose does.

Only stable surfaces: create_app, Pilot keys, the terminal text; the daemons through their own interfaces.
Platforms are this test's own (start_real_platform): the churn and the faults leave the session platform alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import pytest

from console.config import load_config
from console.plugins import load_plugins
from console.service import ConsoleService
from console.ui.app import create_app
from real import fault_setups
from real.conftest import checks_by_id, lab_config
from real.tui_truth import (TruthSampler, calls_screen, checks_screen, host_rtpengines, overview_screen,
                            registrations_screen)
from support.platform import (BIND_ATTEMPTS, TCP_USERS, UDP_USERS, WS_USERS, _csv, _lost_the_port, _run_sipp, _sipp,
                              _spawn_sipp, stop_process)
from support.rtpengine_daemon import free_port
from ui.helpers import screen_text, settle

pytestmark = pytest.mark.opensips

SIZE = (200, 60)        # every row of the lab's tables fits: no scrolling, no filter
INTERVAL_S = 0.5        # the console's poll interval during the churn
CHURN_S = 30.0          # how long the screens are watched (60 s found nothing more; CI time)
READ_EVERY_S = 0.7      # one screen read per step, cycling Registrations, Calls, Overview
WINDOW_S = 3.0          # a read is judged against the daemons' answers from this long before it to right after


# ------------------------------------------------------------ the console under test


def build_service(platform, opsconsole, config: str = "", timeout: float = 3.0) -> ConsoleService:
    """The service the `opsconsole` command builds: explicit targets, the runner's config file, its HOME."""
    opsconsole.config_path.write_text(lab_config(config))  # what the runner writes: `diagnose` reads this file
    plugins = load_plugins()
    sections = {s for p in plugins.plugins for s in getattr(p, "config_sections", None) or ()}
    overrides = {"mi_url": platform.mi_url, "ng": platform.ng, "cli": platform.cli, "timeout": timeout}
    return ConsoleService(load_config(overrides, config_file=str(opsconsole.config_path), plugin_sections=sections),
                          plugins=plugins)


# ------------------------------------------------------------ churn: registrations and calls that come and go


class Churn:
    """Traffic of its own (own users and Call-IDs) on a platform, step by step, in a thread."""

    def __init__(self, platform) -> None:
        self.platform = platform
        self.stopped = threading.Event()  # the test ended early: the remaining steps are skipped
        self.sip = f"127.0.0.1:{platform.opensips.sip_port}"
        self.calls: list = []
        self.done: list[str] = []

    def register(self, name: str, transport: str, users: list[str], expires: int) -> None:
        contact = f"127.0.0.1:{self.platform.uas_ports[transport]}"
        rows = [f"{u};{contact};{expires};transport={transport};churn-{name}" for u in users]
        csv = _csv(self.platform, f"churn_{name}.csv", rows)
        flag = "u1" if transport == "udp" else "t1"
        _run_sipp(self.platform, f"churn_{name}", _sipp(self.platform, f"churn_{name}", "register.xml", flag, [
            self.sip, "-inf", str(csv), "-m", str(len(rows)), "-r", "50", "-p", str(free_port()),
            "-cid_str", f"churn-{name}-%u-%p@%s", "-nd", "-timeout", "20s"]))
        self.done.append(f"{name}: {transport} {users} expires {expires}")

    def call(self, name: str, transport: str, caller: str, callee: str, hold_s: float) -> None:
        """A call that hangs up by itself (BYE) after hold_s."""
        csv = _csv(self.platform, f"churn_{name}.csv", [f"{caller};{callee}"])
        flag = "u1" if transport == "udp" else "t1"
        role = f"churn_{name}"
        for attempt in range(BIND_ATTEMPTS):  # a port from the OS may be taken before sipp binds it (errno 98)
            process = _spawn_sipp(self.platform, role, _sipp(self.platform, role, "uac_call.xml", flag, [
                self.sip, "-inf", str(csv), "-m", "1", "-r", "1", "-p", str(free_port()), "-mi", "127.0.0.1",
                "-mp", str(free_port()), "-d", str(int(hold_s * 1000)), "-cid_str", f"churn-{name}-%u-%p@%s"]))
            deadline = time.monotonic() + 0.3  # sipp binds at once: a lost port shows within this
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if process.poll() is None or attempt + 1 == BIND_ATTEMPTS or not _lost_the_port(self.platform, role):
                break
            self.platform.processes.remove(process)
            (self.platform.workdir / f"sipp_{role}_err.log").unlink(missing_ok=True)
        self.calls.append(process)
        self.done.append(f"{name}: {transport} call {caller}->{callee} for {hold_s} s")

    def run(self, scale: float) -> None:
        """The schedule, in fractions of the watch: every kind of change happens while the screens are read."""
        steps = [
            (0.05, lambda: self.register("reg_udp", "udp", ["1200", "1201"], 3600)),
            (0.08, lambda: self.register("reg_tcp", "tcp", ["3100"], 3600)),
            (0.12, lambda: self.register("short", "udp", ["1202"], 10)),        # expires on its own
            (0.15, lambda: self.call("call_a", "udp", "1002", "1003", 0.35 * scale)),
            (0.35, lambda: self.register("unreg_udp", "udp", ["1200"], 0)),     # Expires: 0
            (0.40, lambda: self.register("unreg_tcp", "tcp", ["3100"], 0)),
            (0.55, lambda: self.call("call_b", "tcp", "3001", "3002", 0.25 * scale)),
            (0.65, lambda: self.register("late", "udp", ["1203"], 3600)),
            (0.80, lambda: self.register("unreg_late", "udp", ["1201", "1203"], 0)),
        ]
        start = time.monotonic()
        for at, step in steps:
            if self.stopped.wait(max(0.0, start + at * scale - time.monotonic())):
                return
            step()

    def wait_calls_ended(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.calls:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                stop_process(process)
                raise
            assert process.returncode == 0, f"churn call sipp exit {process.returncode}"


# ------------------------------------------------------------ judging one read


def _between(value: int, values: list[int]) -> bool:
    return min(values) <= value <= max(values)


def _within(value: int, ranges: list[tuple[int, int]]) -> bool:
    return min(low for low, _ in ranges) <= value <= max(high for _, high in ranges)


def judge_calls(text: str, moment: list) -> list[str]:
    screen, problems = calls_screen(text), []
    for caller, callee in screen.no_media_rows:
        if not any((caller, callee) == s.dialogs[cid] for s in moment for cid in s.dialogs_without_media):
            problems.append(f"NO MEDIA on {caller}->{callee}, which RTPengine had all along")
    for shown in screen.no_dialog_rows:
        if not any(cid.startswith(shown) for s in moment for cid in s.media_without_dialog):
            problems.append(f"NO DIALOG on {shown}, which OpenSIPS had all along")
    if screen.calls is not None:
        if not _between(screen.calls, [s.calls for s in moment]):
            problems.append(f"{screen.calls} calls shown, the daemons had {sorted({s.calls for s in moment})}")
        if screen.without_media > max(len(s.dialogs_without_media) for s in moment):
            problems.append(f"{screen.without_media} without media shown; dialogs without a session: "
                            f"{[sorted(s.dialogs_without_media) for s in moment]}")
        if screen.without_dialog > max(len(s.media_without_dialog) for s in moment):
            problems.append(f"{screen.without_dialog} media without dialog shown; sessions without a dialog: "
                            f"{[sorted(s.media_without_dialog) for s in moment]}")
    return problems


def judge_registrations(text: str, moment: list) -> list[str]:
    screen, problems = registrations_screen(text), []
    if screen.contacts is not None:
        if not _within(screen.contacts, [s.contact_range() for s in moment]):
            problems.append(f"{screen.contacts} contacts shown, ul_dump had {sorted({s.contact_range() for s in moment})}")
        for transport in ("UDP", "TCP", "WS"):
            truth = [s.contact_range(transport) for s in moment]
            if not _within(screen.rows_by_transport[transport], truth):
                problems.append(f"{screen.rows_by_transport[transport]} {transport} rows shown, ul_dump had {truth}")
    return problems


def judge_overview(text: str, moment: list) -> list[str]:
    screen, problems = overview_screen(text), []
    if screen.active_dialogs is not None and not _between(screen.active_dialogs,
                                                          [s.active_dialogs for s in moment]):
        problems.append(f"{screen.active_dialogs} active dialogs shown, statistics {[s.active_dialogs for s in moment]}")
    if screen.registered is not None and not _between(screen.registered, [s.registered for s in moment]):
        problems.append(f"registered {screen.registered} shown, statistics {[s.registered for s in moment]}")
    if screen.by_transport is not None:
        if screen.registered and not any(screen.by_transport.values()):
            problems.append(f"transport counts all 0 next to registered {screen.registered}")
        for transport in ("UDP", "TCP", "WS"):
            truth = [s.contact_range(transport) for s in moment]
            if not _within(screen.by_transport[transport], truth):
                problems.append(f"by transport {transport} {screen.by_transport[transport]} shown, ul_dump {truth}")
    # UNKNOWN is allowed: a check comparing lists of different polls says so (no finding); WARN/FAIL is not.
    if screen.checks is not None and screen.checks.startswith(("WARN", "FAIL")):
        problems.append(f"Checks {screen.checks} on a healthy platform")
    if screen.sessions is not None and not _between(screen.sessions, [len(s.media) for s in moment]):
        problems.append(f"{screen.sessions} media sessions shown, ng list {[len(s.media) for s in moment]}")
    return problems


JUDGES = {"2": judge_registrations, "3": judge_calls, "1": judge_overview}


# ------------------------------------------------------------ 1. truth over time


async def test_screens_agree_with_the_daemons_while_traffic_comes_and_goes(start_real_platform, opsconsole):
    platform = await asyncio.to_thread(start_real_platform)
    churn = Churn(platform)
    service = build_service(platform, opsconsole)
    app = create_app(service, interval=INTERVAL_S, allow_write=False)
    reads: list[tuple[str, float, float, str]] = []  # (screen key, before, after, text)
    try:
        with TruthSampler(platform) as sampler:
            async with app.run_test(size=SIZE) as pilot:
                traffic = asyncio.create_task(asyncio.to_thread(churn.run, CHURN_S))
                started, keys = time.monotonic(), "1" + "23" * 3  # the first read: the first frame
                step = 0
                while time.monotonic() - started < CHURN_S or not traffic.done():
                    key = keys[step % len(keys)]
                    await pilot.press(key)
                    before = time.monotonic()
                    await pilot.pause()
                    reads.append((key, before, time.monotonic(), screen_text(app)))
                    step += 1
                    await asyncio.sleep(READ_EVERY_S)
                await traffic  # a failed churn step fails here
                await pilot.press("5")  # the checks behind the Overview's Checks box, for the report
                await settle(app, pilot)
                checks_text = screen_text(app)
            await asyncio.to_thread(churn.wait_calls_ended)
            await asyncio.to_thread(sampler.wait_past, time.monotonic())
    finally:
        churn.stopped.set()
        await service.aclose()

    assert not sampler.errors, sampler.errors[:3]
    problems = []
    for key, before, after, text in reads:
        moment = sampler.around(before - WINDOW_S, after + 0.5)
        for problem in JUDGES[key](text, moment):
            problems.append(f"screen {key} at +{before - reads[0][1]:.1f} s: {problem}")
    counted = {k: sum(1 for r in reads if r[0] == k) for k in JUDGES}
    calls_reads = [calls_screen(t) for k, _, _, t in reads if k == "3"]
    shown = [c.calls for c in calls_reads]
    print(f"OpenSIPS {platform.version}: {len(reads)} reads {counted}, {len(sampler.samples)} daemon samples; "
          f"calls shown {sorted(set(c for c in shown if c is not None))}, "
          f"{sum(c.calls is None for c in calls_reads)} Calls reads without counts yet, "
          f"{sum(c.not_matched > 0 for c in calls_reads)} with calls not matched yet; "
          f"{sum((overview_screen(t).checks or '').startswith('UNKNOWN') for k, _, _, t in reads if k == '1')} "
          f"Overview reads with Checks UNKNOWN; "
          f"most expired contacts in ul_dump {max(s.expired for s in sampler.samples)}; churn: {churn.done}")
    assert not problems, "\n".join(problems[:15]) + "\nThe Checks screen at the end:\n" + checks_text
    # Every read after the first frame showed its numbers (a changed layout must not make this test vacuous).
    for key, _, _, text in reads[1:]:
        parsed = {"1": overview_screen, "2": registrations_screen, "3": calls_screen}[key](text)
        assert None not in vars(parsed).values(), f"screen {key} not understood: {parsed}\n{text}"
    # The churn showed on screen: the extra call and the extra contacts were seen (the reads were no idle loop).
    assert max(c for c in shown if c is not None) > platform.expected_dialogs
    lab_contacts = len(UDP_USERS) + 1 + len(TCP_USERS) + len(WS_USERS)  # + the hostile user's
    assert max(registrations_screen(t).contacts or 0 for k, _, _, t in reads if k == "2") > lab_contacts


# ------------------------------------------------------------ 2. the Checks screen equals diagnose


# Checks whose verdict looks at every rtpengine on the host (kernel tables they want), not only the target's.
HOST_WIDE = ("kernel.xt_rtpengine",)
STALE_RERUNS = 5  # R again while a check says its data are not from one poll (its remedy: "R re-runs the checks")


def stale_rows(text: str) -> list[str]:
    """UNKNOWN rows about data of an older poll ('... 2.1 s old', 'not from one moment'): no verdict yet."""
    return [line.strip() for line in text.splitlines()
            if line.lstrip().startswith("UNKNOWN") and (" s old" in line or "not from one moment" in line)]


async def checks_after_rerun(app, pilot, interval: float) -> tuple[dict[str, str], str, list[str]]:
    """The Checks screen after R; R again (a poll later) while a check waits for a complete poll."""
    await pilot.press("5")
    await settle(app, pilot)
    waited: list[str] = []
    for _ in range(STALE_RERUNS):
        await pilot.press("R")  # re-run (r reverses the list, #14)
        await settle(app, pilot)
        text = screen_text(app)
        stale = stale_rows(text)
        if not stale:
            break
        waited += stale
        await asyncio.sleep(interval)
    return checks_screen(text), text, waited


async def diagnose_command(platform, opsconsole, fault) -> tuple[int, dict]:
    """`opsconsole diagnose --json` as a command of its own, at the same moment, with the same config and HOME
    (the runner's environment).  Not in-process: the running app holds this process's stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "diagnose", "--json", *platform.target_args(fault.timeout),
        "--config", str(opsconsole.config_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert out, err.decode(errors="replace")
    return process.returncode, json.loads(out)


async def run_console_and_diagnose(platform, opsconsole, fault) -> tuple[dict, dict, str, dict[str, str]]:
    """The console on the platform; the fault injected while it runs; then the Checks screen (r) and diagnose."""
    service = build_service(platform, opsconsole, fault.config, fault.timeout)
    app = create_app(service, interval=fault.interval, allow_write=False)
    screens: dict[str, str] = {}
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await asyncio.to_thread(fault.inject, platform)
            await asyncio.sleep(fault.interval * 2 + fault.timeout)  # polls that saw the fault
            await settle(app, pilot)
            rtpengines = host_rtpengines()
            on_screen, checks_text, waited = await checks_after_rerun(app, pilot, fault.interval)
            code, report = await diagnose_command(platform, opsconsole, fault)
            host_changed = host_rtpengines() != rtpengines
            for key in fault.screens:
                await pilot.press(key)
                await settle(app, pilot)
                screens[key] = screen_text(app)
    finally:
        await service.aclose()
    screens["5"] = checks_text
    if waited:
        print(f"{fault.name}: r again after {waited}")
    if host_changed:  # another rtpengine on this host started or ended between the two: not one moment
        print(f"{fault.name}: rtpengines on this host changed; {HOST_WIDE} not compared")
        for cid in HOST_WIDE:
            on_screen.pop(cid, None)
            checks_by_id(report).get(cid, {})["status"] = None
    return on_screen, report, code, screens


CALL_MEDIA_CHECKS = ("calls.one_way", "calls.quality", "calls.silent")


@pytest.mark.parametrize("fault", fault_setups.FAULTS, ids=[f.name for f in fault_setups.FAULTS])
async def test_checks_screen_equals_diagnose(fault, start_real_platform, opsconsole):
    platform = await asyncio.to_thread(start_real_platform, **fault.start_options())
    on_screen, report, code, screens = await run_console_and_diagnose(platform, opsconsole, fault)
    diagnosed = {cid: check["status"] for cid, check in checks_by_id(report).items() if check["status"]}
    print(f"OpenSIPS {platform.version} {fault.name}: screen {on_screen}")
    assert on_screen, screens["5"]
    differ = sorted(c for c in on_screen.keys() | diagnosed.keys() if on_screen.get(c) != diagnosed.get(c))
    assert not differ, "Checks screen vs diagnose:\n" + "\n".join(
        f"{c}: screen {on_screen.get(c)}, diagnose {diagnosed.get(c)}: {checks_by_id(report).get(c, {}).get('summary')}"
        for c in differ) + "\n" + screens["5"]
    fault.expect(platform, on_screen, checks_by_id(report), screens)
    assert code == fault.exit_code


async def test_checks_screen_judges_call_media_like_diagnose(start_real_platform, opsconsole):
    platform = await asyncio.to_thread(start_real_platform)
    fault = fault_setups.FAULTS[0]  # healthy
    on_screen, report, code, screens = await run_console_and_diagnose(platform, opsconsole, fault)
    diagnosed = {cid: check["status"] for cid, check in checks_by_id(report).items()}
    assert {c: diagnosed[c] for c in CALL_MEDIA_CHECKS} == {c: "ok" for c in CALL_MEDIA_CHECKS}, report
    assert {c: on_screen.get(c) for c in CALL_MEDIA_CHECKS} == {c: diagnosed[c] for c in CALL_MEDIA_CHECKS}, \
        screens["5"]
