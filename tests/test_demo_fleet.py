"""`--demo-nodes N`: the demo's nodes answer the fleet's MI methods in the shapes real OpenSIPS 3.4
and 4.0 nodes answered them (tests/fixtures/opensips-*/cluster/, captured from a real two-node
cluster), with the cast the Fleet screen needs: an active/backup pair, a set with a disabled
engine that still answers, one unhealthy node."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from console.errors import ConfigError
from opsconsole_demo.fleet import UNHEALTHY_LOAD, UNHEALTHY_SHM, DemoFleet
from opsconsole_demo.fleet_mi import MI_DISABLED_TICKS
from opsconsole_rtpengine.ng import NgClient

FIXTURES = Path(__file__).parent / "fixtures"
NAMES_40 = {"rtpengine_show": "rtpengine:show", "rtpengine_enable": "rtpengine:enable",
            "clusterer_list": "clusterer:list", "clusterer_list_shtags": "clusterer:list_shtags"}


def captured(version: str, name: str) -> dict:
    return json.loads((FIXTURES / f"opensips-{version}" / "cluster" / f"{name}.json").read_text())


def shape(value):
    """Keys and value types, recursively (lists: the shape of their first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def mi(url: str, method: str, params=None) -> dict:
    async with httpx.AsyncClient(timeout=2.0) as client:
        request = {"jsonrpc": "2.0", "method": method, "id": 1} | ({"params": params} if params is not None else {})
        return (await client.post(url, json=request)).json()


@pytest.fixture
async def fleet_of(request):
    fleets: list[DemoFleet] = []

    async def start(nodes: int, version: str = "3.4") -> DemoFleet:
        fleet = DemoFleet(nodes, size=20, version=version, real_rtpengine=False, tick=None)
        fleets.append(fleet)
        await fleet.start()
        return fleet

    yield start
    for fleet in fleets:
        await fleet.stop()


@pytest.mark.parametrize("version", ["3.4", "4.0"])
async def test_each_node_answers_the_fleet_methods_in_the_captured_shapes(fleet_of, version):
    fleet = await fleet_of(4, version)
    names = NAMES_40 if version == "4.0" else {name: name for name in NAMES_40}
    urls = {spec.name: spec.mi_url for spec in fleet.targets()}
    assert list(urls) == ["node-01", "node-02", "node-03", "node-04"]
    active = (await mi(urls["node-01"], names["clusterer_list"]))["result"]
    backup = (await mi(urls["node-02"], names["clusterer_list"]))["result"]
    assert shape(active) == shape(captured(version, "clusterer_list.node1.up")["result"])
    # each lists the other (never itself), link Up
    assert [n["node_id"] for n in active["Clusters"][0]["Nodes"]] == [2]
    assert [n["node_id"] for n in backup["Clusters"][0]["Nodes"]] == [1]
    assert {n["link_state"] for n in active["Clusters"][0]["Nodes"] + backup["Clusters"][0]["Nodes"]} == {"Up"}
    tags = {name: (await mi(urls[name], names["clusterer_list_shtags"]))["result"] for name in ("node-01", "node-02")}
    assert shape(tags["node-01"]) == shape(captured(version, "clusterer_list_shtags.node1.active")["result"])
    assert [(t["Tag"], t["State"]) for t in tags["node-01"]] == [("vip", "active")]
    assert [(t["Tag"], t["State"]) for t in tags["node-02"]] == [("vip", "backup")]
    # a node without the clusterer module: the method does not exist there
    assert (await mi(urls["node-03"], names["clusterer_list"]))["error"]["code"] == -32601
    sets = (await mi(urls["node-02"], names["rtpengine_show"]))["result"]
    assert shape(sets) == shape(captured(version, "rtpengine_show.one_disabled")["result"])


async def test_the_disabled_engine_answers_and_rtpengine_enable_brings_it_back(fleet_of):
    fleet = await fleet_of(3)
    url = fleet.targets()[1].mi_url
    engines = (await mi(url, "rtpengine_show"))["result"][0]["Nodes"]
    own, spare = engines
    assert own["url"] == "udp:%s:%d" % fleet.platform("node-02").ng and own["disabled"] == 0
    assert (spare["disabled"], spare["recheck_ticks"]) == (1, MI_DISABLED_TICKS)
    host, port = spare["url"].removeprefix("udp:").rsplit(":", 1)
    ng = NgClient(host, int(port), timeout=2.0)
    try:
        await ng.ping()  # raises unless it answers: a stale disable (OpenSIPS avoids an engine that answers)
    finally:
        await ng.aclose()
    reply = await mi(url, "rtpengine_enable", {"url": spare["url"], "enable": "1"})
    assert reply["result"] == captured("3.4", "rtpengine_enable.disable")["result"] == "OK"
    after = (await mi(url, "rtpengine_show"))["result"][0]["Nodes"][1]
    assert (after["disabled"], after["recheck_ticks"]) == (0, 0)
    unknown = await mi(url, "rtpengine_enable", {"url": "udp:127.0.0.1:9", "enable": "1"})
    assert unknown["error"] == {"code": 404, "message": "RTP engine not found"}
    assert "error" in await mi(url, "rtpengine_enable", {"url": spare["url"]})  # enable is required


async def test_the_last_node_is_unhealthy_and_the_others_are_not(fleet_of):
    fleet = await fleet_of(3)
    stats = {}
    for spec in fleet.targets():
        stats[spec.name] = (await mi(spec.mi_url, "get_statistics", {"statistics": ["load:", "shmem:"]}))["result"]
    sick = stats["node-03"]
    assert sick["load:load"] == UNHEALTHY_LOAD
    assert sick["shmem:real_used_size"] / sick["shmem:total_size"] == pytest.approx(UNHEALTHY_SHM / 100, abs=0.001)
    for name in ("node-01", "node-02"):
        assert stats[name]["load:load"] < 20  # below the default warn threshold
        assert stats[name]["shmem:real_used_size"] / stats[name]["shmem:total_size"] < 0.7


async def test_one_node_alone_still_has_its_disabled_engine_and_no_cluster(fleet_of):
    fleet = await fleet_of(1)
    url = fleet.targets()[0].mi_url
    assert [n["disabled"] for n in (await mi(url, "rtpengine_show"))["result"][0]["Nodes"]] == [0, 1]
    assert (await mi(url, "clusterer_list_shtags"))["error"]["code"] == -32601


def test_a_fleet_of_no_nodes_or_too_many_is_refused():
    for nodes in (0, 51):
        with pytest.raises(ConfigError, match="1 to 50 nodes"):
            DemoFleet(nodes)


def test_the_demo_alone_prints_its_nodes_as_targets_a_config_file_accepts(tmp_path):
    import subprocess
    import sys

    from console.config import load_config

    demo = subprocess.Popen([sys.executable, "-m", "opsconsole_demo", "--nodes", "3", "--sim-media", "--size", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in demo.stdout:
            if line.startswith("# save"):
                break
            lines.append(line)
        (tmp_path / "fleet.toml").write_text("".join(lines))
        config = load_config({}, config_file=str(tmp_path / "fleet.toml"), discover=False)
    finally:
        demo.terminate()
        demo.wait(timeout=10)
    assert [t.name for t in config.targets] == ["node-01", "node-02", "node-03"]
    assert all(t.mi_url.startswith("http://127.0.0.1:") and len(t.ng) == 1 for t in config.targets)
    assert config.targets[1].labels == {"site": "lab-b", "role": "backup"}
    refused = subprocess.run([sys.executable, "-m", "opsconsole_demo", "--nodes", "0"], capture_output=True, text=True)
    assert refused.returncode == 2 and "1 to 50" in refused.stderr
