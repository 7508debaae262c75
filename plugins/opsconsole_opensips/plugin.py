"""opsconsole OpenSIPS plugin: the MI source and the opensips.* checks."""

from console.plugins import Plugin

from .checks import CHECKS
from .session import MISession
from .source import OpenSIPSSource


def make_sources(config) -> list:
    return [OpenSIPSSource(config)] if config.mi_url or config.mi_fifo else []


plugin = Plugin(
    name="opensips",
    make_sources=make_sources,
    checks=CHECKS,
    command_session=MISession,
)
