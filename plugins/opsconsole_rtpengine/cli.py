"""RTPengine CLI (`--listen-cli`, TCP) client and parsers of its text output.

The protocol is what rtpengine-ctl does: send `command\\n`, read until the
daemon closes the connection.  We speak it directly instead of spawning
rtpengine-ctl (a perl script) every refresh.  Parsers are I/O-free.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from console.errors import (ConnectionRefused, ProtocolError, RemoteError, ResponseTooLarge, Timeout,
                            TransportError)
from console.model import InterfacePorts, InterfaceQuality, Media, MediaLeg, MediaSession, MediaStream, MediaTotals

MAX_REPLY_BYTES = 64 * 1024 * 1024  # `list sessions all` at 100k calls is ~17 MB

# Answers that mean "command not understood" (rtpengine exits 0 anyway).
_REJECTIONS = ("Unknown or incomplete command", "More parameters required")


class CliError(RemoteError):
    """RTPengine's CLI did not understand the command."""


class CliClient:
    def __init__(self, host: str, port: int, timeout: float = 2.0, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_bytes = max_bytes

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    async def command(self, text: str) -> str:
        """Raw output of one CLI command; CliError when the daemon rejects it."""
        text = text.strip()
        if not text or "\n" in text or "\r" in text:
            # An empty line makes rtpengine wait forever for a command.
            raise ProtocolError(f"invalid rtpengine CLI command {text!r}", target=self.target)
        try:
            raw = await asyncio.wait_for(self._exchange(text.encode()), self.timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"rtpengine CLI at {self.target} did not finish answering {text!r} within "
                          f"{self.timeout:g} s", target=self.target) from None
        output = raw.decode("utf-8", "replace")
        first = output.strip().splitlines()[0] if output.strip() else ""
        if first.startswith(_REJECTIONS):
            raise CliError(f"rtpengine CLI rejected {text!r}: {first}", target=self.target)
        return output

    async def _exchange(self, command: bytes) -> bytes:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 16)
        except ConnectionRefusedError:
            raise ConnectionRefused(f"nothing listens for the rtpengine CLI on tcp {self.target} (connection refused)",
                                    target=self.target, hint="check rtpengine's --listen-cli address") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to the rtpengine CLI at {self.target}: {exc}",
                                 target=self.target) from None
        try:
            writer.write(command + b"\n")
            await writer.drain()
            chunks: list[bytes] = []
            size = 0
            while chunk := await reader.read(1 << 16):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ResponseTooLarge(f"rtpengine CLI answer to {command.decode()!r} exceeds "
                                           f"{self.max_bytes} bytes", target=self.target)
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise TransportError(f"rtpengine CLI connection to {self.target} failed: {exc}",
                                 target=self.target) from None
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    # convenience wrappers ------------------------------------------------------------

    async def totals(self) -> MediaTotals:
        return parse_totals(await self.command("list totals"))

    async def numsessions(self) -> dict[str, int]:
        return parse_numsessions(await self.command("list numsessions"))

    async def interfaces(self) -> tuple[InterfacePorts, ...]:
        return parse_interfaces(await self.command("list interfaces"))

    async def interfaces_and_quality(self) -> tuple[tuple[InterfacePorts, ...], tuple[InterfaceQuality, ...] | None]:
        """One `list interfaces`: the port usage, and the per-interface quality when printed (12.4+)."""
        text = await self.command("list interfaces")
        return parse_interfaces(text), parse_interface_quality(text)

    async def sessions(self, which: str = "all") -> tuple[MediaSession, ...]:
        return parse_sessions_list(await self.command(f"list sessions {which}"))

    async def session(self, callid: str) -> MediaSession | None:
        return parse_session_detail(await self.command(f"list sessions {callid}"))

    async def jsonstats(self) -> dict[str, Any]:
        return parse_jsonstats(await self.command("list jsonstats"))


# --------------------------------------------------------------------------- parsers


def _number(text: str) -> int | float | None:
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", text)
    if not match:
        return None
    value = match.group(1)
    return float(value) if "." in value else int(value)


# label in `list totals` -> MediaTotals field
_TOTALS_FIELDS = {
    "Owned sessions": "owned_sessions",
    "Foreign sessions": "foreign_sessions",
    "Total sessions": "total_sessions",
    "Uptime of rtpengine": "uptime_s",
    "Packets per second (userspace)": "packets_per_s_user",
    "Packets per second (kernel)": "packets_per_s_kernel",
    "Errors per second (total)": "errors_per_s",
    "Total relayed packets (userspace)": "relayed_packets_user",
    "Total relayed packets (kernel)": "relayed_packets_kernel",
    "Total relayed packet errors": "relayed_errors",
    "Total managed sessions": "managed_sessions",
    "Total rejected sessions": "rejected_sessions",
    "Total timed-out sessions via TIMEOUT": "timeout_sessions",
}
_FLOAT_FIELDS = {"packets_per_s_user", "packets_per_s_kernel", "errors_per_s"}


def parse_totals(text: str) -> MediaTotals:
    """`list totals` -> MediaTotals; `raw` keeps every `label: value` line as text."""
    raw: dict[str, str] = {}
    values: dict[str, Any] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        label, value = label.strip(), value.strip()
        if not sep or not value or not label:
            continue  # blank lines and section headings ("Statistics over ...:")
        raw[label] = value
        field_name = _TOTALS_FIELDS.get(label)
        number = _number(value)
        if field_name and number is not None:
            values[field_name] = float(number) if field_name in _FLOAT_FIELDS else int(number)
    if "total_sessions" not in values and "owned_sessions" not in values:
        raise ProtocolError(f"not a `list totals` output ({_first_line(text)!r})")
    return MediaTotals(raw=raw, **values)


def parse_numsessions(text: str) -> dict[str, int]:
    """`Current sessions own: 9` -> {"sessions_own": 9, ...}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"Current (.+?):\s*(\d+)\s*$", line.strip())
        if match:
            out[re.sub(r"\s+", "_", match.group(1).strip())] = int(match.group(2))
    if "sessions_total" not in out:
        raise ProtocolError(f"not a `list numsessions` output ({_first_line(text)!r})")
    return out


_INTERFACE_RE = re.compile(r"^Interface '(?P<name>[^']*)' address '(?P<address>[^']*)'")
_RANGE_RE = re.compile(r"^\s*Port range:\s*(\d+)\s*-\s*(\d+)")
_USED_RE = re.compile(r"^\s*Ports used:\s*(\d+)\s*/\s*(\d+)")
_LAST_RE = re.compile(r"^\s*Last port used:\s*(\d+)")


def parse_interfaces(text: str) -> tuple[InterfacePorts, ...]:
    """`list interfaces` -> one InterfacePorts per interface address."""
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if match := _INTERFACE_RE.match(line):
            found.append({"name": match["name"], "address": match["address"], "used": 0, "total": 0})
        elif not found:
            continue
        elif match := _RANGE_RE.match(line):
            found[-1].update(port_min=int(match[1]), port_max=int(match[2]))
        elif match := _USED_RE.match(line):
            found[-1].update(used=int(match[1]), total=int(match[2]))
        elif match := _LAST_RE.match(line):
            found[-1]["last_port"] = int(match[1])
    if not found and text.strip():
        raise ProtocolError(f"not a `list interfaces` output ({_first_line(text)!r})")
    return tuple(InterfacePorts(**item) for item in found)


# RTPengine 12.4+ adds per-interface averages (daemon/cli.c); with no sample yet they print nan.
_MOS_RE = re.compile(r"^\s*MOS:\s*avg\s+(?P<mos>\S+),\s*packet loss avg\s+(?P<loss>[^%\s]+)%")
_JITTER_RE = re.compile(r"^\s*Jitter:\s*avg\s+(?P<jitter>[^\s(]+)")
_RTT_RE = re.compile(r"^\s*RTT:\s*e2e\s+(?P<e2e>[^,\s]+)")


def _measured(text: str) -> float | None:
    """A printed average: a number, or nan/-nan/inf when RTPengine divided by zero samples."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def parse_interface_quality(text: str) -> tuple[InterfaceQuality, ...] | None:
    """`list interfaces` -> per-interface MOS/loss/jitter/RTT averages; None when the daemon does not
    print them (RTPengine before 12.4, e.g. Debian 12's 10.5)."""
    found: list[dict[str, Any]] = []
    reported = False
    for line in text.splitlines():
        if match := _INTERFACE_RE.match(line):
            found.append({"name": match["name"], "address": match["address"]})
        elif not found:
            continue
        elif match := _MOS_RE.match(line):
            reported = True
            found[-1].update(mos=_measured(match["mos"]), loss_pct=_measured(match["loss"]))
        elif match := _JITTER_RE.match(line):
            found[-1]["jitter_ms"] = _measured(match["jitter"])
        elif match := _RTT_RE.match(line):
            rtt = _measured(match["e2e"])
            found[-1]["rtt_ms"] = rtt / 1000.0 if rtt is not None else None
    if not reported:
        return None
    return tuple(InterfaceQuality(**item) for item in found)


def parse_sessions_list(text: str) -> tuple[MediaSession, ...]:
    """`list sessions all|own|foreign` -> sessions (call-id, deletion mark, created, proxy, foreign)."""
    return SessionList().parse(text)


class SessionList:
    """`list sessions` parsed poll after poll: a line unchanged since the previous listing gives
    back the same MediaSession (no re-parse; the screens tell unchanged rows by identity)."""

    def __init__(self, target: str = "") -> None:
        self.target = target
        self._by_line: dict[str, MediaSession] = {}

    def parse(self, text: str) -> tuple[MediaSession, ...]:
        previous, current = self._by_line, {}
        sessions: list[MediaSession] = []
        for line in text.splitlines():
            if not line.startswith("callid:"):
                continue
            session = previous.get(line) or _session_line(line, self.target)
            if session is not None:
                current[line] = session
                sessions.append(session)
        self._by_line = current
        if not sessions and text.strip() and not text.strip().startswith("No "):
            raise ProtocolError(f"not a `list sessions` output ({_first_line(text)!r})")
        return tuple(sessions)


def _session_line(line: str, target: str) -> MediaSession | None:
    fields: dict[str, str] = {}
    for part in line.split(" | "):
        key, _, value = part.partition(":")
        fields[key.strip()] = value.strip()
    if not fields.get("callid"):
        return None
    return MediaSession(
        callid=fields["callid"],
        created=int(_number(fields.get("created", "")) or 0),
        deleted=fields.get("deletionmark") == "yes",
        foreign=fields.get("foreign") == "yes",
        proxy=fields.get("proxy", ""),
        target=target,
    )


_TAG_RE = re.compile(r"^--- Tag '(?P<tag>.*?)', type: (?P<type>[^,]*), label '(?P<label>.*?)'")
_MEDIA_RE = re.compile(r"^------ Media #(?P<index>\d+) \((?P<type>\S+) over (?P<protocol>[^)]*)\) using (?P<codec>.*)$")
_PORT_RE = re.compile(
    r"^-------- Port\s+(?P<local>\S+)\s+<>\s+(?P<endpoint>\S*?)\s*(?P<rtcp>\(RTCP\))?\s*,\s*SSRC\s+\S+,\s*"
    r"(?P<packets>\d+) p,\s*(?P<bytes>\d+) b,\s*(?P<errors>\d+) e,\s*(?P<last>\d+) ts")


def parse_session_detail(text: str) -> MediaSession | None:
    """`list sessions <callid>` -> MediaSession with legs/medias/streams; None for "Call ID not found"."""
    if _first_line(text).lower().startswith("call id not found"):
        return None
    head: dict[str, str] = {}
    legs: list[dict[str, Any]] = []
    for line in text.splitlines():
        if match := _TAG_RE.match(line):
            legs.append({"tag": match["tag"], "tag_type": match["type"].strip(), "label": match["label"],
                         "medias": []})
        elif match := _MEDIA_RE.match(line):
            if legs:
                codec = match["codec"].strip()
                legs[-1]["medias"].append({"index": int(match["index"]), "type": match["type"],
                                           "protocol": match["protocol"],
                                           "codec": "" if codec == "unknown codec" else codec, "streams": []})
        elif match := _PORT_RE.match(line):
            if legs and legs[-1]["medias"]:
                legs[-1]["medias"][-1]["streams"].append(_stream(match))
        elif not legs and ":" in line and not line.startswith("-"):
            key, _, value = line.partition(":")
            head[key.strip()] = value.strip()
    if "callid" not in head:
        raise ProtocolError(f"not a `list sessions <callid>` output ({_first_line(text)!r})")
    return MediaSession(
        callid=head["callid"],
        created=int(_number(head.get("created", "")) or 0),
        last_signal=int(_number(head.get("last_signal", "")) or 0),
        deleted=head.get("deletionmark") == "yes",
        foreign=head.get("foreign") == "yes",
        proxy=head.get("proxy", ""),
        detailed=True,
        legs=tuple(
            MediaLeg(tag=leg["tag"], tag_type=leg["tag_type"], label=leg["label"],
                     medias=tuple(Media(index=m["index"], type=m["type"], protocol=m["protocol"], codec=m["codec"],
                                        streams=tuple(m["streams"])) for m in leg["medias"]))
            for leg in legs),
    )


def _stream(match: re.Match) -> MediaStream:
    address, _, port = match["local"].rpartition(":")
    return MediaStream(
        local_address=address.strip("[]"),
        local_port=int(port) if port.isdecimal() else 0,
        endpoint="" if match["endpoint"].startswith(":") else match["endpoint"],  # "   :0" = not known yet
        rtcp=bool(match["rtcp"]),
        packets=int(match["packets"]),
        bytes=int(match["bytes"]),
        errors=int(match["errors"]),
        last_packet=int(match["last"]),
    )


def parse_jsonstats(text: str) -> dict[str, Any]:
    """`list jsonstats` -> dict (same layout as the ng `statistics` reply, numbers as numbers)."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ProtocolError(f"`list jsonstats` did not return JSON ({_first_line(text)!r})") from None
    if not isinstance(value, dict):
        raise ProtocolError("`list jsonstats` returned JSON that is not an object")
    return value


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:80] if stripped else "empty"


__all__ = [
    "CliClient", "CliError", "parse_interface_quality", "parse_interfaces", "parse_jsonstats", "parse_numsessions",
    "parse_session_detail", "parse_sessions_list", "parse_totals",
]
