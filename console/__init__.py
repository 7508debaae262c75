"""opsconsole: terminal operations console for OpenSIPS + RTPengine."""

from . import codecache

__version__ = "0.1.0"

# Before any model module: their dataclasses' generated methods come compiled (console/codecache.py, #18).
codecache.install()
