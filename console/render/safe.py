"""Make untrusted strings (User-Agent, AoR, Call-ID, URIs) safe to show.

Never pass them through Rich markup: build `rich.text.Text` from the escaped
string.  Control characters (C0, DEL, C1 incl. ESC/CSI/OSC), BiDi overrides
and other invisible formatting characters are shown as visible escapes, so an
attacker cannot clear the screen, write the clipboard (OSC 52), plant links
(OSC 8) or reorder what the operator reads.

The one rule for the text renderers and the TUI (console/ui/safe.py only adds
its styles): which characters are escaped and how (`escape_controls`), and how
a value is cut to a cell of `limit` (`safe_str`): a value longer than `limit`
characters, or wider than `limit` terminal cells once escaped, shows its first
`limit - 1` cells and an ellipsis.
"""

from __future__ import annotations

import re
from typing import Iterator

from rich.cells import cell_len, set_cell_size

# Everything but C0: DEL, C1, the Arabic letter mark, zero-width characters and
# BiDi marks, line/paragraph separators, BiDi embeddings/overrides/isolates,
# invisible operators, lone surrogates (non-UTF-8 bytes kept by surrogateescape:
# they cannot even be written to a UTF-8 terminal), BOM, interlinear annotation.
UNSAFE_NON_C0 = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ud800-\udfff\ufeff\ufff9-\ufffb"
UNSAFE = re.compile(f"[\x00-\x1f{UNSAFE_NON_C0}]")
UNSAFE_KEEP_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{UNSAFE_NON_C0}]")
ELLIPSIS = "…"


def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape(match: re.Match[str]) -> str:
    return escape_char(match.group())


def _as_text(value: object, multiline: bool) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return text.replace("\r\n", "\n") if multiline else text  # SDP bodies: CRLF is one line break


def _is_plain(text: str) -> bool:
    return text.isprintable() and text.isascii()  # fast path: the common case, nothing to escape


def escape_controls(value: object, *, multiline: bool = False) -> str:
    """Return `value` as text with every control/format character escaped (None -> "").
    `multiline` keeps line breaks (CRLF becomes one); every other control is still escaped."""
    text = _as_text(value, multiline)
    if _is_plain(text):
        return text
    return (UNSAFE_KEEP_NEWLINE if multiline else UNSAFE).sub(_escape, text)


def escape_segments(value: object, *, multiline: bool = False) -> Iterator[tuple[str, bool]]:
    """`escape_controls` in pieces: (text, is_escape), so a renderer can mark the escapes."""
    text = _as_text(value, multiline)
    if _is_plain(text):
        if text:
            yield text, False
        return
    position = 0
    for match in (UNSAFE_KEEP_NEWLINE if multiline else UNSAFE).finditer(text):
        if match.start() > position:
            yield text[position:match.start()], False
        yield escape_char(match.group()), True
        position = match.end()
    if position < len(text):
        yield text[position:], False


def _cut(value: object, limit: int | None, multiline: bool) -> tuple[str, bool]:
    text = _as_text(value, multiline)
    if limit and len(text) > limit:
        return text[:limit], True  # escaping only lengthens: cut early (a 10 kB User-Agent), trim exactly later
    return text, False


def clip(text: str, limit: int | None, *, cut: bool = False) -> str:
    """Shorten escaped `text` for a table cell: at most `limit` cells, the last an ellipsis
    (always when `cut`: the value was longer).  No limit when None or 0; the detail view
    shows the full value."""
    if not limit or not (cut or cell_len(text) > limit):
        return text
    room = max(0, limit - 1)
    return (set_cell_size(text, room) if cell_len(text) > room else text) + ELLIPSIS


def safe_str(value: object, limit: int | None = None, *, multiline: bool = False) -> str:
    """`value` escaped and clipped to `limit`: exactly the characters `safe_text` shows."""
    text, cut = _cut(value, limit, multiline)
    return clip(escape_controls(text, multiline=multiline), limit, cut=cut)


def safe_text(value: object, limit: int | None = 0, style: str = "", *, multiline: bool = False,
              escape_style: str = "", ellipsis_style: str = "", no_wrap: bool = False, end: str = "\n"):
    """A rich Text holding `value` literally (no markup), controls escaped (styled
    `escape_style`), clipped to `limit` like `safe_str` (the ellipsis styled `ellipsis_style`)."""
    from rich.text import Text

    out = Text(style=style, no_wrap=no_wrap, end=end)
    text, cut = _cut(value, limit, multiline)
    for piece, escaped in escape_segments(text, multiline=multiline):
        out.append(piece, style=escape_style if escaped else None)
    if limit and (cut or out.cell_len > limit):
        out.truncate(max(0, limit - 1))  # the cells `clip` keeps
        out.append(ELLIPSIS, style=ellipsis_style or None)
    return out
