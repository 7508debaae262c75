"""The always-visible status lines: target, poll age, each source's state."""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual.widgets import Static

from console.live_state import LiveView
from console.model import SourceStatus

from . import format as fmt
from .safe import safe_text, show_text


class HeaderFacts(NamedTuple):
    """What the header shows: the live session's view, the time now, the target's name."""

    view: LiveView
    now: float
    target: str


class StatusHeader(Static):
    """Target, age of the last good poll, and each source's state (OK/FAIL + reason)."""

    def show(self, facts: HeaderFacts) -> None:
        state, now = facts.view, facts.now
        out = Text(end="", no_wrap=False)
        out.append("opsconsole ", style="bold")
        out.append(safe_text(facts.target, 60))
        out.append("  ")
        last = state.last_good_poll()
        out.append(f"updated {fmt.age(None if last is None else now - last)}")
        if state.paused:
            out.append("  PAUSED (p)", style="bold reverse")
        elif state.polling:
            out.append("  polling…", style="dim")
        mode = fmt.contacts_mode_word(state.contacts_mode)
        if mode.plain:  # never let a partial contact list pass for the whole one
            out.append("  ")
            out.append_text(mode)
        out.append("\n")
        sources = state.sources
        if not sources:
            out.append("waiting for the first poll…", style="dim")
        for number, status in enumerate(sources.values()):
            if number:
                out.append(" · ")
            out.append(source_text(status, state.last_ok.get(status.name), now))
        show_text(self, out)


def source_text(status: SourceStatus, last_ok: float | None, now: float) -> Text:
    out = Text(f"{status.name} ", end="")
    if status.ok:
        out.append("OK", style="bold green")
        return out
    out.append("FAIL", style="bold red")
    out.append(": ")
    out.append(safe_text(status.error or "failed", 90))
    if last_ok is not None:
        out.append(f" STALE {fmt.duration(now - last_ok)}", style="bold reverse yellow")
    else:
        out.append(" no data", style="bold")
    return out
