"""RTPengine sets and clusterer (#16): parsers on real captures, the topology source against a real RTPengine,
the checks (pure, on built snapshots), and the snapshot JSON/text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.config import Config
from console.errors import ProtocolError
from console.model import HostState, ProcessInfo, Snapshot, SourceStatus, Status
from console.model.topology import (RECHECK_NEVER, ClusterNode, ClusterState, EngineHealth, RtpEngineNode, RtpSet,
                                    SharingTag, Topology)
from console.plugins import CheckContext, CollectOptions
from console.render.jsonout import snapshot_dict
from console.render.text import render_snapshot
from opsconsole_opensips import topology_checks as tc
from opsconsole_opensips.cluster import (parse_capabilities, parse_cluster_nodes, parse_rtp_sets,
                                         parse_sharing_tags)
from opsconsole_opensips.commands import CommandMap
from opsconsole_opensips.topology import TopologySource
from opsconsole_rtpengine.probe import engine_address
from support.rtpengine_daemon import free_port

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = ("3.4", "4.0")


def capture(version: str, name: str):
    return json.loads((FIXTURES / f"opensips-{version}" / "cluster" / f"{name}.json").read_text())


# --------------------------------------------------------------------------- parsers on the real replies


@pytest.mark.parametrize("version", VERSIONS)
def test_rtpengine_show_two_engines_with_weights(version):
    (rtp_set,) = parse_rtp_sets(capture(version, "rtpengine_show.two_engines")["result"])
    assert rtp_set.set_id == 0
    assert [(e.index, e.weight, e.disabled) for e in rtp_set.engines] == [(0, 1, False), (1, 2, False)]
    assert all(e.url.startswith("udp:127.0.0.1:") for e in rtp_set.engines)
    assert len(rtp_set.enabled) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_rtpengine_show_after_mi_disable(version):
    (rtp_set,) = parse_rtp_sets(capture(version, "rtpengine_show.one_disabled")["result"])
    first, second = rtp_set.engines
    assert first.disabled and first.recheck_ticks == RECHECK_NEVER and first.disabled_by_mi
    assert not second.disabled and not second.disabled_by_mi
    assert rtp_set.enabled == (second,)


@pytest.mark.parametrize("version", VERSIONS)
def test_clusterer_list_lists_the_other_node(version):
    (peer,) = parse_cluster_nodes(capture(version, "clusterer_list.node1.up")["result"])
    assert (peer.cluster_id, peer.node_id, peer.link_state, peer.state, peer.db_id) == (1, 2, "Up", "enabled", -1)
    assert peer.url.startswith("bin:127.0.0.1:")
    (down,) = parse_cluster_nodes(capture(version, "clusterer_list.node1.peer_down")["result"])
    assert (down.link_state, down.next_hop) == ("Down", "none")


@pytest.mark.parametrize("version", VERSIONS)
def test_sharing_tags_and_capabilities(version):
    assert parse_sharing_tags(capture(version, "clusterer_list_shtags.node1.active")["result"]) == (
        SharingTag("vip", 1, "active"),)
    assert parse_sharing_tags(capture(version, "clusterer_list_shtags.node2.backup")["result"]) == (
        SharingTag("vip", 1, "backup"),)
    (cap,) = parse_capabilities(capture(version, "clusterer_list_cap.node1")["result"])
    assert (cap.cluster_id, cap.name, cap.state, cap.enabled) == (1, "dialog-dlg-repl", "not synced", True)


@pytest.mark.parametrize("parser, reply", [
    (parse_rtp_sets, {"Set": 0}),
    (parse_rtp_sets, [{"Set": "x", "Nodes": []}]),
    (parse_rtp_sets, [{"Set": 0, "Nodes": [{"index": 0}]}]),
    (parse_cluster_nodes, [{"cluster_id": 1}]),
    (parse_cluster_nodes, {"Clusters": [{"cluster_id": 1, "Nodes": [{"url": "bin:x"}]}]}),
    (parse_sharing_tags, [{"Cluster": 1, "State": "active"}]),
    (parse_capabilities, {"Clusters": "none"}),
])
def test_malformed_replies_are_protocol_errors(parser, reply):
    with pytest.raises(ProtocolError):
        parser(reply)


@pytest.mark.parametrize("url, address", [
    ("udp:127.0.0.1:60000", ("127.0.0.1", 60000)),
    ("127.0.0.1:2223", ("127.0.0.1", 2223)),
    ("udp6:[::1]:2223", ("::1", 2223)),
    ("udp:rtp1.example.net:22222", ("rtp1.example.net", 22222)),
    ("udp:127.0.0.1", None),
    ("udp:127.0.0.1:99999", None),
    ("udp6:::1:2223", None),
])
def test_engine_address(url, address):
    assert engine_address(url) == address


# --------------------------------------------------------------------------- the source, real RTPengine


class FakeMI:
    """An OpenSIPS source stand-in: the command map of a `which` and canned replies (real captures)."""

    def __init__(self, replies: dict, commands: frozenset[str]) -> None:
        self.replies, self.asked = replies, []
        self.commands = CommandMap(version="3.4.18", commands=commands)
        self.live, self.target = None, "http://127.0.0.1:1/mi"

    async def command_map(self):
        return self.commands

    async def settled(self):
        return None  # no collection of the node's own in progress

    def client(self):
        return self

    async def call(self, method, params=None):
        self.asked.append(method)
        reply = self.replies[method]
        if isinstance(reply, Exception):
            raise reply
        return reply


def _show(*engines: tuple[str, int, int]) -> list:
    return [{"Set": 0, "Nodes": [{"url": url, "index": i, "disabled": disabled, "weight": weight,
                                  "recheck_ticks": RECHECK_NEVER if disabled else 0}
                                 for i, (url, weight, disabled) in enumerate(engines)]}]


async def test_source_joins_engines_with_their_own_answer(rtpengine):
    dead = free_port()  # nothing listens there
    live_url, dead_url = f"udp:127.0.0.1:{rtpengine.ng[1]}", f"udp:127.0.0.1:{dead}"
    mi = FakeMI({"rtpengine_show": _show((live_url, 1, 1), (dead_url, 2, 0))},
                frozenset({"rtpengine_show", "version", "which"}))
    topology = await TopologySource(Config(mi_url="http://127.0.0.1:1/mi", timeout=1.0), mi).collect(CollectOptions())
    assert mi.asked == ["rtpengine_show"]  # clusterer not loaded: not asked
    assert topology.rtpengine_loaded is True and topology.clusterer_loaded is False and topology.cluster is None
    live, gone = topology.engines
    assert live.health.answered is True and live.health.ping_ms is not None and live.health.ping_ms > 0
    assert live.health.sessions == 0 and live.health.ports_total == rtpengine.port_max - rtpengine.port_min + 1
    assert gone.health.answered is False and gone.health.error
    assert (live.weight, live.disabled, gone.weight, gone.disabled) == (1, True, 2, False)


async def test_source_cluster_calls_and_failures_are_data():
    from opsconsole_opensips.codec import MIError

    commands = frozenset({"clusterer_list", "clusterer_list_shtags", "clusterer_list_cap"})
    mi = FakeMI({"clusterer_list": capture("3.4", "clusterer_list.node1.up")["result"],
                 "clusterer_list_shtags": capture("3.4", "clusterer_list_shtags.node1.active")["result"],
                 "clusterer_list_cap": MIError("boom", code=500)}, commands)
    topology = await TopologySource(Config(mi_url="http://127.0.0.1:1/mi"), mi).collect(CollectOptions())
    assert topology.rtpengine_loaded is False and topology.sets is None
    assert topology.cluster.nodes[0].node_id == 2 and topology.cluster.shtags[0].state == "active"
    assert topology.cluster.capabilities is None and "clusterer_list_cap" in topology.errors[0]


async def test_source_uses_the_40_names():
    commands = frozenset({"rtpengine:show", "clusterer:list", "clusterer:list_shtags", "clusterer:list_cap",
                          "core:which"})
    replies = {"rtpengine:show": [], "clusterer:list": capture("4.0", "clusterer_list.node1.up")["result"],
               "clusterer:list_shtags": [], "clusterer:list_cap": capture("4.0", "clusterer_list_cap.node1")["result"]}
    mi = FakeMI(replies, commands)
    topology = await TopologySource(Config(mi_url="http://127.0.0.1:1/mi"), mi).collect(CollectOptions())
    assert sorted(mi.asked) == sorted(replies) and topology.sets == () and topology.cluster.shtags == ()


async def test_remote_opensips_loopback_engine_is_not_probed():
    asked = []

    async def prober(host, port, timeout):
        asked.append((host, port))
        return EngineHealth(f"{host}:{port}", True, ping_ms=1.0)

    mi = FakeMI({"rtpengine_show": _show(("udp:127.0.0.1:2223", 1, 0), ("udp:192.0.2.7:2223", 1, 0))},
                frozenset({"rtpengine_show"}))
    topology = await TopologySource(Config(mi_url="http://192.0.2.1:8888/mi"), mi, prober=prober).collect(
        CollectOptions())
    loop, remote = topology.engines
    assert loop.health.answered is None and "not probed" in loop.health.error
    assert remote.health.answered is True and asked == [("192.0.2.7", 2223)]


# --------------------------------------------------------------------------- checks


def _engine(url="udp:127.0.0.1:4000", *, disabled=False, answered: bool | None = True, set_id=0, weight=1):
    health = EngineHealth(url[4:], answered, ping_ms=0.5 if answered else None, error="" if answered else "refused")
    return RtpEngineNode(url, set_id, weight=weight, disabled=disabled,
                         recheck_ticks=RECHECK_NEVER if disabled else 0, health=health)


def _ctx(topology: Topology | None = None, *, host: HostState | None = None, config: Config | None = None,
         failed: str = "") -> CheckContext:
    parts = {"topology": topology} if topology is not None else {}
    sources = {"topology": SourceStatus("topology", not failed, failed)} if topology is not None or failed else {}
    return CheckContext(Snapshot(collected_at=1.0, sources=sources, parts=parts, host=host),
                        config or Config(ng=None, cli=None), 1.0)


def _sets(*engines: RtpEngineNode, local=True) -> Topology:
    by_set: dict[int, list] = {}
    for engine in engines:
        by_set.setdefault(engine.set_id, []).append(engine)
    return Topology("node1", True, tuple(RtpSet(i, tuple(e)) for i, e in by_set.items()), False, None,
                    opensips_local=local)


def test_set_with_no_enabled_engine_fails():
    result = tc.check_sets(_ctx(_sets(_engine(disabled=True), _engine(set_id=1))))
    assert result.status is Status.FAIL and "set 0" in result.summary and "set 1" not in result.summary
    assert tc.check_sets(_ctx(_sets(_engine(), _engine(disabled=True)))).status is Status.OK


def test_stale_disable_warns_with_the_enable_remedy():
    topology = _sets(_engine("udp:127.0.0.1:4001", disabled=True), _engine("udp:127.0.0.1:4003", answered=False))
    result = tc.check_stale(_ctx(topology))
    assert result.status is Status.WARN and "stale disable" in result.summary and "4003" not in result.summary
    assert result.remedy == "opsconsole mi rtpengine_enable url=udp:127.0.0.1:4001 enable=1 --allow-write"


def test_enabled_engine_not_answering_fails():
    result = tc.check_down(_ctx(_sets(_engine("udp:127.0.0.1:4002", answered=False), _engine(disabled=True))))
    assert result.status is Status.FAIL and "udp:127.0.0.1:4002" in result.summary and result.remedy
    # disabled and not answering: OpenSIPS is right, on both counts
    topology = _sets(_engine(disabled=True, answered=False), _engine())
    assert tc.check_down(_ctx(topology)).status is Status.OK and tc.check_stale(_ctx(topology)).status is Status.OK


@pytest.mark.parametrize("check", [tc.check_sets, tc.check_down, tc.check_stale, tc.check_hosts, tc.check_links,
                                   tc.check_shtags])
def test_unknown_data_is_never_a_finding(check):
    assert check(_ctx(failed="no answer within 3 s")).status is Status.UNKNOWN
    assert check(_ctx()).status is Status.SKIP  # no OpenSIPS configured
    unknown = Topology("n", None, None, None, None)
    assert check(_ctx(unknown)).status in (Status.UNKNOWN, Status.SKIP)


def test_engine_not_probed_is_unknown():
    topology = _sets(_engine(answered=None, disabled=True), _engine(answered=None))
    assert tc.check_down(_ctx(topology)).status is Status.UNKNOWN
    assert tc.check_stale(_ctx(topology)).status is Status.UNKNOWN


def _host(*ng: str) -> HostState:
    return HostState(rtpengine=tuple(ProcessInfo(100 + i, "rtpengine", settings={"ng_address": a})
                                     for i, a in enumerate(ng)))


def test_hosts_sock_naming_an_engine_not_run_here_warns():
    topology = _sets(_engine("udp:127.0.0.1:4000"), _engine("udp:127.0.0.1:4009"), _engine("udp:192.0.2.9:4000"))
    result = tc.check_hosts(_ctx(topology, host=_host("127.0.0.1:4000")))
    assert result.status is Status.WARN and "udp:127.0.0.1:4009" in result.summary
    assert "192.0.2.9" not in result.summary  # another host's engine: not judged
    assert tc.check_hosts(_ctx(_sets(_engine("udp:localhost:4000")), host=_host("127.0.0.1:4000"))).status \
        is Status.OK


def test_hosts_own_engine_in_no_set_warns():
    config = Config(ng=("127.0.0.1", 4100), cli=None)
    result = tc.check_hosts(_ctx(_sets(_engine("udp:127.0.0.1:4000")), host=_host("127.0.0.1:4000", "127.0.0.1:4100"),
                                 config=config))
    assert result.status is Status.WARN and "4100" in result.summary and "no set" in result.summary


def test_hosts_every_engine_of_the_target_in_no_set_warns():
    config = Config(ng=("127.0.0.1", 4000), cli=None, relays_ng=(("127.0.0.1", 4000), ("127.0.0.1", 4200)))
    result = tc.check_hosts(_ctx(_sets(_engine("udp:127.0.0.1:4000")), host=_host("127.0.0.1:4000", "127.0.0.1:4200"),
                                 config=config))
    assert result.status is Status.WARN and "4200" in result.summary and "4000" not in result.summary


def test_hosts_unknown_or_remote():
    assert tc.check_hosts(_ctx(_sets(_engine()))).status is Status.UNKNOWN  # host facts unknown
    assert tc.check_hosts(_ctx(_sets(_engine(), local=False), host=_host())).status is Status.SKIP


def _cluster(target: str, peers: tuple[tuple[int, str], ...], state: str | None) -> Topology:
    nodes = tuple(ClusterNode(1, node_id, f"bin:127.0.0.1:{9000 + node_id}", link) for node_id, link in peers)
    tags = (SharingTag("vip", 1, state),) if state else ()
    return Topology(target, False, None, True, ClusterState(nodes, tags, ()))


def test_link_down_warns():
    result = tc.check_links(_ctx(_cluster("n1", ((2, "Down"), (3, "Up")), "active")))
    assert result.status is Status.WARN and "node 2" in result.summary and "node 3" not in result.summary
    assert tc.check_links(_ctx(_cluster("n1", ((2, "Up"),), "active"))).status is Status.OK


def test_one_node_cannot_judge_split_brain_with_a_peer():
    for state in ("active", "backup"):
        assert tc.check_shtags(_ctx(_cluster("n1", ((2, "Down"),), state))).status is Status.SKIP


def test_node_alone_in_its_cluster_is_judged():
    assert tc.check_shtags(_ctx(_cluster("n1", (), "backup"))).status is Status.FAIL
    assert tc.check_shtags(_ctx(_cluster("n1", (), "active"))).status is Status.OK


def test_split_brain_across_nodes():
    one = _cluster("n1", ((2, "Up"),), "active")
    assert tc.judge_sharing_tags({"n1": one, "n2": _cluster("n2", ((1, "Up"),), "backup")}).status is Status.OK
    both = tc.judge_sharing_tags({"n1": one, "n2": _cluster("n2", ((1, "Down"),), "active")})
    assert both.status is Status.FAIL and "n1 and n2" in both.summary
    none = tc.judge_sharing_tags({"n1": _cluster("n1", ((2, "Down"),), "backup"),
                                  "n2": _cluster("n2", ((1, "Down"),), "backup")})
    assert none.status is Status.FAIL and "active on no node" in none.summary
    # the same node twice (two targets naming one box) is not every node: no "active on no node"
    same = tc.judge_sharing_tags({"a": _cluster("a", ((2, "Up"),), "backup"), "b": _cluster("b", ((2, "Up"),), "backup")})
    assert same.status is Status.SKIP


def test_shtags_unknown_when_the_call_failed():
    topology = Topology("n1", False, None, True, ClusterState((), None, ()), ("clusterer_list_shtags: boom",))
    assert tc.check_shtags(_ctx(topology)).status is Status.UNKNOWN


# --------------------------------------------------------------------------- snapshot JSON and text


def _snapshot(topology: Topology) -> Snapshot:
    return Snapshot(collected_at=1.0, sources={"topology": SourceStatus("topology", True)},
                    parts={"topology": topology})


def test_snapshot_json_has_the_topology():
    topology = _sets(_engine("udp:127.0.0.1:4000", weight=2), _engine("udp:127.0.0.1:4001", disabled=True))
    data = json.loads(json.dumps(snapshot_dict(_snapshot(topology))))
    (rtp_set,) = data["topology"]["sets"]
    assert rtp_set["enabled"] == 1
    first, second = rtp_set["engines"]
    assert (first["weight"], first["answers"], first["ping_ms"], second["disabled_by_mi"]) == (2, True, 0.5, True)
    assert snapshot_dict(Snapshot(collected_at=1.0))["topology"] is None


def test_snapshot_text_shows_sets_and_cluster_safely():
    hostile = "udp:127.0.0.1:4000\x1b[2J"
    topology = Topology("n1", True, (RtpSet(0, (_engine(hostile),)),), True,
                        ClusterState((ClusterNode(1, 2, "bin:127.0.0.1:9002", "Down", "enabled"),),
                                     (SharingTag("vip", 1, "active"),), ()))
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(render_snapshot(_snapshot(topology)))
    text = console.export_text()
    assert "RTPengine sets (1)" in text and "\\x1b[2J" in text and "\x1b" not in text
    assert "2@1 link Down enabled" in text and "vip/1 active" in text


@pytest.mark.parametrize("method", ["clusterer_shtag_set_active", "clusterer:shtag_set_active", "cluster_send_mi",
                                    "clusterer:broadcast_mi", "clusterer_set_status", "rtpengine_enable"])
def test_cluster_and_engine_writes_need_allow_write(method):
    from opsconsole_opensips.commands import is_write_method

    assert is_write_method(method)


@pytest.mark.parametrize("method", ["clusterer_list", "clusterer:list_shtags", "clusterer_list_cap"])
def test_cluster_reads_are_reads(method):
    from opsconsole_opensips.commands import is_write_method

    assert not is_write_method(method)


async def test_rtpengine_sock_leaves_a_stale_disable_to_its_own_warn(rtpengine):
    """A disabled engine that answers is opensips.rtpengine_stale's WARN, not opensips.rtpengine_sock's FAIL."""
    from console.model import RelayNode, SignallingState
    from opsconsole_rtpengine import checks

    url = f"udp:127.0.0.1:{rtpengine.ng[1]}"
    snapshot = Snapshot(collected_at=1.0, signalling=SignallingState(relays=(RelayNode(url=url, disabled=True),)))
    result = await checks.check_rtpengine_sock(CheckContext(snapshot, rtpengine.config(timeout=0.5), 1.0))
    assert result.status is Status.OK and "opensips.rtpengine_stale" in result.evidence[f"set 0 {url}"]


def test_fleet_judges_sharing_tags_over_every_target():
    from console.model import CheckResult
    from console.model.topology import fleet_shtags

    skip = CheckResult("opensips.cluster_shtags", Status.SKIP, "one node cannot tell", elapsed_ms=3.0)
    other = CheckResult("opensips.mi", Status.OK, "fine")
    views = {"n1": _cluster("n1", ((2, "Down"),), "active"), "n2": _cluster("n2", ((1, "Down"),), "active")}
    judged = fleet_shtags({"n1": [other, skip], "n2": [other]}, views)
    assert judged["n1"][0] is other and judged["n2"] == [other]  # n2 did not run the check (--skip): not added
    assert judged["n1"][1].status is Status.FAIL and "judged over 2 targets" in judged["n1"][1].summary
    assert judged["n1"][1].elapsed_ms == 3.0
    # one view, or views without tags: nothing the node did not know already
    assert fleet_shtags({"n1": [skip]}, {"n1": views["n1"], "n2": None})["n1"] == [skip]


async def test_topology_asks_mi_after_the_nodes_own_collection(mi_server):
    """mi_http answers one request at a time: the topology source's calls come after the OpenSIPS source's
    collection of the same poll, never interleaved with it."""
    import asyncio

    from opsconsole_opensips.source import OpenSIPSSource

    config = Config(mi_url=mi_server.url, ng=None, cli=None, timeout=2.0)
    opensips = OpenSIPSSource(config)
    topology_source = TopologySource(config, opensips)
    try:
        state, topology = await asyncio.gather(opensips.collect(CollectOptions(contacts=False, dialogs=False)),
                                               topology_source.collect(CollectOptions()))
    finally:
        await opensips.aclose()
    methods = [method for method, _params in mi_server.requests]
    # one detection and one rtpengine_show, shared: the sets are the node's own poll's (parsed once)
    assert methods.count("version") == 1 and methods.count("rtpengine_show") == 1
    assert state.overview.version and topology.sets and topology.sets[0].engines[0].url == mi_server.relay_url
    assert [(e.url, e.weight, e.disabled) for s in topology.sets for e in s.engines] == \
        [(r.url, r.weight, r.disabled) for r in state.relays]


async def test_topology_not_asked_when_the_nodes_collection_failed():
    from console.errors import OpsError

    class Failed(FakeMI):
        async def settled(self):
            return OpsError("connection refused")

    mi = Failed({}, frozenset())
    with pytest.raises(OpsError, match="not asked: the OpenSIPS collection failed"):
        await TopologySource(Config(mi_url="http://127.0.0.1:1/mi"), mi).collect(CollectOptions())
    assert mi.asked == []
