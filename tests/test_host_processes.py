"""Daemon discovery with psutil (real processes) and settings parsing (command lines, config files)."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from console.errors import ConfigError
from opsconsole_host import processes as P

HOST = Path(__file__).parent / "fixtures" / "host"
RTPENGINE = shutil.which("rtpengine")

LAB_RTPENGINE = (
    "/usr/bin/rtpengine --config-file=none --table=-1 --foreground --log-stderr --pidfile=/tmp/lab/rtpengine.pid "
    "--interface=127.0.0.1 --listen-ng=127.0.0.1:60000 --listen-cli=127.0.0.1:60001 --port-min=30000 "
    "--port-max=30999 --timeout=86400 --silent-timeout=86400 --final-timeout=0 --offer-timeout=3600 "
    "--log-level=6 --delete-delay=30"
).split()
DEBIAN_UNIT = ("/usr/bin/rtpengine -f -E --no-log-timestamps --pidfile /run/rtpengine/rtpengine-daemon.pid "
               f"--config-file {HOST / 'rtpengine.conf'}").split()


# --------------------------------------------------------------------------- rtpengine settings


def test_lab_command_line_long_options():
    s = P.parse_rtpengine_args(LAB_RTPENGINE)
    assert s["listen-ng"] == "127.0.0.1:60000" and s["listen-cli"] == "127.0.0.1:60001"
    assert (s["port-min"], s["port-max"], s["table"]) == (30000, 30999, -1)
    assert s["interface"] == ["127.0.0.1"] and s["config-file"] == "none" and s["foreground"] is True


def test_space_separated_values_and_flags_do_not_swallow_the_next_option():
    s = P.parse_rtpengine_args(["rtpengine", "--foreground", "--listen-ng", "2223", "--no-log-timestamps",
                                "--table", "-1"])
    assert s == {"foreground": True, "listen-ng": "2223", "no-log-timestamps": True, "table": -1}


def test_short_forms():
    argv = ["rtpengine", "-fE", "-n", "127.0.0.1:2223", "-c127.0.0.1:9900", "-u", "12222", "-m", "20000",
            "-M29999", "-t", "-1", "-i", "internal/10.0.0.1", "-i", "external/10.0.0.2!203.0.113.2"]
    s = P.parse_rtpengine_args(argv)
    assert s["listen-ng"] == "127.0.0.1:2223" and s["listen-cli"] == "127.0.0.1:9900" and s["listen-udp"] == "12222"
    assert (s["port-min"], s["port-max"], s["table"]) == (20000, 29999, -1)
    assert s["interface"] == ["internal/10.0.0.1", "external/10.0.0.2!203.0.113.2"]
    assert s["foreground"] is True and s["log-stderr"] is True


def test_positional_arguments_are_kept_apart():
    assert P.parse_rtpengine_args(["rtpengine", "300"])["args"] == ["300"]


def test_config_file_merged_under_command_line():
    s = P.rtpengine_settings(DEBIAN_UNIT + ["--listen-ng=127.0.0.1:60000"])
    assert s["listen-ng"] == "127.0.0.1:60000" and s["sources"]["listen-ng"] == "cmdline"
    assert s["listen-cli"] == "localhost:2224" and s["sources"]["listen-cli"] == "config"
    assert s["table"] == 0 and s["interface"] == ["any"]
    assert s["config_file"] == str(HOST / "rtpengine.conf") and "config_error" not in s


def test_config_file_none_reads_nothing():
    s = P.rtpengine_settings(LAB_RTPENGINE)
    assert s["config_file"] is None and set(s["sources"].values()) == {"cmdline"}


def test_config_section_and_interface_lists():
    conf = str(HOST / "rtpengine-sections.conf")
    a = P.rtpengine_settings(["rtpengine", f"--config-file={conf}"])
    b = P.rtpengine_settings(["rtpengine", "--config-file", conf, "--config-section=rtpengine-b"])
    assert a["interface"] == ["internal/10.0.0.10", "external/10.0.0.11!203.0.113.11"]
    assert (a["port-min"], a["table"]) == (20000, 0)
    assert (b["listen-ng"], b["table"], b["port-max"]) == ("[::1]:2233", -1, 40999)


def test_command_line_interface_replaces_config_interfaces():
    conf = str(HOST / "rtpengine-sections.conf")
    s = P.rtpengine_settings(["rtpengine", f"--config-file={conf}", "-i", "127.0.0.1"])
    assert s["interface"] == ["127.0.0.1"]


@pytest.mark.parametrize("name, words", [
    ("rtpengine-nosection.conf", "no [rtpengine] section (line 1 comes before"),
    ("rtpengine-othersection.conf", "has no [rtpengine] section"),
    ("rtpengine-broken.conf", "not valid INI"),
    ("does-not-exist.conf", "not found"),
])
def test_bad_config_files_raise_config_error(name, words):
    with pytest.raises(ConfigError) as info:
        P.read_rtpengine_config(HOST / name)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_explicit_config_file_becomes_a_setting_not_an_exception():
    s = P.rtpengine_settings(["rtpengine", f"--config-file={HOST / 'missing.conf'}", "-n", "2223"])
    assert "not found" in s["config_error"] and s["listen-ng"] == "2223"


@pytest.mark.parametrize("value, expected", [
    ("60000", ("127.0.0.1", 60000)),
    ("127.0.0.1:2223", ("127.0.0.1", 2223)),
    ("localhost:2223", ("127.0.0.1", 2223)),
    ("0.0.0.0:2223", ("127.0.0.1", 2223)),
    ("[::1]:2233", ("::1", 2233)),
    ("udp:10.0.0.1:22222", ("10.0.0.1", 22222)),
    ("not-a-port", None),
    ("70000", None),
    (None, None),
])
def test_ng_address(value, expected):
    assert P.ng_address(value) == expected


# --------------------------------------------------------------------------- OpenSIPS settings


def test_opensips_command_line():
    s = P.parse_opensips_args("/tmp/opensips-inst/sbin/opensips -F -f /tmp/lab/opensips.cfg -P /tmp/x.pid "
                              "-m 512 -M 16".split())
    assert s["config-file"] == "/tmp/lab/opensips.cfg" and not s["config_file_default"]
    assert s["pidfile"] == "/tmp/x.pid" and s["-m"] == "512" and s["flags"] == ["F"]
    assert P.parse_opensips_args(["opensips", "-f/etc/o.cfg"])["config-file"] == "/etc/o.cfg"
    assert P.parse_opensips_args(["opensips"])["config-file"] == "/etc/opensips/opensips.cfg"


def test_lab_opensips_cfg():
    cfg = P.read_opensips_cfg(HOST / "opensips.cfg")
    assert cfg["sockets"] == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "ws:127.0.0.1:8080"]
    assert {"rtpengine", "mi_fifo", "httpd", "mi_http", "dialog"} <= set(cfg["modules"])
    assert cfg["rtpengine_sock"] == ["udp:127.0.0.1:60000"]
    assert cfg["mi_http"] == {"ip": "127.0.0.1", "port": 8888, "root": "mi", "url": "http://127.0.0.1:8888/mi"}
    assert cfg["mi_fifo"] == "/tmp/lab/opensips_fifo"
    assert cfg["modparams"]["dialog"]["profiles_with_value"] == ["callsbyproto"]


def test_lab_opensips_40_cfg():
    cfg = P.read_opensips_cfg(HOST / "opensips-4.0.cfg")
    assert cfg["mi_http"]["url"] == "http://127.0.0.1:8889/mi" and cfg["mi_fifo"] == "/tmp/lab/opensips40_fifo"
    assert cfg["sockets"][0] == "udp:127.0.0.1:5160"


def test_comments_quotes_includes_and_defaults():
    cfg = P.read_opensips_cfg(HOST / "opensips-include.cfg")
    assert cfg["sockets"] == ["udp:127.0.0.1:5062", "tcp:127.0.0.1:5062"]  # commented ones skipped
    assert "mi_fifo" not in cfg["modules"] and cfg["mi_fifo"] is None
    assert cfg["mi_http"]["url"] == "http://127.0.0.1:8990/json#rpc"  # '#' inside quotes is not a comment
    assert cfg["rtpengine_sock"] == ["udp:127.0.0.1:2223", "udp:127.0.0.1:2233"]  # from the included file
    assert len(cfg["errors"]) == 1 and "missing-part.cfg" in cfg["errors"][0]


def test_unreadable_opensips_cfg_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        P.read_opensips_cfg(tmp_path / "nope.cfg")
    s = P.opensips_settings(["opensips", "-f", str(tmp_path / "nope.cfg")])
    assert "not found" in s["config_error"]


# --------------------------------------------------------------------------- real processes


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(argv, expect_exe) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait for the exec (readiness, not an assertion on speed)
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
        try:
            if psutil.Process(proc.pid).exe() == expect_exe:
                return proc
        except psutil.Error:
            pass
        time.sleep(0.02)
    _stop(proc)
    raise RuntimeError(f"{argv[0]} did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def host_rtpengine():
    """A real rtpengine on free loopback ports, userspace only; killed by PID afterwards."""
    if RTPENGINE is None:
        pytest.skip("rtpengine binary not installed")
    ng, cli = _free_udp_port(), _free_udp_port()
    argv = [RTPENGINE, "--config-file=none", "--foreground", "--table=-1", "--interface=127.0.0.1",
            f"--listen-ng=127.0.0.1:{ng}", f"--listen-cli=127.0.0.1:{cli}", "-m", "47000", "-M", "47019"]
    proc = _start(argv, os.path.realpath(RTPENGINE))
    try:
        yield proc, ng, cli
    finally:
        _stop(proc)


@pytest.fixture
def impostor(tmp_path, request):
    """A copy of /bin/sleep named like a daemon (request.param)."""
    fake = tmp_path / request.param
    shutil.copy("/bin/sleep", fake)
    proc = _start([str(fake), "300"], str(fake))
    try:
        yield proc
    finally:
        _stop(proc)


@pytest.mark.rtpengine
def test_real_rtpengine_is_found_with_its_settings(host_rtpengine):
    proc, ng, cli = host_rtpengine
    mine = [p for p in P.find_daemons("rtpengine", proc_root="/proc") if p.pid == proc.pid]
    assert len(mine) == 1
    info = mine[0]
    assert info.suspect == "" and info.error == "" and info.user == "root"
    assert info.settings["listen-ng"] == f"127.0.0.1:{ng}" and info.settings["listen-cli"] == f"127.0.0.1:{cli}"
    assert (info.settings["port-min"], info.settings["port-max"], info.settings["table"]) == (47000, 47019, -1)
    assert P.binary_has_markers(info.settings["exe"], "rtpengine") is True
    assert info.settings["ng_address"] == f"127.0.0.1:{ng}"
    # Debian's package installed it (.ci/run): dpkg knows its version, nothing was run to learn it
    dpkg = subprocess.run(["dpkg-query", "-S", info.settings["exe"]], capture_output=True, text=True)
    if dpkg.returncode == 0:
        package = dpkg.stdout.split(":", 1)[0]
        expected = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True).stdout
        assert info.settings["version"] == expected and expected


def _dpkg(tmp_path, status: str, lists: dict[str, list[str]]) -> str:
    root = tmp_path / "dpkg"
    (root / "info").mkdir(parents=True)
    (root / "status").write_text(status)
    for package, files in lists.items():
        (root / "info" / f"{package}.list").write_text("\n".join(files) + "\n")
    return str(root)


_STATUS = """Package: rtpengine
Status: deinstall ok config-files
Version: 9.0.0-1

Package: rtpengine-daemon
Status: install ok installed
Priority: optional
Description: proxy for RTP
 Version: 0.0.0 (a description line, not the field)
Version: 10.5.3.5-1+deb12u1

Package: opensips
Status: install ok installed
Version: 3.4.18-1
"""


def test_package_version_of_the_package_that_lists_the_binary(tmp_path):
    root = _dpkg(tmp_path, _STATUS, {"rtpengine": ["/usr/sbin/rtpengine"], "rtpengine-daemon": ["/usr/bin/rtpengine"],
                                      "opensips": ["/usr/sbin/opensips"]})
    assert P.package_version("/usr/bin/rtpengine", "rtpengine", root) == "10.5.3.5-1+deb12u1"
    assert P.package_version("/usr/bin/rtpengine (deleted)", "rtpengine", root) == "10.5.3.5-1+deb12u1"
    assert P.package_version("/usr/sbin/opensips", "opensips", root) == "3.4.18-1"
    assert P.package_version("/usr/sbin/rtpengine", "rtpengine", root) == ""  # its package is removed
    assert P.package_version("/home/me/rtpengine", "rtpengine", root) == ""  # built by hand: no package
    assert P.package_version("/usr/bin/rtpengine", "rtpengine", str(tmp_path / "no-dpkg")) == ""


@pytest.mark.parametrize("impostor", ["rtpengine"], indirect=True)
def test_sleep_named_rtpengine_is_not_trusted(impostor):
    mine = [p for p in P.find_daemons("rtpengine", proc_root="/proc") if p.pid == impostor.pid]
    assert len(mine) == 1
    assert "not a rtpengine binary" in mine[0].suspect and "none of its options" in mine[0].suspect


@pytest.mark.parametrize("impostor", ["opensips"], indirect=True)
def test_sleep_named_opensips_is_not_trusted(impostor):
    mine = [p for p in P.find_daemons("opensips", proc_root="/proc") if p.pid == impostor.pid]
    assert len(mine) == 1 and "not a opensips binary" in mine[0].suspect


@pytest.mark.parametrize("impostor", ["rtpengine-recording"], indirect=True)
def test_name_must_match_exactly(impostor):
    assert impostor.pid not in [p.pid for p in P.find_daemons("rtpengine", proc_root="/proc")]


# --------------------------------------------------------------------------- psutil failures (fakes)


class FakeProc:
    def __init__(self, pid, name, cmdline=(), exe="", ppid=1, fail=None):
        self.pid, self._name, self._cmdline, self._exe, self._ppid, self.fail = pid, name, list(cmdline), exe, ppid, fail

    def _maybe_fail(self, what):
        if self.fail and what in self.fail:
            raise self.fail[what](self.pid)

    def name(self):
        self._maybe_fail("name")
        return self._name

    def cmdline(self):
        self._maybe_fail("cmdline")
        return self._cmdline

    def exe(self):
        self._maybe_fail("exe")
        return self._exe

    def username(self):
        return "opensips"

    def ppid(self):
        return self._ppid

    def cwd(self):
        raise psutil.AccessDenied(self.pid)


def test_access_denied_and_vanished_processes(monkeypatch):
    lab = str(HOST / "opensips.cfg")
    procs = [
        FakeProc(10, "rtpengine", fail={"cmdline": psutil.AccessDenied}),
        FakeProc(11, "rtpengine", fail={"cmdline": psutil.NoSuchProcess}),  # exited after listing
        FakeProc(12, "rtpengine", fail={"name": psutil.NoSuchProcess}),
        FakeProc(13, "rtpengine", ["/usr/bin/rtpengine", "-n", "2223", "--config-file=none"], exe="",
                 fail={"exe": psutil.AccessDenied}),  # not root: exe unreadable, options vouch for it
        FakeProc(14, "bash", ["bash"]),
    ]
    found = P.find_daemons("rtpengine", process_iter=lambda: iter(procs))
    assert [p.pid for p in found] == [10, 13]
    assert "access denied" in found[0].error and "run as root" in found[0].error
    assert found[1].suspect == "" and found[1].settings["listen-ng"] == "2223"


def test_opensips_workers_fold_into_the_main_process():
    argv = ["/usr/sbin/opensips", "-f", str(HOST / "opensips.cfg")]
    procs = [FakeProc(100, "opensips", argv, exe="", ppid=1, fail={"exe": psutil.AccessDenied})]
    procs += [FakeProc(100 + i, "opensips", argv, exe="", ppid=100, fail={"exe": psutil.AccessDenied})
              for i in range(1, 6)]
    procs += [FakeProc(106, "opensips", argv, exe="", ppid=103, fail={"exe": psutil.AccessDenied})]
    found = P.find_daemons("opensips", process_iter=lambda: iter(procs))
    assert len(found) == 1
    main = found[0]
    assert main.pid == 100 and main.settings["workers"] == 6
    assert main.settings["mi_http"]["url"] == "http://127.0.0.1:8888/mi"


# --------------------------------------------------------------------------- hostile input
_ARG = st.one_of(st.sampled_from(["-n", "-t", "--table", "--listen-ng", "--", "-fE", "--foreground", "-i", "="]),
                 st.text(max_size=12))


@given(st.lists(_ARG, max_size=12))
def test_rtpengine_args_never_raise(argv):
    settings_ = P.parse_rtpengine_args(["rtpengine", *argv])
    assert isinstance(settings_, dict)
    P.ng_address(settings_.get("listen-ng"))


@settings(max_examples=50)
@given(st.text(alphabet='modparam("httpd", port)loadmodule socket=#/*\'\n x.so:0123', max_size=200))
def test_opensips_cfg_text_never_raises(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "opensips.cfg"
    path.write_text(text)
    cfg = P.read_opensips_cfg(path)
    assert isinstance(cfg["sockets"], list) and isinstance(cfg["modules"], list)
