"""procfs readers on fake /proc trees (tests/fixtures/host/proc_*)."""

import os
import pwd
import socket
from pathlib import Path

import pytest

from opsconsole_host import procfs

HOST = Path(__file__).parent / "fixtures" / "host"


def test_modules_loaded_are_parsed_with_users():
    modules = procfs.read_modules(HOST / "proc_loaded")
    assert set(modules) >= {"xt_RTPENGINE", "ip_tables", "x_tables"}
    assert modules["xt_RTPENGINE"]["refcount"] == 2
    assert modules["x_tables"]["used_by"] == ["xt_RTPENGINE", "xt_conntrack", "iptable_filter", "ip_tables"]
    assert modules["ip_tables"]["state"] == "Live"


def test_no_proc_modules_means_no_module_support():
    assert procfs.read_modules(HOST / "proc_no_modules") is None


def test_builtin_iptables_without_module_support():
    assert procfs.ip_tables_builtin(HOST / "proc_no_modules") is True
    assert procfs.netfilter_state(HOST / "proc_no_modules") == {"ip_tables": "builtin", "x_tables": "builtin"}


def test_builtin_iptables_on_modular_kernel_is_not_a_false_negative():
    # ip_tables_names exists although no ip_tables module is listed: compiled in.
    assert procfs.ip_tables_builtin(HOST / "proc_builtin_modular") is True
    assert procfs.netfilter_state(HOST / "proc_builtin_modular")["ip_tables"] == "builtin"


def test_iptables_loaded_as_module_is_not_builtin():
    assert procfs.ip_tables_builtin(HOST / "proc_loaded") is False
    assert procfs.netfilter_state(HOST / "proc_loaded") == {"ip_tables": "module", "x_tables": "module"}


def test_config_gz_decides_builtin():
    assert procfs.read_kernel_config(HOST / "proc_configgz")["CONFIG_MODULES"] == "n"
    assert procfs.ip_tables_builtin(HOST / "proc_configgz") is True
    assert procfs.ip_tables_builtin(HOST / "proc_configgz_modular") is False
    assert procfs.netfilter_state(HOST / "proc_configgz_modular") == {"ip_tables": "missing", "x_tables": "missing"}


def test_corrupt_config_gz_falls_back_to_proc_entries():
    assert procfs.read_kernel_config(HOST / "proc_loaded_no_table") is None
    # ip_tables is a loaded module there, so it is not built in
    assert procfs.ip_tables_builtin(HOST / "proc_loaded_no_table") is False


def test_not_loaded_anywhere():
    assert procfs.ip_tables_builtin(HOST / "proc_not_loaded") is None
    assert procfs.netfilter_state(HOST / "proc_not_loaded")["ip_tables"] == "missing"


def test_rtpengine_table_ids():
    assert procfs.rtpengine_table_present(HOST / "proc_loaded") == (0,)
    assert procfs.rtpengine_table_present(HOST / "proc_loaded_no_table") is None


def test_dmesg_restrict_and_hostname():
    assert procfs.dmesg_restrict(HOST / "proc_loaded") == 0
    assert procfs.dmesg_restrict(HOST / "proc_not_loaded") == 1
    assert procfs.dmesg_restrict(HOST / "proc_builtin_modular") is None
    assert procfs.hostname(HOST / "proc_loaded") == "media1"


@pytest.mark.parametrize(
    "tree, expected",
    [
        ("proc_loaded", {"modules_supported": True, "xt_RTPENGINE": True, "rtpengine_table": (0,)}),
        ("proc_not_loaded", {"modules_supported": True, "xt_RTPENGINE": False, "rtpengine_table": None}),
        ("proc_no_modules", {"modules_supported": False, "xt_RTPENGINE": None, "ip_tables": "builtin"}),
    ],
)
def test_kernel_modules_facts(tree, expected):
    facts = procfs.kernel_modules_facts(HOST / tree)
    assert {k: facts[k] for k in expected} == expected


def test_unreadable_modules_file_is_treated_as_missing(tmp_path):
    (tmp_path / "modules").mkdir()  # a directory where a file should be: read fails, no crash
    assert procfs.read_modules(tmp_path) is None


# --------------------------------------------------------------------------- processes and sockets


def test_listeners_from_the_socket_tables(tmp_path):
    from support.proc_tree import ProcTree

    tree = ProcTree(tmp_path / "proc")
    tcp = tree.listen("tcp", "127.0.0.1", 8899)
    udp6 = tree.listen("udp", "::1", 2223)
    wildcard = tree.listen("udp", "0.0.0.0", 60000)
    with open(tree.root / "net" / "tcp", "a") as table:  # an established connection is not a listener
        table.write("   9: 0100007F:22C3 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  0  0 777 1 0\n"
                    "  10: garbage\n")
    found = {(l.proto, l.address, l.port): l.inode for l in procfs.listeners(tree.root)}
    assert found == {("tcp", "127.0.0.1", 8899): tcp, ("udp", "::1", 2223): udp6, ("udp", "0.0.0.0", 60000): wildcard}


def test_this_process_read_from_the_real_proc():
    me = procfs.ProcfsProcess(Path("/proc"), os.getpid())
    assert "pytest" in " ".join(me.cmdline()) and me.name().startswith("python")
    assert me.ppid() == os.getppid() and me.cwd() == os.getcwd()
    assert me.username() == pwd.getpwuid(os.getuid()).pw_name
    assert os.getpid() in [p.pid for p in procfs.iter_processes("/proc")]


def test_the_owner_of_a_real_socket_is_found_through_proc():
    """The kernel's own tables: a UDP socket bound here (port from the OS) is ours, by inode."""
    from opsconsole_host.targets import Target, ownership

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        facts = ownership([Target("ng", "udp", f"127.0.0.1:{port}", "127.0.0.1", port)], proc_root="/proc")
    assert facts["ng"]["local"] is True and facts["ng"]["listening"] is True
    assert [o["pid"] for o in facts["ng"]["owners"]] == [os.getpid()]
