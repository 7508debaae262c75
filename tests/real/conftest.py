"""Fixtures for the tests against a real OpenSIPS (3.4 and 4.0) + a real RTPengine, with real SIP traffic.

    real_platform       session-scoped, parametrized over OpenSIPS 3.4 and 4.0 (support.platform): registrations
                        over UDP, TCP and WS, held calls UDP->UDP, UDP->WS, TCP->TCP, WS->UDP.  Tests must leave
                        it as they found it; destructive faults start their own daemons.
    opensips_version    "3.4" / "4.0" for function-scoped daemons (skips/fails like real_platform)
    start_real_platform factory for a platform of one test (killed at its end): opts of support.platform.start_platform
    opsconsole          run `console.cli.main` in-process, isolated from the host's configuration: HOME is a
                        temp dir, no OPSCONSOLE_* variable, `--config` names an empty TOML (or the given text);
                        the host checks read the real /proc (the daemons under test run here)

Needs OPSCONSOLE_TEST_OPENSIPS (see support.opensips_daemon): without it every test here skips with one line,
unless OPSCONSOLE_REQUIRE_REAL=1 or CI is set (then they fail).
"""

from __future__ import annotations

import json
import os
from typing import Iterator

import pytest

from console.cli import main
from support.opensips_daemon import VERSIONS, require_real
from support.platform import RealPlatform, start_platform


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"opensips-{v}" for v in VERSIONS])
def real_platform(request) -> Iterator[RealPlatform]:
    require_real(request.param)
    platform = start_platform(request.param)
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture(params=VERSIONS, ids=[f"opensips-{v}" for v in VERSIONS])
def opensips_version(request) -> str:
    require_real(request.param)
    return request.param


@pytest.fixture
def start_real_platform(opensips_version):
    """Factory for platforms of this test alone (destructive faults): `start_real_platform(**start_platform opts)`."""
    started: list[RealPlatform] = []

    def start(**options) -> RealPlatform:
        platform = start_platform(opensips_version, **options)
        started.append(platform)
        return platform

    try:
        yield start
    finally:
        for platform in started:
            platform.close()


# The lab's calls carry signalling only (sipp sends no RTP; a WebRTC leg would need a DTLS handshake), so
# after `silent_after_s` the quality checks would rightly call them silent or one-way.  Tests about other
# findings set the threshold beyond the suite's length; tests/real/test_real_quality.py proves the checks.
LAB_THRESHOLDS = "silent_after_s = 86400\n"


def lab_config(config: str = "") -> str:
    """`config` (TOML text) with the lab's thresholds added to its [thresholds] table (or a new one)."""
    if "[thresholds]\n" in config:
        return config.replace("[thresholds]\n", "[thresholds]\n" + LAB_THRESHOLDS, 1)
    return config + "\n[thresholds]\n" + LAB_THRESHOLDS


class Opsconsole:
    """`opsconsole ARGS` in-process; returns (exit code, stdout)."""

    def __init__(self, tmp_path, capsys, monkeypatch) -> None:
        self.tmp_path, self.capsys = tmp_path, capsys
        home = tmp_path / "home"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
        for name in list(os.environ):
            if name.startswith("OPSCONSOLE_"):
                monkeypatch.delenv(name)
        self.config_path = tmp_path / "opsconsole.toml"
        self.config_path.write_text(lab_config())

    def run(self, *args: str, config: str = "") -> tuple[int, str]:
        self.config_path.write_text(lab_config(config))
        self.capsys.readouterr()
        code = main([*args, "--config", str(self.config_path)])
        captured = self.capsys.readouterr()
        self.last_err = captured.err  # what the command said on stderr
        return code, captured.out

    def json(self, *args: str, config: str = "") -> tuple[int, dict]:
        code, out = self.run(*args, "--json", config=config)
        return code, json.loads(out)


@pytest.fixture
def opsconsole(tmp_path, capsys, monkeypatch, real_host_proc) -> Opsconsole:
    # real_host_proc: the daemons under test run on this host, so the host checks read the real /proc
    # (the suite-wide isolation gives them an empty tree).  They look up the owners of the sockets given
    # on the command line, all ours; other daemons on this host must not change any verdict.
    return Opsconsole(tmp_path, capsys, monkeypatch)


def checks_by_id(report: dict) -> dict[str, dict]:
    return {check["id"]: check for check in report["checks"]}
