"""Untrusted strings → plain `rich.text.Text`, never markup.

User-Agent, AoR, Call-ID, URIs and display names come from the network.  They
are shown literally: `[bold]` stays text, and characters that could drive the
terminal (C0/C1 controls, ESC, DEL) or reorder what the eye sees (BiDi
overrides) are replaced by a visible escape such as `\\x1b` or `\\u202e`.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text

from console.render.safe import UNSAFE, UNSAFE_KEEP_NEWLINE, escape_char

ESCAPE_STYLE = "reverse"
ELLIPSIS = "…"
CELL_LIMIT = 60



def safe_text(value: object, limit: int | None = CELL_LIMIT, *, multiline: bool = False, style: str = "") -> Text:
    """A Text showing `value` literally, unsafe characters escaped and marked.

    `limit` truncates (with an ellipsis) for table cells; pass None for the
    full value (detail panes).  `multiline` keeps line breaks (SDP bodies):
    CRLF becomes one line break, any other control is still escaped.
    """
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n")
    pattern = UNSAFE_KEEP_NEWLINE if multiline else UNSAFE  # defined once, in console.render.safe
    truncated = limit is not None and len(text) > limit
    if truncated:
        text = text[:limit]  # escaping only lengthens: cut early, trim exactly below
    out = Text(style=style, no_wrap=not multiline, end="")
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            out.append(text[position : match.start()])
        out.append(escape_char(match.group()), style=ESCAPE_STYLE)
        position = match.end()
    if position < len(text):
        out.append(text[position:])
    if limit is not None and (truncated or len(out) > limit):
        out.truncate(max(0, limit - 1))
        out.append(ELLIPSIS, style="dim")
    return out


def safe_plain(value: object, limit: int | None = None) -> str:
    """The escaped string without styles (for keys, notifications, tests)."""
    return safe_text(value, limit).plain


def show_text(widget: Any, text: Text) -> None:
    """`Static.update` that skips unchanged text and reflows the screen only when the text's
    shape changed: every Static update re-lays-out the whole screen, and the 1 s tick would
    otherwise do that for every panel, every second, for an age moving from 3s to 4s."""
    previous = getattr(widget, "_ops_shown", None)
    if previous is not None and previous == text:
        return
    widget._ops_shown = text
    widget.update(text, layout=previous is None or not _same_height(widget, previous, text))


def _same_height(widget: Any, previous: Text, text: Text) -> bool:
    """True when `text` takes the rows `previous` took: same line count, and (the widget's width not
    following its content) every line fits unwrapped, e.g. "updated 3s" -> "updated 12s"."""
    lines = text.plain.split("\n")
    if len(lines) != previous.plain.count("\n") + 1:
        return False
    if previous.cell_len == text.cell_len:
        return True
    width_rule = widget.styles.width
    if width_rule is not None and width_rule.is_auto:
        return False
    room = widget.content_size.width
    return room > 0 and all(cell_len(line) <= room for line in (*lines, *previous.plain.split("\n")))
