"""Checks of RTPengine sets and of the clusterer, pure functions of the snapshot (Snapshot.parts["topology"]).

Unknown data (the topology source failed, a call failed, an engine was not probed) gives UNKNOWN or SKIP,
never a finding.  Split brain is judged only where every node's own sharing tags are known: clusterer_list
shows the *other* nodes, clusterer_list_shtags the local node's tags, so one node alone can tell only when
it is alone in its cluster; `judge_sharing_tags` takes the views of several nodes (several targets).
"""

from __future__ import annotations

from typing import Any

from console.config import is_loopback
from console.model import CheckResult, HostState, Status
from console.model.topology import Topology
from console.model.topology import sharing_tag_verdict as judge_sharing_tags
from console.plugins import CheckContext, CheckSpec

from opsconsole_rtpengine.probe import engine_address

SETS_REMEDY = ("re-enable an engine that answers (`opsconsole mi rtpengine_enable url=URL enable=1 --allow-write`), "
               "or start the engines named in modparam(\"rtpengine\", \"rtpengine_sock\")")
DEAD_REMEDY = ("start the rtpengine at that address (its --listen-ng must match rtpengine_sock), or remove it from "
               "rtpengine_sock; OpenSIPS disables it for a while only after a call fails on it")
HOST_REMEDY = ("make modparam(\"rtpengine\", \"rtpengine_sock\") and the rtpengine daemons of this host agree "
               "(the address is rtpengine's --listen-ng)")
LINK_REMEDY = ("check the other node and the path to its clusterer url (proto_bin socket, firewall); "
               "`opsconsole mi clusterer_list` shows the link state")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _topology(ctx: CheckContext, cid: str) -> Topology | CheckResult:
    part = ctx.snapshot.parts.get("topology")
    if isinstance(part, Topology):
        return part
    status = ctx.snapshot.sources.get("topology")
    if status is None:
        return CheckResult(cid, Status.SKIP, "no OpenSIPS configured: RTPengine sets and cluster unknown")
    return CheckResult(cid, Status.UNKNOWN, f"RTPengine sets and cluster unknown: {status.error or 'not collected'}")


def _sets(ctx: CheckContext, cid: str) -> Topology | CheckResult:
    topology = _topology(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    if topology.rtpengine_loaded is False:
        return CheckResult(cid, Status.SKIP, "the rtpengine module is not loaded in OpenSIPS")
    if topology.sets is None:
        return CheckResult(cid, Status.UNKNOWN, "rtpengine_show did not answer: sets unknown",
                           {"errors": list(topology.errors)})
    if not topology.sets:
        return CheckResult(cid, Status.SKIP, "OpenSIPS has no RTPengine set")
    return topology


# --------------------------------------------------------------------------- opensips.rtpengine_sets


def check_sets(ctx: CheckContext) -> CheckResult:
    cid = "opensips.rtpengine_sets"
    topology = _sets(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    evidence = {f"set {s.set_id}": f"{len(s.enabled)} of {len(s.engines)} engines enabled" for s in topology.sets}
    empty = [s for s in topology.sets if not s.enabled]
    if empty:
        names = ", ".join(f"set {s.set_id}" for s in empty)
        return CheckResult(cid, Status.FAIL, f"{names}: no enabled RTPengine — calls using it get no media relay",
                           evidence, SETS_REMEDY)
    return CheckResult(cid, Status.OK, f"every RTPengine set has an enabled engine ({_count(len(topology.sets), 'set')})",
                       evidence)


# --------------------------------------------------------------------------- opensips.rtpengine_down / _stale


def _engine_verdicts(topology: Topology) -> dict[str, Any]:
    """Evidence: each engine's state in OpenSIPS next to its own answer."""
    evidence: dict[str, Any] = {}
    for engine in topology.engines:
        state = "disabled" if engine.disabled else "enabled"
        health = engine.health
        if health is None or health.answered is None:
            said = f"not probed: {health.error if health else 'no probe'}"
        elif health.answered:
            said = f"answers ng ping in {health.ping_ms} ms"
        else:
            said = f"no ng answer: {health.error}"
        evidence[f"set {engine.set_id} {engine.url}"] = f"{state} in OpenSIPS; {said}"
    return evidence


def _judged(ctx: CheckContext, cid: str, disabled: bool) -> tuple[Topology, list, list] | CheckResult:
    """(topology, engines in that OpenSIPS state that answered/did not, engines in it not probed)."""
    topology = _sets(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    engines = [e for e in topology.engines if e.disabled == disabled]
    return topology, [e for e in engines if e.answers is not None], [e for e in engines if e.answers is None]


def check_down(ctx: CheckContext) -> CheckResult:
    """An engine OpenSIPS uses (enabled) that does not answer ng: calls given to it fail until OpenSIPS notices."""
    cid = "opensips.rtpengine_down"
    judged = _judged(ctx, cid, disabled=False)
    if isinstance(judged, CheckResult):
        return judged
    topology, probed, unprobed = judged
    evidence = _engine_verdicts(topology)
    dead = [e for e in probed if not e.answers]
    if dead:
        return CheckResult(cid, Status.FAIL, "enabled in OpenSIPS but not answering ng: "
                           + ", ".join(e.url for e in dead), evidence, DEAD_REMEDY)
    if unprobed:
        return CheckResult(cid, Status.UNKNOWN, f"{len(unprobed)} enabled engines could not be probed", evidence)
    return CheckResult(cid, Status.OK, f"every enabled engine answers ng ({_count(len(probed), 'engine')})", evidence)


def check_stale(ctx: CheckContext) -> CheckResult:
    """An engine OpenSIPS disabled that answers now: a stale disable (by MI it is never re-checked)."""
    cid = "opensips.rtpengine_stale"
    judged = _judged(ctx, cid, disabled=True)
    if isinstance(judged, CheckResult):
        return judged
    topology, probed, unprobed = judged
    evidence = _engine_verdicts(topology)
    stale = [e for e in probed if e.answers]
    if stale:
        remedy = "; ".join(f"opsconsole mi rtpengine_enable url={e.url} enable=1 --allow-write" for e in stale)
        return CheckResult(cid, Status.WARN, "disabled in OpenSIPS although it answers ng (stale disable): "
                           + ", ".join(e.url for e in stale), evidence, remedy)
    if unprobed:
        return CheckResult(cid, Status.UNKNOWN, f"{len(unprobed)} disabled engines could not be probed", evidence)
    return CheckResult(cid, Status.OK, f"no stale disable ({len(probed)} disabled engines, none answers)"
                       if probed else "no engine is disabled", evidence)


# --------------------------------------------------------------------------- opensips.rtpengine_hosts


def check_hosts(ctx: CheckContext) -> CheckResult:
    """The sets against this host's rtpengine daemons (only when OpenSIPS runs here): a loopback engine of a
    set that no daemon here listens on, and the console's own engine (--ng, configured or discovered from the
    daemon here) in no set.  Other daemons on the host are not judged: they may serve another OpenSIPS."""
    cid = "opensips.rtpengine_hosts"
    topology = _sets(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    if not topology.opensips_local:
        return CheckResult(cid, Status.SKIP, "OpenSIPS is on another host: its engines are not this host's")
    if ctx.config.demo:  # the demo's nodes run their engines in-process (--demo-nodes: all but node-01's)
        return CheckResult(cid, Status.SKIP, "demo platform: its RTPengines are simulated in-process, no daemon to find")
    host = ctx.snapshot.host
    if not isinstance(host, HostState):
        return CheckResult(cid, Status.UNKNOWN, "this host's rtpengine daemons are unknown")
    running = {_key(p.settings.get("ng_address", "")): p.pid for p in host.rtpengine
               if not p.suspect and p.settings.get("ng_address")}
    named = {_key(e.url): e for e in topology.engines}
    evidence: dict[str, Any] = {}
    problems = []
    for key, engine in named.items():
        if key is None or not is_loopback(key[0]):
            continue  # another address: maybe another host's engine
        if key in running:
            evidence[engine.url] = f"run here (pid {running[key]})"
        else:
            evidence[engine.url] = "named in rtpengine_sock; no rtpengine of this host listens there"
            problems.append(f"rtpengine_sock names {engine.url}, which this host does not run")
    # the console's own engines (--ng, or a target's ng list), configured or discovered from the daemon here
    addresses = [address for address in (ctx.config.ng, *ctx.config.relays_ng) if address]
    own = dict.fromkeys(_key(f"{host}:{port}") for host, port in addresses)
    for key in own:
        if key is not None and key in running and key not in named:
            evidence[f"{key[0]}:{key[1]}"] = f"this console's rtpengine (pid {running[key]}), in no set"
            problems.append(f"the rtpengine this host runs at {key[0]}:{key[1]} (pid {running[key]}) is in no set")
    if problems:
        return CheckResult(cid, Status.WARN, "; ".join(problems), evidence, HOST_REMEDY)
    return CheckResult(cid, Status.OK, "the sets and this host's rtpengine daemons agree", evidence)


def _key(address: str) -> tuple[str, int] | None:
    """An engine's address normalized for comparing: every loopback address is 127.0.0.1."""
    parsed = engine_address(address)
    if parsed is None:
        return None
    host, port = parsed
    return ("127.0.0.1" if is_loopback(host) else host), port


# --------------------------------------------------------------------------- opensips.cluster_links


def _cluster(ctx: CheckContext, cid: str) -> Topology | CheckResult:
    topology = _topology(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    if topology.clusterer_loaded is False:
        return CheckResult(cid, Status.SKIP, "the clusterer module is not loaded in OpenSIPS")
    return topology


def check_links(ctx: CheckContext) -> CheckResult:
    cid = "opensips.cluster_links"
    topology = _cluster(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    nodes = topology.cluster.nodes if topology.cluster is not None else None
    if nodes is None:
        return CheckResult(cid, Status.UNKNOWN, "clusterer_list did not answer: links unknown",
                           {"errors": list(topology.errors)})
    evidence = {f"cluster {n.cluster_id} node {n.node_id}": f"link {n.link_state}, {n.state}, {n.url}" for n in nodes}
    down = [n for n in nodes if n.link_state.lower() == "down"]
    if down:
        names = ", ".join(f"node {n.node_id} ({n.url}) in cluster {n.cluster_id}" for n in down)
        return CheckResult(cid, Status.WARN, f"cluster link Down to {names}", evidence, LINK_REMEDY)
    return CheckResult(cid, Status.OK, f"link Up to every other cluster node ({_count(len(nodes), 'node')})" if nodes
                       else "no other cluster node", evidence)


# --------------------------------------------------------------------------- opensips.cluster_shtags


def check_shtags(ctx: CheckContext) -> CheckResult:
    cid = "opensips.cluster_shtags"
    topology = _cluster(ctx, cid)
    if isinstance(topology, CheckResult):
        return topology
    if topology.cluster is None or topology.cluster.shtags is None:
        return CheckResult(cid, Status.UNKNOWN, "clusterer_list_shtags did not answer: sharing tags unknown",
                           {"errors": list(topology.errors)})
    return judge_sharing_tags({topology.target or "this node": topology}, cid)


TOPOLOGY_CHECKS = (
    CheckSpec("opensips.rtpengine_sets", check_sets, "every RTPengine set has an enabled engine"),
    CheckSpec("opensips.rtpengine_down", check_down, "enabled RTPengines answer ng"),
    CheckSpec("opensips.rtpengine_stale", check_stale, "disabled RTPengines do not answer (no stale disable)"),
    CheckSpec("opensips.rtpengine_hosts", check_hosts, "RTPengine sets vs this host's rtpengine daemons"),
    CheckSpec("opensips.cluster_links", check_links, "clusterer links to the other nodes"),
    CheckSpec("opensips.cluster_shtags", check_shtags, "sharing tags active on exactly one node"),
)
