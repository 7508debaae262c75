"""The one-line key bar that replaces Textual's Footer (one Static-like widget, not one per key)."""

from __future__ import annotations

from console.ui.keybar import KeyBar

from .helpers import open_screen, screen_text, settle


async def start(app, pilot) -> None:
    await settle(app, pilot)
    assert app.poll_count >= 1


def bar_line(app) -> str:
    return screen_text(app).splitlines()[-1]


async def test_the_bar_follows_the_focused_pane_and_keeps_the_palette_at_the_right_edge(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        line = bar_line(app)
        assert "1 Overview" in line and "q Quit" in line and "/ Filter" not in line
        assert line.rstrip().endswith(": palette")
        await pilot.press("2")
        await settle(app, pilot)
        line = bar_line(app)
        assert line.startswith(" / Filter  t Transport  s Sort ") and "1 Overview" in line
        assert line.rstrip().endswith(": palette")


async def test_an_unchanged_key_set_is_not_rendered_again(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await start(app, pilot)
        await open_screen(app, pilot, "2")
        bar = app.query_one(KeyBar)
        shown = bar.shown
        app.screen.refresh_bindings()  # what every focus change publishes
        app.poll_now()
        await settle(app, pilot)
        assert bar.shown is shown  # same keys: nothing recomposed, nothing re-rendered


async def test_a_narrow_bar_drops_whole_keys_and_clicks_run_the_key(make_app):
    app = make_app()
    async with app.run_test(size=(60, 24)) as pilot:
        await start(app, pilot)
        line = bar_line(app)
        assert len(line) <= 60 and line.rstrip().endswith(": palette")
        words = line.split("▏")[0].split()
        assert all(word in {"1", "Overview", "2", "Regs", "3", "Calls", "4", "Media", "5", "Checks", "6", "MI",
                            "p", "Pause", "?", "Help", "q", "Quit"} for word in words)  # no key cut in half
        x = line.index("3 Calls")
        await pilot.click(KeyBar, offset=(x + 1, 0))
        await settle(app, pilot)
        assert app.current == "calls"
