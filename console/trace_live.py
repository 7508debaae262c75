"""The Trace screen's headless half: what to trace for a selected call or contact, the trace's life
(start, read, explain, write the pcap, stop) and the ladder drawn as plain text.  No Textual here:
console/ui/trace_screen.py renders it, tests drive it directly.

The trace itself is the command session's (ConsoleService.trace_session: OpenSIPS's tracer sends HEP
to us; trace_start/trace_stop audited, allowed in read-only mode as a transient change).  Its objects
(ladder, flows, messages) come from the opensips plugin and are used here by their attributes only:
the core imports no plugin.

Which filter catches a user both ways: OpenSIPS's tracer ANDs the filters of one trace
(`caller=` the From user, `callee=` the requested user), so "alice as caller *or* callee" is two
dynamic traces to the same listener (TraceOptions.user).  Calls: the selected call's caller, traced
that way, scope dialog (whole calls from their INVITE, ACK and BYE included: a call already up is not
traced by OpenSIPS, so the next calls show); Registrations: the AoR's user, scope transaction (a
REGISTER is no dialog, so scope dialog never shows it; scope message shows only the matching request
itself, tried on 3.4 and 4.0: a lone INVITE; scope transaction shows the REGISTERs and each call's
INVITE transaction on both legs with its replies, but not the ACK/BYE transactions the filters miss).
`c` on the screen narrows the ladder to one Call-ID after the fact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from .errors import OpsError
from .model import Call, Contact
from .render.safe import escape_controls

SETTLE_S = 1.0  # an ended call gets OpenSIPS's notes (location, dialog) once quiet this long
COLUMN = 23  # characters per endpoint column of the ladder ("255.255.255.255:65535" + margins)
MAX_COLUMNS = 6  # more endpoints than this: one "src → dst" line per message instead of columns
STATE_DIR = "~/.local/state/opsconsole"  # where `w` writes the pcap (next to the audit log)
ROWS_MAX = 5_000  # messages the screen keeps (a long trace of a busy user: the oldest half goes)


@dataclass(frozen=True)
class TraceTarget:
    user: str  # traced as caller or callee
    scope: str  # "dialog" or "transaction" (TraceOptions.scope)
    callid: str = ""  # the selected call
    origin: str = ""  # what was selected, in words

    def options(self) -> dict[str, Any]:
        return {"user": self.user, "scope": self.scope}

    @property
    def label(self) -> str:
        return self.user


def sip_user(uri: str) -> str:
    """'sip:alice@example.com;x=1' / '"A" <sip:alice@h>' / 'alice' -> 'alice'."""
    if "<" in uri:
        uri = uri.partition("<")[2].partition(">")[0]
    rest = uri.split(":", 1)[1] if uri.startswith(("sip:", "sips:")) else uri
    return rest.split("@", 1)[0].split(";", 1)[0]


def target_for_call(call: Call) -> TraceTarget:
    """The selected call's caller, both ways; ValueError when the call has no dialog to name one."""
    if call.dialog is None:
        raise ValueError("this call has no dialog in OpenSIPS (media only): no caller to trace")
    user = sip_user(call.dialog.from_uri)
    if not user:
        raise ValueError("the call's From has no user part to trace")
    return TraceTarget(user, "dialog", call.callid, f"call {call.callid}")


def target_for_contact(contact: Contact) -> TraceTarget:
    user = sip_user(contact.aor)
    if not user:
        raise ValueError("this AoR has no user part to trace")
    return TraceTarget(user, "transaction", "", f"AoR {contact.aor}")


@dataclass(frozen=True)
class LadderRow:
    """One traced message as the screen lists it."""

    message: Any  # ladder.TracedMessage (plugin type: used by attributes)
    delta: float | None  # seconds since the previous message of its call; None: the first
    seq: int = 0  # its number in the trace (the screen's row key; stays when older rows are dropped)

    @property
    def call_id(self) -> str:
        return self.message.call_id


@dataclass
class TraceLive:
    """One trace for the screen.  `start()` raises OpsError with what to do; `lines()` yields each
    message until `stop()`, which is safe to call any number of times and from any path."""

    service: Any
    target: TraceTarget
    state_dir: str = STATE_DIR
    rows: list[LadderRow] = field(default_factory=list)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # Call-ID -> OpenSIPS's notes once ended
    session: Any = None
    stopped: bool = False
    dropped: int = 0  # rows dropped from the front (ROWS_MAX)

    async def start(self) -> None:
        factory = getattr(self.service, "trace_session", None)
        if factory is None:
            raise OpsError("this console's service offers no SIP trace (is the opensips plugin installed?)")
        self.session = factory(self.target.options())
        try:
            await self.session.start()
        except ValueError as exc:
            await self.stop()
            raise OpsError(str(exc)) from None
        except BaseException:
            await self.stop()
            raise

    @property
    def active(self) -> bool:
        return self.session is not None and not self.stopped and bool(getattr(self.session, "active", False))

    @property
    def trace_id(self) -> str:
        return getattr(self.session, "trace_id", "")

    async def lines(self) -> AsyncIterator[LadderRow]:
        async for line in self.session.lines():
            row = LadderRow(line.message, line.delta, self.dropped + len(self.rows))
            self.rows.append(row)
            if len(self.rows) > ROWS_MAX:
                half = len(self.rows) // 2
                del self.rows[:half]
                self.dropped += half
            yield row

    def row(self, seq: int) -> LadderRow | None:
        index = seq - self.dropped
        return self.rows[index] if 0 <= index < len(self.rows) else None

    async def explain_due(self) -> list[str]:
        """OpenSIPS's notes (location table, dialog: MI) for calls that ended and went quiet; the
        Call-IDs that got some."""
        if self.session is None or self.stopped:
            return []
        done = []
        for flow in self.session.ladder.due(asyncio.get_running_loop().time(), SETTLE_S):
            with contextlib.suppress(OpsError):
                _, notes = await self.session.explain(flow)
                self.notes[flow.call_id] = tuple(notes)
                done.append(flow.call_id)
        return done

    def callids(self, limit: int = 20) -> frozenset[str]:
        """The newest traced calls' Call-IDs: the console queries their media sessions (the join)."""
        return frozenset([flow.call_id for flow in self.flows() if flow.kind == "INVITE"][-limit:])

    def flows(self, only: str = "") -> list[Any]:
        calls = self.session.ladder.calls if self.session is not None else {}
        return [flow for callid, flow in calls.items() if not only or callid == only]

    def explanation_lines(self, view: Any, now: float, *, only: str = "", limit: int = 8) -> list[str]:
        """Each traced flow explained and joined with what the console knows now (the newest `limit`)."""
        thresholds = getattr(getattr(self.service, "config", None), "thresholds", None)
        extra = {"mos_poor": thresholds.mos_poor, "silent_after_s": thresholds.silent_after_s} if thresholds else {}
        lines: list[str] = []
        for flow in self.flows(only)[-limit:]:
            lines += self.session.state_lines(flow, view, now, notes=self.notes.get(flow.call_id, ()), **extra)
        return lines

    def pcap_path(self) -> Path:
        return Path(self.state_dir).expanduser() / f"trace-{self.trace_id or 'none'}.pcap"

    def write_pcap(self) -> tuple[Path, int]:
        """Every message traced so far as one pcap; (path, how many).  OSError when it cannot."""
        path = self.pcap_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # SIP may carry credentials
        with os.fdopen(fd, "wb") as file:
            count = self.session.write_pcap(file)
        return path, count

    async def stop(self) -> str:
        """trace_stop (every trace of ours), the listener closed; '' or why it could not be stopped."""
        if self.stopped or self.session is None:
            self.stopped = True
            return ""
        self.stopped = True
        await self.session.stop()
        return getattr(self.session, "stop_error", "")


# --------------------------------------------------------------------------- the ladder as text

def endpoints(rows: list[LadderRow], flows: list[Any]) -> list[str]:
    """Columns: the callers (where opening requests came from) left, OpenSIPS in the middle, every
    other address (callees, gateways) right; each in order of first appearance."""
    proxies = list(dict.fromkeys(flow.proxy for flow in flows if flow.proxy))
    callers = list(dict.fromkeys(flow.caller for flow in flows if flow.caller and flow.caller not in proxies))
    seen = list(dict.fromkeys(a for row in rows for a in (row.message.src, row.message.dst)))
    others = [a for a in seen if a not in proxies and a not in callers]
    return callers + proxies + others


def header_text(columns: list[str]) -> str:
    if len(columns) > MAX_COLUMNS:
        return "source → destination"
    return "".join(escape_controls(c)[:COLUMN - 1].center(COLUMN) for c in columns).rstrip()


def arrow_text(message: Any, columns: list[str]) -> str:
    """'      │───── 180 Ringing ─────◀│' between the message's two columns, bars elsewhere."""
    label = escape_controls(message.label)
    if len(columns) > MAX_COLUMNS or message.src not in columns or message.dst not in columns:
        return f"{escape_controls(message.src)} → {escape_controls(message.dst)}  {label}"
    left, right = sorted((columns.index(message.src), columns.index(message.dst)))
    centre = COLUMN // 2
    line = [" "] * (COLUMN * len(columns))
    for index in range(len(columns)):
        line[index * COLUMN + centre] = "│"
    start, end = left * COLUMN + centre, right * COLUMN + centre
    if start == end:  # to itself (OpenSIPS to OpenSIPS): a loop mark
        text = f"│↺ {label}"
        line[start:start + len(text)] = list(text)
        return "".join(line).rstrip()
    for position in range(start + 1, end):
        line[position] = "─"
    rightwards = columns.index(message.dst) == right
    line[end - 1 if rightwards else start + 1] = "▶" if rightwards else "◀"
    room = end - start - 3  # between the bar (or the head) and the head (or the bar)
    text = f" {label[:max(0, room - 2)]} "[:room]
    begin = start + 2 + (room - len(text)) // 2
    line[begin:begin + len(text)] = list(text)
    return "".join(line).rstrip()


def delta_text(delta: float | None) -> str:
    return "new" if delta is None else f"+{delta * 1000:.0f} ms" if delta < 1 else f"+{delta:.2f} s"


def clock_text(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def message_fields(message: Any) -> list[tuple[str, str]]:
    """The message's envelope, for its detail (the text itself is shown whole, escaped, by the UI)."""
    packet = message.packet
    return [("Time", clock_text(message.time)), ("From", message.src), ("To", message.dst),
            ("Transport", message.transport.upper()), ("Call-ID", message.call_id),
            ("Size", f"{len(packet.payload)} bytes")]


def message_text(message: Any) -> str:
    """The whole SIP message as received (undecodable bytes replaced); the UI escapes it."""
    return message.packet.payload.decode("utf-8", "replace")
