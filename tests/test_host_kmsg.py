"""/dev/kmsg record parsing and reading: real record format, EPIPE, EAGAIN, windows, EPERM."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from console.errors import ProtocolError
from opsconsole_host import kmsg

KMSG = Path(__file__).parent / "fixtures" / "host" / "kmsg"
REAL = kmsg.split_dump((KMSG / "real_boot.records").read_bytes())
RTP = kmsg.split_dump((KMSG / "rtpengine.records").read_bytes())


def fake_device(records, *, errors=None):
    """opener/reader pair behaving like /dev/kmsg: one record per read, then EAGAIN.

    `errors` maps a read index to an exception raised instead of returning a record.
    """
    queue = list(records)
    errors = dict(errors or {})
    calls = {"n": 0}

    def opener(path, flags):
        assert flags & os.O_NONBLOCK
        return os.open(os.devnull, os.O_RDONLY)

    def reader(fd, size):
        n = calls["n"]
        calls["n"] += 1
        if n in errors:
            raise errors[n]
        if not queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return queue.pop(0)

    return opener, reader


def test_split_dump_keeps_continuation_lines_with_their_record():
    with_fields = [r for r in REAL if b"\n SUBSYSTEM=" in r]
    assert len(REAL) == 14 and len(with_fields) == 4
    assert all(r.count(b"\n") == 3 for r in with_fields)


def test_parse_record_with_continuation_lines():
    record = kmsg.parse_record(next(r for r in REAL if r.startswith(b"6,194,")))
    assert (record.facility, record.level, record.seq, record.usec) == (0, 6, 194, 291033)
    assert record.message.startswith("acpi PNP0A08:00: _OSC: OS supports")
    assert record.fields == {"SUBSYSTEM": "acpi", "DEVICE": "+acpi:PNP0A08:00"}
    assert record.level_name == "info"


def test_parse_record_unescapes_and_splits_prio():
    tab = kmsg.parse_record(next(r for r in REAL if r.startswith(b"6,90,")))
    assert tab.message == "rcu: \tRCU restricting CPUs from NR_CPUS=256 to nr_cpu_ids=2."
    emerg = kmsg.parse_record(next(r for r in REAL if r.startswith(b"0,113,")))
    assert emerg.level_name == "emerg" and kmsg.is_interesting(emerg)
    user_err = kmsg.parse_record(RTP[3])
    assert (user_err.facility, user_err.level) == (1, 3)
    assert user_err.mentions_rtpengine


def test_message_may_contain_semicolons():
    record = kmsg.parse_record(b"6,7,8,-;a; b;c\n")
    assert record.message == "a; b;c"


@pytest.mark.parametrize("raw", [b"no header here\n", b"6,1,2;msg\n", b"x,1,2,-;msg\n", b"6,-1,2,-;msg\n"])
def test_malformed_records_raise_protocol_error(raw):
    with pytest.raises(ProtocolError):
        kmsg.parse_record(raw)


@given(st.binary(max_size=200))
def test_parse_record_raises_only_protocol_error(data):
    try:
        record = kmsg.parse_record(data)
    except ProtocolError:
        return
    assert 0 <= record.level <= 7


def test_read_until_eagain_skipping_epipe_and_filtering_by_window():
    # usec of RTP records: 100.0 s .. 101.5 s since boot; window 10 s at t=105 keeps them all,
    # the boot records (< 0.5 s) are outside it.
    opener, reader = fake_device(REAL + RTP, errors={3: BrokenPipeError(errno.EPIPE, "Broken pipe")})
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10, now_monotonic=105.0, opener=opener, reader=reader)
    assert result.ok and result.lost == 1
    assert result.scanned == len(REAL) + len(RTP)
    assert [r.seq for r in result.records] == [2000, 2001, 2003]  # rtpengine lines + err; the warning is dropped


def test_wide_window_keeps_err_or_worse_only():
    opener, reader = fake_device(REAL)
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10_000, now_monotonic=200.0, opener=opener, reader=reader)
    assert [r.seq for r in result.records] == [113]  # the one emerg record; warnings and info are not kept


def test_malformed_record_is_counted_not_fatal():
    opener, reader = fake_device([b"garbage\n", RTP[1]])
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10, now_monotonic=105.0, opener=opener, reader=reader)
    assert result.malformed == 1 and [r.seq for r in result.records] == [2001]


def test_read_error_other_than_eagain_is_reported():
    opener, reader = fake_device(RTP, errors={1: OSError(errno.EIO, "Input/output error")})
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10, now_monotonic=105.0, opener=opener, reader=reader)
    assert not result.ok and "Input/output error" in result.error
    assert [r.seq for r in result.records] == [2000]  # what was read before the error is kept


def test_saved_dump_file_is_read_record_by_record(tmp_path):
    dump = tmp_path / "kmsg.dump"
    dump.write_bytes(b"".join(REAL + RTP))
    result = kmsg.read_kmsg(str(dump), window_s=10, now_monotonic=105.0)
    assert result.scanned == len(REAL) + len(RTP)
    assert {r.seq for r in result.records} == {2000, 2001, 2003}


def test_missing_device_is_an_error_not_a_traceback(tmp_path):
    result = kmsg.read_kmsg(str(tmp_path / "nope"), window_s=10)
    assert not result.ok and not result.permission_denied and "nope" in result.error


@pytest.mark.parametrize("where", ["open", "read"])
def test_eperm_maps_to_restricted_remedy(where):
    denied = PermissionError(errno.EPERM, "Operation not permitted")
    opener, reader = fake_device(RTP, errors={0: denied} if where == "read" else None)
    if where == "open":
        def opener(path, flags):
            raise denied
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10, now_monotonic=105.0, opener=opener, reader=reader)
    assert result.permission_denied and not result.records
    assert "run as root or set kernel.dmesg_restrict=0" in result.remedy


def test_eperm_via_monkeypatched_os_open(monkeypatch):
    def refuse(path, flags, *args):
        raise PermissionError(errno.EPERM, "Operation not permitted", path)

    monkeypatch.setattr(kmsg.os, "open", refuse)
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10)
    assert result.permission_denied and "dmesg_restrict" in result.remedy


def _dmesg_restrict() -> int:
    return int(Path("/proc/sys/kernel/dmesg_restrict").read_text())


@pytest.mark.skipif(not Path("/dev/kmsg").exists() or os.geteuid() != 0, reason="needs /dev/kmsg and root")
def test_real_dev_kmsg_as_root():
    result = kmsg.read_kmsg("/dev/kmsg", window_s=10**9)
    assert result.ok and result.scanned > 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/dev/kmsg").exists(),
                    reason="needs root, setpriv and /dev/kmsg")
def test_real_dev_kmsg_as_nobody_follows_dmesg_restrict():
    code = ("import json; from opsconsole_host.kmsg import read_kmsg; r = read_kmsg(window_s=10**9); "
            "print(json.dumps({'denied': r.permission_denied, 'ok': r.ok, 'remedy': r.remedy, 'n': r.scanned}))")
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if _dmesg_restrict() == 1:
        assert out["denied"] and "dmesg_restrict=0" in out["remedy"]
    else:
        assert out["ok"] and out["n"] > 0


def test_eacces_is_a_file_permission_problem_not_the_sysctl():
    def refuse(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    result = kmsg.read_kmsg("/dev/kmsg", window_s=10, opener=refuse)
    assert result.permission_denied and result.remedy == "run as root" and "dmesg_restrict" not in result.error


def test_unreadable_path_does_not_raise(tmp_path):
    result = kmsg.read_kmsg(str(tmp_path), window_s=10)  # a directory: open works, read fails (EISDIR)
    assert not result.ok and "Is a directory" in result.error and not result.records
