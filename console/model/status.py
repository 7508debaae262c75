"""Check statuses and results: severity order, Nagios exit codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Check status, ordered by severity for aggregation."""

    OK = "ok"
    SKIP = "skip"
    UNKNOWN = "unknown"
    WARN = "warn"
    FAIL = "fail"

    @property
    def word(self) -> str:
        """Upper-case status word: the meaning must survive NO_COLOR."""
        return self.value.upper()


# Nagios plugin convention: 0 ok, 1 warn, 2 fail (critical), 3 unknown.
EXIT_CODES = {Status.OK: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2, Status.UNKNOWN: 3}


def overall_status(statuses: list[Status]) -> Status:
    """fail > warn > unknown > ok/skip (matches the exit-code contract)."""
    if Status.FAIL in statuses:
        return Status.FAIL
    if Status.WARN in statuses:
        return Status.WARN
    if Status.UNKNOWN in statuses:
        return Status.UNKNOWN
    return Status.OK


def threshold_status(value: float, warn: float, fail: float) -> Status:
    """One rule for every "warn at X %, fail at Y %" check (load, shm, ports)."""
    if value >= fail:
        return Status.FAIL
    if value >= warn:
        return Status.WARN
    return Status.OK


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""
    elapsed_ms: float = 0.0
