"""The app against the real ConsoleService (real plugins, fake OpenSIPS MI on loopback)."""

from __future__ import annotations

import socket

import pytest
from textual.widgets import DataTable

service_module = pytest.importorskip("console.service", reason="console.service not available")

from console.config import Config  # noqa: E402
from console.ui.app import create_app  # noqa: E402
from console.ui.panes import ContactTable  # noqa: E402

from .helpers import screen_text, settle  # noqa: E402


def closed_port() -> int:
    """A loopback UDP port nobody listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_real_service_polls_and_shows_contacts(mi_server):
    port = closed_port()
    config = Config(mi_url=mi_server.url, ng=("127.0.0.1", port), cli=("127.0.0.1", port), timeout=0.3,
                    audit_log="/dev/null")
    service = service_module.ConsoleService(config)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "opensips OK" in text
            assert "3.4.18" in text
            # No rtpengine listens on that port: shown as a failure, never a crash.
            assert "rtpengine FAIL" in text and "no data" in text
            await pilot.press("2")
            await settle(app, pilot)
            assert app.query_one(ContactTable).row_count == 70
            await pilot.press("3")
            await settle(app, pilot)
            assert app.query_one("#calls-table", DataTable).row_count >= 9
    finally:
        await service.aclose()
