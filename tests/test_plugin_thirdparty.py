"""A third-party plugin, installed through the entry-point group like any package, plugs into every
face with no edit to the core, the UI or the renderers: its config section, its source, its check,
its part of `snapshot --json`, its Overview block (text and TUI)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "fixtures" / "thirdparty"


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, mi_server, *args: str, config: str = '[acme]\nsite = "lab-1"\n') -> subprocess.CompletedProcess:
    config_file = tmp_path / "config.toml"
    config_file.write_text(config)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), *sys.path])}
    target = ["--mi-url", mi_server.url, "--ng", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
              "--cli", f"127.0.0.1:{free_port()}", "--timeout", "0.5", "--config", str(config_file)]
    return subprocess.run([sys.executable, "-m", "console", *args, *target], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)


def test_the_plugin_is_found_through_entry_points_only(tmp_path, mi_server):
    """Guards the rest: without the fixture on the path, nothing of it shows."""
    out = subprocess.run([sys.executable, "-c", "from console.plugins import load_plugins; "
                          "print(sorted(p.name for p in load_plugins().plugins))"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                              "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), *sys.path])})
    assert "'acme'" in out.stdout, out.stderr[-2000:]
    plain = subprocess.run([sys.executable, "-c", "from console.plugins import load_plugins; "
                            "print(sorted(p.name for p in load_plugins().plugins))"],
                           capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", ""),
                                                                            "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "'acme'" not in plain.stdout


def test_snapshot_json_carries_the_plugin_part(tmp_path, mi_server):
    out = run(tmp_path, mi_server, "snapshot", "--json", "--no-contacts")
    document = json.loads(out.stdout)
    assert document["plugins"]["acme"] == {"site": "lab-1", "calls": 3, "banner": "[bold red]ACME[/] \x1b[31mSBC"}
    assert document["sources"]["acme"]["ok"] is True
    assert document["overview"]["opensips"]["version"]  # the first-party parts are still there


def test_diagnose_runs_the_plugin_check(tmp_path, mi_server):
    out = run(tmp_path, mi_server, "diagnose", "--json", "--only", "acme")
    checks = {c["id"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["acme.sbc"]["status"] == "warn"
    assert "lab-1" in checks["acme.sbc"]["summary"]
    assert out.returncode == 1  # WARN, Nagios-style


def test_snapshot_text_shows_the_overview_block_as_text_not_markup(tmp_path, mi_server):
    out = run(tmp_path, mi_server, "snapshot", "--no-contacts")
    line = next(line for line in out.stdout.splitlines() if "ACME SBC" in line)
    assert "WARN" in line and "site lab-1" in line and "calls 3" in line
    assert "[bold red]ACME[/]" in line  # shown literally, not interpreted
    assert "\x1b" not in out.stdout


def test_its_config_section_is_validated(tmp_path, mi_server):
    out = run(tmp_path, mi_server, "snapshot", "--json", config='[acme]\nstie = "x"\n')
    assert out.returncode == 3
    assert "unknown setting [acme] stie" in out.stderr and "did you mean site?" in out.stderr
    out = run(tmp_path, mi_server, "snapshot", "--json", config="[acme]\nsite = 5\n")
    assert out.returncode == 3 and "[acme] site must be a string" in out.stderr


def test_the_demo_is_a_plugin_and_without_it_demo_says_so(monkeypatch, capsys):
    import console.plugins as plugins
    from console.cli import main

    loaded = plugins.load_plugins()
    assert loaded.platform("demo") is not None  # offered through the entry points, like any plugin
    without = plugins.LoadedPlugins(tuple(p for p in loaded.plugins if p.name != "demo"), loaded.failures)
    monkeypatch.setattr(plugins, "load_plugins", lambda *a, **k: without)
    assert main(["snapshot", "--demo"]) == 2
    assert "--demo needs the demo plugin" in capsys.readouterr().err


async def test_the_tui_overview_shows_the_plugin_block_as_text(tmp_path, mi_server, monkeypatch):
    """The same plugin on the TUI's Overview: its block comes from the live session's view."""
    from console.config import load_config
    from console.plugins import load_plugins
    from console.service import ConsoleService
    from console.ui.app import create_app
    from ui.helpers import screen_text, settle

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    plugins = load_plugins()
    assert "acme" in [p.name for p in plugins.plugins]
    config_file = tmp_path / "config.toml"
    config_file.write_text('[acme]\nsite = "lab-1"\n')
    config = load_config({"mi_url": mi_server.url, "ng": ("127.0.0.1", free_port(socket.SOCK_DGRAM)),
                          "cli": ("127.0.0.1", free_port()), "timeout": 0.5}, config_file=str(config_file),
                         env={}, discover=False, plugin_sections=plugins.config_sections())
    service = ConsoleService(config, plugins=plugins)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
    finally:
        await service.aclose()
    assert "acme.sbc" in text  # its check on the Overview's Checks box
    block = next((line for line in text.splitlines() if "site lab-1" in line), None)
    assert block is not None, text
    assert "ACME SBC WARN" in block and "calls 3" in block
    assert "[bold red]ACME[/]" in block  # literally, not as markup
