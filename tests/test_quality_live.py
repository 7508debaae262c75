"""The live session's call quality and SIP health (#15), headless: each call judged as the snapshot
judges it (and judged again only when its call changed), calls counted by quality, the SIP counters of
every poll kept as reply-class rate and share series; the text sparkline and the worst-first order."""

from __future__ import annotations

from dataclasses import replace

from console.config import Thresholds
from console.live_state import LiveState
from console.model import QualityState, SipCounters, call_quality
from console.plugins import CollectOptions
from console.ui.quality import QUALITY_RANK, quality_cell, quality_sort_key, sparkline
from console.views import sip_series
from ui.data import NOW, lab_snapshot


def counters(at: float, ok: int, s404: int, f503: int, retrans: int = 0, timeouts: int = 0) -> SipCounters:
    """sl: 404 replies (stateless), tm: 2xx and 5xx transactions."""
    return SipCounters(at=at, sl_replies=(0, 0, 0, s404, 0, 0), tm_transactions=(ok, 0, 0, f503, 0),
                       retransmissions=retrans, timeouts_inv=timeouts)


def test_sip_series_rates_and_shares_between_consecutive_samples():
    samples = [counters(0, 0, 0, 0), counters(2, 10, 0, 0), counters(4, 16, 2, 2, retrans=3, timeouts=1),
               counters(6, 16, 2, 2, retrans=3, timeouts=1)]
    series = sip_series(samples)
    assert series.times == (2, 4, 6) and series.span_s == 4
    assert series.per_s["2xx"] == (5.0, 3.0, 0.0) and series.per_s["4xx"] == (0.0, 1.0, 0.0)
    assert series.share["5xx"] == (0.0, 20.0, None)  # no final reply in the last interval: unknown, not 0 %
    assert series.retransmissions == (0, 3, 0) and series.timeouts_inv == (0, 1, 0)
    # a restart (counters backwards) breaks the interval, it is not a negative rate
    assert sip_series([counters(0, 50, 0, 0), counters(2, 3, 0, 0)]).times == ()


def test_the_live_state_keeps_the_sip_samples_of_every_poll():
    state = LiveState()
    snap = lab_snapshot()
    for n, sample in enumerate([counters(NOW, 0, 0, 0), counters(NOW + 2, 8, 1, 1)]):
        sig = replace(snap.signalling, overview=replace(snap.signalling.overview, sip=sample))
        state.apply(replace(snap, collected_at=NOW + 2 * n, signalling=sig), CollectOptions())
    view = state.view()
    assert len(view.sip_samples) == 2 and view.sip_health().share["4xx"] == (10.0,)
    assert view.sip_health() is view.sip_health()  # one series per sample list (the Overview asks every second)


def test_each_call_is_judged_as_the_snapshot_judges_it_and_again_only_when_it_changed():
    th = Thresholds()
    state = LiveState(thresholds=th)
    snap = lab_snapshot()
    state.apply(snap, CollectOptions())
    assert state.calls and set(state.qualities) == {c.callid for c in state.calls}
    for call in state.calls:
        assert state.quality(call.callid) == call_quality(call, snap.collected_at, mos_poor=th.mos_poor,
                                                          silent_after_s=th.silent_after_s)
    first = dict(state.qualities)
    state.apply(replace(snap, collected_at=snap.collected_at + 2), CollectOptions())
    kept = [c for c in state.calls if state.quality(c.callid) is first.get(c.callid)]
    assert kept  # unchanged calls keep their verdict object (no re-judging 1 000 calls every poll)
    counts = state.view().quality_counts()
    assert sum(counts[w] for w in ("ok", "poor", "one-way", "silent", "unknown")) == len(state.calls)
    assert counts["no RTCP"] == sum(1 for q in state.qualities.values() if q.state is QualityState.NO_RTCP)


def test_the_quality_cell_sorts_worst_first_and_says_unknown_in_words():
    from console.model import CallQuality

    def cell(state: QualityState, mos: float | None = None):
        leg = None
        if mos is not None:
            from console.model import LegQuality, MosSample, SsrcQuality

            leg = LegQuality("t", "caller", rtcp=SsrcQuality(1, average=MosSample(mos=mos)))
        return quality_cell(CallQuality(state, caller=leg))

    cells = [cell(QualityState.OK, 4.3), cell(QualityState.UNKNOWN), cell(QualityState.POOR, 2.1),
             cell(QualityState.NO_RTCP), cell(QualityState.SILENT), cell(QualityState.POOR, 3.0),
             cell(QualityState.ONE_WAY, 4.0), quality_cell(None)]
    assert [c.plain for c in cells] == ["4.3 ok", "unknown", "2.1 poor", "no RTCP", "silent", "3.0 poor",
                                        "4.0 one-way", "unknown"]
    ordered = [c.plain for c in sorted(cells, key=quality_sort_key)]
    assert ordered == ["silent", "4.0 one-way", "2.1 poor", "3.0 poor", "4.3 ok", "no RTCP", "unknown", "unknown"]
    assert len(QUALITY_RANK) == len(QualityState)


def test_the_sparkline_plots_at_sample_times_with_its_scale():
    line = sparkline([1.0, 1.0, 5.0], [0, 1, 100], width=10, low=1.0, high=5.0).plain
    assert line == "▁ █"  # two early samples share a cell, then a gap where no sample fell
    assert sparkline([None, 5.0], [0, 10], low=1.0, high=5.0).plain == "·█"  # unknown is not the bottom
    assert sparkline([2.0, 4.0, 3.0, 1.0], None, width=2, worst=min).plain == "▃▁"  # a cell shows its worst
    assert sparkline([], None).plain == ""
