"""The interactive console refuses, with one line, when it has no terminal to draw on or read keys from
(Textual draws on stderr: `opsconsole 2>err.log` showed a blank screen and filled the file with escape
codes).  Exit 2, before Textual is imported (issue #14, item 8)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from console.cli import main
from support.faults import clean_home  # noqa: F401  (fixture)
from support.terminal import run_console_in_pty


def run_console(tmp_path, *, stdin, stderr) -> tuple[int, str]:
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "xterm-256color"}
    code = subprocess.run([sys.executable, "-m", "console", "--demo", "--no-events"], stdin=stdin, stderr=stderr,
                          stdout=subprocess.DEVNULL, env=env, timeout=60).returncode
    return code


def test_stderr_redirected_to_a_file_is_refused_with_one_plain_line(tmp_path):
    master, slave = pty.openpty()  # stdin is a real terminal; only stderr is not
    log = tmp_path / "err.log"
    try:
        with log.open("wb") as err:
            code = run_console(tmp_path, stdin=slave, stderr=err)
    finally:
        os.close(master)
        os.close(slave)
    text = log.read_text()
    assert code == 2
    assert text.count("\n") == 1 and "\x1b" not in text  # one line, no escape codes
    assert "stderr" in text and "terminal" in text and "snapshot" in text and "diagnose" in text


def test_stdin_that_is_not_a_terminal_is_refused(tmp_path):
    master, slave = pty.openpty()
    try:
        code = run_console(tmp_path, stdin=subprocess.DEVNULL, stderr=slave)
        os.set_blocking(master, False)
        shown = os.read(master, 65536).decode(errors="replace")
    finally:
        os.close(master)
        os.close(slave)
    assert code == 2
    assert "stdin" in shown and "stderr" not in shown.split("(")[0]


@pytest.mark.usefixtures("clean_home")
def test_in_process_the_refusal_comes_before_textual_and_before_any_target(capsys, monkeypatch):
    started = []
    monkeypatch.setattr("console.cli._platform", lambda args: started.append(args))
    assert main(["--mi-url", "http://127.0.0.1:9/mi"]) == 2  # pytest's stdin is not a terminal
    err = capsys.readouterr().err
    assert err.startswith("opsconsole: the interactive console needs a terminal") and err.count("\n") == 1
    assert started == []


def test_on_a_terminal_the_console_runs_and_quits_with_0(tmp_path):
    done = run_console_in_pty(["--demo", "--no-events"], tmp_path)
    assert b"Overview" in done.stdout
    assert done.returncode == 0
