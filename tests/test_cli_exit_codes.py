"""One exit-code table (console.cli.EXIT), used by every command; README "Exit codes" says exactly it.

Every cell of the table has a scenario here that produces it through `main` (or, where only a real
process can, a subprocess), so a code that drifts from the table fails a test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console import cli
from console.cli import EXIT, main
from support.faults import clean_home, targets  # noqa: F401  (clean_home: fixture)
from support.terminal import Terminal, run_console_in_pty

pytestmark = pytest.mark.usefixtures("clean_home")

README = Path(__file__).parent.parent / "README.md"
COMMAND_ARGV = {None: [], "snapshot": ["snapshot"], "diagnose": ["diagnose"], "mi": ["mi", "version"],
               "trace": ["trace"], "exporter": ["exporter", "--listen", "127.0.0.1:0"]}


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refusals leave through the parser
        return exc.code


def as_terminal(monkeypatch) -> None:
    """For the console's rows that end before Textual starts: stdin and stderr look like a terminal."""
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("sys.__stderr__", Terminal(""))


def bad_toml(tmp_path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text("[opensips\nmi_url = 'x'\n")
    return str(path)


def closed_pipe_run(argv: list[str], home) -> int:
    """stdout is a pipe whose reader already left: the first write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "console", *argv], stdout=write_end, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(home)}, timeout=60)
    finally:
        os.close(write_end)
    assert done.stderr == b"", done.stderr.decode(errors="replace")[-1500:]
    return done.returncode


def closed_pipe_trace(home) -> int:
    """`trace --demo` into a pipe whose reader left: its first ladder line meets EPIPE (the banner on
    stderr is expected; a traceback is not)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "console", "trace", "--demo", "--demo-size", "20", "--duration", "20"],
                              stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env={**os.environ, "HOME": str(home)}, timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr.decode(errors="replace"), done.stderr.decode(errors="replace")[-1500:]
    return done.returncode


def exporter_stopped(mi_url: str, home) -> int:
    """`exporter` on a port from the OS until SIGTERM: a clean stop."""
    import signal

    process = subprocess.Popen([sys.executable, "-m", "console", "exporter", "--listen", "127.0.0.1:0", "--mi-url",
                                mi_url, "--interval", "0.5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(home)}, text=True)
    try:
        for line in process.stderr:  # "... on http://127.0.0.1:PORT/metrics" once it listens
            if "/metrics" in line:
                break
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def exporter_on_a_taken_port() -> int:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        return run(["exporter", "--listen", f"127.0.0.1:{taken.getsockname()[1]}", "--mi-url", "http://127.0.0.1:9/mi"])


def shm_warn_config(tmp_path) -> str:
    path = tmp_path / "warn.toml"
    path.write_text("[thresholds]\nshm_warn = 0.01\nshm_fail = 99\n")  # the fake's shm use is above 0.01 %
    return str(path)


# (outcome, command) -> how to get there; each returns the exit code.
SCENARIOS = {
    ("ok", None): lambda s, tmp, mp: run_console_in_pty(["--demo", "--no-events"], tmp).returncode,
    ("ok", "snapshot"): lambda s, tmp, mp: run(["snapshot", "--demo", "--demo-size", "20"]),
    ("ok", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--only", "opensips.mi", *targets(s.url, None, None)]),
    ("ok", "mi"): lambda s, tmp, mp: run(["mi", "version", *targets(s.url, None, None)]),
    ("partial", "snapshot"): lambda s, tmp, mp: run(["snapshot", *targets(s.url, None, None)]),  # relay down
    ("partial", "mi"): lambda s, tmp, mp: run(["mi", "ul_show_contact", "table_name=location", "aor=nobody",
                                               *targets(s.url, None, None)]),
    ("warn", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--only", "opensips.shm", "--config",
                                                 shm_warn_config(tmp), *targets(s.url, None, None)]),
    ("fail", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--only", "rtpengine.ng", *targets(s.url, None, None)]),
    ("unknown", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--only", "rtpengine.ports",
                                                    *targets(s.url, None, None)]),
    ("unreachable", "mi"): lambda s, tmp, mp: run(["mi", "version", *targets(None, None, None)]),
    ("usage", None): lambda s, tmp, mp: run(["--demo-size", "5"]),
    ("usage", "snapshot"): lambda s, tmp, mp: run(["snapshot", "--bogus"]),
    ("usage", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--mi-url", "garbage"]),
    ("usage", "mi"): lambda s, tmp, mp: run(["mi", "version", "plain", "key=value"]),
    ("config", None): lambda s, tmp, mp: (as_terminal(mp), run(["--config", bad_toml(tmp)]))[1],
    ("config", "snapshot"): lambda s, tmp, mp: run(["snapshot", "--config", bad_toml(tmp)]),
    ("config", "diagnose"): lambda s, tmp, mp: run(["diagnose", "--config", bad_toml(tmp)]),
    ("config", "mi"): lambda s, tmp, mp: run(["mi", "version", "--config", bad_toml(tmp)]),
    ("broken_pipe", "snapshot"): lambda s, tmp, mp: closed_pipe_run(["snapshot", *targets(s.url, None, None)], tmp),
    ("broken_pipe", "diagnose"): lambda s, tmp, mp: closed_pipe_run(["diagnose", "--list"], tmp),
    ("broken_pipe", "mi"): lambda s, tmp, mp: closed_pipe_run(["mi", "version", "--mi-url", s.url], tmp),
    ("ok", "trace"): lambda s, tmp, mp: run(["trace", "--demo", "--demo-size", "20", "--duration", "0.5"]),
    # the captured OpenSIPS has no tracer module: what to add is said, exit 1
    ("partial", "trace"): lambda s, tmp, mp: run(["trace", *targets(s.url, None, None)]),
    ("unreachable", "trace"): lambda s, tmp, mp: run(["trace", *targets(None, None, None)]),
    ("usage", "trace"): lambda s, tmp, mp: run(["trace", "--duration=-1"]),
    ("config", "trace"): lambda s, tmp, mp: run(["trace", "--config", bad_toml(tmp)]),
    ("broken_pipe", "trace"): lambda s, tmp, mp: closed_pipe_trace(tmp),
    ("ok", "exporter"): lambda s, tmp, mp: exporter_stopped(s.url, tmp),
    ("partial", "exporter"): lambda s, tmp, mp: exporter_on_a_taken_port(),
    ("usage", "exporter"): lambda s, tmp, mp: run(["exporter", "--listen", "nowhere"]),
    ("config", "exporter"): lambda s, tmp, mp: run(["exporter", "--config", bad_toml(tmp)]),
}
for _command in COMMAND_ARGV:  # Ctrl-C anywhere before the command ends
    SCENARIOS[("interrupted", _command)] = lambda s, tmp, mp, c=_command: (
        as_terminal(mp), _interrupt_services(mp), run(COMMAND_ARGV[c]))[2]


def _interrupt_services(mp) -> None:
    """Every command builds its service through _service (trace's lives in console.cli_trace)."""
    from console import cli_fleet, cli_trace

    mp.setattr(cli, "_service", _interrupt)
    mp.setattr(cli_trace, "_service", _interrupt)
    mp.setattr(cli_fleet, "_load_config", _interrupt)  # the exporter builds its nodes' services itself


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


CELLS = sorted(((outcome, command) for outcome, row in EXIT.items() for command in row),
               key=lambda cell: (cell[0], cell[1] or ""))


def test_every_cell_of_the_table_has_a_scenario():
    assert set(SCENARIOS) == set(CELLS)


@pytest.mark.parametrize("outcome, command", CELLS, ids=[f"{o}-{c or 'console'}" for o, c in CELLS])
def test_each_cell(outcome, command, mi_server, tmp_path, monkeypatch, capsys):
    assert SCENARIOS[(outcome, command)](mi_server, tmp_path, monkeypatch) == EXIT[outcome][command]
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- README

README_ROWS = {  # README row label -> EXIT outcome
    "success": "ok", "problem found": "partial", "warning": "warn", "failure": "fail", "unknown": "unknown",
    "OpenSIPS MI unreachable": "unreachable", "command line refused": "usage", "configuration refused": "config",
    "interrupted (Ctrl-C)": "interrupted", "output closed early (`| head`)": "broken_pipe",
}
README_COLUMNS = ["console", "snapshot", "diagnose", "mi", "trace", "exporter"]


def readme_table() -> dict[str, dict[str | None, int]]:
    text = README.read_text()
    lines = text[text.index("Exit codes ("):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    rows = lines[start:end]
    table: dict[str, dict[str | None, int]] = {}
    for line in rows[2:]:  # header and |---|
        cells = [c.strip() for c in re.split(r"(?<!`)\|(?! head)", line.strip().strip("|"))]
        outcome = README_ROWS[cells[0]]
        table[outcome] = {}
        for column, cell in zip(README_COLUMNS, cells[1:]):
            number = re.match(r"\*?\*?(\d+)", cell)
            if number:
                table[outcome][None if column == "console" else column] = int(number.group(1))
    return table


def test_the_readme_table_is_the_code_table():
    assert readme_table() == EXIT
