"""Fault matrix, host rows: psutil races and denials, a kernel without /proc/modules,
an unreadable /dev/kmsg (as `nobody`), and a stranger process called `rtpengine`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from console.cli import main
from console.config import Config
from console.model import ProcessInfo, Status
from console.plugins import LoadedPlugins, Plugin
from console.service import ConsoleService
from opsconsole_host import procfs
from opsconsole_host.checks import CHECKS as HOST_CHECKS
from opsconsole_host.source import HostSource
from support.faults import assert_clean_output, clean_home, targets

pytestmark = pytest.mark.usefixtures("clean_home", "real_host_proc")  # rows about daemons started here


def _deny(monkeypatch, pid: int, error: type[psutil.Error]) -> None:
    """Reading `pid` fails after it was listed: the process vanished or is not ours to read."""
    original = procfs.ProcfsProcess.cmdline

    def cmdline(self):
        if self.pid == pid:
            raise error(pid)
        return original(self)

    monkeypatch.setattr(procfs.ProcfsProcess, "cmdline", cmdline)


def test_access_denied_on_a_listed_process_is_reported_not_raised(rtpengine, mi_server, monkeypatch, capsys):
    _deny(monkeypatch, rtpengine.pid, psutil.AccessDenied)
    code = main(["snapshot", "--json", *targets(mi_server.url, rtpengine.ng, rtpengine.cli)])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["sources"]["host"]["ok"] is True
    (entry,) = [p for p in data["host"]["rtpengine"] if p["pid"] == rtpengine.pid]
    assert entry["error"].startswith(f"access denied reading pid {rtpengine.pid}: run as root")
    assert data["sources"]["opensips"]["ok"] and data["sources"]["rtpengine"]["ok"]
    assert code == 0
    assert_clean_output(out, err)


def test_process_gone_between_listing_and_reading_is_skipped(rtpengine, mi_server, monkeypatch, capsys):
    _deny(monkeypatch, rtpengine.pid, psutil.NoSuchProcess)
    target = targets(mi_server.url, rtpengine.ng, rtpengine.cli)
    main(["snapshot", "--json", *target])
    data = json.loads(capsys.readouterr().out)
    assert data["sources"]["host"]["ok"] is True
    assert rtpengine.pid not in [p["pid"] for p in data["host"]["rtpengine"]]  # gone: nothing to report
    main(["diagnose", "--json", "--only", "rtpengine.process", *target])
    out, err = capsys.readouterr()
    (check,) = json.loads(out)["checks"]
    # its ng socket still names it, but nothing about it could be read: no verdict on its health
    assert check["status"] == "skip" and "could not be read as a daemon" in check["summary"]
    assert_clean_output(out, err)


async def test_host_source_recovers_once_psutil_reads_again(rtpengine, monkeypatch):
    service = ConsoleService(Config(mi_url=None, ng=None, cli=None, timeout=0.5))
    try:
        readable = procfs.ProcfsProcess.cmdline
        _deny(monkeypatch, rtpengine.pid, psutil.AccessDenied)
        denied = await service.snapshot()
        assert [p.error for p in denied.host.rtpengine if p.pid == rtpengine.pid][0].startswith("access denied")
        monkeypatch.setattr(procfs.ProcfsProcess, "cmdline", readable)  # only the denial goes away
        healed = await service.snapshot()
        (entry,) = [p for p in healed.host.rtpengine if p.pid == rtpengine.pid]
        assert entry.error == "" and entry.settings["listen-ng"]
    finally:
        await service.aclose()


def _service_with_finder(proc_root: Path) -> ConsoleService:
    """The host plugin alone, with an rtpengine that asks for kernel table 0."""
    daemon = ProcessInfo(pid=4242, name="rtpengine", cmdline=("/usr/bin/rtpengine", "--table=0"),
                         settings={"table": 0, "listen-ng": "127.0.0.1:2223"})

    def finder(name: str) -> tuple[ProcessInfo, ...]:
        return (daemon,) if name == "rtpengine" else ()

    plugin = Plugin("host", make_sources=lambda config: [HostSource(config, finder=finder)], checks=HOST_CHECKS)
    config = Config(mi_url=None, ng=None, cli=None, timeout=0.5, proc_root=str(proc_root))
    return ConsoleService(config, plugins=LoadedPlugins((plugin,)))


async def test_proc_modules_missing_is_a_clear_unknown_and_recovers(tmp_path):
    proc_root = tmp_path / "proc"
    proc_root.mkdir()
    service = _service_with_finder(proc_root)
    try:
        snap = await service.snapshot()
        assert snap.sources["host"].ok, snap.sources["host"].error
        assert snap.host.kernel_modules["modules_supported"] is False
        results = {r.id: r for r in await service.checks(snap, only=["kernel"])}
        xt = results["kernel.xt_rtpengine"]
        assert xt.status is Status.UNKNOWN and "no /proc/modules" in xt.summary and xt.remedy
        assert all(r.status is not Status.UNKNOWN or r.summary for r in results.values())

        (proc_root / "modules").write_text("xt_RTPENGINE 57344 0 - Live 0x0000000000000000 (O)\n")
        healed = await service.snapshot()
        assert healed.host.kernel_modules["modules_supported"] is True
        assert healed.host.kernel_modules["xt_RTPENGINE"] is True
    finally:
        await service.aclose()


def test_kmsg_permission_denied_as_nobody_is_unknown_with_remedy(tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop to nobody")
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict=0: nobody may read the kernel log here")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               sys.executable, "-m", "console", "diagnose", "--only", "kernel.dmesg", *targets(None, None, None)]
    done = subprocess.run(command, cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert "kernel.dmesg" in done.stdout and "UNKNOWN" in done.stdout
    assert "run as root or set kernel.dmesg_restrict=0" in done.stdout
    assert done.returncode == 3, done.stdout + done.stderr
    assert_clean_output(done.stdout, done.stderr)


@pytest.fixture
def impostor(tmp_path):
    """A copy of /bin/sleep called `rtpengine`, killed by its PID afterwards."""
    binary = tmp_path / "rtpengine"
    shutil.copy("/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "300"], stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=5)


async def test_a_stranger_named_rtpengine_is_not_taken_for_the_daemon(impostor):
    service = ConsoleService(Config(mi_url=None, ng=None, cli=None, timeout=0.5))
    try:
        snap = await service.snapshot()
        (entry,) = [p for p in snap.host.rtpengine if p.pid == impostor.pid]
        assert entry.suspect and "not a rtpengine binary" in entry.suspect
        (check,) = await service.checks(snap, only=["rtpengine.process"])
        assert f"pid {impostor.pid} ignored" in check.summary
        assert f"running: pid {impostor.pid} " not in check.summary
    finally:
        await service.aclose()
