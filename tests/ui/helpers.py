"""Pilot helpers for the UI tests."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


async def settle(app: App, pilot) -> None:
    """Let workers (poll, checks, MI) finish and the screen repaint."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
