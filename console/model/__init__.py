"""Typed, frozen domain model shared by every layer.

Wire formats are parsed once, at the edge (the plugins' codecs/parsers), into
these dataclasses.  Everything above (snapshot, checks, renderers, UI) reads
only these.  The models are backend-neutral on purpose: a Kamailio source can
fill the same `SignallingState`.  One module per side; everything is importable
from `console.model`.
"""

from __future__ import annotations

import dataclasses

from .status import (  # noqa: F401
    CheckResult,
    EXIT_CODES,
    Status,
    overall_status,
    threshold_status,
)
from .signalling import (  # noqa: F401
    Connection,
    Contact,
    DIALOG_STATES,
    Dialog,
    DialogLeg,
    RelayNode,
    SIP_REPLY_CLASSES,
    SignallingOverview,
    SignallingState,
    SipCounters,
    SipWindow,
    TRANSPORTS,
    sip_window,
)
from .media import (  # noqa: F401
    InterfacePorts,
    InterfaceQuality,
    Media,
    MediaLeg,
    MediaSession,
    MediaState,
    MediaStream,
    MediaTotals,
    MosSample,
    PortUsage,
    SsrcQuality,
)
from .host import (  # noqa: F401
    HostState,
    ProcessInfo,
)
from .calls import (  # noqa: F401
    ANSWERED_DIALOG_STATES,
    Call,
    CallQuality,
    LegQuality,
    QualityState,
    _answered_at,
    _call_legs,
    _leg_quality,
    _no_mos_reason,
    _other,
    call_quality,
)
from .collection import (  # noqa: F401
    Snapshot,
    SourceStatus,
)


def replace(obj, **changes):
    """dataclasses.replace, re-exported so callers need not import dataclasses."""
    return dataclasses.replace(obj, **changes)
