"""`opsconsole exporter`: the fleet's live state as Prometheus metrics (prometheus-client).

It runs the same headless live sessions as the console (console.fleet: events where available, the
cheap counters every `--interval`, the lists and checks on the heavy cadence) and never collects
for a scrape: after each poll of a node its samples are computed once (console.exporter_metrics),
and a scrape only turns the last ones into text.  The HTTP server is prometheus-client's (a thread
of its own); SIGTERM and SIGINT stop the polls, the server and every node's connections cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any, Callable, Iterable

from prometheus_client import ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import CollectorRegistry

from .errors import ConfigError
from .exporter_metrics import METRICS, NodeMemory, Sample, node_samples, target_label
from .fleet import FleetSession

DEFAULT_LISTEN = "127.0.0.1:9464"
DEFAULT_INTERVAL = 5.0  # s between two cheap polls of a node (its lists and checks: heavy_interval)


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[::1]:PORT'; port 0 asks the OS for a free one (the address is printed)."""
    value = text.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        sep, port_text = rest[:1], rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--listen: expected HOST:PORT like {DEFAULT_LISTEN}, got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"--listen: the port must be a number from 0 to 65535 in {text!r} (0: one from the OS)")
    return host, int(port_text)


class FleetCollector:
    """A prometheus-client collector answering from the samples each node's last poll left."""

    def __init__(self, fleet: FleetSession, *, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.clock = clock
        thresholds = fleet.config.thresholds
        self._quality = {"mos_poor": thresholds.mos_poor, "silent_after_s": thresholds.silent_after_s}
        self._memory = {spec.name: NodeMemory() for spec in fleet.targets}
        # name -> the node's samples: replaced whole after each poll (the scrape thread reads a finished tuple)
        self._samples: dict[str, tuple[Sample, ...]] = {}
        self.errors: dict[str, str] = {}  # name -> why its samples could not be computed
        for spec in fleet.targets:
            self._polled(spec.name, fleet.session(spec.name).view)
        self._unsubscribe = fleet.subscribe(self._polled)

    def _polled(self, name: str, view: Any) -> None:
        spec = self.fleet.spec(name)
        try:
            samples = tuple(node_samples(spec, view, self._memory[name], **self._quality))
        except Exception as exc:  # a part of a shape we do not know: the node's up/info still say something
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            samples = (Sample("opsconsole_target_info", (), 1), Sample("opsconsole_exporter_failed", (), 1))
        else:
            self.errors.pop(name, None)
        self._samples[name] = samples

    def describe(self) -> Iterable[Metric]:
        return ()  # registering must not collect (the first polls may not have run)

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        families = {name: Metric(name, help_text, "gauge") for name, (help_text, _labels) in METRICS.items()}
        for spec in self.fleet.targets:
            target = target_label(spec)
            for sample in self._samples.get(spec.name, ()):
                labels = {"target": target, **dict(zip(METRICS[sample.name][1], sample.labels))}
                if sample.name == "opsconsole_target_info":
                    labels |= dict(spec.labels)
                families[sample.name].add_sample(sample.name, labels, sample.value)
                if sample.name == "opsconsole_last_poll_timestamp_seconds":
                    families["opsconsole_poll_age_seconds"].add_sample(
                        "opsconsole_poll_age_seconds", {"target": target}, max(0.0, now - sample.value))
        return [family for family in families.values() if family.samples]

    def close(self) -> None:
        self._unsubscribe()


class Exporter:
    """The fleet's polls plus the HTTP server; `await run()` until `stop()` (or a signal)."""

    def __init__(self, fleet: FleetSession, listen: tuple[str, int]) -> None:
        self.fleet = fleet
        self.listen = listen
        self.collector = FleetCollector(fleet)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)  # the exporter's own CPU, memory, open files (process_*)
        self._httpd = self._thread = None
        self._signals: list[int] = []

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the OS's port when asked for port 0)."""
        if self._httpd is None:
            return self.listen
        host, port = self._httpd.server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"

    def start(self) -> None:
        """Listen now (OSError when the address is taken or not ours: the caller says so), and from now
        on SIGTERM / SIGINT stop the exporter (a signal before run() makes run() return at once)."""
        host, port = self.listen
        self._httpd, self._thread = start_http_server(port, addr=host, registry=self.registry)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(signum, self.stop)
                self._signals.append(signum)

    async def run(self) -> None:
        if self._httpd is None:
            self.start()
        try:
            await self.fleet.run()
        finally:
            await self.aclose()

    def stop(self) -> None:
        self.fleet.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        self._signals = []
        self.collector.close()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            # shutdown() waits for serve_forever to return: off the loop, which the polls' cancellation needs
            await asyncio.to_thread(httpd.shutdown)
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        await self.fleet.aclose()
