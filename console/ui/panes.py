"""The screens (keys 1–6, and 0 the Fleet), in key order: one module each, a pane per screen."""

from __future__ import annotations

from .calls import CallsPane
from .checks_screen import ChecksPane
from .fleet import FleetPane
from .media import MediaPane
from .mi_screen import MiPane
from .overview import OverviewPane
from .registrations import ContactTable, RegistrationsPane  # noqa: F401  (ContactTable: the bench drives it)
from .rows import Pane

PANES: tuple[tuple[str, str, type[Pane]], ...] = (
    ("1", "overview", OverviewPane),
    ("2", "registrations", RegistrationsPane),
    ("3", "calls", CallsPane),
    ("4", "media", MediaPane),
    ("5", "checks", ChecksPane),
    ("6", "mi", MiPane),
    ("0", "fleet", FleetPane),  # every node; Enter shows one on the screens above
)
PANE_TITLES = {"overview": "Overview", "registrations": "Regs", "calls": "Calls", "media": "Media",
               "checks": "Checks", "mi": "MI", "fleet": "Fleet"}
