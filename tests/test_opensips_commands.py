"""Version detection and 3.x <-> 4.0 command names, from both versions' captures."""

import json

import pytest

from console.errors import ProtocolError
from opsconsole_opensips.commands import (
    RENAMES_40,
    WRITE_METHODS,
    CommandMap,
    detect_version,
    is_heavy_method,
    is_write_method,
    map_method,
)

from conftest import FIXTURES


def result(name: str, version: str):
    return json.loads((FIXTURES / f"opensips-{version}" / "mi" / f"{name}.json").read_bytes())["result"]


def test_detect_34():
    commands = detect_version(result("version", "3.4"), result("which", "3.4"))
    assert commands.version == "3.4.18" and not commands.namespaced
    assert commands.name("ul_dump") == "ul_dump" and commands.name("rtpengine_show") == "rtpengine_show"
    assert commands.has("dlg_list_ctx") and commands.has("ws_trace")


def test_detect_40():
    commands = detect_version(result("version", "4.0"), result("which", "4.0"))
    assert commands.version == "4.0.1" and commands.namespaced
    assert [commands.name(n) for n in ("ul_dump", "dlg_list_ctx", "get_statistics", "rtpengine_show", "list_tcp_conns",
                                       "uptime", "version")] == [
        "usrloc:dump", "dialog:list_ctx", "statistics:get", "rtpengine:show", "tcp:list", "core:uptime", "core:version"]
    assert commands.has("ul_dump") and commands.has("ws_trace")


# The captured OpenSIPS had no tracer module; the real builds with it list these (tests/real/test_real_trace.py).
TRACER = {"trace": "tracer:trace", "trace_start": "tracer:start", "trace_stop": "tracer:stop"}


# Nor clusterer: its entries of `which` on the real builds (tests/fixtures/opensips-*/cluster/, #16).
def _clusterer(version: str) -> set[str]:
    path = FIXTURES / f"opensips-{version}" / "cluster" / "which.clusterer.json"
    return set(json.loads(path.read_text())["result"])


def test_every_40_rename_target_is_a_real_40_command():
    which_40 = set(result("which", "4.0"))
    assert set(RENAMES_40.values()) <= which_40 | set(TRACER.values()) | _clusterer("4.0")
    assert set(RENAMES_40) <= set(result("which", "3.4")) | {"teardown"} | set(TRACER) | _clusterer("3.4")


def test_detect_without_which_uses_version_number():
    assert detect_version(result("version", "4.0")).name("ul_dump") == "usrloc:dump"
    assert detect_version(result("version", "3.4")).name("usrloc:dump") == "ul_dump"
    assert CommandMap(version="3.4").has("anything")  # unknown list: assume present


@pytest.mark.parametrize("bad_version,bad_which", [({}, None), ({"Server": "OpenSIPS"}, None), ([], None),
                                                   ({"Server": "OpenSIPS (3.4.1)"}, {"x": 1}),
                                                   ({"Server": "OpenSIPS (3.4.1)"}, [1, 2])])
def test_detect_rejects_bad_replies(bad_version, bad_which):
    with pytest.raises(ProtocolError):
        detect_version(bad_version, bad_which)


@pytest.mark.parametrize("name,version,expected", [
    ("ul_dump", "4.0", "usrloc:dump"), ("usrloc:dump", "3.4", "ul_dump"), ("rtpengine_show", "4.0.1", "rtpengine:show"),
    ("dlg_list", "3.4.18", "dlg_list"), ("custom_cmd", "4.0", "custom_cmd"), (" version ", "4.0", "core:version"),
])
def test_map_method(name, version, expected):
    assert map_method(name, version) == expected


def test_write_methods_cover_both_spellings():
    for name in ("dlg_end_dlg", "ul_rm", "ul_rm_contact", "ul_add", "reload_routes", "rtpengine_enable",
                 "rtpengine_reload", "t_uac_dlg", "event_subscribe"):
        assert is_write_method(name) and is_write_method(RENAMES_40[name])
    for name in ("ul_dump", "usrloc:dump", "version", "get_statistics", "dlg_list", "rtpengine:show", "which"):
        assert not is_write_method(name)
    assert "tcp:close" in WRITE_METHODS


def test_heavy_methods():
    assert is_heavy_method("ul_dump") and is_heavy_method("dialog:list_ctx")
    assert not is_heavy_method("get_statistics") and not is_heavy_method("version")


# --------------------------------------------------------------------------- one detection (issue #13)


def _server_without_old_names(version: str = "4.0"):
    """An MI answering only the captured 4.0 `module:cmd` names (a 4.x that dropped the 3.x aliases);
    every other name gets the captured JSON-RPC -32601."""
    from opsconsole_opensips.client import MemoryTransport, MIClient

    answers = {"core:version": result("version", version), "core:which": result("which", version)}
    asked = []

    def handler(body: bytes) -> bytes:
        request = json.loads(body)
        asked.append(request["method"])
        if request["method"] in answers:
            return json.dumps({"jsonrpc": "2.0", "result": answers[request["method"]], "id": request["id"]}).encode()
        return json.dumps({"jsonrpc": "2.0", "id": request["id"],
                           "error": {"code": -32601, "message": "Method not found"}}).encode()

    return MIClient(MemoryTransport(handler), timeout=1.0), asked


async def test_detect_commands_falls_back_to_the_40_names():
    from opsconsole_opensips.commands import detect_commands

    client, asked = _server_without_old_names()
    commands, version_reply = await detect_commands(client.call)
    assert asked == ["version", "core:version", "core:which"]
    assert version_reply["Server"].startswith("OpenSIPS (4.0.1") and commands.version == "4.0.1"
    assert commands.namespaced and commands.has("ul_dump") and commands.name("ul_dump") == "usrloc:dump"


async def test_detect_commands_forced_version_and_other_errors():
    from opsconsole_opensips.codec import MIError
    from opsconsole_opensips.commands import detect_commands

    client, asked = _server_without_old_names()
    commands, _ = await detect_commands(client.call, "4.0")
    assert commands.forced and commands.version == "4.0" and asked == ["version", "core:version", "core:which"]

    async def refusing(method):
        raise MIError("boom", code=500, method=method)

    with pytest.raises(MIError, match="boom"):  # only "Method not found" means: try the 4.0 name
        await detect_commands(refusing)
