"""Shared pytest configuration.  Fixtures live in tests/support/*, one module per area."""

import os
import sys
from pathlib import Path

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

# Deterministic rendering for UI tests and no colour surprises.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

FIXTURES = TESTS / "fixtures"

pytest_plugins = [
    "support.mi_server",
    "support.rtpengine_daemon",
]
