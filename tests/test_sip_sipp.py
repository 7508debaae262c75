"""Real SIP from sipp into the demo platform, out through `opsconsole snapshot` / `diagnose`.

The demo runs in its own thread and event loop (console.cli.main calls asyncio.run itself).
Hostile values travel one channel per test; they must come out of `snapshot --json`
unchanged and out of the text renderers escaped (no raw ESC/BEL/NUL/U+202E, markup literal).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from console.cli import main
from opsconsole_demo import DemoPlatform
from console.render.safe import escape_controls
from support.faults import free_port

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).parent / "fixtures" / "sipp"
pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is not installed")

MARKUP = "[bold red]x[/]"
LINK_MARKUP = "[link=https://e.example]y[/link]"
CLEAR_SCREEN = "\x1b[2J"
OSC52 = "\x1b]52;c;aGk=\x07"  # clipboard write
OSC8 = "\x1b]8;;https://e.example\x1b\\link\x1b]8;;\x1b\\"
RLO = "\u202e"
BIG = "B" * 10240
RAW_UNSAFE = ("\x1b", "\x07", "\x00", "\u202e", "\x9b")


class DemoThread:
    """A DemoPlatform (sip=True) in a thread of its own; always stopped by `close`."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.loop = asyncio.new_event_loop()
        self.demo: DemoPlatform | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-sip", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with DemoPlatform(**self.kwargs) as demo:
                self.demo = demo
                self._started.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._started.set()

    def start(self) -> "DemoThread":
        self._thread.start()
        self._started.wait(30)
        if self._error is not None or self.demo is None:
            raise RuntimeError(f"demo platform did not start: {self._error!r}")
        return self

    def call(self, fn, *args, **kwargs):
        """Run fn in the demo's loop (DemoState is not thread-safe) and return its result."""
        async def run():
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        self.loop.close()

    def target_args(self) -> list[str]:
        demo = self.demo
        return ["--mi-url", demo.mi_url, "--ng", f"{demo.ng[0]}:{demo.ng[1]}",
                "--cli", f"{demo.cli[0]}:{demo.cli[1]}", "--timeout", "5"]


@pytest.fixture
def platform():
    demo = DemoThread(size=3, tick=None, real_rtpengine=False, calls=0, sip=True).start()
    try:
        yield demo
    finally:
        demo.close()


def sipp_command(sip: tuple[str, int], workdir: Path, rows: list[str], *, scenario: str = "register_hostile.xml",
                 cid_str: str = "reg-udp-%u-%p@%s", ua_tail: str = "", transport: str = "u1") -> list[str]:
    """sipp registering one user per CSV row (written to workdir) against the demo's SIP port."""
    csv = workdir / f"users_{free_port()}.csv"
    csv.write_bytes(("SEQUENTIAL\n" + "\n".join(rows) + "\n").encode("utf-8"))
    command = [SIPP, "-sf", str(SCENARIOS / scenario), "-inf", str(csv), "-m", str(len(rows)), "-r", "50",
               f"{sip[0]}:{sip[1]}", "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)), "-t", transport,
               "-cid_str", cid_str, "-nostdin", "-nd", "-trace_err", "-timeout", "20s",
               "-cp", str(free_port(socket.SOCK_DGRAM))]  # its control port, 8888 by default, from the OS
    if scenario != "register.xml":
        command += ["-key", "ua_tail", ua_tail]
    return command


def sipp_failure(workdir: Path, returncode: int, output: bytes) -> str:
    errors = "".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    return f"sipp exit {returncode}:\n{output.decode(errors='replace')[-2000:]}\n{errors[-2000:]}"


def run_sipp(platform: DemoThread, workdir: Path, rows: list[str], **options) -> int:
    """Run sipp in the foreground (killed by PID if it hangs); returns its pid (part of the Call-IDs)."""
    address = platform.demo.sip_tcp if options.get("transport") == "t1" else platform.demo.sip
    command = sipp_command(address, workdir, rows, **options)
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()  # by PID: the Popen we started
        process.communicate()
        raise AssertionError("sipp did not finish within 40 s")
    assert process.returncode == 0, sipp_failure(workdir, process.returncode, output)
    return process.pid


def snapshot_json(platform: DemoThread, capsys) -> dict:
    main(["snapshot", "--json", *platform.target_args()])
    return json.loads(capsys.readouterr().out)


def text_outputs(platform: DemoThread, capsys, monkeypatch) -> tuple[str, str]:
    """`snapshot` and `diagnose -v` as an operator's terminal would get them (wide, so rows do not wrap)."""
    monkeypatch.setenv("COLUMNS", "400")
    main(["snapshot", *platform.target_args()])
    snapshot = capsys.readouterr().out
    main(["diagnose", "-v", *platform.target_args()])
    diagnose = capsys.readouterr().out
    return snapshot, diagnose


def contacts_by_aor(snapshot: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for contact in snapshot["registrations"]:
        out.setdefault(contact["aor"], []).append(contact)
    return out


def assert_no_raw_controls(*outputs: str) -> None:
    for output in outputs:
        for char in RAW_UNSAFE:
            assert char not in output, f"raw {char!r} reached the terminal output"


def wait_for(condition, limit: float = 10.0) -> None:
    """Poll a condition the demo thread makes true (not a speed assertion: the limit only stops a hang)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def shown(value: str, limit: int = 40) -> str:
    """What a table cell of `limit` shows for `value`: escaped, then clipped."""
    text = escape_controls(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ plain registration


def test_sipp_registers_users_then_unregisters_them(platform, tmp_path, capsys):
    before = contacts_by_aor(snapshot_json(platform, capsys))
    assert "1000" in before  # the demo simulates the lab's first UDP user: the real UA takes it over
    rows = (SCENARIOS / "users_udp.csv").read_text().split("\n")[1:6]  # the lab's users 1000..1004
    users = [row.split(";")[0] for row in rows]
    pid = run_sipp(platform, tmp_path, rows, scenario="register.xml")

    data = contacts_by_aor(snapshot_json(platform, capsys))
    assert set(data) == set(before) | set(users)
    for number, user in enumerate(users, start=1):
        (contact,) = data[user]  # exactly one contact per AoR
        assert contact["contact"] == f"sip:{user}@127.0.0.1:5070;transport=udp"
        assert contact["user_agent"] == "sipp-lab-UDP"
        assert contact["callid"] == f"reg-udp-{number}-{pid}@127.0.0.1"
        assert contact["socket"] == f"udp:127.0.0.1:{platform.demo.sip[1]}"
        assert contact["transport"] == "udp" and 3590 <= contact["expires"] <= 3600
    assert platform.demo.sip_endpoint.stats["replied_200"] >= len(users)

    unregister = [row.replace(";3600;", ";0;") for row in rows]
    run_sipp(platform, tmp_path, unregister, scenario="register.xml")
    assert set(contacts_by_aor(snapshot_json(platform, capsys))) == set(before) - set(users)


def test_sipp_against_the_40_demo_gives_user_at_domain_aors(tmp_path, capsys):
    platform = DemoThread(size=3, version="4.0", tick=None, real_rtpengine=False, calls=0, sip=True).start()
    try:
        rows = (SCENARIOS / "users_udp.csv").read_text().split("\n")[1:3]
        run_sipp(platform, tmp_path, rows, scenario="register.xml", cid_str="reg40-udp-%u-%p@%s")
        data = contacts_by_aor(snapshot_json(platform, capsys))
        for row in rows:
            user = row.split(";")[0]
            (contact,) = data[f"{user}@127.0.0.1"]
            assert contact["callid"].startswith("reg40-udp-") and contact["user_agent"] == "sipp-lab-UDP"
    finally:
        platform.close()


def test_sipp_registers_over_tcp(platform, tmp_path, capsys):
    rows = ["7100;127.0.0.1:5071;3600;transport=tcp", "7101;127.0.0.1:5071;3600;transport=tcp"]
    pid = run_sipp(platform, tmp_path, rows, scenario="register.xml", transport="t1", cid_str="reg-tcp-%u-%p@%s")
    data = contacts_by_aor(snapshot_json(platform, capsys))
    tcp_socket = f"tcp:127.0.0.1:{platform.demo.sip_tcp[1]}"
    for number, user in enumerate(("7100", "7101"), start=1):
        (contact,) = data[user]
        assert (contact["transport"], contact["socket"], contact["user_agent"]) == ("tcp", tcp_socket, "sipp-lab-TCP")
        assert contact["callid"] == f"reg-tcp-{number}-{pid}@127.0.0.1"


# ------------------------------------------------------------------ hostile channels


def test_capture_sipp_sends_csv_bytes_verbatim_but_cuts_a_field_at_nul(platform, tmp_path):
    """What sipp can carry: raw bytes from the CSV (ESC, BEL, UTF-8, '[') and from -key; a NUL ends the field."""
    captured: list[bytes] = []
    registrar = platform.demo.sip_endpoint.registrar
    handle = registrar.handle
    registrar.handle = lambda data, source: (captured.append(data), handle(data, source))[1]
    try:
        ua = f"x{CLEAR_SCREEN}\x07{RLO}{MARKUP}"
        rows = [f"cap1;127.0.0.1:5070;600;transport=udp;{ua};", "cap2;127.0.0.1:5070;600;transport=udp;a\x00b;"]
        run_sipp(platform, tmp_path, rows, ua_tail=OSC52)
    finally:
        registrar.handle = handle
    (first,) = {data for data in captured if b"To:  <sip:cap1@" in data}  # retransmissions are identical
    (second,) = {data for data in captured if b"To:  <sip:cap2@" in data}
    assert f"\r\nUser-Agent: {ua}{OSC52}\r\n".encode() in first
    assert b"\r\nUser-Agent: a" + OSC52.encode() + b"\r\n" in second  # "b" never left sipp


def test_hostile_user_agents_come_out_unchanged_in_json_and_escaped_in_text(platform, tmp_path, capsys, monkeypatch):
    payloads = {"ua1": MARKUP, "ua2": LINK_MARKUP, "ua3": f"A{CLEAR_SCREEN}B", "ua4": f"{RLO}evil", "ua5": BIG}
    tail = f"-{OSC52}{OSC8}"
    run_sipp(platform, tmp_path, [f"{user};127.0.0.1:5070;600;transport=udp;{ua};" for user, ua in payloads.items()],
             ua_tail=tail)
    data = contacts_by_aor(snapshot_json(platform, capsys))
    for user, ua in payloads.items():
        assert data[user][0]["user_agent"] == ua + tail

    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    for ua in payloads.values():
        assert shown(ua + tail) in snapshot
    assert "[bold red]x[/]" in snapshot and "[link=https://e.example]y[/link]" in snapshot  # markup as typed
    assert "\\x1b[2J" in snapshot and "\\x1b]52;c;aGk=\\x07" in escape_controls(tail)


def test_hostile_display_names_are_accepted_and_never_shown_raw(platform, tmp_path, capsys, monkeypatch):
    # usrloc keeps the Contact URI only (as OpenSIPS does): display names must not break parsing.
    payloads = {"dn1": f'"{MARKUP}"', "dn2": f'"{LINK_MARKUP} {CLEAR_SCREEN}"', "dn3": f'"{RLO}x, y"',
                "dn4": f'"{BIG}"', "dn5": "Bare Token"}
    run_sipp(platform, tmp_path, [f"{user};127.0.0.1:5070;600;transport=udp;ua-{user};{name}"
                                  for user, name in payloads.items()])
    data = contacts_by_aor(snapshot_json(platform, capsys))
    for user in payloads:
        assert data[user][0]["contact"] == f"sip:{user}@127.0.0.1:5070;transport=udp"
        assert data[user][0]["user_agent"] == f"ua-{user}"
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    assert all(f"ua-{user}" in snapshot for user in payloads)


def test_hostile_aors_from_the_to_user_come_out_unchanged_and_escaped(platform, tmp_path, capsys, monkeypatch):
    users = [f"a{MARKUP}", f"b{CLEAR_SCREEN}", f"c{RLO}x", f"d{LINK_MARKUP}", "e" + "A" * 10240]
    run_sipp(platform, tmp_path, [f"{user};127.0.0.1:5070;600;transport=udp;ua;" for user in users])
    data = contacts_by_aor(snapshot_json(platform, capsys))
    for user in users:
        assert data[user][0]["contact"] == f"sip:{user}@127.0.0.1:5070;transport=udp"
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    for user in users:  # output that is not a terminal shows AoRs in full (README "Command line")
        assert escape_controls(user) in snapshot


def test_hostile_contact_uri_parameters_come_out_unchanged(platform, tmp_path, capsys, monkeypatch):
    payloads = {"cp1": f"x-m={MARKUP}", "cp2": f"x-l={LINK_MARKUP}", "cp3": f"x-e={CLEAR_SCREEN}{RLO}",
                "cp4": f"x-big={BIG}"}
    run_sipp(platform, tmp_path, [f"{user};127.0.0.1:5070;600;{param};ua;" for user, param in payloads.items()])
    data = contacts_by_aor(snapshot_json(platform, capsys))
    for user, param in payloads.items():
        assert data[user][0]["contact"] == f"sip:{user}@127.0.0.1:5070;{param}"
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    assert all(user in snapshot for user in payloads)


@pytest.mark.parametrize("callid", [
    f"{MARKUP}-{LINK_MARKUP}-{CLEAR_SCREEN}-{OSC52}-{OSC8}-{RLO}-%u@h",
    "C" * 2000 + "-%u@h",  # sipp cuts generated Call-IDs at 2048 bytes
], ids=["escapes", "2kB"])
def test_hostile_call_ids_come_out_unchanged(platform, tmp_path, capsys, monkeypatch, callid):
    run_sipp(platform, tmp_path, ["cid1;127.0.0.1:5070;600;transport=udp;ua;"], cid_str=callid)
    (contact,) = contacts_by_aor(snapshot_json(platform, capsys))["cid1"]
    assert contact["callid"] == callid.replace("%u", "1")
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    assert "cid1" in snapshot


def test_10kb_call_id_from_the_csv(platform, tmp_path, capsys, monkeypatch):
    callid = f"{BIG}{MARKUP}{RLO}"
    run_sipp(platform, tmp_path, [f"cid2;127.0.0.1:5070;600;transport=udp;ua;;{callid}"], scenario="register_callid.xml")
    wait_for(lambda: platform.demo.sip_endpoint.stats["replied_200"] >= 1)
    (contact,) = contacts_by_aor(snapshot_json(platform, capsys))["cid2"]
    assert contact["callid"] == callid
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)


# ------------------------------------------------------------------ NUL: not through sipp


def test_nul_through_the_real_sip_socket(platform, capsys, monkeypatch):
    # sipp cannot send NUL (its messages are C strings: a NUL in a CSV field cuts the field),
    # so this datagram goes straight to the demo's UDP SIP port.
    ua, callid, param = f"nul\x00ua{MARKUP}", "nul\x00cid@h", "x-n=a\x00b"
    message = ("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-n\r\n"
               "From: <sip:nul1@127.0.0.1>;tag=1\r\nTo: <sip:nul1@127.0.0.1>\r\n"
               f"Call-ID: {callid}\r\nCSeq: 1 REGISTER\r\n"
               f"Contact: <sip:nul1@127.0.0.1:5070;{param}>;expires=600\r\nUser-Agent: {ua}\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(message, platform.demo.sip)
        reply, _ = sock.recvfrom(65535)
    assert reply.startswith(b"SIP/2.0 200 OK\r\n") and b"Call-ID: nul\x00cid@h\r\n" in reply
    (contact,) = contacts_by_aor(snapshot_json(platform, capsys))["nul1"]
    assert (contact["user_agent"], contact["callid"]) == (ua, callid)
    assert contact["contact"] == f"sip:nul1@127.0.0.1:5070;{param}"
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    assert "nul\\x00ua[bold red]x[/]" in snapshot


def test_hostile_values_in_diagnose_evidence_via_the_mi_path(platform, capsys, monkeypatch):
    # A WS contact without a live connection is "stale": diagnose -v lists its AoR and URI.
    uri = f"sip:w@127.0.0.1:1;x={MARKUP}\x00{CLEAR_SCREEN}{OSC52}{RLO};transport=ws"
    platform.call(platform.demo.state.register, f"ws{RLO}{MARKUP}", uri, user_agent=f"ua\x00{OSC8}",
                  callid=f"c\x00{LINK_MARKUP}", cseq=1, expires=600, transport="ws")
    (contact,) = contacts_by_aor(snapshot_json(platform, capsys))[f"ws{RLO}{MARKUP}"]
    assert (contact["contact"], contact["user_agent"], contact["callid"]) == (uri, f"ua\x00{OSC8}", f"c\x00{LINK_MARKUP}")
    snapshot, diagnose = text_outputs(platform, capsys, monkeypatch)
    assert_no_raw_controls(snapshot, diagnose)
    assert "stale" in diagnose and "[bold red]x[/]" in diagnose and "\\x00" in diagnose
    assert "ws\\u202e[bold red]x[/]" in snapshot


def test_a_user_agent_that_is_not_utf8_does_not_hide_the_registrations(platform, capsys, monkeypatch):
    message = (b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-b\r\n"
               b"From: <sip:bad1@127.0.0.1>;tag=1\r\nTo: <sip:bad1@127.0.0.1>\r\nCall-ID: bad-1@h\r\n"
               b"CSeq: 1 REGISTER\r\nContact: <sip:bad1@127.0.0.1:5070>\r\nUser-Agent: ua-\xff\xfe\r\n"
               b"Content-Length: 0\r\n\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(message, platform.demo.sip)
        assert sock.recv(65535).startswith(b"SIP/2.0 200 OK\r\n")
    data = snapshot_json(platform, capsys)
    assert data["registrations"] is not None, data.get("registrations_note")
    assert "bad1" in contacts_by_aor(data)
    # The raw bytes survive (surrogateescape) and are shown escaped, never written raw.
    agents = {r["user_agent"] for r in data["registrations"] if r["aor"] == "bad1"}
    assert agents == {"ua-\udcff\udcfe"}
    assert "ua-\xff\xfe".encode("latin-1") == "ua-\udcff\udcfe".encode("utf-8", "surrogateescape")
    snapshot_text, _ = text_outputs(platform, capsys, monkeypatch)
    assert "ua-\\udcff\\udcfe" in snapshot_text
