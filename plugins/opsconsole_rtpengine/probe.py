"""Probe one engine of an OpenSIPS RTPengine set: ng ping (timed) and statistics (sessions, ports).

Each probe opens its own ng socket (a fresh cookie per request, so RTPengine never replays another
console's cached reply), answers within `timeout` and never raises: the engine's failure is data.
"""

from __future__ import annotations

import asyncio
import time

from console.errors import OpsError
from console.model.topology import EngineHealth

from . import parse
from .ng import NgClient


def engine_address(url: str) -> tuple[str, int] | None:
    """OpenSIPS's engine url ("udp:127.0.0.1:60000", "udp6:[::1]:60000", "127.0.0.1:60000") -> (host, port)."""
    text = url.strip()
    for scheme in ("udp6:", "udp:"):
        if text.startswith(scheme):
            text = text[len(scheme):]
            break
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
    if not host or ":" in host and not text.startswith("[") or not port_text.isdecimal():
        return None
    port = int(port_text)
    return (host, port) if 0 < port < 65536 else None


async def probe_engine(host: str, port: int, timeout: float) -> EngineHealth:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    client = NgClient(host, port, timeout=timeout, retries=1)
    try:
        ping, stats = await asyncio.gather(_timed_ping(client), _attempt_statistics(client))
    finally:
        await client.aclose()
    if isinstance(ping, OpsError):
        return EngineHealth(address, False, error=str(ping))
    sessions = ports_used = ports_total = None
    if isinstance(stats, dict):
        sessions, ports_used, ports_total = _figures(stats)
    return EngineHealth(address, True, ping_ms=round(ping, 2), sessions=sessions, ports_used=ports_used,
                        ports_total=ports_total, error=str(stats) if isinstance(stats, OpsError) else "")


async def _timed_ping(client: NgClient) -> float | OpsError:
    started = time.perf_counter()
    try:
        await client.ping()
    except OpsError as exc:
        return exc
    return (time.perf_counter() - started) * 1000


async def _attempt_statistics(client: NgClient) -> dict | OpsError:
    try:
        return await client.statistics()
    except OpsError as exc:
        return exc


def _figures(stats: dict) -> tuple[int | None, int | None, int | None]:
    """(current sessions, ports used, ports total) from ng statistics; None where it does not say."""
    try:
        totals = parse.parse_statistics(stats)
        sessions = totals.total_sessions
        if sessions is None and totals.owned_sessions is not None:
            sessions = totals.owned_sessions + (totals.foreign_sessions or 0)
    except OpsError:
        sessions = None
    try:
        ports = parse.parse_statistics_ports(stats)
    except OpsError:
        return sessions, None, None
    if not ports.interfaces:
        return sessions, None, None
    return sessions, ports.used, ports.total
