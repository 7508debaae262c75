"""`--demo-nodes N`: N simulated OpenSIPS nodes on loopback, each with its own MI server and RTPengine.

    async with DemoFleet(nodes=5) as fleet:
        fleet.targets()   # (TargetSpec("node-01", mi_url=…, ng=("127.0.0.1:…",), cli=(…,), labels={…}), …)

The cast, so that one screen shows what a real fleet shows:
- node-01 and node-02 are an active/backup pair: cluster 1, sharing tag "vip" active on node-01 and
  backup on node-02, each listing the other with link Up (clusterer_list / clusterer_list_shtags);
- one node (node-02 when there are three or more, else node-01) has an RTPengine set of two engines,
  its own and a spare that OpenSIPS has disabled although it answers (a stale disable; the
  `rtpengine_enable` write re-enables it);
- the last node (two or more) is unhealthy: load 57 % (above the default fail threshold 40 %) and
  shared memory 78 % used (above the warn threshold 70 %).

Cost: node-01 is the full demo (the real RTPengine when installed, RTP through it when asked); every
other node runs a simulated RTPengine (one UDP and one TCP socket, no process) and a smaller contact
list, so 20 nodes stay cheap on a 2-core machine (README, "Fleet").
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from console.errors import ConfigError
from console.lifecycle import StartStop
from console.targets import TargetSpec
from . import DemoPlatform
from .fleet_mi import MI_DISABLED_TICKS, Cluster, Engine, NodeProfile, Peer
from .media import SimulatedMedia
from .quality import OK, Profiles

log = logging.getLogger(__name__)

MAX_NODES = 50
OTHER_NODE_SIZE = 40  # contacts on each node but the first
SPARE_PORT_MAX = 30000 + 99
UNHEALTHY_LOAD = 57
UNHEALTHY_SHM = 78.0


def node_name(index: int) -> str:
    return f"node-{index:02d}"


def fleet_profiles(nodes: int, spare_url: str) -> list[NodeProfile]:
    """The nodes' roles (see the module docstring), index 0 first."""
    profiles = [NodeProfile(node_name(i + 1), {"site": "lab-a" if i % 2 == 0 else "lab-b", "role": "edge"})
                for i in range(nodes)]
    if nodes >= 2:
        for me, peer, state in ((0, 1, "active"), (1, 0, "backup")):
            profiles[me].labels["role"] = state
            profiles[me].cluster = Cluster(1, (Peer(peer + 1, f"bin:127.0.0.{peer + 1}:5566"),), (("vip", state),))
    spare_node = profiles[1 if nodes >= 3 else 0]
    spare_node.extra_engines.append(Engine(spare_url, weight=2, disabled=True, recheck_ticks=MI_DISABLED_TICKS))
    if nodes >= 2:
        profiles[-1].load, profiles[-1].shm_percent = UNHEALTHY_LOAD, UNHEALTHY_SHM
    return profiles


class GoodCalls(Profiles):
    """Every call of a node but the first has good media: node-01 shows the quality states (one-way,
    poor, silent), the others stay healthy so that the Fleet screen's findings are the cast's."""

    def of(self, callid: str) -> str:
        return OK


class DemoFleet(StartStop):
    def __init__(self, nodes: int, size: int = 70, version: str = "3.4", *, real_rtpengine: bool | None = None,
                 rtp: bool = False, seed: int = 1, tick: float | None = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not 1 <= nodes <= MAX_NODES:
            raise ConfigError(f"the demo runs 1 to {MAX_NODES} nodes, not {nodes}")
        self.nodes, self.size, self.version = nodes, size, version
        self.real_rtpengine, self.rtp, self.seed, self.tick, self.clock = real_rtpengine, rtp, seed, tick, clock
        self.platforms: list[DemoPlatform] = []
        self.profiles: list[NodeProfile] = []
        self.spare: SimulatedMedia | None = None

    # ------------------------------------------------------------------ what the console needs

    @property
    def first(self) -> DemoPlatform:
        return self.platforms[0]

    @property
    def media(self):
        """Node 1's media driver (`media.real`: whether the real RTPengine runs)."""
        return self.first.media

    def overrides(self) -> dict:
        """Settings for console.config.load_config(cli_overrides=...): every node as a target, and
        node-01's addresses as the flat options (what a single-node command watches)."""
        return self.first.overrides() | {"name": node_name(1), "targets": self.targets()}

    def targets(self) -> tuple[TargetSpec, ...]:
        """Every node as a [[targets]] entry would name it: name, mi_url, its RTPengine, labels."""
        return tuple(TargetSpec(profile.name, mi_url=platform.mi_url, ng=(f"{platform.ng[0]}:{platform.ng[1]}",),
                                cli=(f"{platform.cli[0]}:{platform.cli[1]}",), labels=dict(profile.labels))
                     for profile, platform in zip(self.profiles, self.platforms))

    def platform(self, name: str) -> DemoPlatform:
        return self.platforms[[p.name for p in self.profiles].index(name)]

    # ------------------------------------------------------------------ lifecycle (async with: console.lifecycle)

    async def start(self) -> None:
        self.spare = SimulatedMedia(self.clock, port_max=SPARE_PORT_MAX)
        await self.spare.start()
        self.profiles = fleet_profiles(self.nodes, f"udp:{self.spare.ng[0]}:{self.spare.ng[1]}")
        for index, profile in enumerate(self.profiles):
            first = index == 0
            platform = DemoPlatform(size=self.size if first else min(self.size, OTHER_NODE_SIZE),
                                    version=self.version, real_rtpengine=self.real_rtpengine if first else False,
                                    seed=self.seed + index, tick=self.tick, clock=self.clock,
                                    rtp=self.rtp and first, profile=profile)
            self.platforms.append(platform)  # stopped by stop() even if its start fails half-way
            await platform.start()
            if not first and isinstance(platform.media, SimulatedMedia):
                platform.media.engine.profiles = GoodCalls()

    async def stop(self) -> None:
        for part in [*reversed(self.platforms), self.spare]:
            if part is None:
                continue
            try:
                await (part.stop() if isinstance(part, DemoPlatform) else part.close())
            except Exception:  # keep stopping the others (node-01's daemon above all)
                log.warning("demo fleet: stopping %s failed", type(part).__name__, exc_info=True)

    async def step(self) -> None:
        """Advance every node once (tests, with tick=None)."""
        await asyncio.gather(*(platform.step() for platform in self.platforms))
