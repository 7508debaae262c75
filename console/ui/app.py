"""The Textual application: one factory, `create_app`, for the CLI and the tests.

Polling runs in an exclusive worker; the next poll is scheduled only after
the previous one finished, so polls never overlap however slow a source is.
Heavy lists (contacts, dialogs with SDPs, per-session media detail) are
fetched every poll only while their screen is visible, otherwise on the
slower `config.heavy_interval` cadence; the cheap counters keep the header
and the overview live.

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
from textual.css.query import NoMatches
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import ContentSwitcher, Input

from console.errors import OpsError
from console.heap import FrozenHeap
from console.model import Snapshot, SourceStatus
from console.plugins import CollectOptions

from .header import StatusHeader
from .keybar import KeyBar
from .panes import CallsPane, ChecksPane, MediaPane, MiPane, OverviewPane, Pane, RegistrationsPane
from .safe import safe_text
from .screens import ConfirmScreen, DetailScreen, HelpScreen
from .state import LiveState

PANES: tuple[tuple[str, str, type[Pane]], ...] = (
    ("1", "overview", OverviewPane),
    ("2", "registrations", RegistrationsPane),
    ("3", "calls", CallsPane),
    ("4", "media", MediaPane),
    ("5", "checks", ChecksPane),
    ("6", "mi", MiPane),
)
PANE_TITLES = {"overview": "Overview", "registrations": "Regs", "calls": "Calls", "media": "Media",
               "checks": "Checks", "mi": "MI"}

PREPARE_IN_THREAD = 5_000  # contacts; below this the first filter is cheap enough inline
# new contacts in one list that make it worth a full collection and handing freed heap back at once
# (a full sync at 100k); smaller changes are left to FrozenHeap's periodic sweep
CALM_AFTER_NEW = 50_000
OFFSCREEN_INDEX_EVERY = 300.0  # s: a big list's index while the Registrations screen is not shown
# Budget of per-session ng queries (one per call on screen, decoded here): a 40-row screen's
# ports and packet counters every ~3 s (the age is shown when older than the last poll).
DETAIL_QUERIES_PER_S = 15
TICK_CHECK = 0.5  # s between "is a poll late?" checks (cheap when it is not)
TICK_STEADY, TICK_LATE = 2.0, 0.5  # ages repaint when nothing did for min(interval, 2 s) + 0.5 s
WATCHDOG_INTERVAL = 2.0  # seconds between "is our terminal still there?" checks
HARD_EXIT_AFTER = 5.0  # seconds a terminal-loss exit may take before the process is ended outright


class OpsConsoleApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "opsconsole"
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "colon"

    BINDINGS = [
        *(Binding(key, f"show('{name}')", PANE_TITLES[name]) for key, name, _ in PANES),
        Binding("p", "toggle_pause", "Pause"),
        Binding("S", "full_sync", "Full sync", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, service: Any, *, interval: float = 2.0, clock: Callable[[], float] = time.time,
                 allow_write: bool = False) -> None:
        super().__init__()
        self.service = service
        self.interval = max(0.1, float(interval))
        self.clock = clock
        self.allow_write = allow_write
        self.state = LiveState()
        self.paused = False
        self.polling = False
        self.checks_running = False
        self.checks_requested = False  # the operator pressed r: the next poll runs the checks
        self.current = "overview"
        self.poll_count = 0
        self.heap = FrozenHeap()  # see console/heap.py: what survives a poll is frozen
        self.last_options: CollectOptions | None = None
        self.full_sync_requested = False  # the operator pressed S: one full ul_dump on the next poll
        self._rendered_at = float("-inf")  # last repaint of the header and the visible pane
        self._prepared: Any = None  # the contact index last prepared off the key path
        self._prepared_at = 0.0  # when (our clock)
        self._prepared_as_of: float | None = None  # its list's contacts_as_of (its countdowns count from it)
        self._poll_timer = None
        self._parent_pid = os.getppid()
        self._hard_exit: threading.Timer | None = None
        config = getattr(service, "config", None)
        self.heavy_interval = float(getattr(config, "heavy_interval", 30.0) or 30.0)
        self.full_sync_max = int(getattr(config, "full_sync_max", 10_000) or 10_000)
        self.target = self._describe_target(config)

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

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status-header")
        with ContentSwitcher(initial="overview", id="panes"):
            for _key, name, pane_class in PANES:
                yield pane_class(id=name)
        yield KeyBar()  # not Footer: it recomposes a widget per key on every focus change

    def on_mount(self) -> None:
        self.main_screen.query_one(StatusHeader).show(self)
        self.set_interval(TICK_CHECK, self._tick)
        if not self.is_headless:
            self._install_terminal_watch()
        self.call_after_refresh(self._focus_pane)
        self.poll_now()

    @property
    def main_screen(self) -> Screen:
        """The screen holding the panes (a detail or modal screen may be on top)."""
        return self.screen_stack[0]

    def pane(self, name: str | None = None) -> Pane:
        return self.main_screen.query_one(f"#{name or self.current}", Pane)

    def _focus_pane(self) -> None:
        self.pane().focus_main()

    # ------------------------------------------------------------------ polling

    def collect_options(self) -> CollectOptions:
        """Heavy lists only for the visible screen, else on the slow cadence."""
        now = self.now()

        def due(at: float | None) -> bool:
            return at is None or now - at >= self.heavy_interval

        # A poll that feeds the checks brings every list diagnose has: the checks then compare
        # lists of one moment (an older dialog list against current sessions gives false orphans).
        checks_due = self.checks_due()
        contacts = self.current == "registrations" or due(self.state.contacts_at) or checks_due
        dialogs = self.current in ("calls", "media") or due(self.state.dialogs_at) or checks_due
        # One ng query per media session shown (the rows on screen): the others keep their last
        # details (LiveState) and the session list stays live.  Should that still be many
        # sessions, fewer rounds (RTPengine's load and ours).
        wanted = self._detail_keys()
        sessions = len(wanted) if wanted is not None else (len(self.state.media.sessions) if self.state.media is not None else 0)
        details_every, details_at = sessions / DETAIL_QUERIES_PER_S, self.state.details_at
        details = self.current in ("calls", "media") and (details_every <= self.interval or details_at is None or now - details_at >= details_every)
        force = self.full_sync_requested
        self.full_sync_requested = False
        # Host facts (daemons, modules, kernel log) feed only the checks: read them for those polls.
        # live: between full syncs the sources keep lists current from events, not dumps.
        return CollectOptions(contacts=contacts or force, dialogs=dialogs, media_details=details,
                              media_detail_callids=wanted if details else None,
                              dialog_detail_callids=(wanted or frozenset()) if self.current == "calls" else frozenset(),
                              host_facts=checks_due,
                              full_sync_max=self.full_sync_max, force_full_sync=force, live=True)

    def checks_due(self) -> bool:
        """The checks run with this poll: first poll, the heavy cadence, or the operator's `r`."""
        at = self.state.checks_at
        return self.checks_requested or at is None or self.now() - at >= self.heavy_interval

    def _detail_keys(self) -> frozenset[str] | None:
        """The Call-IDs the visible pane shows in detail (rows scrolled into view get theirs
        at the next poll; until then they keep their last details)."""
        try:
            return self.pane().detail_keys()
        except NoMatches:
            return None  # the pane is still being composed

    def action_full_sync(self) -> None:
        """A full ul_dump holds OpenSIPS MI (quadratic in contacts): only when the operator asks."""
        self.full_sync_requested = True
        self.notify("full sync requested: OpenSIPS MI is busy while the contact list is dumped", markup=False)
        if not self.polling:
            self.poll_now()

    def poll_now(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._poll()

    @work(exclusive=True, group="poll")
    async def _poll(self) -> None:
        options = self.collect_options()
        self.last_options = options
        self.polling = True
        try:
            snapshot = await self.service.snapshot(options)
        except Exception as exc:  # the service turns failures into data; this is the last guard
            snapshot = Snapshot(collected_at=self.now(),
                                sources={"console": SourceStatus("console", False, f"poll failed: {_describe(exc)}")})
        self.state.apply(snapshot, options)
        self.poll_count += 1
        if self._index_due() and (self.current == "registrations" or self._prepared is None
                                  or self.now() - self._prepared_at >= OFFSCREEN_INDEX_EVERY):
            # For the screen that shows it; elsewhere only now and then: a live list's index rebuilt
            # at every contacts refresh for nobody cost ~0.3 % of a core at 10k contacts.  The
            # switch to the screen shows the last one at once and asks for a fresh one (action_show).
            index = self._prepared = self.state.contact_index()  # an unchanged list keeps its index
            self._prepared_at, self._prepared_as_of = self.now(), self.state.contacts_as_of
            # What the Registrations screen shows of a big list: built off the key path.
            await asyncio.to_thread(index.prepare, *self.pane("registrations").selection_query)
            if index.new_contacts >= CALM_AFTER_NEW:
                self.heap.settle()  # only after a big list arrived: a full collection costs ~100 ms at 100k
        if self.checks_due():
            await self._run_checks()
        self.polling = False
        self.render_all()
        if not self.is_headless:  # tests share their process: its heap is not ours to freeze
            self.heap.after_poll()
        if not self.paused:
            self._poll_timer = self.set_timer(self.interval, self._poll)

    async def _run_checks(self) -> None:
        """The diagnose checks on the merged state (LiveState.check_snapshot): the same checks on
        the same complete inputs as `opsconsole diagnose`, not on the latest poll alone (which, in
        live mode, lacks the lists fetched on their own cadence)."""
        snapshot = self.state.check_snapshot()
        if snapshot is None:
            return
        self.checks_requested = False
        self.checks_running = True
        try:
            self.state.checks = list(await self.service.checks(snapshot))
        except Exception as exc:
            self.notify(f"checks failed: {_describe(exc)}", severity="error", markup=False)
        else:
            self.state.checks_at = self.now()
        finally:
            self.checks_running = False

    def rerun_checks(self) -> None:
        """`r`: a poll that brings every list, then the checks on it (as diagnose collects)."""
        if self.state.latest is None:
            self.notify("no data yet: wait for the first poll", markup=False)
            return
        self.checks_requested = True
        self.checks_running = True
        self.render_all()
        if not self.polling:
            self.poll_now()

    def render_all(self) -> None:
        """Header always; only the visible pane (hidden ones render when shown)."""
        if self._exit:
            return  # a poll finishing while the app closes: the widgets are being removed
        with self.batch_update():
            for screen in self.screen_stack:  # the main screen's header and a detail pane's
                for header in screen.query(StatusHeader):
                    header.show(self)
                if isinstance(screen, DetailScreen):  # a detail follows its row (or says it is gone)
                    screen.refresh_live(self.state, self.now())
            self.pane().refresh_view(self.state, self.now())
        self._rendered_at = self.now()

    def _tick(self) -> None:
        """Ages and countdowns move when a poll is late (a slow or dead source): header + what is on
        screen.  While polls come on time each one repaints; a tick between two of them would repaint
        every visible age a second time (most of the console's CPU on a 1000-call screen)."""
        if self._exit:
            return
        if self.now() - self._rendered_at < min(self.interval, TICK_STEADY) + TICK_LATE:
            return
        self._rendered_at = self.now()
        with self.batch_update():
            for screen in self.screen_stack:
                for header in screen.query(StatusHeader):
                    header.show(self)
            try:
                self.pane().tick(self.state, self.now())
            except NoMatches:
                pass  # the pane is still being composed (screen just switched): nothing to age yet

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A pending write confirmation must be answered first.
        if isinstance(self.screen, ConfirmScreen) and action in ("show", "toggle_pause", "help", "back"):
            return False
        return True

    def action_show(self, name: str) -> None:
        while isinstance(self.screen, (DetailScreen, HelpScreen)):
            self.pop_screen()  # a screen key from a detail pane goes to that screen
        if name == self.current and self.main_screen.query_one(ContentSwitcher).current == name:
            return
        previous = self.current
        self.current = name
        self.main_screen.query_one(ContentSwitcher).current = name
        if name == "registrations" and self._index_due() and self._prepared is not None and not self.paused:
            # A big list's new index is built by the poll below, in a thread, not on this key;
            # meanwhile the last prepared list (one contacts refresh older), counting down from its own moment.
            now = self.now()
            elapsed = now - self._prepared_as_of if self._prepared_as_of is not None else 0.0
            self.pane().refresh_view(self.state, now, index=self._prepared, elapsed=elapsed)
        else:
            self.pane().refresh_view(self.state, self.now())
        self.pane().focus_main()
        if name == "mi":
            self._load_mi_commands()
        # A screen with heavy data asks for it now, not at the next tick.
        if previous != name and name in ("registrations", "calls", "media") and not self.paused:
            self.poll_now()

    def _index_due(self) -> bool:
        """The Registrations screen's index of a big list is not built for the current list yet."""
        contacts = self.state.contacts or ()
        return len(contacts) >= PREPARE_IN_THREAD and (self._prepared is None or self._prepared.contacts is not contacts)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if not self.paused:
            self.poll_now()
        self.render_all()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_back(self) -> None:
        if self.current != "overview":
            self.action_show("overview")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, name, pane_class in PANES:
            yield SystemCommand(f"Show {pane_class.title}", f"screen {key}", lambda n=name: self.action_show(n))
        yield SystemCommand("Pause / resume polling", "p", self.action_toggle_pause)
        yield SystemCommand("Poll now", "collect every source once, now", self.poll_now)
        yield SystemCommand("Re-run checks", "run the diagnose checks again", self.rerun_checks)
        yield SystemCommand("Full contact sync", "S: one ul_dump now (holds OpenSIPS MI while it runs)",
                            self.action_full_sync)

    # ------------------------------------------------------------------ MI

    def _load_mi_commands(self) -> None:
        names: list[str] = []
        try:
            names = list(self.service.mi_commands())
        except Exception as exc:
            self.main_screen.query_one(MiPane).show_status(Text(f"command list unavailable: {_describe(exc)}"))
        if not names and self.state.signalling is not None:
            names = list(self.state.signalling.commands)
        self.main_screen.query_one("#mi-input", Input).suggester = SuggestFromList(sorted(set(names)), case_sensitive=False)
        self.mi_commands = names

    def submit_mi(self, line: str) -> None:
        from .views import parse_mi_command

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


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OpsError) else f"{type(exc).__name__}: {exc}"


def create_app(service: Any, *, interval: float = 2.0, clock: Callable[[], float] = time.time,
               allow_write: bool = False) -> OpsConsoleApp:
    """The one app factory (CLI: `opsconsole`; tests: with a fake service)."""
    return OpsConsoleApp(service, interval=interval, clock=clock, allow_write=allow_write)
