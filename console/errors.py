"""One exception hierarchy for every protocol client.

Each error carries a message an on-call engineer understands (what was tried,
what happened, what usually fixes it).  Collectors turn these into data
(`SourceStatus.error`); nothing above the collectors sees a traceback.
"""

from __future__ import annotations


class OpsError(Exception):
    """Base of every error opsconsole raises on purpose."""

    def __init__(self, message: str, *, target: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.target and self.target not in text:
            text = f"{text} [{self.target}]"
        if self.hint:
            text = f"{text} — {self.hint}"
        return text


class TransportError(OpsError):
    """Could not exchange bytes: refused, reset, unreachable, permission denied."""


class ConnectionRefused(TransportError):
    """Nothing listens at the address."""


class TimeoutError_(TransportError):
    """The peer accepted or was sent a request but did not answer in time."""


# Public alias with a readable name; avoids shadowing the builtin TimeoutError.
Timeout = TimeoutError_


class ProtocolError(OpsError):
    """Bytes arrived but are not what the protocol says (malformed, truncated, wrong type)."""


class ResponseTooLarge(ProtocolError):
    """The peer sent more than we are willing to hold in memory."""


class RemoteError(OpsError):
    """The peer answered with an error of its own (JSON-RPC error, ng `result: error`)."""

    def __init__(self, message: str, *, code: int | None = None, data=None, target: str = "", hint: str = "") -> None:
        super().__init__(message, target=target, hint=hint)
        self.code = code
        self.data = data


class WriteRefused(OpsError):
    """A command that changes the platform was asked for without --allow-write."""


class ConfigError(OpsError):
    """Configuration is unreadable, invalid, or unsafe (e.g. a secret readable by others)."""
