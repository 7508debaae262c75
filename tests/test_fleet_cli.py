"""`--target NAME` and `snapshot --all` / `diagnose --all` (#16), against fake OpenSIPS MI servers (the
captures of 3.4 and 4.0) on ports from the OS; every RTPengine address is a port nobody listens on."""

from __future__ import annotations

import json
import os
import socket

import pytest

from console.cli import EXIT, main
from support.faults import free_port
from support.mi_server import MIServer


@pytest.fixture
def servers():
    three, four = MIServer("3.4"), MIServer("4.0")
    try:
        yield three, four
    finally:
        three.stop()
        four.stop()


def dead_mi() -> str:
    return f"http://127.0.0.1:{free_port()}/mi"


def config_file(tmp_path, *nodes: tuple[str, str], extra: str = "") -> str:
    """[[targets]] for (name, mi_url) pairs; each node's RTPengine is a dead port."""
    blocks = [f'[[targets]]\nname = "{name}"\nmi_url = "{url}"\nng = ["127.0.0.1:{free_port(socket.SOCK_DGRAM)}"]\n'
              f'cli = ["127.0.0.1:{free_port()}"]\nlabels = {{site = "{name[:3]}"}}\n' for name, url in nodes]
    path = tmp_path / "fleet.toml"
    path.write_text("[console]\ntimeout = 0.5\n" + extra + "\n".join(blocks))
    os.chmod(path, 0o600)
    return str(path)


@pytest.mark.parametrize("argv, command", [(["snapshot"], "snapshot"), (["diagnose"], "diagnose"),
                                           (["mi", "version"], "mi")])
def test_several_targets_and_no_target_is_a_command_line_error_naming_them(argv, command, servers, tmp_path, capsys):
    three, four = servers
    config = config_file(tmp_path, ("par-1", three.url), ("lon-1", four.url))
    assert main([*argv, "--config", config]) == EXIT["usage"][command]
    err = capsys.readouterr().err
    assert "2 targets" in err and "par-1, lon-1" in err and "--target" in err
    assert three.requests == [] and four.requests == []  # nothing was asked of either node


def test_target_picks_the_node(servers, tmp_path, capsys):
    three, four = servers
    config = config_file(tmp_path, ("par-1", three.url), ("lon-1", four.url))
    assert main(["mi", "version", "--config", config, "--target", "lon-1"]) == 0
    assert "4.0" in json.loads(capsys.readouterr().out)["Server"]
    assert three.requests == [] and four.requests
    assert main(["snapshot", "--json", "--no-contacts", "--config", config, "--target", "par-1"]) == EXIT["partial"]["snapshot"]
    document = json.loads(capsys.readouterr().out)
    assert document["overview"]["opensips"]["version"].startswith("3.4")  # today's document, for that node


def test_one_target_needs_no_target_option(servers, tmp_path, capsys):
    three, _four = servers
    config = config_file(tmp_path, ("par-1", three.url))
    assert main(["mi", "version", "--config", config]) == 0
    assert "3.4" in json.loads(capsys.readouterr().out)["Server"]


def test_an_unknown_target_is_refused_with_a_suggestion(servers, tmp_path, capsys):
    three, four = servers
    config = config_file(tmp_path, ("par-1", three.url), ("lon-1", four.url))
    assert main(["diagnose", "--config", config, "--target", "par-2"]) == EXIT["usage"]["diagnose"]
    err = capsys.readouterr().err
    assert "no such target" in err and "did you mean par-1?" in err


@pytest.mark.parametrize("argv, says", [
    (["snapshot", "--all", "--target", "par-1"], "choose one"),
    (["diagnose", "--target", "par-1", "--mi-url", "http://127.0.0.1:9/mi"], "--mi-url names the node itself"),
    (["diagnose", "--all", "--list"], "--all would be ignored"),
    (["snapshot", "--all", "--demo"], "with --demo"),
])
def test_contradicting_target_options_are_refused(argv, says, capsys):
    code = main(argv)
    assert code == EXIT["usage"][argv[0]]
    assert says in capsys.readouterr().err


def test_snapshot_all_is_one_document_per_target_and_exits_with_the_worst(servers, tmp_path, capsys):
    three, four = servers
    config = config_file(tmp_path, ("par-1", three.url), ("lon-1", four.url), ("gone-1", dead_mi()))
    code = main(["snapshot", "--all", "--json", "--no-contacts", "--config", config])
    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["targets"] and list(document["targets"]) == ["par-1", "lon-1", "gone-1"]
    nodes = document["targets"]
    assert nodes["par-1"]["overview"]["opensips"]["version"].startswith("3.4")
    assert nodes["lon-1"]["overview"]["opensips"]["version"].startswith("4.0")
    assert nodes["gone-1"]["sources"]["opensips"]["ok"] is False and "opensips" not in nodes["gone-1"]["overview"]
    assert code == EXIT["partial"]["snapshot"]  # a source failed somewhere (every RTPengine is down too)


@pytest.mark.parametrize("nodes, worst", [(("up", "up"), "ok"), (("up", "down"), "fail")])
def test_diagnose_all_exits_with_the_worst_node(nodes, worst, servers, tmp_path, capsys):
    # Each node its own MI server: the fake (like mi_http) serves one request at a time, and two nodes
    # sharing one made the "up" node time out now and then on a loaded machine.
    live = iter(server.url for server in servers)
    urls = [next(live) if state == "up" else dead_mi() for state in nodes]
    config = config_file(tmp_path, *((f"node-{n}", url) for n, url in enumerate(urls)))
    code = main(["diagnose", "--all", "--json", "--only", "opensips.mi", "--config", config])
    document = json.loads(capsys.readouterr().out)["targets"]
    statuses = {name: node["status"] for name, node in document.items()}
    assert statuses == {f"node-{n}": {"up": "ok", "down": "fail"}[state] for n, state in enumerate(nodes)}
    assert all(node["checks"][0]["id"] == "opensips.mi" for node in document.values())
    assert code == EXIT[worst]["diagnose"]


def test_diagnose_all_text_is_one_section_per_node_in_order(servers, tmp_path, capsys):
    three, four = servers
    config = config_file(tmp_path, ("par-1", three.url), ("lon-1", four.url))
    assert main(["diagnose", "--all", "--only", "opensips.mi", "--config", config]) == EXIT["ok"]["diagnose"]
    out = capsys.readouterr().out
    first, second = out.index("par-1"), out.index("lon-1")
    assert first < second
    assert "3.4" in out[first:second] and "4.0" in out[second:]  # each section holds its own node's checks
    assert "site=par" in out[first:second] and "site=lon" in out[second:]


def test_the_demo_nodes_are_targets_too(capsys):
    """--demo-nodes N names its nodes as targets: --all and --target work on them (plain --demo is one node)."""
    code = main(["snapshot", "--all", "--json", "--demo", "--demo-nodes", "2", "--demo-size", "10"])
    nodes = json.loads(capsys.readouterr().out)["targets"]
    assert list(nodes) == ["node-01", "node-02"] and code in (EXIT["ok"]["snapshot"], EXIT["partial"]["snapshot"])
    assert all(node["sources"]["opensips"]["ok"] for node in nodes.values())
    assert main(["mi", "version", "--demo", "--demo-nodes", "2", "--demo-size", "10", "--target", "node-02"]) == 0
    assert "OpenSIPS" in json.loads(capsys.readouterr().out)["Server"]
    assert main(["mi", "version", "--demo", "--demo-nodes", "2", "--demo-size", "10"]) == EXIT["usage"]["mi"]
    assert "node-01, node-02" in capsys.readouterr().err


def test_target_without_targets_in_the_config_says_so(tmp_path, capsys):
    path = tmp_path / "flat.toml"
    path.write_text('[opensips]\nmi_url = "http://127.0.0.1:9/mi"\n')
    assert main(["diagnose", "--config", str(path), "--target", "par-1"]) == EXIT["usage"]["diagnose"]
    assert "names no targets" in capsys.readouterr().err
