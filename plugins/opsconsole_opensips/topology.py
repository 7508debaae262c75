"""TopologySource: RTPengine sets and clusterer state of one OpenSIPS node, each engine joined with its own health.

A source of kind "part" (Snapshot.parts["topology"] -> console.model.topology.Topology).  It shares the
OpenSIPS source's MI client and command map, and asks only when the module is loaded (`which`):
`rtpengine_show` with rtpengine, `clusterer_list` + `clusterer_list_shtags` + `clusterer_list_cap` with
clusterer — small replies (< 1 KB each), concurrently.  Then every engine of every set is probed at the
address OpenSIPS uses (ng ping, timed, and statistics; a short timeout, one socket and fresh cookies per
engine).  A loopback engine address of an OpenSIPS on another host is that host's loopback: not probed
(health says so), never judged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from console.config import is_loopback
from console.errors import OpsError, ProtocolError, RemoteError
from console.model import replace
from console.model.topology import ClusterState, EngineHealth, RtpEngineNode, RtpSet, Topology
from console.plugins import CollectOptions, collect_budget

from opsconsole_rtpengine.probe import engine_address, probe_engine  # the ng client is that plugin's

from .cluster import parse_capabilities, parse_cluster_nodes, parse_rtp_sets, parse_sharing_tags, sets_from_relays
from .commands import CommandMap

PROBE_TIMEOUT_CAP_S = 0.5  # an engine that takes longer to pong is as good as down for OpenSIPS
Prober = Callable[[str, int, float], Awaitable[EngineHealth]]


def opensips_is_local(config) -> bool:
    """MI over a FIFO, or mi_http on a loopback address: OpenSIPS's loopback is ours."""
    if config.mi_url:
        return is_loopback(urlsplit(config.mi_url).hostname or "")
    return bool(config.mi_fifo)


class TopologySource:
    name = "topology"
    kind = "part"

    def __init__(self, config, opensips, *, prober: Prober | None = None) -> None:
        self.config = config
        self._opensips = opensips  # the OpenSIPSSource of the same node
        self._prober = prober or probe_engine
        self._last: Topology | None = None

    def collect_budget(self, options: CollectOptions, default: float) -> float:
        """It asks MI after the OpenSIPS source's collection of the same poll: that one's budget, then its own."""
        return collect_budget(self._opensips, options, default) + default

    async def collect(self, options: CollectOptions) -> Topology:
        failed = await self._opensips.settled()  # MI is asked after the node's own collection, never beside it
        if failed is not None:
            raise OpsError(f"not asked: the OpenSIPS collection failed ({_reason(failed)}; see opensips.mi)",
                           target=self._opensips.target)
        live = self._opensips.live
        if live is not None and live.dump_running and self._last is not None:
            # mi_http answers one request at a time and our own dump holds it: keep the last reading.
            return replace(self._last, errors=("as of the last poll: a table dump holds OpenSIPS MI",))
        try:
            topology = await self._collect()
        except OpsError as exc:
            exc.target = exc.target or self._opensips.target
            raise
        self._last = topology
        return topology

    async def _collect(self) -> Topology:
        commands = await self._opensips.command_map()
        errors: list[str] = []
        rtpengine_loaded = _offered(commands, "rtpengine_show")
        clusterer_loaded = _offered(commands, "clusterer_list")
        polled = self._polled_relays()
        if not rtpengine_loaded:
            calls = [_none()]
        elif polled is not None:
            calls = [_value(sets_from_relays(polled))]
        else:
            calls = [self._ask(commands, "rtpengine_show", parse_rtp_sets, errors)]
        if clusterer_loaded:
            calls += [self._ask(commands, name, parser, errors) for name, parser in (
                ("clusterer_list", parse_cluster_nodes), ("clusterer_list_shtags", parse_sharing_tags),
                ("clusterer_list_cap", parse_capabilities))]
        sets, *cluster = await asyncio.gather(*calls)
        if sets is not None:
            sets = await self._probe_sets(sets)
        cluster_state = ClusterState(*cluster) if cluster and any(part is not None for part in cluster) else None
        return Topology(target=self.config.name or self._opensips.target, rtpengine_loaded=rtpengine_loaded,
                        sets=sets, clusterer_loaded=clusterer_loaded, cluster=cluster_state, errors=tuple(errors),
                        opensips_local=opensips_is_local(self.config))

    def _polled_relays(self) -> Any:
        """The sets the node's own collection of this poll read (one rtpengine_show a poll), or None: not
        asked, failed, or from an earlier poll (then the topology asks for itself)."""
        relays = getattr(self._opensips, "polled_relays", None)
        at = getattr(self._opensips, "polled_relays_at", None)
        if relays is None or at is None or time.monotonic() - at > max(1.0, self.config.timeout):
            return None
        return relays

    async def _ask(self, commands: CommandMap, logical: str, parser: Callable[[Any], Any], errors: list[str]) -> Any:
        """One cheap call, parsed; an MI error or a bad shape is recorded (None), a dead MI raises."""
        wire = _wire(commands, logical)
        try:
            return parser(await self._opensips.client().call(wire))
        except (RemoteError, ProtocolError) as exc:
            errors.append(f"{wire}: {exc}")
            return None

    async def _probe_sets(self, sets: tuple[RtpSet, ...]) -> tuple[RtpSet, ...]:
        engines = [engine for rtp_set in sets for engine in rtp_set.engines]
        healths = await asyncio.gather(*(self._probe(engine) for engine in engines))
        joined = {id(engine): replace(engine, health=health) for engine, health in zip(engines, healths)}
        return tuple(replace(s, engines=tuple(joined[id(e)] for e in s.engines)) for s in sets)

    async def _probe(self, engine: RtpEngineNode) -> EngineHealth:
        address = engine_address(engine.url)
        if address is None:
            return EngineHealth(engine.url, None, error="unparsable engine url")
        host, port = address
        if is_loopback(host) and not opensips_is_local(self.config):
            return EngineHealth(f"{host}:{port}", None, error="loopback of the OpenSIPS host (not this one): not probed")
        return await self._prober(host, port, min(PROBE_TIMEOUT_CAP_S, self.config.timeout))

    async def aclose(self) -> None:
        """The MI client is the OpenSIPS source's to close; the probes close their own sockets."""


def _wire(commands: CommandMap, logical: str) -> str:
    return commands.name(logical)


def _offered(commands: CommandMap, logical: str) -> bool:
    """Listed by `which` (True when `which` gave nothing: then asking is the only way to know)."""
    return commands.has(logical)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return str(exc) or type(exc).__name__


async def _none() -> None:
    return None


async def _value(value: Any) -> Any:
    return value
