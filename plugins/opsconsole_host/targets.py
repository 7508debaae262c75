"""Which local process owns the socket the console targets (the MI URL / FIFO, the ng address).

The process checks are about the target, not about whatever daemon happens to run here: a
local target is matched to its owner through the socket tables (/proc/net/{tcp,tcp6,udp,udp6}
inode -> /proc/PID/fd -> socket:[inode]) or, for the MI FIFO, through the descriptor that holds
the FIFO open.  A target on another machine has no local owner to look for.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from . import procfs

WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Target:
    role: str  # "mi" / "ng"
    proto: str  # "tcp" (mi_http), "udp" (ng), "fifo" (mi_fifo)
    text: str  # as shown: "127.0.0.1:8888", "/tmp/opensips_fifo"
    host: str = ""
    port: int = 0


def targets_of(config: Any) -> list[Target]:
    """The MI and ng targets of a Config (mi_url wins over mi_fifo, as the MI client chooses)."""
    found: list[Target] = []
    if getattr(config, "mi_url", None):
        try:
            parts = urlsplit(config.mi_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            host = parts.hostname or ""
        except ValueError:
            host, port = "", 0
        if host:
            shown = f"[{host}]" if ":" in host else host
            found.append(Target("mi", "tcp", f"{shown}:{port}", host, port))
    elif getattr(config, "mi_fifo", None):
        found.append(Target("mi", "fifo", config.mi_fifo))
    if getattr(config, "ng", None):
        host, port = config.ng
        found.append(Target("ng", "udp", f"{host}:{port}", host, int(port)))
    return found


def local_addresses() -> set[str]:
    """Every address of this machine's interfaces (psutil), loopback included."""
    import psutil

    addresses = set()
    try:
        for entries in psutil.net_if_addrs().values():
            for entry in entries:
                addresses.add(entry.address.split("%")[0])
    except OSError:
        pass
    return addresses


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def locality(host: str, addresses: Iterable[str]) -> tuple[bool | None, str]:
    """(True, why) for this machine, (False, why) for another one, (None, why) when a name cannot tell."""
    if host == "localhost":
        return True, f"{host} is this machine"
    ip = _ip(host)
    if ip is None:  # even this machine's own name: which of its addresses it means is the resolver's call
        return None, f"{host} is a name: opsconsole does not resolve it to tell whether it is this machine"
    if ip.is_loopback:
        return True, f"{host} is loopback"
    if ip.is_unspecified or str(ip) in {str(_ip(a)) for a in addresses if _ip(a)}:
        return True, f"{host} is an address of this machine"
    return False, f"{host} is not an address of this machine"


def _listens_on(listener: procfs.Listener, target: Target) -> bool:
    if listener.proto != target.proto or listener.port != target.port:
        return False
    if listener.address in WILDCARDS:
        return True
    wanted = ("127.0.0.1", "::1") if target.host == "localhost" else (str(_ip(target.host) or target.host),)
    return listener.address in wanted


def ownership(targets: list[Target], *, proc_root: str | None = None, addresses: Iterable[str] = (),
              daemons: Iterable[int] = ()) -> dict[str, dict[str, Any]]:
    """{role: facts} — whether each target is on this machine, listened on, and by which pids.

    `daemons`: the main pids of the daemons found; a socket held by one of their workers (OpenSIPS
    runs mi_http in one) names the main process."""
    addresses, daemons = set(addresses), list(daemons)
    sockets = procfs.listeners(proc_root)
    addresses |= {s.address for s in sockets if s.address not in WILDCARDS}
    wanted: dict[str, set[str]] = {}
    facts: dict[str, dict[str, Any]] = {}
    for target in targets:
        entry: dict[str, Any] = {"target": target.text, "proto": target.proto}
        if target.proto == "fifo":
            entry.update(local=True, why="a FIFO is always on this machine")
            entry["exists"] = os.path.exists(target.text)
            wanted[target.role] = {target.text, os.path.realpath(target.text)}
        else:
            local, why = locality(target.host, addresses)
            entry.update(local=local, why=why)
            if local:
                matches = [s for s in sockets if _listens_on(s, target)]
                entry["listening"] = bool(matches)
                wanted[target.role] = {f"socket:[{s.inode}]" for s in matches}
        facts[target.role] = entry
    held, unreadable = procfs.owners(proc_root, set().union(*wanted.values()) if wanted else set(),
                                     first=sorted(daemons))
    for role, fds in wanted.items():
        pids = sorted({pid for fd in fds for pid in held.get(fd, [])})
        facts[role]["owners"] = [_owner(pid, proc_root, set(daemons)) for pid in pids]
        facts[role]["unreadable_processes"] = unreadable
    return facts


def _owner(pid: int, proc_root: str | None, daemons: set[int]) -> dict[str, Any]:
    root = procfs.proc_root_or_host(proc_root)
    try:
        name = procfs.ProcfsProcess(root, pid).name()
    except Exception:  # gone or unreadable since: the pid is still the answer
        name = ""
    return {"pid": pid, "name": name, "daemon_pid": _main_of(pid, root, daemons)}


def _main_of(pid: int, root, mains: set[int], depth: int = 8) -> int:
    """The daemon main pid among `pid`'s ancestors (itself included), 0 when none."""
    for _ in range(depth):
        if pid in mains:
            return pid
        try:
            pid = procfs.ProcfsProcess(root, pid).ppid()
        except Exception:
            return 0
        if pid <= 1:
            return 0
    return 0


LocalAddresses = Callable[[], Iterable[str]]
