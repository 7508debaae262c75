"""Hostile input to the demo's MI renderer and simulated RTPengine: typed errors, never a crash."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole_demo.media_sim import SimEngine, decode_datagram
from opsconsole_demo.mi_render import SIGNATURES, MiError, MiRenderer
from opsconsole_demo.state import DemoState

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
STATE = DemoState(70, seed=9, clock=lambda: 1_795_670_000.0)
RENDERER = MiRenderer(STATE)


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(sorted(SIGNATURES) + ["usrloc:dump", "nope"]),
       params=st.none() | st.lists(json_values, max_size=4)
       | st.fixed_dictionaries({}, optional={k: json_values for k in
                                             ("aor", "table_name", "callid", "index", "counter", "brief",
                                              "statistics", "profile", "value", "command", "mi_cmd")}))
def test_any_params_give_a_result_or_a_jsonrpc_error(method, params):
    try:
        result = RENDERER.call(method, params)
    except MiError as exc:
        assert isinstance(exc.code, int) and exc.message
    else:
        json.dumps(result)  # always serialisable


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_any_post_body_gets_a_jsonrpc_response(body):
    response = RENDERER.respond(body)
    assert response["jsonrpc"] == "2.0" and ("result" in response or "error" in response)


@settings(max_examples=300, deadline=None)
@given(datagram=st.binary(max_size=200),
       request=st.dictionaries(st.sampled_from(["command", "call-id", "from-tag", "to-tag", "sdp", "limit"]),
                               json_values | st.sampled_from(["offer", "answer", "delete", "query", "list"]),
                               max_size=6))
def test_any_ng_input_gets_an_ng_reply(datagram, request):
    engine = SimEngine(lambda: 1_795_670_000.0)
    _, decoded = decode_datagram(datagram)
    for candidate in (decoded, request):
        reply = engine.handle(candidate)
        assert reply.get("result") in ("ok", "error", "pong") or "calls" in reply or "statistics" in reply
