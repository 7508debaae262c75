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
    """What the header shows: the live session's view, the time now, the target's name, and the user
    a SIP trace follows while one is active ("": none)."""

    view: LiveView
    now: float
    target: str
    trace: str = ""


class StatusHeader(Static):
    """Target, age of the last good poll, and each source's state (OK/FAIL + reason)."""

    def show(self, facts: HeaderFacts) -> None:
        """Line 1: what the data is (age, PAUSED, the contact list's extent), then the target (cut
        first); then the sources, one line, or one per line when that does not fit.  Lines are
        cut with an ellipsis, never wrapped mid-word."""
        state, now = facts.view, facts.now
        out = Text(end="", no_wrap=True, overflow="ellipsis")
        out.append("opsconsole ", style="bold")
        last = state.last_good_poll()
        out.append(f"updated {fmt.age(None if last is None else now - last)}")
        if state.paused:
            out.append("  PAUSED (p)", style="bold reverse")
        elif state.polling:
            out.append("  polling…", style="dim")
        if facts.trace:  # a transient change to the platform: said in words, not only in colour
            out.append("  ")
            out.append(Text.assemble("TRACE ON ", safe_text(facts.trace, 30), style="bold reverse magenta"))
        mode = fmt.contacts_mode_word(state.contacts_mode)
        if mode.plain:  # never let a partial contact list pass for the whole one
            out.append("  ")
            out.append_text(mode)
        out.append("  ")
        out.append(safe_text(facts.target, 60))
        out.append("\n")
        sources = state.sources
        if not sources:
            out.append("waiting for the first poll…", style="dim")
        room = (self.size.width - 2) if self.size.width > 2 else 78
        out.append_text(source_lines(sources.values(), state.last_ok, now, room))
        show_text(self, out)


def source_lines(statuses, last_ok: dict, now: float, room: int) -> Text:
    """All sources on one line when that fits; else the short ones (OK, not asked) share the first
    line and each failure gets a line of its own, so no source ever drops off the header's bottom."""
    statuses = list(statuses)
    parts = [source_text(status, last_ok.get(status.name), now) for status in statuses]
    sep = Text(" · ", end="")
    one_line = sep.join(parts)
    if one_line.cell_len <= room:
        return one_line
    short = [part for status, part in zip(statuses, parts) if status.ok or _not_asked(status)]
    long = [part for status, part in zip(statuses, parts) if not (status.ok or _not_asked(status))]
    lines = ([sep.join(short)] if short else []) + long
    return Text("\n", end="").join(lines)


def _not_asked(status: SourceStatus) -> bool:
    """A source that depends on another one that failed: not a failure of its own."""
    return not status.ok and (status.error or "").startswith("not asked")


def source_text(status: SourceStatus, last_ok: float | None, now: float) -> Text:
    out = Text(f"{status.name} ", end="")
    if _not_asked(status):
        out.append("NOT ASKED", style="bold")
        return out
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
