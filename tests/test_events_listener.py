"""EventListener against a fake MI and real loopback senders replaying the captured bytes."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from console.errors import RemoteError, Timeout
from opsconsole_opensips.events import EventListener, kernel_udp_drops
from opsconsole_opensips.events_store import Change, DialogStore, EventRouter, RegistrationStore

EVENTS = Path(__file__).parent / "fixtures" / "opensips-3.4" / "events"
CONTACT_EVENTS = ["E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE", "E_UL_CONTACT_DELETE"]
ALL_EVENTS = CONTACT_EVENTS + ["E_DLG_STATE_CHANGED"]


def reply_error(name: str) -> RemoteError:
    """The error the MI client raises for a captured mi_sub_* error reply."""
    error = json.loads((EVENTS / f"{name}.reply.json").read_text())["error"]
    return RemoteError(error["message"], code=error["code"])


class FakeMI:
    """Records event_subscribe calls; `refuse(socket_prefix, event) -> error or None`."""

    def __init__(self, refuse=lambda sock, event: None, subscribers=lambda: {"Events": []}) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.refuse = refuse
        self.subscribers = subscribers

    async def call(self, method, params=None):
        self.calls.append((method, dict(params or {})))
        if method == "subscribers_list":
            return self.subscribers()
        error = self.refuse(params["socket"], params["event"])
        if error is not None:
            raise error
        return "OK"  # mi_sub_*_udp.reply.json result

    def subscriptions(self, expire=None):
        return [p for m, p in self.calls if m == "event_subscribe" and (expire is None or p["expire"] == expire)]


async def wait_until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"gave up waiting for {what}")


def make_listener(mi, **kw):
    router = EventRouter(RegistrationStore(), DialogStore())
    return EventListener(mi, router, **kw), router


def port_of(listener) -> int:
    return int(listener.socket.rsplit(":", 1)[1])


async def test_udp_subscribes_receives_captured_datagrams_and_unsubscribes():
    mi = FakeMI()
    seen = []
    listener, router = make_listener(mi, on_event=lambda event, change: seen.append((event.name, change)))
    try:
        assert await listener.start()
        assert listener.active and not listener.fallback and listener.transport == "udp"
        assert listener.socket.startswith("udp:127.0.0.1:") and listener.since is not None
        assert [(p["event"], p["socket"], p["expire"]) for p in mi.subscriptions()] == [
            (e, listener.socket, 3600) for e in ALL_EVENTS]
        names = ["udp_new_register__E_UL_AOR_INSERT_1", "udp_new_register__E_UL_CONTACT_INSERT_1",
                 "udp_register_uas_ev2000__E_UL_CONTACT_INSERT_1", "udp_refresh_same_callid_cseq2__E_UL_CONTACT_UPDATE_1",
                 "udp_call_start__E_DLG_STATE_CHANGED_1", "udp_call_start__E_DLG_STATE_CHANGED_2",
                 "udp_unregister_expires0__E_UL_CONTACT_DELETE_1"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for name in names:
                sender.sendto((EVENTS / f"{name}.bin").read_bytes(), ("127.0.0.1", port_of(listener)))
                await asyncio.sleep(0)
            await wait_until(lambda: listener.events_received == len(names), "all datagrams")
        assert [c.aor for c in router.registrations.contacts()] == ["ev2000"]  # ev1001 unregistered
        assert router.dialogs.get("638.bf81ae34").state == 3
        assert listener.first_event_at is not None and listener.protocol_errors == 0
        assert seen[1] == ("E_UL_CONTACT_INSERT", Change(added=("ev1001\x00sip:ev1001@127.0.0.1:5371;transport=udp",)))
        assert "events since" in listener.status_line()
    finally:
        await listener.aclose()
    assert [p["event"] for p in mi.subscriptions(expire=0)] == ALL_EVENTS
    assert not listener.active


async def test_tcp_stream_split_reads_feed_the_store():
    mi = FakeMI()
    listener, router = make_listener(mi, transports=("tcp",))
    try:
        assert await listener.start()
        assert listener.socket.startswith("tcp:127.0.0.1:")
        data = b"".join((EVENTS / f"tcp_stream_{n}.bin").read_bytes()
                        for n in ("new_register", "register_uas_ev2000", "expiry_register"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(listener))
        for start in range(0, len(data), 97):  # splits land mid-object, mid-string
            writer.write(data[start:start + 97])
            await writer.drain()
        await wait_until(lambda: listener.events_received == 6, "6 stream events")
        writer.close()
        await writer.wait_closed()
        # the AoR subscription used a custom method name: it is an OtherEvent, harmless
        assert sorted(c.aor for c in router.registrations.contacts()) == ["ev1001", "ev1003", "ev2000"]
        assert listener.protocol_errors == 0
    finally:
        await listener.aclose()


async def test_garbage_datagram_is_counted_and_listener_keeps_going():
    listener, router = make_listener(FakeMI())
    try:
        await listener.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"\xff not json", ("127.0.0.1", port_of(listener)))
            sender.sendto((EVENTS / "udp_new_register__E_UL_CONTACT_INSERT_1.bin").read_bytes(),
                          ("127.0.0.1", port_of(listener)))
            await wait_until(lambda: listener.events_received == 1, "the good datagram")
        assert listener.protocol_errors == 1 and "bad event from OpenSIPS" in listener.last_error
        assert router.registrations.count == 1
    finally:
        await listener.aclose()


async def test_udp_refused_falls_back_to_tcp_stream():
    bad_socket = reply_error("mi_sub_bad_socket")
    mi = FakeMI(refuse=lambda sock, event: bad_socket if sock.startswith("udp:") else None)
    listener, _ = make_listener(mi)
    try:
        assert await listener.start()
        assert listener.transport == "tcp" and listener.active and not listener.fallback
        assert {p["socket"].split(":")[0] for p in mi.subscriptions()} == {"udp", "tcp"}
    finally:
        await listener.aclose()


@pytest.mark.parametrize("error", [reply_error("mi_sub_bad_socket"), reply_error("mi_sub_bad_event"),
                                   RemoteError("Method not found", code=-32601)])
async def test_events_unavailable_sets_fallback_with_a_readable_reason(error):
    mi = FakeMI(refuse=lambda sock, event: error)
    listener, _ = make_listener(mi)
    assert not await listener.start()
    assert listener.fallback and not listener.active
    reason = listener.fallback_reason
    if error.code == -32601:
        assert "no MI command 'event_subscribe'" in reason
    else:
        assert "load event_datagram or event_stream" in reason
    assert str(error.code) in reason and reason.endswith("falling back to bounded polling")
    assert listener.status_line().startswith("events unavailable")
    assert listener._udp is None and listener._tcp is None  # sockets released
    await listener.aclose()
    assert mi.subscriptions(expire=0) == []  # nothing to unsubscribe


async def test_missing_dialog_module_keeps_registration_events():
    bad_event = reply_error("mi_sub_bad_event")
    mi = FakeMI(refuse=lambda sock, event: bad_event if event == "E_DLG_STATE_CHANGED" else None)
    listener, _ = make_listener(mi)
    try:
        assert await listener.start()
        assert listener.subscribed == tuple(CONTACT_EVENTS) and not listener.fallback
        assert [f.event for f in listener.failures] == ["E_DLG_STATE_CHANGED"]
    finally:
        await listener.aclose()
    assert [p["event"] for p in mi.subscriptions(expire=0)] == CONTACT_EVENTS


async def test_mi_timeout_is_not_a_fallback_and_start_can_be_retried():
    down = {"on": True}
    mi = FakeMI(refuse=lambda sock, event: Timeout("MI did not answer in 2.0 s") if down["on"] else None)
    listener, _ = make_listener(mi)
    assert not await listener.start()
    assert not listener.fallback and not listener.active
    assert "did not answer" in listener.last_error and listener._udp is None
    down["on"] = False
    try:
        assert await listener.start() and listener.active and listener.last_error == ""
    finally:
        await listener.aclose()


async def test_resubscribe_timer_refreshes_the_same_socket():
    mi = FakeMI()
    listener, _ = make_listener(mi, events=["E_UL_CONTACT_INSERT"], expire=3, resubscribe_after=0.02)
    try:
        await listener.start()
        await wait_until(lambda: len(mi.subscriptions()) >= 3, "two re-subscriptions")
        assert {(p["socket"], p["expire"]) for p in mi.subscriptions()} == {(listener.socket, 3)}
    finally:
        await listener.aclose()
    count = len(mi.subscriptions())
    await asyncio.sleep(0.05)
    assert len(mi.subscriptions()) == count  # timer stopped with the listener
    assert mi.subscriptions()[-1]["expire"] == 0


async def test_resubscribe_default_is_two_thirds_of_expire():
    listener, _ = make_listener(FakeMI(), expire=3600)
    assert listener.resubscribe_after == 2400


async def test_failed_resubscribe_keeps_state_and_records_the_error():
    failing = {"on": False}
    mi = FakeMI(refuse=lambda sock, event: Timeout("MI timeout") if failing["on"] else None)
    listener, _ = make_listener(mi, events=["E_UL_CONTACT_INSERT"])
    try:
        await listener.start()
        failing["on"] = True
        assert not await listener.resubscribe()
        assert listener.active and "MI timeout" in listener.last_error
    finally:
        await listener.aclose()  # unsubscribe fails too: recorded, not raised
    assert "unsubscribe" in listener.last_error and not listener.active


def test_bad_transport_name_is_rejected():
    with pytest.raises(ValueError, match="transports"):
        EventListener(FakeMI(), EventRouter(), transports=("sctp",))


def captured_subscribers(our_socket: str, drop: str):
    """The captured subscribers_list reply with its udp:18900 subscriber as ours, minus one event."""
    text = (EVENTS / "mi_subscribers_list_t0.reply.json").read_text().replace("udp:127.0.0.1:18900", our_socket)
    result = json.loads(text)["result"]
    result["Events"] = [e for e in result["Events"] if e["name"] != drop]
    return result


async def test_verify_resubscribes_what_opensips_dropped():
    mi = FakeMI()
    listener, _ = make_listener(mi, verify_every=None)
    try:
        await listener.start()
        mi.subscribers = lambda: captured_subscribers(listener.socket, drop="E_UL_CONTACT_UPDATE")
        before = len(mi.subscriptions())
        assert await listener.verify() == ("E_UL_CONTACT_UPDATE",)
        assert [p["event"] for p in mi.subscriptions()[before:]] == ["E_UL_CONTACT_UPDATE"]
        assert listener.dropped_subscriptions == 1 and listener.coverage_gap_at is not None
    finally:
        await listener.aclose()


async def test_verify_timer_and_bad_subscribers_list_reply():
    mi = FakeMI(subscribers=lambda: {"no": "events"})
    listener, _ = make_listener(mi, verify_every=0.01)
    try:
        await listener.start()
        await wait_until(lambda: sum(m == "subscribers_list" for m, _ in mi.calls) >= 2, "periodic verify")
        assert "subscribers_list" in listener.last_error and listener.active
    finally:
        await listener.aclose()


async def test_timeout_midway_withdraws_the_subscriptions_already_made():
    mi = FakeMI(refuse=lambda sock, event: Timeout("MI timeout") if event == "E_UL_CONTACT_DELETE" else None)
    listener, _ = make_listener(mi)
    assert not await listener.start()
    made = [p["event"] for p in mi.subscriptions(expire=3600)]
    assert made == ["E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE", "E_UL_CONTACT_DELETE"]
    assert [p["event"] for p in mi.subscriptions(expire=0)] == ["E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE"]
    assert not listener.active and not listener.fallback


async def test_start_twice_does_not_rebind_and_closed_listener_refuses_restart():
    mi = FakeMI()
    listener, _ = make_listener(mi)
    await listener.start()
    socket_before, calls_before = listener.socket, len(mi.calls)
    assert await listener.start()
    assert (listener.socket, len(mi.calls)) == (socket_before, calls_before)
    await listener.aclose()
    await listener.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await listener.start()


async def test_failing_ui_callback_is_recorded_and_events_keep_flowing():
    def broken(event, change):
        raise KeyError("row")

    listener, router = make_listener(FakeMI(), on_event=broken)
    try:
        await listener.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for name in ("udp_new_register__E_UL_CONTACT_INSERT_1", "udp_register_uas_ev2000__E_UL_CONTACT_INSERT_1"):
                sender.sendto((EVENTS / f"{name}.bin").read_bytes(), ("127.0.0.1", port_of(listener)))
            await wait_until(lambda: listener.events_received == 2, "both datagrams")
        assert router.registrations.count == 2 and "callback failed: KeyError" in listener.last_error
    finally:
        await listener.aclose()


def test_listener_refuses_non_loopback_bind():
    with pytest.raises(ValueError, match="loopback"):
        EventListener(FakeMI(), EventRouter(), host="0.0.0.0")


async def test_end_to_end_with_the_http_mi_client_and_fake_mi_http(mi_server):
    from opsconsole_opensips.client import HTTPMIClient

    mi_server.set_response("event_subscribe", "OK")
    client = HTTPMIClient(mi_server.url, timeout=2.0)
    listener, router = make_listener(client, verify_every=None)
    try:
        assert await listener.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto((EVENTS / "udp_new_register__E_UL_CONTACT_INSERT_1.bin").read_bytes(),
                          ("127.0.0.1", port_of(listener)))
            await wait_until(lambda: router.registrations.count == 1, "the contact")
        await listener.aclose()
        sent = [p for m, p in mi_server.requests if m == "event_subscribe"]
        assert [(p["event"], p["expire"]) for p in sent] == [(e, 3600) for e in ALL_EVENTS] + [(e, 0) for e in ALL_EVENTS]
        assert {p["socket"] for p in sent} == {listener.socket}
    finally:
        await listener.aclose()
        await client.aclose()


async def test_end_to_end_captured_400_reply_means_fallback(mi_server):
    from opsconsole_opensips.client import HTTPMIClient

    error = json.loads((EVENTS / "mi_sub_bad_socket.reply.json").read_text())["error"]
    mi_server.set_error("event_subscribe", error["code"], error["message"])
    client = HTTPMIClient(mi_server.url, timeout=2.0)
    listener, _ = make_listener(client)
    try:
        assert not await listener.start()
        assert listener.fallback and "400" in listener.fallback_reason
    finally:
        await listener.aclose()
        await client.aclose()


async def test_close_with_mi_down_tries_one_unsubscribe_not_one_timeout_per_event():
    down = {"on": False}
    mi = FakeMI(refuse=lambda sock, event: Timeout("MI timeout") if down["on"] else None)
    listener, _ = make_listener(mi)
    await listener.start()
    down["on"] = True
    await listener.aclose()
    assert len(mi.subscriptions(expire=0)) == 1 and "unsubscribe" in listener.last_error
    assert listener._udp is None


async def test_close_with_opensips_still_connected_ends_the_stream_cleanly(caplog):
    listener, _ = make_listener(FakeMI(), transports=("tcp",))
    await listener.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(listener))
    writer.write((EVENTS / "tcp_stream_new_register.bin").read_bytes())
    await wait_until(lambda: listener.events_received == 2, "stream events")
    with caplog.at_level("ERROR", logger="asyncio"):
        await listener.aclose()
        assert await reader.read() == b""  # we closed the connection
        await asyncio.sleep(0.01)
    writer.close()
    assert not [r for r in caplog.records if r.name == "asyncio"]


async def test_udp_burst_is_drained_and_losses_are_accounted():
    listener, router = make_listener(FakeMI())
    datagram = (EVENTS / "udp_new_register__E_UL_CONTACT_INSERT_1.bin").read_bytes()
    burst = 1000
    try:
        await listener.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(burst):  # no await: the loop cannot read while we send
                sender.sendto(datagram.replace(b'"aor":"ev1001"', b'"aor":"b%04d"' % n), ("127.0.0.1", port_of(listener)))
        drops = lambda: listener.udp_drops() or 0  # noqa: E731
        await wait_until(lambda: listener.events_received + drops() == burst, "every datagram read or dropped")
        assert router.registrations.count == listener.events_received
        if listener._udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 4 * 1024 * 1024:
            assert drops() == 0  # the enlarged buffer holds this burst (a capped rmem_max may not)
    finally:
        await listener.aclose()
    assert listener.udp_drops() is None  # closed


def test_kernel_udp_drops_reads_proc_net_udp(tmp_path):
    table = tmp_path / "udp"
    table.write_text(
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
        " 1509: 0100007F:B057 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 24592 2 0000000003e5119e 0\n"
        " 7571: 0100007F:8805 00000000:0000 07 00000000:00003000 00:00000000 00000000     0        0 99783 2 000000003ebc325f 17\n")
    assert kernel_udp_drops("127.0.0.1", 0x8805, str(table)) == 17
    assert kernel_udp_drops("127.0.0.1", 0xB057, str(table)) == 0
    assert kernel_udp_drops("127.0.0.1", 1, str(table)) is None
    assert kernel_udp_drops("127.0.0.1", 1, str(tmp_path / "missing")) is None


async def test_status_line_warns_when_the_kernel_dropped_events(monkeypatch):
    listener, _ = make_listener(FakeMI())
    try:
        await listener.start()
        assert "LOST" not in listener.status_line()
        monkeypatch.setattr(listener, "udp_drops", lambda: 5)
        assert "5 events LOST" in listener.status_line() and "re-sync" in listener.status_line()
    finally:
        await listener.aclose()
