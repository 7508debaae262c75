"""OpenSIPS Event Interface: live usrloc/dialog changes instead of full dumps.

Kept so existing imports work: the I/O-free codec lives in events_codec.py, the
asyncio listener in events_listener.py.  New code imports from those.
"""

from __future__ import annotations

from .events_codec import (  # noqa: F401
    AOR_EVENTS,
    AorEvent,
    CONTACT_EVENTS,
    ContactEvent,
    DIALOG_EVENT,
    DIALOG_SUBSCRIPTIONS,
    DialogStateEvent,
    Event,
    EventStreamDecoder,
    MAX_EVENT_BYTES,
    OtherEvent,
    REGISTRATION_SUBSCRIPTIONS,
    contact_from_event,
    decode_datagram,
    expires_left,
    parse_event,
    q_text,
    transport_of,
)

from .events_listener import (  # noqa: F401
    EventListener,
    EventSink,
    MIClientLike,
    SubscriptionFailure,
    TRANSPORT_MODULES,
    UDP_DRAIN_MAX,
    UDP_RECEIVE_BUFFER,
    UNAVAILABLE_CODES,
    kernel_udp_drops,
    subscribed_events,
)
