"""Small pure formatters shared by the screens (Rich only: no textual import)."""

from __future__ import annotations

import re
import time
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
    """The word carries the meaning (NO_COLOR); the colour only helps.  Always followed by a
    space: 'UNKNOWN' fills the 7 columns and ran into what came next ('UNKNOWNopensips.load')."""
    return Text(f"{status.word:<7} ", style=STATUS_STYLE.get(status, ""), end="")


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


def clock(at: float | None) -> str:
    """HH:MM:SS, local time (the operator's wall clock); '?' when unknown."""
    return "?" if at is None else time.strftime("%H:%M:%S", time.localtime(at))


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
    """Upper-case transport ('WS' says WebSocket by itself); a WebSocket contact whose stored
    transport is another one (behind a proxy) says so: 'TCP (WebSocket)'."""
    name = (transport or "?").upper()
    if transport in ("ws", "wss"):
        return Text(name, style="bold magenta", end="")
    if ws:
        return Text.assemble((name, "bold magenta"), (" (WebSocket)", "magenta"), end="")
    return Text(name, end="")


# OpenSIPS's request methods as bits (parser/msg_parser.h, enum request_method, 2^0 upwards);
# usrloc stores the contact's Allow header as this mask, all bits set when there was none.
SIP_METHODS = ("INVITE", "CANCEL", "ACK", "BYE", "INFO", "OPTIONS", "UPDATE", "REGISTER", "MESSAGE",
               "SUBSCRIBE", "NOTIFY", "PRACK", "REFER", "PUBLISH", "other")
ALL_METHODS = 0xFFFFFFFF


def methods_text(mask: int | None) -> str:
    """'INVITE ACK BYE CANCEL OPTIONS' from OpenSIPS's methods bitmask."""
    if mask is None:
        return "-"
    if mask == ALL_METHODS:
        return "any (no Allow header in the REGISTER)"
    names = [name for bit, name in enumerate(SIP_METHODS) if mask & (1 << bit)]
    return " ".join(names) if names else "none"


# usrloc's contact states (ucontact_state): what they mean for the operator
CONTACT_STATES = {
    "CS_NEW": "in memory, not yet in a database (new, or no database: db_mode 0)",
    "CS_SYNC": "in memory and in the database",
    "CS_DIRTY": "changed in memory, the database write is pending",
}


def contact_state_text(state: str) -> str:
    meaning = CONTACT_STATES.get(state)
    return f"{meaning} ({state})" if meaning else (state or "-")


def load_text(now: float | None, last_minute: float | None) -> str:
    """OpenSIPS's core load (load:load, load:load1m): '2% now, 1-min avg 3%'."""
    if now is None and last_minute is None:
        return "-"
    parts = [f"{now:.0f}% now" if now is not None else "? now"]
    if last_minute is not None:
        parts.append(f"1-min avg {last_minute:.0f}%")
    return ", ".join(parts)


def token_lines(label: str, tokens: Sequence[Text], width: int) -> Text:
    """'label  A 1  B 2' wrapped between tokens to `width` cells (0: one line), continuation
    lines indented under the first token."""
    out = Text(f"{label}  ", style="bold", end="")
    indent = out.cell_len
    line = indent
    for number, token in enumerate(tokens):
        gap = 2 if number else 0
        if number and width > 0 and line + gap + token.cell_len > width:
            out.append("\n" + " " * indent)
            line, gap = indent, 0
        out.append(" " * gap)
        out.append_text(token)
        line += gap + token.cell_len
    return out


def brief(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut at a word with an ellipsis (never mid-word
    without a mark)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def readable(value: Any, indent: str = "") -> str:
    """Check evidence as text: 'key value' lines for mappings, one item per line for lists of
    mappings, commas for plain lists (never a Python repr)."""
    if isinstance(value, dict):
        if not value:
            return "-"
        width = max(len(str(key)) for key in value)
        return "\n".join(f"{indent}{str(key):<{width}}  {_inline(item, indent + ' ' * (width + 2))}"
                         for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if not items:
            return "none"
        if any(isinstance(item, (dict, list, tuple)) for item in items):
            return "\n".join(f"{indent}- {_inline(item, indent + '  ')}" for item in items)
        return ", ".join(_scalar(item) for item in items)
    return _scalar(value)


def _inline(value: Any, indent: str) -> str:
    if isinstance(value, dict) and value:
        return "\n" + readable(value, indent)
    return readable(value, indent).lstrip() if isinstance(value, (list, tuple)) else _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


# contacts_mode -> (word, what the list is); the word carries the meaning without colour.
CONTACTS_MODES = {
    "full": ("ALL LISTED", "every contact, from a full dump (ul_dump) at the last poll", "bold green"),
    "events": ("ALL LISTED", "every contact: a full sync, then kept current by OpenSIPS events", "bold green"),
    "events-partial": ("PARTIAL", "only the contacts seen in events since subscribing; S runs a full sync",
                       "bold reverse yellow"),
    "polling": ("POLLED", "events unavailable: bounded periodic dumps", "bold yellow"),
    "none": ("NOT LISTED", "no contact list", "bold yellow"),
}


def contacts_mode_word(mode: str) -> Text:
    """'contacts PARTIAL' for the header; empty when the source does not say."""
    if mode not in CONTACTS_MODES:
        return Text("")
    word, _, style = CONTACTS_MODES[mode]
    return Text.assemble("contacts ", (word, style), (" (S: full sync)" if mode == "events-partial" else ""))


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


# SDES (RFC 4568): `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^31|1:1` carries the media key in
# clear; whoever reads the screen (or a screenshot) could decrypt the call.
SDES_KEY = re.compile(r"(?<=inline:)[^|\s]+")
KEY_MASK = "•••••• (k shows keys)"


def mask_keys(text: Text) -> Text:
    """`text` with every SDES key replaced by a mask (styles of the rest kept)."""
    matches = list(SDES_KEY.finditer(text.plain))
    if not matches:
        return text
    out = Text(end=text.end, no_wrap=text.no_wrap, overflow=text.overflow, justify=text.justify)
    out.style = text.style
    start = 0
    for match in matches:
        out.append_text(text[start:match.start()])
        out.append(KEY_MASK, style="bold")
        start = match.end()
    out.append_text(text[start:])
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

