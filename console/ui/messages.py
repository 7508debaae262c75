"""What the screens ask of the app (messages up; the app sets attributes and calls methods down)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from textual.message import Message

from .format import LiveSections, Section


class Back(Message):
    """Esc with nothing left to close on a screen: back to the Overview."""


class RerunChecks(Message):
    """`r` on the Checks screen: a poll that brings every list, then the checks."""


@dataclass
class MiSubmitted(Message):
    """An MI command line typed on the MI screen."""

    line: str


@dataclass
class DetailRequested(Message):
    """Enter on a row: its detail screen (`live`: follows the row at each poll)."""

    title: str
    sections: list[Section]
    live: LiveSections | None = None
    loader: Callable[[], Awaitable[list[Section]]] | None = field(default=None)


@dataclass
class AorDetailRequested(Message):
    """Enter on a contact known by its AoR only: ask OpenSIPS for that one AoR."""

    aor: str


@dataclass
class SelectionChanged(Message):
    """The contact list's (filter, transport, sort, reverse) changed: the next index is prepared for it."""

    selection: tuple[str, str, str, bool]
