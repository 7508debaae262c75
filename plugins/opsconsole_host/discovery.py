"""Discovery of the platform's addresses when nothing is configured.

Order, as the README states it (after the command line, the environment and the TOML file):
opensips-cli's config (an address the operator chose and already uses with opensips-cli), then
the running rtpengine's command line + --config-file, then the running OpenSIPS's -f cfg.
With several daemons of a kind on the host one is picked, and the report says which, why, and
how to choose another (--mi-url / --ng).  Every finding becomes a note saying what and where
("ng 127.0.0.1:60000 (rtpengine pid 4242 --listen-ng)"; no note contains "; ", which joins them
in the text report).  An address given explicitly (command
line, environment, config file) is never reported as "not used".
Best effort and fast: it never raises and never talks to the network.

The host plugin offers it as its `discover` hook (console.plugins): the core reads no process table.
Everything it reads has a root that tests replace: `home` (~/.opensips-cli.cfg), `etc_paths`
(/etc candidates), `proc_root` (the process scan) or `processes` (the scan's result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from console.plugins import Discovered
from console.redact import without_userinfo

OPENSIPS_CLI_ETC = (Path("/etc/opensips-cli.cfg"), Path("/etc/opensips/opensips-cli.cfg"))
OPENSIPS_CLI_DEFAULTS = {
    "communication_type": "fifo",
    "fifo_file": "/tmp/opensips_fifo",
    "url": "http://127.0.0.1:8888/mi",
}
OPENSIPS_SYSTEM_CFG = "/etc/opensips/opensips.cfg"
# Which option chooses each target, for "choose another with ...".
OPTION = {"mi": "--mi-url", "ng": "--ng", "cli": "--cli"}


@dataclass
class _Offer:
    """One source's value for a target ("mi": {"mi_url": ..., "mi_fifo": ...}, "ng": (host, port))."""

    values: dict[str, Any]
    shown: str  # "mi_http http://127.0.0.1:8888/mi", "ng 127.0.0.1:2223"
    where: str  # "(rtpengine pid 4242 --listen-ng)"
    who: str  # "rtpengine pid 4242", "opensips-cli config /root/.opensips-cli.cfg"
    kind: str  # "config", "rtpengine", "opensips"
    pid: int = 0
    preferred: str = ""  # why this daemon is picked among several ("" = no reason beyond pid order)
    option_value: str = ""  # what to pass to choose it ("--ng 127.0.0.1:2223")


@dataclass
class _Found:
    offers: dict[str, list[_Offer]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def offer(self, target: str, offer: _Offer) -> None:
        same = [o for o in self.offers.get(target, []) if o.values == offer.values and o.who == offer.who]
        if not same:
            self.offers.setdefault(target, []).append(offer)


def discover(
    *,
    home: str | Path | None = None,
    etc_paths: Iterable[str | Path] | None = None,
    processes: Iterable[Any] | None = None,
    proc_root: str | Path | None = None,
    given: Mapping[str, tuple[Any, str]] | None = None,
) -> Discovered:
    """What this machine tells about the MI, ng and cli addresses.

    `home` / `etc_paths` replace ~ and the /etc candidates for opensips-cli.cfg; `proc_root`
    replaces /proc for the process scan (None: opsconsole_host.procfs.HOST_PROC_ROOT), or
    `processes` (ProcessInfo objects as opsconsole_host.processes finds them) replaces the scan.
    `given` maps mi_url/mi_fifo/ng/cli to (value, where it was given: "--ng", "OPSCONSOLE_NG",
    "config file X") for what the operator set explicitly: discovery then says whether a daemon
    matches it instead of calling it "not used".
    """
    found = _Found()
    given = dict(given or {})
    if all(_explicit(target, given) is not None for target in ("mi", "ng", "cli")):
        return Discovered()  # everything was given: nothing to find, so nothing is read (#18)
    try:
        _from_opensips_cli(home, etc_paths, found)
        daemons = list(processes) if processes is not None else _scan_processes(found, proc_root)
        opensips = [p for p in daemons if getattr(p, "name", "") == "opensips"]
        for proc in daemons:
            if getattr(proc, "name", "") == "rtpengine":
                _from_rtpengine(proc, opensips, found)
        for proc in opensips:
            _from_opensips(proc, found)
        values = _choose(found, given)
    except Exception as exc:  # discovery is best effort: report, never raise
        found.notes.append(f"discovery stopped: {type(exc).__name__}: {exc}")
        values = {}
    return Discovered(values.get("mi_url"), values.get("mi_fifo"), values.get("ng"), values.get("cli"),
                      values.get("port_range"), tuple(found.notes))


# --------------------------------------------------------------------------- choosing


def _choose(found: _Found, given: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """One offer per target, every other one noted with how to pick it instead.

    cli and the port range follow the relay whose ng is used: both from one rtpengine."""
    values: dict[str, Any] = {}
    relay_pid: int | None = None  # the rtpengine whose ng is used (None: none of the running ones)
    for target in ("mi", "ng", "cli", "port_range"):
        offers = found.offers.get(target, [])
        explicit = _explicit(target, given)
        if not offers:
            if target == "ng" and explicit is not None:
                relay_pid = -1
            continue
        if explicit is not None:
            matched = _note_against_explicit(target, offers, explicit, found)
            if target == "ng":
                relay_pid = matched.pid if matched else -1
            continue
        if target in ("cli", "port_range") and relay_pid is not None:
            chosen = next((o for o in offers if o.pid == relay_pid), None)
            if chosen is None:
                if target == "cli":
                    found.notes.append(f"cli not taken from a running rtpengine: none is the relay whose ng is "
                                       f"used, set it with {OPTION['cli']}")
                continue
            values.update(chosen.values)
            found.notes.append(f"{chosen.shown} {chosen.where}")
            continue
        chosen = _pick(offers)
        values.update(chosen.values)
        if target == "ng":
            relay_pid = chosen.pid
        found.notes.append(_chosen_note(target, chosen, offers))
        for other in offers:
            if other is not chosen:
                found.notes.append(_other_note(target, other, chosen))
    return values


def _explicit(target: str, given: dict[str, tuple[Any, str]]) -> tuple[Any, str] | None:
    keys = ("mi_url", "mi_fifo") if target == "mi" else (target,)
    for key in keys:
        if key in given and given[key][0] is not None:
            return given[key]
    return None


def _pick(offers: list[_Offer]) -> _Offer:
    """opensips-cli's config first (the operator chose it), then a daemon with a reason, then the lowest pid."""
    rank = {"config": 0}
    return min(offers, key=lambda o: (rank.get(o.kind, 1), 0 if o.preferred else 1, o.pid))


def _chosen_note(target: str, chosen: _Offer, offers: list[_Offer]) -> str:
    note = f"{chosen.shown} {chosen.where}"
    if len(offers) == 1:
        return note
    daemons = [o for o in offers if o.kind != "config"]
    if chosen.kind == "config":
        why = "opensips-cli's config comes before the running daemons"
    elif chosen.preferred:
        why = chosen.preferred
    else:
        why = "the lowest pid"
    count = f"{len(daemons)} {chosen.kind} instances" if len(daemons) > 1 else f"{len(offers)} candidates"
    return f"{note} — picked of {count} ({why}), choose another with {OPTION.get(target, '--config')}"


def _other_note(target: str, other: _Offer, chosen: _Offer) -> str:
    how = f", use it with {other.option_value}" if other.option_value else ""
    return f"{other.shown} {other.where} — not used, {chosen.who} picked{how}"


def _note_against_explicit(target: str, offers: list[_Offer], explicit: tuple[Any, str],
                           found: _Found) -> _Offer | None:
    """What discovery saw, next to the value the operator gave: which one it is, if any."""
    value, origin = explicit
    matching = [o for o in offers if _matches(o.values, value)]
    for offer in offers:
        if offer in matching:
            found.notes.append(f"{offer.shown} {offer.where} — the one given with {origin}")
        else:
            found.notes.append(f"{offer.shown} {offer.where} — another instance, {origin} {_fmt(value)} is used")
    if not matching and any(o.kind != "config" for o in offers):
        found.notes.append(f"no running daemon found for {_fmt(value)} given with {origin}")
    return matching[0] if matching else None


def _matches(values: dict[str, Any], value: Any) -> bool:
    wanted = _fmt(value)
    return any(_fmt(v) == wanted for v in values.values() if v is not None)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]}:{value[1]}"
    return without_userinfo(str(value)) if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- sources


def _scan_processes(found: _Found, proc_root: str | Path | None) -> list[Any]:
    try:
        from .processes import find_daemons
    except ImportError as exc:
        found.notes.append(f"process discovery unavailable: {exc}")
        return []
    daemons: list[Any] = []
    for name in ("rtpengine", "opensips"):
        try:
            daemons.extend(find_daemons(name, proc_root=None if proc_root is None else str(proc_root)))
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


def _named_by_opensips(address: tuple[str, int], opensips: list[Any]) -> str:
    """Why this relay is the one OpenSIPS uses: an rtpengine_sock of a running OpenSIPS names it."""
    from .processes import ng_address

    for proc in opensips:
        if proc.error or proc.suspect or not isinstance(proc.settings, dict):
            continue
        for sock in proc.settings.get("rtpengine_sock") or []:
            if ng_address(str(sock).split(":", 1)[1] if sock.startswith(("udp:", "udp6:")) else sock) == address:
                return f"OpenSIPS pid {proc.pid}'s rtpengine_sock names it"
    return ""


def _from_rtpengine(proc: Any, opensips: list[Any], found: _Found) -> None:
    from .processes import ng_address

    who = f"rtpengine pid {proc.pid}"
    if not _trusted(proc, who, found):
        return
    settings = proc.settings
    sources = settings.get("sources", {})
    if settings.get("config_error"):
        found.notes.append(f"{who}: {settings['config_error']}")
    preferred = ""
    for key, option in (("ng", "listen-ng"), ("cli", "listen-cli")):
        if option not in settings:
            continue
        address = ng_address(settings[option])
        where = f"({who} {_where(option, sources, settings)})"
        if address is None:
            found.notes.append(f"{key} not usable: {option}={settings[option]!r} {where}")
            continue
        if key == "ng":
            preferred = _named_by_opensips(address, opensips)
        shown = f"{address[0]}:{address[1]}"
        found.offer(key, _Offer({key: address}, f"{key} {shown}", where, who, "rtpengine", proc.pid,
                                preferred, f"{OPTION[key]} {shown}"))
    low, high = settings.get("port-min"), settings.get("port-max")
    if isinstance(low, int) or isinstance(high, int):
        low = low if isinstance(low, int) else 30000  # rtpengine's built-in defaults
        high = high if isinstance(high, int) else 40000
        found.offer("port_range", _Offer({"port_range": (low, high)}, f"media ports {low}-{high}",
                                         f"({who} --port-min/--port-max)", who, "rtpengine", proc.pid, preferred))


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
    fifo = settings.get("mi_fifo")
    preferred = f"its cfg is the system's {OPENSIPS_SYSTEM_CFG}" if cfg == OPENSIPS_SYSTEM_CFG else ""
    if mi_http.get("url"):
        url = mi_http["url"]
        values = {"mi_url": url, "mi_fifo": fifo} if fifo else {"mi_url": url}
        shown = f"mi_http {url}" + (f" + mi_fifo {fifo}" if fifo else "")
        found.offer("mi", _Offer(values, shown, f"({who} {cfg} httpd port/mi_http root)", who, "opensips",
                                 proc.pid, preferred, f"--mi-url {url}"))
    elif fifo:
        found.offer("mi", _Offer({"mi_fifo": fifo}, f"mi_fifo {fifo}", f"({who} {cfg} mi_fifo fifo_name)", who,
                                 "opensips", proc.pid, preferred, f"--mi-fifo {fifo}"))
    else:
        found.notes.append(f"{who}: {cfg} loads neither mi_http nor mi_fifo")


def _from_opensips_cli(home: str | Path | None, etc_paths: Iterable[str | Path] | None, found: _Found) -> None:
    """opensips-cli reads the first of ~/.opensips-cli.cfg, /etc/opensips-cli.cfg, /etc/opensips/opensips-cli.cfg."""
    import configparser  # only when discovery runs (#18)

    home_dir = Path(home) if home is not None else Path.home()
    etc = etc_paths if etc_paths is not None else OPENSIPS_CLI_ETC
    for path in [home_dir / ".opensips-cli.cfg", *(Path(p) for p in etc)]:
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
        who = f"opensips-cli config {path}"
        if kind == "http":
            url = section.get("url", OPENSIPS_CLI_DEFAULTS["url"]).strip()
            found.offer("mi", _Offer({"mi_url": url}, f"mi_http {without_userinfo(url)}", f"({who} url)", who,
                                     "config"))
        elif kind == "fifo":
            fifo = section.get("fifo_file", OPENSIPS_CLI_DEFAULTS["fifo_file"]).strip()
            found.offer("mi", _Offer({"mi_fifo": fifo}, f"mi_fifo {fifo}", f"({who} fifo_file)", who, "config"))
        else:
            found.notes.append(f"{who}: communication_type {kind!r} is not supported, ignored")
        return  # opensips-cli uses the first file it finds, so do we
