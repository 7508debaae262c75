"""RTPengine sets and the clusterer as one OpenSIPS node sees them, joined with each engine's own health.

`Topology` is the state of the "topology" source (Snapshot.parts["topology"]): what `rtpengine_show`,
`clusterer_list`, `clusterer_list_shtags` and `clusterer_list_cap` said, and, for each engine of a set,
what the engine itself answered (ng ping, statistics).  None means unknown (the call failed, was not made,
or the module is not loaded); checks say UNKNOWN/SKIP from it, never a finding.
"""

from __future__ import annotations

from dataclasses import dataclass

# rtpengine_show's recheck_ticks of an engine disabled through MI `rtpengine_enable ... 0`: it is never
# re-checked on its own (captured on 3.4.18 and 4.0.1: 4294967295, the unsigned -1).
RECHECK_NEVER = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """One engine's own answer, asked at the address OpenSIPS uses for it."""

    address: str  # "127.0.0.1:60000", or the url as given when it cannot be parsed
    answered: bool | None  # ng ping answered; None: not asked (unparsable url, not probed)
    ping_ms: float | None = None
    sessions: int | None = None  # statistics: current sessions (owned + foreign)
    ports_used: int | None = None
    ports_total: int | None = None
    error: str = ""  # why it did not answer, or why it was not asked


@dataclass(frozen=True, slots=True)
class RtpEngineNode:
    """One engine of a set (rtpengine_show's Nodes[])."""

    url: str  # "udp:127.0.0.1:60000"
    set_id: int
    index: int = 0
    disabled: bool = False
    weight: int = 1
    recheck_ticks: int = 0
    health: EngineHealth | None = None  # None: not probed

    @property
    def disabled_by_mi(self) -> bool:
        """Disabled by an operator (`rtpengine_enable ... 0`): OpenSIPS never re-enables it itself."""
        return self.disabled and self.recheck_ticks == RECHECK_NEVER

    @property
    def answers(self) -> bool | None:
        return self.health.answered if self.health is not None else None


@dataclass(frozen=True, slots=True)
class RtpSet:
    set_id: int
    engines: tuple[RtpEngineNode, ...] = ()

    @property
    def enabled(self) -> tuple[RtpEngineNode, ...]:
        return tuple(engine for engine in self.engines if not engine.disabled)


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """Another node of a cluster, as this node sees it (clusterer_list never lists the local node)."""

    cluster_id: int
    node_id: int
    url: str = ""
    link_state: str = ""  # Up | Probe | Down
    state: str = ""  # enabled | disabled
    next_hop: str = ""
    description: str = ""
    db_id: int = -1


@dataclass(frozen=True, slots=True)
class SharingTag:
    """A sharing tag's state on the node that reported it (clusterer_list_shtags shows the local node's only)."""

    tag: str
    cluster_id: int
    state: str  # active | backup


@dataclass(frozen=True, slots=True)
class ClusterCapability:
    cluster_id: int
    name: str  # "dialog-dlg-repl"
    state: str = ""  # "synced", "not synced", "sync pending", ...
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Each part None when its call failed or was not made."""

    nodes: tuple[ClusterNode, ...] | None = None
    shtags: tuple[SharingTag, ...] | None = None
    capabilities: tuple[ClusterCapability, ...] | None = None

    @property
    def cluster_ids(self) -> tuple[int, ...]:
        found = {n.cluster_id for n in self.nodes or ()} | {t.cluster_id for t in self.shtags or ()}
        return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class Topology:
    """RTPengine sets and clusterer state of one OpenSIPS node (the `target`).

    `sets` None: unknown (rtpengine not loaded when `rtpengine_loaded` is False, else the call failed);
    `cluster` None: clusterer not loaded (`clusterer_loaded` False) or nothing answered."""

    target: str = ""
    rtpengine_loaded: bool | None = None
    sets: tuple[RtpSet, ...] | None = None
    clusterer_loaded: bool | None = None
    cluster: ClusterState | None = None
    errors: tuple[str, ...] = ()
    opensips_local: bool | None = None  # OpenSIPS runs on this host (its loopback is ours)

    @property
    def engines(self) -> tuple[RtpEngineNode, ...]:
        return tuple(engine for rtp_set in self.sets or () for engine in rtp_set.engines)
