"""Which media quality each demo call has, so the screens show every quality state.

Calls get their profile in turn as they are answered (`Profiles`), from a wheel that puts a good, a
poor and a one-way call first: even the few plain-RTP calls of a fresh demo show the states.  The
real RTP pump (rtp.py) sends what the profile says, RTCP included, so the real RTPengine computes
the MOS itself; the simulated relay (media_sim.py) answers its queries with what RTPengine would.
(WebRTC legs are silent anyway in the demo: they would need a DTLS handshake.)
"""

from __future__ import annotations

from .rtcp import Reception

OK, POOR, ONE_WAY, SILENT, NO_RTCP = "ok", "poor", "one-way", "silent", "no RTCP"
WHEEL = (OK, POOR, ONE_WAY, NO_RTCP, OK, SILENT, OK, NO_RTCP)
KEEP = 4096  # profiles remembered (the oldest calls' are dropped: their calls ended long ago)

GOOD = Reception(loss_pct=0, jitter_ms=5, rtt_leg_ms=20)
BAD = Reception(loss_pct=5, jitter_ms=160, rtt_leg_ms=20, cumulative_lost=40)  # RTPengine: MOS 2.8


class Profiles:
    """Call-ID -> profile, handed out in turn from WHEEL on first sight."""

    def __init__(self) -> None:
        self._of: dict[str, str] = {}
        self._turn = 0

    def of(self, callid: str) -> str:
        kind = self._of.get(callid)
        if kind is None:
            kind = self._of[callid] = WHEEL[self._turn % len(WHEEL)]
            self._turn += 1
            if len(self._of) > KEEP:
                del self._of[next(iter(self._of))]
        return kind


def sends(kind: str, role: str) -> bool:
    """Whether the caller's / callee's endpoint sends RTP in this profile."""
    return not (kind == SILENT or (kind == ONE_WAY and role == "callee"))


def receptions(kind: str) -> tuple[Reception, Reception] | None:
    """(what the caller reports, what the callee reports) by RTCP; None: no RTCP in this profile."""
    if kind in (NO_RTCP, SILENT):
        return None
    return (BAD, GOOD) if kind == POOR else (GOOD, GOOD)
