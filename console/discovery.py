"""Discovery of the platform's addresses when nothing is configured.

Sources, most trusted first: the running daemons (rtpengine's command line +
--config-file, OpenSIPS's -f cfg: that is where they really listen), then the
opensips-cli config an operator already keeps.  Every finding becomes a note
saying what and where ("ng 127.0.0.1:60000 (rtpengine pid 4242 --listen-ng)").
Best effort and fast: it never raises and never talks to the network.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .config import without_userinfo

OPENSIPS_CLI_ETC = (Path("/etc/opensips-cli.cfg"), Path("/etc/opensips/opensips-cli.cfg"))
OPENSIPS_CLI_DEFAULTS = {
    "communication_type": "fifo",
    "fifo_file": "/tmp/opensips_fifo",
    "url": "http://127.0.0.1:8888/mi",
}


@dataclass(frozen=True)
class Discovered:
    mi_url: str | None = None
    mi_fifo: str | None = None
    ng: tuple[str, int] | None = None
    cli: tuple[str, int] | None = None
    port_range: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()  # "ng 127.0.0.1:60000 from rtpengine pid 123 --listen-ng"


@dataclass
class _Found:
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def offer(self, key: str, value: Any, note: str) -> None:
        """First finding wins (callers go from most to least trusted); later ones are still noted."""
        if value is None:
            return
        if key in self.values:
            if self.values[key] != value:
                self.notes.append(f"{note} — not used, {key} already found")
            return
        self.values[key] = value
        self.notes.append(note)


def discover(
    *,
    home: str | Path | None = None,
    etc_paths: Iterable[str | Path] | None = None,
    processes: Iterable[Any] | None = None,
) -> Discovered:
    """What this machine tells about the MI, ng and cli addresses.

    `home` / `etc_paths` replace ~ and the /etc candidates for opensips-cli.cfg;
    `processes` (ProcessInfo objects as opsconsole_host.processes finds them)
    replaces the live process scan.  Tests use all three.
    """
    found = _Found()
    try:
        daemons = list(processes) if processes is not None else _scan_processes(found)
        for proc in daemons:
            if getattr(proc, "name", "") == "rtpengine":
                _from_rtpengine(proc, found)
        for proc in daemons:
            if getattr(proc, "name", "") == "opensips":
                _from_opensips(proc, found)
        _from_opensips_cli(home, etc_paths, found)
    except Exception as exc:  # discovery is best effort: report, never raise
        found.notes.append(f"discovery stopped: {type(exc).__name__}: {exc}")
    v = found.values
    return Discovered(v.get("mi_url"), v.get("mi_fifo"), v.get("ng"), v.get("cli"), v.get("port_range"),
                      tuple(found.notes))


def _scan_processes(found: _Found) -> list[Any]:
    try:
        from opsconsole_host.processes import find_daemons
    except ImportError as exc:
        found.notes.append(f"process discovery unavailable: {exc}")
        return []
    daemons: list[Any] = []
    for name in ("rtpengine", "opensips"):
        try:
            daemons.extend(find_daemons(name))
        except Exception as exc:  # psutil AccessDenied and friends: a note, not a failure
            found.notes.append(f"could not list {name} processes: {type(exc).__name__}: {exc}")
    return daemons


def _trusted(proc: Any, who: str, found: _Found) -> bool:
    """A process we could not read, or that only looks like the daemon, is noted, not used."""
    if proc.error:
        found.notes.append(f"{who}: {proc.error}")
        return False
    if proc.suspect:
        found.notes.append(f"{who} ignored: {proc.suspect}")
        return False
    return True


def _from_rtpengine(proc: Any, found: _Found) -> None:
    from opsconsole_host.processes import ng_address

    who = f"rtpengine pid {proc.pid}"
    if not _trusted(proc, who, found):
        return
    settings = proc.settings
    sources = settings.get("sources", {})
    if settings.get("config_error"):
        found.notes.append(f"{who}: {settings['config_error']}")
    for key, option in (("ng", "listen-ng"), ("cli", "listen-cli")):
        if option not in settings:
            continue
        address = ng_address(settings[option])
        where = _where(option, sources, settings)
        if address is None:
            found.notes.append(f"{key} not usable: {option}={settings[option]!r} ({who} {where})")
            continue
        found.offer(key, address, f"{key} {address[0]}:{address[1]} ({who} {where})")
    low, high = settings.get("port-min"), settings.get("port-max")
    if isinstance(low, int) or isinstance(high, int):
        low = low if isinstance(low, int) else 30000  # rtpengine's built-in defaults
        high = high if isinstance(high, int) else 40000
        found.offer("port_range", (low, high), f"media ports {low}-{high} ({who} --port-min/--port-max)")


def _where(option: str, sources: dict[str, str], settings: dict[str, Any]) -> str:
    if sources.get(option) == "config":
        return f"{option} in {settings.get('config_file')}"
    return f"--{option}"


def _from_opensips(proc: Any, found: _Found) -> None:
    who = f"opensips pid {proc.pid}"
    if not _trusted(proc, who, found):
        return
    settings = proc.settings
    cfg = settings.get("config-file", "?")
    if settings.get("config_error"):
        found.notes.append(f"{who}: {settings['config_error']}")
        return
    mi_http = settings.get("mi_http") or {}
    if mi_http.get("url"):
        found.offer("mi_url", mi_http["url"], f"mi_http {mi_http['url']} ({who} {cfg} httpd port/mi_http root)")
    if settings.get("mi_fifo"):
        found.offer("mi_fifo", settings["mi_fifo"], f"mi_fifo {settings['mi_fifo']} ({who} {cfg} mi_fifo fifo_name)")
    if not mi_http and not settings.get("mi_fifo"):
        found.notes.append(f"{who}: {cfg} loads neither mi_http nor mi_fifo")


def _from_opensips_cli(home: str | Path | None, etc_paths: Iterable[str | Path] | None, found: _Found) -> None:
    """opensips-cli reads the first of ~/.opensips-cli.cfg, /etc/opensips-cli.cfg, /etc/opensips/opensips-cli.cfg."""
    home_dir = Path(home) if home is not None else Path.home()
    candidates = [home_dir / ".opensips-cli.cfg", *(Path(p) for p in (etc_paths if etc_paths is not None else OPENSIPS_CLI_ETC))]
    for path in candidates:
        try:
            if not path.is_file():
                continue
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            with path.open(encoding="utf-8", errors="replace") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error, UnicodeError) as exc:
            found.notes.append(f"opensips-cli config {path} unreadable: {exc}")
            continue
        section = parser["default"] if parser.has_section("default") else parser.defaults()
        kind = section.get("communication_type", OPENSIPS_CLI_DEFAULTS["communication_type"]).strip().lower()
        if kind == "http":
            url = section.get("url", OPENSIPS_CLI_DEFAULTS["url"]).strip()
            found.offer("mi_url", url, f"mi_http {without_userinfo(url)} (opensips-cli config {path} url)")
        elif kind == "fifo":
            fifo = section.get("fifo_file", OPENSIPS_CLI_DEFAULTS["fifo_file"]).strip()
            found.offer("mi_fifo", fifo, f"mi_fifo {fifo} (opensips-cli config {path} fifo_file)")
        else:
            found.notes.append(f"opensips-cli config {path}: communication_type {kind!r} is not supported, ignored")
        return  # opensips-cli uses the first file it finds, so do we
