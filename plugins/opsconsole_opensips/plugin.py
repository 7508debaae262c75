from console.plugins import Plugin

plugin = Plugin(name="opensips")
