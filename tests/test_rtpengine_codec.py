"""ng codec against every captured datagram, plus arbitrary bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.errors import ProtocolError
from opsconsole_rtpengine import codec

FIXTURES = Path(__file__).parent / "fixtures"
NG_DIRS = (FIXTURES / "rtpengine-10.5" / "ng", FIXTURES / "rtpengine-10.5-probe")
RESPONSES = sorted(p for d in NG_DIRS for p in d.glob("*.response.bencode"))
REQUESTS = sorted(p for d in NG_DIRS for p in d.glob("*.request.bencode"))


def _capture(datagram_path: Path) -> dict:
    name = datagram_path.name.rsplit(".", 2)[0]
    return json.loads((datagram_path.parent / f"{name}.json").read_text())


def test_fixtures_present():
    assert len(RESPONSES) == 48 and len(REQUESTS) >= 48


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_captured_reply_decodes_to_the_documented_dict(path):
    capture = _capture(path)
    cookie, message = codec.decode(path.read_bytes())
    assert cookie == capture.get("response_cookie", capture["cookie"])
    assert message == capture["response"]
    assert message["result"] in ("ok", "pong", "error")
    if message["result"] == "error":
        assert message["error-reason"]


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_captured_request_decodes_or_is_a_protocol_error(path):
    capture = _capture(path)
    if "_raw_payload" in capture["request"] or path.name.startswith("error.not_a_dict"):
        with pytest.raises(ProtocolError):
            codec.decode(path.read_bytes())
    else:
        cookie, message = codec.decode(path.read_bytes())
        assert cookie == capture["cookie"]
        assert message == capture["request"]


WELL_FORMED_REQUESTS = [p for p in REQUESTS if isinstance(_capture(p)["request"], dict)
                        and "_raw_payload" not in _capture(p)["request"]]


@pytest.mark.parametrize("path", WELL_FORMED_REQUESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_encode_roundtrips_captured_requests(path):
    request = _capture(path)["request"]
    data = codec.encode("abc123", request)
    assert data.startswith(b"abc123 ")
    assert codec.decode(data) == ("abc123", request)


def test_legacy_listener_reply_raises_dedicated_error():
    capture = json.loads((FIXTURES / "rtpengine-10.5-probe" / "legacy-listen-udp-ng-ping.json").read_text())
    reply = capture["exchanges"]["ng_ping"]["reply"].encode()
    with pytest.raises(codec.LegacyListenerError) as info:
        codec.decode(reply)
    assert isinstance(info.value, ProtocolError)
    assert "-u/--listen-udp" in str(info.value) and "-n/--listen-ng" in str(info.value)


@pytest.mark.parametrize("datagram", [b"", b"nocookie", b" d7:command4:pinge", b"c1 ", b"c1 d7:command",
                                      b"c1 l4:pinge", b"c1 i42e", b"c1 d1:ai1ee trailing", b"c1 20040107\n"])
def test_malformed_and_truncated_datagrams_are_protocol_errors(datagram):
    with pytest.raises(ProtocolError):
        codec.decode(datagram)


def test_truncated_captured_reply_is_a_protocol_error():
    data = (FIXTURES / "rtpengine-10.5" / "ng" / "query.udp_to_ws.response.bencode").read_bytes()
    with pytest.raises(ProtocolError, match="not valid bencode"):
        codec.decode(data[: len(data) // 2])


def test_non_utf8_bytes_become_replacement_characters_not_bytes():
    cookie, message = codec.decode(b"k1 d3:sdp3:\xff\xfe\x00e")
    assert cookie == "k1" and isinstance(message["sdp"], str) and "\ufffd" in message["sdp"]


def test_cookies_are_unique_and_valid():
    cookies = {codec.new_cookie() for _ in range(1000)}
    assert len(cookies) == 1000
    assert all(" " not in c and codec.encode(c, {"command": "ping"}) for c in cookies)


@pytest.mark.parametrize("cookie", ["", "has space", "x" * 65])
def test_encode_rejects_bad_cookies(cookie):
    with pytest.raises(ProtocolError):
        codec.encode(cookie, {"command": "ping"})


def test_encode_rejects_unencodable_values():
    with pytest.raises(ProtocolError):
        codec.encode("c", {"command": object()})


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data):
    try:
        cookie, message = codec.decode(data)
    except ProtocolError:
        return
    assert isinstance(cookie, str) and isinstance(message, dict)
    assert all(isinstance(k, str) for k in message)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_payload_after_a_cookie_never_escapes_other_exceptions(payload):
    try:
        codec.decode(b"c0ffee " + payload)
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20),
                                                          st.lists(st.text(max_size=5), max_size=3)), max_size=5))
def test_encode_decode_roundtrip(message):
    assert codec.decode(codec.encode("rt", message)) == ("rt", message)


# The decoder is ours (speed); bencode.py, the reference implementation, is the oracle.
_bencode_values = st.recursive(
    st.one_of(st.integers(), st.binary(max_size=12), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.binary(max_size=6), st.text(max_size=6)), inner, max_size=4)),
    max_leaves=20,
)


def _as_str(value):
    """bencode.py's bytes, as our decoder returns them: str, undecodable bytes replaced."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_as_str(k): _as_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_str(v) for v in value]
    return value


@settings(max_examples=400, deadline=None)
@given(_bencode_values)
def test_decoder_agrees_with_bencode_py(value):
    import bencodepy

    encoded = bencodepy.encode(value)
    assert codec.decode_value(encoded) == _as_str(bencodepy.decode(encoded))


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_decoder_agrees_with_bencode_py_on_every_capture(path):
    import bencodepy

    payload = codec.split_cookie(path.read_bytes())[1]
    try:
        expected = _as_str(bencodepy.decode(payload))
    except bencodepy.BencodeDecodeError:
        with pytest.raises(ProtocolError):
            codec.decode(path.read_bytes())
        return
    assert codec.decode_value(payload) == expected


@pytest.mark.parametrize("payload", [
    b"d3:keyi-e", b"d3:key4:abce", b"d-1:ae", b"d3:key1_0:0123456789e", b"d3:key 1:ae", b"i12", b"d3:keyi1e",
    b"d3:keyi1eX", b"d3:keyx3:abce", b"le", b"d4:spami1ee5:extra", b"d3:key:e", b"i--1e",
])
def test_malformed_bencode_is_a_protocol_error(payload):
    with pytest.raises(ProtocolError):
        codec.decode(b"c " + payload)


def test_deep_nesting_is_a_protocol_error_not_a_crash():
    with pytest.raises(ProtocolError, match="not valid bencode"):
        codec.decode(b"c d1:a" + b"l" * 10_000 + b"e" * 10_000 + b"e")
