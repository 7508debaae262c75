"""The fleet, headless: one live session per node, polled with a bounded cost.

`FleetSession` runs the normal `console.live.LiveSession` of every target (each over its own
`ConsoleService`: collectors, checks, MI, events where available).  The node on screen (`focus`)
polls as the single-node console does; every other node only polls the cheap counters (MI uptime +
statistics + rtpengine_show, ng ping + statistics, CLI interfaces + session list) on the slower
`background_interval`, and its heavy lists and checks on the live session's `heavy_interval`.
`rows()` is one `FleetRow` per node for the Fleet screen and the exporter.  No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .config import Config
from .errors import ConfigError
from .fleet_targets import TargetNotChosen, config_for, pick_target, target_config, targets_from  # noqa: F401
from .live import Interest, LiveSession
from .live_state import LiveView
from .model import Status, overall_status
from .targets import TargetSpec, target_names

__all__ = ["FleetRow", "FleetSession", "TargetSpec", "TargetNotChosen", "config_for", "pick_target", "target_config",
           "targets_from"]

# Nodes not on screen: the cheap poll at most this often (s); cost measured in README "Several nodes".
BACKGROUND_INTERVAL = 5.0
FLEET_INTEREST = Interest(screen="fleet")  # wants no heavy list: those come on the heavy cadence only
STATUS_WORDS = {Status.OK: "OK", Status.SKIP: "OK", Status.WARN: "WARN", Status.FAIL: "FAIL",
                Status.UNKNOWN: "UNKNOWN"}

FleetCallback = Callable[[str, LiveView], None]


@dataclass(frozen=True)
class FleetRow:
    """One node as the Fleet screen and the exporter show it; None = unknown."""

    name: str
    labels: Mapping[str, str]
    version: str | None
    uptime_s: float | None
    load_pct: float | None
    shm_pct: float | None
    contacts: int | None
    dialogs: int | None
    media_sessions: int | None
    ports_used: int | None
    ports_total: int | None
    worst_status: str  # "OK" / "WARN" / "FAIL" / "UNKNOWN"
    worst_check: str | None
    last_error: str | None
    age_s: float | None


# --------------------------------------------------------------------------- the session


class FleetSession:
    """Every target's live session.  `session(name)` is the node's ordinary headless LiveSession (the
    usual screens of a node read it); `focus(name)` names the node on screen."""

    def __init__(self, targets: Sequence[TargetSpec], config: Config, *, interval: float = 2.0,
                 focus: str | None = None, background_interval: float | None = None, plugins: Any = None,
                 services: Mapping[str, Any] | None = None, clock: Callable[[], float] = time.time,
                 manage_heap: bool = False) -> None:
        """`services`: name -> a ready service (tests, the demo); otherwise one ConsoleService per target
        over `plugins` (None: the installed ones, loaded once for every node)."""
        self.targets: tuple[TargetSpec, ...] = tuple(targets)
        if not self.targets:
            raise ConfigError("the fleet needs at least one target")
        names = [spec.name for spec in self.targets]
        if len(set(names)) != len(names):
            raise ConfigError(f"target names must differ: {', '.join(names)}")
        self.config = config
        self.interval = max(0.1, float(interval))
        self.background_interval = max(self.interval, float(background_interval or BACKGROUND_INTERVAL))
        self.clock = clock
        self._specs = dict(zip(names, self.targets))
        self._services = dict(services) if services is not None else self._make_services(plugins)
        self._sessions = {name: LiveSession(self._services[name], interval=self.interval, clock=clock,
                                            manage_heap=manage_heap and n == 0)
                          for n, name in enumerate(names)}
        self._subscribers: list[FleetCallback] = []
        self.callback_error = ""  # the last subscriber failure ("" none), for the faces to show
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        for name, session in self._sessions.items():
            session.subscribe(lambda view, name=name: self._polled(name, view))
        self._focus: str | None = None
        self.focus(focus)

    def _make_services(self, plugins: Any) -> dict[str, Any]:
        from .plugins import load_plugins
        from .service import ConsoleService

        plugins = plugins if plugins is not None else load_plugins()
        return {spec.name: ConsoleService(config_for(self.config, spec), plugins=plugins) for spec in self.targets}

    # ------------------------------------------------------------------ the nodes

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def session(self, name: str) -> LiveSession:
        try:
            return self._sessions[name]
        except KeyError:
            raise KeyError(f"no target {name!r}; targets: {target_names(self.targets)}") from None

    def service(self, name: str) -> Any:
        self.session(name)  # the same message for an unknown name
        return self._services[name]

    def spec(self, name: str) -> TargetSpec:
        self.session(name)
        return self._specs[name]

    @property
    def focused(self) -> str | None:
        return self._focus

    def focus(self, name: str | None) -> None:
        """The node on screen polls on `interval` with the interest its screens set; the others only
        the cheap calls on `background_interval` (their heavy lists and checks on the heavy cadence)."""
        if name is not None:
            self.session(name)
        self._focus = name
        for node, session in self._sessions.items():
            on_screen = node == name
            session.interval = self.interval if on_screen else self.background_interval
            if not on_screen:
                session.set_interest(FLEET_INTEREST)
            elif session.interest == FLEET_INTEREST:
                session.set_interest(Interest())  # its screens say more as soon as they show
        if name is not None and not self._sessions[name].paused:
            self._sessions[name].resume()  # the new cadence now, not after the old wait

    def subscribe(self, callback: FleetCallback) -> Callable[[], None]:
        """`callback(name, view)` after any node's poll (the node's name and its new LiveView);
        returns the unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _polled(self, name: str, view: LiveView) -> None:
        for callback in list(self._subscribers):
            try:
                callback(name, view)
            except Exception as exc:  # one face's bug must not stop the node's polls (nor the other faces)
                self.callback_error = f"{name}: {type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ rows

    def rows(self) -> list[FleetRow]:
        now = self.clock()
        return [fleet_row(spec, self._sessions[spec.name].view, now) for spec in self.targets]

    def row(self, name: str) -> FleetRow:
        return fleet_row(self.spec(name), self.session(name).view, self.clock())

    # ------------------------------------------------------------------ polling

    async def poll_once(self) -> list[FleetRow]:
        """One poll of every node, concurrently (each node's own never-overlap rule holds)."""
        await asyncio.gather(*(session.poll_once() for session in self._sessions.values()))
        return self.rows()

    async def run(self, until: Callable[[], bool] | None = None) -> None:
        """Every node's runner until closed or `until()`; the starts are spread over one interval, so
        twenty nodes do not all ask at the same instant."""
        sessions = list(self._sessions.values())
        step = self.interval / max(1, len(sessions))

        async def run_one(n: int, session: LiveSession) -> None:
            if n:
                await asyncio.sleep(n * step)
            try:
                await session.run(until=lambda: self._closed or (until is not None and until()))
            except asyncio.CancelledError:
                # close() cancels the poll a runner waits for: that ends the runner, not the fleet's run()
                if not self._closed or asyncio.current_task().cancelling():
                    raise

        self._tasks = [asyncio.ensure_future(run_one(n, s)) for n, s in enumerate(sessions)]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []

    def close(self) -> None:
        """No more polls on any node (the runners stop, running polls are cancelled)."""
        self._closed = True
        for session in self._sessions.values():
            session.close()  # its runner returns (run() then returns too)

    async def aclose(self) -> None:
        """close(), then every node's service (connections, event subscriptions)."""
        self.close()
        await asyncio.gather(*(service.aclose() for service in self._services.values()
                               if hasattr(service, "aclose")), return_exceptions=True)


# --------------------------------------------------------------------------- one row


def fleet_row(spec: TargetSpec, view: LiveView, now: float) -> FleetRow:
    overview = view.signalling.overview if view.signalling is not None else None
    media = view.media
    status, check = worst_check(view)
    return FleetRow(
        name=spec.name, labels=dict(spec.labels),
        version=(overview.version or None) if overview is not None else None,
        uptime_s=_number(overview.uptime_s) if overview is not None else None,
        load_pct=_number(overview.load) if overview is not None else None,
        shm_pct=_share(overview.shm_used, overview.shm_total) if overview is not None else None,
        contacts=overview.registered_contacts if overview is not None else None,
        dialogs=overview.active_dialogs if overview is not None else None,
        media_sessions=media_sessions(view),
        ports_used=media.ports.used if media is not None and media.ports.interfaces else None,
        ports_total=media.ports.total if media is not None and media.ports.interfaces else None,
        worst_status=status, worst_check=check, last_error=last_error(view), age_s=data_age(view, now))


def media_sessions(view: LiveView) -> int | None:
    media = view.media
    if media is None:
        return None
    total = media.totals.total_sessions
    return total if total is not None else len(media.sessions)


def worst_check(view: LiveView) -> tuple[str, str | None]:
    """The worst check status ("UNKNOWN" before any check ran, or when the checks failed) and the
    first check with it (None when all are OK)."""
    if not view.checks:
        return "UNKNOWN", None
    worst = overall_status([result.status for result in view.checks])
    word = STATUS_WORDS[worst]
    if word == "OK":
        return word, None
    return word, next(r.id for r in view.checks if STATUS_WORDS[r.status] == word)


def last_error(view: LiveView) -> str | None:
    """What failed in the latest poll ("source: error"), None when every source answered."""
    latest = view.latest
    if latest is None:
        return None
    failed = [f"{name}: {status.error}" for name, status in latest.sources.items() if not status.ok]
    return "; ".join(failed) if failed else None


def data_age(view: LiveView, now: float) -> float | None:
    """How old the oldest figure shown is: since the latest poll when every source answered it, else
    since the last good answer of the source that failed longest ago (None: it never answered)."""
    latest = view.latest
    if latest is None:
        return None
    failed = [name for name, status in latest.sources.items() if not status.ok]
    if not failed:
        return max(0.0, now - latest.collected_at)
    # a source that never answered shows nothing (unknown), so it makes nothing old
    last_good = [at for name in failed if (at := view.last_ok.get(name)) is not None]
    return max(0.0, now - min(last_good, default=latest.collected_at))


def _number(value) -> float | None:
    return float(value) if value is not None else None


def _share(used, total) -> float | None:
    return 100.0 * used / total if used is not None and total else None
