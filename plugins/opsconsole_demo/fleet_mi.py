"""The MI a fleet node of the demo answers beyond a lone node's: RTPengine sets (`rtpengine_show`,
`rtpengine_enable`, a write), the clusterer (`clusterer_list`, `clusterer_list_shtags`) and the
load and shared memory of an unhealthy node.

Shapes (OpenSIPS 3.4, captured in tests/fixtures/opensips-3.4/cluster/; 4.0 answers the same under `rtpengine:show`,
`rtpengine:enable`, `clusterer:list`, `clusterer:list_shtags`):
- rtpengine_show -> [{"Set": 0, "Nodes": [{"url", "index", "disabled", "weight", "recheck_ticks"}]}]
- rtpengine_enable url=U enable=0|1 [setid=N] -> "OK"; an unknown url: error 404 "RTP engine not found"
  (the string in rtpengine.so); an engine disabled through MI stays disabled (recheck_ticks = the
  unsigned -1 OpenSIPS stores for "no recheck").
- clusterer_list -> {"Clusters": [{"cluster_id", "Nodes": [{"node_id", "db_id", "url", "link_state",
  "state", "next_hop", "description"}]}]}: the other nodes, never the local one.
- clusterer_list_shtags -> [{"Tag", "Cluster", "State": "active"|"backup"}]
A node without the clusterer module answers its methods "Method not found", as OpenSIPS does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .mi_render import MiError, MiRenderer, _bad_params

MI_DISABLED_TICKS = 4294967295  # rtpengine_enable enable=0: disabled until enabled again (no recheck)
FLEET_SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "rtpengine_enable": (("url", "enable"), ("url", "enable", "setid")),
    "clusterer_list": ((),),
    "clusterer_list_shtags": ((),),
}
FLEET_NAMES_40 = {"rtpengine:enable": "rtpengine_enable", "clusterer:list": "clusterer_list",
                  "clusterer:list_shtags": "clusterer_list_shtags"}
CLUSTERER_METHODS = {"clusterer_list", "clusterer_list_shtags"}


@dataclass
class Engine:
    url: str
    weight: int = 1
    disabled: bool = False
    recheck_ticks: int = 0


@dataclass
class EngineSet:
    set_id: int
    engines: list[Engine]


@dataclass(frozen=True)
class Peer:
    """Another node of the cluster, as this one sees it."""

    node_id: int
    url: str
    link_state: str = "Up"  # Up | Probe | Down
    state: str = "enabled"


@dataclass(frozen=True)
class Cluster:
    cluster_id: int
    peers: tuple[Peer, ...]
    shtags: tuple[tuple[str, str], ...]  # (tag, "active" | "backup") on this node


@dataclass
class NodeProfile:
    """What makes one demo node differ from another: its sets, its cluster, its health."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    # set 0 as OpenSIPS sees it: the node's own engine first, then these (e.g. a disabled spare)
    extra_engines: list[Engine] = field(default_factory=list)
    sets: list[EngineSet] = field(default_factory=list)  # filled when the node starts (its engine's url known)
    cluster: Cluster | None = None
    load: int | None = None  # forced load:load (%) of an unhealthy node
    shm_percent: float | None = None  # forced shmem:real_used_size share of total_size


class FleetMiRenderer(MiRenderer):
    def __init__(self, *args, profile: NodeProfile, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile
        if not profile.sets:
            profile.sets = [EngineSet(0, [Engine(self.rtpengine_url), *profile.extra_engines])]

    # ------------------------------------------------------------------ dispatch

    def resolve(self, method: str) -> str | None:
        name = FLEET_NAMES_40.get(method) if self.is_40 else (method if method in FLEET_SIGNATURES else None)
        if name is None:
            return super().resolve(method)
        if name in CLUSTERER_METHODS and self.profile.cluster is None:
            return None  # the module is not loaded on this node
        return name

    def _bind(self, name: str, params: Any) -> dict:
        if name not in FLEET_SIGNATURES:
            return super()._bind(name, params)
        signatures = FLEET_SIGNATURES[name]
        if params is None:
            params = {}
        if isinstance(params, list):
            match = next((s for s in signatures if len(s) == len(params)), None)
            if match is None:
                raise _bad_params()
            return dict(zip(match, params))
        if not isinstance(params, dict) or tuple(sorted(params)) not in {tuple(sorted(s)) for s in signatures}:
            raise _bad_params()
        return params

    def _mi_which(self, command: str | None = None) -> list:
        listing = super()._mi_which(command)
        if command is None and self.profile.cluster is not None:
            names = [n for n in FLEET_NAMES_40 if n.startswith("clusterer")] if self.is_40 else sorted(CLUSTERER_METHODS)
            listing = listing + names
        return listing

    # ------------------------------------------------------------------ rtpengine

    def _mi_rtpengine_show(self) -> list:
        out = []
        for engine_set in self.profile.sets:
            nodes = [{"url": e.url, "index": i, "disabled": int(e.disabled), "weight": e.weight,
                      "recheck_ticks": e.recheck_ticks} for i, e in enumerate(engine_set.engines)]
            out.append({"Set": engine_set.set_id, "Nodes": nodes})
        return out

    def _mi_rtpengine_enable(self, url: Any, enable: Any, setid: Any = None) -> str:
        try:
            enabled = int(enable)
            wanted_set = None if setid is None else int(setid)
        except (TypeError, ValueError):
            raise _bad_params("Bad type for parameter 'enable'") from None
        matched = [e for s in self.profile.sets if wanted_set is None or s.set_id == wanted_set
                   for e in s.engines if url in ("all", e.url)]
        if not matched:
            raise MiError(404, "RTP engine not found")
        for engine in matched:
            engine.disabled = not enabled
            engine.recheck_ticks = 0 if enabled else MI_DISABLED_TICKS
        return "OK"

    # ------------------------------------------------------------------ clusterer

    def _mi_clusterer_list(self) -> dict:
        cluster = self.profile.cluster
        # a db-less cluster (the captures): db_id -1, next_hop the peer's id as text or "none"
        nodes = [{"node_id": p.node_id, "db_id": -1, "url": p.url, "link_state": p.link_state,
                  "state": p.state, "next_hop": str(p.node_id) if p.link_state == "Up" else "none",
                  "description": "none"}
                 for p in cluster.peers]
        return {"Clusters": [{"cluster_id": cluster.cluster_id, "Nodes": nodes}]}

    def _mi_clusterer_list_shtags(self) -> list:
        cluster = self.profile.cluster
        return [{"Tag": tag, "Cluster": cluster.cluster_id, "State": state} for tag, state in cluster.shtags]

    # ------------------------------------------------------------------ health

    def statistics(self) -> dict[str, int]:
        values = super().statistics()
        profile = self.profile
        if profile.load is not None:
            values["load:load"] = values["load:load-all"] = profile.load
            values["load:load1m"] = values["load:load1m-all"] = profile.load - 6
            values["load:load10m"] = values["load:load10m-all"] = profile.load - 11
        if profile.shm_percent is not None:
            total = values["shmem:total_size"]
            used = int(total * profile.shm_percent / 100)
            values["shmem:real_used_size"] = used
            values["shmem:used_size"] = used - 155_560
            values["shmem:max_used_size"] = used + 274_960
            values["shmem:free_size"] = total - used
        return values
