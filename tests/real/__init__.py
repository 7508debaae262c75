"""Tests against a real OpenSIPS + RTPengine (a package, so its conftest does not shadow tests/conftest.py)."""
