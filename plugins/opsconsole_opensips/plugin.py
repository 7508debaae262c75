"""opsconsole OpenSIPS plugin: the MI source and the opensips.* checks."""

from console.plugins import Plugin

from .checks import CHECKS
from .commands import WRITE_METHODS, is_write_method, map_method
from .hold import estimate_hold
from .session import MISession
from .source import OpenSIPSSource


def make_sources(config) -> list:
    return [OpenSIPSSource(config)] if config.mi_url or config.mi_fifo else []


plugin = Plugin(
    name="opensips",
    make_sources=make_sources,
    checks=CHECKS,
    extras={"mi_session": MISession, "write_methods": WRITE_METHODS, "is_write_method": is_write_method, "map_method": map_method,
            "mi_hold_estimate": estimate_hold},
)
