"""Readers for the kernel facts opsconsole needs, all relative to a proc root.

Every function takes `proc_root` so tests run on fixture trees.  No
subprocesses: `lsmod` is just /proc/modules, and `lsmod | grep ip_tables`
gives a false negative on kernels with netfilter built in, which is why the
built-in evidence (/proc/net/ip_tables_names, /proc/config.gz) is read too.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

# Module name -> its state word ("Live", "Loading", "Unloading") and users.
ModuleTable = dict[str, dict[str, Any]]


def _read_text(path: Path) -> str | None:
    """File text, or None when it does not exist / cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None
    except OSError:
        return None


def read_modules(proc_root: str | os.PathLike = "/proc") -> ModuleTable | None:
    """Parse /proc/modules; None when it is missing (kernel built without module support).

    Line format: `name size refcount users state address`, e.g.
    `xt_RTPENGINE 65536 1 - Live 0x0000000000000000 (OE)`.
    """
    text = _read_text(Path(proc_root) / "modules")
    if text is None:
        return None
    modules: ModuleTable = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        users = fields[3].strip(",").split(",") if len(fields) > 3 and fields[3] != "-" else []
        modules[fields[0]] = {
            "size": int(fields[1]) if len(fields) > 1 and fields[1].isdecimal() else None,
            "refcount": int(fields[2]) if len(fields) > 2 and fields[2].isdecimal() else None,
            "used_by": [u for u in users if u],
            "state": fields[4] if len(fields) > 4 else "",
        }
    return modules


# The kernel config cannot change while the kernel runs: parsed once per file version, not per poll.
_config_cache: dict[tuple[str, int, int, int], dict[str, str]] = {}


def read_kernel_config(proc_root: str | os.PathLike = "/proc") -> dict[str, str] | None:
    """CONFIG_* values from /proc/config.gz (`=y`, `=m`, or "n" for `# ... is not set`); None if absent."""
    path = Path(proc_root) / "config.gz"
    try:
        st = path.stat()
        key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
        if key in _config_cache:
            return _config_cache[key]
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except (OSError, EOFError, zlib.error):
        return None
    config = _parse_kernel_config(text)
    _config_cache[key] = config
    return config


def _parse_kernel_config(text: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key] = value.strip().strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:-len(" is not set")]] = "n"
    return config


def ip_tables_builtin(proc_root: str | os.PathLike = "/proc") -> bool | None:
    """Whether iptables (ip_tables + x_tables) is compiled into the kernel.

    True/False from /proc/config.gz when present; otherwise inferred: the
    /proc/net/ip_tables_names entry exists while no ip_tables module is
    listed (or modules are not supported at all).  None when nothing tells.
    """
    config = read_kernel_config(proc_root)
    if config is not None:
        return config.get("CONFIG_IP_NF_IPTABLES") == "y" and config.get("CONFIG_NETFILTER_XTABLES") == "y"
    names_exist = (Path(proc_root) / "net" / "ip_tables_names").exists()
    modules = read_modules(proc_root)
    if modules is None:
        return names_exist  # nothing can be loaded: present means built in
    if "ip_tables" in modules:
        return False
    return True if names_exist else None


def netfilter_state(proc_root: str | os.PathLike = "/proc", modules: ModuleTable | None = None) -> dict[str, str]:
    """'module' / 'builtin' / 'missing' / 'unknown' for ip_tables and x_tables."""
    if modules is None:
        modules = read_modules(proc_root)
    config = read_kernel_config(proc_root)
    names_exist = (Path(proc_root) / "net" / "ip_tables_names").exists()
    config_keys = {"ip_tables": "CONFIG_IP_NF_IPTABLES", "x_tables": "CONFIG_NETFILTER_XTABLES"}
    state: dict[str, str] = {}
    for name, key in config_keys.items():
        if modules is not None and name in modules:
            state[name] = "module"
        elif config is not None:
            state[name] = "builtin" if config.get(key) == "y" else "missing"
        elif names_exist:
            # ip_tables registers ip_tables_names, and it needs x_tables.
            state[name] = "builtin"
        elif modules is None:
            state[name] = "missing"  # cannot be loaded and not there
        else:
            state[name] = "missing" if name == "ip_tables" else "unknown"
    return state


def rtpengine_table_present(proc_root: str | os.PathLike = "/proc") -> tuple[int, ...] | None:
    """Table ids under /proc/rtpengine/ (created by xt_RTPENGINE); None when the directory is absent."""
    base = Path(proc_root) / "rtpengine"
    try:
        entries = list(base.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return ()
    return tuple(sorted(int(e.name) for e in entries if e.name.isdecimal()))


def dmesg_restrict(proc_root: str | os.PathLike = "/proc") -> int | None:
    """kernel.dmesg_restrict (1: only CAP_SYSLOG may read the kernel log); None if unknown."""
    text = _read_text(Path(proc_root) / "sys" / "kernel" / "dmesg_restrict")
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def hostname(proc_root: str | os.PathLike = "/proc") -> str:
    text = _read_text(Path(proc_root) / "sys" / "kernel" / "hostname")
    if text and text.strip():
        return text.strip()
    import socket

    return socket.gethostname()


def kernel_modules_facts(proc_root: str | os.PathLike = "/proc") -> dict[str, Any]:
    """The `HostState.kernel_modules` dict: everything the kernel checks read."""
    modules = read_modules(proc_root)
    netfilter = netfilter_state(proc_root, modules)
    wanted = ("xt_RTPENGINE", "ip_tables", "x_tables", "iptable_filter", "nf_tables")
    return {
        "modules_supported": modules is not None,
        "xt_RTPENGINE": None if modules is None else "xt_RTPENGINE" in modules,
        "ip_tables": netfilter["ip_tables"],
        "x_tables": netfilter["x_tables"],
        "ip_tables_builtin": ip_tables_builtin(proc_root),
        "rtpengine_table": rtpengine_table_present(proc_root),
        "loaded": {name: modules[name] for name in wanted if modules and name in modules},
    }


# --------------------------------------------------------------------------- processes and sockets

# The /proc every host reader uses when none is given.  Production never changes it; the test
# suite points it at an empty tree (tests/conftest.py) so no test can see this machine's daemons.
HOST_PROC_ROOT = "/proc"


def proc_root_or_host(proc_root: str | os.PathLike | None) -> Path:
    return Path(HOST_PROC_ROOT if proc_root is None else proc_root)


def _access_error(pid: int, exc: OSError):
    """psutil's exception types, so callers handle a /proc read like a psutil call."""
    import psutil

    if isinstance(exc, PermissionError):
        return psutil.AccessDenied(pid)
    return psutil.NoSuchProcess(pid)


class ProcfsProcess:
    """One /proc/PID directory with the part of psutil.Process's API the host plugin uses.

    Read from a proc root, so fixture trees stand in for the machine in tests."""

    def __init__(self, root: Path, pid: int) -> None:
        self.root, self.pid = root, pid
        self.path = root / str(pid)

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise _access_error(self.pid, exc) from None

    def _link(self, name: str, missing: str | None = "") -> str:
        try:
            return os.readlink(self.path / name)
        except FileNotFoundError:
            if missing is None or not self.path.is_dir():
                raise _access_error(self.pid, FileNotFoundError()) from None
            return missing  # kernel threads have no exe
        except OSError as exc:
            raise _access_error(self.pid, exc) from None

    def name(self) -> str:
        return self._read("comm").strip()

    def cmdline(self) -> list[str]:
        text = self._read("cmdline")
        return text.rstrip("\0").split("\0") if text.strip("\0") else []

    def exe(self) -> str:
        return self._link("exe")

    def cwd(self) -> str:
        return self._link("cwd", missing=None)

    def _status(self, key: str) -> str:
        for line in self._read("status").splitlines():
            if line.startswith(f"{key}:"):
                return line.split(":", 1)[1].strip()
        return ""

    def ppid(self) -> int:
        value = self._status("PPid")
        return int(value) if value.isdecimal() else 0

    def username(self) -> str:
        import pwd

        uid = self._status("Uid").split()[:1]
        if not uid or not uid[0].isdecimal():
            return ""
        try:
            return pwd.getpwuid(int(uid[0])).pw_name
        except KeyError:
            return uid[0]

    def fd_targets(self) -> list[str]:
        """What each open descriptor points at ("socket:[123]", "/run/x/fifo"); AccessDenied when not ours."""
        # Plain strings, not pathlib: a relay holds thousands of descriptors (its media ports), and a
        # Path per descriptor cost more than the readlink itself (#18).
        fd_dir = f"{self.path}/fd/"
        try:
            names = os.listdir(fd_dir)
        except OSError as exc:
            raise _access_error(self.pid, exc) from None
        targets = []
        readlink = os.readlink
        for name in names:
            try:
                targets.append(readlink(fd_dir + name))
            except OSError:
                continue  # closed meanwhile
        return targets


def iter_processes(proc_root: str | os.PathLike | None = None):
    """Every process under the proc root, as ProcfsProcess objects (none when the root is unreadable)."""
    root = proc_root_or_host(proc_root)
    try:
        entries = os.listdir(root)
    except OSError:
        return
    for pid in sorted(int(entry) for entry in entries if entry.isdecimal()):  # pid order: stable reports
        yield ProcfsProcess(root, pid)


@dataclass(frozen=True)
class Listener:
    """A bound socket from /proc/net/{tcp,tcp6,udp,udp6}: TCP in LISTEN, UDP bound."""

    proto: str  # "tcp" / "udp"
    address: str  # "127.0.0.1", "::", "0.0.0.0"
    port: int
    inode: int


_TCP_LISTEN, _UDP_UNCONNECTED = "0A", "07"


def _hex_address(text: str) -> tuple[str, int]:
    """'0100007F:0050' -> ('127.0.0.1', 80); IPv6 as the kernel prints it (four host-order words)."""
    address, _, port = text.partition(":")
    return _hex_ip(address), int(port, 16)


@functools.lru_cache(maxsize=256)
def _hex_ip(address: str) -> str:
    """One address of the socket tables, converted once: a relay's thousands of media sockets share a
    handful of addresses (#18)."""
    import ipaddress

    raw = bytes.fromhex(address)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return str(ip)


def listeners(proc_root: str | os.PathLike | None = None) -> list[Listener]:
    """The listening TCP and bound UDP sockets of the proc root's network namespace.

    For this host (the root is /proc) the kernel is asked over sock_diag netlink, which filters by state
    itself: /proc/net/tcp lists every connection, TIME_WAIT included, and a busy host has thousands
    (~35 ms to read 9 000 lines here, #18).  The tables are read when netlink is not available, and for
    a fixture tree."""
    root = proc_root_or_host(proc_root)
    if os.fspath(root) == "/proc":
        found = diag_listeners()
        if found is not None:
            return found
    return table_listeners(root)


def table_listeners(root: Path) -> list[Listener]:
    found: list[Listener] = []
    for name, proto, state in (("tcp", "tcp", _TCP_LISTEN), ("tcp6", "tcp", _TCP_LISTEN),
                               ("udp", "udp", _UDP_UNCONNECTED), ("udp6", "udp", _UDP_UNCONNECTED)):
        text = _read_text(root / "net" / name)
        for line in (text or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != state:
                continue
            try:
                address, port = _hex_address(fields[1])
                found.append(Listener(proto, address, port, int(fields[9])))
            except ValueError:
                continue  # a line we do not understand is not a listener we can match
    return found


# sock_diag (linux/inet_diag.h): one dump per (family, protocol), TCP in LISTEN, UDP unconnected (the
# kernel's TCP_CLOSE, "07" in /proc/net/udp).
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLMSG_ERROR, _NLMSG_DONE = 4, 20, 2, 3
_DIAG_QUERIES = (("tcp", 2, 6, 1 << 10), ("tcp", 10, 6, 1 << 10), ("udp", 2, 17, 1 << 7), ("udp", 10, 17, 1 << 7))
_NLMSG_HEADER = struct.Struct("=LHHLL")
# nlmsghdr (skipped), then inet_diag_msg: family, (state, timer, retrans), sport (big-endian), (dport), src,
# (dst, if, cookie, expires, rqueue, wqueue, uid), inode
_DIAG_SOCKET = struct.Struct("=16xB3x2s2x16s16x4x8x4x4x4x4xI")


def diag_listeners() -> list[Listener] | None:
    """Listeners of this network namespace over sock_diag netlink; None when the kernel will not say."""
    import socket

    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG) as sock:
            sock.settimeout(1.0)
            found: list[Listener] = []
            for seq, (proto, family, protocol, states) in enumerate(_DIAG_QUERIES, start=1):
                found += _diag_dump(sock, seq, proto, family, protocol, states)
            return found
    except (OSError, ValueError, struct.error, AttributeError):
        return None


def _diag_dump(sock, seq: int, proto: str, family: int, protocol: int, states: int) -> list[Listener]:
    request = struct.pack("=BBBBI", family, protocol, 0, 0, states) + bytes(48)  # inet_diag_req_v2, any socket id
    flags = 0x1 | 0x300  # NLM_F_REQUEST | NLM_F_DUMP
    sock.send(_NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, flags, seq, 0) + request)
    found: list[Listener] = []
    unpack = _DIAG_SOCKET.unpack_from
    while True:
        data = sock.recv(1 << 16)
        offset, end = 0, len(data)
        while offset + _NLMSG_HEADER.size <= end:
            length, kind, _, reply_seq, _ = _NLMSG_HEADER.unpack_from(data, offset)
            if length < _NLMSG_HEADER.size:
                raise ValueError("malformed netlink message")
            if reply_seq == seq:
                if kind == _SOCK_DIAG_BY_FAMILY:  # inet_diag_msg: the bound address, port and inode
                    family_seen, port, src, inode = unpack(data, offset)
                    found.append(Listener(proto, _diag_ip(family_seen, src), int.from_bytes(port, "big"), inode))
                elif kind == _NLMSG_DONE:
                    return found
                elif kind == _NLMSG_ERROR:
                    errno = -struct.unpack_from("=i", data, offset + _NLMSG_HEADER.size)[0]
                    raise OSError(errno, "sock_diag refused the dump")
            offset += (length + 3) & ~3


@functools.lru_cache(maxsize=256)
def _diag_ip(family: int, raw: bytes) -> str:
    import ipaddress

    if family == 2:
        return str(ipaddress.IPv4Address(raw[:4]))
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped or ip)


def owners(proc_root: str | os.PathLike | None, wanted: set[str],
           first: Iterable[int] = ()) -> tuple[dict[str, list[int]], int]:
    """A pid holding each wanted descriptor target ("socket:[inode]" or a path), and how many
    processes could not be read (not root): an owner may hide among those.

    `first` pids are looked at before the rest (the daemons, then the pids above them: OpenSIPS
    workers follow their main pid), and the scan stops once every target has an owner."""
    found: dict[str, list[int]] = {}
    unreadable = 0
    missing = set(wanted)
    root = proc_root_or_host(proc_root)
    first = [pid for pid in first if (root / str(pid)).is_dir()]
    seen, low = set(first), min(first, default=0)
    # Workers are forked after their main process: the pids above the lowest daemon's come first.
    rest = sorted((p for p in iter_processes(proc_root) if p.pid not in seen), key=lambda p: (p.pid < low, p.pid))
    for proc in itertools.chain((ProcfsProcess(root, pid) for pid in first), rest):
        if not missing:
            break
        try:
            targets = proc.fd_targets()
        except Exception:  # AccessDenied (another user's process) or vanished
            unreadable += 1
            continue
        for target in missing.intersection(targets):
            found.setdefault(target, []).append(proc.pid)
        missing.difference_update(found)
    return found, unreadable
