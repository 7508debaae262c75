"""OpenSIPSSource: one collection of an OpenSIPS node over MI -> SignallingState.

Cheap calls (uptime, statistics, rtpengine set, TCP connections) run
concurrently; heavy table walks (ul_dump, dlg_list_ctx) run after them, one at
a time, and only when CollectOptions asks.  A full ul_dump is skipped above
`full_sync_max` contacts: in OpenSIPS 3.4 it is quadratic and holds the single
mi_http process (10k: 0.39 s, 100k: 162 s measured).

With `CollectOptions.live` (a long-running console) contacts and dialogs come
from event-fed tables instead (live.py): one full dump at start while small,
counters every collect.  The one-shot path (live=False) is unchanged.
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Any, Callable

from console.errors import OpsError, ProtocolError, RemoteError
from console.model import Contact, Dialog, SignallingOverview, SignallingState, SipCounters, replace
from console.plugins import CollectOptions

from .client import MIClient, make_client
from .http11 import ConnectionDropped
from .codec import METHOD_NOT_FOUND, MIError
from .commands import CommandMap, detect_commands
from .live import DUMP_TIMEOUT_CAP, LiveSync, dump_timeout, estimate_dump_seconds  # noqa: F401  (estimate_dump_seconds: public here too)
from .parse import (
    parse_sip_counters,
    parse_connections,
    parse_contacts,
    parse_dialog_count,
    parse_dialogs,
    parse_overview,
    parse_relays,
    parse_statistics,
)
from .wire import decode_dump

# sl: (stateless replies by class) costs ~9 more counters in the same call: the SIP health figures
STAT_GROUPS = ["core:", "shmem:", "load:", "tm:", "sl:", "dialog:", "usrloc:"]
SIP_GROUPS = ["sl:", "tm:"]
DIALOG_PAGE = 1000  # dlg_list page size once a node holds more dialogs than this

# `which` names -> module names, for the modules OpenSIPS does not prefix itself (3.x).
_MODULE_OF_34 = {
    "ul_": "usrloc", "dlg_": "dialog", "profile_": "dialog", "list_all_profiles": "dialog",
    "rtpengine_": "rtpengine", "teardown": "rtpengine", "t_": "tm", "ws_trace": "proto_ws",
    "httpd_": "httpd", "nh_": "nathelper", "shv_": "cfgutils", "rand_": "cfgutils",
}
# 4.0 prefixes that name core subsystems, not loadable modules.
_CORE_PREFIXES_40 = {"core", "statistics", "tcp", "mem", "cache", "status_report", "evi", "blacklists"}
_PREFIX_MODULE_40 = {"ws": "proto_ws"}


def modules_from_commands(commands: frozenset[str] | tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for name in commands:
        prefix, sep, _ = name.partition(":")
        if sep:
            if prefix not in _CORE_PREFIXES_40:
                found.add(_PREFIX_MODULE_40.get(prefix, prefix))
            continue
        for start, module in _MODULE_OF_34.items():
            if name.startswith(start):
                found.add(module)
                break
    return tuple(sorted(found))


class OpenSIPSSource:
    name = "opensips"
    kind = "signalling"

    def __init__(self, config, client: MIClient | None = None, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._client = client
        self._commands: CommandMap | None = None
        self._version_result: Any = None
        self._last_uptime: int | None = None
        self._failed_calls: list[OpsError] = []  # this collection's failed cheap calls
        self._clock, self._monotonic = clock, monotonic
        self._live: LiveSync | None = None  # created by the first live collection
        self._contact_sockets: tuple[object, frozenset[str]] = ((), frozenset())  # (contacts, their sockets)
        self._last_live: SignallingState | None = None  # the last live collection, for polls during a dump
        self._sip_samples: list[SipCounters] = []  # live: the SIP counters of the last sip_window_s
        # the collection in progress, resolved with its error (None: it succeeded) when it ends: the
        # topology source asks MI after it, never beside it (mi_http answers one request at a time)
        self._collecting: asyncio.Future | None = None
        self._prefetched: tuple[str, Any] | None = None  # (method, reply) of a dump sent at start (prefetch.py)

    @property
    def target(self) -> str:
        return self.config.mi_target

    @property
    def commands(self) -> CommandMap | None:
        """The detected command map (None before the first successful collection)."""
        return self._commands

    def client(self) -> MIClient:
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    @property
    def live(self) -> LiveSync | None:
        """Live-mode state (event listener, stores); None until a live collection ran."""
        return self._live

    async def aclose(self) -> None:
        if self._live is not None:
            await self._live.aclose()  # unsubscribe (expire 0) while the MI client is still open
        if self._client is not None:
            await self._client.aclose()

    def collect_budget(self, options: CollectOptions, default: float) -> float:
        """The collector's outer deadline for one collect: room for the dumps' own deadlines."""
        if not (options.contacts or options.dialogs):
            return default
        if options.force_full_sync:
            return default + DUMP_TIMEOUT_CAP
        return default + dump_timeout(options.full_sync_max, self.config.timeout)

    async def collect(self, options: CollectOptions | None = None) -> SignallingState:
        self._collecting = done = asyncio.get_running_loop().create_future()
        try:
            state = await self._collect_once(options or CollectOptions())
        except BaseException as exc:
            done.set_result(exc)
            raise
        done.set_result(None)
        return state

    async def settled(self) -> BaseException | None:
        """Wait for the collection in progress (if any) to end: its error, or None."""
        collecting = self._collecting
        if collecting is None or collecting.done():
            return collecting.result() if collecting is not None else None
        return await asyncio.shield(collecting)

    async def _collect_once(self, options: CollectOptions) -> SignallingState:
        self.polled_relays = None  # until this poll's rtpengine_show is in
        try:
            return await self._collect(options)
        except OpsError as exc:
            self._commands = None  # re-detect: OpenSIPS may have been restarted/upgraded
            exc.target = exc.target or self.target  # parsers raise without knowing where from
            raise
        except Exception as exc:  # a bug must not escape as a traceback
            self._commands = None
            raise ProtocolError(f"OpenSIPS collection failed unexpectedly: {type(exc).__name__}: {exc}",
                                target=self.target) from exc

    async def call(self, logical: str, params: dict | list | None = None, *, timeout: float | None = None,
                   typed: Callable[[bytes], Any] | None = None) -> Any:
        """Call a command by its 3.x name, translated for the detected version (`typed`: see
        codec.decode_response)."""
        commands = self._commands or await self._detect()
        # Keywords only when set: clients/fakes without them keep working.
        options = {key: value for key, value in (("timeout", timeout), ("typed", typed)) if value is not None}
        return await self.client().call(commands.name(logical), params, **options)

    async def command_map(self) -> CommandMap:
        """The detected command map, detecting it first when needed (the topology source asks)."""
        return self._commands or await self._detect()

    async def _detect(self) -> CommandMap:
        commands, self._version_result = await detect_commands(self.client().call, self.config.opensips_version or "")
        self._commands = commands
        return commands

    async def _collect(self, options: CollectOptions) -> SignallingState:
        if not options.live:
            await self._read_prefetch(options)
        commands = self._commands or await self._detect()
        errors: list[str] = []
        self._failed_calls: list[OpsError] = []
        live = self._live_sync() if options.live else None
        if live is not None and live.dump_running and self._last_live is not None and self._commands is not None:
            return await self._while_dumping(live, self._last_live, options)
        fetch_conns = live is None or live.connections_due()
        replies = await asyncio.gather(
            self._optional(commands, "uptime", None, errors),
            self._optional(commands, "get_statistics", {"statistics": STAT_GROUPS}, errors),
            self._optional(commands, "rtpengine_show", None, errors),
            self._optional(commands, "list_tcp_conns", None, errors) if fetch_conns else _nothing(),
            return_exceptions=True,  # let every call finish before raising the first failure
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        uptime, stats, relays, conns = replies
        stats_at = self._clock()
        self._require_liveness(uptime, stats)
        overview = self._overview(uptime, stats, errors, stats_at)
        self._note_restart(overview.uptime_s)
        events_status = ""
        as_of = None
        if live is not None:
            await live.ensure_listener()
            contacts, note, mode = await live.contacts(overview.registered_contacts, options, errors)
            as_of = live.contacts_as_of if mode in ("full", "events", "events-partial") else None
            dialogs = await live.dialogs(lambda: self._dialogs(commands, overview, errors), options)
            events_status = live.events_status()
        else:
            contacts, note = await self._contacts(commands, overview, options, errors)
            mode = "full" if contacts is not None else "none"
            dialogs = await self._dialogs(commands, overview, errors) if options.dialogs else None
        relay_nodes = self._parse_optional(parse_relays, relays, "rtpengine_show", errors, None)
        # This poll's sets, for the topology source of the same node (one rtpengine_show a poll, parsed once).
        self.polled_relays, self.polled_relays_at = relay_nodes, time.monotonic()
        relay_nodes = relay_nodes or ()
        if fetch_conns:
            connections = self._parse_optional(parse_connections, conns, "list_tcp_conns", errors, None)
            if live is not None:
                live.remember_connections(connections)
        else:
            connections = live.connections
        if live is not None:
            sip_earlier = self._sip_window_start(overview.sip)
        else:
            sip_earlier, later = overview.sip, await self._sip_sample(commands, overview.sip)
            overview = replace(overview, sip=later)
        state = SignallingState(
            backend="opensips",
            target=self.target,
            overview=overview,
            contacts=contacts,
            contacts_note=note,
            dialogs=dialogs,
            relays=relay_nodes,
            connections=connections,
            commands=tuple(sorted(commands.commands)),
            modules=modules_from_commands(commands.commands),
            listeners=self._listeners(contacts, dialogs, connections),
            statistics=self._statistics(stats),
            errors=tuple(errors),
            contacts_mode=mode,
            events_status=events_status,
            contacts_as_of=as_of,
            dialogs_as_of=live.dialogs_as_of if live is not None and dialogs is not None else None,
            sip_earlier=sip_earlier,
        )
        if live is not None:
            self._last_live = state
        return state

    async def _sip_sample(self, commands: CommandMap, first: SipCounters | None) -> SipCounters | None:
        """One-shot: the SIP counters again, at least `sip_sample_s` after the first sample (the rest of
        the collection usually covers most of it), so a failure share has a window.  None on failure."""
        if first is None:
            return None
        wait = first.at + self.config.thresholds.sip_sample_s - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            raw = await self.client().call(commands.name("get_statistics"), {"statistics": SIP_GROUPS})
            return parse_sip_counters(parse_statistics(raw), self._clock())
        except (RemoteError, ProtocolError):
            return None

    def _sip_window_start(self, current: SipCounters | None) -> SipCounters | None:
        """Live: the sample about `sip_window_s` before this one (the oldest kept while the console
        is younger than that); a restart (counters went backwards) starts the window again."""
        if current is None:
            return None
        samples = self._sip_samples
        if samples and any((current.finals(c) or 0) < (samples[-1].finals(c) or 0) for c in ("2xx", "4xx", "5xx")):
            samples.clear()
        samples.append(current)
        window = self.config.thresholds.sip_window_s
        old_enough = [i for i, sample in enumerate(samples) if current.at - sample.at >= window]
        if old_enough:
            del samples[:old_enough[-1]]
        return samples[0] if len(samples) > 1 else None

    async def _while_dumping(self, live: LiveSync, last: SignallingState, options: CollectOptions) -> SignallingState:
        """Our own dump holds mi_http, which answers one request at a time: ask it nothing else
        (every call would only wait and time out).  The lists stay live from events; the
        counters are those of the last poll before the dump, and say so."""
        errors = [f"counters as of the last poll: {live.dump_note()}"]
        count = last.overview.registered_contacts
        contacts, note, mode = await live.contacts(count, options, errors)
        dialogs = await live.dialogs(lambda: self._dialogs(self._commands, last.overview, errors), options)
        return replace(last, contacts=contacts, contacts_note=note, contacts_mode=mode, dialogs=dialogs,
                       dialogs_as_of=live.dialogs_as_of if dialogs is not None else None,
                       contacts_as_of=live.contacts_as_of if mode in ("full", "events", "events-partial") else None,
                       listeners=self._listeners(contacts, dialogs, last.connections), errors=tuple(errors),
                       events_status=live.events_status())

    def _listeners(self, contacts, dialogs, connections) -> tuple[str, ...]:
        """Sockets OpenSIPS listens on, as far as the data shows: contact sockets, dialog bind
        addresses, and the local side of WS connections (OpenSIPS never dials out over WS)."""
        seen, sockets = self._contact_sockets
        if contacts is not seen:  # live: the same tuple while no contact changed (10k every poll otherwise)
            sockets = frozenset(map(_SOCKET, contacts or ())) - {""}
            self._contact_sockets = (contacts, sockets)
        found = set(sockets)
        found.update(leg.bind_addr for dialog in dialogs or () for leg in (dialog.caller, *dialog.callees))
        found.discard("")
        found.update(f"{conn.type}:{conn.local}" for conn in connections or ()
                     if conn.type in ("ws", "wss") and conn.local)
        return tuple(sorted(found))

    def _live_sync(self) -> LiveSync:
        if self._live is None:
            self._live = LiveSync(self.call, self.config, target=self.config.name or self.target,
                                  clock=self._clock, monotonic=self._monotonic)
        return self._live

    def _note_restart(self, uptime: int | None) -> None:
        """Uptime went backwards: OpenSIPS restarted (maybe upgraded); detect the version again next time."""
        if uptime is not None and self._last_uptime is not None and uptime < self._last_uptime:
            self._commands = None
            if self._live is not None:
                self._live.opensips_restarted()
        self._last_uptime = uptime

    def _require_liveness(self, uptime: Any, stats: Any) -> None:
        """Neither uptime nor statistics usable (HTTP 500 or garbage to everything): the MI is
        down, not degraded, and the source must say so instead of showing an empty OK."""
        if isinstance(uptime, dict) or isinstance(stats, dict):
            return
        if self._failed_calls:
            raise self._failed_calls[0]
        if uptime is not None and stats is not None:
            raise ProtocolError(f"OpenSIPS MI answered 'uptime' and 'get_statistics' with a "
                                f"{type(uptime).__name__} and a {type(stats).__name__} instead of objects",
                                target=self.target, hint="is this URL an OpenSIPS mi_http root?")

    async def _optional(self, commands: CommandMap, logical: str, params, errors: list[str]) -> Any:
        """A command whose failure is reported, not fatal.  Transport failures still raise."""
        wire = commands.name(logical)
        if not commands.has(logical):
            errors.append(f"{wire}: not offered by this OpenSIPS (module not loaded?)")
            return None
        try:
            return await self.client().call(wire, params)
        except (RemoteError, ProtocolError) as exc:
            errors.append(f"{wire}: {exc}")
            self._failed_calls.append(exc)
            return None

    @staticmethod
    def _parse_optional(parser, raw, label: str, errors: list[str], default):
        if raw is None:
            return default
        try:
            return parser(raw)
        except ProtocolError as exc:
            errors.append(f"{label}: {exc}")
            return default

    def _overview(self, uptime, stats, errors: list[str], at: float | None = None) -> SignallingOverview:
        try:
            return parse_overview(self._version_result, uptime, stats, at)
        except ProtocolError as exc:
            errors.append(f"overview: {exc}")
            try:
                return parse_overview(self._version_result)
            except ProtocolError:
                return SignallingOverview()

    @staticmethod
    def _statistics(stats) -> dict[str, Any]:
        try:
            return parse_statistics(stats) if stats is not None else {}
        except ProtocolError:
            return {}

    async def _contacts(self, commands: CommandMap, overview: SignallingOverview, options: CollectOptions,
                        errors: list[str]) -> tuple[tuple[Contact, ...] | None, str]:
        if not options.contacts:
            return None, "contact list not requested"
        count = overview.registered_contacts
        if not options.force_full_sync:
            if count is None:
                return None, "contact count unknown (usrloc statistics unavailable); full ul_dump skipped"
            if count > options.full_sync_max:
                seconds = estimate_dump_seconds(count)
                return None, (f"{count} registered (statistics); full ul_dump skipped above {options.full_sync_max} "
                              f"— it would hold OpenSIPS MI for ~{seconds:.0f} s")
        wire = commands.name("ul_dump")
        prefetched, self._prefetched = self._prefetched, None
        try:
            if prefetched is not None and prefetched[0] == wire:  # the same request, sent at start
                raw = self.client().adopt(wire, prefetched[1], typed=decode_dump)
            else:
                raw = await self.client().call(wire, typed=decode_dump)
            return parse_contacts(raw, self.config.name or self.target), ""
        except (RemoteError, ProtocolError) as exc:
            errors.append(f"{wire}: {exc}")
            return None, f"{wire} failed: {exc}"

    async def _read_prefetch(self, options: CollectOptions) -> None:
        """A one-shot command may have sent its ul_dump before loading (prefetch.py): read that reply
        first, so no other request of ours waits behind it in mi_http.  Any failure: ask as usual."""
        from .prefetch import take

        pending = take(self.config.mi_url)
        if pending is None:
            return
        try:
            if options.contacts:
                reply = pending.reply(limit=self.client().max_bytes, target=self.target)
                self._prefetched = (pending.method, await asyncio.wait_for(reply, self.client().heavy_timeout))
        except (OpsError, OSError, asyncio.TimeoutError, ConnectionDropped):
            self._prefetched = None
        finally:
            pending.close()

    async def _dialogs(self, commands: CommandMap, overview: SignallingOverview,
                       errors: list[str]) -> tuple[Dialog, ...] | None:
        logical = "dlg_list_ctx" if commands.has("dlg_list_ctx") else "dlg_list"
        try:
            return await self._dialog_pages(commands.name(logical), overview.active_dialogs)
        except MIError as exc:
            if exc.code == METHOD_NOT_FOUND and logical == "dlg_list_ctx":
                try:
                    return await self._dialog_pages(commands.name("dlg_list"), overview.active_dialogs)
                except (RemoteError, ProtocolError) as exc2:
                    exc = exc2
            errors.append(f"{commands.name(logical)}: {exc}")
        except (RemoteError, ProtocolError) as exc:
            errors.append(f"{commands.name(logical)}: {exc}")
        return None

    async def _dialog_pages(self, wire: str, active: int | None) -> tuple[Dialog, ...]:
        target = self.config.name or self.target
        if active is None or active <= DIALOG_PAGE:
            return parse_dialogs(await self.client().call(wire), target)
        dialogs: list[Dialog] = []
        index = 0
        while True:
            raw = await self.client().call(wire, {"index": index, "counter": DIALOG_PAGE})
            page = parse_dialogs(raw, target)
            dialogs.extend(page)
            total = parse_dialog_count(raw)
            index += DIALOG_PAGE
            if not page or total is None or index >= total:
                return tuple(dialogs)


async def _nothing() -> None:
    return None


_SOCKET = operator.attrgetter("socket")


