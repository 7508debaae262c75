"""Honest check texts (#12): each rtpengine.sessions case has its own remedy, and an OK summary
says what its evidence counts."""

from __future__ import annotations

from console.config import Config, Thresholds
from console.model import Dialog, MediaSession, MediaState, SignallingState, Snapshot, Status
from console.plugins import CheckContext
from opsconsole_rtpengine import checks

NOW = 1_800_000_000.0


def dialog(callid: str, state: int = 4) -> Dialog:
    return Dialog(id=f"id-{callid}", callid=callid, state=state, start=int(NOW) - 100)


def run(sessions, dialogs, zombie_age=60):
    media = MediaState(sessions=tuple(sessions), sessions_total=len(sessions))
    snap = Snapshot(collected_at=NOW, media=media, signalling=SignallingState(dialogs=tuple(dialogs)))
    config = Config(ng=None, cli=None, thresholds=Thresholds(zombie_age_s=zombie_age))
    return checks.check_sessions(CheckContext(snap, config, NOW))


def test_dialogs_without_media_get_their_own_remedy_not_the_zombie_one():
    no_media = run([MediaSession("a", created=int(NOW) - 100)], [dialog("a"), dialog("b")])
    zombie = run([MediaSession("a", created=int(NOW) - 100), MediaSession("z", created=int(NOW) - 1000)],
                 [dialog("a")])
    assert no_media.status is zombie.status is Status.WARN
    assert "confirmed dialogs have no rtpengine session" in no_media.summary
    assert "terminate" not in no_media.remedy and "--timeout" not in no_media.remedy  # that is the zombies' cure
    assert "rtpengine_offer" in no_media.remedy
    assert "terminate" in zombie.remedy and "rtpengine_offer" not in zombie.remedy
    both = run([MediaSession("z", created=int(NOW) - 1000)], [dialog("b")])
    assert "terminate" in both.remedy and "rtpengine_offer" in both.remedy


def test_ok_summary_agrees_with_its_evidence():
    """10 sessions, 8 dialogs: the 2 sessions without a dialog are young / deleted (no finding)."""
    sessions = [MediaSession(f"c{n}", created=int(NOW) - 100) for n in range(8)]
    sessions += [MediaSession("young", created=int(NOW) - 5), MediaSession("bye", created=int(NOW) - 500, deleted=True)]
    result = run(sessions, [dialog(f"c{n}") for n in range(8)])
    assert result.status is Status.OK
    evidence = result.evidence
    assert evidence["media sessions"] == 10 and evidence["dialogs"] == 8
    assert evidence["sessions with a dialog"] == 8 and evidence["sessions without a dialog"] == 2
    # every count the summary states is one the evidence holds: never "10 sessions match" next to 8 dialogs
    assert not result.summary.startswith("10 media sessions match")
    assert result.summary.startswith(f"{evidence['sessions with a dialog']} media sessions match")
    assert f"of {evidence['dialogs']} dialogs" in result.summary
    assert "1 without a dialog are deleted" in result.summary
    assert "1 without a dialog are younger than 60 s" in result.summary
