"""Screen 1, Overview: OpenSIPS and RTPengine at a glance, the checks' verdict, trends, sources."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from console.live_state import LiveView
from console.model import Status, overall_status
from console.render.text import render_overview_section
from console.snapshot import relay_version

from . import format as fmt
from .format import field_lines, stale_note
from .quality import quality_counts_text, scale_note, sip_health_text, sparkline
from .rows import Pane
from .safe import safe_text, show_text


class OverviewPane(Pane):
    title = "Overview"
    SPARKS = (("registrations", "Registrations"), ("dialogs", "Dialogs"), ("sessions", "Media sessions"),
              ("ports", "Ports used"), ("load", "Load %"))

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="overview-scroll"):
            with Horizontal(id="overview-top"):
                yield Static(id="overview-sip", classes="panel")
                yield Static(id="overview-media", classes="panel")
            yield Static(id="overview-checks", classes="panel")
            yield Static(id="overview-quality", classes="panel")  # calls by quality, SIP health (#15)
            plugins = Static(id="overview-plugins", classes="panel")
            plugins.display = False  # shown once a plugin offers an Overview block
            yield plugins
            with Vertical(id="overview-trends", classes="panel"):
                for key, label in self.SPARKS:
                    with Horizontal(classes="trend"):
                        yield Static(Text(label), classes="trend-label")
                        yield Static(id=f"spark-{key}", classes="trend-spark")  # samples at their time
                        yield Static(id=f"last-{key}", classes="trend-last")
            yield Static(id="overview-sources", classes="panel")

    def focus_main(self) -> None:
        self.query_one("#overview-scroll").focus()

    def render_view(self, state: LiveView, now: float) -> None:
        show_text(self.query_one("#overview-sip", Static), self._sip(state, now))
        show_text(self.query_one("#overview-media", Static), self._media(state, now))
        show_text(self.query_one("#overview-checks", Static), self._checks(state, now))
        show_text(self.query_one("#overview-quality", Static), quality_panel(state))
        plugins = self.query_one("#overview-plugins", Static)
        plugins.display = bool(state.plugin_sections)  # a block only when a plugin offers one
        if state.plugin_sections:
            show_text(plugins, Text("\n").join(render_overview_section(s) for s in state.plugin_sections))
        show_text(self.query_one("#overview-sources", Static), sources_text(state, now))
        for key, _ in self.SPARKS:
            data = state.history.get(key, ())
            show_text(self.query_one(f"#last-{key}", Static), trend_last(data, state.history_at.get(key, ())))
            spark = self.query_one(f"#spark-{key}", Static)
            show_text(spark, sparkline(data, state.history_at.get(key) or None, spark.content_size.width or 40))

    def _sip(self, state: LiveView, now: float) -> Text:
        out = Text("OpenSIPS\n", style="bold", end="")
        sig = state.signalling
        if sig is None:
            out.append("no data yet\n", style="dim")
            return out
        ov = sig.overview
        shm = ov.shm_percent
        rows: list[tuple[str, Text | str]] = [
            ("version", safe_text(ov.version or ov.server or "?")),
            ("uptime", fmt.duration(ov.uptime_s)),
            ("load", fmt.load_text(ov.load, ov.load_1m)),
            ("shm", "-" if shm is None else f"{shm:.1f}% of {fmt.size(ov.shm_total)}"),
            ("dialogs", f"{fmt.count(ov.active_dialogs)} active, {fmt.count(ov.early_dialogs)} early"),
            ("registered", fmt.count(ov.registered_contacts if ov.registered_contacts is not None
                                     else (len(state.contacts) if state.contacts is not None else None))),
        ]
        out.append(field_lines(rows))
        out.append("\n")
        counts = state.transport_counts()
        tokens = [Text("not fetched", style="dim")] if state.contacts is None else \
            [Text(f"{t.upper()} {counts.get(t, 0)}") for t in ("udp", "tcp", "tls", "ws", "wss")]
        if state.contacts is not None:
            if counts.get("?"):  # known by AoR only (brief lists): transport not reported
                tokens.append(Text(f"? {counts['?']:,}"))
            if state.transport_counts_partial():  # never zeros that read as "none registered"
                tokens.append(Text(f"(of {len(state.contacts):,} listed)", style="bold"))
            if state.contacts_at is not None and now - state.contacts_at > 2 * state.interval:
                tokens.append(Text(f"({fmt.age(now - state.contacts_at)})", style="dim"))
        # wrapped between counts, never inside one ('WSS 0 (10s' / 'ago)')
        out.append(fmt.token_lines("by transport", tokens, self.query_one("#overview-sip").content_size.width))
        out.append("\n")
        out.append(stale_note("signalling", state.signalling_at, now, state.signalling_stale()))
        return out

    def _media(self, state: LiveView, now: float) -> Text:
        out = Text("RTPengine\n", style="bold", end="")
        media = state.media
        if media is None:
            out.append("no data yet\n", style="dim")
            return out
        totals = media.totals
        sessions = totals.total_sessions if totals.total_sessions is not None else len(media.sessions)
        rows: list[tuple[str, Text | str]] = [
            ("version", safe_text(relay_version(media, state.host) or "?")),
            ("ng / cli", Text.assemble(fmt.ok_word(media.ng_ok), " / ", fmt.ok_word(media.cli_ok))),
            ("sessions", f"{fmt.count(sessions)} ({fmt.count(totals.owned_sessions)} own, "
                         f"{fmt.count(totals.foreign_sessions)} foreign)"),
            ("ports", fmt.bar(media.ports.used, media.ports.total, 16) if media.ports.total else Text("-")),
            ("packets/s", f"{fmt.count(totals.packets_per_s_user)} user, {fmt.count(totals.packets_per_s_kernel)} kernel"),
            ("errors/s", fmt.count(totals.errors_per_s)),
        ]
        out.append(field_lines(rows))
        out.append("\n")
        out.append(stale_note("media", state.media_at, now, state.media_stale()))
        return out

    def _checks(self, state: LiveView, now: float) -> Text:
        out = Text("Checks  ", style="bold", end="")
        if not state.checks:
            out.append("not run yet", style="dim")
            return out
        worst = overall_status([c.status for c in state.checks])
        out.append(fmt.status_word(worst))
        counts = {s: sum(1 for c in state.checks if c.status is s) for s in Status}
        out.append("  " + ", ".join(f"{n} {s.word}" for s, n in counts.items() if n))
        for check in state.checks:
            if check.status in (Status.WARN, Status.FAIL, Status.UNKNOWN):
                out.append("\n  ")
                out.append(fmt.status_word(check.status))
                out.append(safe_text(fmt.brief(f"{check.id}: {check.summary}", 100), None))
        if state.checks_at is not None:
            out.append(f"\n  ({fmt.age(now - state.checks_at)}; 5 for details, R there re-runs them)", style="dim")
        return out


def trend_last(values, times) -> Text:
    """'70  min 65 max 70 over 4m58s': the last value, the plot's scale and the time it covers."""
    if not values:
        return Text("-")
    span = times[-1] - times[0] if len(times) >= 2 else 0.0
    return Text.assemble((fmt.count(values[-1]), "bold"), "  ", scale_note(values, span, digits=0))


def sources_text(state: LiveView, now: float) -> Text:
    """Every source with its full error (the header has room for a short one)."""
    out = Text("Sources", style="bold", end="")
    for status in state.sources.values():
        out.append("\n  ")
        out.append(fmt.ok_word(status.ok))
        out.append(f" {status.name}  {status.elapsed_ms:.0f} ms")
        if not status.ok:
            last = state.last_ok.get(status.name)
            out.append(f"  last good {fmt.age(None if last is None else now - last)}", style="bold")
            out.append("\n    ")
            out.append(safe_text(status.error or "failed", None))
    return out


def quality_panel(state: LiveView) -> Text:
    """Calls by quality (as the snapshot judges them) and SIP health: reply classes per second and
    the 4xx/5xx/6xx share per poll as sparklines, then the window opensips.sip_failures judges."""
    out = quality_counts_text(state.quality_counts(), len(state.calls))
    sig = state.signalling
    out.append("\n")
    out.append_text(sip_health_text(state.sip_health(), sig.sip_window if sig is not None else None,
                                    state.thresholds.sip_window_s))
    return out
