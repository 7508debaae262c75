"""opsconsole rtpengine plugin: the media source and its diagnose checks."""

from console.plugins import Plugin

from .checks import CHECKS
from .source import make_sources

plugin = Plugin(name="rtpengine", make_sources=make_sources, checks=CHECKS)
