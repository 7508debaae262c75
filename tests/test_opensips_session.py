"""MISession (the `mi` command's backend): name mapping per detected version, write detection."""

import asyncio

import pytest

from console.config import Config
from console.plugins import load_plugins
from opsconsole_opensips.codec import MIError
from opsconsole_opensips.session import MISession


@pytest.fixture
async def session_for():
    made = []

    def make(url, **config):
        session = MISession(Config(mi_url=url, timeout=1.0, **config))
        made.append(session)
        return session

    yield make
    for session in made:
        await session.aclose()


async def test_old_names_mapped_on_40(session_for, mi_server_40):
    session = session_for(mi_server_40.url)
    assert "rtpengine_show" in session.commands()  # before detection: static 3.x names, no I/O
    relays = await asyncio.wait_for(session.call("rtpengine_show"), 10)
    assert relays[0]["Nodes"][0]["url"] == mi_server_40.relay_url
    assert ("rtpengine:show", None) in mi_server_40.requests
    assert "usrloc:dump" in session.commands() and "ul_dump" not in session.commands()


async def test_new_names_mapped_on_34(session_for, mi_server):
    session = session_for(mi_server.url)
    result = await asyncio.wait_for(session.call("statistics:get", {"statistics": ["usrloc:"]}), 10)
    assert result["usrloc:location-contacts"] == 70
    assert mi_server.requests[-1] == ("get_statistics", {"statistics": ["usrloc:"]})


async def test_unknown_method_is_typed_error(session_for, mi_server):
    with pytest.raises(MIError, match="no_such_command"):
        await asyncio.wait_for(session_for(mi_server.url).call("no_such_command"), 10)


def test_write_methods_and_static_40_names():
    session = MISession(Config(mi_url="http://127.0.0.1:1/mi", opensips_version="4.0"))
    assert session.is_write_method("dlg_end_dlg") and session.is_write_method("dialog:end_dlg")
    assert not session.is_write_method("ul_dump")
    assert "usrloc:dump" in session.commands()


def test_plugin_offers_the_session():
    (plugin,) = load_plugins(only={"opensips"}).plugins
    assert isinstance(plugin.command_session(Config()), MISession)


async def test_show_contacts_of_one_aor(session_for, mi_server):
    """ul_show_contact on demand (lists known by AoR name only): the captured WS contact comes
    back as a Contact, flagged WS; the request has the captured shape."""
    contacts = await asyncio.wait_for(session_for(mi_server.url).show_contacts("ws2003"), 10)
    assert [(c.aor, c.transport, c.ws, c.user_agent) for c in contacts] == [
        ("ws2003", "ws", True, "lab-ws-client (WebRTC-like)")]
    assert mi_server.requests[-1] == ("ul_show_contact", {"table_name": "location", "aor": "ws2003"})


async def test_show_contacts_of_an_unregistered_aor_is_empty(session_for, mi_server):
    assert await asyncio.wait_for(session_for(mi_server.url).show_contacts("nobody"), 10) == ()


async def test_show_contacts_in_a_missing_table_is_an_error(session_for, mi_server):
    with pytest.raises(MIError, match="Table not found"):
        await asyncio.wait_for(session_for(mi_server.url).show_contacts("1000", table="nosuchtable"), 10)


async def test_session_detects_like_the_source_on_a_40_without_aliases():
    """The session and the source share one detection: `version` unknown -> `core:version`."""
    from test_opensips_commands import _server_without_old_names

    client, asked = _server_without_old_names()
    session = MISession(Config(mi_url="http://127.0.0.1:1/mi"), client)
    commands = await asyncio.wait_for(session.detect(), 10)
    assert commands.version == "4.0.1" and commands.namespaced
    assert asked == ["version", "core:version", "core:which"]
    with pytest.raises(MIError, match="Method not found"):  # the mapped name is what was sent
        await session.call("ul_dump")
    assert asked[-1] == "usrloc:dump"


async def test_session_borrows_the_sources_client_and_command_map(mi_server_40):
    from opsconsole_opensips.source import OpenSIPSSource

    config = Config(mi_url=mi_server_40.url, timeout=1.0)
    source = OpenSIPSSource(config)
    session = MISession(config, source=source)
    try:
        assert session.client() is source.client()
        await asyncio.wait_for(source.collect(), 10)
        asked = len(mi_server_40.requests)
        relays = await asyncio.wait_for(session.call("rtpengine_show"), 10)
        assert relays[0]["Nodes"][0]["url"] == mi_server_40.relay_url
        assert mi_server_40.requests[asked:] == [("rtpengine:show", None)]  # no second detection
        await session.aclose()  # the source's client stays open ...
        assert (await asyncio.wait_for(source.call("uptime"), 10))["Up time"]
    finally:
        await source.aclose()  # ... until the source closes it


async def test_session_detects_over_the_sources_client_before_its_first_collect(mi_server):
    from opsconsole_opensips.source import OpenSIPSSource

    config = Config(mi_url=mi_server.url, timeout=1.0)
    source = OpenSIPSSource(config)
    session = MISession(config, source=source)
    try:  # the source has not collected yet: the session detects over the shared client
        assert (await asyncio.wait_for(session.call("version"), 10))["Server"].startswith("OpenSIPS (3.4")
        assert [m for m, _ in mi_server.requests] == ["version", "which", "version"]
    finally:
        await source.aclose()
