"""Issue #18: a one-shot command sends its ul_dump before loading the console (opsconsole_opensips.prefetch,
console.cli_common.start_prefetch) and the OpenSIPS source reads that reply instead of asking again.
Nothing is lost: the same contacts, the same JSON, the same errors, and no request waits behind the dump."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from console.cli import build_parser, main
from console.cli_common import early_settings
from console.config import load_config
from console.plugins import CollectOptions
from opsconsole_opensips import prefetch
from opsconsole_opensips.source import OpenSIPSSource

GUARD_S = 10


def early(url: str, *extra: str, env=None):
    return early_settings(build_parser().parse_args(["snapshot", "--mi-url", url, *extra]), env=env or {})


async def collect(url: str):
    source = OpenSIPSSource(load_config({"mi_url": url, "timeout": 2.0}, env={}, discover=False))
    try:
        return await asyncio.wait_for(source.collect(CollectOptions()), GUARD_S)
    finally:
        await source.aclose()


def dumps_sent(mi_server) -> int:
    return sum(1 for method, _ in mi_server.requests if method in ("ul_dump", "usrloc:dump"))


def prefetched(mi_server, settings) -> None:
    """Start the prefetch and wait until the fake has the dump request (it logs it from its own thread)."""
    import time

    before = dumps_sent(mi_server)
    prefetch.start(settings)
    deadline = time.monotonic() + GUARD_S
    while dumps_sent(mi_server) == before and time.monotonic() < deadline:
        time.sleep(0.005)


async def test_the_source_reads_the_prefetched_dump_instead_of_asking_again(mi_server):
    plain = await collect(mi_server.url)
    assert dumps_sent(mi_server) == 1 and plain.contacts
    mi_server.requests.clear()
    prefetched(mi_server, early(mi_server.url))
    assert dumps_sent(mi_server) == 1  # sent before anything else was loaded
    methods_before = [m for m, _ in mi_server.requests]
    state = await collect(mi_server.url)
    assert dumps_sent(mi_server) == 1 and prefetch.take(mi_server.url) is None  # taken once, not asked again
    assert methods_before[:2] == ["version", "get_statistics"] and methods_before[-1] == "ul_dump"
    assert state.contacts == plain.contacts and state.contacts_note == plain.contacts_note
    assert state.contacts_mode == plain.contacts_mode == "full"


@pytest.mark.parametrize("why", ["over_full_sync_max", "no_contacts", "fifo", "discovery", "forced_version"])
def test_no_prefetch_when_the_source_would_not_dump_or_the_target_is_not_known_yet(mi_server, tmp_path, why):
    url = mi_server.url
    if why == "over_full_sync_max":
        cfg = tmp_path / "c.toml"
        cfg.write_text("[opensips]\nfull_sync_max = 1\n")  # the captured 3.4 node holds more than one contact
        settings = early(url, "--config", str(cfg))
    elif why == "no_contacts":
        settings = early(url, "--no-contacts")
    elif why == "fifo":
        settings = early(url, env={"OPSCONSOLE_MI_FIFO": "/run/x_fifo"})
    elif why == "discovery":
        settings = early_settings(build_parser().parse_args(["diagnose"]), env={})
    else:
        cfg = tmp_path / "c.toml"
        cfg.write_text('[opensips]\nversion = "3.4"\n')
        settings = early(url, "--config", str(cfg))
    if settings is not None:
        prefetch.start(settings)
    assert dumps_sent(mi_server) == 0 and prefetch.take(url) is None


def test_a_40_node_gets_no_prefetch(mi_server_40):
    prefetch.start(early(mi_server_40.url))
    assert dumps_sent(mi_server_40) == 0 and prefetch.take(mi_server_40.url) is None


def test_credentials_come_from_the_environment_then_the_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[opensips]\nuser = "ops"\npassword = "pw"\nfull_sync_max = 500\n')
    cfg.chmod(0o600)  # a file holding a password must be (config.py refuses it otherwise, and so no prefetch)
    settings = early("http://127.0.0.1:1/mi", "--config", str(cfg))
    assert settings["mi_auth"] == ("ops", "pw") and settings["full_sync_max"] == 500
    settings = early("http://127.0.0.1:1/mi", "--config", str(cfg),
                     env={"OPSCONSOLE_MI_USER": "env", "OPSCONSOLE_MI_PASSWORD": "x"})
    assert settings["mi_auth"] == ("env", "x")
    assert early("http://127.0.0.1:1/mi", "--full-sync")["force_full_sync"] is True


async def test_a_prefetched_dump_that_fails_is_asked_again_and_nothing_is_lost(mi_server):
    plain = await collect(mi_server.url)
    prefetched(mi_server, early(mi_server.url))
    pending = prefetch.take(mi_server.url)
    pending.sock.close()  # the prefetched connection is gone: the source must ask itself
    dead = prefetch.Prefetched(pending.url, pending.method, socket.socket())
    prefetch._pending[mi_server.url] = dead
    mi_server.requests.clear()
    state = await collect(mi_server.url)
    assert dumps_sent(mi_server) == 1 and state.contacts == plain.contacts


async def test_a_prefetched_error_reads_as_the_sources_own(mi_server):
    mi_server.set_fault("http500", methods=["ul_dump"])
    plain = await collect(mi_server.url)
    prefetched(mi_server, early(mi_server.url))
    mi_server.requests.clear()
    state = await collect(mi_server.url)
    assert dumps_sent(mi_server) == 0  # the prefetched 500 was the answer
    assert state.contacts is None and state.contacts_note == plain.contacts_note and "HTTP 500" in state.contacts_note
    assert state.errors == plain.errors


def test_snapshot_json_is_the_same_with_and_without_the_prefetch(mi_server, capsys, monkeypatch):
    volatile = {"collected_at", "elapsed_ms", "age_s", "at", "as_of", "uptime_s", "now", "duration"}  # duration: now - start

    def stable(value):
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return value

    argv = ["snapshot", "--json", "--mi-url", mi_server.url, "--ng", "127.0.0.1:9", "--cli", "127.0.0.1:9",
            "--timeout", "0.5"]
    main(argv)
    with_prefetch = json.loads(capsys.readouterr().out)
    sent = dumps_sent(mi_server)
    from console import cli

    monkeypatch.setattr(cli, "start_prefetch", lambda args: None)
    main(argv)
    without = json.loads(capsys.readouterr().out)
    assert sent == 1 and dumps_sent(mi_server) == 2 and with_prefetch["registrations"]
    assert stable(with_prefetch["registrations"]) == stable(without["registrations"])
    assert stable(with_prefetch["dialogs"]) == stable(without["dialogs"])
    assert with_prefetch.keys() == without.keys()
    assert stable(with_prefetch["overview"]["opensips"]) == stable(without["overview"]["opensips"])
