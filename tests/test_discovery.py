"""Configuration discovery: opensips-cli configs, the running rtpengine and OpenSIPS."""

import json
import socket
import shutil
from pathlib import Path

import psutil
import pytest

from console.cli import main
from console.config import load_config
from console.plugins import Discovered
from opsconsole_host.discovery import discover
from console.model import ProcessInfo
from opsconsole_host import processes as P
from opsconsole_host import procfs
from support.faults import free_port
from support.proc_tree import ProcTree
from test_host_processes import host_rtpengine  # noqa: F401  (a real daemon, killed by PID)

HOST = Path(__file__).parent / "fixtures" / "host"


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def rtpengine_proc(argv, pid=4242):
    return ProcessInfo(pid, "rtpengine", tuple(argv), "root", P.rtpengine_settings(argv))


def opensips_proc(cfg, pid=100):
    argv = ["/usr/sbin/opensips", "-F", "-f", str(cfg)]
    return ProcessInfo(pid, "opensips", tuple(argv), "opensips", P.opensips_settings(argv))


def test_nothing_found(home):
    assert discover(home=home, etc_paths=(), processes=()) == Discovered()


def test_opensips_cli_http_in_home(home):
    shutil.copy(HOST / "opensips-cli.cfg", home / ".opensips-cli.cfg")
    found = discover(home=home, etc_paths=(), processes=())
    assert found.mi_url == "http://127.0.0.1:8899/mi" and found.mi_fifo is None
    assert found.notes == (f"mi_http http://127.0.0.1:8899/mi (opensips-cli config {home / '.opensips-cli.cfg'} url)",)


def test_opensips_cli_fifo_in_etc_and_home_wins(home):
    etc = [HOST / "opensips-cli-fifo.cfg"]
    assert discover(home=home, etc_paths=etc, processes=()).mi_fifo == "/run/opensips/opensips_fifo"
    shutil.copy(HOST / "opensips-cli.cfg", home / ".opensips-cli.cfg")
    found = discover(home=home, etc_paths=etc, processes=())
    assert found.mi_url == "http://127.0.0.1:8899/mi" and found.mi_fifo is None  # opensips-cli reads only the first


def test_opensips_cli_unsupported_and_broken_configs_become_notes(home, tmp_path):
    broken = tmp_path / "broken.cfg"
    broken.write_text("communication_type http\n")  # no section header
    found = discover(home=home, etc_paths=[broken, HOST / "opensips-cli-datagram.cfg"], processes=())
    assert found.mi_url is None and found.mi_fifo is None
    assert "unreadable" in found.notes[0] and "'datagram' is not supported" in found.notes[1]


def test_rtpengine_bare_port_means_loopback(home):
    proc = rtpengine_proc(["rtpengine", "--config-file=none", "--listen-ng=60000", "-c", "127.0.0.1:60001",
                           "-m", "30000", "-M", "30999"])
    found = discover(home=home, etc_paths=(), processes=[proc])
    assert found.ng == ("127.0.0.1", 60000) and found.cli == ("127.0.0.1", 60001)
    assert found.port_range == (30000, 30999)
    assert "ng 127.0.0.1:60000 (rtpengine pid 4242 --listen-ng)" in found.notes
    assert "cli 127.0.0.1:60001 (rtpengine pid 4242 --listen-cli)" in found.notes


def test_rtpengine_settings_from_its_config_file(home):
    conf = HOST / "rtpengine.conf"
    found = discover(home=home, etc_paths=(), processes=[rtpengine_proc(["rtpengine", f"--config-file={conf}"])])
    assert found.ng == ("127.0.0.1", 2223) and found.cli == ("127.0.0.1", 2224)
    assert f"ng 127.0.0.1:2223 (rtpengine pid 4242 listen-ng in {conf})" in found.notes


def test_opensips_cli_config_comes_before_the_running_opensips(home):
    """README order: opensips-cli's config (the operator's choice), then the running daemons."""
    shutil.copy(HOST / "opensips-cli.cfg", home / ".opensips-cli.cfg")
    found = discover(home=home, etc_paths=(), processes=[opensips_proc(HOST / "opensips.cfg")])
    assert found.mi_url == "http://127.0.0.1:8899/mi" and found.mi_fifo is None
    picked = next(n for n in found.notes if n.startswith("mi_http http://127.0.0.1:8899/mi"))
    assert "opensips-cli's config comes before the running daemons" in picked and "--mi-url" in picked
    other = next(n for n in found.notes if n.startswith("mi_http http://127.0.0.1:8888/mi"))
    assert "(opensips pid 100 " in other and "not used" in other
    assert "use it with --mi-url http://127.0.0.1:8888/mi" in other


def test_without_opensips_cli_config_the_running_opensips_gives_both_mi_endpoints(home):
    found = discover(home=home, etc_paths=(), processes=[opensips_proc(HOST / "opensips.cfg")])
    assert found.mi_url == "http://127.0.0.1:8888/mi" and found.mi_fifo == "/tmp/lab/opensips_fifo"
    assert not any("picked" in n or "not used" in n for n in found.notes)


def _relay(pid, ng, cli):
    return rtpengine_proc(["rtpengine", "--config-file=none", f"--listen-ng={ng}", f"--listen-cli={cli}"], pid=pid)


def test_several_rtpengines_the_one_opensips_uses_is_picked_and_the_report_says_so(home):
    # opensips-include-rtp.cfg's rtpengine_sock names udp:127.0.0.1:2223 and :2233.
    opensips = opensips_proc(HOST / "opensips-include.cfg", pid=300)
    relays = [_relay(10, "127.0.0.1:40010", "127.0.0.1:40011"), _relay(20, "127.0.0.1:2233", "127.0.0.1:2234")]
    found = discover(home=home, etc_paths=(), processes=[*relays, opensips])
    assert found.ng == ("127.0.0.1", 2233) and found.cli == ("127.0.0.1", 2234)  # cli of the same relay
    picked = next(n for n in found.notes if n.startswith("ng 127.0.0.1:2233"))
    assert "picked of 2 rtpengine instances (OpenSIPS pid 300's rtpengine_sock names it)" in picked
    assert "choose another with --ng" in picked
    other = next(n for n in found.notes if n.startswith("ng 127.0.0.1:40010"))
    assert "not used, rtpengine pid 20 picked, use it with --ng 127.0.0.1:40010" in other


def test_several_rtpengines_without_a_reason_the_lowest_pid_is_picked(home):
    found = discover(home=home, etc_paths=(), processes=[_relay(30, "127.0.0.1:40030", "127.0.0.1:40031"),
                                                         _relay(7, "127.0.0.1:40007", "127.0.0.1:40008")])
    assert found.ng == ("127.0.0.1", 40007) and found.cli == ("127.0.0.1", 40008)
    assert any(n.startswith("ng 127.0.0.1:40007") and "(the lowest pid)" in n for n in found.notes)


def test_several_opensips_the_system_cfg_is_picked(home, tmp_path):
    private = tmp_path / "other.cfg"
    private.write_text(HOST.joinpath("opensips.cfg").read_text().replace('"port", 8888', '"port", 8999'))
    system = opensips_proc(HOST / "opensips.cfg", pid=500)
    system = ProcessInfo(500, "opensips", system.cmdline, "opensips",
                         dict(system.settings, **{"config-file": "/etc/opensips/opensips.cfg"}))
    found = discover(home=home, etc_paths=(), processes=[opensips_proc(private, pid=40), system])
    assert found.mi_url == "http://127.0.0.1:8888/mi"
    picked = next(n for n in found.notes if n.startswith("mi_http http://127.0.0.1:8888/mi"))
    assert "picked of 2 opensips instances (its cfg is the system's /etc/opensips/opensips.cfg)" in picked
    assert any("8999" in n and "use it with --mi-url http://127.0.0.1:8999/mi" in n for n in found.notes)


def test_an_address_given_explicitly_is_never_called_not_used(home):
    relays = [_relay(10, "127.0.0.1:40010", "127.0.0.1:40011"), _relay(20, "127.0.0.1:40020", "127.0.0.1:40021")]
    found = discover(home=home, etc_paths=(), processes=relays, given={"ng": (("127.0.0.1", 40020), "--ng")})
    assert found.ng is None  # nothing to fill: the operator said it
    assert found.cli == ("127.0.0.1", 40021)  # the cli of the relay --ng names, not of the lowest pid
    mine = next(n for n in found.notes if n.startswith("ng 127.0.0.1:40020"))
    assert mine.endswith("the one given with --ng") and "not used" not in mine
    assert any(n.startswith("ng 127.0.0.1:40010") and "another instance, --ng 127.0.0.1:40020 is used" in n for n in found.notes)


def test_an_explicit_address_no_daemon_serves_is_said(home):
    found = discover(home=home, etc_paths=(), processes=[_relay(10, "127.0.0.1:40010", "127.0.0.1:40011")],
                     given={"ng": (("127.0.0.1", 40099), "OPSCONSOLE_NG")})
    assert "no running daemon found for 127.0.0.1:40099 given with OPSCONSOLE_NG" in found.notes
    assert found.cli is None and any("cli not taken" in n for n in found.notes)


def test_untrusted_unreadable_and_misconfigured_daemons_are_notes(home, tmp_path):
    procs = [
        ProcessInfo(1, "rtpengine", ("rtpengine", "300"), suspect="not a rtpengine binary"),
        ProcessInfo(2, "rtpengine", error="access denied reading pid 2: run as root"),
        opensips_proc(tmp_path / "missing.cfg", pid=3),
        rtpengine_proc(["rtpengine", "--config-file=none", "--listen-ng=nonsense"], pid=5),
    ]
    found = discover(home=home, etc_paths=(), processes=procs)
    assert found.ng is None and found.mi_url is None
    text = "\n".join(found.notes)
    assert "rtpengine pid 1 ignored: not a rtpengine binary" in text
    assert "rtpengine pid 2: access denied" in text
    assert "opensips pid 3: OpenSIPS config file not found" in text
    assert "ng not usable: listen-ng='nonsense'" in text


def test_process_scan_failures_never_raise(home, monkeypatch):
    def denied(name, **roots):
        raise psutil.AccessDenied(1)

    monkeypatch.setattr(P, "find_daemons", denied)
    found = discover(home=home, etc_paths=())
    assert found.ng is None
    failures = [n for n in found.notes if n.startswith("could not list")]
    assert len(failures) == 2 and all("AccessDenied" in n for n in failures)


def test_unexpected_settings_shape_does_not_raise(home):
    weird = ProcessInfo(9, "rtpengine", settings=None)  # type: ignore[arg-type]
    found = discover(home=home, etc_paths=(), processes=[weird])
    assert found.notes and found.notes[-1].startswith("discovery stopped:")


@pytest.mark.rtpengine
def test_discovers_a_real_running_rtpengine(home, host_rtpengine):  # noqa: F811
    proc, ng, cli = host_rtpengine
    found = discover(home=home, etc_paths=(), proc_root="/proc")  # the real host, our daemon only
    assert any(n.startswith(f"ng 127.0.0.1:{ng} (rtpengine pid {proc.pid} --listen-ng)") for n in found.notes)


def test_discovery_reads_a_fixture_proc_tree(home, tmp_path):
    tree = ProcTree(tmp_path / "proc")
    tree.process(4242, ["rtpengine", "--config-file=none", "--listen-ng=127.0.0.1:40042"],
                 exe=tree.binary("rtpengine"))
    found = discover(home=home, etc_paths=(), proc_root=tree.root)
    assert found.ng == ("127.0.0.1", 40042)


def test_the_test_suite_cannot_see_this_hosts_daemons_or_home():
    """conftest's autouse fixture: an empty proc tree and an empty HOME, whatever runs here."""
    found = discover()
    assert found == Discovered() and load_config({}).discovery == ()


def test_snapshot_text_reports_which_instance_was_picked_and_how_to_choose(tmp_path, monkeypatch, capsys):
    # The snapshot talks to what it discovers: every address is a port from the OS, none answers.
    tree = ProcTree(tmp_path / "proc")
    first, second = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    for pid, ng in ((61, first), (62, second)):
        tree.process(pid, ["rtpengine", "--config-file=none", f"--listen-ng=127.0.0.1:{ng}",
                           f"--listen-cli=127.0.0.1:{free_port()}"], exe=tree.binary("rtpengine"))
    monkeypatch.setattr(procfs, "HOST_PROC_ROOT", str(tree.root))
    main(["snapshot", "--mi-url", f"http://127.0.0.1:{free_port()}/mi", "--timeout", "0.3", "--no-contacts"])
    out = capsys.readouterr().out
    assert f"ng 127.0.0.1:{first} (rtpengine pid 61 --listen-ng) — picked of 2 rtpengine instances (the lowest pid), " \
           "choose another with --ng" in " ".join(out.split())
    main(["snapshot", "--json", "--mi-url", f"http://127.0.0.1:{free_port()}/mi", "--ng", f"127.0.0.1:{second}",
          "--timeout", "0.3", "--no-contacts"])
    notes = json.loads(capsys.readouterr().out)["discovery"]
    assert f"ng 127.0.0.1:{second} (rtpengine pid 62 --listen-ng) — the one given with --ng" in notes
    assert not any("not used" in n and f"{second} (" in n for n in notes)


def test_load_config_passes_where_each_explicit_value_came_from(home):
    relays = [_relay(10, "127.0.0.1:40010", "127.0.0.1:40011"), _relay(20, "127.0.0.1:40020", "127.0.0.1:40021")]
    roots = {"home": home, "etc_paths": (), "processes": relays}
    config = load_config({"ng": ("127.0.0.1", 40020)}, env={}, discovery_roots=roots)
    assert config.ng == ("127.0.0.1", 40020) and config.cli == ("127.0.0.1", 40021)
    assert "ng 127.0.0.1:40020 (rtpengine pid 20 --listen-ng) — the one given with --ng" in config.discovery
    config = load_config({}, env={"OPSCONSOLE_NG": "127.0.0.1:40010"}, discovery_roots=roots)
    assert config.ng == ("127.0.0.1", 40010) and config.cli == ("127.0.0.1", 40011)
    assert "ng 127.0.0.1:40010 (rtpengine pid 10 --listen-ng) — the one given with OPSCONSOLE_NG" in config.discovery


def test_load_config_takes_opensips_cli_before_the_running_opensips(home):
    shutil.copy(HOST / "opensips-cli-fifo.cfg", home / ".opensips-cli.cfg")
    roots = {"home": home, "etc_paths": (), "processes": [opensips_proc(HOST / "opensips.cfg")]}
    config = load_config({}, env={}, discovery_roots=roots)
    # the running OpenSIPS offers mi_http too, but the operator's opensips-cli speaks over the FIFO
    assert config.mi_fifo == "/run/opensips/opensips_fifo" and config.mi_url is None


def test_no_note_contains_the_text_reports_separator(home):
    """The text report joins the notes with '; ': a note must not contain it."""
    shutil.copy(HOST / "opensips-cli.cfg", home / ".opensips-cli.cfg")
    processes = [_relay(10, "127.0.0.1:40010", "127.0.0.1:40011"), _relay(20, "127.0.0.1:40020", "127.0.0.1:40021"),
                 opensips_proc(HOST / "opensips.cfg", pid=30), opensips_proc(HOST / "opensips-4.0.cfg", pid=40)]
    for given in ({}, {"ng": (("127.0.0.1", 40099), "--ng")}, {"ng": (("127.0.0.1", 40020), "--ng")}):
        notes = discover(home=home, etc_paths=(), processes=processes, given=given).notes
        assert len(notes) >= 5 and not any("; " in n for n in notes)
