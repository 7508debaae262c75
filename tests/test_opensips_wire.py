"""Typed ul_dump decoding (wire.py) against the generic JSON path: same contacts, same errors.

The typed path is only allowed to be faster, never to answer differently: every capture,
every unusual reply and random contacts go through both and must come out alike.
"""

import asyncio
import copy
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from console.config import Config
from console.errors import OpsError
from console.plugins import CollectOptions
from opsconsole_opensips import live as live_module, source as source_module, wire
from opsconsole_opensips.client import FIFOMIClient, HTTPMIClient
from opsconsole_opensips.codec import MIError, decode_response
from opsconsole_opensips.parse import parse_aors, parse_contacts
from opsconsole_opensips.source import OpenSIPSSource
from opsconsole_opensips.wire import decode_dump, is_wire_dump

from conftest import FIXTURES

GUARD_S = 15
DUMPS = [("3.4", "ul_dump.populated"), ("3.4", "ul_dump.empty"), ("3.4", "ul_dump.10k"),
         ("3.4", "ul_dump.brief.populated"), ("3.4", "ul_dump.brief.10k"), ("4.0", "ul_dump.populated"),
         ("4.0", "ul_dump.brief.populated"), ("4.0", "new_name.usrloc_dump")]


def capture(version: str, name: str) -> bytes:
    path = FIXTURES / f"opensips-{version}" / "mi" / f"{name}.json"
    return path.read_bytes() if path.exists() else gzip.open(f"{path}.gz").read()


def outcome(body: bytes, typed) -> tuple:
    """('ok', contacts, aors) or ('error', type, message): what a collector would end with."""
    try:
        result = decode_response(body, typed=typed)
        return "ok", parse_contacts(result, "node"), parse_aors(result)
    except OpsError as exc:
        return "error", type(exc).__name__, str(exc)


def reply_with(*contacts: dict, aor: str = "1000") -> bytes:
    reply = {"jsonrpc": "2.0", "result": {"Domains": [{"name": "location", "hash_size": 512,
                                                       "AORs": [{"AOR": aor, "Contacts": list(contacts)}]}]}, "id": 1}
    return json.dumps(reply).encode()


SAMPLE = json.loads(capture("3.4", "ul_dump.populated"))["result"]["Domains"][0]["AORs"][0]["Contacts"][0]


def sample(**changes) -> dict:
    contact = copy.deepcopy(SAMPLE)
    for key, value in changes.items():
        if value is KeyError:
            del contact[key]
        else:
            contact[key] = value
    return contact


@pytest.mark.parametrize("version,name", DUMPS)
def test_every_captured_dump_decodes_typed_and_alike(version, name):
    body = capture(version, name)
    assert is_wire_dump(decode_dump(body))
    typed, generic = outcome(body, decode_dump), outcome(body, None)
    assert typed == generic and typed[0] == "ok"
    if "brief" not in name and "empty" not in name:
        assert typed[1], "a populated capture gives contacts"


@pytest.mark.parametrize("contact,typed_path", [
    (sample(Expires="permanent", Socket=KeyError), True),  # MI-added contact (ul_add.permanent)
    (sample(Received="sip:10.0.0.1:5070", Path="<sip:edge;lr>", Attr="x", Sip_instance="<urn:1>"), True),
    (sample(Expires="expired"), True),
    (sample(Expires="3600"), True),  # a number as text is converted on both paths
    (sample(Cseq="7"), False),
    (sample(Flags=2**70), True),  # kept exact, as json.loads keeps it
    (sample(Methods=None), False),
    (sample(Q=0.5), False),
    (sample(Callid=KeyError), False),  # the generic path's defaults decide
    (sample(Contact=5), False),
    (sample(Flags=True), False),
    (sample(Expires=None), False),
])
def test_unusual_contacts_end_alike(contact, typed_path):
    body = reply_with(contact)
    assert (decode_dump(body) is not None) == typed_path
    assert outcome(body, decode_dump) == outcome(body, None)


@pytest.mark.parametrize("body", [
    reply_with(sample()).replace(b'"CS_NEW"', b'"CS_\xff\xfeNEW"'),  # a phone's non-UTF-8 bytes
    reply_with(sample(Callid="\ud800x")),  # lone surrogate, escaped
    reply_with(sample()).replace(b'"Flags": 0', b'"Flags": 0, "Attr": NaN'),
    reply_with(sample())[:-40],  # cut short
    b'{"jsonrpc":"2.0","error":{"code":404,"message":"AOR not found"},"result":null,"id":1}',
    reply_with(sample()).replace(b'"id": 1', b'"error": {"code": 500, "message": "both"}, "id": 1'),
    b'{"jsonrpc":"2.0","result":{"Domains":[{"name":"location"}]},"id":1}',
    b'{"jsonrpc":"2.0","result":{"Domains":"x"},"id":1}',
    b'\xef\xbb\xbf' + reply_with(sample()),
    b"[" * 5000 + b"]" * 5000,
    b"",
])
def test_unusual_replies_take_the_generic_path(body):
    assert decode_dump(body) is None
    assert outcome(body, decode_dump) == outcome(body, None)


def test_user_agent_bytes_survive_through_the_generic_path():
    body = reply_with(sample(**{"User-agent": "bad?-UA"})).replace(b"bad?-UA", b"bad\xff-UA")
    (contact,) = outcome(body, decode_dump)[1]
    assert contact.user_agent == "bad\udcff-UA"


def test_error_reply_raises_the_same_mi_error():
    body = capture("3.4", "ul_show_contact.not_found")
    with pytest.raises(MIError) as info:
        decode_response(body, typed=decode_dump)
    assert info.value.code == 404 and "AOR not found" in str(info.value)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["permanent", "expired", "deleted", "", "12", " 3 "]),
                    st.lists(st.integers(), max_size=2))
_KEYS = ["Contact", "ContactID", "Expires", "Q", "Callid", "Cseq", "User-agent", "State", "Flags", "Cflags",
         "Socket", "Methods", "Received", "Path", "Attr"]


@st.composite
def contacts(draw) -> dict:
    """A captured contact with some keys dropped and some given other values or types."""
    contact = sample()
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=4, unique=True)):
        if draw(st.booleans()):
            contact.pop(key, None)
        else:
            contact[key] = draw(_VALUES)
    return contact


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(contacts(), min_size=1, max_size=4))
def test_random_contacts_end_alike(batch):
    body = reply_with(*batch)
    assert outcome(body, decode_dump) == outcome(body, None)


def test_without_msgspec_the_generic_path_answers(monkeypatch):
    body = capture("3.4", "ul_dump.populated")
    expected = outcome(body, None)
    monkeypatch.setattr(wire, "msgspec", None)
    assert decode_dump(body) is None
    assert outcome(body, decode_dump) == expected


# --------------------------------------------------------------------------- clients and collectors


async def test_http_and_fifo_clients_decode_typed(mi_server, mi_fifo_server):
    mi_fifo_server.set_state("10k")
    http = HTTPMIClient(mi_server.url, timeout=1)
    fifo = FIFOMIClient(mi_fifo_server.fifo_path, mi_fifo_server.reply_dir, timeout=5)
    try:
        over_http = await asyncio.wait_for(http.call("ul_dump", typed=decode_dump), GUARD_S)
        over_fifo = await asyncio.wait_for(fifo.call("ul_dump", typed=decode_dump), GUARD_S)
        generic = await asyncio.wait_for(http.call("ul_dump"), GUARD_S)
        mi_server.set_error("ul_dump", -32000, "Internal error")
        with pytest.raises(MIError, match="Internal error"):
            await asyncio.wait_for(http.call("ul_dump", typed=decode_dump), GUARD_S)
    finally:
        await http.aclose()
    assert is_wire_dump(over_http) and is_wire_dump(over_fifo) and isinstance(generic, dict)
    assert parse_contacts(over_http) == parse_contacts(generic) and len(parse_contacts(over_http)) == 70
    assert len(parse_contacts(over_fifo)) == 10_070


def _counting(monkeypatch, module) -> list:
    seen: list = []

    def counted(body):
        result = decode_dump(body)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(module, "decode_dump", counted)
    return seen


async def test_snapshot_collector_decodes_its_dump_typed(mi_server, monkeypatch):
    seen = _counting(monkeypatch, source_module)
    source = OpenSIPSSource(Config(timeout=1.0, mi_url=mi_server.url))
    try:
        state = await asyncio.wait_for(source.collect(CollectOptions()), GUARD_S)
    finally:
        await source.aclose()
    assert seen == [True]
    assert state.contacts == parse_contacts(json.loads(capture("3.4", "ul_dump.populated"))["result"], mi_server.url)


async def test_live_full_sync_decodes_its_dump_typed(mi_server, monkeypatch):
    seen = _counting(monkeypatch, live_module)
    source = OpenSIPSSource(Config(timeout=1.0, mi_url=mi_server.url, events=False))
    try:
        state = await asyncio.wait_for(source.collect(CollectOptions(live=True, force_full_sync=True)), GUARD_S)
    finally:
        await source.aclose()
    assert seen == [True] and len(state.contacts) == 70


def test_duplicate_keys_mean_the_last_one_on_both_paths():
    body = reply_with(sample()).replace(b'"Socket": ', b'"Socket": "ws:127.0.0.1:9", "Socket": ', 1)
    body = body.replace(b'"AOR": "1000"', b'"AOR": "first", "AOR": "1000"', 1)
    assert decode_dump(body) is not None
    typed = outcome(body, decode_dump)
    assert typed == outcome(body, None) and typed[1][0].aor == "1000" and typed[1][0].socket == SAMPLE["Socket"]
