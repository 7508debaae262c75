"""Run a live session for several polls with textual unimportable; print what its views held, as JSON.

    python -P tests/support/headless_live.py CONFIG_FILE demo
    python -P tests/support/headless_live.py CONFIG_FILE MI_URL NG_HOST:PORT CLI_HOST:PORT

(-P: this directory's platform.py must not shadow the standard library's.)

Used by tests/test_live_session.py in a subprocess: a finder at the head of sys.meta_path refuses
every `textual` module, so a headless module that imported Textual (directly or through another
module) fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.abc
import json
import sys


class NoTextual(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "textual" or name.startswith("textual."):
            raise ImportError(f"textual is blocked in this process ({name})")
        return None


sys.meta_path.insert(0, NoTextual())

from console.config import load_config  # noqa: E402
from console.live import Interest, LiveSession  # noqa: E402
from console.plugins import load_plugins  # noqa: E402
from console.service import ConsoleService  # noqa: E402

# (screen, wants the details of the first media session only)
CYCLE = (("overview", False), ("overview", False), ("registrations", False), ("media", True), ("calls", False),
         ("checks", False))


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


@contextlib.asynccontextmanager
async def platform(argv: list[str]):
    """Config overrides for the target: the embedded demo, or the addresses given."""
    if argv[0] == "demo":
        from opsconsole_demo import DemoPlatform

        async with DemoPlatform(size=70, real_rtpengine=False, calls=6) as demo:
            yield demo.overrides()
        return
    yield {"mi_url": argv[0], "ng": _address(argv[1]), "cli": _address(argv[2])}


async def main(config_file: str, argv: list[str]) -> dict:
    async with platform(argv) as overrides:
        plugins = load_plugins()
        config = load_config(overrides | {"timeout": 5.0}, config_file=config_file, discover=False,
                             plugin_sections=plugins.config_sections(), discoverers=())
        service = ConsoleService(config, plugins=plugins)
        try:
            return await watch(LiveSession(service, interval=0.2))
        finally:
            await service.aclose()


async def watch(session: LiveSession) -> dict:
    published: list = []
    session.subscribe(published.append)
    polls = []
    before: dict = {}  # Call-ID -> the session object of the view before
    for screen, one_detail in CYCLE:
        wanted = None
        if one_detail and session.view.media is not None and session.view.media.sessions:
            wanted = frozenset({session.view.media.sessions[0].callid})
        session.set_interest(Interest(screen=screen, detail_callids=wanted))
        view = await session.poll_once()
        options = session.last_options
        polls.append({
            "screen": screen,
            "asked_contacts": options.contacts, "asked_dialogs": options.dialogs,
            "asked_details": (None if not options.media_details else
                              "all" if options.media_detail_callids is None else sorted(options.media_detail_callids)),
            "on_screen": sorted(wanted or ()),
            "rotation_size": session.rotation_size(len(view.media.sessions) if view.media is not None else 0),
            "contacts": None if view.contacts is None else len(view.contacts),
            "registered": view.registered_count(),
            "contacts_mode": view.contacts_mode,
            "stale": dict(view.stale),
            "dialogs": None if view.dialogs is None else sorted(d.callid for d in view.dialogs),
            "sessions": None if view.media is None else sorted(s.callid for s in view.media.sessions),
            "detailed": None if view.media is None else sorted(s.callid for s in view.media.sessions if s.legs),
            # queried by this poll: a session not queried keeps its last detailed object (LiveState)
            "queried": None if view.media is None else sorted(
                s.callid for s in view.media.sessions if s.legs and before.get(s.callid) is not s),
            "collector_calls": len(view.latest.calls),  # joined by the session only
            "calls": [{"callid": c.callid, "dialog": c.dialog is not None, "media": c.media is not None}
                      for c in view.calls],
            "checks": {c.id: c.status.word for c in view.checks},
            "checks_at": view.checks_at,
            "history": len(view.history["registrations"]),
            "index": None if view.contact_index is None else len(view.contact_index.contacts),
            "sources": {name: status.ok for name, status in view.sources.items()},
            "polls": view.polls,
        })
        before = {s.callid: s for s in view.media.sessions} if view.media is not None else {}
    try:
        dataclasses.replace(published[-1]).__setattr__("calls", ())
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    try:
        import textual  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    return {"polls": polls, "published": len(published), "same_views": published[-1] is session.view,
            "frozen": frozen, "textual_blocked": blocked,
            "textual_modules": sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
