"""rtpengine.* and opensips.rtpengine_sock checks: real daemons for reachability, models for the rest."""

from __future__ import annotations

import socket
import time

import pytest

from console.config import Config, Thresholds
from console.model import (Dialog, HostState, InterfacePorts, MediaSession, MediaState, MediaTotals, PortUsage,
                           ProcessInfo, RelayNode, SignallingState, Snapshot, Status)
from console.plugins import CheckContext, CollectOptions
from opsconsole_rtpengine import checks
from opsconsole_rtpengine.ng import NgClient, NgError
from opsconsole_rtpengine.plugin import plugin
from opsconsole_rtpengine.source import RTPengineSource
from support.rtpengine_daemon import make_call

NOW = 1_795_670_000.0


def dead_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ctx(config: Config | None = None, *, now: float = NOW, **snapshot) -> CheckContext:
    return CheckContext(snapshot=Snapshot(collected_at=now, **snapshot), config=config or Config(ng=None, cli=None),
                        now=now)


async def live_ctx(config: Config, **snapshot) -> CheckContext:
    source = RTPengineSource(config)
    try:
        media = await source.collect(CollectOptions())
    finally:
        await source.aclose()
    return ctx(config, now=time.time(), media=media, **snapshot)


def test_plugin_exposes_all_checks():
    ids = [spec.id for spec in plugin.checks]
    assert ids == ["rtpengine.ng", "rtpengine.cli", "rtpengine.ports", "rtpengine.kernel_forwarding",
                   "rtpengine.sessions", "opensips.rtpengine_sock", "calls.one_way", "calls.silent", "calls.quality"]
    assert plugin.name == "rtpengine"


# --------------------------------------------------------------------------- reachability (real daemons)


@pytest.mark.rtpengine
async def test_healthy_daemon_is_ok(rtpengine):
    context = await live_ctx(rtpengine.config())
    by_id = {spec.id: await spec(context) for spec in plugin.checks}
    assert by_id["rtpengine.ng"].status is Status.OK
    assert by_id["rtpengine.cli"].status is Status.OK
    assert by_id["rtpengine.ports"].status is Status.OK
    assert by_id["rtpengine.kernel_forwarding"].status is Status.SKIP  # no host facts
    assert by_id["rtpengine.sessions"].status is Status.SKIP  # no dialogs
    assert by_id["opensips.rtpengine_sock"].status is Status.SKIP  # no OpenSIPS state
    assert f"{rtpengine.ng[1]}" in by_id["rtpengine.ng"].summary


@pytest.mark.rtpengine
async def test_wrong_ng_port_fails_naming_the_address():
    port = dead_port()
    result = await checks.check_ng(ctx(Config(ng=("127.0.0.1", port), cli=None, timeout=0.5)))
    assert result.status is Status.FAIL
    assert f"127.0.0.1:{port}" in result.summary and "refused" in result.summary
    assert result.remedy


async def test_wrong_cli_port_fails():
    port = dead_port(socket.SOCK_STREAM)
    result = await checks.check_cli(ctx(Config(ng=None, cli=("127.0.0.1", port), timeout=0.5)))
    assert result.status is Status.FAIL and f"127.0.0.1:{port}" in result.summary


@pytest.mark.rtpengine
async def test_legacy_listener_fails_with_the_u_n_message(start_rtpengine):
    daemon = start_rtpengine(legacy=True, ports=8)
    result = await checks.check_ng(ctx(daemon.config(ng=daemon.legacy)))
    assert result.status is Status.FAIL
    assert "-u/--listen-udp" in result.summary and "-n/--listen-ng" in result.summary


@pytest.mark.rtpengine
async def test_tiny_range_filled_by_offers_fails_with_the_numbers(start_rtpengine):
    daemon = start_rtpengine(ports=8)  # 2 calls
    client = NgClient(*daemon.ng)
    try:
        await make_call(client, "fill-1")
        await make_call(client, "fill-2")
        with pytest.raises(NgError, match="Ran out of ports"):
            await make_call(client, "fill-3")
        result = await checks.check_ports(await live_ctx(daemon.config()))
    finally:
        await client.aclose()
    assert result.status is Status.FAIL
    assert "8 of 8 media ports used (100.0%)" in result.summary and "room for 0 more calls" in result.summary
    assert "Ran out of ports" in result.summary


@pytest.mark.rtpengine
async def test_ports_warn_threshold_live(start_rtpengine):
    daemon = start_rtpengine(ports=20)  # 5 calls; 4 calls = 80 %
    client = NgClient(*daemon.ng)
    try:
        for i in range(4):
            await make_call(client, f"warn-{i}")
        result = await checks.check_ports(await live_ctx(daemon.config()))
    finally:
        await client.aclose()
    assert result.status is Status.WARN
    assert "16 of 20" in result.summary and "room for 1 more calls" in result.summary


# --------------------------------------------------------------------------- ports from models


def media_with_ports(*interfaces: InterfacePorts) -> MediaState:
    return MediaState(ports=PortUsage(interfaces=interfaces))


@pytest.mark.parametrize(("used", "expected"), [(0, Status.OK), (799, Status.OK), (800, Status.WARN),
                                                (949, Status.WARN), (950, Status.FAIL), (1000, Status.FAIL)])
async def test_port_thresholds(used, expected):
    media = media_with_ports(InterfacePorts("default", "127.0.0.1", used, 1000, 30000, 30999))
    result = await checks.check_ports(ctx(media=media))
    assert result.status is expected
    assert result.evidence["default 127.0.0.1"].startswith(f"{used}/1000 ports used")
    assert f"room for {(1000 - used) // 4} more calls" in result.evidence["default 127.0.0.1"]


async def test_custom_thresholds_are_used():
    config = Config(ng=None, cli=None, thresholds=Thresholds(ports_warn=10, ports_fail=20))
    media = media_with_ports(InterfacePorts("default", "127.0.0.1", 150, 1000))
    assert (await checks.check_ports(ctx(config, media=media))).status is Status.WARN


async def test_interface_address_not_on_this_host_fails():
    media = media_with_ports(InterfacePorts("default", "127.0.0.1", 4, 1000),
                             InterfacePorts("public", "192.0.2.55", 0, 1000))
    result = await checks.check_ports(ctx(media=media))
    assert result.status is Status.FAIL
    assert "192.0.2.55" in result.summary and "Cannot assign requested address" in result.summary
    assert "127.0.0.1" not in result.summary
    assert "--interface" in result.remedy


async def test_ports_unknown_without_data():
    assert (await checks.check_ports(ctx())).status is Status.UNKNOWN


# --------------------------------------------------------------------------- sessions vs dialogs


def dialog(callid: str, state: int = 4) -> Dialog:
    return Dialog(id=f"id-{callid}", callid=callid, state=state, start=int(NOW) - 100)


def sessions_ctx(sessions, dialogs, total=None, zombie_age=300):
    media = MediaState(sessions=tuple(sessions), sessions_total=len(sessions) if total is None else total)
    config = Config(ng=None, cli=None, thresholds=Thresholds(zombie_age_s=zombie_age))
    return ctx(config, media=media, signalling=SignallingState(dialogs=None if dialogs is None else tuple(dialogs)))


def test_sessions_all_matched_ok():
    sessions = [MediaSession("a", created=int(NOW) - 1000), MediaSession("b", created=int(NOW) - 10)]
    result = checks.check_sessions(sessions_ctx(sessions, [dialog("a"), dialog("b")]))
    assert result.status is Status.OK


def test_zombie_sessions_warn():
    sessions = [MediaSession("live", created=int(NOW) - 5000),
                MediaSession("zombie-old", created=int(NOW) - 4000),
                MediaSession("young-no-dialog", created=int(NOW) - 60),   # still being set up
                MediaSession("deleted-old", created=int(NOW) - 4000, deleted=True)]  # BYE seen, in delete-delay
    result = checks.check_sessions(sessions_ctx(sessions, [dialog("live")]))
    assert result.status is Status.WARN
    assert "1 zombie sessions" in result.summary and "4 ports" in result.summary
    assert result.evidence["zombie sessions"] == ["zombie-old (age 4000 s)"]


def test_zombie_age_threshold_is_configurable():
    sessions = [MediaSession("no-dialog", created=int(NOW) - 120)]
    assert checks.check_sessions(sessions_ctx(sessions, [], zombie_age=300)).status is Status.OK
    assert checks.check_sessions(sessions_ctx(sessions, [], zombie_age=60)).status is Status.WARN


def test_confirmed_dialog_without_media_warns():
    result = checks.check_sessions(sessions_ctx([MediaSession("a", created=int(NOW))],
                                                [dialog("a"), dialog("no-media"), dialog("early", state=2)]))
    assert result.status is Status.WARN
    assert result.evidence["dialogs without media"] == ["no-media"]
    assert "1 confirmed dialogs" in result.summary


def test_partial_session_list_does_not_blame_dialogs():
    result = checks.check_sessions(sessions_ctx([MediaSession("a", created=int(NOW))], [dialog("a"), dialog("b")],
                                                total=40))
    assert result.status is Status.OK and "1 of 40" in result.evidence["note"]


def test_sessions_skip_when_dialogs_unknown():
    assert checks.check_sessions(sessions_ctx([MediaSession("a")], None)).status is Status.SKIP
    assert checks.check_sessions(ctx()).status is Status.SKIP


# --------------------------------------------------------------------------- kernel forwarding


def kernel_ctx(table, user, kernel, loaded=True):
    host = HostState(rtpengine=(ProcessInfo(pid=1, name="rtpengine", settings={"table": table}),),
                     kernel_modules={"xt_RTPENGINE": loaded})
    media = MediaState(totals=MediaTotals(relayed_packets_user=user, relayed_packets_kernel=kernel))
    return ctx(host=host, media=media)


def test_kernel_forwarding_mostly_userspace_with_module_warns():
    result = checks.check_kernel_forwarding(kernel_ctx(0, 9000, 1000))
    assert result.status is Status.WARN and "90%" in result.summary and "1418" in result.summary


def test_kernel_forwarding_mostly_kernel_ok():
    result = checks.check_kernel_forwarding(kernel_ctx(0, 100, 9900))
    assert result.status is Status.OK and "99%" in result.summary


def test_kernel_forwarding_module_not_loaded_points_at_the_host_check():
    result = checks.check_kernel_forwarding(kernel_ctx(0, 9000, 0, loaded=False))
    assert result.status is Status.SKIP and "kernel.xt_rtpengine" in result.summary


@pytest.mark.parametrize("context", [kernel_ctx(-1, 9000, 0), kernel_ctx(0, 10, 0), ctx()])
def test_kernel_forwarding_skips(context):
    assert checks.check_kernel_forwarding(context).status is Status.SKIP


# --------------------------------------------------------------------------- opensips.rtpengine_sock


def relays_ctx(config: Config, *nodes: RelayNode) -> CheckContext:
    return ctx(config, signalling=SignallingState(relays=nodes))


@pytest.mark.rtpengine
async def test_rtpengine_sock_pointing_at_ng_is_ok(rtpengine):
    url = f"udp:{rtpengine.ng[0]}:{rtpengine.ng[1]}"
    result = await checks.check_rtpengine_sock(relays_ctx(rtpengine.config(), RelayNode(url=url)))
    assert result.status is Status.OK


@pytest.mark.rtpengine
async def test_rtpengine_sock_pointing_at_cli_port_fails_with_the_mismatch(rtpengine):
    url = f"udp:127.0.0.1:{rtpengine.cli[1]}"
    result = await checks.check_rtpengine_sock(relays_ctx(rtpengine.config(), RelayNode(url=url)))
    assert result.status is Status.FAIL
    assert f"opensips.cfg rtpengine_sock {url}" in result.summary
    assert f"rtpengine listens ng on 127.0.0.1:{rtpengine.ng[1]}" in result.summary
    assert "CLI port" in result.summary
    assert f"udp:127.0.0.1:{rtpengine.ng[1]}" in result.remedy


@pytest.mark.rtpengine
async def test_rtpengine_sock_dead_and_disabled_nodes_fail(rtpengine):
    dead = f"udp:127.0.0.1:{dead_port()}"
    good = f"udp:127.0.0.1:{rtpengine.ng[1]}"
    result = await checks.check_rtpengine_sock(relays_ctx(
        rtpengine.config(timeout=0.5), RelayNode(url=dead), RelayNode(url=good, disabled=True),
        RelayNode(url=good, set_id=1)))
    assert result.status is Status.FAIL
    assert f"rtpengine_sock {dead}: nothing listens there" in result.summary
    assert "disabled" in result.evidence[f"set 0 {good}"]
    assert result.evidence[f"set 1 {good}"].startswith("ok")


@pytest.mark.rtpengine
async def test_rtpengine_sock_pointing_at_legacy_listener(start_rtpengine):
    daemon = start_rtpengine(legacy=True, ports=8)
    url = f"udp:127.0.0.1:{daemon.legacy[1]}"
    result = await checks.check_rtpengine_sock(relays_ctx(daemon.config(), RelayNode(url=url)))
    assert result.status is Status.FAIL
    assert "-u/--listen-udp" in result.summary and f"listens ng on 127.0.0.1:{daemon.ng[1]}" in result.summary


@pytest.mark.rtpengine
async def test_rtpengine_sock_uses_the_discovered_ng_when_config_is_wrong(rtpengine):
    config = Config(ng=("127.0.0.1", dead_port()), cli=None, timeout=0.5)
    host = HostState(rtpengine=(ProcessInfo(pid=1, name="rtpengine",
                                            settings={"listen-ng": f"127.0.0.1:{rtpengine.ng[1]}"}),))
    url = f"udp:127.0.0.1:{dead_port()}"
    context = ctx(config, host=host, signalling=SignallingState(relays=(RelayNode(url=url),)))
    result = await checks.check_rtpengine_sock(context)
    assert result.status is Status.FAIL
    assert f"rtpengine listens ng on 127.0.0.1:{rtpengine.ng[1]}" in result.summary


async def test_rtpengine_sock_skips_without_relays():
    assert (await checks.check_rtpengine_sock(ctx())).status is Status.SKIP
    assert (await checks.check_rtpengine_sock(relays_ctx(Config(ng=None, cli=None)))).status is Status.SKIP


async def test_silent_ng_peer_fails_within_the_check_timeout(monkeypatch):
    budgets: list[float] = []

    class RecordingClient(NgClient):
        def __init__(self, host, port, timeout=2.0, retries=2):
            budgets.append(timeout)
            super().__init__(host, port, timeout, retries)

    monkeypatch.setattr(checks, "NgClient", RecordingClient)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        config = Config(ng=("127.0.0.1", port), cli=None, timeout=0.4)
        result = await checks.check_ng(ctx(config))
    # the check's own I/O ends before the runner's per-check timeout would cut it off
    assert budgets and all(b < config.timeout for b in budgets)
    assert result.status is Status.FAIL and f"127.0.0.1:{port}" in result.summary
    assert "no ng reply" in result.summary


async def test_rtpengine_sock_unprobeable_nodes_fail_with_the_reason():
    context = relays_ctx(Config(ng=None, cli=None, timeout=0.4), RelayNode(url="tcp:127.0.0.1:2223"),
                         RelayNode(url="udp:nonsense", set_id=2))
    result = await checks.check_rtpengine_sock(context)
    assert result.status is Status.FAIL
    assert "cannot test a tcp node" in result.summary and "unparsable node address" in result.summary
    assert "no rtpengine ng listener answers" in result.summary


def _daemon(pid: int, ng: str, table: int = -1) -> ProcessInfo:
    return ProcessInfo(pid=pid, name="rtpengine", settings={"listen-ng": ng, "table": table})


def test_the_process_checks_judge_the_daemon_that_owns_the_target_ng_not_the_first_found():
    """Two rtpengines here: the first (kernel table 0) is another one; the target's owner forwards in userspace."""
    other, target = _daemon(100, "127.0.0.1:40001", table=0), _daemon(200, "127.0.0.1:40002", table=-1)
    host = HostState(rtpengine=(other, target),
                     facts={"targets": {"ng": {"target": "127.0.0.1:40002", "local": True, "listening": True,
                                               "owners": [{"pid": 201, "name": "rtpengine", "daemon_pid": 200}]}}})
    result = checks.check_kernel_forwarding(ctx(Config(ng=("127.0.0.1", 40002)), host=host))
    assert result.status is Status.SKIP and "table -1" in result.summary
    # the owner unknown (another machine's ng, or no socket facts): no other daemon is judged in its place
    unknown = HostState(rtpengine=(other, target), facts={"targets": {"ng": {"local": False}}})
    result = checks.check_kernel_forwarding(ctx(Config(ng=("192.0.2.9", 2223)), host=unknown))
    assert result.status is Status.SKIP and "unknown" in result.summary


async def test_a_dead_ng_with_several_local_daemons_names_them_and_pings_none():
    listeners = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for sock in listeners:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
        ports = [sock.getsockname()[1] for sock in listeners]
        host = HostState(rtpengine=tuple(_daemon(300 + i, f"127.0.0.1:{port}") for i, port in enumerate(ports)))
        config = Config(ng=("127.0.0.1", dead_port()), cli=None, timeout=0.3)
        context = ctx(config, host=host,
                      signalling=SignallingState(relays=(RelayNode(url=f"udp:127.0.0.1:{config.ng[1]}"),)))
        result = await checks.check_rtpengine_sock(context)
        assert result.status is Status.FAIL
        assert "2 rtpengine daemons run here" in result.summary and all(str(p) in result.summary for p in ports)
        for sock in listeners:  # guessing one would have pinged a stranger
            with pytest.raises(BlockingIOError):
                sock.recv(100)
    finally:
        for sock in listeners:
            sock.close()
