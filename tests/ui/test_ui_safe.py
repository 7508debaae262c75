"""safe_text: untrusted strings are shown literally, controls made visible."""

from __future__ import annotations

import pytest
from rich.text import Text

from console.ui.safe import ELLIPSIS, safe_plain, safe_text

HOSTILE = {
    "markup": ("[bold red]x[/]", "[bold red]x[/]"),
    "csi_clear": ("\x1b[2J", "\\x1b[2J"),
    "osc52": ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
    "bidi_override": ("abc\u202edef", "abc\\u202edef"),
    "bidi_isolate": ("\u2066x\u2069", "\\u2066x\\u2069"),
    "nul": ("a\x00b", "a\\x00b"),
    "del_c1": ("a\x7fb\x9bc", "a\\x7fb\\x9bc"),
    "newline_tab": ("a\nb\tc", "a\\x0ab\\x09c"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_strings_are_escaped_literally(name):
    raw, shown = HOSTILE[name]
    text = safe_text(raw, None)
    assert isinstance(text, Text)
    assert text.plain == shown
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text.plain)


def test_markup_is_not_interpreted():
    text = safe_text("[bold red]x[/]")
    assert text.plain == "[bold red]x[/]"
    assert not text.spans  # no style was produced from the string


def test_escapes_are_marked_with_a_style():
    text = safe_text("a\x1bb")
    assert [text.plain[s.start:s.end] for s in text.spans] == ["\\x1b"]


def test_long_string_truncated_with_ellipsis_to_limit():
    text = safe_text("x" * 10_000, 40)
    assert len(text.plain) == 40
    assert text.plain.endswith(ELLIPSIS)


def test_truncation_counts_escaped_width():
    text = safe_text("\x1b" * 100, 10)
    assert len(text.plain) == 10
    assert text.plain.startswith("\\x1b")


def test_full_value_without_limit():
    assert len(safe_plain("y" * 10_000)) == 10_000


def test_short_string_untouched():
    assert safe_plain("sipp-lab-UDP", 60) == "sipp-lab-UDP"


def test_multiline_keeps_sdp_lines_but_escapes_other_controls():
    text = safe_text("v=0\r\nm=audio 30910 RTP/AVP 8\r\na=x\x1b", None, multiline=True)
    assert text.plain == "v=0\nm=audio 30910 RTP/AVP 8\na=x\\x1b"


def test_none_and_non_strings():
    assert safe_plain(None) == ""
    assert safe_plain(42) == "42"


class FakeStatic:
    """What show_text uses of a Static: its width rule, content width, and update()."""

    def __init__(self, width_rule=None, room: int = 40) -> None:
        from textual.geometry import Size

        self.styles = type("Styles", (), {"width": width_rule})()
        self.content_size = Size(room, 1)
        self.updates: list[tuple[str, bool]] = []

    def update(self, text, *, layout: bool) -> None:
        self.updates.append((text.plain, layout))


def test_show_text_lays_out_only_when_the_rows_taken_change():
    from console.ui.safe import show_text

    widget = FakeStatic(room=20)
    show_text(widget, Text("updated 3s"))
    show_text(widget, Text("updated 3s"))  # unchanged: nothing at all
    show_text(widget, Text("updated 12s"))  # longer, still one row in 20 cells
    show_text(widget, Text("updated 12s\nsecond line"))  # a row more
    show_text(widget, Text("updated 12s and a much longer tail\nsecond line"))  # wraps at 20 cells
    assert widget.updates == [("updated 3s", True), ("updated 12s", False), ("updated 12s\nsecond line", True),
                              ("updated 12s and a much longer tail\nsecond line", True)]


def test_show_text_lays_out_a_widget_sized_by_its_content():
    from textual.css.scalar import Scalar

    from console.ui.safe import show_text

    widget = FakeStatic(width_rule=Scalar.parse("auto"), room=20)
    show_text(widget, Text("3s"))
    show_text(widget, Text("12s"))
    assert widget.updates == [("3s", True), ("12s", True)]
