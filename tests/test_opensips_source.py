"""OpenSIPSSource end to end against the fake mi_http (3.4 and 4.0) and mi_fifo."""

import asyncio

import pytest

from console.config import Config
from console.errors import ConnectionRefused, OpsError
from console.plugins import CollectOptions, load_plugins
from opsconsole_opensips.source import OpenSIPSSource, estimate_dump_seconds, modules_from_commands

GUARD_S = 15


@pytest.fixture
async def make_source():
    made = []

    def make(**config):
        source = OpenSIPSSource(Config(timeout=1.0, **config))
        made.append(source)
        return source

    yield make
    for source in made:
        await source.aclose()


async def collect(source, **options):
    return await asyncio.wait_for(source.collect(CollectOptions(**options)), GUARD_S)


async def test_collect_34(make_source, mi_server):
    state = await collect(make_source(mi_url=mi_server.url))
    assert state.backend == "opensips" and state.target == mi_server.url
    assert state.overview.version == "3.4.18" and state.overview.registered_contacts == 70
    assert len(state.contacts) == 70 and state.contacts_note == ""
    assert len(state.dialogs) == 9 and all(d.profiles for d in state.dialogs)  # dlg_list_ctx used
    assert [r.url for r in state.relays] == [mi_server.relay_url]
    assert len(state.connections) == 12 and state.errors == ()
    assert {"usrloc", "dialog", "rtpengine", "proto_ws", "tm"} <= set(state.modules)
    assert {"ws:127.0.0.1:8080", "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"} <= set(state.listeners)
    assert state.statistics["usrloc:location-contacts"] == 70 and "ul_dump" in state.commands


async def test_collect_40_uses_new_names(make_source, mi_server_40):
    state = await collect(make_source(mi_url=mi_server_40.url))
    methods = [m for m, _ in mi_server_40.requests]
    assert {"usrloc:dump", "dialog:list_ctx", "rtpengine:show", "tcp:list", "statistics:get"} <= set(methods)
    assert "rtpengine_show" not in methods
    assert state.overview.version == "4.0.1" and len(state.contacts) == 11 and len(state.dialogs) == 4
    assert state.relays and state.errors == () and all(c.aor.endswith("@127.0.0.1") for c in state.contacts)
    assert "ws:127.0.0.1:8180" in state.listeners


async def test_forced_34_names_against_40_reports_missing_rtpengine_show(make_source, mi_server_40):
    state = await collect(make_source(mi_url=mi_server_40.url, opensips_version="3.4"))
    assert state.relays == () and len(state.contacts) == 11  # old aliases still work
    assert any("rtpengine_show" in e for e in state.errors)


async def test_full_sync_threshold(make_source, mi_server):
    source = make_source(mi_url=mi_server.url)
    state = await collect(source, full_sync_max=50)
    assert state.contacts is None
    assert "70 registered (statistics); full ul_dump skipped above 50" in state.contacts_note
    assert "ul_dump" not in [m for m, _ in mi_server.requests]
    forced = await collect(source, full_sync_max=50, force_full_sync=True)
    assert len(forced.contacts) == 70


async def test_lists_not_requested(make_source, mi_server):
    state = await collect(make_source(mi_url=mi_server.url), contacts=False, dialogs=False)
    assert state.contacts is None and state.dialogs is None and state.overview.active_dialogs == 9
    assert not {"ul_dump", "dlg_list_ctx", "dlg_list"} & {m for m, _ in mi_server.requests}


async def test_optional_failures_become_errors(make_source, mi_server):
    mi_server.set_error("rtpengine_show", -32601, "Method not found")
    mi_server.set_fault("http500", methods=["ul_dump"])
    state = await collect(make_source(mi_url=mi_server.url))
    assert state.relays == () and state.contacts is None and len(state.dialogs) == 9
    assert any(e.startswith("rtpengine_show:") and "not loaded" in e for e in state.errors)
    assert any(e.startswith("ul_dump:") and "HTTP 500" in e for e in state.errors)
    assert "ul_dump failed" in state.contacts_note


async def test_dlg_list_ctx_missing_falls_back_to_dlg_list(make_source, mi_server):
    mi_server.set_error("dlg_list_ctx", -32601, "Method not found")
    state = await collect(make_source(mi_url=mi_server.url))
    assert len(state.dialogs) == 9 and all(d.profiles == () for d in state.dialogs)
    assert ("dlg_list", None) in mi_server.requests


async def test_dialogs_are_paged_when_many(make_source, mi_server, monkeypatch):
    monkeypatch.setattr("opsconsole_opensips.source.DIALOG_PAGE", 4)
    state = await collect(make_source(mi_url=mi_server.url))
    pages = [p for m, p in mi_server.requests if m == "dlg_list_ctx"]
    assert pages == [{"index": 0, "counter": 4}, {"index": 4, "counter": 4}, {"index": 8, "counter": 4}]
    assert len({d.callid for d in state.dialogs}) == 9


async def test_hostile_contact_data_is_reported_not_raised(make_source, mi_server):
    mi_server.set_response("ul_dump", {"Domains": [{"AORs": [{"AOR": "a", "Contacts": [{"Contact": ["x"]}]}]}]})
    mi_server.set_response("list_tcp_conns", "surprise")
    state = await collect(make_source(mi_url=mi_server.url))
    assert state.contacts is None and state.connections is None
    assert any("ul_dump" in e for e in state.errors) and any("list_tcp_conns" in e for e in state.errors)


async def test_unreachable_raises_and_redetects(make_source, mi_server):
    source = make_source(mi_url=mi_server.url)
    await collect(source)
    assert source.commands is not None
    mi_server.set_fault("refuse")
    with pytest.raises(ConnectionRefused):
        await collect(source)
    assert source.commands is None  # next collection detects the version again


async def test_never_answering_mi_is_a_typed_error(make_source, mi_server):
    mi_server.set_fault("silent")
    with pytest.raises(OpsError):
        await collect(make_source(mi_url=mi_server.url))


async def test_collect_over_fifo(make_source, mi_fifo_server):
    state = await collect(make_source(mi_url=None, mi_fifo=mi_fifo_server.fifo_path,
                                      mi_reply_dir=mi_fifo_server.reply_dir))
    assert state.target == mi_fifo_server.fifo_path and len(state.contacts) == 70 and len(state.dialogs) == 9


async def test_empty_state(make_source, mi_server):
    mi_server.set_state("empty")
    state = await collect(make_source(mi_url=mi_server.url))
    assert state.contacts == () and state.dialogs == () and state.overview.registered_contacts == 0


def test_plugin_registration():
    loaded = load_plugins(only={"opensips"})
    (plugin,) = loaded.plugins
    # the MI source and, over its client, the RTPengine sets + clusterer of the same node (#16)
    assert [type(s).__name__ for s in plugin.make_sources(Config(mi_url="http://127.0.0.1:1/mi"))] == [
        "OpenSIPSSource", "TopologySource"]
    assert plugin.make_sources(Config(mi_url=None, mi_fifo=None)) == []
    assert {c.id for c in plugin.checks} == {"opensips.mi", "opensips.load", "opensips.shm", "opensips.ws",
                                                 "opensips.sip_failures", "opensips.trace_ready",
                                                 "opensips.rtpengine_sets", "opensips.rtpengine_down", "opensips.rtpengine_stale",
                                                 "opensips.rtpengine_hosts", "opensips.cluster_links",
                                                 "opensips.cluster_shtags"}


def test_estimate_and_modules():
    assert estimate_dump_seconds(10_000) == pytest.approx(0.39)
    assert 100 < estimate_dump_seconds(100_070) < 250
    assert modules_from_commands(("usrloc:dump", "core:ps", "ws:trace")) == ("proto_ws", "usrloc")
    assert modules_from_commands(("ul_dump", "t_uac_dlg", "version")) == ("tm", "usrloc")


async def test_restart_seen_in_uptime_triggers_redetection(make_source, mi_server):
    source = make_source(mi_url=mi_server.url)
    await collect(source, contacts=False, dialogs=False)
    mi_server.set_response("uptime", {"Now": "x", "Up since": "y", "Up time": "3 [sec]"})
    state = await collect(source, contacts=False, dialogs=False)
    assert state.overview.uptime_s == 3 and source.commands is None
    await collect(source, contacts=False, dialogs=False)
    assert [m for m, _ in mi_server.requests].count("which") == 2
