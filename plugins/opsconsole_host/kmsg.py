"""Kernel log from /dev/kmsg, without running dmesg.

Record format (Documentation/ABI/testing/dev-kmsg):
    `prio,seq,usec,flags[,more];message\n` followed by optional continuation
    lines ` KEY=value\n` (device dictionary).  Non-printable bytes in the
    message arrive escaped as `\\xNN`.  Each read() returns exactly one record;
    EPIPE means the record was overwritten in the ring buffer (read on),
    EAGAIN (non-blocking) means we are at the end.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import Callable

from console.errors import ProtocolError

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
ERR = 3
RTPENGINE_WORDS = ("rtpengine", "xt_rtpengine")
RESTRICTED_REMEDY = "run as root or set kernel.dmesg_restrict=0 (sysctl -w kernel.dmesg_restrict=0)"
MAX_RECORD = 8192  # the kernel refuses reads with smaller buffers for long records (EINVAL)
MAX_RECORDS = 100_000  # bound the loop even if the ring keeps producing
MAX_DUMP_BYTES = 32 << 20

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True, slots=True)
class KmsgRecord:
    facility: int
    level: int
    seq: int
    usec: int  # microseconds since boot
    flags: str  # "-" normal, "c" continuation (fragment) in old kernels
    message: str
    fields: dict[str, str] = field(default_factory=dict)  # SUBSYSTEM=..., DEVICE=...

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def mentions_rtpengine(self) -> bool:
        text = self.message.lower()
        return any(word in text for word in RTPENGINE_WORDS)


@dataclass(frozen=True, slots=True)
class KmsgResult:
    """What read_kmsg found: records of interest, or why it could not read."""

    records: tuple[KmsgRecord, ...] = ()
    scanned: int = 0  # records read from the ring
    lost: int = 0  # EPIPE: overwritten while we read
    malformed: int = 0
    permission_denied: bool = False
    error: str = ""
    remedy: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _unescape(raw: bytes) -> str:
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode("utf-8", errors="replace")


def parse_record(data: bytes) -> KmsgRecord:
    """One /dev/kmsg record (as one read() returns it) -> KmsgRecord; ProtocolError if malformed."""
    header, sep, rest = data.partition(b";")
    if not sep:
        raise ProtocolError(f"kmsg record without ';' header separator: {data[:60]!r}")
    parts = header.split(b",")
    if len(parts) < 4:
        raise ProtocolError(f"kmsg record header needs prio,seq,usec,flags: {header[:60]!r}")
    try:
        prio, seq, usec = (int(p) for p in parts[:3])
    except ValueError:
        raise ProtocolError(f"kmsg record header has non-numeric fields: {header[:60]!r}") from None
    if prio < 0 or seq < 0 or usec < 0:
        raise ProtocolError(f"kmsg record header has negative fields: {header[:60]!r}")
    lines = rest.split(b"\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith(b" ") and b"=" in line:
            key, _, value = line[1:].partition(b"=")
            fields[_unescape(key)] = _unescape(value)
    return KmsgRecord(
        facility=prio >> 3,
        level=prio & 7,
        seq=seq,
        usec=usec,
        flags=parts[3].decode("ascii", errors="replace"),
        message=_unescape(lines[0]),
        fields=fields,
    )


def is_interesting(record: KmsgRecord) -> bool:
    """err or worse, or anything about rtpengine (its module logs at info)."""
    return record.level <= ERR or record.mentions_rtpengine


def _denied(exc: OSError, path: str) -> KmsgResult:
    if exc.errno == errno.EACCES:  # file permissions, not the sysctl
        return KmsgResult(permission_denied=True, error=f"cannot read {path}: permission denied",
                          remedy="run as root")
    return KmsgResult(
        permission_denied=True,
        error=f"cannot read the kernel log: {exc.strerror or 'operation not permitted'} (kernel.dmesg_restrict is set)",
        remedy=RESTRICTED_REMEDY,
    )


def read_kmsg(
    path: str = "/dev/kmsg",
    window_s: float = 3600,
    now_monotonic: float | None = None,
    *,
    opener: Callable[[str, int], int] | None = None,
    reader: Callable[[int, int], bytes] | None = None,
) -> KmsgResult:
    """Interesting records of the last `window_s` seconds; never raises.

    `now_monotonic` is seconds since boot (time.monotonic(), the clock the
    kernel stamps records with); `opener`/`reader` exist for tests.
    """
    now = time.monotonic() if now_monotonic is None else now_monotonic
    opener = opener or os.open  # looked up per call so tests can patch os.open
    reader = reader or os.read
    oldest_usec = (now - window_s) * 1_000_000
    try:
        fd = opener(path, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError as exc:
        return _denied(exc, path)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return _denied(exc, path)
        return KmsgResult(error=f"cannot open {path}: {exc.strerror or exc}")
    found: list[KmsgRecord] = []
    scanned = lost = malformed = 0
    try:
        if _is_regular_file(fd):
            reader = _dump_reader(fd)  # a saved dump: many records per read, re-split them
        while scanned + lost + malformed < MAX_RECORDS:
            try:
                data = reader(fd, MAX_RECORD)
            except BlockingIOError:
                break  # EAGAIN: no more records
            except BrokenPipeError:
                lost += 1  # EPIPE: overwritten under us; the next read goes on
                continue
            except PermissionError as exc:
                return _denied(exc, path)
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    lost += 1
                    continue
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                if exc.errno == errno.EPERM:
                    return _denied(exc, path)
                return KmsgResult(tuple(found), scanned, lost, malformed,
                                  error=f"reading {path} failed: {exc.strerror or exc}")
            if not data:
                break  # a regular file (tests, or a copied log) ends with b""
            try:
                record = parse_record(data)
            except ProtocolError:
                malformed += 1
                continue
            scanned += 1
            if record.usec >= oldest_usec and is_interesting(record):
                found.append(record)
    finally:
        _close_quietly(fd)
    return KmsgResult(tuple(found), scanned, lost, malformed)


def _is_regular_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, TypeError, ValueError):
        return False  # a fake fd from a test opener


def _dump_reader(fd: int) -> Callable[[int, int], bytes]:
    """A reader returning one record per call from a regular file, like /dev/kmsg does."""
    chunks = []
    size = 0
    while size < MAX_DUMP_BYTES:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break  # keep what was read; a dump is best effort
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    records = iter(split_dump(b"".join(chunks)))
    return lambda _fd, _size: next(records, b"")


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def split_dump(data: bytes) -> list[bytes]:
    """Split concatenated records (a saved /dev/kmsg dump) back into single records.

    A record starts on a line that does not begin with a space.
    """
    records: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b" ") and records:
            records[-1] += line
        elif line.strip():
            records.append(line)
    return records
