"""One collection across every source → a `Snapshot`.

Sources run concurrently, each under its own timeout; a failing or hung
source becomes `SourceStatus(ok=False, error=...)`, never an exception out of
the poll.  Dialogs and media sessions are joined into `Call`s here.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Mapping

from .config import Config, is_loopback
from .errors import OpsError
from .model import (
    Call,
    Dialog,
    HostState,
    MediaSession,
    MediaState,
    SignallingState,
    Snapshot,
    SourceStatus,
)
from .plugins import CollectOptions, LoadedPlugins, Source, collect_budget, load_plugins

# How a media protocol reads in the bridge label.
_PROTO_LABEL = {
    "RTP/AVP": "RTP",
    "RTP/AVPF": "RTP",
    "RTP/SAVP": "SRTP",
    "RTP/SAVPF": "SRTP",
    "UDP/TLS/RTP/SAVP": "DTLS-SRTP",
    "UDP/TLS/RTP/SAVPF": "DTLS-SRTP",
}


def media_label(protocol: str) -> str:
    return _PROTO_LABEL.get(protocol.upper(), protocol) if protocol else "?"


def bridge_label(dialog: Dialog | None, media: MediaSession | None) -> str:
    """'WS->UDP DTLS-SRTP<->RTP': signalling transports, then media protocols per leg."""
    parts: list[str] = []
    if dialog is not None:
        caller = (dialog.caller_transport or "?").upper()
        callee = (dialog.callee_transport or "?").upper()
        parts.append(f"{caller}->{callee}")
    if media is not None and media.legs:
        caller_leg = callee_leg = None
        if dialog is not None:
            caller_leg = media.leg(dialog.caller.tag)
            callee_leg = media.leg(dialog.callee.tag) if dialog.callees else None
        if caller_leg is None or callee_leg is None:
            legs = list(media.legs)
            caller_leg = caller_leg or legs[0]
            others = [leg for leg in legs if leg is not caller_leg]
            callee_leg = callee_leg or (others[0] if others else None)
        protos = [media_label(caller_leg.protocol)]
        if callee_leg is not None:
            protos.append(media_label(callee_leg.protocol))
        parts.append("<->".join(protos))
    return " ".join(parts)


def join_calls(dialogs: tuple[Dialog, ...] | None, sessions: tuple[MediaSession, ...] | None,
               previous: Mapping[str, Call] | None = None, *, dialogs_complete: bool = True,
               sessions_complete: bool = True) -> tuple[Call, ...]:
    """Dialogs joined with media by Call-ID; unmatched ones on either side are kept.

    A list that is None (failed, not fetched) or not complete (`*_complete=False`: partial, or
    older than the other side) is unknown: a call missing from it is marked unknown on that side
    (`Call.dialog_known` / `media_known`), never "without dialog/media".
    `previous` (Call-ID -> Call of the last join): a call whose dialog and session are the same
    objects is reused as is (no new bridge label; screens skip unchanged rows by identity)."""
    dialog_known = dialogs is not None and dialogs_complete
    media_known = sessions is not None and sessions_complete
    by_callid = {s.callid: s for s in (sessions or ())}
    known = previous or {}
    calls: list[Call] = []
    seen: set[str] = set()
    for dialog in dialogs or ():
        media = by_callid.get(dialog.callid)
        seen.add(dialog.callid)
        calls.append(_joined(dialog.callid, dialog, media, known, True, media is not None or media_known))
    for session in sessions or ():
        if session.callid not in seen:
            calls.append(_joined(session.callid, None, session, known, dialog_known, True))
    return tuple(calls)


def sessions_complete(media: MediaState | None) -> bool:
    """The session list holds every session RTPengine has (`list` may be limited)."""
    return media is not None and (media.sessions_total is None or media.sessions_total <= len(media.sessions))


def _joined(callid: str, dialog: Dialog | None, media: MediaSession | None, known: Mapping[str, Call],
            dialog_known: bool, media_known: bool) -> Call:
    call = known.get(callid)
    if (call is not None and call.dialog is dialog and call.media is media
            and call.dialog_known == dialog_known and call.media_known == media_known):
        return call
    return Call(callid, dialog, media, bridge_label(dialog, media), dialog_known, media_known)


def relay_version(media: MediaState | None, host: HostState | None) -> str:
    """RTPengine's version: its own word if it gives one, else the version of the package that
    installed the local daemon listening on the ng address we talk to ("" when unknown)."""
    if media is None or media.version or host is None:
        return media.version if media is not None else ""
    target_host, _, target_port = media.target.rpartition(":")
    for proc in host.rtpengine:
        address, version = proc.settings.get("ng_address", ""), proc.settings.get("version", "")
        if proc.suspect or not version or not address:
            continue
        proc_host, _, proc_port = address.rpartition(":")
        both_local = is_loopback(proc_host) and is_loopback(target_host)
        if address == media.target or (proc_port == target_port and both_local):
            return f"{version} (package)"
    return ""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"  # a bug in a plugin: still data, not a crash


@dataclass
class Collector:
    """Owns the sources (and their connections) across polls."""

    config: Config
    plugins: LoadedPlugins | None = None
    sources: list[Source] = field(default_factory=list)
    _started: bool = False
    _calls: dict[str, Call] = field(default_factory=dict)  # the last join, reused for unchanged calls

    def start(self) -> None:
        if self._started:
            return
        if self.plugins is None:
            self.plugins = load_plugins()
        self.sources = self.plugins.sources(self.config)
        self._started = True

    async def _one(self, source: Source, options: CollectOptions, timeout: float):
        # A source that runs long table dumps (each with its own deadline) may widen
        # the safety-net budget; otherwise the net would cut a legitimate dump short.
        timeout = collect_budget(source, options, timeout)
        started = time.perf_counter()
        try:
            state = await asyncio.wait_for(source.collect(options), timeout)
        except (Exception, asyncio.TimeoutError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            if isinstance(exc, asyncio.TimeoutError):
                text = f"no answer within {timeout:g} s"
            else:
                text = _error_text(exc)
            return None, SourceStatus(source.name, False, text, elapsed, time.time())
        elapsed = (time.perf_counter() - started) * 1000
        return state, SourceStatus(source.name, True, "", elapsed, time.time())

    async def collect(self, options: CollectOptions | None = None, *, timeout: float | None = None) -> Snapshot:
        self.start()
        options = options or CollectOptions(full_sync_max=self.config.full_sync_max)
        # A source gets the per-request timeout plus slack for its several requests.
        budget = timeout if timeout is not None else self.config.timeout * 3 + 1
        results = await asyncio.gather(*(self._one(s, options, budget) for s in self.sources))
        sources: dict[str, SourceStatus] = {}
        signalling = media = host = None
        parts: dict[str, object] = {}
        assert self.plugins is not None
        for failure in self.plugins.failures:
            sources[failure.name] = SourceStatus(failure.name, False, failure.error, 0.0, time.time(), "plugin")
        for source, (state, status) in zip(self.sources, results):
            sources[source.name] = status
            if isinstance(state, SignallingState):
                signalling = state
            elif isinstance(state, MediaState):
                media = state
            elif isinstance(state, HostState):
                host = state
            elif state is not None:
                parts[source.name] = state  # a plugin's own kind of state: its hooks render it
        # Live: the live session joins its merged lists (a list of this poll with one kept from an
        # earlier one), once; a join of this poll's lists alone would be done for nobody.
        calls: tuple = () if options.live else join_calls(
            signalling.dialogs if signalling else None,
            media.sessions if media else None,
            self._calls,
            sessions_complete=sessions_complete(media),
        )
        self._calls = {call.callid: call for call in calls}
        return Snapshot(
            collected_at=time.time(),
            sources=sources,
            signalling=signalling,
            media=media,
            host=host,
            calls=calls,
            discovery=self.config.discovery,
            parts=parts,
        )

    async def aclose(self) -> None:
        for source in self.sources:
            try:
                await source.aclose()
            except Exception:  # best effort: one source failing to close must not keep others open
                pass


def hostname() -> str:
    return socket.gethostname()
