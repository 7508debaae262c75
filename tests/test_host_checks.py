"""Host checks on HostState built directly: every status path."""

import time

import pytest

from console.config import Config, Thresholds
from console.model import HostState, ProcessInfo, Snapshot, SourceStatus, Status
from console.plugins import CheckContext
from opsconsole_host import checks as C


def rtp(pid=4242, suspect="", **settings):
    base = {"listen-ng": "127.0.0.1:2223", "listen-cli": "127.0.0.1:2224", "port-min": 30000, "port-max": 40000,
            "table": 0}
    base.update(settings)
    return ProcessInfo(pid, "rtpengine", ("/usr/bin/rtpengine",), "rtpengine", base, suspect=suspect)


def osips(pid=100, suspect="", **settings):
    base = {"config-file": "/etc/opensips/opensips.cfg", "workers": 12,
            "mi_http": {"url": "http://127.0.0.1:8888/mi"}, "mi_fifo": "/tmp/opensips_fifo"}
    base.update(settings)
    return ProcessInfo(pid, "opensips", ("/usr/sbin/opensips",), "opensips", base, suspect=suspect)


KM_LOADED = {"modules_supported": True, "xt_RTPENGINE": True, "rtpengine_table": (0,),
             "ip_tables": "module", "x_tables": "module", "ip_tables_builtin": False}
KM_NOT_LOADED = {"modules_supported": True, "xt_RTPENGINE": False, "rtpengine_table": None,
                 "ip_tables": "missing", "x_tables": "unknown", "ip_tables_builtin": None}
KM_NO_MODULES = {"modules_supported": False, "xt_RTPENGINE": None, "rtpengine_table": None,
                 "ip_tables": "builtin", "x_tables": "builtin", "ip_tables_builtin": True}


def ctx(host=None, source_error="", window=3600):
    sources = {"host": SourceStatus("host", host is not None, source_error)}
    snap = Snapshot(collected_at=time.time(), sources=sources, host=host)
    return CheckContext(snap, Config(thresholds=Thresholds(dmesg_window_s=window)), time.time())


def record(level, message, age_s=60.0, seq=1):
    return {"level": level, "level_name": ["emerg", "alert", "crit", "err", "warning", "notice", "info",
                                           "debug"][level], "message": message, "age_s": age_s, "seq": seq,
            "rtpengine": "rtpengine" in message.lower()}


def dmesg(records=(), **extra):
    base = {"ok": True, "error": "", "remedy": "", "permission_denied": False, "scanned": 300, "records": list(records)}
    base.update(extra)
    return {"dmesg": base}


ALL_CHECKS = [C.check_rtpengine_process, C.check_xt_rtpengine, C.check_iptables, C.check_dmesg,
              C.check_opensips_process]


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_failed_host_source_gives_unknown_with_the_error(check):
    result = check(ctx(None, source_error="host facts could not be read: boom"))
    assert result.status is Status.UNKNOWN and "boom" in result.summary and result.remedy


def test_check_ids_are_registered():
    assert [spec.id for spec in C.CHECKS] == ["rtpengine.process", "kernel.xt_rtpengine", "kernel.iptables",
                                              "kernel.dmesg", "opensips.process"]


# --------------------------------------------------------------------------- rtpengine.process


def test_rtpengine_running():
    result = C.check_rtpengine_process(ctx(HostState(rtpengine=(rtp(),))))
    assert result.status is Status.OK
    assert "pid 4242" in result.summary and "ng 127.0.0.1:2223" in result.summary and "ports 30000-40000" in result.summary


def test_rtpengine_none_fails_with_remedy():
    result = C.check_rtpengine_process(ctx(HostState()))
    assert result.status is Status.FAIL
    assert "systemctl start rtpengine-daemon" in result.remedy and "journalctl -u rtpengine-daemon" in result.remedy


def test_rtpengine_impostor_only_fails_and_says_why():
    fake = rtp(pid=999, suspect="named rtpengine but /tmp/rtpengine is not a rtpengine binary")
    result = C.check_rtpengine_process(ctx(HostState(rtpengine=(fake,))))
    assert result.status is Status.FAIL and "pid 999 ignored" in result.summary and "not a rtpengine binary" in result.summary


def test_several_rtpengines_are_listed_each():
    two = (rtp(1, **{"listen-ng": "127.0.0.1:2223"}), rtp(2, **{"listen-ng": "127.0.0.1:2233"}))
    result = C.check_rtpengine_process(ctx(HostState(rtpengine=two)))
    assert result.status is Status.OK and "2 rtpengine daemons" in result.summary
    assert "pid 1 ng 127.0.0.1:2223" in result.summary and "pid 2 ng 127.0.0.1:2233" in result.summary


def test_rtpengines_sharing_an_ng_address_warn():
    two = (rtp(1, **{"listen-ng": "2223"}), rtp(2, **{"listen-ng": "127.0.0.1:2223"}))
    result = C.check_rtpengine_process(ctx(HostState(rtpengine=two)))
    assert result.status is Status.WARN and result.remedy


def test_unreadable_rtpengine_is_still_reported_running():
    denied = ProcessInfo(7, "rtpengine", error="access denied reading pid 7: run as root")
    result = C.check_rtpengine_process(ctx(HostState(rtpengine=(denied,))))
    assert result.status is Status.OK and "access denied" in result.summary


# --------------------------------------------------------------------------- kernel.xt_rtpengine


def test_kernel_table_present_ok():
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(),), kernel_modules=KM_LOADED)))
    assert result.status is Status.OK and "table(s) 0" in result.summary


def test_userspace_by_choice_is_skipped():
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(table=-1),), kernel_modules=KM_NOT_LOADED)))
    assert result.status is Status.SKIP and "by choice" in result.summary


def test_no_module_support_is_explained_not_failed():
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(),), kernel_modules=KM_NO_MODULES)))
    assert result.status is Status.UNKNOWN
    assert "no loadable-module support" in result.summary and "table = -1" in result.remedy


def test_module_missing_fails_with_modprobe_remedy():
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(),), kernel_modules=KM_NOT_LOADED)))
    assert result.status is Status.FAIL
    assert "modprobe xt_RTPENGINE" in result.remedy and "rtpengine-kernel-dkms" in result.remedy


def test_module_loaded_without_table_warns():
    km = dict(KM_LOADED, rtpengine_table=None)
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(),), kernel_modules=km)))
    assert result.status is Status.WARN and "fell back to userspace" in result.summary


def test_wrong_table_id_warns():
    result = C.check_xt_rtpengine(ctx(HostState(rtpengine=(rtp(table=3),), kernel_modules=KM_LOADED)))
    assert result.status is Status.WARN and "table 3" in result.summary


# --------------------------------------------------------------------------- kernel.iptables


@pytest.mark.parametrize("km, word", [(KM_LOADED, "ip_tables module"), (KM_NO_MODULES, "ip_tables builtin")])
def test_iptables_module_or_builtin_ok(km, word):
    result = C.check_iptables(ctx(HostState(kernel_modules=km)))
    assert result.status is Status.OK and word in result.summary


def test_iptables_missing_fails_when_kernel_forwarding_wanted():
    result = C.check_iptables(ctx(HostState(rtpengine=(rtp(),), kernel_modules=KM_NOT_LOADED)))
    assert result.status is Status.FAIL and "modprobe ip_tables" in result.remedy


def test_iptables_missing_is_skipped_for_userspace():
    result = C.check_iptables(ctx(HostState(rtpengine=(rtp(table=-1),), kernel_modules=KM_NOT_LOADED)))
    assert result.status is Status.SKIP


def test_iptables_unknown_when_nothing_tells():
    km = dict(KM_NOT_LOADED, ip_tables="unknown")
    result = C.check_iptables(ctx(HostState(kernel_modules=km)))
    assert result.status is Status.UNKNOWN and result.remedy


# --------------------------------------------------------------------------- kernel.dmesg


def test_dmesg_clean():
    result = C.check_dmesg(ctx(HostState(facts=dmesg())))
    assert result.status is Status.OK and "no kernel errors in the last 1 h" in result.summary


def test_dmesg_rtpengine_info_is_shown_but_ok():
    result = C.check_dmesg(ctx(HostState(facts=dmesg([record(6, "xt_RTPENGINE: Registering module")]))))
    assert result.status is Status.OK and "Registering module" in result.summary


def test_dmesg_errors_warn():
    facts = dmesg([record(3, "nvme0: I/O error"), record(6, "eth0 up")])
    result = C.check_dmesg(ctx(HostState(facts=facts)))
    assert result.status is Status.WARN and "1 kernel error(s)" in result.summary and "err: nvme0" in result.summary


def test_dmesg_rtpengine_errors_fail():
    facts = dmesg([record(3, "xt_RTPENGINE: [0] failed to allocate stream")])
    result = C.check_dmesg(ctx(HostState(facts=facts)))
    assert result.status is Status.FAIL and "failed to allocate" in result.summary and result.remedy


def test_dmesg_records_older_than_the_window_are_ignored():
    facts = dmesg([record(3, "old error", age_s=7200)])
    assert C.check_dmesg(ctx(HostState(facts=facts), window=3600)).status is Status.OK
    assert C.check_dmesg(ctx(HostState(facts=facts), window=10_800)).status is Status.WARN


def test_dmesg_restricted_is_unknown_with_remedy():
    facts = dmesg(ok=False, permission_denied=True, error="cannot read the kernel log: Operation not permitted",
                  remedy="run as root or set kernel.dmesg_restrict=0", dmesg_restrict=1)
    result = C.check_dmesg(ctx(HostState(facts=facts)))
    assert result.status is Status.UNKNOWN and "dmesg_restrict=0" in result.remedy


def test_dmesg_other_error_and_missing_facts_are_unknown():
    result = C.check_dmesg(ctx(HostState(facts=dmesg(ok=False, error="cannot open /dev/kmsg: No such file"))))
    assert result.status is Status.UNKNOWN and "No such file" in result.summary
    assert C.check_dmesg(ctx(HostState())).status is Status.UNKNOWN


# --------------------------------------------------------------------------- opensips.process


def test_opensips_running():
    result = C.check_opensips_process(ctx(HostState(opensips=(osips(),))))
    assert result.status is Status.OK
    assert "pid 100" in result.summary and "cfg /etc/opensips/opensips.cfg" in result.summary
    assert "12 workers" in result.summary


def test_opensips_none_fails_with_remedy():
    result = C.check_opensips_process(ctx(HostState()))
    assert result.status is Status.FAIL and "systemctl start opensips" in result.remedy


def test_opensips_impostor_fails():
    result = C.check_opensips_process(ctx(HostState(opensips=(osips(suspect="not a opensips binary"),))))
    assert result.status is Status.FAIL and "ignored" in result.summary


def test_opensips_cfg_error_is_shown():
    proc = osips(config_error="OpenSIPS config file not readable (permission denied): /etc/opensips/opensips.cfg")
    result = C.check_opensips_process(ctx(HostState(opensips=(proc,))))
    assert result.status is Status.OK and "permission denied" in result.summary


def test_rtpengine_checks_skipped_only_when_the_demo_simulates_the_relay():
    snap = Snapshot(collected_at=time.time(), sources={"host": SourceStatus("host", True, "")}, host=HostState())
    simulated = CheckContext(snap, Config(demo=True, demo_simulated_relay=True), time.time())
    for check in (C.check_rtpengine_process, C.check_xt_rtpengine):
        result = check(simulated)
        assert result.status == Status.SKIP and "simulated in-process" in result.summary
    real = C.check_rtpengine_process(CheckContext(snap, Config(demo=True), time.time()))
    assert real.status == Status.FAIL and "no rtpengine daemon running" in real.summary  # the demo's real one died
