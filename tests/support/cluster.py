"""Two real OpenSIPS nodes in one clusterer cluster on loopback, and RTPengines in one set, for tests.

    pair = start_cluster_pair("3.4", rtpengine_sock="udp:127.0.0.1:A=1 udp:127.0.0.1:B=2")
    pair.active.mi("clusterer_list_shtags")     # node 1: sharing tag `vip` active
    pair.backup.mi("clusterer_list")            # node 2 sees node 1 (clusterer lists the *other* nodes)
    pair.close()                                # both stopped by PID, work dirs removed

Each node is the lab's config (tests/fixtures/opensips-lab/opensips-VERSION.cfg.in, rendered by
support.opensips_daemon.render_config) with the cluster variant (cluster.cfg.in: proto_bin + clusterer, db-less,
`my_node_info` / `neighbor_node_info`, sharing tag `vip/1`) inserted before the routing logic.  Every port comes
from the OS; nothing is started on a well-known port.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support.opensips_daemon import TEMPLATES, OpenSIPSDaemon, _wait_ready, launch, opensips_root, render_config
from support.rtpengine_daemon import free_port

CLUSTER_ID = 1
TAG = "vip"
LINK_TIMEOUT_S = 15.0


@dataclass
class ClusterPair:
    active: OpenSIPSDaemon  # node 1, sharing tag declared active
    backup: OpenSIPSDaemon  # node 2, sharing tag declared backup
    bin_ports: tuple[int, int]

    @property
    def nodes(self) -> tuple[OpenSIPSDaemon, OpenSIPSDaemon]:
        return self.active, self.backup

    def close(self) -> None:
        for node in self.nodes:
            node.cleanup()

    def wait_linked(self, timeout: float = LINK_TIMEOUT_S) -> None:
        """Until each node lists the other with link_state Up (clusterer pings every second here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_link_states(node) == ["Up"] for node in self.nodes):
                return
            time.sleep(0.2)
        raise RuntimeError(f"cluster link not Up within {timeout} s: "
                           f"{[_link_states(node) for node in self.nodes]}\n{self.active.log()}")


def _link_states(node: OpenSIPSDaemon) -> list[str]:
    reply = node.mi_any("clusterer_list", "clusterer:list")
    return [peer.get("link_state") for cluster in reply.get("Clusters", []) for peer in cluster.get("Nodes", [])]


def cluster_config(version: str, root: Path, *, node_id: int, peer_id: int, bin_port: int, peer_bin_port: int,
                   tag_state: str, **base) -> str:
    """The lab config of `version` with the cluster variant before the routing logic."""
    text = render_config(version, root, **base)
    fragment = (TEMPLATES / "cluster.cfg.in").read_text()
    for name, value in {"BIN_PORT": bin_port, "PEER_BIN_PORT": peer_bin_port, "NODE_ID": node_id,
                        "PEER_ID": peer_id, "TAG_STATE": tag_state}.items():
        fragment = fragment.replace(f"@{name}@", str(value))
    marker = "####### Routing Logic"
    if marker not in text:
        raise ValueError("the lab template has no routing-logic marker to insert the cluster variant before")
    return text.replace(marker, fragment + "\n" + marker, 1)


def start_node(version: str, *, node_id: int, peer_id: int, bin_port: int, peer_bin_port: int, tag_state: str,
               rtpengine_sock: str, root: Path | None = None) -> OpenSIPSDaemon:
    root = root or opensips_root(version)
    if root is None:
        raise RuntimeError(f"OpenSIPS {version} is not installed (OPSCONSOLE_TEST_OPENSIPS)")
    workdir = Path(tempfile.mkdtemp(prefix=f"opensips-{version}-node{node_id}-"))
    fifo = workdir / "opensips_fifo"
    sip_port, ws_port, http_port = free_port(), free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    try:
        config = cluster_config(version, root, node_id=node_id, peer_id=peer_id, bin_port=bin_port,
                                peer_bin_port=peer_bin_port, tag_state=tag_state, sip_port=sip_port,
                                ws_port=ws_port, http_port=http_port, fifo=fifo, rtpengine_sock=rtpengine_sock,
                                events=False)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    config_path, log_path, process = launch(root, workdir, config)
    daemon = OpenSIPSDaemon(version=version, sip_port=sip_port, ws_port=ws_port, http_port=http_port, fifo=fifo,
                            workdir=workdir, log_path=log_path, config_path=config_path, process=process,
                            rtpengine_sock=rtpengine_sock, events=False)
    try:
        _wait_ready(daemon)
    except BaseException:
        daemon.cleanup()
        raise
    return daemon


def start_cluster_pair(version: str, *, rtpengine_sock: str, root: Path | None = None) -> ClusterPair:
    """Node 1 (tag active) and node 2 (tag backup), both with the same rtpengine_sock; linked before return."""
    bins = (free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM))
    active = start_node(version, node_id=1, peer_id=2, bin_port=bins[0], peer_bin_port=bins[1], tag_state="active",
                        rtpengine_sock=rtpengine_sock, root=root)
    try:
        backup = start_node(version, node_id=2, peer_id=1, bin_port=bins[1], peer_bin_port=bins[0],
                            tag_state="backup", rtpengine_sock=rtpengine_sock, root=root)
    except BaseException:
        active.cleanup()
        raise
    pair = ClusterPair(active, backup, bins)
    try:
        pair.wait_linked()
    except BaseException:
        pair.close()
        raise
    return pair
