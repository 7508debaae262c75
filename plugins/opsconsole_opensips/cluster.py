"""MI replies about RTPengine sets and the clusterer -> console.model.topology, parsed once, here.

Reply shapes supported (captured from the real OpenSIPS 3.4.18 and 4.0.1 builds, two nodes in one cluster:
tests/fixtures/opensips-{3.4,4.0}/cluster/; 4.0 answers the same shapes under `rtpengine:show`,
`clusterer:list`, `clusterer:list_shtags`, `clusterer:list_cap`):

    rtpengine_show        [{"Set": 0, "Nodes": [{"url": "udp:127.0.0.1:60000", "index": 0, "disabled": 0,
                            "weight": 1, "recheck_ticks": 0}, ...]}, ...]
                          (an engine disabled by `rtpengine_enable url=... enable=0` shows "disabled": 1,
                          "recheck_ticks": 4294967295; one disabled by OpenSIPS itself counts recheck_ticks down)
    clusterer_list        {"Clusters": [{"cluster_id": 1, "Nodes": [{"node_id": 2, "db_id": -1,
                            "url": "bin:127.0.0.1:5566", "link_state": "Up", "state": "enabled",
                            "next_hop": "2", "description": "none"}]}]}
                          (the *other* nodes only; link_state Up | Probe | Down; next_hop "none" when Down)
    clusterer_list_shtags [{"Tag": "vip", "Cluster": 1, "State": "active"}]   (the local node's tags; or backup)
    clusterer_list_cap    {"Clusters": [{"cluster_id": 1, "Capabilities": [{"name": "dialog-dlg-repl",
                            "state": "not synced", "enabled": "yes"}]}]}      (Capabilities [] when none)

Integers may also come as strings ("1"), as OpenSIPS prints some of them.  A malformed reply raises
ProtocolError (the collector records it and keeps the rest).
"""

from __future__ import annotations

from typing import Any, Iterable

from console.model.signalling import RelayNode
from console.model.topology import ClusterCapability, ClusterNode, RtpEngineNode, RtpSet, SharingTag

from .parse import _dict, _guard, _int, _list, _str, parse_relays

def parse_rtp_sets(result: Any) -> tuple[RtpSet, ...]:
    """rtpengine_show, parsed once by opensips_opensips.parse.parse_relays, grouped into sets."""
    return sets_from_relays(parse_relays(result))


def sets_from_relays(relays: Iterable[RelayNode]) -> tuple[RtpSet, ...]:
    """The engines OpenSIPS lists, by set, in its order (the set ids as they first appear)."""
    by_set: dict[int, list[RtpEngineNode]] = {}
    for relay in relays:
        by_set.setdefault(relay.set_id, []).append(RtpEngineNode(
            url=relay.url, set_id=relay.set_id, index=relay.index, disabled=relay.disabled,
            weight=relay.weight, recheck_ticks=relay.recheck_ticks))
    return tuple(RtpSet(set_id, tuple(engines)) for set_id, engines in by_set.items())


def parse_cluster_nodes(result: Any) -> tuple[ClusterNode, ...]:
    def build() -> tuple[ClusterNode, ...]:
        nodes = []
        for cluster in _clusters(result, "clusterer_list"):
            cluster_id = _int(cluster.get("cluster_id"), "cluster_id")
            for node in _list(cluster.get("Nodes", []), "Nodes"):
                node = _dict(node, "Nodes[]")
                nodes.append(ClusterNode(
                    cluster_id=cluster_id,
                    node_id=_int(node["node_id"], "node_id"),
                    url=_str(node.get("url"), "url"),
                    link_state=_str(node.get("link_state"), "link_state"),
                    state=_str(node.get("state"), "state"),
                    next_hop=_str(node.get("next_hop"), "next_hop"),
                    description=_str(node.get("description"), "description"),
                    db_id=_int(node.get("db_id"), "db_id", -1),
                ))
        return tuple(nodes)

    return _guard("clusterer_list", build)


def parse_sharing_tags(result: Any) -> tuple[SharingTag, ...]:
    def build() -> tuple[SharingTag, ...]:
        return tuple(
            SharingTag(tag=_str(tag["Tag"], "Tag"), cluster_id=_int(tag.get("Cluster"), "Cluster"),
                       state=_str(tag.get("State"), "State").lower())
            for tag in (_dict(item, "shtag") for item in _list(result, "clusterer_list_shtags result"))
        )

    return _guard("clusterer_list_shtags", build)


def parse_capabilities(result: Any) -> tuple[ClusterCapability, ...]:
    def build() -> tuple[ClusterCapability, ...]:
        found = []
        for cluster in _clusters(result, "clusterer_list_cap"):
            cluster_id = _int(cluster.get("cluster_id"), "cluster_id")
            for cap in _list(cluster.get("Capabilities", []), "Capabilities"):
                cap = _dict(cap, "Capabilities[]")
                enabled = _str(cap.get("enabled"), "enabled").lower()
                found.append(ClusterCapability(
                    cluster_id=cluster_id, name=_str(cap["name"], "name"), state=_str(cap.get("state"), "state"),
                    enabled={"yes": True, "no": False}.get(enabled)))
        return tuple(found)

    return _guard("clusterer_list_cap", build)


def _clusters(result: Any, what: str) -> list[dict]:
    return [_dict(c, "Clusters[]") for c in _list(_dict(result, f"{what} result").get("Clusters", []), "Clusters")]
