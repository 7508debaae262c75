"""How long a whole-table MI read would hold OpenSIPS MI (MISession.hold_estimate).

`opsconsole mi ul_dump` at 100k contacts on 3.4 holds the single mi_http process for minutes.  The
size comes from the counters (one cheap `get_statistics`), the time from the curve the live console
already uses (`live.estimate_dump_seconds`, measured on 3.4); the caller decides what is too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .commands import CHEAP_ALTERNATIVES, heavy_read_table
from .live import estimate_dump_seconds
from .parse import parse_overview

COUNTER_GROUP = {"contacts": "usrloc:", "dialogs": "dialog:"}


@dataclass(frozen=True)
class HoldEstimate:
    table: str  # "contacts" or "dialogs"
    count: int | None  # None: the counters do not say
    seconds: float | None  # None when count is
    counters: str  # the statistics group read, for messages
    alternatives: str  # what answers the usual question cheaply


async def estimate_hold(call: Callable[..., Awaitable[Any]], method: str, params: Any) -> HoldEstimate | None:
    """None when `method` with `params` is not a whole-table read; else its size and estimated hold.
    `call(method, params)` is the MI session's call (names mapped to the server's version)."""
    table = heavy_read_table(method, params)
    if table is None:
        return None
    group = COUNTER_GROUP[table]
    overview = parse_overview(statistics=await call("get_statistics", {"statistics": [group]}))
    count = overview.registered_contacts if table == "contacts" else overview.active_dialogs
    # Dialog lists have no measurement of their own; the ul_dump curve stands in (a dialog entry is larger).
    brief = isinstance(params, dict) and bool(params.get("brief"))
    seconds = None if count is None else estimate_dump_seconds(count, brief=brief)
    return HoldEstimate(table, count, seconds, group, CHEAP_ALTERNATIVES[table])
