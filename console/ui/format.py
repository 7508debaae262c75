"""Small pure formatters shared by the screens (Rich only: no textual import)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rich.text import Text

from console.live_state import LiveView
from console.model import MediaLeg, MediaSession, Status

from .safe import safe_text

STATUS_STYLE = {
    Status.OK: "bold green",
    Status.SKIP: "dim",
    Status.UNKNOWN: "bold yellow",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
}


def status_word(status: Status) -> Text:
    """The word carries the meaning (NO_COLOR); the colour only helps."""
    return Text(f"{status.word:<7}", style=STATUS_STYLE.get(status, ""), end="")


def ok_word(ok: bool | None) -> Text:
    if ok is None:
        return Text("?", style="dim", end="")
    return Text("OK", style="bold green", end="") if ok else Text("FAIL", style="bold red", end="")


def duration(seconds: float | int | None) -> str:
    """'42s', '3m05s', '2h03m', '4d02h'."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{duration(seconds)} ago"


def count(value: int | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def bar(used: int, total: int, width: int = 20) -> Text:
    """`[####......] 36/1000 3.6%`: readable without colour."""
    fraction = used / total if total else 0.0
    filled = min(width, round(fraction * width))
    if used and not filled:
        filled = 1  # never show "empty" while something is in use
    style = "red" if fraction >= 0.95 else "yellow" if fraction >= 0.8 else "green"
    out = Text("[", end="")
    out.append("#" * filled, style=style)
    out.append("." * (width - filled), style="dim")
    out.append(f"] {used:,}/{total:,} {100 * fraction:.1f}%")
    return out


def transport_label(transport: str, ws: bool = False) -> Text:
    """Upper-case transport; WebSocket legs get a visible `[web]` marker."""
    name = (transport or "?").upper()
    if ws or transport in ("ws", "wss"):
        out = Text(name, style="bold magenta", end="")
        out.append(" [web]", style="magenta")
        return out
    return Text(name, end="")


# contacts_mode -> (word, what the list is); the word carries the meaning without colour.
CONTACTS_MODES = {
    "full": ("COMPLETE", "full dump (ul_dump) by the last poll", "bold green"),
    "events": ("COMPLETE", "kept current by OpenSIPS events since the last full sync", "bold green"),
    "events-partial": ("PARTIAL", "only the contacts seen in events since subscribing; S runs a full sync",
                       "bold reverse yellow"),
    "polling": ("POLLED", "events unavailable: bounded periodic dumps", "bold yellow"),
    "none": ("NOT LISTED", "no contact list", "bold yellow"),
}


def contacts_mode_word(mode: str) -> Text:
    """'list PARTIAL' for the header; empty when the source does not say."""
    if mode not in CONTACTS_MODES:
        return Text("")
    word, _, style = CONTACTS_MODES[mode]
    return Text.assemble("list ", (word, style), (" (S: full sync)" if mode == "events-partial" else ""))


def field_lines(fields: list[tuple[str, Text | str]]) -> Text:
    """'name: value' lines; values must already be safe Text for untrusted data."""
    out = Text(end="")
    width = max((len(name) for name, _ in fields), default=0)
    for number, (name, value) in enumerate(fields):
        if number:
            out.append("\n")
        out.append(f"{name:<{width}}  ", style="bold")
        out.append(value if isinstance(value, Text) else Text(str(value)))
    return out


class _Gone:
    """What a live detail's sections function returns when its row vanished."""

    def __repr__(self) -> str:
        return "GONE"


GONE = _Gone()
Section = tuple[str, Text]
# (live view, now) -> the row's sections now; GONE when the row vanished; None when unknown
# (its list is not available): the detail then keeps what it shows, without a verdict.
LiveSections = Callable[[Any, float], "list[Section] | _Gone | None"]


# --------------------------------------------------------------------------- ages and staleness


def stale_note(label: str, at: float | None, now: float, stale: bool) -> Text:
    """'STALE' + age whenever the data shown is not from the latest poll."""
    if at is None:
        return Text(f"{label}: no data yet", style="dim")
    if stale:
        return Text(f"{label}: STALE, last good {age(now - at)}", style="bold reverse yellow")
    return Text(f"{label}: {age(now - at)}", style="dim")


def details_note(state: LiveView, now: float) -> Text:
    """With many calls the per-session queries run less often: say how old ports/packets are."""
    if state.details_at is None or state.media_at is None or state.media_at - state.details_at <= 0:
        return Text("")
    return Text(f"  ports/codecs/packets: {age(now - state.details_at)}", style="dim")


# --------------------------------------------------------------------------- media legs (Calls, Media)


def leg_ports(leg: MediaLeg | None) -> str:
    """'30788/30789': RTPengine's local ports of one leg (RTP/RTCP)."""
    return "/".join(str(p) for p in leg.ports) if leg is not None and leg.ports else "-"


def media_ports_text(legs: Sequence[MediaLeg | None]) -> str:
    """'A 30788/30789 B 30780/30781': legs in order, lettered as in the Pkts A/B column."""
    return " ".join(f"{chr(ord('A') + n)} {leg_ports(leg)}" for n, leg in enumerate(legs))


def legs_codecs(legs: Sequence[MediaLeg | None], short: bool = False) -> str:
    """'PCMA' when every leg uses it, else 'A PCMA B opus' ('-' for a leg without one).
    `short` drops the clock rate ('PCMA/8000' -> 'PCMA'); the detail screen has it."""
    if not any(leg is not None for leg in legs):
        return "-"
    names = [(leg.codec if leg else "") or "-" for leg in legs]
    if short:
        names = [name.split("/", 1)[0] for name in names]
    if len(set(names)) == 1:
        return names[0]
    return " ".join(f"{chr(ord('A') + n)} {name}" for n, name in enumerate(names))


def legs_packets(a: MediaLeg | None, b: MediaLeg | None) -> Text:
    """'236/236', plus the errors only when there are some (they should stand out)."""
    if a is None and b is None:
        return Text("-", justify="right")
    out = Text(f"{_count(a, 'packets')}/{_count(b, 'packets')}", justify="right")
    if (a.errors if a else 0) or (b.errors if b else 0):
        out.append(f" err {_count(a, 'errors')}/{_count(b, 'errors')}", style="bold red")
    return out


def _count(leg: MediaLeg | None, counter: str) -> str:
    return "-" if leg is None else str(getattr(leg, counter))


def session_text(session: MediaSession, now: float) -> Text:
    fields: list[tuple[str, Text | str]] = [
        ("Call-ID", safe_text(session.callid, None)),
        ("Age", duration(now - session.created) if session.created else "-"),
        ("Deleted", "yes (BYE seen, within delete-delay)" if session.deleted else "no"),
        ("Foreign", "yes" if session.foreign else "no"),
    ]
    out = field_lines(fields)
    for leg in session.legs:
        out.append("\n\nleg ", style="bold")
        out.append(safe_text(leg.tag, None))
        if leg.tag_type or leg.label:
            out.append(f" ({leg.tag_type or leg.label})")
        for media in leg.medias:
            out.append(f"\n  {media.type} {media.protocol} codec ")
            out.append(safe_text(media.codec or "-", 40))
            if media.flags:
                out.append("  [" + ", ".join(media.flags) + "]", style="dim")
            for stream in media.streams:
                out.append(f"\n    {stream.local_address}:{stream.local_port} <-> ")
                out.append(safe_text(stream.endpoint or "-", 60))
                out.append(f"  {'RTCP' if stream.rtcp else 'RTP '} pkts {stream.packets} bytes {stream.bytes} errors {stream.errors}")
    return out

