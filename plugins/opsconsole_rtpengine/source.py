"""RTPengine collector: ng (UDP) and CLI (TCP) together into one MediaState.

Either channel may be down or unconfigured; what the other one gives is
still returned, with the failure recorded.  Only when both fail does
`collect` raise.

A target with several engines (`[[targets]] ng = [A, B, …]`, Config.relays_ng: one OpenSIPS balancing a set)
has each call's media on one of them: the other engines' sessions are listed over ng too (Call-IDs, then a
query on the engine that holds the call), each session marked with its engine (`MediaSession.target`), so a
call's media is looked up where it is.  An engine that does not answer leaves the list incomplete (never
"a call without media").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable

from console.config import Config
from console.errors import ConfigError, OpsError, Timeout
from console.model import MediaSession, MediaState, MediaTotals, PortUsage, replace
from console.plugins import CollectOptions

from . import parse
from .cli import CliClient, SessionList
from .ng import NgClient, NgError

LIST_LIMIT = 100_000  # without a limit RTPengine lists only 32 calls
QUERY_CONCURRENCY = 16
NG_LIST_FALLBACK = 200  # call-ids that fit one datagram even when they are 300 bytes long


class RTPengineSource:
    name = "rtpengine"
    kind = "media"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ng = NgClient(*config.ng, timeout=config.timeout) if config.ng else None
        self.cli = CliClient(*config.cli, timeout=config.timeout) if config.cli else None
        self.session_list = SessionList(self.target)  # reuses the sessions of unchanged lines
        # the target's other engines (the first of relays_ng is `ng`): their sessions, listed over ng
        others = dict.fromkeys(tuple(a) for a in config.relays_ng if not config.ng or tuple(a) != tuple(config.ng))
        self.others = [NgClient(*address, timeout=config.timeout) for address in others]
        self._main_ng_ok = False  # this collection's: the main engine answered ng

    @property
    def target(self) -> str:
        client = self.ng or self.cli
        return client.target if client else ""

    async def collect(self, options: CollectOptions) -> MediaState:
        if self.ng is None and self.cli is None:
            raise ConfigError("rtpengine: neither an ng nor a CLI address is configured",
                              hint="set [rtpengine] ng / cli or OPSCONSOLE_NG / OPSCONSOLE_CLI")
        try:
            return await self._collect(options)
        except OpsError:
            raise
        except Exception as exc:  # a bug here must not take the console down
            raise OpsError(f"rtpengine collection failed: {type(exc).__name__}: {exc}", target=self.target) from exc

    async def _collect(self, options: CollectOptions) -> MediaState:
        ng, cli = self.ng, self.cli
        ping, stats, iface, listed, calls = await asyncio.gather(
            _attempt(ng.ping() if ng else None),
            _attempt(ng.statistics() if ng else None),
            _attempt(cli.interfaces_and_quality() if cli else None),
            _attempt(self._list_sessions() if cli else None),
            _attempt(ng.list(LIST_LIMIT) if ng and not cli else None),
        )
        if ng and cli and not isinstance(listed, tuple):
            # The CLI lists every session with its deletion mark; ng `list` (Call-IDs only, and
            # no reply at all above ~1 500 calls) is only the fallback when the CLI fails.
            calls = await _attempt(ng.list(LIST_LIMIT))
        interfaces, iface_quality = iface if isinstance(iface, tuple) else (iface, None)
        errors: list[str] = []
        if isinstance(calls, Timeout) and ng and not isinstance(ping, OpsError):
            # The daemon is up: the full list did not fit one datagram.  Show a partial list.
            errors.append(f"ng list of all calls got no reply (too many calls for one UDP datagram, "
                          f"rtpengine#1856); showing at most {NG_LIST_FALLBACK} — configure the CLI to see all")
            calls = await _attempt(ng.list(NG_LIST_FALLBACK))
        ng_ok = None if ng is None else not isinstance(ping, OpsError)
        cli_ok = None if cli is None else not (isinstance(interfaces, OpsError) and isinstance(listed, OpsError))
        if ng_ok is not True and cli_ok is not True:  # every configured channel failed
            failures = [f"{name}: {error}" for name, error in (("ng", ping), ("cli", interfaces)) if error is not None]
            raise OpsError(f"rtpengine unreachable: {'; '.join(failures)}", target=self.target)

        totals = await self._totals(stats, errors)
        ports = self._ports(interfaces, stats, errors)
        sessions = self._sessions(calls, listed, errors)
        sessions_total = totals.total_sessions if totals.total_sessions is not None else len(sessions)
        if self.others:
            main_count = len(sessions)
            sessions, complete = await self._other_engines(sessions, errors)
            # every other engine's listed sessions count too; one that did not answer leaves the list
            # incomplete (one more than known), so no call on it is called "without media"
            sessions_total += len(sessions) - main_count + (0 if complete else 1)
        self._main_ng_ok = bool(ng_ok)
        if options.media_details and (ng_ok or self.others):
            sessions = await self._detail(sessions, errors, options.media_detail_callids)
        return MediaState(
            target=self.target,
            ng_ok=ng_ok,
            ng_error=str(ping) if isinstance(ping, OpsError) else "",
            cli_ok=cli_ok,
            cli_error=str(interfaces if isinstance(interfaces, OpsError) else listed) if cli_ok is False else "",
            sessions=sessions,
            sessions_total=sessions_total,
            ports=ports,
            totals=totals,
            errors=tuple(errors),
            interface_quality=iface_quality if iface_quality is not None else _statistics_quality(stats),
        )

    async def _list_sessions(self) -> tuple[MediaSession, ...]:
        assert self.cli is not None
        return self.session_list.parse(await self.cli.command("list sessions all"))

    async def _totals(self, stats: Any, errors: list[str]) -> MediaTotals:
        if isinstance(stats, dict):
            try:
                return parse.parse_statistics(stats)
            except OpsError as exc:
                errors.append(f"ng statistics: {exc}")
        elif isinstance(stats, OpsError):
            errors.append(f"ng statistics: {stats}")
        if self.cli is None:
            return MediaTotals()
        totals = await _attempt(self.cli.totals())
        if isinstance(totals, OpsError):
            errors.append(f"cli list totals: {totals}")
            return MediaTotals()
        return totals

    def _ports(self, interfaces: Any, stats: Any, errors: list[str]) -> PortUsage:
        if isinstance(interfaces, tuple):
            return parse.port_usage(interfaces)
        if isinstance(interfaces, OpsError):
            errors.append(f"cli list interfaces: {interfaces}")
        if isinstance(stats, dict):
            try:
                return parse.parse_statistics_ports(stats)
            except OpsError as exc:
                errors.append(f"ng statistics interfaces: {exc}")
        return PortUsage()

    def _sessions(self, calls: Any, listed: Any, errors: list[str]) -> tuple[MediaSession, ...]:
        """CLI `list sessions all` (has deletion marks) merged with ng `list` call-ids."""
        by_callid: dict[str, MediaSession] = {}
        target = self.target  # a property: once, not per session
        if isinstance(listed, tuple):
            by_callid.update((s.callid, s if s.target == target else replace(s, target=target)) for s in listed)
        elif isinstance(listed, OpsError):
            errors.append(f"cli list sessions all: {listed}")
        if isinstance(calls, list):
            for callid in calls:
                by_callid.setdefault(callid, MediaSession(callid=callid, target=target))
        elif isinstance(calls, OpsError):
            errors.append(f"ng list: {calls}")
        return tuple(by_callid.values())

    async def _other_engines(self, sessions: tuple[MediaSession, ...],
                             errors: list[str]) -> tuple[tuple[MediaSession, ...], bool]:
        """The sessions of the target's other engines (ng list), each marked with its engine; complete
        when every engine answered."""
        listed = await asyncio.gather(*(_attempt(client.list(LIST_LIMIT)) for client in self.others))
        found = {s.callid: s for s in sessions}
        complete = True
        for client, calls in zip(self.others, listed):
            if isinstance(calls, OpsError) or calls is None:
                errors.append(f"ng list on {client.target}: {calls}")
                complete = False
                continue
            for callid in calls:
                found.setdefault(callid, MediaSession(callid=callid, target=client.target))
        return tuple(found.values()), complete

    def _client_of(self, session: MediaSession) -> NgClient | None:
        """The ng client of the engine that holds `session` (the main one unless another listed it)."""
        other = next((client for client in self.others if client.target == session.target), None)
        return other or (self.ng if self._main_ng_ok else None)

    async def _detail(self, sessions: tuple[MediaSession, ...], errors: list[str],
                      wanted: frozenset[str] | None = None) -> tuple[MediaSession, ...]:
        """One ng query per session (only the `wanted` Call-IDs when given: e.g. the rows on screen), on the
        engine that holds it."""
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)
        failures: list[str] = []

        async def one(listed: MediaSession) -> MediaSession:
            client = self._client_of(listed)
            if client is None:
                return listed
            async with gate:
                reply = await _attempt(client.query(listed.callid))
            if isinstance(reply, NgError) and "Unknown call-id" in reply.reason:
                return listed  # ended between list and query
            if isinstance(reply, OpsError):
                failures.append(str(reply))
                return listed
            try:
                queried = parse.parse_query(listed.callid, reply, queried_at=time.time())
            except OpsError as exc:
                failures.append(f"{listed.callid}: {exc}")
                return listed
            return replace(queried, deleted=listed.deleted, foreign=listed.foreign, proxy=listed.proxy,
                           created=queried.created or listed.created, target=listed.target or self.target)

        asked = [s for s in sessions if wanted is None or s.callid in wanted]
        queried = dict(zip((s.callid for s in asked), await asyncio.gather(*(one(s) for s in asked))))
        detailed = [queried.get(s.callid, s) for s in sessions]
        if failures:
            errors.append(f"ng query failed for {len(failures)} of {len(asked)} calls, first: {failures[0]}")
        return tuple(detailed)

    async def aclose(self) -> None:
        for client in (self.ng, *self.others):
            if client is not None:
                await client.aclose()


def _statistics_quality(stats: Any) -> Any:
    """Per-interface quality from ng statistics (12.4+) when the CLI did not give it."""
    if not isinstance(stats, dict):
        return None
    try:
        return parse.parse_statistics_interface_quality(stats)
    except OpsError:
        return None


async def _attempt(awaitable: Awaitable[Any] | None) -> Any:
    """The awaitable's result, or the OpsError it raised (None when there is nothing to do)."""
    if awaitable is None:
        return None
    try:
        return await awaitable
    except OpsError as exc:
        return exc


def make_sources(config: Config) -> list[RTPengineSource]:
    if config.ng is None and config.cli is None:
        return []
    return [RTPengineSource(config)]
