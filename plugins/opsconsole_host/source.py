"""HostSource: daemons, kernel modules and the kernel log of this machine -> HostState."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any, Callable

from console.config import Config
from console.errors import OpsError
from console.model import HostState, ProcessInfo
from console.plugins import CollectOptions

from . import kmsg, procfs, targets
from .processes import find_daemons

DaemonFinder = Callable[[str], tuple[ProcessInfo, ...]]
MAX_DMESG_LINES = 50  # newest first kept; a flood must not fill the snapshot


class HostSource:
    name = "host"
    kind = "host"

    def __init__(self, config: Config, *, kmsg_path: str = "/dev/kmsg",
                 finder: DaemonFinder | None = None, monotonic: Callable[[], float] | None = None,
                 addresses: targets.LocalAddresses = targets.local_addresses) -> None:
        self.config = config
        self.kmsg_path = kmsg_path
        # Config.proc_root's default "/proc" means the host's (procfs.HOST_PROC_ROOT, which the
        # test suite points at an empty tree); any other value is a fixture tree.
        self.scan_root = None if config.proc_root == "/proc" else config.proc_root
        self.finder = finder or (lambda daemon: find_daemons(daemon, proc_root=self.scan_root))
        self.addresses = addresses
        self.monotonic = monotonic
        self.last: HostState | None = None  # the last reading, reused while host facts are not due

    async def collect(self, options: CollectOptions) -> HostState:
        # A process scan, the module list and the kernel log cost CPU every poll while only the
        # checks read them: a long-running console asks for them on its checks cadence.
        if not options.host_facts and self.last is not None:
            return self.last
        try:
            self.last = await asyncio.to_thread(self.collect_blocking)
            return self.last
        except OpsError:
            raise
        except Exception as exc:  # a bug here must read as data, not a traceback
            raise OpsError(f"host facts could not be read: {type(exc).__name__}: {exc}") from exc

    def collect_blocking(self) -> HostState:
        proc_root = self.config.proc_root
        errors: list[str] = []
        rtpengine = self._daemons("rtpengine", errors)
        opensips = self._daemons("opensips", errors)
        return HostState(
            hostname=procfs.hostname(proc_root),
            rtpengine=rtpengine,
            opensips=opensips,
            kernel_modules=procfs.kernel_modules_facts(proc_root),
            facts={"dmesg": self._dmesg(proc_root), "targets": self._targets(rtpengine + opensips, errors)},
            errors=tuple(errors),
        )

    def _targets(self, daemons: tuple[ProcessInfo, ...], errors: list[str]) -> dict[str, Any]:
        """Who owns the MI and ng sockets the console talks to (see targets.py)."""
        try:
            return targets.ownership(targets.targets_of(self.config), proc_root=self.scan_root,
                                     addresses=self.addresses(), daemons=[p.pid for p in daemons])
        except Exception as exc:  # the checks then list the running daemons; the other host facts stand
            errors.append(f"reading socket owners failed: {type(exc).__name__}: {exc}")
            return {}

    def _daemons(self, daemon: str, errors: list[str]) -> tuple[ProcessInfo, ...]:
        try:
            return tuple(self.finder(daemon))
        except Exception as exc:  # psutil trouble for one daemon must not hide the rest
            errors.append(f"listing {daemon} processes failed: {type(exc).__name__}: {exc}")
            return ()

    def _dmesg(self, proc_root: str) -> dict[str, Any]:
        window = self.config.thresholds.dmesg_window_s
        now = self.monotonic() if self.monotonic else time.monotonic()
        result = kmsg.read_kmsg(self.kmsg_path, window, now)
        records = sorted(result.records, key=lambda r: r.seq)[-MAX_DMESG_LINES:]
        return {
            "ok": result.ok,
            "error": result.error,
            "remedy": result.remedy,
            "permission_denied": result.permission_denied,
            "dmesg_restrict": procfs.dmesg_restrict(proc_root),
            "window_s": window,
            "scanned": result.scanned,
            "lost": result.lost,
            "malformed": result.malformed,
            "records": [_record_dict(r, now) for r in records],
        }

    async def aclose(self) -> None:
        return None


def _record_dict(record: kmsg.KmsgRecord, now: float) -> dict[str, Any]:
    out = asdict(record)
    out["age_s"] = max(0.0, now - record.usec / 1_000_000)
    out["level_name"] = record.level_name
    out["rtpengine"] = record.mentions_rtpengine
    return out
