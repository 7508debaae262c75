"""The host side: daemons found and the kernel facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    cmdline: tuple[str, ...] = ()
    user: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # parsed from cmdline + config file
    error: str = ""  # AccessDenied etc.
    suspect: str = ""  # why this process is probably not the real daemon ("" = trusted)


@dataclass(frozen=True, slots=True)
class HostState:
    hostname: str = ""
    rtpengine: tuple[ProcessInfo, ...] = ()
    opensips: tuple[ProcessInfo, ...] = ()
    kernel_modules: dict[str, Any] = field(default_factory=dict)  # filled by the host plugin
    facts: dict[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
