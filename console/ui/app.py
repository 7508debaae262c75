"""The Textual application: one factory, `create_app`, for the CLI and the tests.

The app renders and forwards: the live session (console/live.py, headless) decides what each
poll fetches, never overlaps two polls, merges, joins, runs the checks and prepares the contact
index; the app tells it what is on screen (`Interest`), starts a poll in a worker when the
session's interval is up (or a key asks for one), and renders each published `LiveView`.  The
screens post messages up (console/ui/messages.py); the app sets attributes and calls methods down.

Rendering rate: Textual repaints at most `TEXTUAL_FPS` frames per second
(default 60).  Over a slow SSH link at 3 a.m. set e.g. `TEXTUAL_FPS=10` in
the environment to cut bandwidth and CPU; data freshness is governed by the
poll interval, not by the frame rate.  `NO_COLOR=1` is honoured: every
state is also spelled out (OK / WARN / FAIL / STALE).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from console.errors import OpsError
from console.live import DEFAULT_SELECTION, Interest, LiveSession, describe
from console.live_state import LiveView
from console.plugins import CollectOptions
from console.views import parse_mi_command

from . import messages
from .fleet import FleetPane, FocusNode, single_fleet
from .finder import FindProvider
from .header import HeaderFacts, StatusHeader
from .keybar import KeyBar
from .mi_screen import MiPane
from .panes import PANE_TITLES, PANES
from .registrations import aor_sections
from .rows import Pane
from .safe import safe_text
from .screens import ConfirmScreen, DetailScreen, HelpScreen
from .trace_screen import TraceRequested, TraceScreen, refresh_headers, start_trace

TICK_CHECK = 0.5  # s between "is a poll late?" checks (cheap when it is not)
TICK_STEADY, TICK_LATE = 2.0, 0.5  # ages repaint when nothing did for min(interval, 2 s) + 0.5 s
WATCHDOG_INTERVAL = 2.0  # seconds between "is our terminal still there?" checks
HARD_EXIT_AFTER = 5.0  # seconds a terminal-loss exit may take before the process is ended outright
FLEET_RENDER_EVERY = 1.0  # s between two renders of the Fleet screen for the other nodes' polls


class OpsConsoleApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "opsconsole"
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "colon"
    COMMANDS = App.COMMANDS | {FindProvider}  # `:` jumps to a user, an AoR or a Call-ID (#14)

    BINDINGS = [
        *(Binding(key, f"show('{name}')", PANE_TITLES[name]) for key, name, _ in PANES),
        Binding("p", "toggle_pause", "Pause"),
        Binding("S", "full_sync", "Full sync", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, service: Any, *, interval: float = 2.0, clock: Callable[[], float] = time.time,
                 allow_write: bool = False, fleet: Any = None) -> None:
        super().__init__()
        # Every node's live session (console.fleet.FleetSession; one node: a fleet of one).  The
        # focused node's session and service are the ones every screen but the Fleet's reads.
        self.fleet = fleet if fleet is not None else single_fleet(service, interval=interval, clock=clock)
        self.node = self.fleet.focused if self.fleet.focused is not None else self.fleet.names[0]
        self.fleet.focus(self.node)
        self.service = self.fleet.service(self.node)  # for MI commands and one AoR's contacts
        self.session: LiveSession = self.fleet.session(self.node)
        self._background_due: dict[str, float] = {}  # node -> when its next cheap poll is due (monotonic)
        self._fleet_changed = False  # a node not on screen polled: the Fleet screen renders at the next tick
        self._fleet_rendered_at = float("-inf")  # monotonic
        self.clock = clock
        self.allow_write = allow_write
        self.trace_live: Any = None  # the Trace screen's console.trace_live.TraceLive (one at a time)
        self.current = "overview"
        self.mi_commands: list[str] = []
        self._selection = DEFAULT_SELECTION  # the contact list's (filter, transport, sort, reverse)
        self._checks_error = ""  # the last checks failure notified
        self._rendered_at = float("-inf")  # last repaint of the header and the visible pane
        self._poll_timer = None
        self._parent_pid = os.getppid()
        self._hard_exit: threading.Timer | None = None
        self.target = self._describe_target(getattr(self.service, "config", None))

    @staticmethod
    def _describe_target(config: Any) -> str:
        if config is None:
            return "?"
        parts = []
        name = getattr(config, "name", "")
        if name:
            parts.append(name)
        mi = getattr(config, "mi_target", "")
        if mi:
            parts.append(f"MI {mi}")
        ng = getattr(config, "ng", None)
        if ng:
            parts.append(f"ng {ng[0]}:{ng[1]}")
        return "  ".join(parts) or "?"

    def now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------------ the session, as seen from here

    @property
    def state(self) -> LiveView:
        """What the screens show: the session's last published view (its flags as of now)."""
        return self.session.current_view()

    @property
    def interval(self) -> float:
        return self.session.interval

    @property
    def heavy_interval(self) -> float:
        return self.session.heavy_interval

    @property
    def poll_count(self) -> int:
        return self.session.polls

    @property
    def polling(self) -> bool:
        return self.session.polling

    @property
    def paused(self) -> bool:
        return self.session.paused

    @paused.setter
    def paused(self, paused: bool) -> None:
        self.session.pause() if paused else self.session.resume()

    def interest(self) -> Interest:
        """What is on screen now, for the session: the screen, its rows' Call-IDs, the list's selection."""
        return Interest(screen=self.current, detail_callids=self._detail_keys(), selection=self._selection)

    def collect_options(self) -> CollectOptions:
        """What a poll started now would ask the sources for."""
        self.session.set_interest(self.interest())
        return self.session.collect_options()

    def _detail_keys(self) -> frozenset[str] | None:
        """The Call-IDs the visible pane shows in detail (rows scrolled into view get theirs
        at the next poll; until then they keep their last details)."""
        try:
            keys = self.pane().detail_keys()
        except NoMatches:
            return None  # the pane is still being composed
        if self.trace_live is not None and self.trace_live.active:  # the traced calls' media, for the join
            keys = (keys or frozenset()) | self.trace_live.callids()
        return keys

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status-header")
        with ContentSwitcher(initial="overview", id="panes"):
            for _key, name, pane_class in PANES:
                yield pane_class(id=name)
        yield KeyBar()  # not Footer: it recomposes a widget per key on every focus change

    def on_mount(self) -> None:
        fleet_pane = self.main_screen.query_one(FleetPane)
        fleet_pane.rows_source, fleet_pane.focused = self.fleet.rows, self.node
        self.fleet.subscribe(self._node_polled)
        self.main_screen.query_one(StatusHeader).show(self._header_facts())
        self.set_interval(TICK_CHECK, self._tick)
        if not self.is_headless:  # tests share their process: its heap is not ours to manage
            self.session.manage_heap()
            self._install_terminal_watch()
        self.call_after_refresh(self._focus_pane)
        self.poll_now()

    def on_unmount(self) -> None:
        self.fleet.close()  # a poll still running (any node's) must not outlive the app

    @property
    def main_screen(self) -> Screen:
        """The screen holding the panes (a detail or modal screen may be on top)."""
        return self.screen_stack[0]

    def pane(self, name: str | None = None) -> Pane:
        return self.main_screen.query_one(f"#{name or self.current}", Pane)

    def _focus_pane(self) -> None:
        self.pane().focus_main()

    def _header_facts(self) -> HeaderFacts:
        trace = self.trace_live.target.label if self.trace_live is not None and self.trace_live.active else ""
        return HeaderFacts(self.session.current_view(), self.now(), self.target, trace)

    def header_facts(self) -> HeaderFacts:
        return self._header_facts()

    # ------------------------------------------------------------------ polling

    def poll_now(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._poll()

    @work(exclusive=True, group="poll")
    async def _poll(self) -> None:
        self.session.set_interest(self.interest())
        view = await self.session.poll_once()
        if self.session.checks_error and self.session.checks_error != self._checks_error:
            self.notify(self.session.checks_error, severity="error", markup=False)
        self._checks_error = self.session.checks_error
        self.render_all()
        if not self.session.paused:
            self._poll_timer = self.set_timer(view.interval, self._poll)

    def render_all(self) -> None:
        """Header always; only the visible pane (hidden ones render when shown)."""
        if self.return_code is not None:  # exit() was called (public: App.return_code)
            return  # a poll finishing while the app closes: the widgets are being removed
        facts = self._header_facts()
        with self.batch_update():
            for screen in self.screen_stack:  # the main screen's header and a detail pane's
                for header in screen.query(StatusHeader):
                    header.show(facts)
                if isinstance(screen, DetailScreen):  # a detail follows its row (or says it is gone)
                    screen.refresh_live(facts.view, facts.now)
            self.pane().refresh_view(facts.view, facts.now)
        self._rendered_at = facts.now

    def _tick(self) -> None:
        """Ages and countdowns move when a poll is late (a slow or dead source): header + what is on
        screen.  While polls come on time each one repaints; a tick between two of them would repaint
        every visible age a second time (most of the console's CPU on a 1000-call screen)."""
        if self.return_code is not None:  # exit() was called (public: App.return_code)
            return
        self._poll_background()
        self._render_fleet()
        if self.now() - self._rendered_at < min(self.interval, TICK_STEADY) + TICK_LATE:
            return
        facts = self._header_facts()
        self._rendered_at = facts.now
        with self.batch_update():
            for screen in self.screen_stack:
                for header in screen.query(StatusHeader):
                    header.show(facts)
            try:
                self.pane().tick(facts.view, facts.now)
            except NoMatches:
                pass  # the pane is still being composed (screen just switched): nothing to age yet

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A pending write confirmation must be answered first.
        if isinstance(self.screen, ConfirmScreen) and action in ("show", "toggle_pause", "help", "back"):
            return False
        return True

    def action_show(self, name: str) -> None:
        while isinstance(self.screen, (DetailScreen, HelpScreen, TraceScreen)):
            self.pop_screen()  # a screen key from a detail pane goes to that screen (leaving a trace stops it)
        if name == self.current and self.main_screen.query_one(ContentSwitcher).current == name:
            return
        previous = self.current
        self.pane(previous).forget_view()
        self.current = name
        self.main_screen.query_one(ContentSwitcher).current = name
        # The last view at once (a big contact list: its last prepared index, counting down from
        # its own moment); the poll below brings this screen's lists.
        self.pane().refresh_view(self.session.current_view(), self.now())
        self.session.set_interest(self.interest())
        self.pane().focus_main()
        if name == "mi":
            self._load_mi_commands()
        # A screen with heavy data asks for it now, not at the next tick.
        if previous != name and name in ("registrations", "calls", "media") and not self.session.paused:
            self.poll_now()

    def action_full_sync(self) -> None:
        """A full ul_dump holds OpenSIPS MI (quadratic in contacts): only when the operator asks."""
        self.session.request_full_sync()
        self.notify("full sync requested: OpenSIPS MI is busy while the contact list is dumped", markup=False)
        if not self.session.polling:
            self.poll_now()

    def rerun_checks(self) -> None:
        """`r`: a poll that brings every list, then the checks on it (as diagnose collects)."""
        if not self.session.request_checks():
            self.notify("no data yet: wait for the first poll", markup=False)
            return
        self.render_all()
        if not self.session.polling:
            self.poll_now()

    def action_toggle_pause(self) -> None:
        if self.session.paused:
            self.session.resume()
            self.poll_now()
        else:
            self.session.pause()
            if self._poll_timer is not None:
                self._poll_timer.stop()
                self._poll_timer = None
        self.render_all()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_back(self) -> None:
        """Esc with nothing left to close stays: it never leaves a screen the operator chose (#14)."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, name, pane_class in PANES:
            yield SystemCommand(f"Show {pane_class.title}", f"screen {key}", lambda n=name: self.action_show(n))
        yield SystemCommand("Pause / resume polling", "p", self.action_toggle_pause)
        yield SystemCommand("Poll now", "collect every source once, now", self.poll_now)
        yield SystemCommand("Re-run checks", "run the diagnose checks again", self.rerun_checks)
        yield SystemCommand("Full contact sync", "S: one ul_dump now (holds OpenSIPS MI while it runs)",
                            self.action_full_sync)

    # ------------------------------------------------------------------ the fleet (screen 0)

    def _poll_background(self) -> None:
        """The nodes not on screen: each one's cheap poll when its (slower) interval is up, spread
        over that interval at start; never two at once for a node, none while paused."""
        if len(self.fleet.names) < 2 or self.session.paused:
            return
        now = time.monotonic()
        others = [name for name in self.fleet.names if name != self.node]
        for number, name in enumerate(others):
            session = self.fleet.session(name)
            due = self._background_due.setdefault(name, now + number * session.interval / len(others))
            if now >= due and not session.polling:
                self._background_due[name] = now + session.interval
                self.run_worker(session.poll_once(), group=f"fleet-{name}", exclusive=True, exit_on_error=False)

    def _node_polled(self, name: str, _view: LiveView) -> None:
        if name != self.node:
            self._fleet_changed = True  # the Fleet screen renders at the next tick (20 nodes: one render)

    def _render_fleet(self) -> None:
        """At most once a second (the ages there move by the second): 19 nodes polling every 5 s
        would otherwise repaint the screen at every tick."""
        now = time.monotonic()
        if self._fleet_changed and self.current == "fleet" and now - self._fleet_rendered_at >= FLEET_RENDER_EVERY:
            self._fleet_changed, self._fleet_rendered_at = False, now
            self.pane("fleet").refresh_view(self.session.current_view(), self.now())

    def on_focus_node(self, message: FocusNode) -> None:
        self.focus_node(message.name)

    def focus_node(self, name: str) -> None:
        """Screens 1–6 show `name` from now on: its live session polls on the console's interval
        with what is on screen; the node shown before goes back to the cheap cadence."""
        if name not in self.fleet.names:
            return
        if name != self.node:
            previous = self.node
            self.fleet.focus(name)
            self.node, self.session, self.service = name, self.fleet.session(name), self.fleet.service(name)
            self.target = self._describe_target(getattr(self.service, "config", None))
            self._background_due.pop(name, None)
            self._background_due[previous] = time.monotonic() + self.fleet.session(previous).interval
            self._checks_error, self.mi_commands = "", []
            for _key, pane_name, _class in PANES:
                self.pane(pane_name).forget_view()  # the last node's lists are not this node's
            self.pane("fleet").focused = name
        self.action_show("overview")
        self.poll_now()

    # ------------------------------------------------------------------ SIP trace (T on Calls / Registrations)

    def on_trace_requested(self, message: TraceRequested) -> None:
        """T: a transient platform change (allowed read-only, audited; refused when turned off)."""
        start_trace(self, message)

    def trace_changed(self) -> None:
        """The trace started or stopped: every header says so now, not at the next poll."""
        refresh_headers(self, self._header_facts())

    async def stop_trace(self) -> None:
        """Stop a trace still running (the CLI's finally: app exit or crash); idempotent."""
        if self.trace_live is not None:
            await self.trace_live.stop()

    # ------------------------------------------------------------------ what the screens ask

    def on_back(self, _message: messages.Back) -> None:
        self.action_back()

    def on_rerun_checks(self, _message: messages.RerunChecks) -> None:
        self.rerun_checks()

    def on_mi_submitted(self, message: messages.MiSubmitted) -> None:
        self.submit_mi(message.line)

    def on_selection_changed(self, message: messages.SelectionChanged) -> None:
        self._selection = message.selection
        self.session.set_interest(self.interest())

    def on_detail_requested(self, message: messages.DetailRequested) -> None:
        self.push_screen(DetailScreen(message.title, message.sections, loader=message.loader, live=message.live,
                                      header=self._header_facts()))

    def on_aor_detail_requested(self, message: messages.AorDetailRequested) -> None:
        aor, service = message.aor, self.service
        waiting = [("Contacts", Text.assemble("asking OpenSIPS: ul_show_contact ", safe_text(aor, 80), " …"))]
        self.push_screen(DetailScreen(f"AoR {safe_text(aor, 80).plain}", waiting,
                                      loader=lambda: aor_sections(service, aor), header=self._header_facts()))

    # ------------------------------------------------------------------ MI

    def _load_mi_commands(self) -> None:
        names: list[str] = []
        pane = self.main_screen.query_one(MiPane)
        try:
            names = list(self.service.mi_commands())
        except Exception as exc:
            pane.show_status(Text(f"command list unavailable: {_describe(exc)}"))
        signalling = self.session.view.signalling
        if not names and signalling is not None:
            names = list(signalling.commands)
        pane.set_commands(names)
        self.mi_commands = names

    def submit_mi(self, line: str) -> None:
        pane = self.main_screen.query_one(MiPane)
        try:
            method, params = parse_mi_command(line)
        except ValueError as exc:
            pane.show_status(Text(str(exc), style="bold"))
            return
        if self._is_write(method):
            if not self.allow_write:
                pane.show_status(Text.assemble(("REFUSED ", "bold reverse red"), safe_text(method, 60),
                                               " changes the platform; start opsconsole with --allow-write to permit it"))
                return
            question = Text.assemble(("Run write method ", "bold"), safe_text(method, 60, style="bold"),
                                     "\nparams: ", safe_text(params, 200),
                                     f"\non {self.target}?\nThis changes the live platform and is audit-logged.")

            def answered(confirmed: bool | None) -> None:
                if confirmed:
                    self._run_mi(method, params, True)
                else:
                    pane.show_status(Text.assemble("cancelled: ", safe_text(method, 60)))

            self.push_screen(ConfirmScreen(question), answered)
            return
        self._run_mi(method, params, False)

    def _is_write(self, method: str) -> bool:
        try:
            return bool(self.service.is_write_method(method))
        except Exception:
            return True  # unknown means dangerous

    @work(exclusive=True, group="mi")
    async def _run_mi(self, method: str, params: Any, confirmed: bool) -> None:
        pane = self.main_screen.query_one(MiPane)
        pane.show_status(Text.assemble("running ", safe_text(method, 60), "…"))
        started = time.perf_counter()
        try:
            if confirmed:
                result = await self.service.mi(method, params, confirmed=True)
            else:
                result = await self.service.mi(method, params)
        except OpsError as exc:
            pane.show_status(Text.assemble(("FAIL ", "bold red"), safe_text(str(exc), None)))
            return
        except Exception as exc:
            pane.show_status(Text.assemble(("FAIL ", "bold red"), safe_text(_describe(exc), None)))
            return
        elapsed = (time.perf_counter() - started) * 1000
        pane.show_status(Text.assemble(("OK ", "bold green"), safe_text(method, 60), f" in {elapsed:.0f} ms"))
        pane.show_result(method, result)

    # ------------------------------------------------------------------ terminal loss

    def _install_terminal_watch(self) -> None:
        """Exit when the terminal goes away (SIGHUP, closed tty, orphaned):
        an on-call ssh session dropping must not leave a console polling."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._terminal_lost)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread / no signals here: the watchdog still runs
        self.set_interval(WATCHDOG_INTERVAL, self._watchdog)

    def _watchdog(self) -> None:
        if terminal_gone(self._parent_pid):
            self._terminal_lost()

    def _terminal_lost(self) -> None:
        if self._hard_exit is None and not self.is_headless:  # headless = tests: never end their process
            # Textual's shutdown writes the terminal reset to the dead tty and was seen blocking
            # for good (main thread in WriterThread.stop, the console polling on as an orphan):
            # whatever happens, the process ends HARD_EXIT_AFTER seconds from now.
            self._hard_exit = threading.Timer(HARD_EXIT_AFTER, os._exit, args=(129,))
            self._hard_exit.daemon = True
            self._hard_exit.start()
        self.exit(return_code=129)


def terminal_gone(parent_pid: int, streams: Iterable[Any] | None = None) -> bool:
    """True when stdin/stdout is no longer a terminal or our parent died (we were re-parented).

    The original streams are checked: Textual swaps sys.stdout for a capture
    object while it runs.
    """
    if os.getppid() != parent_pid:
        return True
    for stream in (sys.__stdin__, sys.__stdout__) if streams is None else streams:
        try:
            if stream is None or stream.closed or not os.isatty(stream.fileno()):
                return True
        except (OSError, ValueError):
            return True
    return False


_describe = describe


def create_app(service: Any, *, interval: float = 2.0, clock: Callable[[], float] = time.time,
               allow_write: bool = False, fleet: Any = None) -> OpsConsoleApp:
    """The one app factory (CLI: `opsconsole`; tests: with a fake service).  `fleet`: a
    console.fleet.FleetSession of several nodes (then `service` may be None: the focused node's)."""
    return OpsConsoleApp(service, interval=interval, clock=clock, allow_write=allow_write, fleet=fleet)
