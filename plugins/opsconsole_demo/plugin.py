"""opsconsole demo plugin: the embedded simulated platform behind `--demo` (and `--demo-nodes N`,
several nodes), offered through the `platforms` hook so the core never imports it."""

from console.plugins import Plugin


def demo_platform(**options):
    from . import DemoPlatform  # only `--demo` pays for the simulator's import

    return DemoPlatform(**options)


def demo_fleet(**options):
    from .fleet import DemoFleet

    return DemoFleet(**options)


plugin = Plugin(name="demo", platforms={"demo": demo_platform, "demo-fleet": demo_fleet})
