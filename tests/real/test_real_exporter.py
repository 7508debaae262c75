"""A real Prometheus server scrapes `opsconsole exporter` watching two real nodes (#16): OpenSIPS 3.4 and 4.0,
each with its real RTPengine and real registrations and calls.  Debian's `prometheus` runs on a port from the
OS with a 1 s scrape interval and the README's alert rules; its HTTP API must return the metrics of both
targets, and when one node's OpenSIPS stops, OpsconsoleTargetDown must fire for that target alone.  Every
process is started here and stopped by PID at the end, also on failure.

Needs OPSCONSOLE_TEST_OPENSIPS (as every real test) and /usr/bin/prometheus: without them it skips with one
line, unless OPSCONSOLE_REQUIRE_REAL=1 or CI is set (then it fails).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.faults import free_port
from support.opensips_daemon import VERSIONS, real_required, require_real
from support.platform import HOSTILE_USER, TCP_USERS, UDP_USERS, WS_USERS, start_platform, stop_process

pytestmark = pytest.mark.opensips

PROMETHEUS = "/usr/bin/prometheus"
README = Path(__file__).resolve().parents[2] / "README.md"
REGISTERED = len(UDP_USERS) + len([HOSTILE_USER]) + len(TCP_USERS) + len(WS_USERS)
TARGETS = {"3.4": "osips-34", "4.0": "osips-40"}
WAIT_S = 60.0


def require_prometheus() -> str:
    if os.access(PROMETHEUS, os.X_OK):
        return PROMETHEUS
    missing = f"{PROMETHEUS} is not installed (Debian package prometheus)"
    if real_required():
        pytest.fail(f"{missing}; OPSCONSOLE_REQUIRE_REAL/CI is set: the real exporter test must run")
    pytest.skip(missing)


@pytest.fixture
def two_real_nodes():
    for version in VERSIONS:
        require_real(version)
    platforms = []
    try:
        for version in VERSIONS:
            platforms.append(start_platform(version))
        yield dict(zip(VERSIONS, platforms))
    finally:
        for platform in platforms:
            platform.close()


def config_text(nodes) -> str:
    blocks = []
    for version, platform in nodes.items():
        blocks.append(f'[[targets]]\nname = "{TARGETS[version]}"\nmi_url = "{platform.mi_url}"\n'
                      f'ng = ["{platform.ng[0]}:{platform.ng[1]}"]\ncli = ["{platform.cli[0]}:{platform.cli[1]}"]\n'
                      f'labels = {{version = "{version}", site = "lab"}}\n')
    # the lab's calls carry no RTP: quality findings are not what this test is about (tests/real/conftest.py)
    return "[console]\ntimeout = 3\n\n[thresholds]\nsilent_after_s = 86400\n\n" + "\n".join(blocks)


def start_exporter(tmp_path: Path, nodes) -> tuple[subprocess.Popen, str]:
    config = tmp_path / "opsconsole.toml"
    config.write_text(config_text(nodes))
    config.chmod(0o600)
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPSCONSOLE_")} | {"HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "console", "exporter", "--config", str(config), "--listen",
                                "127.0.0.1:0", "--interval", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, env=env)
    for line in process.stderr:  # "... on http://127.0.0.1:PORT/metrics" once it listens
        if "/metrics" in line:
            return process, line.split(" on ")[-1].strip()
    stop_process(process)
    pytest.fail(f"the exporter never listened (exit {process.returncode})")


def readme_rules() -> str:
    """The alert rules the README documents (opsconsole-rules.yml), as written there."""
    text = README.read_text()
    start = text.index("# opsconsole-rules.yml")
    return text[start:text.index("```", start)]


def start_prometheus(binary: str, tmp_path: Path, exporter_url: str) -> tuple[subprocess.Popen, str]:
    target = exporter_url.split("//")[1].split("/")[0]
    (tmp_path / "rules.yml").write_text(readme_rules())
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{tmp_path / 'rules.yml'}']\n"
        f"scrape_configs:\n  - job_name: opsconsole\n    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def query(prometheus: str, expression: str) -> dict[str, float]:
    """target label -> value of an instant query (empty while Prometheus has not scraped it yet)."""
    try:
        reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=3).json()
    except (httpx.TransportError, ValueError):
        return {}
    if reply.get("status") != "success":
        return {}
    return {item["metric"].get("target", ""): float(item["value"][1]) for item in reply["data"]["result"]}


def wait_for(prometheus: str, expression: str, wanted: dict[str, float], process: subprocess.Popen) -> dict:
    deadline, got = time.monotonic() + WAIT_S, {}
    while time.monotonic() < deadline:
        assert process.poll() is None, f"prometheus exited with {process.returncode}"
        got = query(prometheus, expression)
        if got == wanted:
            return got
        time.sleep(0.5)
    return got


def test_prometheus_scrapes_both_real_targets(two_real_nodes, tmp_path):
    binary = require_prometheus()
    exporter, url = start_exporter(tmp_path, two_real_nodes)
    prometheus = None
    try:
        prometheus, api = start_prometheus(binary, tmp_path, url)
        both = {name: 1.0 for name in TARGETS.values()}
        assert wait_for(api, "opsconsole_up", both, prometheus) == both, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert query(api, 'up{job="opsconsole"}') == {"": 1.0}  # Prometheus's own word: the scrape works
        registered = {name: float(REGISTERED) for name in TARGETS.values()}
        assert wait_for(api, "opsconsole_contacts_registered", registered, prometheus) == registered
        ws = {name: float(len(WS_USERS)) for name in TARGETS.values()}
        assert wait_for(api, 'opsconsole_contacts{transport="ws"}', ws, prometheus) == ws
        ok = {name: 0.0 for name in TARGETS.values()}
        for check in ("opensips.mi", "rtpengine.ng"):
            assert wait_for(api, f'opsconsole_check_status{{check="{check}"}}', ok, prometheus) == ok, check
        versions = httpx.get(f"{api}/api/v1/query", params={"query": "opsconsole_opensips_info"}, timeout=3).json()
        assert {(item["metric"]["target"], item["metric"]["version"][:3])
                for item in versions["data"]["result"]} == {(name, version) for version, name in TARGETS.items()}
        labels = httpx.get(f"{api}/api/v1/query", params={"query": "opsconsole_target_info"}, timeout=3).json()
        assert {(item["metric"]["target"], item["metric"]["version"], item["metric"]["site"])
                for item in labels["data"]["result"]} == {(name, version, "lab") for version, name in TARGETS.items()}
        enabled = wait_for(api, "sum by (target) (opsconsole_rtpengine_engine_enabled)",
                           {name: 1.0 for name in TARGETS.values()}, prometheus)
        assert enabled == {name: 1.0 for name in TARGETS.values()}  # each node's one engine, enabled
        rules = httpx.get(f"{api}/api/v1/rules", timeout=3).json()["data"]["groups"][0]["rules"]
        assert {(rule["name"], rule["health"]) for rule in rules} == {("OpsconsoleTargetDown", "ok"),
                                                                      ("OpsconsoleCheckFailing", "ok")}
        # one node's OpenSIPS stops: its target goes down and the README's alert fires for it (pending: `for: 1m`)
        two_real_nodes["4.0"].opensips.stop()
        down = wait_for(api, 'opsconsole_up{target="osips-40"}', {"osips-40": 0.0}, prometheus)
        assert down == {"osips-40": 0.0}
        alert = wait_for(api, 'ALERTS{alertname="OpsconsoleTargetDown"}', {"osips-40": 1.0}, prometheus)
        assert alert == {"osips-40": 1.0}
        assert query(api, 'opsconsole_up{target="osips-34"}') == {"osips-34": 1.0}
    finally:
        if prometheus is not None:
            stop_process(prometheus)
        exporter.send_signal(signal.SIGTERM)
        try:
            code = exporter.wait(timeout=30)
        finally:
            stop_process(exporter)
        shutil.rmtree(tmp_path / "tsdb", ignore_errors=True)
    assert code == 0  # SIGTERM: a clean stop
