"""Issue #18, one-shot commands at the speed of the wire: the behaviours that make them fast, each
observable (no timing here: bench/bench_oneshot.py measures).

- discovery reads nothing when every address was given;
- an OpenSIPS config file is read once per instance, not once per process (workers share it);
- no HTTP library is imported for mi_http, and a plain http:// URL builds no TLS context;
- the asyncio HTTP/1.1 client reads every framing mi_http (or a proxy before it) may use.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import textwrap

import pytest

from console.config import load_config
from opsconsole_host import discovery, procfs
from opsconsole_host import processes as P
from opsconsole_opensips.client import HTTPMIClient
from support.faults import free_port
from support.proc_tree import ProcTree

GUARD_S = 10


def _opensips_cfg(tmp_path, name: str, http_port: int):
    cfg = tmp_path / name
    cfg.write_text('loadmodule "httpd.so"\nloadmodule "mi_http.so"\n'
                   f'modparam("httpd", "port", {http_port})\n# a comment the reader strips\n')
    return cfg


def _opensips_instance(tree: ProcTree, main_pid: int, cfg, workers: int) -> None:
    argv = ["/usr/sbin/opensips", "-F", "-f", str(cfg)]
    exe = tree.binary("opensips")
    tree.process(main_pid, argv, exe=exe)
    for n in range(1, workers + 1):
        tree.process(main_pid + n, argv, exe=exe, ppid=main_pid)


def test_discovery_reads_nothing_when_every_address_was_given(tmp_path, monkeypatch):
    tree = ProcTree(tmp_path / "proc")
    _opensips_instance(tree, 100, _opensips_cfg(tmp_path, "a.cfg", 18080), workers=3)
    tree.process(200, ["rtpengine", "--config-file=none", "--listen-ng=127.0.0.1:40042"], exe=tree.binary("rtpengine"))
    scans: list[object] = []
    real_iter = procfs.iter_processes
    monkeypatch.setattr(procfs, "iter_processes", lambda root=None: scans.append(root) or real_iter(root))
    home = tmp_path / "home"
    home.mkdir()
    roots = {"home": home, "etc_paths": (), "proc_root": tree.root}
    given = {"mi_url": "http://127.0.0.1:18081/mi", "ng": ("127.0.0.1", 40043), "cli": ("127.0.0.1", 40044)}
    config = load_config(given, env={}, discovery_roots=roots)
    assert scans == [] and config.discovery == ()
    assert (config.mi_url, config.ng, config.cli) == (given["mi_url"], given["ng"], given["cli"])
    # the same tree is read, and both daemons found, as soon as one address is missing
    config = load_config({k: v for k, v in given.items() if k != "cli"}, env={}, discovery_roots=roots)
    assert scans and any("rtpengine pid 200" in note for note in config.discovery)
    assert any("opensips pid 100" in note for note in config.discovery)


def test_an_mi_fifo_given_counts_as_the_mi_address(tmp_path):
    found = discovery.discover(home=tmp_path, etc_paths=(), proc_root=tmp_path / "no-proc",
                               given={"mi_fifo": ("/run/x_fifo", "--mi-fifo"), "ng": (("127.0.0.1", 1), "--ng"),
                                      "cli": (("127.0.0.1", 2), "--cli")})
    assert found.notes == () and found.mi_url is None


def test_an_opensips_config_is_read_once_per_instance_not_once_per_process(tmp_path, monkeypatch):
    tree = ProcTree(tmp_path / "proc")
    _opensips_instance(tree, 100, _opensips_cfg(tmp_path, "a.cfg", 18080), workers=8)
    _opensips_instance(tree, 300, _opensips_cfg(tmp_path, "b.cfg", 18090), workers=5)
    reads: list[str] = []
    real_read = P.read_opensips_cfg
    monkeypatch.setattr(P, "read_opensips_cfg", lambda path, **kw: reads.append(str(path)) or real_read(path, **kw))
    found = P.find_daemons("opensips", proc_root=str(tree.root))
    assert sorted(reads) == [str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg")]
    by_pid = {p.pid: p for p in found}
    assert sorted(by_pid) == [100, 300]
    assert by_pid[100].settings["workers"] == 8 and by_pid[300].settings["workers"] == 5
    assert by_pid[100].settings["mi_http"]["port"] == 18080 and by_pid[300].settings["mi_http"]["port"] == 18090
    assert by_pid[300].settings["ppid"] == 1 and by_pid[100].settings is not by_pid[300].settings


@pytest.mark.parametrize("command", ["snapshot", "diagnose"])
def test_a_one_shot_json_command_imports_no_http_library_no_tui_no_rich_and_no_simulator(command):
    """httpx (~70 ms of imports), importlib.metadata (email, zipfile...), Textual, Rich (~40 ms; text output
    only) and the demo's simulator are not what `snapshot --json` or `diagnose --json` need: none is imported."""
    dead = [f"--mi-url=http://127.0.0.1:{free_port(socket.SOCK_STREAM)}/mi",
            f"--ng=127.0.0.1:{free_port()}", f"--cli=127.0.0.1:{free_port(socket.SOCK_STREAM)}", "--timeout=0.3"]
    code = textwrap.dedent(f"""
        import sys
        from console.cli import main
        main([{command!r}, "--json", *{dead!r}])
        heavy = ("httpx", "httpcore", "anyio", "h11", "textual", "importlib.metadata", "email", "rich")
        demo = [m for m in sys.modules if m.startswith("opsconsole_demo.") and m != "opsconsole_demo.plugin"]
        print("LOADED", sorted(demo + [m for m in sys.modules if m in heavy or m.split(".")[0] in heavy]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "LOADED []", out.stdout[-800:] + out.stderr[-1500:]


async def test_plain_http_builds_no_tls_context_even_when_it_talks(mi_server, monkeypatch):
    made: list[object] = []
    real = ssl.SSLContext.__new__
    monkeypatch.setattr(ssl.SSLContext, "__new__", lambda cls, *a, **kw: made.append(cls) or real(cls, *a, **kw))
    client = HTTPMIClient(mi_server.url, timeout=1)
    try:
        version = await asyncio.wait_for(client.call("version"), GUARD_S)
    finally:
        await client.aclose()
    assert version["Server"].startswith("OpenSIPS (3.4") and made == []


async def _serve_once(reply: bytes, pieces: int = 1):
    """A one-shot HTTP server on a port from the OS: reads the request head, writes `reply` in
    `pieces` writes, closes."""
    requests: list[bytes] = []

    async def handle(reader, writer):
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        step = max(1, len(reply) // pieces)
        for start in range(0, len(reply), step):
            writer.write(reply[start:start + step])
            await writer.drain()
            await asyncio.sleep(0)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], requests


BODY = b'{"jsonrpc":"2.0","result":{"Server":"OpenSIPS (3.4.18 (x86_64/linux))"},"id":1}'


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_every_http_framing_gives_the_same_result(framing):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if framing == "length":
        reply = head + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
    elif framing == "chunked":
        halves = (BODY[:30], BODY[30:])
        reply = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in halves) + b"0\r\n\r\n"
    else:
        reply = head + b"Connection: close\r\n\r\n" + BODY
    server, port, requests = await _serve_once(reply, pieces=7)
    client = HTTPMIClient(f"http://ops:s%40cret@127.0.0.1:{port}/mi", timeout=2)
    try:
        result = await asyncio.wait_for(client.call("version"), GUARD_S)
    finally:
        await client.aclose()
        server.close()
    assert result == {"Server": "OpenSIPS (3.4.18 (x86_64/linux))"}
    head_sent = requests[0].decode()
    assert head_sent.startswith("POST /mi HTTP/1.1\r\n") and f"Host: 127.0.0.1:{port}\r\n" in head_sent
    assert "Content-Type: application/json\r\n" in head_sent and "Connection: close\r\n" in head_sent
    assert "Authorization: Basic b3BzOnNAY3JldA==\r\n" in head_sent  # ops:s@cret from the URL, unquoted
    assert "s%40cret" not in repr(client) and "cret" not in client.target


def test_dataclass_methods_come_compiled_from_the_cache_and_behave_the_same(tmp_path, monkeypatch):
    """console.codecache: the text dataclasses generates is compiled once, kept like bytecode (one file per
    module), and a later start builds the same methods without compiling (the cost at import, #18)."""
    import builtins
    import dataclasses

    from console import codecache

    assert codecache.install() and dataclasses._create_fn is codecache._create_fn
    monkeypatch.setattr(codecache, "cache_dir", lambda: str(tmp_path / "codes"))
    monkeypatch.setattr(codecache, "_codes", {})
    monkeypatch.setattr(codecache, "_state", {"installed": True, "dirty": set()})
    monkeypatch.setattr(sys, "dont_write_bytecode", False)

    def define():
        @dataclasses.dataclass(frozen=True)
        class Leg:
            tag: str
            packets: int = 0
            codecs: tuple = ()
        return Leg

    first = define()
    assert codecache._state["dirty"] == {__name__} and len(codecache._codes[__name__]) >= 5
    codecache.save()
    assert (tmp_path / "codes" / f"{__name__}.marshal").is_file() and codecache._state["dirty"] == set()
    codecache._codes.clear()  # the next start: read from the file when the module builds its first dataclass
    compiled: list[str] = []
    real_compile = builtins.compile
    monkeypatch.setattr(builtins, "compile", lambda src, *a, **kw: compiled.append(src) or real_compile(src, *a, **kw))
    second = define()
    assert compiled == [] and codecache._state["dirty"] == set()
    for leg_type in (first, second):
        leg = leg_type("caller", 5)
        assert repr(leg).endswith("define.<locals>.Leg(tag='caller', packets=5, codecs=())")
        assert leg == leg_type("caller", 5) and leg != leg_type("callee", 5) and hash(leg) == hash(leg_type("caller", 5))
        with pytest.raises(dataclasses.FrozenInstanceError):
            leg.packets = 6
        assert dataclasses.replace(leg, packets=7).packets == 7


def test_the_code_cache_is_not_written_when_bytecode_must_not_be(tmp_path, monkeypatch):
    from console import codecache

    monkeypatch.setattr(codecache, "cache_dir", lambda: str(tmp_path))
    monkeypatch.setattr(codecache, "_codes", {"some.module": {}})
    monkeypatch.setattr(codecache, "_state", {"installed": True, "dirty": {"some.module"}})
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    codecache.save()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "some.module.marshal").write_bytes(b"not marshal data")
    monkeypatch.setattr(codecache, "_codes", {})
    # a damaged cache is ignored: everything is compiled as dataclasses would
    assert codecache._module_codes("some.module") == {}


def test_this_hosts_listeners_come_from_sock_diag_and_equal_the_tables(monkeypatch):
    """/proc/net/tcp lists every connection (TIME_WAIT too): on this host's /proc the kernel is asked
    for listeners only, over sock_diag netlink, and the answer is the one the tables give."""
    from pathlib import Path

    opened = []
    for kind, family, address in ((socket.SOCK_STREAM, socket.AF_INET, "127.0.0.1"),
                                  (socket.SOCK_DGRAM, socket.AF_INET, "127.0.0.1"),
                                  (socket.SOCK_STREAM, socket.AF_INET6, "::1"),
                                  (socket.SOCK_DGRAM, socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, kind)
            sock.bind((address, 0))
        except OSError:  # no IPv6 on this machine
            continue
        if kind == socket.SOCK_STREAM:
            sock.listen()
        opened.append(sock)
    try:
        mine = {sock.getsockname()[1] for sock in opened}
        tables = {l for l in procfs.table_listeners(Path("/proc")) if l.port in mine}
        read: list[object] = []
        real_read = procfs._read_text
        monkeypatch.setattr(procfs, "_read_text", lambda path: read.append(path) or real_read(path))
        from_diag = {l for l in procfs.listeners("/proc") if l.port in mine}
    finally:
        for sock in opened:
            sock.close()
    assert read == [] and len(opened) >= 2
    assert from_diag == tables and {l.port for l in from_diag} == mine
    assert {(l.proto, l.address) for l in from_diag} >= {("tcp", "127.0.0.1"), ("udp", "127.0.0.1")}


def test_listeners_fall_back_to_the_tables_when_netlink_is_refused(monkeypatch):
    from pathlib import Path

    monkeypatch.setattr(procfs, "diag_listeners", lambda: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        found = [l for l in procfs.listeners("/proc") if l.port == port]
        tables = [l for l in procfs.table_listeners(Path("/proc")) if l.port == port]
    assert [(l.proto, l.address) for l in found] == [("tcp", "127.0.0.1")] and found == tables


def test_one_shot_commands_run_without_the_cyclic_gc_and_give_it_back(monkeypatch):
    """~100 collections over objects the exiting process frees anyway (25-50 ms at 10k contacts): off
    while snapshot/diagnose/mi run, on again afterwards (tests and embedders call main in-process)."""
    import gc

    from console import cli

    seen: dict[str, bool] = {}

    def recorder(name):
        async def command(args):
            seen[name] = gc.isenabled()
            return 0
        return command

    for name in ("snapshot", "diagnose", "mi"):
        monkeypatch.setitem(cli.COMMANDS, name, recorder(name))
    assert gc.isenabled()
    for argv in (["snapshot", "--json", "--no-contacts"], ["diagnose", "--json"], ["mi", "version"]):
        assert cli.main([*argv, "--mi-url", "http://127.0.0.1:1/mi"]) == 0
        assert gc.isenabled()
    assert seen == {"snapshot": False, "diagnose": False, "mi": False}


HOSTILE_TEXTS = ["plain", 'q"uote \\ back', "new\nline\ttab\b\f\r", "\x1b[31mred\x1b[0m", "\x00\x1f", "\x7f",
                 "é", "\u2028", "😀", "\ud800", "[bold]x[/]", ""]


def _contact(n: int, ua: str) -> dict:
    return {"aor": f"b{n:06d}", "contact": f"sip:b{n:06d}@127.0.0.1:5060;transport=udp", "contact_id": str(n * 7919),
            "socket": "udp:127.0.0.1:5060", "transport": "udp", "ws": n % 2 == 0, "user_agent": ua,
            "expires": n if n % 3 else "permanent", "flags": n % 5, "cflags": ["WS", "NAT"][: n % 3],
            "received": None if n % 4 else "sip:10.0.0.1:5060", "path": "", "callid": f"c-{n}@x", "cseq": n,
            "q": "", "state": "CS_NEW"}


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_the_snapshot_json_text_is_byte_for_byte_json_dumps(text):
    """render/fastjson: the registrations encoded by msgspec give exactly json.dumps's text, or json.dumps
    does it (any byte it escapes and msgspec does not: DEL, non-ASCII, lone surrogates)."""
    from console.render import fastjson
    from console.render.jsonout import dumps

    document = {"collected_at": 1796537088.996549, "registrations": [_contact(n, text if n == 1234 else "sipp")
                                                                      for n in range(1500)],
                "dialogs": [{"callid": text, "mos": 4.41}], "plugins": {"x": {"registrations": []}}}
    expected = json.dumps(document, ensure_ascii=True, default=str)
    assert dumps(document, pretty=False) == expected
    assert dumps(document, pretty=True) == json.dumps(document, indent=2, ensure_ascii=True, default=str)
    plain = text.isascii() and "\x7f" not in text
    assert (fastjson.dumps_list(document["registrations"]) is not None) == plain
    if plain:  # the fast path was taken, and it is the same text
        assert fastjson.dumps_spliced(document, "registrations", json.dumps) == json.dumps(document)


def test_the_program_exits_without_teardown_but_with_its_output_exit_code_and_exit_handlers():
    """console.cli.run (the `opsconsole` script, `python -m console`): after a one-shot command the
    process ends with os._exit (a 10k snapshot's objects took ~20 ms to free one by one), once the
    output is flushed and the exit handlers (the code cache's among them) have run."""
    dead = [f"--mi-url=http://127.0.0.1:{free_port(socket.SOCK_STREAM)}/mi", f"--ng=127.0.0.1:{free_port()}",
            f"--cli=127.0.0.1:{free_port(socket.SOCK_STREAM)}", "--timeout=0.3"]
    code = textwrap.dedent(f"""
        import atexit, os, sys
        atexit.register(lambda: os.write(2, b"EXIT-HANDLER-RAN\\n"))
        sys.argv = ["opsconsole", "snapshot", "--json", "--no-contacts", *{dead!r}]
        from console.cli import run
        run()
        print("NOT REACHED")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1  # a source failed: EXIT["partial"]["snapshot"]
    document = json.loads(out.stdout)
    assert document["sources"]["opensips"]["ok"] is False and "NOT REACHED" not in out.stdout
    assert "EXIT-HANDLER-RAN" in out.stderr
