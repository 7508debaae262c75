"""Human-readable views (Rich) of a snapshot and a diagnose run.

Readable at 80 columns; every status is a word (OK/WARN/FAIL/UNKNOWN/SKIP)
as well as a colour, so NO_COLOR and pipes lose nothing.  Every string that
may come from the network goes through `safe_text` — never through markup.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Sequence

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..config import Thresholds
from ..model import CallQuality, CheckResult, QualityState, SignallingState, Snapshot, Status, call_quality, overall_status
from ..plugins import OverviewSection
from ..snapshot import relay_version
from .safe import safe_text
from .topology import render_topology

STATUS_STYLE = {
    Status.OK: "bold green",
    Status.SKIP: "dim",
    Status.UNKNOWN: "bold magenta",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
}


def render_diagnose(results: list[CheckResult], *, host: str, elapsed_ms: float, verbose: bool = False) -> Group:
    overall = overall_status([r.status for r in results])
    head = Text()
    head.append("opsconsole diagnose ", style="bold")
    head.append_text(safe_text(host))
    head.append(f"  {time.strftime('%Y-%m-%d %H:%M:%S')}  ")
    head.append(overall.word, style=STATUS_STYLE[overall])
    # A grid keeps wrapped summaries aligned under their column at 80 columns.
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=7, no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    for r in results:
        grid.add_row(Text(r.status.word, style=STATUS_STYLE[r.status]), Text(r.id, style="bold"), safe_text(r.summary))
        if r.status not in (Status.OK, Status.SKIP) and r.remedy:
            grid.add_row("", "", Text("fix: ", style="cyan") + safe_text(r.remedy))
        if verbose and r.evidence:
            for key, value in r.evidence.items():
                grid.add_row("", Text(f"  {key}:", style="dim"), safe_text(value, limit=300))
    counts = Counter(r.status for r in results)
    tail = Text(f"{len(results)} checks: ")
    tail.append(", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s]))
    tail.append(f"  ({elapsed_ms:.0f} ms)")
    return Group(head, Text(""), grid, Text(""), tail)


def _fmt_uptime(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def _num(value) -> str:
    return "?" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))


def render_overview_section(section: OverviewSection) -> Text:
    """A plugin's Overview block on one line: its title, its status word, its (label, value) pairs;
    all of it plugin (possibly network) text, so never markup."""
    line = Text()
    line.append_text(safe_text(section.title, 60, style="bold"))
    if section.status is not None:
        line.append(f" {section.status.value.upper()}", style="bold")
    for label, value in section.lines:
        line.append("  ")
        line.append_text(safe_text(label, 40))
        line.append(" ")
        line.append_text(safe_text(value, 80))
    return line


QUALITY_STYLE = {
    QualityState.OK: "green",
    QualityState.POOR: "bold yellow",
    QualityState.ONE_WAY: "bold red",
    QualityState.SILENT: "bold red",
    QualityState.NO_RTCP: "dim",
    QualityState.UNKNOWN: "dim",
}


def quality_text(quality: CallQuality) -> Text:
    """A call's quality cell: the state word, then the MOS or which direction is silent."""
    text = Text(quality.state.value, style=QUALITY_STYLE[quality.state])
    if quality.state in (QualityState.ONE_WAY, QualityState.SILENT):
        text.append(" " + ", ".join(quality.silent_directions))
    elif quality.mos is not None:
        text.append(f" MOS {quality.mos:.1f}")
        if quality.mos_min is not None and quality.mos_min < quality.mos:
            text.append(f" (min {quality.mos_min:.1f})")
    elif quality.state is QualityState.UNKNOWN and quality.reason:
        text.append(f" ({quality.reason})")
    return text


def sip_health_text(sig: SignallingState) -> Text | None:
    """'SIP final replies since start: 2xx … 6xx …; last 0.3 s: …; retransmissions …; INVITE timeouts …'."""
    counters = sig.overview.sip
    if counters is None:
        return None
    line = Text("SIP final replies ", style="bold")
    line.append("since start: " + " ".join(f"{cls} {_num(counters.finals(cls))}"
                                            for cls in ("2xx", "3xx", "4xx", "5xx", "6xx")))
    window = sig.sip_window
    if window is not None:
        share = window.share("5xx", "6xx")
        line.append(f"; last {window.seconds:.1f} s: {window.total} replies")
        if share is not None:
            line.append(f", 5xx+6xx {share:.1f}%")
    line.append(f"; retransmissions {_num(counters.retransmissions)}; INVITE timeouts {_num(counters.timeouts_inv)}")
    return line


def render_snapshot(snap: Snapshot, *, limit: int = 50, clip_ids: bool = True,
                    sections: Sequence[OverviewSection] = (), thresholds: Thresholds | None = None) -> Group:
    """`clip_ids=False` (output that is not a terminal): AoRs and Call-IDs in full, for grep.
    `sections`: the plugins' own Overview blocks (their `overview` hook).
    `thresholds`: the configured ones, for the calls' quality state (default: the defaults)."""
    th = thresholds or Thresholds()
    id_clip = 40 if clip_ids else 0
    parts: list = []
    src = Table(title="Sources", title_justify="left", expand=False)
    for col in ("source", "state", "ms", "error"):
        src.add_column(col)
    for name, status in snap.sources.items():
        src.add_row(name, Text("OK", style="green") if status.ok else Text("FAIL", style="bold red"),
                    f"{status.elapsed_ms:.0f}", safe_text(status.error))
    parts.append(src)
    if snap.discovery:
        parts.append(Text("Discovery: ", style="bold") + safe_text("; ".join(snap.discovery)))

    sig = snap.signalling
    if sig is not None:
        ov = sig.overview
        t = Text()
        t.append("OpenSIPS ", style="bold")
        t.append_text(safe_text(ov.version or ov.server or "?"))
        t.append(f"  up {_fmt_uptime(ov.uptime_s)}  load {_num(ov.load)}%  ")
        shm = ov.shm_percent
        t.append(f"shm {shm:.1f}%  " if shm is not None else "shm ?  ")
        t.append(f"dialogs {_num(ov.active_dialogs)}  contacts {_num(ov.registered_contacts)}")
        parts.append(t)
        if (sip_line := sip_health_text(sig)) is not None:
            parts.append(sip_line)
        if sig.contacts is not None:
            by_tr = Counter((c.transport or "?").upper() for c in sig.contacts)
            ws = sum(1 for c in sig.contacts if c.ws)
            line = Text("Registrations by transport: " + ", ".join(f"{k} {v}" for k, v in sorted(by_tr.items())))
            line.append(f"  (WS-flagged {ws})")
            registered = ov.registered_contacts
            if sig.contacts_mode == "events-partial" or (registered is not None and registered != len(sig.contacts)):
                line.append(f"  of {len(sig.contacts)} listed, not of {_num(registered)} registered")
            parts.append(line)
            table = Table(title=f"Registrations ({len(sig.contacts)})", title_justify="left")
            for col in ("AoR", "transport", "socket", "user agent", "expires"):
                table.add_column(col, overflow="fold")
            for c in sig.contacts[:limit]:
                tr = (c.transport or "?").upper() + (" [WS]" if c.ws and c.transport not in ("ws", "wss") else "")
                table.add_row(safe_text(c.aor, id_clip), Text(tr), safe_text(c.socket), safe_text(c.user_agent, 40),
                              Text(str(c.expires) if c.expires is not None else c.expires_state))
            if len(sig.contacts) > limit:
                table.caption = f"… {len(sig.contacts) - limit} more (use --json for all)"
            parts.append(table)
        elif sig.contacts_note:
            parts.append(Text("Registrations: ") + safe_text(sig.contacts_note))
        for err in sig.errors:
            parts.append(Text("OpenSIPS: ", style="yellow") + safe_text(err))
    parts.extend(render_topology(snap))  # RTPengine sets and clusterer as OpenSIPS sees them (#16)

    media = snap.media
    if media is not None:
        t = Text()
        t.append("RTPengine ", style="bold")
        t.append_text(safe_text(media.target))
        version = relay_version(media, snap.host)
        if version:
            t.append("  ")
            t.append_text(safe_text(version))
        t.append(f"  ng {'OK' if media.ng_ok else 'FAIL'}  cli {'OK' if media.cli_ok else 'FAIL'}  ")
        t.append(f"sessions {len(media.sessions)}  ports {media.ports.used}/{media.ports.total}")
        if media.totals.mos_average is not None:
            t.append(f"  MOS avg {media.totals.mos_average:.1f} ({_num(media.totals.mos_samples)} samples)")
        parts.append(t)
        for iface in media.interface_quality or ():
            parts.append(Text(f"  interface {iface.name} {iface.address}: MOS {_num(iface.mos)}  "
                              f"loss {_num(iface.loss_pct)}%  jitter {_num(iface.jitter_ms)} ms"))
        for err in media.errors:
            parts.append(Text("RTPengine: ", style="yellow") + safe_text(err))

    host = snap.host
    if host is not None:
        t = Text()
        t.append("Host ", style="bold")
        t.append_text(safe_text(host.hostname or "?"))
        for label, procs in (("rtpengine", host.rtpengine), ("opensips", host.opensips)):
            t.append(f"  {label}: ")
            if not procs:
                t.append("not running")
            for proc in procs:
                t.append(f"pid {proc.pid}")
                note = proc.error or getattr(proc, "suspect", "")
                if note:
                    t.append(" (")
                    t.append_text(safe_text(note, 80))
                    t.append(")")
                t.append(" ")
        parts.append(t)
        for err in host.errors:
            parts.append(Text("Host: ", style="yellow") + safe_text(err))

    parts.extend(render_overview_section(section) for section in sections)

    if snap.calls:
        table = Table(title=f"Calls ({len(snap.calls)})", title_justify="left")
        for col in ("call-id", "state", "bridge", "dialog", "media", "ports", "quality"):
            table.add_column(col, overflow="fold")
        for call in snap.calls[:limit]:
            quality = call_quality(call, snap.collected_at, mos_poor=th.mos_poor, silent_after_s=th.silent_after_s)
            table.add_row(
                safe_text(call.callid, id_clip and 36),
                Text(call.dialog.state_name if call.dialog else "-"),
                Text(call.bridge),
                _side(call.has_dialog, call.dialog_known, "NO DIALOG"),
                _side(call.has_media, call.media_known, "NO MEDIA"),
                Text(" ".join(map(str, call.media.ports[:4])) if call.media else ""),
                quality_text(quality),
            )
        parts.append(table)
    return Group(*parts)


def _side(present: bool, known: bool, missing: str) -> Text:
    """A call's dialog/media cell: 'yes', the orphan mark when the list says so, '?' when unknown."""
    if present:
        return Text("yes")
    return Text(missing, style="bold yellow") if known else Text("?")


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich's default exits 1, which is "a source failed" for `snapshot`: let the CLI give a reader
        # that left (`| head`) its own exit code (console.cli EXIT["broken_pipe"]).
        self.quiet = True
        raise BrokenPipeError


def make_console(stderr: bool = False) -> Console:
    # Rich already honours TERM=dumb and non-TTY output (plain text).  For NO_COLOR it
    # drops colours only and keeps bold; we drop every escape sequence (no-color.org:
    # any non-empty value).
    no_color = bool(os.environ.get("NO_COLOR"))
    console = _Console(stderr=stderr, highlight=False, soft_wrap=False, no_color=no_color,
                       color_system=None if no_color else "auto")
    if not console.is_terminal:
        # A pipe or a file has no width: Rich's 80 would wrap and fold identifiers, and
        # `grep` for a full Call-ID would find nothing.  Lines are as long as their content.
        console.width = UNWRAPPED_WIDTH
        console.file = _TrailingSpaceStripper(console.file)
    return console


class _TrailingSpaceStripper:
    """A pipe or a file gets lines without the padding a wide table adds to every row (a 300-column
    remedy made every diagnose line 300 characters long).  Complete lines only: a partial one waits
    for its end, and a flush writes it as it is."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.stream.write("\n".join(line.rstrip(" ") for line in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


UNWRAPPED_WIDTH = 100_000
