"""An output command piped into `head`/`less` that closes early exits quietly, as `cat` does.

Exit code: 141 (128 + SIGPIPE), what a shell reports for `cat` in the same place, so
`set -o pipefail` scripts still see that the output was cut; no traceback, nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

# Far more than a pipe buffer holds (64 KiB on Linux): the write is still going on when the reader leaves.
BIG_DUMP = {"Domains": [{"name": "location", "hash_size": 512, "AORs": [
    {"AOR": f"user{i:06d}@example.com", "Contacts": [{"Contact": f"sip:user{i:06d}@192.0.2.1:5060", "Expires": 3600}]}
    for i in range(20_000)]}]}


def _run_and_close_early(argv: list[str], home) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("OPSCONSOLE_")}
    proc = subprocess.Popen([sys.executable, "-m", "console", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    try:
        head = proc.stdout.read(100)  # what `head -c 100` reads before it exits
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, code, head, err)


def test_mi_ul_dump_into_a_closed_pipe_exits_quietly_with_141(mi_server, tmp_path):
    mi_server.set_response("ul_dump", BIG_DUMP)
    done = _run_and_close_early(["mi", "ul_dump", "--mi-url", mi_server.url, "--timeout", "5"], tmp_path)
    assert done.stdout.startswith(b"{")  # the reader did get the start of the answer
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stderr == ""
    assert done.returncode == 141


def test_snapshot_into_a_closed_pipe_exits_quietly_with_141(tmp_path):
    done = _run_and_close_early(["snapshot", "--json", "--demo", "--demo-size", "3000"], tmp_path)
    assert done.stdout.startswith(b"{")
    assert done.stderr == "", done.stderr
    assert done.returncode == 141


def test_a_reader_that_reads_everything_still_gets_exit_0(mi_server, tmp_path):
    """The quiet exit is for a reader that left, not for every run."""
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "console", "mi", "version", "--mi-url", mi_server.url],
                          capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and b"Server" in done.stdout and done.stderr == b""
