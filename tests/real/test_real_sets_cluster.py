"""RTPengine sets and the clusterer on real daemons (#16): two OpenSIPS nodes in one cluster on loopback
(tests/support/cluster.py: db-less clusterer over proto_bin, sharing tag `vip` active on node 1, backup on
node 2), both with one set of two real RTPengines weighted 1 and 2.  Engine A is disabled through
`opsconsole mi rtpengine_enable ... --allow-write --yes` (audited), engine B is stopped: the snapshot shows the
set as OpenSIPS sees it next to each engine's own answer, and the checks fire — stale disable (A answers)
WARN, enabled-but-silent (B) FAIL, rtpengine_sock naming an engine this host no longer runs WARN; then B
disabled as well: the set has no enabled engine, FAIL.  The cluster: links Up, the tag active on exactly
one node across both nodes' views; node 2 stopped: link Down WARN.  A partitioned pair (each node's neighbor
url a dead port) holds the tag active on both: split brain FAIL from both views, no verdict from one.  Every port from the OS; every daemon
stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from console.config import Config
from console.model.topology import RECHECK_NEVER
from console.plugins import CollectOptions
from opsconsole_opensips.source import OpenSIPSSource
from opsconsole_opensips.topology import TopologySource
from opsconsole_opensips.topology_checks import judge_sharing_tags
from real.conftest import checks_by_id
from support.cluster import start_cluster_pair, start_node
from support.opensips_daemon import VERSIONS, require_real
from support.rtpengine_daemon import free_port, start_daemon

pytestmark = pytest.mark.opensips
LINK_DOWN_WAIT_S = 15.0


@pytest.fixture(params=VERSIONS, ids=[f"opensips-{v}" for v in VERSIONS])
def lab(request):
    """(pair, engine A, engine B): daemons of this test alone, stopped by PID at its end."""
    require_real(request.param)
    engines, pair = [], None
    try:
        engines.append(start_daemon(ports=20))
        engines.append(start_daemon(ports=20))
        sock = " ".join(f"udp:127.0.0.1:{engine.ng[1]}={weight}" for weight, engine in enumerate(engines, 1))
        pair = start_cluster_pair(request.param, rtpengine_sock=sock)
        yield pair, *engines
    finally:
        if pair is not None:
            pair.close()
        for engine in engines:
            engine.stop()
            engine.log_path.unlink(missing_ok=True)


def _args(node, engine) -> list[str]:
    return ["--mi-url", node.mi_url, "--ng", f"{engine.ng[0]}:{engine.ng[1]}", "--timeout", "2"]


def _targets(nodes, engines) -> str:
    """[[targets]] naming each node (node1, node2) with the set's engines."""
    ng = ", ".join(f'"127.0.0.1:{engine.ng[1]}"' for engine in engines)
    return "".join(f'[[targets]]\nname = "node{i}"\nmi_url = "{node.mi_url}"\nng = [{ng}]\n\n'
                   for i, node in enumerate(nodes, 1))


def _engines(snapshot: dict) -> dict[str, dict]:
    (rtp_set,) = snapshot["topology"]["sets"]
    return {engine["url"]: engine for engine in rtp_set["engines"]}


def _topology_of(node, engine):
    """The node's Topology as the console collects it (for judging sharing tags across nodes)."""
    async def collect():
        config = Config(mi_url=node.mi_url, ng=engine.ng, cli=None, timeout=2.0)
        source = OpenSIPSSource(config)
        try:
            return await TopologySource(config, source).collect(CollectOptions())
        finally:
            await source.aclose()

    return asyncio.run(collect())


def test_sets_engines_and_cluster(lab, opsconsole):
    pair, a, b = lab
    url_a, url_b = f"udp:127.0.0.1:{a.ng[1]}", f"udp:127.0.0.1:{b.ng[1]}"
    node1, node2 = pair.nodes

    # healthy: both engines enabled and answering, weights as rtpengine_sock says, links Up
    code, snap = opsconsole.json("snapshot", *_args(node1, a))
    assert code == 0, snap["sources"]
    engines = _engines(snap)
    assert {u: (e["weight"], e["disabled"], e["answers"]) for u, e in engines.items()} == {
        url_a: (1, False, True), url_b: (2, False, True)}
    assert all(e["ping_ms"] > 0 and e["sessions"] == 0 and e["ports_total"] == 20 for e in engines.values())
    cluster = snap["topology"]["cluster"]
    assert [(n["node_id"], n["link_state"]) for n in cluster["nodes"]] == [(2, "Up")]
    assert cluster["sharing_tags"] == [{"tag": "vip", "cluster_id": 1, "state": "active"}]
    assert [c["name"] for c in cluster["capabilities"]] == ["dialog-dlg-repl"]
    code, report = opsconsole.json("diagnose", *_args(node1, a))
    checks = checks_by_id(report)
    for cid in ("opensips.rtpengine_sets", "opensips.rtpengine_down", "opensips.rtpengine_stale",
                "opensips.rtpengine_hosts", "opensips.cluster_links"):
        assert checks[cid]["status"] == "ok", checks[cid]
    # one node sees only its own tags: no verdict on split brain from it alone
    assert checks["opensips.cluster_shtags"]["status"] == "skip", checks["opensips.cluster_shtags"]
    # both nodes' views: vip active on exactly one
    views = {"node1": _topology_of(node1, a), "node2": _topology_of(node2, a)}
    verdict = judge_sharing_tags(views)
    assert verdict.status.value == "ok", verdict
    # diagnose --all judges the tags over every target's view
    code, report = opsconsole.json("diagnose", "--all", "--only", "opensips.cluster_shtags",
                                   config=_targets(pair.nodes, (a, b)))
    for name in ("node1", "node2"):
        shtags = checks_by_id(report["targets"][name])["opensips.cluster_shtags"]
        assert shtags["status"] == "ok" and "judged over 2 targets" in shtags["summary"], shtags
    assert code == 0

    # engine A disabled through our own MI command (a confirmed, audited write), engine B stopped
    code, out = opsconsole.run("mi", "rtpengine_enable", f"url={url_a}", "enable=0", "--allow-write", "--yes",
                               *_args(node1, a)[:2])
    assert code == 0, opsconsole.last_err
    audit = (opsconsole.tmp_path / "home" / ".local" / "state" / "opsconsole" / "audit.log").read_text()
    entry = json.loads(audit.splitlines()[-1])
    assert entry["outcome"] == "ok" and entry["method"].endswith(("rtpengine_enable", "rtpengine:enable"))
    b.stop()

    code, snap = opsconsole.json("snapshot", *_args(node1, a))
    engines = _engines(snap)
    assert (engines[url_a]["disabled"], engines[url_a]["recheck_ticks"], engines[url_a]["answers"]) == (
        True, RECHECK_NEVER, True)
    assert (engines[url_b]["disabled"], engines[url_b]["answers"]) == (False, False)
    assert snap["topology"]["sets"][0]["enabled"] == 1
    code, report = opsconsole.json("diagnose", *_args(node1, a))
    checks = checks_by_id(report)
    stale, down = checks["opensips.rtpengine_stale"], checks["opensips.rtpengine_down"]
    assert stale["status"] == "warn" and url_a in stale["summary"] and url_b not in stale["summary"]
    assert stale["remedy"] == f"opsconsole mi rtpengine_enable url={url_a} enable=1 --allow-write"
    assert down["status"] == "fail" and url_b in down["summary"] and url_a not in down["summary"]
    hosts = checks["opensips.rtpengine_hosts"]
    assert hosts["status"] == "warn" and url_b in hosts["summary"] and url_a not in hosts["summary"]
    assert checks["opensips.rtpengine_sets"]["status"] == "ok"  # B is still enabled in OpenSIPS
    assert code == 2

    # B disabled too: the set has no enabled engine
    node1.mi_any("rtpengine_enable", "rtpengine:enable", params={"url": url_b, "enable": "0"})
    code, report = opsconsole.json("diagnose", "--only", "opensips.rtpengine_sets", *_args(node1, a))
    sets = checks_by_id(report)["opensips.rtpengine_sets"]
    assert sets["status"] == "fail" and "set 0" in sets["summary"] and code == 2

    # node 2 gone: node 1's link to it goes Down
    node2.stop()
    deadline = time.monotonic() + LINK_DOWN_WAIT_S
    links = None
    while time.monotonic() < deadline:
        code, report = opsconsole.json("diagnose", "--only", "opensips.cluster_links", *_args(node1, a))
        links = checks_by_id(report)["opensips.cluster_links"]
        if links["status"] != "ok":
            break
        time.sleep(0.5)
    assert links["status"] == "warn" and "node 2" in links["summary"], links


@pytest.mark.parametrize("version", ["3.4"])
def test_split_brain_of_a_partitioned_pair(version, opsconsole):
    """Two nodes that cannot reach each other (each one's neighbor url is a port nobody listens on) both hold
    the tag active: judged from both nodes' views, a FAIL; from one node alone, no verdict."""
    require_real(version)
    engine, nodes = start_daemon(ports=8), []
    try:
        sock = f"udp:127.0.0.1:{engine.ng[1]}"
        dead = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
        for node_id, peer_id in ((1, 2), (2, 1)):
            nodes.append(start_node(version, node_id=node_id, peer_id=peer_id, bin_port=free_port(socket.SOCK_STREAM),
                                    peer_bin_port=dead[peer_id - 1], tag_state="active", rtpengine_sock=sock))
        views = {f"node{i}": _topology_of(node, engine) for i, node in enumerate(nodes, 1)}
        assert [t.cluster.shtags[0].state for t in views.values()] == ["active", "active"]
        verdict = judge_sharing_tags(views)
        assert verdict.status.value == "fail" and "vip/1 active on node1 and node2" in verdict.summary, verdict
        assert judge_sharing_tags({"node1": views["node1"]}).status.value == "skip"
        code, report = opsconsole.json("diagnose", "--only", "opensips.cluster_shtags", *_args(nodes[0], engine))
        assert checks_by_id(report)["opensips.cluster_shtags"]["status"] == "skip"
        code, report = opsconsole.json("diagnose", "--all", "--only", "opensips.cluster_shtags",
                                       config=_targets(nodes, (engine,)))
        for name in ("node1", "node2"):
            shtags = checks_by_id(report["targets"][name])["opensips.cluster_shtags"]
            assert shtags["status"] == "fail" and "split brain" in shtags["summary"], shtags
        assert code == 2
    finally:
        for node in nodes:
            node.cleanup()
        engine.stop()
        engine.log_path.unlink(missing_ok=True)
