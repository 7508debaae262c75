"""Make untrusted strings (User-Agent, AoR, Call-ID, URIs) safe to show.

Never pass them through Rich markup: build `rich.text.Text` from the escaped
string.  Control characters (C0, DEL, C1 incl. ESC/CSI/OSC), BiDi overrides
and other invisible formatting characters are shown as visible escapes, so an
attacker cannot clear the screen, write the clipboard (OSC 52), plant links
(OSC 8) or reorder what the operator reads.
"""

from __future__ import annotations

import re

# Everything but C0: DEL, C1, the Arabic letter mark, zero-width characters and
# BiDi marks, line/paragraph separators, BiDi embeddings/overrides/isolates,
# invisible operators, lone surrogates (non-UTF-8 bytes kept by surrogateescape:
# they cannot even be written to a UTF-8 terminal), BOM, interlinear annotation.  One definition, shared by
# the text renderers and the TUI (console/ui/safe.py).
UNSAFE_NON_C0 = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ud800-\udfff\ufeff\ufff9-\ufffb"
UNSAFE = re.compile(f"[\x00-\x1f{UNSAFE_NON_C0}]")
UNSAFE_KEEP_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{UNSAFE_NON_C0}]")



def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape(match: re.Match[str]) -> str:
    return escape_char(match.group())


def escape_controls(value: object) -> str:
    """Return `value` as text with every control/format character escaped."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and text.isascii():  # fast path: the common case
        return text
    return UNSAFE.sub(_escape, text)


def clip(text: str, limit: int) -> str:
    """Shorten for a table cell; the detail view shows the full value."""
    if limit > 0 and len(text) > limit:
        return text[: max(1, limit - 1)] + "…"
    return text


def safe_text(value: object, limit: int = 0, style: str = ""):
    """A rich Text holding `value` literally (no markup), controls escaped."""
    from rich.text import Text

    return Text(clip(escape_controls(value), limit), style=style, no_wrap=False)
