"""Real RTP through the demo's real RTPengine, so that its counters move.

RTPengine counts only what it relays: without packets every demo call showed 0/0 and
no codec, which on a real platform means "no audio".  For each answered RTP<->RTP call
(the sipp-like UDP/TCP endpoints) the pump binds both endpoints' SDP ports on loopback
and sends G.711 frames (one per 20 ms ptime) from each to the port RTPengine gave that
endpoint; RTPengine relays them to the other endpoint's socket.  WebRTC (DTLS-SRTP)
legs stay silent: they would need a DTLS handshake.  At most MAX_CALLS calls at a time
keep the demo light, and nothing is sent unless both endpoints' ports are ours (the
relay must never send to somebody else's port): the pump hands the simulation the endpoints'
SDP ports itself (`reserve`), each one a socket bound to a port the OS chose and kept open
until the call ends — no fixed port that another program on this machine may hold.

Each call has a quality profile (quality.py): most endpoints also send RTCP sender reports (from the
SDP port + 1, to the relay's RTP port + 1) whose loss, jitter and delay the profile chooses, so the
real RTPengine computes a good or a poor MOS itself; some calls send RTP without RTCP, in some the
callee never sends (one-way), in some nobody does (silent).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time

from console.config import is_loopback
from . import quality, sdp
from .rtcp import ReportingEndpoint, ReportingPair
from .state import MediaWork, SimDialog

log = logging.getLogger(__name__)

PTIME = 0.02  # seconds of audio per packet, as the lab's SDP says (a=ptime:20)
BURST = 0.1  # the frames of 100 ms go out together: 10 wake-ups a second at the same packet rate
MAX_CALLS = 16
RESERVE_MAX = 4  # ports waiting for their call (offered, ringing), per call that may send
REPORT_EVERY = 1.0  # s between two RTCP reports of an endpoint (RTPengine keeps one per second)
PAIR_ATTEMPTS = 20  # tries for an even RTP port whose odd neighbour (RTCP) is free
PCMU = 0  # the payload type the demo's answers pick (m=audio ... RTP/AVP 0)
_SILENCE = b"\xff" * 160  # 20 ms of G.711 u-law silence at 8 kHz
_HEADER = struct.Struct("!BBHII")


class RtpStream:
    """One endpoint sending to its relay port: sequence, timestamp and SSRC as RFC 3550 has them."""

    def __init__(self, sock: socket.socket, relay: tuple[str, int], rtcp: socket.socket | None = None,
                 sending: bool = True) -> None:
        self.sock, self.relay, self.rtcp, self.sending = sock, relay, rtcp, sending
        self.ssrc = int.from_bytes(os.urandom(4), "big")
        self.seq = int.from_bytes(os.urandom(2), "big")
        self.timestamp = int.from_bytes(os.urandom(4), "big")
        self.reporter: ReportingEndpoint | None = None

    def send(self, frames: int) -> None:
        if not self.sending:
            return
        if self.reporter is not None:
            self.reporter.sent_rtp(frames, frames * len(_SILENCE), self.timestamp + frames * len(_SILENCE))
        for _ in range(frames):
            packet = _HEADER.pack(0x80, PCMU, self.seq, self.timestamp, self.ssrc) + _SILENCE
            self.seq = (self.seq + 1) & 0xFFFF
            self.timestamp = (self.timestamp + len(_SILENCE)) & 0xFFFFFFFF
            try:
                self.sock.sendto(packet, self.relay)
            except OSError:  # a full buffer or a relay port just closed: the next frame tries again
                pass

    def send_report(self, packet: bytes) -> None:
        if self.rtcp is None or not self.sending:
            return
        try:
            self.rtcp.sendto(packet, (self.relay[0], self.relay[1] + 1))  # RTPengine's RTCP port: RTP + 1
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        if self.rtcp is not None:
            self.rtcp.close()


class RtpPump:
    """Keeps the RTP of the demo's answered plain-RTP calls flowing until their delete."""

    def __init__(self, max_calls: int = MAX_CALLS, burst: float = BURST) -> None:
        self.max_calls, self.burst = max_calls, burst
        self.calls: dict[str, tuple[RtpStream, RtpStream]] = {}
        self.reserved: dict[int, socket.socket] = {}  # SDP port -> its bound socket, until the call uses it
        self.rtcp_reserved: dict[int, socket.socket] = {}  # SDP port -> the socket on the port after it (RTCP)
        self.reports: dict[str, tuple[ReportingPair, float]] = {}  # call-id -> its RTCP pair, next report due
        self.profiles = quality.Profiles()
        self._task: asyncio.Task | None = None

    def reserve(self, transport: str) -> int | None:
        """An SDP port for a new plain-RTP endpoint: a socket bound now to a port the OS picks.

        None (the leg stays silent) for WebRTC legs and once enough ports wait for their calls."""
        if transport == "ws" or len(self.reserved) >= RESERVE_MAX * self.max_calls:
            return None
        try:
            sock, rtcp = _bound_pair()
        except OSError as exc:  # out of descriptors or ports: this call stays silent
            log.info("demo RTP port not reserved: %s", exc)
            return None
        port = sock.getsockname()[1]
        self.reserved[port] = sock
        if rtcp is not None:
            self.rtcp_reserved[port] = rtcp
        return port

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="opsconsole-demo-rtp")

    def update(self, work: MediaWork) -> None:
        """Follow the call's media work: an answer starts its RTP, a delete stops it."""
        if work.op == "answer":
            self._open(work.dialog)
        elif work.op == "delete":
            self._stop(work.dialog.callid)
            self._release(work.dialog)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for callid in list(self.calls):
            self._stop(callid)
        for sock in (*self.reserved.values(), *self.rtcp_reserved.values()):
            sock.close()
        self.reserved.clear()
        self.rtcp_reserved.clear()

    def _open(self, dialog: SimDialog) -> None:
        if dialog.callid in self.calls:
            return
        # Each endpoint sends from its own SDP port to the relay port RTPengine put in the SDP it got.
        ends = [(_own_port(dialog.caller.sdp), _relay(dialog.caller.sent_sdp)),
                (_own_port(dialog.callee.sdp), _relay(dialog.callee.sent_sdp))]
        ours = all(port in self.reserved for port, _ in ends)
        if (not ours or len(self.calls) >= self.max_calls or "ws" in dialog.kind
                or any(relay is None for _, relay in ends)):
            self._release(dialog)  # a port that is not ours is never sent from (nor to, by the relay)
            return
        callid, kind = dialog.callid, self.profiles.of(dialog.callid)
        caller, callee = (RtpStream(self.reserved.pop(port), relay, self.rtcp_reserved.pop(port, None),
                                    quality.sends(kind, role))
                          for (port, relay), role in zip(ends, ("caller", "callee")))
        self.calls[callid] = (caller, callee)
        chosen = quality.receptions(kind)
        if chosen is not None and caller.rtcp is not None and callee.rtcp is not None:
            caller.reporter = ReportingEndpoint(caller.ssrc, chosen[0])
            callee.reporter = ReportingEndpoint(callee.ssrc, chosen[1])
            self.reports[callid] = (ReportingPair(caller.reporter, callee.reporter), 0.0)

    def _release(self, dialog: SimDialog) -> None:
        """Close the ports reserved for a call that will not (or no longer) send."""
        for body in (dialog.caller.sdp, dialog.callee.sdp):
            port = _own_port(body) or 0
            for sock in (self.reserved.pop(port, None), self.rtcp_reserved.pop(port, None)):
                if sock is not None:
                    sock.close()

    def _stop(self, callid: str) -> None:
        self.reports.pop(callid, None)
        for stream in self.calls.pop(callid, ()):
            stream.close()

    async def _run(self) -> None:
        owed, last = 0.0, time.monotonic()
        while True:
            await asyncio.sleep(self.burst)
            now = time.monotonic()
            owed += (now - last) / PTIME  # frames due, however late the loop woke up
            last = now
            frames = min(int(owed), int(2 * self.burst / PTIME))  # after a long stall, no flood
            owed -= int(owed)
            for streams in self.calls.values():
                for stream in streams:
                    stream.send(frames)
            self._report(time.time())

    def _report(self, now: float) -> None:
        """Each call's RTCP round when due: both endpoints report on each other (quality.py)."""
        for callid, (pair, due) in list(self.reports.items()):
            if now < due:
                continue
            caller, callee = self.calls[callid]
            caller.reporter.highest_seq, callee.reporter.highest_seq = callee.seq, caller.seq
            caller_packet, callee_packet = pair.reports(now)
            caller.send_report(caller_packet)
            callee.send_report(callee_packet)
            self.reports[callid] = (pair, now + REPORT_EVERY)


def _own_port(body: str) -> int | None:
    lines = sdp.media_lines(body)
    return lines[0][0] if lines and lines[0][1] == "RTP/AVP" and lines[0][0] else None


def _relay(body: str) -> tuple[str, int] | None:
    """(address, port) of the first m= line of an SDP RTPengine wrote: loopback only."""
    port = _own_port(body)
    address = next((line[9:].strip() for line in body.splitlines() if line.startswith("c=IN IP4 ")), "")
    return (address, port) if port and address and is_loopback(address) else None


def _bound_pair() -> tuple[socket.socket, socket.socket | None]:
    """An RTP socket on an even port the OS chose and an RTCP socket on the next one; after
    PAIR_ATTEMPTS tries, the RTP socket alone (that call then sends no RTCP)."""
    for _ in range(PAIR_ATTEMPTS):
        sock = _bound(0)
        port = sock.getsockname()[1]
        if port % 2 == 0:
            try:
                return sock, _bound(port + 1)
            except OSError:
                pass
        sock.close()
    return _bound(0), None


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # The relayed packets are not read: a small buffer, then the kernel drops them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock
