"""Call quality on a real RTPengine, SIP failure counters on a real OpenSIPS.

RTPengine: real RTP and RTCP through it, so RTPengine itself computes the MOS.

Each call's two endpoints are local sockets (ports from the OS, RTP on an even port and RTCP on the
next).  Both send G.711 RTP through RTPengine; with RTCP, each sends sender reports with a report
block about the other whose fraction lost, jitter and DLSR we choose (opsconsole_demo.rtcp).  The
figures asserted are RTPengine's (ng query), read back through our source, model, checks and JSON.

OpenSIPS (needs OPSCONSOLE_TEST_OPENSIPS, like tests/real): sipp calls to an unregistered user (404) and to a
UAS answering 503; the sl:/tm: reply counters move, the one-shot collection's two samples frame the calls,
and opensips.sip_failures fires on the 5xx share.  One function-scoped platform per OpenSIPS version.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from dataclasses import dataclass, field

import pytest

from console.config import Config, Thresholds
from opsconsole_demo.rtcp import Reception, ReportingEndpoint, ReportingPair
from console.model import QualityState, Snapshot, SourceStatus, Status, call_quality
from console.plugins import CheckContext, CollectOptions
from console.render.jsonout import snapshot_dict
from console.snapshot import join_calls
from opsconsole_opensips.checks import check_sip_failures
from opsconsole_opensips.source import OpenSIPSSource
from opsconsole_rtpengine.checks import check_one_way, check_quality, check_silent
from opsconsole_rtpengine.ng import NgClient
from opsconsole_rtpengine.source import RTPengineSource
from support.platform import _csv, _listening, _run_sipp, _sipp, _spawn_sipp, _wait
from support.rtpengine_daemon import PLAIN_FLAGS, free_port, plain_sdp

SILENT_AFTER_S = 2.0
REPORT_EVERY_S = 1.05  # RTPengine keeps at most one stats block per reporter and second
PACKET = 160  # 20 ms of G.711


def _socket_pair() -> tuple[socket.socket, socket.socket]:
    """RTP on an even port the OS picked, RTCP on the next one (the SDP says the RTP port only)."""
    for _ in range(200):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if port % 2:
                raise OSError("odd")
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        for sock in (rtp, rtcp):
            sock.setblocking(False)
        return rtp, rtcp
    raise RuntimeError("no free even/odd port pair on loopback")


@dataclass
class Endpoint:
    rtp: socket.socket
    rtcp: socket.socket
    ssrc: int
    relay: int = 0  # the RTPengine port this endpoint sends its RTP to (RTCP: the next one)
    seq: int = 0
    timestamp: int = 0
    sending: bool = True

    @property
    def port(self) -> int:
        return self.rtp.getsockname()[1]

    def send_rtp(self, reporter: ReportingEndpoint | None) -> None:
        if not self.sending:
            return
        packet = struct.pack("!BBHII", 0x80, 8, self.seq, self.timestamp, self.ssrc) + b"\xd5" * PACKET
        self.rtp.sendto(packet, ("127.0.0.1", self.relay))
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp += PACKET
        if reporter is not None:
            reporter.sent_rtp(1, PACKET, self.timestamp)

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


@dataclass
class RealCall:
    callid: str
    caller: Endpoint
    callee: Endpoint
    reports: ReportingPair | None = None
    next_report: float = field(default=0.0)

    def tick(self, now: float) -> None:
        self.caller.send_rtp(self.reports.caller if self.reports else None)
        self.callee.send_rtp(self.reports.callee if self.reports else None)
        if self.reports is not None and now >= self.next_report:
            self.next_report = now + REPORT_EVERY_S
            for endpoint, reporter in ((self.caller, self.reports.caller), (self.callee, self.reports.callee)):
                reporter.highest_seq = (self.callee if endpoint is self.caller else self.caller).seq
            caller_report, callee_report = self.reports.reports(now)
            if self.caller.sending:
                self.caller.rtcp.sendto(caller_report, ("127.0.0.1", self.caller.relay + 1))
            if self.callee.sending:
                self.callee.rtcp.sendto(callee_report, ("127.0.0.1", self.callee.relay + 1))

    def close(self) -> None:
        self.caller.close()
        self.callee.close()


async def _place(ng: NgClient, callid: str, caller_reports: Reception | None,
                 callee_reports: Reception | None) -> RealCall:
    ends = [Endpoint(*_socket_pair(), ssrc=int.from_bytes(os.urandom(4), "big")) for _ in range(2)]
    caller, callee = ends
    await ng.offer(callid, "from-" + callid, plain_sdp(caller.port), dict(PLAIN_FLAGS))
    await ng.answer(callid, "from-" + callid, "to-" + callid, plain_sdp(callee.port), dict(PLAIN_FLAGS))
    reply = await ng.query(callid)
    for endpoint, tag in ((caller, "from-" + callid), (callee, "to-" + callid)):
        streams = reply["tags"][tag]["medias"][0]["streams"]
        endpoint.relay = next(int(s["local port"]) for s in streams if "RTP" in s["flags"])
    reports = None
    if caller_reports is not None and callee_reports is not None:
        reports = ReportingPair(ReportingEndpoint(caller.ssrc, caller_reports),
                                ReportingEndpoint(callee.ssrc, callee_reports))
    return RealCall(callid, caller, callee, reports)


async def _pump(calls: list[RealCall], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.time()
        for call in calls:
            call.tick(now)
        await asyncio.sleep(0.02)


def _config(daemon) -> Config:
    return daemon.config(thresholds=Thresholds(silent_after_s=SILENT_AFTER_S))


async def _snapshot(daemon) -> Snapshot:
    source = RTPengineSource(daemon.config())
    try:
        media = await source.collect(CollectOptions(media_details=True))
    finally:
        await source.aclose()
    now = time.time()
    return Snapshot(collected_at=now, sources={"rtpengine": SourceStatus("rtpengine", True)}, media=media,
                    calls=join_calls(None, media.sessions, dialogs_complete=False))


def _quality(snapshot: Snapshot, callid: str):
    call = next(c for c in snapshot.calls if c.callid == callid)
    return call_quality(call, snapshot.collected_at, mos_poor=3.5, silent_after_s=SILENT_AFTER_S)


async def test_rtpengine_computes_the_mos_and_the_checks_name_the_calls(start_rtpengine):
    daemon = start_rtpengine()
    ng = NgClient(*daemon.ng)
    calls: list[RealCall] = []
    try:
        good = Reception(loss_pct=0, jitter_ms=5, rtt_leg_ms=20)
        bad = Reception(loss_pct=5, jitter_ms=160, rtt_leg_ms=20, cumulative_lost=40)
        calls = [
            await _place(ng, "q-poor", bad, good),  # the caller hears 5 % loss and 160 ms jitter
            await _place(ng, "q-good", good, good),
            await _place(ng, "q-nortcp", None, None),
            await _place(ng, "q-oneway", good, good),
        ]
        await _pump(calls, 3.5)
        oneway = calls[3]
        oneway.callee.sending = False  # the callee goes quiet: callee -> caller silent
        await _pump(calls, SILENT_AFTER_S + 1.5)
        snapshot = await _snapshot(daemon)
    finally:
        for call in calls:
            call.close()
        await ng.aclose()

    poor = _quality(snapshot, "q-poor")
    assert poor.state is QualityState.POOR, poor
    # RTPengine's own figures, in our units: 5 % loss (13/256), jitter 1280 units at 8 kHz = 160 ms
    assert poor.caller.loss_pct == 5 and poor.caller.jitter_ms == 160
    assert poor.caller.mos is not None and poor.caller.mos < 3.5
    assert poor.callee.mos is not None and poor.callee.mos >= 4.0
    assert 30 <= poor.rtt_ms <= 60  # two legs of ~20 ms chosen through DLSR
    assert poor.caller.rtcp.cumulative_loss == 40
    assert len(poor.caller.progression) >= 2

    good_q = _quality(snapshot, "q-good")
    assert good_q.state is QualityState.OK and good_q.mos >= 4.0, good_q

    no_rtcp = _quality(snapshot, "q-nortcp")
    assert no_rtcp.state is QualityState.NO_RTCP and no_rtcp.mos is None
    assert no_rtcp.reason == "no RTCP — MOS unavailable"
    assert no_rtcp.caller.packets > 100 and no_rtcp.callee.packets > 100

    one_way = _quality(snapshot, "q-oneway")
    assert one_way.state is QualityState.ONE_WAY, one_way
    assert one_way.silent_directions == ("callee -> caller",)
    assert one_way.callee.last_packet_age_s > SILENT_AFTER_S and one_way.caller.last_packet_age_s <= 1

    ctx = CheckContext(snapshot=snapshot, config=_config(daemon), now=snapshot.collected_at)
    quality = check_quality(ctx)
    assert quality.status.value == "warn" and "q-poor" in quality.summary, quality
    assert set(quality.evidence["poor calls"]) == {"q-poor"}
    assert "q-nortcp" not in quality.summary and quality.evidence["calls without RTCP (MOS unknown)"] == 1
    one_way_result = check_one_way(ctx)
    assert one_way_result.status.value == "warn"
    assert set(one_way_result.evidence["one-way calls"]) == {"q-oneway"}
    assert "callee -> caller silent" in one_way_result.evidence["one-way calls"]["q-oneway"]
    assert check_silent(ctx).status.value == "ok"

    data = snapshot_dict(snapshot, thresholds=Thresholds(silent_after_s=SILENT_AFTER_S))
    by_id = {c["callid"]: c["quality"] for c in data["calls"]}
    assert by_id["q-poor"]["state"] == "poor" and by_id["q-poor"]["mos"] < 3.5
    assert by_id["q-nortcp"]["state"] == "no RTCP" and by_id["q-nortcp"]["mos"] is None
    assert by_id["q-oneway"]["state"] == "one-way" and by_id["q-oneway"]["last_packet_age_b_s"] > SILENT_AFTER_S
    assert data["overview"]["rtpengine"]["mos_samples"] > 0


async def test_rtp_without_rtcp_is_no_finding_and_a_silent_call_is_named(start_rtpengine):
    daemon = start_rtpengine()
    ng = NgClient(*daemon.ng)
    calls: list[RealCall] = []
    try:
        calls = [await _place(ng, "n-flowing", None, None), await _place(ng, "n-silent", None, None)]
        calls[1].caller.sending = calls[1].callee.sending = False
        await _pump(calls, SILENT_AFTER_S + 1.5)
        snapshot = await _snapshot(daemon)
    finally:
        for call in calls:
            call.close()
        await ng.aclose()
    ctx = CheckContext(snapshot=snapshot, config=_config(daemon), now=snapshot.collected_at)
    assert _quality(snapshot, "n-flowing").state is QualityState.NO_RTCP
    assert check_quality(ctx).status.value == "ok"
    assert check_one_way(ctx).status.value == "ok"
    silent = check_silent(ctx)
    assert silent.status.value == "warn" and set(silent.evidence["silent calls"]) == {"n-silent"}, silent


# --------------------------------------------------------------------------- SIP failures (real OpenSIPS)

CALLS_EACH = 10
# The two counter samples this far apart: the calls happen in between.  tm counts a transaction when it
# releases it, its wait timer (5 s by default) after the final reply: measured, the 404s showed 5 s late.
WINDOW_S = 9.0

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac expecting a failure">
  <send retrans="500"><![CDATA[
      INVITE sip:[field1]@[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:[field0]@[remote_ip]>;tag=[pid]fail[call_number]
      To: <sip:[field1]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=x 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="CODE"/>
  <send><![CDATA[
      ACK sip:[field1]@[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-2];rport
      Max-Forwards: 70
      From: <sip:[field0]@[remote_ip]>;tag=[pid]fail[call_number]
      To: <sip:[field1]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

  ]]></send>
</scenario>
"""

UAS_503 = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas answering 503">
  <recv request="INVITE"/>
  <send><![CDATA[
      SIP/2.0 503 Service Unavailable
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]uas[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <recv request="ACK"/>
</scenario>
"""


def _scenario(platform, name: str, text: str) -> str:
    path = platform.workdir / name
    path.write_text(text)
    return str(path)


def _failing_calls(platform, callee: str, code: int) -> None:
    """CALLS_EACH INVITEs that end with `code` at the UAC."""
    scenario = _scenario(platform, f"uac_{code}.xml", UAC.replace("CODE", str(code)))
    csv = _csv(platform, f"calls_{code}.csv", [f"4000;{callee}"] * CALLS_EACH)
    command = _sipp(platform, f"uac_{code}", "uac_call.xml", "u1", [
        f"127.0.0.1:{platform.opensips.sip_port}", "-inf", str(csv), "-m", str(CALLS_EACH), "-r", "50",
        "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()), "-timeout", "15s"])
    command[command.index("-sf") + 1] = scenario
    _run_sipp(platform, f"uac_{code}", command)


def _start_uas_503(platform) -> int:
    port = free_port()
    command = _sipp(platform, "uas_503", "uas.xml", "u1", ["-p", str(port)])
    command[command.index("-sf") + 1] = _scenario(platform, "uas_503.xml", UAS_503)
    _spawn_sipp(platform, "uas_503", command)
    _wait(platform, f"sipp UAS 503 on {port}", lambda: _listening("udp", port))
    return port


def _register(platform, user: str, port: int) -> None:
    csv = _csv(platform, "users_503.csv", [f"{user};127.0.0.1:{port};3600;transport=udp;sipp-503"])
    _run_sipp(platform, "reg_503", _sipp(platform, "reg_503", "register.xml", "u1", [
        f"127.0.0.1:{platform.opensips.sip_port}", "-inf", str(csv), "-m", "1", "-p", str(free_port()),
        "-timeout", "10s"]))


@pytest.mark.opensips
async def test_404_and_503_move_the_counters_and_the_check_fires(start_real_platform):
    started = time.monotonic()
    platform = start_real_platform(traffic=False)
    _register(platform, "5030", _start_uas_503(platform))
    config = Config(mi_url=platform.mi_url, ng=None, cli=None, timeout=5.0,
                    thresholds=Thresholds(sip_sample_s=WINDOW_S, sip_min_replies=5))
    source = OpenSIPSSource(config)
    try:
        collecting = asyncio.ensure_future(source.collect(CollectOptions(contacts=False, dialogs=False)))
        await asyncio.sleep(0.5)  # the first sample is taken
        await asyncio.to_thread(_failing_calls, platform, "9999", 404)  # nobody registered as 9999
        # OpenSIPS relays the UAS's 503 as a 500 (RFC 3261 16.7: a 503 is not passed upstream)
        await asyncio.to_thread(_failing_calls, platform, "5030", 500)
        state = await collecting
    finally:
        await source.aclose()

    window = state.sip_window
    assert window is not None and window.seconds >= WINDOW_S, state.overview.sip
    assert window.finals["4xx"] >= CALLS_EACH  # the 404s (t_reply: tm:4xx_transactions)
    assert window.finals["5xx"] >= CALLS_EACH  # the UAS's 503 (relayed as 500 or 503: still 5xx)
    assert state.overview.sip.finals("5xx") >= CALLS_EACH

    snapshot = Snapshot(collected_at=time.time(), sources={"opensips": SourceStatus("opensips", True)},
                        signalling=state)
    result = check_sip_failures(CheckContext(snapshot=snapshot, config=config, now=time.time()))
    assert result.status is Status.FAIL, result  # ~50 % of the final replies are 5xx (fail at 20 %)
    assert result.evidence["5xx replies"] >= CALLS_EACH and result.evidence["4xx replies"] >= CALLS_EACH
    assert "5xx/6xx" in result.summary and result.remedy

    sip = snapshot_dict(snapshot)["overview"]["sip"]
    assert sip["window"]["final_replies"]["5xx"] >= CALLS_EACH and sip["final_replies"]["4xx"] >= CALLS_EACH
    print(f"OpenSIPS {platform.version}: {result.summary} ({time.monotonic() - started:.1f} s)")


@pytest.mark.opensips
async def test_a_quiet_server_is_no_finding(start_real_platform):
    platform = start_real_platform(traffic=False)
    config = Config(mi_url=platform.mi_url, ng=None, cli=None, timeout=5.0)
    source = OpenSIPSSource(config)
    try:
        state = await source.collect(CollectOptions(contacts=False, dialogs=False))
    finally:
        await source.aclose()
    assert state.sip_window is not None and state.sip_window.seconds >= config.thresholds.sip_sample_s
    snapshot = Snapshot(collected_at=time.time(), sources={"opensips": SourceStatus("opensips", True)},
                        signalling=state)
    result = check_sip_failures(CheckContext(snapshot=snapshot, config=config, now=time.time()))
    assert result.status is Status.OK and "too little traffic" in result.summary, result


async def test_the_live_session_covers_every_call_of_a_real_rtpengine_within_its_rotation(start_rtpengine):
    """The rotating detail budget against a real RTPengine: more calls than a checks poll queries at
    once, so after the first poll (every session) each poll queries the rows on screen and a share;
    within ceil(N / share) polls RTPengine answered a query for every call (its own reply times, as
    parsed), the rows on screen at every poll, and the poor call is judged and named."""
    from console.live import CHECKS_DETAILS_MAX, Interest, LiveSession
    from console.plugins import load_plugins
    from console.service import ConsoleService
    from support.rtpengine_daemon import make_call

    quiet = CHECKS_DETAILS_MAX + 30
    daemon = start_rtpengine(ports=4 * (quiet + 1) + 16)
    ng = NgClient(*daemon.ng)
    service = ConsoleService(daemon.config(thresholds=Thresholds(silent_after_s=60.0)), plugins=load_plugins())
    session = LiveSession(service, interval=0.2, heavy_interval=4.0)
    calls: list[RealCall] = []
    pump = None
    try:
        bad, good = Reception(loss_pct=5, jitter_ms=160, rtt_leg_ms=20), Reception(loss_pct=0, jitter_ms=5, rtt_leg_ms=20)
        calls.append(await _place(ng, "live-poor", bad, good))
        for n in range(quiet):
            await make_call(ng, f"live-quiet-{n}")
        pump = asyncio.ensure_future(_pump(calls, 60))
        await asyncio.sleep(3.5)  # RTCP rounds: RTPengine has the poor call's MOS
        first = await session.poll_once()
        assert session.last_options.media_detail_callids is None  # none known yet: every one
        listed = {s.callid for s in first.media.sessions}
        assert len(listed) == quiet + 1 and all(s.legs for s in first.media.sessions)
        on_screen = frozenset({"live-quiet-0", "live-quiet-7", "live-poor"})
        session.set_interest(Interest(screen="calls", detail_callids=on_screen))
        share = session.rotation_size(len(listed) - len(on_screen))
        rounds = -(-(len(listed) - len(on_screen)) // share)
        assert 1 < share < len(listed) and rounds > 1
        started = time.time()
        for _ in range(rounds):
            poll_started = time.time()
            view = await session.poll_once()
            queried = {s.callid: s.queried_at for s in view.media.sessions}
            assert all(queried[c] is not None and queried[c] >= poll_started for c in on_screen)
        late = sorted(c for c, at in queried.items() if at is None or at < started)
        assert not late, f"{len(late)} calls not queried within {rounds} polls: {late[:5]}"
        assert view.quality("live-poor").state is QualityState.POOR and view.quality_counts()["poor"] == 1
        session.request_checks()
        view = await session.poll_once()
        checks = {c.id: c for c in view.checks}
        assert checks["calls.quality"].status is Status.WARN and "live-poor" in checks["calls.quality"].summary
    finally:
        if pump is not None:
            pump.cancel()
        session.close()
        await service.aclose()
        for call in calls:
            call.close()
        await ng.aclose()
