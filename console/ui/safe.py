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

from console.render.safe import ELLIPSIS  # noqa: F401  (tests and callers import it from here)
from console.render.safe import safe_text as render_safe_text

ESCAPE_STYLE = "reverse"
CELL_LIMIT = 60



def safe_text(value: object, limit: int | None = CELL_LIMIT, *, multiline: bool = False, style: str = "") -> Text:
    """A Text showing `value` literally, unsafe characters escaped and marked.

    `limit` truncates (with an ellipsis) for table cells; pass None for the
    full value (detail panes).  `multiline` keeps line breaks (SDP bodies):
    CRLF becomes one line break, any other control is still escaped.  The rule
    itself lives once, in console.render.safe; this adds the TUI's styles.
    """
    return render_safe_text(value, limit, style, multiline=multiline, escape_style=ESCAPE_STYLE,
                            ellipsis_style="dim", no_wrap=not multiline, end="")


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
