"""Plugin API and entry-point discovery.

A plugin is an object exposed through the `opsconsole.plugins` entry-point
group.  It contributes *sources* (collectors producing typed state) and
*checks* (diagnose checks).  The first-party OpenSIPS, RTPengine and host
plugins are loaded through exactly this path, like a third-party one.

A plugin that fails to import is reported (`LoadedPlugins.failures`) and the
rest keep working.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Protocol, Union

from .model import CheckResult, HostState, MediaState, SignallingState, Snapshot

if TYPE_CHECKING:
    from .config import Config

ENTRY_POINT_GROUP = "opsconsole.plugins"

SourceKind = Literal["signalling", "media", "host"]
SourceState = Union[SignallingState, MediaState, HostState]


@dataclass(frozen=True)
class CollectOptions:
    """What a collection should fetch.  Heavy lists are optional on purpose:
    a full ul_dump at 100k contacts holds OpenSIPS MI for minutes."""

    contacts: bool = True  # fetch the contact list (subject to full_sync_max)
    dialogs: bool = True  # fetch the dialog list (with SDPs)
    media_details: bool = True  # query every media session (legs, codecs, stats)
    # with media_details: query only these Call-IDs (e.g. the rows on screen); None: every session
    media_detail_callids: frozenset[str] | None = None
    # live: calls that started since the last dialog list are asked for their parties one
    # `dlg_list callid` each; only these Call-IDs (the rows on screen); None: any, a few per poll
    dialog_detail_callids: frozenset[str] | None = None
    # re-read the slow host facts (daemons, kernel modules, kernel log); False: a source may return
    # its last reading (a long-running console reads them on its checks cadence)
    host_facts: bool = True
    full_sync_max: int = 10_000  # full ul_dump only while the contact count is below this
    force_full_sync: bool = False  # operator asked for it explicitly
    live: bool = False  # a long-running console: keep lists current from events between polls


class Source(Protocol):
    """A data source.  `collect` may raise an OpsError; the snapshot layer
    turns it into `SourceStatus(ok=False, error=...)`."""

    name: str  # "opensips", "rtpengine", "host"
    kind: SourceKind

    async def collect(self, options: CollectOptions) -> SourceState: ...

    async def aclose(self) -> None: ...


@dataclass
class CheckContext:
    snapshot: Snapshot
    config: "Config"
    now: float


CheckFunc = Callable[[CheckContext], Union[CheckResult, Awaitable[CheckResult]]]


@dataclass(frozen=True)
class CheckSpec:
    id: str  # stable id, e.g. "rtpengine.ng"
    run: CheckFunc
    title: str = ""
    timeout: float | None = None  # None: the run's --timeout

    async def __call__(self, ctx: CheckContext) -> CheckResult:
        result = self.run(ctx)
        if inspect.isawaitable(result):
            result = await result
        return result


@dataclass(frozen=True)
class Plugin:
    name: str
    make_sources: Callable[["Config"], list[Source]] = lambda config: []
    checks: tuple[CheckSpec, ...] = ()
    # Read-only MI methods etc. can be extended by plugins later; keep a bag.
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginFailure:
    name: str
    error: str


@dataclass(frozen=True)
class LoadedPlugins:
    plugins: tuple[Plugin, ...]
    failures: tuple[PluginFailure, ...] = ()

    def sources(self, config: "Config") -> list[Source]:
        found: list[Source] = []
        for plugin in self.plugins:
            found.extend(plugin.make_sources(config))
        return found

    def checks(self) -> list[CheckSpec]:
        return [check for plugin in self.plugins for check in plugin.checks]


def load_plugins(group: str = ENTRY_POINT_GROUP, *, only: set[str] | None = None) -> LoadedPlugins:
    plugins: list[Plugin] = []
    failures: list[PluginFailure] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        if ep.name in seen or (only is not None and ep.name not in only):
            continue
        seen.add(ep.name)
        try:
            obj = ep.load()
            plugin = obj() if callable(obj) and not isinstance(obj, Plugin) else obj
            if not isinstance(plugin, Plugin):
                raise TypeError(f"entry point {ep.value} is not an opsconsole Plugin")
        except Exception as exc:  # a broken plugin must not take the console down
            failures.append(PluginFailure(ep.name, f"plugin failed to load: {type(exc).__name__}: {exc}"))
            continue
        plugins.append(plugin)
    return LoadedPlugins(tuple(plugins), tuple(failures))
