"""Pilot helpers for the UI tests."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


async def settle(app: App, pilot) -> None:
    """Let workers (poll, checks, MI) finish and the screen repaint."""
    for _ in range(50):  # a finished worker may have started another (poll -> checks)
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            return


async def open_screen(app: App, pilot, key: str) -> str:
    """Let the app settle, press a screen key, settle again; what the terminal shows then."""
    await settle(app, pilot)
    await pilot.press(key)
    await settle(app, pilot)
    return screen_text(app)


async def type_into(app: App, pilot, text: str) -> None:
    """Insert text into the focused Input in one go (Pilot types ~15 keys/s).

    The Input posts Changed exactly as for typed keys; tests about
    per-keystroke narrowing press the keys one by one instead.
    """
    app.focused.insert_text_at_cursor(text)
    await settle(app, pilot)
