"""Every MI response the demo renders has the shape of the real OpenSIPS capture (3.4 and 4.0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole_demo.media import SimulatedMedia
from opsconsole_demo.mi_render import MiRenderer
from opsconsole_demo.state import DemoState

FIXTURES = Path(__file__).parent / "fixtures" / "demo"
START = 1_795_670_000


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shape_diff(real, ours, path: str = "$") -> list[str]:
    """Where `ours` differs from `real` in keys or value types (list items compared to the real item
    at the same index, or the last one)."""
    if isinstance(real, dict):
        if not isinstance(ours, dict):
            return [f"{path}: expected object, got {type(ours).__name__}"]
        if set(real) != set(ours):
            return [f"{path}: keys differ: missing {sorted(set(real) - set(ours))}, extra {sorted(set(ours) - set(real))}"]
        return [d for key in real for d in shape_diff(real[key], ours[key], f"{path}.{key}")]
    if isinstance(real, list):
        if not isinstance(ours, list):
            return [f"{path}: expected array, got {type(ours).__name__}"]
        if not real or not ours:
            return []
        return [d for i, item in enumerate(ours) for d in shape_diff(real[min(i, len(real) - 1)], item, f"{path}[{i}]")]
    if type(real) is not type(ours):
        return [f"{path}: expected {type(real).__name__}, got {type(ours).__name__} ({ours!r})"]
    return []


def load(version: str, name: str) -> tuple[bytes, dict | None]:
    folder = FIXTURES / f"opensips-{version}" / "mi"
    request = (folder / f"{name}.request.json").read_bytes()
    response_file = folder / f"{name}.json"
    return request, json.loads(response_file.read_bytes()) if response_file.exists() else None


async def populated_state(version: str) -> DemoState:
    """A state with confirmed calls of every kind, their SDPs rewritten by the simulated RTPengine."""
    clock = FakeClock()
    state = DemoState(70, seed=3, clock=clock, version=version, calls=20)
    media = SimulatedMedia(clock)
    for _ in range(40):
        clock.now += 1
        state.advance()
        for work in state.take_media_work():
            await media.apply(work)
        kinds = {d.kind for d in state.active_dialogs() if d.state == 4}
        if {("udp", "udp"), ("udp", "ws")} <= kinds:
            return state
    raise AssertionError("no confirmed UDP->UDP and UDP->WS calls after 40 ticks")


def adapt(state: DemoState, name: str, request: bytes) -> bytes:
    """Point requests that name a lab AOR or Call-ID at one this state has."""
    body = json.loads(request)
    params = body.get("params")
    transports = {"udp": "udp", "tcp": "tcp", "ws": "ws"}
    if "show_contact" in name and name.rsplit(".", 1)[-1] in transports or name == "new_name.usrloc_show_contact":
        transport = "ws" if name == "new_name.usrloc_show_contact" else name.rsplit(".", 1)[-1]
        contact = next(c for c in state.online_contacts() if c.transport == transport)
        params["aor"] = state.aor_key(contact.aor)
    if ".callid." in name and not name.endswith("unknown"):
        kind = ("udp", "ws") if name.endswith("udp_to_ws") else ("udp", "udp")
        params["callid"] = next(d.callid for d in state.active_dialogs() if d.kind == kind and d.state == 4)
    return json.dumps(body).encode()


COMMON = [
    "version", "uptime", "which", "which.command", "ps", "list_tcp_conns", "help.ul_dump",
    "ul_dump.populated", "ul_dump.brief.populated", "ul_show_contact.udp", "ul_show_contact.tcp",
    "ul_show_contact.ws", "ul_show_contact.not_found", "ul_show_contact.bad_table",
    "dlg_list.populated", "dlg_list.paged", "dlg_list.callid.udp_udp", "dlg_list.callid.udp_to_ws",
    "dlg_list.callid.unknown", "dlg_list_ctx",
    "get_statistics.all", "get_statistics.by_name", "get_statistics.core", "get_statistics.shmem",
    "get_statistics.tm", "get_statistics.dialog", "get_statistics.usrloc", "get_statistics.registrar",
    "get_statistics.net", "get_statistics.load", "get_statistics.pkmem", "get_statistics.sl",
    "get_statistics.qualified_name_returns_empty", "get_statistics.unknown_name", "get_statistics.mixed_groups",
    "profile_get_size.calls", "profile_get_size.callsbyproto", "profile_get_size.callsbyproto.udp",
    "profile_get_size.callsbyproto.ws", "profile_get_size.unknown_profile", "profile_get_values",
    "profile_list_dlgs.calls", "list_all_profiles",
    "error.unknown_method", "error.bad_params.positional_too_many", "error.bad_params.ul_show_contact_missing_aor",
    "error.bad_params.wrong_type", "error.invalid_json", "error.not_jsonrpc",
]
CASES = [("3.4", name) for name in COMMON + ["rtpengine_show", "dlg_list_ctx.callid.udp_udp"]] + [
    ("4.0", name) for name in COMMON + [
        "rtpengine_show", "ul_show_contact.no_domain_error", "help.ul_dump_alias", "new_name.core_version",
        "new_name.core_uptime", "new_name.core_help.usrloc_dump", "new_name.statistics_get.usrloc",
        "new_name.usrloc_dump", "new_name.usrloc_show_contact", "new_name.dialog_list",
        "new_name.dialog_profile_get_size", "new_name.rtpengine_show", "new_name.tcp_list",
        "new_name.httpd_list_root_path"]]
# replies whose content, not only shape, is fixed: errors and static lists
EXACT = {"which", "error.unknown_method", "error.bad_params.positional_too_many",
         "error.bad_params.ul_show_contact_missing_aor", "error.bad_params.wrong_type", "error.invalid_json",
         "error.not_jsonrpc", "ul_show_contact.not_found", "ul_show_contact.bad_table", "dlg_list.callid.unknown",
         "profile_get_size.unknown_profile", "ul_show_contact.no_domain_error", "help.ul_dump",
         "new_name.core_help.usrloc_dump", "get_statistics.qualified_name_returns_empty",
         "get_statistics.unknown_name", "which.command", "list_all_profiles", "new_name.httpd_list_root_path",
         "rtpengine_show", "new_name.rtpengine_show", "help.ul_dump_alias"}


@pytest.fixture(scope="module")
def states():
    import asyncio

    return {version: asyncio.run(populated_state(version)) for version in ("3.4", "4.0")}


@pytest.mark.parametrize(("version", "name"), CASES, ids=[f"{v}:{n}" for v, n in CASES])
def test_response_has_the_captured_shape(states, version, name):
    state = states[version]
    request, real = load(version, name)
    ours = MiRenderer(state).respond(adapt(state, name, request) if not name.startswith("error.invalid") else request)
    assert shape_diff(real, ours) == []
    if name in EXACT:
        assert ours == real


def test_statistics_keys_match_the_capture_exactly(states):
    _, real = load("3.4", "get_statistics.all")
    ours = MiRenderer(states["3.4"]).call("get_statistics", {"statistics": ["all"]})
    assert list(ours) == list(real["result"])


def test_dialog_sent_sdp_points_at_the_relay_ports(states):
    state = states["3.4"]
    from opsconsole_demo import sdp

    for dialog in state.active_dialogs():
        if dialog.state != 4:
            continue
        sent = sdp.media_lines(dialog.callee.sent_sdp) + sdp.media_lines(dialog.caller.sent_sdp)
        assert len(sent) == 2 and all(30000 <= port <= 30999 for port, _ in sent)
        offered = sdp.media_lines(dialog.caller.sdp)[0][0]
        assert offered not in [port for port, _ in sent]


def test_40_aors_carry_the_domain(states):
    dump = MiRenderer(states["4.0"]).call("usrloc:dump")
    aors = [entry["AOR"] for entry in dump["Domains"][0]["AORs"]]
    assert aors and all(aor.endswith("@127.0.0.1") for aor in aors)
    assert MiRenderer(states["3.4"]).call("ul_dump")["Domains"][0]["AORs"][0]["AOR"].isdigit()


def test_ws_contacts_look_like_the_lab(states):
    entries = MiRenderer(states["3.4"]).call("ul_dump")["Domains"][0]["AORs"]
    ws = [e for e in entries if e["AOR"].startswith("ws")]
    assert ws
    for entry in ws:
        contact = entry["Contacts"][0]
        assert contact["Cflags"] == "DST_WS" and contact["Socket"] == "ws:127.0.0.1:8080"
        assert contact["Contact"].endswith(";transport=ws") and not contact["Contact"].startswith(f"sip:{entry['AOR']}@")
