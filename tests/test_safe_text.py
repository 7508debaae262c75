"""One unsafe-text rule (issue #13): the text renderers (console.render.safe) and the TUI
(console.ui.safe) escape the same characters the same way and cut to the same length."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rich.cells import cell_len

from console.render import safe as render
from console.ui import safe as ui

HOSTILE = ["\x1b[2J", "\x1b]52;c;ZXZpbA==\x07", "abc\u202edef", "\u2066x\u2069", "a\x00b", "a\x7fb\x9bc",
           "a\nb\tc", "v=0\r\nm=audio\r\n", "[bold red]x[/]", "zero\u200bwidth", "bom\ufeff", "lone\udcff",
           "é-ü 日本", "x" * 200, "\x1b" * 50]
LIMITS = [None, 0, 1, 2, 3, 10, 40, 60, 300]


@pytest.mark.parametrize("value", HOSTILE + [None, 42, ""])
@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("multiline", [False, True])
def test_renderer_and_tui_show_the_same_characters(value, limit, multiline):
    shown = render.safe_text(value, limit, multiline=multiline).plain
    assert ui.safe_text(value, limit, multiline=multiline).plain == shown
    assert shown == render.safe_str(value, limit, multiline=multiline)
    if limit:
        assert cell_len(shown) <= limit


def test_the_stricter_length_rule_wins_and_none_is_empty():
    # The renderer used to show "x…" (2 characters) for a 1-character cell; the TUI never exceeds the limit.
    assert render.safe_text("xyz", 1).plain == ui.safe_text("xyz", 1).plain == "…"
    assert render.clip("xyz", 1) == "…" and render.clip("xyz", 0) == "xyz" and render.clip("xyz", None) == "xyz"
    # Wide characters count their cells, in both (the renderer used to count characters).
    assert render.safe_text("日本語日本語", 6).plain == ui.safe_plain("日本語日本語", 6) == "日本 …"
    # None is unknown, shown empty by both (the renderer used to print "None").
    assert render.safe_text(None).plain == ui.safe_plain(None) == render.escape_controls(None) == ""


def test_only_the_tui_styles_escapes_and_the_ellipsis():
    tui = ui.safe_text("a\x1bb" + "x" * 100, 10)
    assert [(tui.plain[s.start:s.end], s.style) for s in tui.spans] == [("\\x1b", ui.ESCAPE_STYLE), ("…", "dim")]
    assert not render.safe_text("a\x1bb" + "x" * 100, 10).spans
    assert ui.ELLIPSIS == render.ELLIPSIS


def test_the_tui_module_has_no_rule_of_its_own():
    """console/ui/safe.py delegates: no character class or escape format is written there."""
    import inspect

    source = inspect.getsource(ui)
    assert "re.compile" not in source and "escape_char" not in source and "UNSAFE" not in source


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.one_of(st.none(), st.integers(min_value=0, max_value=90)), st.booleans())
def test_any_text_any_limit_agree(value, limit, multiline):
    shown = render.safe_text(value, limit, multiline=multiline).plain
    assert ui.safe_text(value, limit, multiline=multiline).plain == shown
    assert not render.UNSAFE_KEEP_NEWLINE.search(shown)
    assert multiline or "\n" not in shown
    assert shown == render.safe_str(value, limit, multiline=multiline)
    if limit:
        assert cell_len(shown) <= limit
