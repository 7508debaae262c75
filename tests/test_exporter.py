"""`opsconsole exporter` (#16): the metrics of every target, scraped over HTTP (httpx) from an exporter on a
port from the OS, against demo nodes; a scrape answers from the last poll and asks no node anything;
unknown is no sample (a dead node says up 0 and nothing else it cannot know)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from console.exporter import Exporter, parse_listen
from console.errors import ConfigError
from console.fleet import TargetSpec
from support.faults import free_port
from test_fleet_session import demo_nodes, fleet_of


def scrape(url: str) -> dict[str, list[tuple[dict, float]]]:
    """metric name -> [(labels, value)] of one scrape."""
    reply = httpx.get(url, timeout=5)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    found: dict[str, list[tuple[dict, float]]] = defaultdict(list)
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def of(metrics, name: str, target: str, **labels: str) -> list[float]:
    return [value for got, value in metrics.get(name, ()) if got["target"] == target
            and all(got.get(key) == wanted for key, wanted in labels.items())]


def by(metrics, name: str, target: str, label: str) -> dict[str, float]:
    return {got[label]: value for got, value in metrics.get(name, ()) if got["target"] == target}


@contextlib.asynccontextmanager
async def exporting(specs, **kwargs):
    fleet = fleet_of(specs, **kwargs)
    exporter = Exporter(fleet, ("127.0.0.1", 0))
    exporter.start()
    try:
        yield fleet, exporter
    finally:
        await exporter.aclose()


async def test_every_target_is_exported_with_its_own_figures():
    async with demo_nodes("par-1", "lon-1", size=30) as nodes:
        dead = TargetSpec("gone", mi_url=f"http://127.0.0.1:{free_port()}/mi")
        async with exporting([nodes[0].spec(site="par", role="active"), nodes[1].spec(site="lon"), dead]) as (fleet, exp):
            await fleet.poll_once()
            metrics = scrape(exp.url)
            views = {name: fleet.session(name).view for name in fleet.names}
    for node in nodes:
        name, state = node.name, node.demo.state
        assert of(metrics, "opsconsole_up", name) == [1]
        assert of(metrics, "opsconsole_contacts_registered", name) == [state.contact_count]
        transports = by(metrics, "opsconsole_contacts", name, "transport")
        assert sum(transports.values()) == state.contact_count and set(transports) <= {"udp", "tcp", "tls", "ws", "wss"}
        ws = sum(1 for c in views[name].contacts if c.ws or c.transport in ("ws", "wss"))
        assert ws > 0 and of(metrics, "opsconsole_contacts_ws", name) == [ws]
        dialogs = by(metrics, "opsconsole_dialogs", name, "state")
        assert sum(dialogs.values()) == len(state.dialogs) and set(dialogs) >= {"early", "confirmed"}
        assert of(metrics, "opsconsole_media_sessions", name) == [len(state.dialogs)]
        assert of(metrics, "opsconsole_ports_used", name) == [4 * len(state.dialogs)]
        assert of(metrics, "opsconsole_ports_total", name)[0] > 0
        checks = by(metrics, "opsconsole_check_status", name, "check")
        assert checks.keys() == {r.id for r in views[name].checks} and set(checks.values()) <= {0, 1, 2, 3}
        assert checks["opensips.mi"] == 0 and checks["rtpengine.ng"] == 0
        assert of(metrics, "opsconsole_rtpengine_engine_enabled", name)  # the node's set, as OpenSIPS sees it
        assert of(metrics, "opsconsole_source_up", name, source="opensips") == [1]
        assert of(metrics, "opsconsole_source_poll_seconds", name, source="rtpengine")[0] > 0
        assert of(metrics, "opsconsole_calls_without_media", name) == [0]
        quality = by(metrics, "opsconsole_calls_quality", name, "state")
        judged = views[name].qualities
        assert sum(quality.values()) == len(state.dialogs) and set(quality) >= {"ok", "silent", "one-way", "unknown"}
        assert all(quality[q.state.value] >= 1 for q in judged.values())  # the live session's own verdicts
        assert of(metrics, "opsconsole_media_without_dialog", name) == [0]
    assert metrics["process_resident_memory_bytes"][0][1] > 0  # the exporter's own footprint, for its own alerts
    version = by(metrics, "opsconsole_opensips_info", "lon-1", "version")
    assert list(version) == ["4.0.1"]
    info = [labels for labels, _ in metrics["opsconsole_target_info"] if labels["target"] == "par-1"]
    assert info == [{"target": "par-1", "site": "par", "role": "active"}]
    # the dead node: up 0, its MI check failing, and none of the figures it could not know
    assert of(metrics, "opsconsole_up", "gone") == [0]
    assert by(metrics, "opsconsole_check_status", "gone", "check")["opensips.mi"] == 2
    for unknown in ("opsconsole_contacts_registered", "opsconsole_contacts", "opsconsole_dialogs",
                    "opsconsole_calls_without_media", "opsconsole_opensips_info"):
        assert of(metrics, unknown, "gone") == [], unknown


async def test_a_scrape_answers_from_the_last_poll_and_asks_no_node():
    async with demo_nodes("par-1") as (node,):
        async with exporting([node.spec()]) as (fleet, exp):
            await fleet.poll_once()
            asked = len(node.asked)
            first = scrape(exp.url)
            await asyncio.sleep(0.3)
            scrapes = [scrape(exp.url) for _ in range(3)]
            assert len(node.asked) == asked  # three scrapes, not one MI request
            await fleet.poll_once()
            assert len(node.asked) > asked
    age = [of(metrics, "opsconsole_poll_age_seconds", "par-1")[0] for metrics in (first, *scrapes)]
    assert age[1] > age[0] + 0.2  # the same poll, older at each scrape
    stamps = {of(metrics, "opsconsole_last_poll_timestamp_seconds", "par-1")[0] for metrics in (first, *scrapes)}
    assert len(stamps) == 1


async def test_calls_without_media_and_media_without_dialog_are_counted():
    async with demo_nodes("par-1") as (node,):
        async with exporting([node.spec()]) as (fleet, exp):
            engine = node.demo.media.engine
            lost = next(d.callid for d in node.demo.state.dialogs.values() if d.state == 4)
            engine.sessions.pop(lost)  # RTPengine lost the call's session: a confirmed dialog without media
            await node.demo.media.request({"command": "offer", "call-id": "zombie-1", "from-tag": "z1",
                                           "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                                                  "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"})
            await fleet.poll_once()
            metrics = scrape(exp.url)
    assert of(metrics, "opsconsole_calls_without_media", "par-1") == [1]
    assert of(metrics, "opsconsole_media_without_dialog", "par-1") == [1]


def test_listen_addresses():
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "127.0.0.1:http", "127.0.0.1:70000", ":9464"):
        with pytest.raises(ConfigError, match="--listen"):
            parse_listen(bad)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_exporter_command_serves_and_stops_cleanly_on_a_signal(signum, tmp_path):
    """The command itself (--demo, a port from the OS): /metrics answers, a signal stops it with 0."""
    process = subprocess.Popen([sys.executable, "-m", "console", "exporter", "--demo", "--demo-size", "20",
                                "--listen", "127.0.0.1:0", "--interval", "0.5"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               env={**os.environ, "HOME": str(tmp_path)})
    try:
        said = []
        for line in process.stderr:  # "... on http://127.0.0.1:PORT/metrics" once it listens
            said.append(line)
            if "/metrics" in line:
                break
        assert said and "/metrics" in said[-1], "".join(said)[-3000:]
        url = said[-1].split(" on ")[-1].strip()
        for _ in range(100):  # until the first poll's samples are there
            metrics = scrape(url)
            if of(metrics, "opsconsole_up", "default"):
                break
            subprocess.run(["sleep", "0.1"])
        assert of(metrics, "opsconsole_up", "default") == [1]
        assert of(metrics, "opsconsole_contacts_registered", "default") == [20]
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in process.stderr.read()
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)  # the server went with it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sets_engines_and_the_cluster_become_samples():
    """The topology part (RTPengine sets joined with each engine's answer; clusterer links and sharing tags)
    as samples; an engine not probed and a tag in another state give none (unknown is no sample)."""
    from types import SimpleNamespace

    from console.exporter_metrics import NodeMemory, node_samples
    from console.model import Snapshot, SourceStatus
    from console.model.topology import (ClusterNode, ClusterState, EngineHealth, RtpEngineNode, RtpSet, SharingTag,
                                        Topology)

    engines = (RtpEngineNode("udp:10.0.0.7:2223", 1, weight=2, health=EngineHealth("10.0.0.7:2223", True, 1.5)),
               RtpEngineNode("udp:10.0.0.8:2223", 1, disabled=True, health=EngineHealth("10.0.0.8:2223", False)),
               RtpEngineNode("udp:10.0.0.9:2223", 1, health=None))
    topology = Topology(sets=(RtpSet(1, engines),), cluster=ClusterState(
        nodes=(ClusterNode(1, 2, link_state="Up"), ClusterNode(1, 3, link_state="Down")),
        shtags=(SharingTag("vip", 1, "active"), SharingTag("vip2", 1, "backup"), SharingTag("odd", 1, "?"))))
    latest = Snapshot(collected_at=100.0, sources={"opensips": SourceStatus("opensips", True)},
                      parts={"topology": topology})
    view = SimpleNamespace(latest=latest, checks=(), checks_at=None, contacts=None, dialogs=None, media=None,
                           calls=(), stale={})
    samples = {(s.name, s.labels): s.value for s in node_samples(TargetSpec("a"), view, NodeMemory())}
    assert samples[("opsconsole_rtpengine_engine_enabled", ("1", "udp:10.0.0.7:2223"))] == 1
    assert samples[("opsconsole_rtpengine_engine_enabled", ("1", "udp:10.0.0.8:2223"))] == 0
    assert samples[("opsconsole_rtpengine_engine_weight", ("1", "udp:10.0.0.7:2223"))] == 2
    assert samples[("opsconsole_rtpengine_engine_answers", ("1", "udp:10.0.0.7:2223"))] == 1
    assert samples[("opsconsole_rtpengine_engine_answers", ("1", "udp:10.0.0.8:2223"))] == 0
    assert ("opsconsole_rtpengine_engine_answers", ("1", "udp:10.0.0.9:2223")) not in samples  # not probed
    assert samples[("opsconsole_rtpengine_engine_ping_seconds", ("1", "udp:10.0.0.7:2223"))] == 0.0015
    assert samples[("opsconsole_rtpengine_set_enabled_engines", ("1",))] == 2
    assert samples[("opsconsole_cluster_node_link_up", ("1", "2"))] == 1
    assert samples[("opsconsole_cluster_node_link_up", ("1", "3"))] == 0
    assert samples[("opsconsole_sharing_tag_active", ("1", "vip"))] == 1
    assert samples[("opsconsole_sharing_tag_active", ("1", "vip2"))] == 0
    assert ("opsconsole_sharing_tag_active", ("1", "odd")) not in samples
    assert samples[("opsconsole_up", ())] == 1


def test_only_the_exporter_loads_prometheus_client(tmp_path):
    """snapshot/diagnose/mi never pay for prometheus-client's import (the exporter imports it itself)."""
    code = ("import sys, contextlib, io\nfrom console.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['diagnose', '--list'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
