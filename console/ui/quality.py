"""Call quality and SIP health as Rich text (issue #15): the Calls screen's quality cell and its
sort order, the call detail's per-leg figures with the MOS progression, the Media screen's
per-interface figures, the Overview's calls by quality and SIP health series.  No textual import:
the panes place these texts."""

from __future__ import annotations

from typing import Callable, Sequence

from rich.text import Text

from console.model import CallQuality, InterfaceQuality, LegQuality, MediaState, QualityState, SipWindow
from console.views import SIP_SHARE_CLASSES, SipSeries

from . import format as fmt
from .format import field_lines

# The word carries the meaning (NO_COLOR); the colour only helps.
QUALITY_STYLE = {
    QualityState.OK: "green",
    QualityState.POOR: "bold red",
    QualityState.ONE_WAY: "bold red",
    QualityState.SILENT: "bold red",
    QualityState.NO_RTCP: "dim",
    QualityState.UNKNOWN: "dim",
}
# Worst first: the findings (silent, one-way, poor: lowest MOS first), then ok, then what is not known.
QUALITY_RANK = {QualityState.SILENT: 0, QualityState.ONE_WAY: 1, QualityState.POOR: 2, QualityState.OK: 3,
                QualityState.NO_RTCP: 4, QualityState.UNKNOWN: 5}
_BY_WORD = {state.value: state for state in QualityState}
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def quality_cell(quality: CallQuality | None) -> Text:
    """'2.9 poor', '4.3 ok', 'one-way', 'silent', 'no RTCP', 'unknown': the worst leg's MOS, then the flag."""
    if quality is None:
        return Text("unknown", style="dim")
    mos = quality.mos
    text = f"{mos:.1f} {quality.state.value}" if mos is not None and quality.state is not QualityState.UNKNOWN \
        else quality.state.value
    return Text(text, style=QUALITY_STYLE.get(quality.state, ""))


def quality_sort_key(cell: object) -> tuple[int, float]:
    """A quality cell's place, worst first: silent, one-way, poor, ok (each by MOS, lowest first),
    then no RTCP and unknown."""
    text = (cell.plain if isinstance(cell, Text) else str(cell or "")).strip()
    head, _, rest = text.partition(" ")
    try:
        mos, word = float(head), rest
    except ValueError:
        mos, word = 9.9, text
    state = _BY_WORD.get(word, QualityState.UNKNOWN)
    return QUALITY_RANK[state], mos


# --------------------------------------------------------------------------- sparklines


def sparkline(values: Sequence[float | None], times: Sequence[float] | None = None, width: int = 24,
              low: float | None = None, high: float | None = None, worst: Callable[..., float] = max) -> Text:
    """A one-line text plot, at most `width` cells, each value at its time (`times`, else evenly
    spaced); a cell without a sample is a space, an unknown value (None) a '·'; samples sharing a
    cell show the `worst` of them (max: a peak of failures is never hidden; min for a MOS).
    `low`/`high`: the scale (the values' own range by default)."""
    points = [(t, v) for t, v in zip(times if times is not None else range(len(values)), values)]
    known = [v for _, v in points if v is not None]
    if not points:
        return Text("")
    low = min(known) if low is None and known else (low or 0.0)
    high = max(known) if high is None and known else (high if high is not None else low)
    start, end = points[0][0], points[-1][0]
    width = max(1, min(width, len(points)))  # fewer samples than cells: one cell each, no stretching
    cells: list[str | None] = [None] * width
    shared: list[float | None] = [None] * width
    for n, (when, value) in enumerate(points):
        # at its time; samples all of one moment side by side
        column = round((when - start) / (end - start) * (width - 1)) if end > start else n
        column = min(width - 1, max(0, column))
        if value is None:
            cells[column] = cells[column] or "·"
            continue
        value = shared[column] = value if shared[column] is None else worst(shared[column], value)
        level = 0 if high <= low else round((min(max(value, low), high) - low) / (high - low) * (len(SPARK_BLOCKS) - 1))
        cells[column] = SPARK_BLOCKS[level]
    used = max(i for i, c in enumerate(cells) if c is not None) + 1
    return Text("".join(c or " " for c in cells[:used]))


def scale_note(values: Sequence[float | None], span_s: float, unit: str = "", digits: int = 1) -> Text:
    """'min 2.9 max 4.3 over 1m40s' (the scale and the time the plot covers)."""
    known = [v for v in values if v is not None]
    if not known:
        return Text("no value yet", style="dim")
    out = Text(f"min {min(known):.{digits}f}{unit} max {max(known):.{digits}f}{unit}", style="dim")
    if span_s > 0:
        out.append(f" over {fmt.duration(span_s)}", style="dim")
    return out


# --------------------------------------------------------------------------- the call detail


def quality_text(quality: CallQuality | None, now: float) -> Text:
    """The Quality section of a call detail: the state and why, then per leg the figures."""
    if quality is None:
        return Text("unknown (the call is not in the current list)", style="dim")
    out = Text.assemble(("state ", "bold"), quality_cell(quality), "  ")
    if quality.reason:
        out.append(quality.reason)
    if quality.as_of is not None:
        out.append(f"\nas of the last query, {fmt.age(max(0.0, now - quality.as_of))}", style="dim")
    for leg in quality.legs:
        out.append("\n\n")
        out.append_text(leg_text(leg))
    return out


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def leg_text(leg: LegQuality) -> Text:
    """One leg: what it sent (packets, last packet), and what its RTCP reported about the audio it
    receives (RTPengine's MOS for its SSRC: the quality this endpoint hears; jitter, loss, RTT)."""
    title = Text.assemble((leg.role or "leg", "bold"), " sends ")
    title.append("nothing expected (hold / recvonly)" if not leg.expected_to_send else
                 ("SILENT" if leg.silent else "RTP"), style="bold red" if leg.silent else "")
    rtcp = leg.rtcp
    fields: list[tuple[str, Text | str]] = [
        ("packets", fmt.count(leg.packets)),
        ("last packet", "never" if leg.last_packet_age_s is None else f"{leg.last_packet_age_s:.0f} s before the query"),
    ]
    if rtcp is None or rtcp.average is None:
        fields.append(("RTCP", Text("no RTCP — MOS unavailable", style="dim")))
    else:
        fields += [
            ("MOS heard", f"avg {_num(leg.mos)}  lowest {_num(leg.mos_min)}  highest {_num(leg.mos_max)}"
                    f"  ({rtcp.samples} report{'s' if rtcp.samples != 1 else ''})"),
            ("jitter", _num(leg.jitter_ms, 0, " ms")),
            ("loss", _num(leg.loss_pct, 1, " %")),
            ("round trip", _num(leg.rtt_ms, 0, " ms")),
            ("MOS over the call", progression_text(leg)),
        ]
    return Text.assemble(title, "\n", field_lines([(f"  {name}", value) for name, value in fields]))


def progression_text(leg: LegQuality, width: int = 24) -> Text:
    """RTPengine's MOS progression plotted at the samples' report times, with its scale and span."""
    samples = leg.rtcp.progression if leg.rtcp is not None else ()
    if not samples:
        return Text("no progression yet", style="dim")
    step = leg.rtcp.progression_interval_s or 1
    times = [float(s.reported_at) if s.reported_at else float(n * step) for n, s in enumerate(samples)]
    values = [s.mos for s in samples]
    out = Text("[", end="")
    out.append_text(sparkline(values, times, width, low=1.0, high=5.0, worst=min))
    out.append("] ")
    out.append_text(scale_note(values, times[-1] - times[0]))
    out.append(f"  ({len(samples)} samples, scale 1–5)", style="dim")
    return out


# --------------------------------------------------------------------------- Media screen


def interface_cells(quality: InterfaceQuality | None) -> tuple[Text, Text, Text]:
    """(MOS, loss, jitter) of one interface; '-' where the daemon has no sample."""
    if quality is None:
        return Text("-", style="dim"), Text("-", style="dim"), Text("-", style="dim")
    mos = Text(_num(quality.mos), justify="right")
    return mos, Text(_num(quality.loss_pct, 1, " %"), justify="right"), Text(_num(quality.jitter_ms, 0, " ms"), justify="right")


def interface_quality_note(media: MediaState) -> Text:
    """Why the per-interface columns are empty, and the global average the daemon keeps."""
    totals = media.totals
    out = Text(end="")
    if media.interface_quality is None:
        out.append("per-interface MOS/loss/jitter: not reported by this RTPengine (12.4+ reports them)", style="dim")
    if totals.mos_average is not None:
        out.append(("  " if out.plain else "") + f"MOS avg {totals.mos_average:.1f} over {fmt.count(totals.mos_samples)} samples")
        if totals.loss_average_pct is not None:
            out.append(f", loss {totals.loss_average_pct:.1f} %")
        if totals.jitter_average_ms is not None:
            out.append(f", jitter {totals.jitter_average_ms:.0f} ms")
    return out


# --------------------------------------------------------------------------- Overview


def quality_counts_text(counts: dict[str, int], calls: int) -> Text:
    """'ok 3  poor 1  one-way 1  silent 1  unknown 2 (no RTCP 1)'."""
    out = Text("calls by quality  ", style="bold", end="")
    if not calls:
        out.append("no calls", style="dim")
        return out
    for word in ("ok", "poor", "one-way", "silent", "unknown"):
        n = counts.get(word, 0)
        style = "bold red" if n and word in ("poor", "one-way", "silent") else ""
        out.append(f"{word} {n}", style=style)
        out.append("  ")
    if counts.get("no RTCP"):
        out.append(f"(no RTCP {counts['no RTCP']})", style="dim")
    return out


def sip_health_text(series: SipSeries, window: SipWindow | None, window_s: float, width: int = 30) -> Text:
    """Reply classes per second and the 4xx/5xx/6xx share as sparklines over the kept polls, then
    the checks' window: finals, shares, INVITE timeouts, retransmissions."""
    out = Text("SIP health", style="bold", end="")
    if not series.times:
        out.append("  needs two samples of the sl:/tm: statistics (next poll)", style="dim")
    else:
        out.append(f"  (last {fmt.duration(series.span_s)}, one point per poll)", style="dim")
        width_label = 8
        for cls, values in series.per_s.items():
            _series_line(out, f"{cls}/s", values, series.times, width, width_label, "/s")
        for cls in SIP_SHARE_CLASSES:
            _series_line(out, f"{cls} %", series.share.get(cls, ()), series.times, width, width_label, " %",
                         low=0.0, high=100.0)
        _series_line(out, "retrans", [float(v) if v is not None else None for v in series.retransmissions],
                     series.times, width, width_label, "", digits=0)
        _series_line(out, "INV t/o", [float(v) if v is not None else None for v in series.timeouts_inv],
                     series.times, width, width_label, "", digits=0)
    out.append("\n")
    out.append_text(window_text(window, window_s))
    return out


def _series_line(out: Text, label: str, values: Sequence[float | None], times: Sequence[float], width: int,
                 label_width: int, unit: str, *, low: float | None = None, high: float | None = None,
                 digits: int = 1) -> None:
    out.append(f"\n  {label:<{label_width}}")
    known = [v for v in values if v is not None]
    if not known:
        out.append("not reported" if not values else "no final reply yet", style="dim")
        return
    out.append_text(sparkline(values, times, width, low=low if low is not None else 0.0, high=high))
    last = next((v for v in reversed(values) if v is not None), None)
    out.append(f"  last {last:.{digits}f}{unit}  ")
    out.append_text(scale_note(values, 0, unit, digits))


def window_text(window: SipWindow | None, window_s: float) -> Text:
    """The window opensips.sip_failures judges: 'last 60s: 120 finals, 4xx 2.0 %, ...'."""
    if window is None:
        return Text(f"window (~{window_s:g} s): unknown until two samples of the sl:/tm: statistics", style="dim")
    out = Text(f"last {fmt.duration(window.seconds)}: {window.total:,} final replies", end="")
    for cls in SIP_SHARE_CLASSES:
        share = window.share(cls)
        out.append(f", {cls} " + ("-" if share is None else f"{share:.1f} %"),
                   style="bold red" if share and cls in ("5xx", "6xx") else "")
    out.append(f", INVITE timeouts {fmt.count(window.timeouts_inv)}, retransmissions {fmt.count(window.retransmissions)}")
    return out
