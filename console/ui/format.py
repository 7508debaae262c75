"""Small pure formatters shared by the screens (no textual import)."""

from __future__ import annotations

from rich.text import Text

from console.model import Status

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
