"""RTPengine sets and clusterer (Snapshot.parts["topology"]) as text and JSON; the shared row values.

The cells come from OpenSIPS and the engines (urls, descriptions): they go through `safe_text`, never markup.
"""

from __future__ import annotations

from typing import Any

from ..model import Snapshot
from ..model.topology import EngineHealth, RtpEngineNode, Topology


def snapshot_topology(snap: Snapshot) -> Topology | None:
    part = snap.parts.get("topology")
    return part if isinstance(part, Topology) else None


def engine_state(engine: RtpEngineNode) -> str:
    """OpenSIPS's word for the engine: enabled, disabled (by MI: for good), or disabled with its recheck."""
    if not engine.disabled:
        return "enabled"
    if engine.disabled_by_mi:
        return "disabled (MI)"
    return f"disabled (recheck {engine.recheck_ticks})"


def health_cells(health: EngineHealth | None) -> tuple[str, str, str, str]:
    """(answer, ping, sessions, ports) — '?' where unknown."""
    if health is None or health.answered is None:
        return "not probed", "?", "?", "?"
    if not health.answered:
        return "NO ANSWER", "-", "?", "?"
    ports = f"{health.ports_used}/{health.ports_total}" if health.ports_total is not None else "?"
    sessions = str(health.sessions) if health.sessions is not None else "?"
    return "answers", f"{health.ping_ms:.1f} ms" if health.ping_ms is not None else "?", sessions, ports


def topology_dict(snap: Snapshot) -> dict[str, Any] | None:
    """The JSON of `snapshot --json` under "topology" (None when not collected)."""
    topology = snapshot_topology(snap)
    if topology is None:
        return None
    sets = None
    if topology.sets is not None:
        sets = [{"set_id": s.set_id, "enabled": len(s.enabled),
                 "engines": [_engine_dict(e) for e in s.engines]} for s in topology.sets]
    cluster = None
    if topology.cluster is not None:
        c = topology.cluster
        cluster = {"nodes": _plain_tuple(c.nodes), "sharing_tags": _plain_tuple(c.shtags),
                   "capabilities": _plain_tuple(c.capabilities)}
    return {"target": topology.target, "rtpengine_loaded": topology.rtpengine_loaded, "sets": sets,
            "clusterer_loaded": topology.clusterer_loaded, "cluster": cluster, "errors": list(topology.errors)}


def _engine_dict(engine: RtpEngineNode) -> dict[str, Any]:
    health = engine.health
    return {"url": engine.url, "index": engine.index, "weight": engine.weight, "disabled": engine.disabled,
            "disabled_by_mi": engine.disabled_by_mi, "recheck_ticks": engine.recheck_ticks,
            "answers": engine.answers, "ping_ms": health.ping_ms if health else None,
            "sessions": health.sessions if health else None, "ports_used": health.ports_used if health else None,
            "ports_total": health.ports_total if health else None, "probe_error": health.error if health else None}


def _plain_tuple(items) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{name: getattr(item, name) for name in item.__slots__} for item in items]


def render_topology(snap: Snapshot) -> list:
    """Rich renderables for `snapshot` text: a sets table and the cluster lines ([] when not collected)."""
    from rich.table import Table  # text output only: `snapshot --json` never loads Rich (~40 ms, #18)
    from rich.text import Text

    from .safe import safe_text

    topology = snapshot_topology(snap)
    if topology is None:
        return []
    parts: list = []
    if topology.sets:
        table = Table(title=f"RTPengine sets ({len(topology.sets)})", title_justify="left")
        for col in ("set", "engine", "weight", "OpenSIPS", "engine says", "ping", "sessions", "ports"):
            table.add_column(col, overflow="fold")
        for engine in topology.engines:
            answer, ping, sessions, ports = health_cells(engine.health)
            table.add_row(str(engine.set_id), safe_text(engine.url), str(engine.weight), Text(engine_state(engine)),
                          Text(answer, style="bold red" if answer == "NO ANSWER" else ""), ping, sessions, ports)
        parts.append(table)
    cluster = topology.cluster
    if cluster is not None:
        line = Text("Cluster ", style="bold")
        nodes = cluster.nodes
        line.append("nodes: " + ("?" if nodes is None else ", ".join(
            f"{n.node_id}@{n.cluster_id} link {n.link_state} {n.state}" for n in nodes) or "no other node"))
        shtags = cluster.shtags
        line.append("  sharing tags (this node): " + ("?" if shtags is None else ", ".join(
            f"{t.tag}/{t.cluster_id} {t.state}" for t in shtags) or "none"))
        parts.append(safe_text(line.plain))
    for error in topology.errors:
        parts.append(Text("Topology: ", style="yellow") + safe_text(error))
    return parts
