"""Fault matrix, terminal rows: `diagnose` on a dumb terminal, with NO_COLOR, and into a pipe.

Run as a real subprocess on a pseudo-terminal, because colour decisions depend on
isatty() and the environment.  A control row (a colour terminal) proves that the
check for escape sequences can fail."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from support.faults import assert_clean_output, targets

ESC = b"\x1b["
CHECKS = "rtpengine.ng,opensips.mi"  # both fail against dead targets: status words must show


def _base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPSCONSOLE_", "FORCE_COLOR", "NO_COLOR", "TERM", "COLUMNS", "LINES", "TTY_"))}
    env["HOME"] = "/nonexistent"  # no operator config file
    env.update(extra)
    return env


def _diagnose_argv() -> list[str]:
    return [sys.executable, "-m", "console", "diagnose", "--only", CHECKS, *targets(None, None, None)]


def run_on_pty(env: dict[str, str]) -> tuple[int, bytes, str]:
    """(exit code, what the terminal received, stderr)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(_diagnose_argv(), stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(slave)
    received = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(master)
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        code = proc.wait(timeout=30)
    return code, received, stderr


def _assert_plain_with_words(code: int, output: bytes, stderr: str) -> None:
    assert ESC not in output, output[:400]
    text = output.decode()
    assert "FAIL" in text and "rtpengine.ng" in text and "opensips.mi" in text
    assert code == 2
    assert_clean_output(text, stderr)


def test_colour_terminal_gets_escapes_control_row():
    code, output, stderr = run_on_pty(_base_env(TERM="xterm-256color"))
    assert ESC in output  # otherwise the rows below prove nothing
    assert code == 2


def test_term_dumb_gets_plain_text():
    _assert_plain_with_words(*run_on_pty(_base_env(TERM="dumb")))


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_no_color_gets_plain_text(term):
    _assert_plain_with_words(*run_on_pty(_base_env(TERM=term, NO_COLOR="1")))


def test_output_to_a_pipe_is_plain():
    done = subprocess.run(_diagnose_argv(), env=_base_env(TERM="xterm-256color"), capture_output=True, timeout=60)
    _assert_plain_with_words(done.returncode, done.stdout, done.stderr.decode())
