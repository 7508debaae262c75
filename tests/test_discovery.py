"""Configuration discovery: opensips-cli configs, the running rtpengine and OpenSIPS."""

import shutil
from pathlib import Path

import psutil
import pytest

from console.discovery import Discovered, discover
from console.model import ProcessInfo
from opsconsole_host import processes as P
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


def test_running_opensips_wins_over_opensips_cli_config(home):
    shutil.copy(HOST / "opensips-cli.cfg", home / ".opensips-cli.cfg")
    found = discover(home=home, etc_paths=(), processes=[opensips_proc(HOST / "opensips.cfg")])
    assert found.mi_url == "http://127.0.0.1:8888/mi" and found.mi_fifo == "/tmp/lab/opensips_fifo"
    assert any(n.startswith("mi_http http://127.0.0.1:8888/mi (opensips pid 100 ") for n in found.notes)
    assert any("opensips-cli config" in n and "not used" in n for n in found.notes)


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
    def denied(name):
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
    found = discover(home=home, etc_paths=())
    assert f"ng 127.0.0.1:{ng} (rtpengine pid {proc.pid} --listen-ng)" in "\n".join(found.notes)
