"""RTPengineSource end to end against real daemons."""

from __future__ import annotations

import socket

import pytest

from console.config import Config
from console.errors import ConfigError, OpsError
from console.model import MediaState
from console.plugins import CollectOptions, load_plugins
from opsconsole_rtpengine.cli import CliClient
from opsconsole_rtpengine.ng import NgClient
from opsconsole_rtpengine.source import RTPengineSource, make_sources
from support.rtpengine_daemon import make_call

pytestmark = pytest.mark.rtpengine

KINDS = ["udp_udp", "udp_to_ws", "ws_to_udp", "ws_to_ws", "udp_udp", "udp_udp"]


def dead_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def busy_daemon(start_rtpengine):
    """A fresh daemon holding one call of each kind (plus two more plain ones)."""
    daemon = start_rtpengine(ports=100, extra_args=("--delete-delay=30",))
    client = NgClient(*daemon.ng)
    tags = {}
    for i, kind in enumerate(KINDS):
        tags[f"src-{i}"] = await make_call(client, f"src-{i}", kind)
    await client.delete("src-5", tags["src-5"][0])  # deletion mark, kept for delete-delay
    yield daemon, tags
    await client.aclose()


async def collect(config: Config, **options) -> MediaState:
    source = RTPengineSource(config)
    try:
        return await source.collect(CollectOptions(**options))
    finally:
        await source.aclose()


async def test_collect_matches_the_daemon(busy_daemon):
    daemon, tags = busy_daemon
    state = await collect(daemon.config())
    assert state.ng_ok is True and state.cli_ok is True and state.errors == ()
    assert state.target == f"{daemon.ng[0]}:{daemon.ng[1]}"
    assert sorted(s.callid for s in state.sessions) == sorted(tags)
    assert state.sessions_total == len(KINDS)
    (iface,) = await CliClient(*daemon.cli).interfaces()
    assert state.ports.used == iface.used == 4 * len(KINDS)
    assert (state.ports.port_min, state.ports.port_max) == (daemon.port_min, daemon.port_max)
    assert state.totals.total_sessions == len(KINDS)
    deleted = {s.callid for s in state.sessions if s.deleted}
    assert deleted == {"src-5"}


async def test_details_have_legs_protocols_and_ports(busy_daemon):
    daemon, tags = busy_daemon
    state = await collect(daemon.config(), media_details=True)
    by_id = {s.callid: s for s in state.sessions}
    assert all(s.detailed for s in state.sessions)
    bridged = by_id["src-1"]  # udp_to_ws
    assert {leg.tag for leg in bridged.legs} == set(tags["src-1"])
    assert bridged.leg(tags["src-1"][0]).protocol == "RTP/AVP"
    assert bridged.leg(tags["src-1"][1]).protocol == "UDP/TLS/RTP/SAVPF"
    assert "ICE" in bridged.leg(tags["src-1"][1]).medias[0].flags
    all_ports = [p for s in state.sessions for p in s.ports]
    assert len(all_ports) == len(set(all_ports)) == 4 * len(KINDS)
    assert all(daemon.port_min <= p <= daemon.port_max for p in all_ports)
    assert by_id["src-5"].deleted and by_id["src-5"].detailed


async def test_without_details_sessions_are_only_listed(busy_daemon):
    daemon, _ = busy_daemon
    state = await collect(daemon.config(), media_details=False)
    assert len(state.sessions) == len(KINDS)
    assert not any(s.detailed or s.legs for s in state.sessions)


async def test_ng_down_cli_answers(busy_daemon):
    daemon, tags = busy_daemon
    state = await collect(daemon.config(ng=("127.0.0.1", dead_port())))
    assert state.ng_ok is False and "refused" in state.ng_error
    assert state.cli_ok is True
    assert sorted(s.callid for s in state.sessions) == sorted(tags)
    assert state.ports.used == 4 * len(KINDS)
    assert state.totals.total_sessions == len(KINDS)  # from CLI `list totals`
    assert any(e.startswith("ng statistics") for e in state.errors)
    assert not any(e.startswith("ng list") for e in state.errors)  # the CLI listed them: no ng list asked


async def test_cli_down_ng_answers(busy_daemon):
    daemon, tags = busy_daemon
    state = await collect(daemon.config(cli=("127.0.0.1", dead_port(socket.SOCK_STREAM))))
    assert state.ng_ok is True and state.cli_ok is False and "refused" in state.cli_error
    assert sorted(s.callid for s in state.sessions) == sorted(tags)
    assert state.ports.used == 4 * len(KINDS)  # from ng statistics
    assert all(s.detailed for s in state.sessions)


async def test_cli_unconfigured(busy_daemon):
    daemon, tags = busy_daemon
    state = await collect(daemon.config(cli=None))
    assert state.cli_ok is None and state.cli_error == "" and state.ng_ok is True
    assert len(state.sessions) == len(KINDS)


async def test_both_down_raises():
    config = Config(ng=("127.0.0.1", dead_port()), cli=("127.0.0.1", dead_port(socket.SOCK_STREAM)), timeout=0.5)
    with pytest.raises(OpsError, match="unreachable"):
        await collect(config)


async def test_nothing_configured():
    config = Config(ng=None, cli=None)
    assert make_sources(config) == []
    with pytest.raises(ConfigError):
        await RTPengineSource(config).collect(CollectOptions())


async def test_legacy_listener_reported_in_ng_error(start_rtpengine):
    daemon = start_rtpengine(legacy=True, ports=8)
    state = await collect(daemon.config(ng=daemon.legacy))
    assert state.ng_ok is False and "--listen-ng" in state.ng_error
    assert state.cli_ok is True


async def test_plugin_entry_point_gives_the_source(rtpengine):
    loaded = load_plugins(only={"rtpengine"})
    assert loaded.failures == ()
    (source,) = loaded.sources(rtpengine.config())
    assert (source.name, source.kind) == ("rtpengine", "media")
    state = await source.collect(CollectOptions())
    await source.aclose()
    assert state.ng_ok and state.cli_ok
    assert state.ports.total == rtpengine.port_max - rtpengine.port_min + 1


@pytest.fixture
async def crowded_daemon(start_rtpengine):
    """More call-id bytes than one UDP datagram holds: ng `list` of all calls never gets a reply."""
    daemon = start_rtpengine(ports=1400)
    client = NgClient(*daemon.ng)
    callids = [f"{i:04d}-" + "long-call-id-" * 16 + "@192.0.2.10" for i in range(340)]
    for callid in callids:
        await make_call(client, callid)
    yield daemon, callids
    await client.aclose()


async def test_many_calls_listed_through_the_cli(crowded_daemon):
    daemon, callids = crowded_daemon
    state = await collect(daemon.config(timeout=0.6), media_details=False)
    assert sorted(s.callid for s in state.sessions) == sorted(callids)
    assert state.errors == ()  # the hopeless ng list was dropped, not reported
    assert state.ports.used == 4 * len(callids)


async def test_many_calls_without_cli_give_a_partial_list_and_say_why(crowded_daemon):
    daemon, callids = crowded_daemon
    state = await collect(daemon.config(timeout=0.6, cli=None), media_details=False)
    assert state.ng_ok is True
    assert 0 < len(state.sessions) < len(callids) == state.sessions_total
    assert {s.callid for s in state.sessions} <= set(callids)
    assert any("too many calls for one UDP datagram" in e for e in state.errors)
