"""Discovery of the platform's addresses when nothing is configured.

(Interface only; the implementation reads opensips-cli configs, the running
rtpengine's command line + --config-file, and the running OpenSIPS's -f cfg.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Discovered:
    mi_url: str | None = None
    mi_fifo: str | None = None
    ng: tuple[str, int] | None = None
    cli: tuple[str, int] | None = None
    port_range: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()  # "ng 127.0.0.1:60000 from rtpengine pid 123 --listen-ng"


def discover() -> Discovered:
    return Discovered()
