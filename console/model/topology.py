"""RTPengine sets and the clusterer as one OpenSIPS node sees them, joined with each engine's own health.

`Topology` is the state of the "topology" source (Snapshot.parts["topology"]): what `rtpengine_show`,
`clusterer_list`, `clusterer_list_shtags` and `clusterer_list_cap` said, and, for each engine of a set,
what the engine itself answered (ng ping, statistics).  None means unknown (the call failed, was not made,
or the module is not loaded); checks say UNKNOWN/SKIP from it, never a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from .status import CheckResult, Status

SHTAGS_CHECK = "opensips.cluster_shtags"
SPLIT_REMEDY = ("exactly one node must hold a sharing tag active: fix the link between the nodes, then "
                "`opsconsole mi clusterer_shtag_set_active tag=TAG/CLUSTER --allow-write` on the node that should own it")

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


# --------------------------------------------------------------------------- split brain across nodes
# Pure judgement over several nodes' own views (clusterer_list shows the other nodes, clusterer_list_shtags the
# local node's tags): the opensips plugin's check uses it for one node, `diagnose --all` for every target.


def sharing_tag_verdict(views: Mapping[str, Topology], cid: str = SHTAGS_CHECK) -> CheckResult:
    """Split brain across the views of several nodes (target -> its Topology).  A tag active on two nodes
    is a FAIL from any data; active on no node only when every node of that cluster gave its view."""
    known = {target: t for target, t in views.items() if t.cluster is not None and t.cluster.shtags is not None}
    if not known:
        return CheckResult(cid, Status.UNKNOWN, "no node's sharing tags are known")
    evidence: dict[str, Any] = {}
    active: dict[tuple[int, str], list[str]] = {}
    for target, topology in known.items():
        for tag in topology.cluster.shtags:
            active.setdefault((tag.cluster_id, tag.tag), [])
            evidence[f"{target} {tag.tag}/{tag.cluster_id}"] = tag.state
            if tag.state == "active":
                active[(tag.cluster_id, tag.tag)].append(target)
    if not active:
        return CheckResult(cid, Status.SKIP, "no sharing tag defined", evidence)
    split = [f"{tag}/{cluster} active on {' and '.join(nodes)}" for (cluster, tag), nodes in active.items()
             if len(nodes) > 1]
    orphan = [f"{tag}/{cluster}" for (cluster, tag), nodes in active.items()
              if not nodes and _every_node_seen(cluster, known)]
    if split or orphan:
        summary = "; ".join(split + [f"{name} active on no node" for name in orphan])
        return CheckResult(cid, Status.FAIL, f"split brain: {summary}", evidence, SPLIT_REMEDY)
    blind = [f"{tag}/{cluster}" for (cluster, tag) in active if not _every_node_seen(cluster, known)]
    if blind:
        return CheckResult(cid, Status.SKIP, f"{', '.join(blind)}: the other nodes' tags are not visible from "
                           f"{len(known)} node(s) (clusterer_list_shtags shows the local node's only); "
                           "add every node as a target", evidence)
    return CheckResult(cid, Status.OK, f"every sharing tag is active on exactly one node ({len(active)})", evidence)


def _every_node_seen(cluster_id: int, views: Mapping[str, Topology]) -> bool:
    """Every node of the cluster gave its view.  A view lists the other nodes, never itself: n views of
    an n-node cluster each list n-1 peers, and together they name n distinct nodes."""
    holders = [t.cluster for t in views.values() if any(tag.cluster_id == cluster_id for tag in t.cluster.shtags)]
    if not holders or any(cluster.nodes is None for cluster in holders):
        return False
    peers = [{node.node_id for node in cluster.nodes if node.cluster_id == cluster_id} for cluster in holders]
    n = len(holders)
    return all(len(listed) == n - 1 for listed in peers) and (n == 1 or len(set().union(*peers)) == n)


def fleet_shtags(results: Mapping[str, Sequence[CheckResult]],
                 topologies: Mapping[str, "Topology | None"]) -> dict[str, list[CheckResult]]:
    """`diagnose --all`: each target's sharing-tag check judged over every target's view (where the target
    ran it: --only/--skip are respected).  A target's result is replaced only when the fleet knows more
    than the node alone: two or more views of sharing tags."""
    views = {name: t for name, t in topologies.items()
             if isinstance(t, Topology) and t.cluster is not None and t.cluster.shtags is not None}
    if len(views) < 2:
        return {name: list(found) for name, found in results.items()}
    verdicts: dict[str, Any] = {}
    out: dict[str, list[CheckResult]] = {}
    for name, found in results.items():
        judged = []
        for result in found:
            if result.id == SHTAGS_CHECK and name in views:
                verdict = verdicts.setdefault(SHTAGS_CHECK, sharing_tag_verdict(views))
                result = replace(verdict, elapsed_ms=result.elapsed_ms,
                                 summary=f"{verdict.summary} (judged over {len(views)} targets)")
            judged.append(result)
        out[name] = judged
    return out
