"""HostSource on fixture trees, and the plugin loading through its entry point."""

from pathlib import Path

import pytest

from console.config import Config
from console.errors import OpsError
from console.model import HostState, ProcessInfo, Status
from console.plugins import CheckContext, CollectOptions, load_plugins
from console.snapshot import Collector
from opsconsole_host.source import HostSource

HOST = Path(__file__).parent / "fixtures" / "host"
KMSG_DUMP = HOST / "kmsg" / "rtpengine.records"


def finder_with(rtpengine=(), opensips=()):
    def finder(name):
        return rtpengine if name == "rtpengine" else opensips
    return finder


async def test_collect_on_a_fixture_tree():
    daemon = ProcessInfo(4242, "rtpengine", ("rtpengine",), "root", {"table": 0})
    source = HostSource(Config(proc_root=str(HOST / "proc_loaded")), kmsg_path=str(KMSG_DUMP),
                        finder=finder_with((daemon,)), monotonic=lambda: 105.0)
    state = await source.collect(CollectOptions())
    assert isinstance(state, HostState)
    assert state.hostname == "media1" and state.rtpengine == (daemon,) and state.opensips == ()
    assert state.kernel_modules["xt_RTPENGINE"] is True and state.kernel_modules["rtpengine_table"] == (0,)
    dmesg = state.facts["dmesg"]
    assert dmesg["ok"] and dmesg["dmesg_restrict"] == 0 and dmesg["scanned"] == 4
    assert [r["seq"] for r in dmesg["records"]] == [2000, 2001, 2003]
    assert dmesg["records"][1]["age_s"] == pytest.approx(4.5)


async def test_failing_process_listing_is_an_error_entry_not_an_exception():
    def broken(name):
        raise RuntimeError("psutil exploded")

    source = HostSource(Config(proc_root=str(HOST / "proc_no_modules")), kmsg_path=str(HOST / "absent"),
                        finder=broken)
    state = await source.collect(CollectOptions())
    assert len(state.errors) == 2 and "psutil exploded" in state.errors[0]
    assert state.kernel_modules["modules_supported"] is False
    assert not state.facts["dmesg"]["ok"] and "absent" in state.facts["dmesg"]["error"]


async def test_unexpected_bug_becomes_ops_error(monkeypatch):
    source = HostSource(Config(proc_root=str(HOST / "proc_loaded")), finder=finder_with())
    monkeypatch.setattr("opsconsole_host.procfs.kernel_modules_facts", lambda root: 1 / 0)
    with pytest.raises(OpsError, match="ZeroDivisionError"):
        await source.collect(CollectOptions())


async def test_plugin_loads_through_the_entry_point_and_runs_in_a_collection():
    loaded = load_plugins(only={"host"})
    assert not loaded.failures and [p.name for p in loaded.plugins] == ["host"]
    config = Config(proc_root=str(HOST / "proc_no_modules"))
    (source,) = loaded.sources(config)
    assert (source.name, source.kind) == ("host", "host")
    collector = Collector(config, plugins=loaded)
    snapshot = await collector.collect()
    assert snapshot.sources["host"].ok and snapshot.host is not None
    ctx = CheckContext(snapshot, config, snapshot.collected_at)
    results = {spec.id: await spec(ctx) for spec in loaded.checks()}
    assert results["kernel.iptables"].status is Status.OK  # built in, per the fixture tree
    assert all(r.summary for r in results.values())


async def test_host_facts_are_reused_until_asked_for_again():
    calls: list[str] = []

    def counting(name):
        calls.append(name)
        return ()

    source = HostSource(Config(proc_root=str(HOST / "proc_loaded")), kmsg_path=str(KMSG_DUMP), finder=counting)
    first = await source.collect(CollectOptions(host_facts=False))  # nothing read yet: reads anyway
    again = await source.collect(CollectOptions(host_facts=False))
    assert again is first and calls == ["rtpengine", "opensips"]
    fresh = await source.collect(CollectOptions(host_facts=True))
    assert fresh is not first and calls == ["rtpengine", "opensips"] * 2


def test_kernel_config_is_parsed_once_per_file_version(tmp_path, monkeypatch):
    import gzip

    from opsconsole_host import procfs

    (tmp_path / "config.gz").write_bytes(gzip.compress(b"CONFIG_MODULES=y\n"))
    parsed: list[str] = []
    real = procfs._parse_kernel_config
    monkeypatch.setattr(procfs, "_parse_kernel_config", lambda text: parsed.append(text) or real(text))
    assert procfs.read_kernel_config(tmp_path) == procfs.read_kernel_config(tmp_path) == {"CONFIG_MODULES": "y"}
    assert len(parsed) == 1
    (tmp_path / "config.gz").write_bytes(gzip.compress(b"# CONFIG_MODULES is not set\nCONFIG_X=m\n"))
    assert procfs.read_kernel_config(tmp_path) == {"CONFIG_MODULES": "n", "CONFIG_X": "m"}
    assert len(parsed) == 2
