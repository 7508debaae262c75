"""opsconsole host plugin: daemons, kernel modules and kernel log of this machine."""
from console.plugins import Plugin

from .checks import CHECKS
from .discovery import discover
from .source import HostSource

plugin = Plugin(name="host", make_sources=lambda cfg: [HostSource(cfg)], checks=CHECKS, discover=discover)
