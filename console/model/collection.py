"""One collection: what each source said, and everything known at that instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calls import Call
from .host import HostState
from .media import MediaState
from .signalling import SignallingState


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    ok: bool
    error: str = ""
    elapsed_ms: float = 0.0
    collected_at: float = 0.0
    detail: str = ""  # e.g. "plugin failed to import"


@dataclass(frozen=True, slots=True)
class Snapshot:
    collected_at: float
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    signalling: SignallingState | None = None
    media: MediaState | None = None
    host: HostState | None = None
    calls: tuple[Call, ...] = ()
    discovery: tuple[str, ...] = ()  # what config discovery found and where
    # Parts not from this collection but kept from an earlier one (a live console's merged state):
    # part ("contacts", "dialogs", "media", "host") -> its age in seconds.  Checks that compare
    # parts say UNKNOWN rather than make a finding from old data.
    stale: dict[str, float] = field(default_factory=dict)
    # States of plugins' own sources (neither signalling, media nor host): source name -> state
    parts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources.values())
