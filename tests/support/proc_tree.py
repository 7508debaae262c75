"""Fixture /proc trees: processes, their descriptors and the socket tables, written into a directory.

    tree = ProcTree(tmp_path / "proc")
    tree.process(4242, ["rtpengine", "--listen-ng=127.0.0.1:2223"], exe=tree.binary("rtpengine"),
                 sockets=[("udp", "127.0.0.1", 2223)])
    tree.process(100, ["opensips", "-f", cfg], exe=tree.binary("opensips"), fifos=["/tmp/opensips_fifo"])

Only what opsconsole_host reads: /proc/PID/{comm,cmdline,status,exe,cwd,fd/*} and
/proc/net/{tcp,tcp6,udp,udp6} (TCP sockets in LISTEN, UDP ones bound).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from opsconsole_host.processes import BINARY_MARKERS

_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
_STATE = {"tcp": "0A", "udp": "07"}


def _hex(address: str, port: int) -> str:
    ip = ipaddress.ip_address(address)
    raw = ip.packed
    if ip.version == 4:
        return f"{raw[::-1].hex().upper()}:{port:04X}"
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return f"{words.hex().upper()}:{port:04X}"


class ProcTree:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "net").mkdir(parents=True, exist_ok=True)
        self._inode = 90000
        self._lines: dict[str, list[str]] = {"tcp": [], "tcp6": [], "udp": [], "udp6": []}
        self._write_tables()

    def binary(self, daemon: str, real: bool = True) -> str:
        """A file standing for the daemon's executable: with its marker strings when `real`."""
        path = self.root.parent / "bin" / f"{daemon}{'' if real else '-fake'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0".join(BINARY_MARKERS[daemon]) if real else b"sleep")
        return str(path)

    def process(self, pid: int, argv: list[str], *, exe: str = "", ppid: int = 1, uid: int = 0,
                sockets: list[tuple[str, str, int]] = (), fifos: list[str] = (), cwd: str = "/",
                readable_fds: bool = True) -> None:
        """One process; `sockets` = (proto, address, port) it listens on (the tables get a line each)."""
        base = self.root / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "comm").write_text(os.path.basename(argv[0])[:15] + "\n")
        (base / "cmdline").write_text("\0".join(argv) + "\0")
        (base / "status").write_text(f"Name:\t{os.path.basename(argv[0])[:15]}\nPPid:\t{ppid}\n"
                                     f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        if exe:
            os.symlink(exe, base / "exe")
        os.symlink(cwd, base / "cwd")
        fd = 3
        for proto, address, port in sockets:
            inode = self.listen(proto, address, port)
            os.symlink(f"socket:[{inode}]", base / "fd" / str(fd))
            fd += 1
        for fifo in fifos:
            os.symlink(fifo, base / "fd" / str(fd))
            fd += 1
        if not readable_fds:  # another user's process seen by non-root (root reads everything: not chmod)
            for link in (base / "fd").iterdir():
                link.unlink()
            (base / "fd").rmdir()
            (base / "fd").write_text("")

    def listen(self, proto: str, address: str, port: int) -> int:
        """A socket line in the tables, owned by nobody yet; its inode."""
        self._inode += 1
        table = proto + ("6" if ":" in address else "")
        number = len(self._lines[table])
        self._lines[table].append(f"{number:4}: {_hex(address, port)} {_hex(address, 0)} {_STATE[proto]} "
                                  f"00000000:00000000 00:00000000 00000000     0        0 {self._inode} 1 0\n")
        self._write_tables()
        return self._inode

    def _write_tables(self) -> None:
        for table, lines in self._lines.items():
            (self.root / "net" / table).write_text(_HEADER + "".join(lines))
