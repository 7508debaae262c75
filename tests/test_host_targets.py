"""opensips.process / rtpengine.process are about the targeted MI / ng socket's owner.

Fixture /proc trees (tests/support/proc_tree.py) stand for the machine: processes, their
descriptors and the socket tables; one row runs against a real RTPengine and one against the demo.
"""

from __future__ import annotations

import time

import pytest

from console.config import Config
from opsconsole_demo import DemoPlatform
from console.model import Snapshot, SourceStatus, Status
from console.plugins import CheckContext, CollectOptions
from opsconsole_host import checks as C
from opsconsole_host.source import HostSource
from opsconsole_host.targets import locality
from support.faults import free_port
from support.proc_tree import ProcTree

HOST_CFG = "tests/fixtures/host/opensips.cfg"  # mi_http on 127.0.0.1:8888, mi_fifo /tmp/lab/opensips_fifo
LOCAL = {"127.0.0.1", "::1", "192.0.2.10"}  # this machine's addresses, as the fixture has it


async def _checks(config: Config, addresses=LOCAL):
    source = HostSource(config, kmsg_path="/nonexistent",
                        addresses=addresses if callable(addresses) else lambda: addresses)
    host = await source.collect(CollectOptions())
    snap = Snapshot(collected_at=time.time(), sources={"host": SourceStatus("host", True)}, host=host)
    ctx = CheckContext(snap, config, time.time())
    return C.check_opensips_process(ctx), C.check_rtpengine_process(ctx), host


def _opensips(tree: ProcTree, pid: int, *, mi=("tcp", "127.0.0.1", 8888), port=8888, fifo=None, cfg_dir=None):
    """An OpenSIPS main process and its mi_http worker (the worker holds the MI socket, as in OpenSIPS)."""
    cfg = cfg_dir / f"opensips-{pid}.cfg"
    text = open(HOST_CFG).read().replace('"port", 8888', f'"port", {port}')
    cfg.write_text(text)
    exe = tree.binary("opensips")
    argv = ["/usr/sbin/opensips", "-F", "-f", str(cfg)]
    tree.process(pid, argv, exe=exe, fifos=[fifo] if fifo else [])
    tree.process(pid + 1, argv, exe=exe, ppid=pid, sockets=[mi] if mi else [])


def _rtpengine(tree: ProcTree, pid: int, port: int, address="127.0.0.1", **kw):
    argv = ["/usr/bin/rtpengine", "--config-file=none", "--table=-1", f"--listen-ng={address}:{port}"]
    tree.process(pid, argv, exe=kw.pop("exe", tree.binary("rtpengine")),
                 sockets=[("udp", address, port)], **kw)


@pytest.fixture
def tree(tmp_path):
    return ProcTree(tmp_path / "proc")


async def test_the_owner_of_the_mi_socket_is_named_and_other_instances_are_only_evidence(tree, tmp_path):
    _opensips(tree, 100, cfg_dir=tmp_path)  # serves 127.0.0.1:8888 (from its worker 101)
    _opensips(tree, 200, mi=("tcp", "127.0.0.1", 8899), port=8899, cfg_dir=tmp_path)
    config = Config(mi_url="http://127.0.0.1:8899/mi", ng=None, cli=None, proc_root=str(tree.root))
    osips, _, host = await _checks(config)
    assert osips.status is Status.OK
    assert osips.summary.startswith("opensips pid 200 ") and "serves MI 127.0.0.1:8899" in osips.summary
    assert "not the target: pid 100 " in osips.summary  # mentioned, not vouched for
    assert host.facts["targets"]["mi"]["owners"] == [{"pid": 201, "name": "opensips", "daemon_pid": 200}]


async def test_a_dead_local_mi_target_fails_even_with_other_opensips_running(tree, tmp_path):
    _opensips(tree, 100, cfg_dir=tmp_path)
    _opensips(tree, 200, mi=("tcp", "127.0.0.1", 8899), port=8899, cfg_dir=tmp_path)
    osips, _, _ = await _checks(Config(mi_url="http://127.0.0.1:1/mi", ng=None, cli=None, proc_root=str(tree.root)))
    assert osips.status is Status.FAIL
    assert osips.summary.startswith("nothing on this host listens on MI 127.0.0.1:1; not the target: pid 100 ")
    assert "pid 200 " in osips.summary and "--mi-url" in osips.remedy


async def test_a_remote_target_is_not_on_this_host(tree, tmp_path):
    _opensips(tree, 100, cfg_dir=tmp_path)
    _rtpengine(tree, 300, 2223)
    config = Config(mi_url="http://198.51.100.7:8888/mi", ng=("198.51.100.7", 2223), proc_root=str(tree.root))
    osips, rtp, _ = await _checks(config)
    for result, label in ((osips, "MI"), (rtp, "ng")):
        assert result.status is Status.SKIP
        assert result.summary.startswith(f"{label} 198.51.100.7:") and "is not on this host" in result.summary
        assert "198.51.100.7 is not an address of this machine" in result.summary
        assert "run opsconsole diagnose on the server" in result.remedy
    assert "not the target: pid 100 " in osips.summary and "not the target: pid 300 " in rtp.summary


async def test_a_local_non_loopback_address_counts_as_this_host(tree, tmp_path):
    _opensips(tree, 100, mi=("tcp", "0.0.0.0", 8888), cfg_dir=tmp_path)  # a wildcard listener serves every address
    osips, _, _ = await _checks(Config(mi_url="http://192.0.2.10:8888/mi", ng=None, proc_root=str(tree.root)))
    assert osips.status is Status.OK and osips.summary.startswith("opensips pid 100 ")


async def test_mi_served_by_a_process_that_is_not_opensips_is_not_vouched_for(tree, tmp_path):
    _opensips(tree, 100, cfg_dir=tmp_path)
    tree.process(400, ["python3", "-m", "opsconsole_demo"], exe="/usr/bin/python3", sockets=[("tcp", "127.0.0.1", 8877)])
    osips, _, _ = await _checks(Config(mi_url="http://127.0.0.1:8877/mi", ng=None, proc_root=str(tree.root)))
    assert osips.status is Status.SKIP
    assert osips.summary.startswith("MI 127.0.0.1:8877 is served by pid 400 (python3), not by a opensips daemon")


async def test_mi_fifo_held_open_missing_and_left_behind(tree, tmp_path):
    fifo = tmp_path / "opensips_fifo"
    fifo.write_text("")  # stands for the FIFO: only its path and existence matter here
    _opensips(tree, 100, mi=None, fifo=str(fifo), cfg_dir=tmp_path)
    osips, _, _ = await _checks(Config(mi_url=None, mi_fifo=str(fifo), ng=None, proc_root=str(tree.root)))
    assert osips.status is Status.OK and osips.summary.startswith("opensips pid 100 ")
    osips, _, _ = await _checks(Config(mi_url=None, mi_fifo=str(tmp_path / "absent"), ng=None,
                                       proc_root=str(tree.root)))
    assert osips.status is Status.FAIL and osips.summary.startswith(f"MI FIFO {tmp_path / 'absent'} does not exist")
    stale = tmp_path / "stale_fifo"
    stale.write_text("")
    osips, _, _ = await _checks(Config(mi_url=None, mi_fifo=str(stale), ng=None, proc_root=str(tree.root)))
    assert osips.status is Status.FAIL and "no process holds MI FIFO" in osips.summary


async def test_the_rtpengine_that_owns_the_ng_socket_not_the_decoy(tree):
    _rtpengine(tree, 300, 60000)  # a decoy on the classic port
    _rtpengine(tree, 310, 40123, address="0.0.0.0")
    config = Config(mi_url=None, ng=("127.0.0.1", 40123), proc_root=str(tree.root))
    _, rtp, _ = await _checks(config)
    assert rtp.status is Status.OK and rtp.summary.startswith("rtpengine pid 310 ")
    assert "not the target: pid 300 " in rtp.summary
    _, rtp, _ = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40999), proc_root=str(tree.root)))
    assert rtp.status is Status.FAIL and rtp.summary.startswith("nothing on this host listens on ng 127.0.0.1:40999")


async def test_many_other_instances_are_summed_up_briefly(tree):
    for n in range(5):
        _rtpengine(tree, 500 + n, 40500 + n)
    _, rtp, _ = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40999), proc_root=str(tree.root)))
    assert rtp.summary.endswith("not the target: pid 500 ng 127.0.0.1:40500, pid 501 ng 127.0.0.1:40501, "
                                "pid 502 ng 127.0.0.1:40502 and 2 more")
    assert "pid 504" in rtp.evidence  # every one in the evidence


async def test_an_impostor_holding_the_ng_socket_is_a_warning(tree):
    _rtpengine(tree, 300, 40123, exe=tree.binary("rtpengine", real=False))
    _, rtp, _ = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40123), proc_root=str(tree.root)))
    assert rtp.status is Status.WARN and "held by pid 300, named rtpengine but" in rtp.summary


async def test_unreadable_owners_not_root(tree, tmp_path):
    """Another user's processes hide their descriptors: the daemon's own settings vouch, or nothing can tell."""
    _rtpengine(tree, 300, 40123, readable_fds=False)
    _rtpengine(tree, 310, 40124, readable_fds=False)
    _, rtp, _ = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40123), proc_root=str(tree.root)))
    assert rtp.status is Status.OK and rtp.summary.startswith("rtpengine pid 300 ")
    assert "by its configuration" in rtp.summary and "run as root" in rtp.summary
    assert rtp.summary.endswith("; not the target: pid 310 ng 127.0.0.1:40124")  # not itself
    tree.listen("udp", "127.0.0.1", 40555)  # somebody's socket, owner hidden
    _, rtp, _ = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40555), proc_root=str(tree.root)))
    assert rtp.status is Status.UNKNOWN and rtp.remedy == "run as root"


async def test_a_failing_owner_scan_is_an_error_entry_and_the_checks_list_the_daemons(tree):
    _rtpengine(tree, 300, 40123)

    def broken():
        raise OSError("no interfaces today")

    _, rtp, host = await _checks(Config(mi_url=None, ng=("127.0.0.1", 40123), proc_root=str(tree.root)),
                                 addresses=broken)
    assert host.facts["targets"] == {} and "reading socket owners failed: OSError" in host.errors[0]
    assert rtp.status is Status.OK and rtp.summary.startswith("rtpengine running: pid 300 ")


@pytest.mark.parametrize(("host", "local"), [("127.0.0.1", True), ("127.0.0.53", True), ("::1", True),
                                             ("localhost", True), ("192.0.2.10", True), ("::ffff:192.0.2.10", True),
                                             ("203.0.113.1", False), ("sip.example.net", None)])
def test_locality(host, local):
    assert locality(host, LOCAL)[0] is local


# --------------------------------------------------------------------------- real processes


@pytest.mark.rtpengine
async def test_a_real_rtpengine_owns_its_ng_socket(start_rtpengine, real_host_proc):
    daemon = start_rtpengine(ports=20)
    _, rtp, _ = await _checks(daemon.config())
    assert rtp.status is Status.OK and rtp.summary.startswith(f"rtpengine pid {daemon.pid} ")
    _, rtp, _ = await _checks(daemon.config(ng=("127.0.0.1", free_port())))
    assert rtp.status is Status.FAIL and "nothing on this host listens on ng" in rtp.summary


@pytest.mark.rtpengine
async def test_the_demo_is_never_a_false_failure(real_host_proc):
    async with DemoPlatform(size=20, real_rtpengine=None, tick=None) as demo:
        demo_config = Config(mi_url=demo.mi_url, ng=demo.ng, cli=demo.cli, demo=True,
                             demo_simulated_relay=not demo.media.real)
        osips, rtp, _ = await _checks(demo_config)
        assert osips.status is Status.SKIP and "demo platform" in osips.summary
        assert rtp.status in (Status.OK, Status.SKIP)
        if demo.media.real:
            assert rtp.summary.startswith(f"rtpengine pid {demo.media.process.pid} ")
        # Pointed at the demo from outside (--mi-url, no --demo): served by a Python process, not OpenSIPS.
        osips, _, _ = await _checks(Config(mi_url=demo.mi_url, ng=None))
        assert osips.status is Status.SKIP and "not by a opensips daemon" in osips.summary
