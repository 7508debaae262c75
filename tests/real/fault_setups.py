"""The fault matrix of issue #12 for the live console (tests/real/test_real_tui.py), one Fault per row.

Each fault: how its platform starts (start_real_platform options), what is done to it while the console runs
(`inject`, blocking: run it in a thread), the config and timeout both the console and `diagnose` get, and what
must be found (`expect`, on diagnose's checks and on the screens' text).  The setups are those of
test_real_diagnose.py (ng delete of a held call's session, ng offer with no call, a 22-port range, daemons stopped
by PID).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from real.tui_truth import calls_screen
from support.rtpengine_daemon import free_port, plain_sdp

HEALTHY = {"ok", "skip", "unknown"}  # unknown: e.g. calls.* on media legs diagnose does not query: no finding
GHOST = "ghost-offer-without-call@127.0.0.1"


@dataclass
class Fault:
    name: str
    platform_options: Callable[..., dict[str, Any]] = lambda fault: {}   # start_real_platform's options
    injector: Callable[..., None] = lambda fault, platform: None        # done while the console runs
    check_expect: Callable[..., None] = lambda *args: None
    config: str = ""
    timeout: float = 3.0
    interval: float = 1.0
    screens: str = ""            # the screen keys whose text `expect` reads (5, Checks, always)
    exit_code: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # what a setup learnt, for its expect

    def start_options(self) -> dict[str, Any]:
        self.state.clear()
        return self.platform_options(self)

    def inject(self, platform) -> None:
        self.injector(self, platform)

    def expect(self, platform, on_screen: dict[str, str], checks: dict[str, dict], screens: dict[str, str]) -> None:
        self.check_expect(self, platform, on_screen, checks, screens)


def _no_false_marks(text: str) -> None:
    calls = calls_screen(text)
    assert calls.no_media_rows == [] and calls.no_dialog_rows == [], text


# ------------------------------------------------------------ healthy


def _expect_healthy(fault, platform, on_screen, checks, screens) -> None:
    findings = {cid: checks[cid]["summary"] for cid, status in on_screen.items() if status not in HEALTHY}
    assert not findings, findings
    for cid in ("opensips.mi", "opensips.rtpengine_sock", "opensips.ws", "rtpengine.ng", "rtpengine.cli",
                "rtpengine.ports", "rtpengine.sessions"):
        assert on_screen[cid] == "ok", checks[cid]
    _no_false_marks(screens["3"])
    assert calls_screen(screens["3"]).calls == platform.expected_dialogs, screens["3"]


# ------------------------------------------------------------ RTPengine stopped


def _expect_rtpengine_stopped(fault, platform, on_screen, checks, screens) -> None:
    assert on_screen["rtpengine.ng"] == on_screen["rtpengine.cli"] == "fail"
    assert on_screen["opensips.rtpengine_sock"] == "fail"
    assert f"udp:127.0.0.1:{platform.ng[1]}" in str(checks["opensips.rtpengine_sock"])
    assert on_screen["opensips.mi"] == "ok"
    assert "rtpengine FAIL" in screens["5"]


# ------------------------------------------------------------ rtpengine_sock at a dead port


def _dead_sock(fault) -> dict[str, Any]:
    fault.state["dead"] = f"udp:127.0.0.1:{free_port()}"  # nothing listens there
    return {"traffic": False, "rtpengine_sock": fault.state["dead"]}


def _expect_dead_sock(fault, platform, on_screen, checks, screens) -> None:
    assert on_screen["opensips.rtpengine_sock"] == "fail"
    assert fault.state["dead"] in str(checks["opensips.rtpengine_sock"])
    assert on_screen["rtpengine.ng"] == "ok"


# ------------------------------------------------------------ a dialog whose media session was deleted


def _delete_media(fault, platform) -> None:
    dialog = next(d for d in platform.opensips.dialogs() if d["callid"].startswith("call-udp-"))
    fault.state["victim"] = dialog
    platform.ng_request({"command": "delete", "call-id": dialog["callid"]})
    assert dialog["callid"] not in platform.ng_calls()


def _expect_media_deleted(fault, platform, on_screen, checks, screens) -> None:
    victim = fault.state["victim"]
    assert on_screen["rtpengine.sessions"] == "warn"
    assert checks["rtpengine.sessions"]["evidence"]["dialogs without media"] == [victim["callid"]]
    user = lambda uri: uri.split(":", 1)[1].split("@", 1)[0]  # noqa: E731
    calls = calls_screen(screens["3"])
    assert calls.no_media_rows == [(user(victim["from_uri"]), user(victim["to_uri"]))], screens["3"]
    assert calls.without_media == 1 and calls.no_dialog_rows == [], screens["3"]


# ------------------------------------------------------------ a media session without a SIP dialog


def _offer_without_call(fault, platform) -> None:
    platform.ng_request({"command": "offer", "call-id": GHOST, "from-tag": "ghost-ft", "sdp": plain_sdp(40000),
                         "transport-protocol": "RTP/AVP", "ICE": "remove"})


def _expect_zombie(fault, platform, on_screen, checks, screens) -> None:
    assert on_screen["rtpengine.sessions"] == "warn"
    assert "1 zombie sessions" in checks["rtpengine.sessions"]["summary"]
    calls = calls_screen(screens["3"])
    assert len(calls.no_dialog_rows) == 1 and GHOST.startswith(calls.no_dialog_rows[0]), screens["3"]
    assert calls.without_dialog == 1 and calls.no_media_rows == [], screens["3"]


# ------------------------------------------------------------ media port range nearly exhausted


def _expect_ports(fault, platform, on_screen, checks, screens) -> None:
    # The traffic holds 5 calls x 4 ports = 20 ports of 22: past ports_warn (80 %), below ports_fail (95 %).
    assert on_screen["rtpengine.ports"] == "warn"
    assert "20/22" in screens["1"], screens["1"]
    _no_false_marks(screens["3"])


# ------------------------------------------------------------ OpenSIPS stopped mid-session


def _expect_opensips_stopped(fault, platform, on_screen, checks, screens) -> None:
    assert on_screen["opensips.mi"] == "fail"
    assert str(platform.opensips.http_port) in str(checks["opensips.mi"])
    assert on_screen["rtpengine.sessions"] == "skip"  # dialogs unknown: no "without dialog" finding
    assert on_screen["rtpengine.ng"] == "ok"
    calls = calls_screen(screens["3"])
    assert calls.no_dialog_rows == [] and not calls.without_dialog, screens["3"]
    assert "opensips FAIL" in screens["3"]


FAULTS = [
    Fault("healthy", check_expect=_expect_healthy, screens="3"),
    Fault("rtpengine_stopped", platform_options=lambda fault: {"traffic": False},
          injector=lambda fault, platform: platform.rtpengine.stop(), timeout=1.0,
          check_expect=_expect_rtpengine_stopped, exit_code=2),
    Fault("rtpengine_sock_dead_port", platform_options=_dead_sock, check_expect=_expect_dead_sock, exit_code=2),
    Fault("media_session_deleted", injector=_delete_media, check_expect=_expect_media_deleted, screens="3", exit_code=1),
    Fault("media_session_without_dialog", platform_options=lambda fault: {"traffic": False}, injector=_offer_without_call,
          config="[thresholds]\nzombie_age_s = 0\n", check_expect=_expect_zombie, screens="3", exit_code=1),
    Fault("ports_nearly_exhausted", platform_options=lambda fault: {"rtpengine_ports": 22},
          check_expect=_expect_ports, screens="13", exit_code=1),
    Fault("opensips_stopped", injector=lambda fault, platform: platform.opensips.stop(), timeout=1.0,
          check_expect=_expect_opensips_stopped, screens="3", exit_code=2),
]
