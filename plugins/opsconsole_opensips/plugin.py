"""opsconsole OpenSIPS plugin: the MI source and the opensips.* checks."""

from console.plugins import Plugin

from .checks import CHECKS
from .session import MISession
from .source import OpenSIPSSource
from .topology import TopologySource
from .topology_checks import TOPOLOGY_CHECKS


def make_sources(config) -> list:
    if not (config.mi_url or config.mi_fifo):
        return []
    opensips = OpenSIPSSource(config)
    # RTPengine sets and clusterer of the same node, over the same MI client (Snapshot.parts["topology"])
    return [opensips, TopologySource(config, opensips)]


plugin = Plugin(
    name="opensips",
    make_sources=make_sources,
    checks=CHECKS + TOPOLOGY_CHECKS,
    command_session=MISession,
)
