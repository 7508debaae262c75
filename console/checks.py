"""Check runner: every check concurrently, each under its own timeout, isolated.

A check that raises or hangs becomes an `unknown` result naming what went
wrong; it never stalls or crashes the run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Iterable

from .config import Config
from .model import CheckResult, Snapshot, Status
from .plugins import CheckContext, CheckSpec


def select_checks(checks: Iterable[CheckSpec], only: Iterable[str] | None = None,
                  skip: Iterable[str] | None = None) -> list[CheckSpec]:
    """--only/--skip take ids or prefixes ('rtpengine' matches 'rtpengine.ng')."""
    only_set = {o.strip() for o in (only or ()) if o.strip()}
    skip_set = {s.strip() for s in (skip or ()) if s.strip()}

    def matches(check_id: str, patterns: set[str]) -> bool:
        return any(check_id == p or check_id.startswith(p + ".") for p in patterns)

    picked = []
    for check in checks:
        if only_set and not matches(check.id, only_set):
            continue
        if matches(check.id, skip_set):
            continue
        picked.append(check)
    return sorted(picked, key=lambda c: c.id)


async def _run_one(check: CheckSpec, ctx: CheckContext, default_timeout: float) -> CheckResult:
    timeout = check.timeout or default_timeout
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(ctx), timeout)
    except asyncio.TimeoutError:
        result = CheckResult(check.id, Status.UNKNOWN, f"check did not finish within {timeout:g} s",
                             remedy="re-run with a larger --timeout; the target may be hung")
    except Exception as exc:  # a buggy check is reported, never fatal
        result = CheckResult(check.id, Status.UNKNOWN, f"check crashed: {type(exc).__name__}: {exc}",
                             remedy="this is a bug in the check; please report it")
    if not isinstance(result, CheckResult):
        result = CheckResult(check.id, Status.UNKNOWN, f"check returned {type(result).__name__}, not a CheckResult")
    elapsed = (time.perf_counter() - started) * 1000
    return CheckResult(result.id or check.id, Status(result.status), result.summary, result.evidence,
                       result.remedy, round(elapsed, 2))


async def run_checks(checks: Iterable[CheckSpec], snapshot: Snapshot, config: Config,
                     *, timeout: float | None = None) -> list[CheckResult]:
    ctx = CheckContext(snapshot=snapshot, config=config, now=time.time())
    budget = timeout if timeout is not None else config.timeout
    checks = list(checks)
    results = await asyncio.gather(*(_run_one(c, ctx, budget) for c in checks))
    return list(results)
