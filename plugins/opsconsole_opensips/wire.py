"""Typed decoding of a `ul_dump` reply straight from its bytes (msgspec).  No I/O.

Why: `json.loads` builds a dict of 12+ keys per contact that `parse_contacts` reads
once and drops: at 10k contacts that is ~2 us of the ~3 us a contact cost.  msgspec
decodes the same bytes into slotted records of only the fields we read, with their
types checked in C, in ~0.5 us (bench/bench_registrations.py).

The typed shape is the usual one of the captures (tests/fixtures/opensips-*/mi/
ul_dump.*), brief dumps included.  Anything else (a JSON-RPC error, a field of
another type or missing, NaN, a lone surrogate, bytes that are not UTF-8) makes
`decode_dump` return None: the caller then decodes generically, which accepts or
explains the reply exactly as before.  Without msgspec, always None.
"""

from __future__ import annotations

from typing import Any

try:
    import msgspec
except ImportError:  # a declared dependency; the generic path alone still works
    msgspec = None


if msgspec is not None:

    class WireContact(msgspec.Struct, gc=False):
        # Required unless the generic parser has a default for the key's absence
        # too: a missing key sends the whole reply down the generic path.
        contact: str = msgspec.field(name="Contact")
        contact_id: str = msgspec.field(name="ContactID")
        expires: int | str = msgspec.field(name="Expires")  # seconds, or "permanent"/"expired"/"deleted"
        q: str = msgspec.field(name="Q")
        callid: str = msgspec.field(name="Callid")
        cseq: int = msgspec.field(name="Cseq")
        user_agent: str = msgspec.field(name="User-agent")
        state: str = msgspec.field(name="State")
        flags: int = msgspec.field(name="Flags")
        cflags: str = msgspec.field(name="Cflags")
        methods: int = msgspec.field(name="Methods")
        socket: str = msgspec.field(default="", name="Socket")  # absent for MI-added contacts
        received: str = msgspec.field(default="", name="Received")  # only when set
        path: str = msgspec.field(default="", name="Path")

    class WireAOR(msgspec.Struct, gc=False):
        aor: str = msgspec.field(name="AOR")
        contacts: list[WireContact] | None = msgspec.field(default=None, name="Contacts")  # None: brief dump

    class WireDomain(msgspec.Struct, gc=False):
        aors: list[WireAOR] = msgspec.field(name="AORs")

    class WireDump(msgspec.Struct, gc=False):
        """`result` of a full or brief ul_dump (usrloc:dump)."""

        domains: list[WireDomain] = msgspec.field(name="Domains")

    class _WireReply(msgspec.Struct, gc=False):
        result: WireDump
        error: None = None  # a non-null error takes the generic path, which raises it

    _decoder = msgspec.json.Decoder(_WireReply)
    _failures: tuple[type[BaseException], ...] = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
else:  # pragma: no cover
    WireDump = None  # type: ignore[assignment,misc]


def decode_dump(body: bytes) -> Any:
    """A `WireDump`, or None when the reply is not the usual shape (or msgspec is missing)."""
    if msgspec is None:
        return None
    try:
        return _decoder.decode(body).result
    except _failures:  # msgspec.ValidationError is a DecodeError
        return None


def is_wire_dump(result: Any) -> bool:
    return WireDump is not None and type(result) is WireDump
