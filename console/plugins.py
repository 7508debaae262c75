"""Plugin API and entry-point discovery.

A plugin is an object exposed through the `opsconsole.plugins` entry-point
group.  It plugs in through typed hooks (all optional):

- `make_sources(config)`   collectors producing typed state (signalling, media, host, or a
                           part of its own: `Snapshot.parts[source.name]`)
- `checks`                 diagnose checks (pure functions of a snapshot)
- `command_session(config, source=…)`  an MI-like command session (`opsconsole mi`, the MI screen)
- `discover(given=…, …)`   what it finds on this host (addresses, with notes on where)
- `config_sections`        the TOML sections it owns (validated by the core like its own)
- `json_part(snapshot)`    its part of `snapshot --json` (under "plugins": {name: part})
- `overview(snapshot)`     its section of the Overview (TUI and `snapshot` text)
- `platforms`              embedded platforms by name (`--demo`)

The first-party OpenSIPS, RTPengine, host and demo plugins are loaded through exactly this
path, like a third-party one; the core imports none of them.

A plugin that fails to import is reported (`LoadedPlugins.failures`) and the
rest keep working.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, Mapping, Protocol, Union

from .entrypoints import entry_points  # the group's entry points without importing importlib.metadata (#18)
from .model import CheckResult, HostState, MediaState, SignallingState, Snapshot, Status

# console.config.Config, not imported: the config module asks this one for the plugins' discoverers.
Config = Any
ENTRY_POINT_GROUP = "opsconsole.plugins"

SourceKind = Literal["signalling", "media", "host", "part"]
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
    turns it into `SourceStatus(ok=False, error=...)`.

    Optional: `collect_budget(options, timeout) -> float`, the time the collector allows one
    collection (a source that runs long table dumps, each with its own deadline, widens it)."""

    name: str  # "opensips", "rtpengine", "host", or a plugin's own
    kind: SourceKind

    async def collect(self, options: CollectOptions) -> SourceState | Any: ...

    async def aclose(self) -> None: ...


def collect_budget(source: Source, options: CollectOptions, timeout: float) -> float:
    widen = getattr(source, "collect_budget", None)
    return widen(options, timeout) if widen is not None else timeout


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
class ConfigSection:
    """A TOML section a plugin owns: its keys (key -> what it takes, for messages) and an optional
    validator of the values (raises ConfigError).  The values reach the plugin as
    `config.section(name)`."""

    name: str
    keys: Mapping[str, str] = field(default_factory=dict)
    validate: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(frozen=True)
class OverviewSection:
    """A plugin's block on the Overview: a title, (label, value) lines of plain text (rendered
    as text, never as markup) and an optional status word."""

    title: str
    lines: tuple[tuple[str, str], ...] = ()
    status: Status | None = None


@dataclass(frozen=True)
class Discovered:
    """What a plugin's `discover` hook found on this host.  The hook is called as
    `discover(given=..., home=..., etc_paths=..., proc_root=..., processes=...)` (roots that tests
    replace; `given`: what the operator set explicitly, {key: (value, where)}) and never raises."""

    mi_url: str | None = None
    mi_fifo: str | None = None
    ng: tuple[str, int] | None = None
    cli: tuple[str, int] | None = None
    port_range: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()  # "ng 127.0.0.1:60000 (rtpengine pid 123 --listen-ng)"


class CommandSession(Protocol):
    """An MI-like command session (`opsconsole mi`, the MI screen)."""

    def is_write_method(self, name: str) -> bool: ...

    def commands(self) -> list[str]: ...

    async def call(self, method: str, params: Any = None) -> Any: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Plugin:
    name: str
    make_sources: Callable[["Config"], list[Source]] = lambda config: []
    checks: tuple[CheckSpec, ...] = ()
    command_session: Callable[..., CommandSession] | None = None
    discover: Callable[..., Discovered] | None = None
    config_sections: tuple[ConfigSection, ...] = ()
    json_part: Callable[[Snapshot], Mapping[str, Any] | None] | None = None
    overview: Callable[[Snapshot], OverviewSection | None] | None = None
    platforms: Mapping[str, Callable[..., Any]] = field(default_factory=dict)


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

    def config_sections(self) -> dict[str, ConfigSection]:
        return {section.name: section for plugin in self.plugins for section in plugin.config_sections}

    def command_session(self) -> tuple[Plugin, Callable[..., CommandSession]] | None:
        """The first plugin offering a command session (OpenSIPS's MI today)."""
        return next(((p, p.command_session) for p in self.plugins if p.command_session is not None), None)

    def discoverers(self) -> list[Callable[..., Discovered]]:
        return [p.discover for p in self.plugins if p.discover is not None]

    def platform(self, name: str) -> Callable[..., Any] | None:
        return next((p.platforms[name] for p in self.plugins if name in p.platforms), None)

    def json_parts(self, snapshot: Snapshot) -> dict[str, Any]:
        return {p.name: part for p in self.plugins if p.json_part is not None
                and (part := _guarded(p, "json_part", p.json_part, snapshot)) is not None}

    def overview_sections(self, snapshot: Snapshot) -> list[OverviewSection]:
        return [section for p in self.plugins if p.overview is not None
                and (section := _guarded(p, "overview", p.overview, snapshot)) is not None]


def _guarded(plugin: Plugin, hook: str, func: Callable[[Snapshot], Any], snapshot: Snapshot) -> Any:
    """A renderer hook that raises is shown as such, never crashes the face that asked."""
    try:
        return func(snapshot)
    except Exception as exc:
        if hook == "overview":
            return OverviewSection(f"{plugin.name} (overview failed)", (("error", f"{type(exc).__name__}: {exc}"),),
                                   Status.UNKNOWN)
        return {"error": f"{hook} failed: {type(exc).__name__}: {exc}"}


def load_plugins(group: str = ENTRY_POINT_GROUP, *, only: set[str] | None = None) -> LoadedPlugins:
    plugins: list[Plugin] = []
    failures: list[PluginFailure] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group), key=lambda e: e.name):
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
