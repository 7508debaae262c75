"""MI result parsers on every captured shape (3.4 and 4.0), hostile values and fuzzing."""

import gzip
import json

import pytest
from hypothesis import given, settings, strategies as st

from console.errors import OpsError, ProtocolError
from console.model import Contact
from opsconsole_opensips.parse import (
    parse_aors,
    parse_connections,
    parse_contacts,
    parse_dialog_count,
    parse_dialogs,
    parse_overview,
    parse_relays,
    parse_statistics,
    parse_uptime,
    parse_which,
    sdp_media,
    uri_transport,
)

from conftest import FIXTURES


def result(name: str, version: str = "3.4"):
    path = FIXTURES / f"opensips-{version}" / "mi" / f"{name}.json"
    raw = gzip.open(f"{path}.gz").read() if not path.exists() else path.read_bytes()
    return json.loads(raw)["result"]


# --------------------------------------------------------------------------- contacts


def test_populated_34_contacts_by_transport():
    contacts = parse_contacts(result("ul_dump.populated"), "node1")
    assert len(contacts) == 70
    by_transport = {t: [c for c in contacts if c.transport == t] for t in ("udp", "tcp", "ws")}
    assert {t: len(v) for t, v in by_transport.items()} == {"udp": 50, "tcp": 10, "ws": 10}
    assert all(c.ws and c.cflags == ("DST_WS",) and c.socket == "ws:127.0.0.1:8080" for c in by_transport["ws"])
    assert not any(c.ws for c in by_transport["udp"] + by_transport["tcp"])
    assert all(isinstance(c.expires, int) and c.expires_state == "" for c in contacts)
    assert all(c.target == "node1" and c.q == "" for c in contacts)
    udp = next(c for c in contacts if c.aor == "1006")
    assert udp.contact == "sip:1006@127.0.0.1:5070;transport=udp" and udp.user_agent == "sipp-lab-UDP"
    assert udp.contact_id == "3784501430618955697" and udp.methods == 4294967295 and udp.state == "CS_NEW"


def test_populated_40_contacts_have_domain_aors():
    contacts = parse_contacts(result("ul_dump.populated", "4.0"))
    assert len(contacts) == 11
    assert all(c.aor.endswith("@127.0.0.1") for c in contacts)
    assert sum(c.ws for c in contacts) == 4 and sum(c.transport == "tcp" for c in contacts) == 2


def test_40_new_name_dump_parses_the_same():
    new = parse_contacts(result("new_name.usrloc_dump", "4.0"))
    old = parse_contacts(result("ul_dump.populated", "4.0"))
    assert {(c.key, c.transport, c.ws) for c in new} == {(c.key, c.transport, c.ws) for c in old}


def test_empty_dump():
    assert parse_contacts(result("ul_dump.empty")) == ()


def test_10k_dump():
    contacts = parse_contacts(result("ul_dump.10k"))
    assert len(contacts) == 10_070
    assert len({c.key for c in contacts}) == 10_070
    assert sum(c.ws for c in contacts) == 10


def test_brief_dump_gives_aors_not_contacts():
    brief = result("ul_dump.brief.populated")
    assert parse_contacts(brief) == ()
    aors = parse_aors(brief)
    assert len(aors) == 70 and "ws2006" in aors
    assert len(parse_aors(result("ul_dump.brief.10k"))) == 10_070


def test_permanent_multi_cflags_contact_without_socket():
    (contact,) = parse_contacts(result("ul_show_contact.permanent_multi_cflags"))
    assert contact.expires is None and contact.expires_state == "permanent"
    assert contact.cflags == ("DST_WS", "NAT") and contact.ws  # WS by branch flag, not transport
    assert contact.socket == "" and contact.transport == "" and contact.q == "0"


@pytest.mark.parametrize("name,transport,ws", [("ul_show_contact.udp", "udp", False),
                                               ("ul_show_contact.tcp", "tcp", False),
                                               ("ul_show_contact.ws", "ws", True)])
def test_show_contact_single_aor(name, transport, ws):
    contacts = parse_contacts(result(name))
    assert contacts and all(c.transport == transport and c.ws is ws for c in contacts)


def _dump(**contact):
    base = {"Contact": "sip:a@10.0.0.1:5060", "ContactID": "1", "Expires": 60, "Q": "", "Callid": "c", "Cseq": 1,
            "User-agent": "ua", "State": "CS_NEW", "Flags": 0, "Cflags": "", "Methods": 1}
    base.update(contact)
    return {"Domains": [{"name": "location", "hash_size": 1, "AORs": [{"AOR": "a", "Contacts": [base]}]}]}


@pytest.mark.parametrize("state", ["expired", "deleted", "permanent"])
def test_expires_states(state):
    (c,) = parse_contacts(_dump(Expires=state))
    assert c.expires is None and c.expires_state == state


def test_transport_falls_back_to_uri_param_and_optional_fields():
    (c,) = parse_contacts(_dump(Contact="<sip:a@1.2.3.4:5;Transport=WSS;ob>", Received="sip:9.9.9.9:1",
                                Path="<sip:p>", Attr="x"))
    assert c.transport == "wss" and c.ws and c.received == "sip:9.9.9.9:1" and c.path == "<sip:p>"


def test_ws_flag_set_is_configurable():
    (plain,) = parse_contacts(_dump(Cflags="MY_WS_FLAG"))
    (custom,) = parse_contacts(_dump(Cflags="MY_WS_FLAG"), ws_flags={"MY_WS_FLAG"})
    assert not plain.ws and custom.ws


def test_numeric_cflags_of_older_versions_become_a_name():
    (c,) = parse_contacts(_dump(Cflags=5))
    assert c.cflags == ("5",) and not c.ws


def test_string_numbers_are_accepted():
    (c,) = parse_contacts(_dump(Expires="120", Cseq="7", Flags="2", Methods="3"))
    assert (c.expires, c.cseq, c.flags, c.methods) == (120, 7, 2, 3)


def test_hostile_strings_kept_verbatim():
    hostile = "[bold red]x[/] \x1b[2J \u202e evil"
    (c,) = parse_contacts(_dump(**{"User-agent": hostile, "Callid": hostile}))
    assert c.user_agent == hostile and c.callid == hostile


@pytest.mark.parametrize("bad", [
    None, [], "x", {"Domains": "x"}, {"Domains": [{"AORs": None}]}, {"Domains": [{"AORs": [{"Contacts": []}]}]},
    {"Domains": [{"AORs": [{"AOR": 5, "Contacts": []}]}]}, {"Domains": [{"AORs": [{"AOR": "a", "Contacts": {}}]}]},
    {"Domains": [{"AORs": [{"AOR": "a", "Contacts": [1]}]}]},
    {"Domains": [{"AORs": [{"AOR": "a", "Contacts": [{"Expires": 1}]}]}]},
])
def test_bad_dump_shapes_are_protocol_errors(bad):
    with pytest.raises(ProtocolError):
        parse_contacts(bad)


@pytest.mark.parametrize("field,value", [("Expires", "soon"), ("Expires", [1]), ("Cseq", {}), ("User-agent", [1]),
                                         ("Cflags", [1]), ("Socket", 5), ("Contact", None), ("Flags", 1.5)])
def test_bad_contact_field_types(field, value):
    with pytest.raises(ProtocolError):
        parse_contacts(_dump(**{field: value}))


def test_uri_transport():
    assert uri_transport("sip:a@h;transport=tcp;lr") == "tcp"
    assert uri_transport("sip:a@h") == ""


# --------------------------------------------------------------------------- dialogs


def test_dialogs_transports_ports_and_protocols():
    dialogs = {d.callid: d for d in parse_dialogs(result("dlg_list.populated"), "node1")}
    assert len(dialogs) == 9
    pairs = sorted((d.caller_transport, d.callee_transport) for d in dialogs.values())
    assert pairs == sorted([("udp", "udp")] * 4 + [("udp", "ws")] * 2 + [("ws", "udp"), ("ws", "ws"), ("tcp", "tcp")])
    udp2ws = dialogs["call-udp2ws-2-27552@127.0.0.1"]
    assert udp2ws.state_name == "confirmed" and udp2ws.target == "node1"
    assert udp2ws.caller.media_ports == (30910,) and udp2ws.caller.media_protocols == ("RTP/AVP",)
    assert udp2ws.callee.media_ports == (30890,) and udp2ws.callee.media_protocols == ("UDP/TLS/RTP/SAVPF",)
    assert udp2ws.callee.bind_addr == "ws:127.0.0.1:8080" and udp2ws.caller.tag == "27552SIPpTag002"
    assert udp2ws.from_uri == "sip:1046@127.0.0.1" and udp2ws.start == 1795670898
    assert all(d.profiles == () for d in dialogs.values())  # dlg_list has no context


def test_dialog_ctx_profiles():
    dialogs = {d.callid: d for d in parse_dialogs(result("dlg_list_ctx"))}
    assert dialogs["call-tcp-1-27554@127.0.0.1"].profiles == (("callsbyproto", "tcp"), ("calls", ""))
    ws_callers = [d for d in dialogs.values() if d.caller_transport == "ws"]
    assert ws_callers and all(("callsbyproto", "ws") in d.profiles for d in ws_callers)


@pytest.mark.parametrize("name,version", [("dlg_list.callid.udp_udp", "3.4"), ("dlg_list_ctx.callid.udp_udp", "3.4"),
                                          ("dlg_list.callid.udp_to_ws", "4.0")])
def test_single_dialog_form(name, version):
    (dialog,) = parse_dialogs(result(name, version))
    assert dialog.callid and dialog.callees and dialog.caller.media_ports


def test_paged_dialogs_have_count():
    raw = result("dlg_list.paged")
    assert len(parse_dialogs(raw)) == 3 and parse_dialog_count(raw) == 9
    assert parse_dialog_count(result("dlg_list.populated")) is None


def test_empty_and_40_dialogs():
    assert parse_dialogs(result("dlg_list.empty")) == ()
    dialogs = parse_dialogs(result("dlg_list_ctx", "4.0"))
    assert len(dialogs) == 4 and {d.caller_transport for d in dialogs} == {"udp", "ws"}


def test_sdp_media_multiple_m_lines():
    sdp = "v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002/2 RTP/SAVPF 96\r\nm=bad\r\n"
    assert sdp_media(sdp) == ((4000, 4002), ("RTP/AVP", "RTP/SAVPF"))


@pytest.mark.parametrize("bad", [None, {"Dialogs": 1}, {"Dialogs": [1]}, {"Dialogs": [{"callid": "x"}]},
                                 {"Dialog": {"ID": "1", "callid": "c", "CALLEES": 3}},
                                 {"Dialog": {"ID": "1", "callid": "c", "context": {"profiles": [1]}}},
                                 {"Dialog": {"ID": "1", "callid": "c", "state": "confirmed"}}])
def test_bad_dialog_shapes(bad):
    with pytest.raises(ProtocolError):
        parse_dialogs(bad)


# --------------------------------------------------------------------------- overview & friends


@pytest.mark.parametrize("version,contacts,dialogs", [("3.4", 70, 9), ("4.0", 11, 4)])
def test_overview_from_all_statistics(version, contacts, dialogs):
    ov = parse_overview(result("version", version), result("uptime", version), result("get_statistics.all", version))
    assert ov.version.startswith(version + ".")
    assert ov.server.startswith("OpenSIPS (") and ov.uptime_s > 0
    assert ov.registered_contacts == contacts and ov.active_dialogs == dialogs
    assert ov.shm_total == 536870912 and 0 < ov.shm_percent < 5
    assert ov.load == 0.0 and ov.inuse_transactions == 0


def test_overview_accepts_string_values_and_missing_groups():
    ov = parse_overview(None, None, {"load:load": "42.5", "shmem:used_size": "10", "shmem:total_size": "100",
                                     "usrloc:location-contacts": "5", "usrloc:other-contacts": 2})
    assert ov.load == 42.5 and ov.shm_percent == 10.0 and ov.registered_contacts == 7
    assert ov.active_dialogs is None and ov.version == ""


@pytest.mark.parametrize("bad", [{"load:load": [1]}, {"load:load": "busy"}, {"shmem:total_size": "lots"}, []])
def test_overview_bad_statistics(bad):
    with pytest.raises(ProtocolError):
        parse_overview(None, None, bad)


def test_qualified_name_statistics_capture_is_empty():
    assert parse_statistics(result("get_statistics.qualified_name_returns_empty")) == {}
    assert parse_statistics(result("get_statistics.by_name"))["usrloc:location-contacts"] == 70


def test_uptime_forms():
    assert parse_uptime(result("uptime")) == 27
    assert parse_uptime({"Now": "Thu Nov 26 05:28:32 2026", "Up since": "Thu Nov 26 05:28:05 2026"}) == 27
    assert parse_uptime({"Now": "garbage", "Up since": "x"}) is None
    with pytest.raises(ProtocolError):
        parse_uptime([])


@pytest.mark.parametrize("name,version", [("rtpengine_show", "3.4"), ("new_name.rtpengine_show", "4.0")])
def test_relays(name, version):
    (relay,) = parse_relays(result(name, version))
    assert relay.url == "udp:127.0.0.1:60000" and relay.set_id == 0 and relay.disabled is False and relay.weight == 1


def test_relays_bad_shape():
    with pytest.raises(ProtocolError):
        parse_relays({"Set": 0})
    with pytest.raises(ProtocolError):
        parse_relays([{"Set": 0, "Nodes": [{"index": 0}]}])


def test_connections():
    conns = parse_connections(result("list_tcp_conns"))
    assert sum(c.type == "ws" for c in conns) == 10 and sum(c.type == "tcp" for c in conns) == 2
    ws = next(c for c in conns if c.remote == "127.0.0.1:32840")
    assert ws.local == "127.0.0.1:8080" and ws.alias_port == 32840 and ws.id == 1962440640
    assert parse_connections(result("list_tcp_conns.empty")) == ()
    assert {c.type for c in parse_connections(result("new_name.tcp_list", "4.0"))} >= {"ws"}
    with pytest.raises(ProtocolError):
        parse_connections({"Connections": [{"Type": "ws"}]})


def test_which_lists():
    assert "ul_dump" in parse_which(result("which"))
    assert "usrloc:dump" in parse_which(result("which", "4.0"))
    with pytest.raises(ProtocolError):
        parse_which({"x": 1})


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["Domains", "AORs", "AOR", "Contacts", "Contact", "Expires", "Socket", "Cflags", "Dialogs",
                         "Dialog", "ID", "callid", "CALLEES", "context", "profiles", "Connections", "Nodes", "url",
                         "Set", "count", "state", "load:load", "Server", "Up time"]), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_fuzz_parsers_raise_only_typed_errors(value):
    for parser in (parse_contacts, parse_dialogs, parse_relays, parse_connections, parse_aors,
                   lambda v: parse_overview(v, v, v), parse_uptime, parse_statistics, parse_which):
        try:
            parser(value)
        except OpsError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["Contact", "ContactID", "Expires", "Q", "Callid", "Cseq", "User-agent",
                                        "State", "Flags", "Cflags", "Socket", "Methods", "Received", "Path"]),
                       st.none() | st.integers() | st.text(max_size=12) | st.lists(st.integers(), max_size=2)))
def test_fuzz_contact_fields(fields):
    try:
        contacts = parse_contacts({"Domains": [{"AORs": [{"AOR": "a", "Contacts": [fields]}]}]})
    except OpsError:
        return
    (c,) = contacts
    assert isinstance(c, Contact) and isinstance(c.user_agent, str) and isinstance(c.cflags, tuple)


# --------------------------------------------------------------------------- every capture


def _captures():
    for version in ("3.4", "4.0"):
        for request in sorted((FIXTURES / f"opensips-{version}" / "mi").glob("*.request.json")):
            name = request.name[: -len(".request.json")]
            if (request.parent / f"{name}.json").exists() or (request.parent / f"{name}.json.gz").exists():
                yield pytest.param(version, name, id=f"{version}/{name}")


PARSERS = {
    "ul_dump": parse_contacts, "ul_show_contact": parse_contacts, "dlg_list": parse_dialogs,
    "dlg_list_ctx": parse_dialogs, "get_statistics": parse_statistics, "rtpengine_show": parse_relays,
    "list_tcp_conns": parse_connections, "uptime": parse_uptime, "which": parse_which,
    "version": lambda r: parse_overview(r).version,
}


@pytest.mark.parametrize("version,name", list(_captures()))
def test_every_capture_decodes_and_parses_or_gives_a_typed_error(version, name):
    from opsconsole_opensips.codec import decode_response
    from opsconsole_opensips.commands import OLD_NAMES

    directory = FIXTURES / f"opensips-{version}" / "mi"
    path = directory / f"{name}.json"
    body = path.read_bytes() if path.exists() else gzip.open(f"{path}.gz").read()
    status = int((directory / f"{name}.http.txt").read_text().split("\n")[1].split()[1])
    try:
        request = json.loads((directory / f"{name}.request.json").read_bytes())
    except ValueError:
        request = {}
    method = OLD_NAMES.get(request.get("method", ""), request.get("method", ""))
    try:
        value = decode_response(body, status=status, method=method)
    except OpsError as exc:
        assert json.loads(body).get("error") if status == 200 else status == 400, exc
        return
    parser = PARSERS.get(method)
    if parser is None or (method == "which" and request.get("params")):
        return
    if method == "ul_dump" and (request.get("params") or {}).get("brief"):
        assert parse_aors(value)
        return
    assert parser(value) is not None


def test_received_kept_on_contacts_without_socket():
    raw = _dump(Received="sip:1.2.3.4:5")
    del raw["Domains"][0]["AORs"][0]["Contacts"][0]["Methods"]
    (c,) = parse_contacts(raw)
    assert c.received == "sip:1.2.3.4:5" and c.methods is None and c.socket == ""


def test_digits_that_int_refuses_are_not_numbers():
    """str.isdigit() says yes to '¹' (superscript one), int() says no: an SDP or uptime from the
    network with one must be ignored, not raise."""
    from opsconsole_opensips.parse import parse_uptime, sdp_media

    assert sdp_media("v=0\nm=audio ¹ RTP/AVP 0\nm=audio 30000 RTP/AVP 8\n") == ((30000,), ("RTP/AVP", "RTP/AVP"))
    assert parse_uptime({"Up time": "²7 [sec]"}) is None
