"""Fault matrix, TUI rows: the console keeps running through MI and ng faults, says
FAIL/STALE with the reason in its header, and recovers by itself.

The app polls only when the test asks (interval 3600 s + `poll_now`), against the
real ConsoleService and plugins, with fake peers on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from console.config import Config
from console.service import ConsoleService
from console.ui.app import create_app
from support.faults import (LIVE_SUBSCRIPTIONS, CliResponder, NgResponder, assert_mi_read_only, assert_ng_read_only, free_port,
                            mi_server_at, release_hung)
from ui.helpers import screen_text, settle

SIZE = (120, 40)


def header_text(app) -> str:
    """The screen as one line of words (the header wraps at word boundaries)."""
    return " ".join(screen_text(app).split())


class Platform:
    """Healthy fake OpenSIPS + rtpengine at fixed addresses, which tests break and mend."""

    def __init__(self) -> None:
        self.mi_port = free_port()
        self.mi = mi_server_at(self.mi_port)
        self.ng = NgResponder("normal").start()
        self.cli = CliResponder("normal").start()

    def config(self) -> Config:
        return Config(mi_url=self.mi.url, ng=self.ng.address, cli=self.cli.address, timeout=0.5,
                      audit_log="/dev/null")

    def break_mi(self, fault: str) -> None:
        if fault == "refuse":
            self.mi.stop()
        else:
            self.mi.set_fault(fault)

    def mend_mi(self) -> None:
        if self.mi._stopped:
            self.mi = mi_server_at(self.mi_port)
        else:
            release_hung(self.mi)

    def stop(self) -> None:
        for peer in (self.mi, self.ng, self.cli):
            peer.stop()


@pytest.fixture
def platform():
    fakes = Platform()
    try:
        yield fakes
    finally:
        fakes.stop()


async def poll(app, pilot) -> str:
    app.poll_now()
    await settle(app, pilot)
    return header_text(app)


@pytest.mark.parametrize("fault, reason", [("refuse", "connection refused"),
                                           ("silent", "did not answer"),
                                           ("http500", "HTTP 500")])
async def test_mi_fault_while_running_shows_fail_stale_and_recovers(platform, fault, reason):
    service = ConsoleService(platform.config())
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "opensips OK" in header_text(app)

            platform.break_mi(fault)
            text = await poll(app, pilot)
            assert "opensips FAIL" in text and reason in text and "STALE" in text
            assert "rtpengine OK" in text  # the other source is unaffected
            assert app.is_running

            platform.mend_mi()
            text = await poll(app, pilot)
            assert "opensips OK" in text and "opensips FAIL" not in text
    finally:
        await service.aclose()
    assert_mi_read_only(platform.mi, allow=LIVE_SUBSCRIPTIONS)
    assert_ng_read_only(platform.ng.commands)


async def test_ng_silent_while_running_shows_fail_stale_and_recovers(platform):
    # No CLI to fall back on (refused at once): with ng silent the rtpengine source fails.
    config = replace(platform.config(), cli=("127.0.0.1", free_port()))
    service = ConsoleService(config)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert "rtpengine OK" in header_text(app)

            platform.ng.mode = "silent"
            text = await poll(app, pilot)
            assert "rtpengine FAIL" in text and "no ng reply" in text and "STALE" in text
            assert "opensips OK" in text and app.is_running

            platform.ng.mode = "normal"
            text = await poll(app, pilot)
            assert "rtpengine OK" in text
    finally:
        await service.aclose()
    assert_ng_read_only(platform.ng.commands)
    assert_mi_read_only(platform.mi, allow=LIVE_SUBSCRIPTIONS)


async def test_resize_to_40x10_and_back_keeps_running(platform):
    platform.break_mi("http500")
    service = ConsoleService(replace(platform.config(), events=False))  # --no-events: strictly read-only
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.resize_terminal(40, 10)
            await settle(app, pilot)
            assert app.is_running and app.size == (40, 10)
            assert "opsconsole" in screen_text(app)
            await pilot.resize_terminal(*SIZE)
            text = await poll(app, pilot)
            assert app.size == SIZE and "opensips FAIL" in text and "HTTP 500" in text
    finally:
        await service.aclose()
    assert_mi_read_only(platform.mi)
    assert platform.mi.requests  # it did talk to the MI


async def test_no_color_keeps_the_status_words(platform, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    platform.break_mi("http500")
    service = ConsoleService(platform.config())
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.no_color  # Textual renders monochrome
            text = header_text(app)
            assert "opensips FAIL" in text and "no data" in text and "rtpengine OK" in text
    finally:
        await service.aclose()


async def test_header_never_shows_mi_credentials(platform):
    secret = "Hunter2-Secret"
    config = replace(platform.config(), mi_url=platform.mi.url.replace("http://", f"http://ops:{secret}@"))
    service = ConsoleService(config)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            text = header_text(app)
            assert "opensips OK" in text and f"127.0.0.1:{platform.mi_port}/mi" in text
            assert secret not in text
    finally:
        await service.aclose()


async def test_a_hostile_error_text_from_the_peer_is_shown_literally(platform):
    """An MI error message is untrusted: markup stays visible text, control bytes never reach the terminal."""
    platform.mi.set_fault("jsonrpc_error", message="[bold red]pwned[/] \x1b[2J")
    service = ConsoleService(platform.config())
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            text = header_text(app)
            assert "opensips FAIL" in text and "[bold red]pwned[/]" in text
            assert "\x1b" not in screen_text(app)
    finally:
        await service.aclose()
