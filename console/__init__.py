"""opsconsole: terminal operations console for OpenSIPS + RTPengine."""

__version__ = "0.1.0"
