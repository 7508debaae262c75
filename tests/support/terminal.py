"""A terminal for CLI tests: a fake one for in-process checks, a real pseudo-terminal for a real run."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time


class Terminal(io.StringIO):
    """A stream that says it is a terminal (stdin with a typed answer, or stderr)."""

    def isatty(self) -> bool:
        return True


def run_console_in_pty(argv: list[str], home, *, ready: bytes = b"Overview", keys: bytes = b"q",
                       timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Start `opsconsole ARGV` on a 120x40 pseudo-terminal, wait for `ready` on screen, type `keys`,
    and return its exit code and what it drew.  The process is killed if it outlives `timeout`."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCONSOLE_")}
    env.update(HOME=str(home), TERM="xterm-256color")
    proc = subprocess.Popen([sys.executable, "-m", "console", *argv], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + timeout
        sent = False
        while time.monotonic() < deadline:
            if not sent and ready in screen:
                os.write(master, keys)
                sent = True
            readable, _, _ = select.select([master], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return subprocess.CompletedProcess(argv, code, screen, b"")
