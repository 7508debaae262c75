"""Shared pytest configuration.  Fixtures live in tests/support/*, one module per area."""

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

# Deterministic rendering for UI tests and no colour surprises.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

FIXTURES = TESTS / "fixtures"

pytest_plugins = [
    "support.hermetic",
    "support.mi_server",
    "support.rtpengine_daemon",
]


@pytest.fixture(autouse=True)
def no_host_discovery(tmp_path_factory, monkeypatch):
    """No test sees this machine's daemons, home or /etc: the host may run other OpenSIPS and
    RTPengine instances (on the very default ports), and a test must not depend on them.

    The process scan and the socket tables read an empty proc tree, HOME is an empty directory,
    /etc candidates point into it, OPSCONSOLE_* variables are gone.  A test about discovery passes
    its fixture trees (discover(proc_root=..., home=...), HostSource(finder=...)); a test about a
    real daemon it started passes proc_root="/proc" and looks only at its own pid."""
    from console import config
    from opsconsole_host import discovery, procfs

    root = tmp_path_factory.mktemp("isolated")
    (root / "proc" / "net").mkdir(parents=True)
    (root / "home").mkdir()
    monkeypatch.setattr(procfs, "HOST_PROC_ROOT", str(root / "proc"))
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setattr(discovery, "OPENSIPS_CLI_ETC", (root / "etc" / "opensips-cli.cfg",))
    monkeypatch.setattr(config, "CONFIG_PATHS", (Path("~/.config/opsconsole/config.toml"),
                                                 root / "etc" / "opsconsole" / "config.toml"))
    for name in list(os.environ):
        if name.startswith("OPSCONSOLE_"):
            monkeypatch.delenv(name)
    return root


@pytest.fixture
def real_host_proc(monkeypatch):
    """For a test about a real daemon it started itself: the host's /proc again.  Other daemons on
    this machine then show up too, so such a test looks only at its own pids and sockets."""
    from opsconsole_host import procfs

    monkeypatch.setattr(procfs, "HOST_PROC_ROOT", "/proc")
