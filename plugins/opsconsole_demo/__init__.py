"""The demo platform: a simulated OpenSIPS (mi_http + events) and an RTPengine, on loopback.

    async with DemoPlatform(size=70) as demo:
        config = load_config(demo.overrides(), discover=False)

Everything runs in the caller's event loop; `tick` seconds between simulation
steps (None: no background task, call `await demo.step()` yourself).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

from console.errors import ConfigError
from console.lifecycle import StartStop

# The simulator's modules are imported when a demo starts, not with the package: the `demo` plugin's
# entry point lives in this package, so every command (snapshot, diagnose...) imports it (~30 ms, #18).
if TYPE_CHECKING:
    from .events import EventHub
    from .media import MediaDriver
    from .mi_render import MiRenderer
    from .mi_server import MiHttpServer
    from .rtp import RtpPump
    from .sip import SipEndpoint
    from .state import DemoState
    from .tracer import DemoTracer

__all__ = ["DemoPlatform", "DemoState"]


def __getattr__(name: str):
    if name == "DemoState":  # `from opsconsole_demo import DemoState` as before
        from .state import DemoState

        return DemoState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

log = logging.getLogger(__name__)


class DemoPlatform(StartStop):
    def __init__(self, size: int = 70, version: str = "3.4", real_rtpengine: bool | None = None, seed: int = 1,
                 tick: float | None = 1.0, time_scale: float = 1.0, *, clock: Callable[[], float] = time.time,
                 buffer_size: int | None = None, calls: int | None = None, sip: bool = False,
                 rtp: bool = False, profile=None) -> None:
        if version not in ("3.4", "4.0"):
            raise ConfigError(f"the demo imitates OpenSIPS 3.4 or 4.0, not {version!r}")
        self.size, self.version, self.seed = size, version, seed
        self.real_rtpengine = real_rtpengine
        if buffer_size is None:
            from .mi_server import DEFAULT_BUFFER

            buffer_size = DEFAULT_BUFFER
        self.tick, self.time_scale, self.buffer_size = tick, time_scale, buffer_size
        self.clock = clock
        self.calls = calls
        self.sip_enabled = sip
        self.rtp_enabled = rtp  # real RTP for plain-RTP calls, when the RTPengine is real (rtp.py)
        self.profile = profile  # a fleet node's (fleet_mi.NodeProfile): its sets, cluster and health
        self.rtp: RtpPump | None = None
        self.sip_endpoint: SipEndpoint | None = None
        self.state: DemoState | None = None
        self.media: MediaDriver | None = None
        self.events: EventHub | None = None
        self.server: MiHttpServer | None = None
        self.tracer: DemoTracer | None = None
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def mi_url(self) -> str:
        return self.server.url

    @property
    def sip(self) -> tuple[str, int] | None:
        """(host, port) of the UDP SIP registrar, or None when started without sip=True."""
        return self.sip_endpoint.address if self.sip_endpoint is not None else None

    @property
    def sip_tcp(self) -> tuple[str, int] | None:
        """(host, port) of the same registrar over TCP (usually the UDP port number)."""
        return self.sip_endpoint.tcp_address if self.sip_endpoint is not None else None

    @property
    def ng(self) -> tuple[str, int]:
        return self.media.ng

    @property
    def cli(self) -> tuple[str, int]:
        return self.media.cli

    def overrides(self) -> dict:
        """Settings for console.config.load_config(cli_overrides=...)."""
        return {"mi_url": self.mi_url, "ng": self.ng, "cli": self.cli}

    # ------------------------------------------------------------------ lifecycle (async with: console.lifecycle)

    async def start(self) -> None:
        from .events import EventHub
        from .media import start_media
        from .mi_server import MiHttpServer
        from .rtp import RtpPump
        from .sip import SipEndpoint
        from .state import DemoState
        from .tracer import DemoTracer

        # The pump exists before the calls: it gives their endpoints ports the OS chose (rtp.py).
        self.rtp = RtpPump() if self.rtp_enabled else None  # closed by stop() whatever happens next
        self.state = DemoState(self.size, seed=self.seed, clock=self.clock, version=self.version, calls=self.calls,
                               media_port=self.rtp.reserve if self.rtp else None)
        self.media = await start_media(self.real_rtpengine, self.clock, self.state.target_calls)
        if self.rtp is not None and self.media.real:
            self.rtp.start()
        elif self.rtp is not None:  # a simulated relay relays nothing: no RTP, no ports held
            await self.rtp.close()
            self.rtp, self.state.media_port = None, None
        await self._run_media_work()  # the calls already up at start get their media
        self.events = EventHub(self.clock)
        await self.events.start()
        renderer = self._renderer(f"udp:{self.ng[0]}:{self.ng[1]}")
        renderer.tracer = self.tracer = DemoTracer(self.state, self.clock)
        self.server = MiHttpServer(renderer, time_scale=self.time_scale, buffer_size=self.buffer_size)
        await self.server.start()
        renderer.httpd = f"{self.server.host}:{self.server.port}"
        if self.sip_enabled:
            self.sip_endpoint = SipEndpoint(self.state, on_change=self._publish_events)
            await self.sip_endpoint.start()
        if self.tick:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="opsconsole-demo")

    def _renderer(self, rtpengine_url: str) -> MiRenderer:
        from .mi_render import MiRenderer

        if self.profile is None:
            return MiRenderer(self.state, self.events, rtpengine_url=rtpengine_url)
        from .fleet_mi import FleetMiRenderer

        return FleetMiRenderer(self.state, self.events, rtpengine_url=rtpengine_url, profile=self.profile)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for part in (self.sip_endpoint, self.server, self.tracer, self.events, self.rtp, self.media):
            if part is not None:
                try:
                    await part.close()
                except Exception:  # keep closing the rest (the daemon above all)
                    log.warning("demo: closing %s failed", type(part).__name__, exc_info=True)

    # ------------------------------------------------------------------ evolution

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # a bad step must not stop the demo
                log.warning("demo step failed", exc_info=True)
            await asyncio.sleep(self.tick)

    async def step(self, now: float | None = None) -> None:
        """Advance the simulation once, run its media work, then deliver its events."""
        self.state.advance(now)
        await self._run_media_work()
        self._publish(self.state.take_events())

    def _publish_events(self) -> None:
        """A REGISTER changed the state: its E_UL_* events go out now, not at the next tick."""
        self._publish(self.state.take_events())

    def _publish(self, events: list) -> None:
        self.tracer.observe(events)  # a running trace sees the step's SIP first (HEP to its URI)
        self.events.publish(events)

    async def _run_media_work(self) -> None:
        for work in self.state.take_media_work():
            try:
                await self.media.apply(work)
            except Exception as exc:  # e.g. an ng timeout: the call goes on without sent SDP
                log.info("demo: rtpengine %s failed: %s", work.op, exc)
            if self.rtp is not None:
                self.rtp.update(work)
