"""Pushed screens: detail pane, help, write confirmation."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Static

from .format import LiveSections, Section, _Gone, mask_keys
from .header import HeaderFacts, StatusHeader

SectionLoader = Callable[[], Awaitable[list[Section]]]
KEYS_HINT = "   Esc back · ↑↓ PgUp PgDn scroll · 0-6 screens · q quit"
KEYS_SHOWN = "   SDES KEYS SHOWN (k hides)"


def clock_time(at: float) -> str:
    """HH:MM:SS of an epoch time, local (what the operator's wall clock says)."""
    return time.strftime("%H:%M:%S", time.localtime(at))


class DetailScreen(Screen[None]):
    """Every field of one row, full length (escaped, never truncated).  With `live`, it follows
    the row: new content at each poll, and a notice (last content kept) once the row is gone."""

    BINDINGS = [Binding("escape", "dismiss_detail", "Back"), Binding("k", "toggle_keys", "Show keys", show=False)]

    def __init__(self, title: str, sections: list[Section], loader: SectionLoader | None = None,
                 live: LiveSections | None = None, header: HeaderFacts | None = None) -> None:
        """`loader`, when given, fetches the real sections (shown in place of `sections` once there);
        `header`: what the status header shows until the next poll."""
        super().__init__()
        self.header = header
        self.detail_title = title
        self.sections = sections
        self.loader = loader
        self.live = live
        self.gone_since: float | None = None
        self.keys_shown = False  # SDES keys masked unless the operator asks (k)

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield Static(self._title_text(), classes="detail-title", id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield from self._section_widgets(self.sections)
        # No Footer here: composing one (a widget per key) was most of the time Enter took.

    def _title_text(self) -> Text:
        out = Text.assemble((self.detail_title, "bold"))
        if self.gone_since is not None:
            out.append(f"   GONE since {clock_time(self.gone_since)}", style="bold reverse yellow")
            out.append(" (last content kept)", style="bold")
        if self.keys_shown:
            out.append(KEYS_SHOWN, style="bold reverse")
        out.append(KEYS_HINT, style="dim")
        return out

    def action_toggle_keys(self) -> None:
        """k: show / hide the SDES keys of the SDPs (masked by default)."""
        self.keys_shown = not self.keys_shown
        self.query_one("#detail-title", Static).update(self._title_text())
        widgets = list(self.query(".detail-section").results(Static))
        for widget, (_, body) in zip(widgets, self.sections):
            widget.update(self._shown(body))

    def _shown(self, body: Text) -> Text:
        return body if self.keys_shown else mask_keys(body)

    def refresh_live(self, state: Any, now: float) -> None:
        """Called by the app after each poll (state: the LiveView): the row's current content, or the gone notice."""
        if self.live is None or not self.is_mounted:
            return
        sections = self.live(state, now)
        if sections is None:
            return  # unknown now: keep what is shown, no verdict
        if isinstance(sections, _Gone):
            if self.gone_since is None:
                self.gone_since = now
                self.query_one("#detail-title", Static).update(self._title_text())
            return
        if self.gone_since is not None:  # back (e.g. a list that was briefly incomplete)
            self.gone_since = None
            self.query_one("#detail-title", Static).update(self._title_text())
        self._show_sections(sections)

    def _show_sections(self, sections: list[Section]) -> None:
        """Same headings: each body updated in place (the scroll position stays); else rebuilt."""
        if [h for h, _ in sections] != [h for h, _ in self.sections]:
            body = self.query_one("#detail-body")
            body.remove_children()
            body.mount_all(self._section_widgets(sections))
        else:
            widgets = list(self.query(".detail-section").results(Static))
            for widget, (_, new), (_, old) in zip(widgets, sections, self.sections):
                if new != old:
                    widget.update(self._shown(new))
        self.sections = sections

    def _section_widgets(self, sections: list[Section]) -> list[Static]:
        widgets = []
        for heading, body in sections:
            widgets.append(Static(Text(heading, style="bold underline"), classes="detail-heading"))
            widgets.append(Static(self._shown(body), classes="detail-section"))
        return widgets

    def on_mount(self) -> None:
        if self.header is not None:
            self.query_one(StatusHeader).show(self.header)
        self.query_one("#detail-body").focus()
        if self.loader is not None:
            self.run_worker(self._load(self.loader), exclusive=True, group="detail")

    async def _load(self, loader: SectionLoader) -> None:
        sections = await loader()  # the loader turns its own failures into a section
        body = self.query_one("#detail-body")
        await body.remove_children()
        await body.mount_all(self._section_widgets(sections))
        self.sections = sections

    def action_dismiss_detail(self) -> None:
        self.dismiss(None)


HELP_KEYS = [
    ("Everywhere", [("1 … 6", "Overview, Registrations, Calls, Media, Checks, MI"),
                    ("0", "Fleet: one row per node; Enter shows that node on 1 … 6"),
                    ("p", "pause / resume polling"),
                    ("S", "full contact sync now (one ul_dump; fixes a PARTIAL list)"),
                    (":", "palette: jump to a user, an AoR or a Call-ID (asks OpenSIPS when the list is partial)"),
                    ("Esc", "close the innermost thing: detail, filter, input (never leaves a screen)"),
                    ("? / q", "this help / quit (also Ctrl+C)")]),
    ("Every list (Registrations, Calls, Media, Checks, MI answer)", [
        ("/", "filter on any text of the rows (Enter keeps, Esc clears)"),
        ("s / r", "next sort column / reverse order"),
        ("↑ ↓ PgUp PgDn", "move (large lists page on past the edge)"), ("Enter", "detail of the row"),
        ("+N cols →", "columns that did not fit: they are in the detail (Enter)")]),
    ("Registrations", [("t", "transport filter: all → ws → udp → tcp → tls"),
                       ("Ctrl+Home/End", "first / last contact of the whole list"),
                       ("click header", "sort by that column")]),
    ("Details", [("k", "show / hide SDES media keys (a=crypto inline:…, masked by default)")]),
    ("Checks", [("R", "re-run the diagnose checks"), ("Enter", "the remedy and the evidence")]),
    ("MI", [("Tab / →", "accept the completion"), ("Enter", "run (write methods need --allow-write "
                                                                  "and a confirmation)"),
            ("Esc", "from the command line to the answer (/ s r there)")]),
    ("Trace (from Registrations or Calls)", [
        ("T", "trace the selected user / call (transient, audited; off: --no-trace)"),
        ("Enter c w Esc", "whole message · only this call · write the pcap · stop and leave")]),
    ("Media", [("e", "enable / disable the selected RTPengine in OpenSIPS (--allow-write, asks first)")]),
]


def help_text() -> Group:
    """The keys by group; a meaning wraps under itself, not under its key (readable at 80 columns)."""
    parts: list = []
    for group, keys in HELP_KEYS:
        parts.append(Text(group, style="bold underline"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=15, no_wrap=True)
        grid.add_column(ratio=1)
        for key, meaning in keys:
            grid.add_row(Text(f"  {key}", style="bold"), Text(meaning))
        parts.append(grid)
    parts.append(Text("\nStatus words OK / WARN / FAIL / STALE carry the meaning; colour only helps.", style="dim"))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("opsconsole keys", style="bold"))
            yield Static(help_text(), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Ask before a write MI method changes the platform."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: Text) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes, run it (y)", id="yes", variant="error")
                yield Button("No (n / Esc)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
