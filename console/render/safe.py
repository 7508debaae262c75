"""Make untrusted strings (User-Agent, AoR, Call-ID, URIs) safe to show.

Never pass them through Rich markup: build `rich.text.Text` from the escaped
string.  Control characters (C0, DEL, C1 incl. ESC/CSI/OSC), BiDi overrides
and other invisible formatting characters are shown as visible escapes, so an
attacker cannot clear the screen, write the clipboard (OSC 52), plant links
(OSC 8) or reorder what the operator reads.
"""

from __future__ import annotations

import re

# C0 (except none), DEL, C1, BiDi embeddings/overrides/isolates, zero-width and
# line/paragraph separators, BOM.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(value: object) -> str:
    """Return `value` as text with every control/format character escaped."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and text.isascii():  # fast path: the common case
        return text
    return _UNSAFE.sub(_escape, text)


def clip(text: str, limit: int) -> str:
    """Shorten for a table cell; the detail view shows the full value."""
    if limit > 0 and len(text) > limit:
        return text[: max(1, limit - 1)] + "…"
    return text


def safe_text(value: object, limit: int = 0, style: str = ""):
    """A rich Text holding `value` literally (no markup), controls escaped."""
    from rich.text import Text

    return Text(clip(escape_controls(value), limit), style=style, no_wrap=False)
