"""Configuration: TOML file + environment + command line, then discovery.

Precedence (highest first): command-line options, environment
(OPSCONSOLE_*), the TOML file (--config, ~/.config/opsconsole/config.toml,
/etc/opsconsole/config.toml), discovery (opensips-cli config, the running
rtpengine/opensips command lines), built-in defaults.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError

DEFAULT_MI_URL = "http://127.0.0.1:8888/mi"
DEFAULT_NG = ("127.0.0.1", 2223)  # Debian's rtpengine.conf listen-ng
DEFAULT_CLI = ("127.0.0.1", 9900)  # rtpengine-ctl's default

CONFIG_PATHS = (
    Path("~/.config/opsconsole/config.toml"),
    Path("/etc/opsconsole/config.toml"),
)

HostPort = tuple[str, int]


@dataclass(frozen=True)
class Thresholds:
    load_warn: float = 20.0
    load_fail: float = 40.0
    shm_warn: float = 70.0
    shm_fail: float = 85.0
    ports_warn: float = 80.0
    ports_fail: float = 95.0
    zombie_age_s: int = 300  # media session without dialog older than this
    dmesg_window_s: int = 3600
    # call quality (calls.* checks, the calls' quality state): average MOS below mos_poor is "poor";
    # a direction with no RTP for more than silent_after_s (after the answer) is silent
    mos_poor: float = 3.5
    silent_after_s: float = 10.0
    poor_calls_warn: int = 1  # calls.quality: this many poor calls warn ...
    poor_calls_fail: int = 5  # ... and this many fail
    # opensips.sip_failures: share (%) of 5xx + 6xx among the final replies of the window
    sip_failure_warn: float = 5.0
    sip_failure_fail: float = 20.0
    sip_min_replies: int = 20  # fewer final replies in the window: too little traffic to judge a share
    sip_window_s: float = 60.0  # the window a long-running console judges (two counter samples this far apart)
    # one-shot commands: the second sample at least this long after the first (0: right after the rest
    # of the collection, no wait; 0.25 s cost diagnose ~220 ms measured, for a window few platforms fill)
    sip_sample_s: float = 0.0


@dataclass(frozen=True)
class Config:
    mi_url: str | None = DEFAULT_MI_URL
    mi_fifo: str | None = None
    mi_reply_dir: str = "/tmp"
    mi_user: str | None = None
    mi_password: str | None = field(default=None, repr=False)
    ng: HostPort | None = DEFAULT_NG
    cli: HostPort | None = DEFAULT_CLI
    timeout: float = 2.0
    interval: float = 2.0
    heavy_interval: float = 30.0
    allow_write: bool = False
    full_sync_max: int = 10_000
    events: bool = True  # live mode may subscribe to OpenSIPS events (transient, loopback); False: poll
    trace: bool = True  # `opsconsole trace` may start a dynamic OpenSIPS trace (transient, audited); False: refused
    opensips_version: str | None = None  # force "3.4" / "4.0"; None: detect
    thresholds: Thresholds = field(default_factory=Thresholds)
    proc_root: str = "/proc"
    audit_log: str = "~/.local/state/opsconsole/audit.log"
    config_file: str | None = None
    discovery: tuple[str, ...] = ()  # human-readable: what was found where
    name: str = ""  # node name shown in the header
    demo: bool = False  # the target is the embedded simulated platform (no real OpenSIPS process)
    demo_simulated_relay: bool = False  # ... and its RTPengine is simulated too (no daemon to find)
    # The TOML sections plugins own (console.plugins.ConfigSection), as validated: name -> values
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # [[targets]] of the config file (console.targets.TargetSpec), in file order; () = one unnamed target
    # from the flat settings.  A target's own Config (console.fleet.config_for) has these instead:
    labels: Mapping[str, str] = field(default_factory=dict)  # the target's free labels (site, role, ...)
    relays_ng: tuple[HostPort, ...] = ()  # every RTPengine ng address of the target (ng is the first)
    relays_cli: tuple[HostPort, ...] = ()
    targets: tuple[Any, ...] = ()

    def section(self, name: str) -> Mapping[str, Any]:
        """A plugin's own section of the config file ({} when absent)."""
        return self.sections.get(name, {})

    @property
    def mi_target(self) -> str:
        """Where MI goes, for messages, logs and the audit: never with user:password@."""
        target = self.mi_fifo if self.mi_fifo and not self.mi_url else (self.mi_url or self.mi_fifo or "")
        return without_userinfo(target)

    def redacted(self) -> dict[str, Any]:
        """A printable view: secrets never leave the process."""
        out = {
            "mi_url": without_userinfo(self.mi_url) if self.mi_url else self.mi_url,
            "mi_fifo": self.mi_fifo,
            "mi_user": self.mi_user,
            "mi_password": "***" if self.mi_password else None,
            "ng": _fmt_hostport(self.ng),
            "cli": _fmt_hostport(self.cli),
            "timeout": self.timeout,
            "config_file": self.config_file,
        }
        return out


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) or localhost: traffic that never leaves this box."""
    import ipaddress

    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def security_warnings(config: "Config") -> list[str]:
    """Things an operator should know before trusting the link (printed, never fatal)."""
    from urllib.parse import urlsplit

    warnings: list[str] = []
    if config.mi_url:
        parts = urlsplit(config.mi_url)
        host = parts.hostname or ""
        if parts.scheme == "http" and not is_loopback(host):
            warnings.append(
                f"MI is plain HTTP to a non-loopback address ({host}): anyone on the path can read it"
                + (" and the MI password" if config.mi_password else "")
                + " — use an ssh tunnel or keep mi_http on 127.0.0.1"
            )
    return warnings


from .redact import without_userinfo  # noqa: E402,F401  (the one URL redactor; discovery imports it from here)


def check_mi_url(url: str, where: str) -> None:
    """An mi_http URL must be http(s)://HOST[:PORT]/PATH; anything else would only fail later as a
    'connection' problem (and `diagnose` would report CRITICAL for what is a typo)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: expected an http:// or https:// URL like {DEFAULT_MI_URL}, got {url!r}",
                          hint="for a FIFO use --mi-fifo / [opensips] mi_fifo")


def _fmt_hostport(hp: HostPort | None) -> str | None:
    return f"{hp[0]}:{hp[1]}" if hp else None


def parse_hostport(text: str, *, option: str = "address") -> HostPort:
    """'127.0.0.1:2223', 'localhost:2223', '[::1]:2223', 'udp:127.0.0.1:2223' -> (host, port)."""
    value = text.strip()
    for prefix in ("udp:", "tcp:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ConfigError(f"{option}: expected HOST:PORT, got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{option}: port must be a number in {text!r}") from None
    if not 0 < port < 65536 or not host:
        raise ConfigError(f"{option}: invalid HOST:PORT {text!r}")
    return host, port


def _check_secret_file_mode(path: Path, data: Mapping[str, Any]) -> None:
    """Refuse a config holding a secret that others can read, as ssh does."""
    osips = data.get("opensips") if isinstance(data.get("opensips"), dict) else {}  # the layout is checked later
    has_secret = any(k in osips for k in ("password", "mi_password")) or "mi_password" in data
    url = osips.get("mi_url")
    has_secret = has_secret or (isinstance(url, str) and without_userinfo(url) != url)  # user:pass@ in the URL
    if not has_secret:
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path} holds an MI password but is readable by others (mode {stat.S_IMODE(mode):o})",
            hint=f"run: chmod 600 {path}",
        )


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable (permission denied): {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    _check_secret_file_mode(path, data)
    return data


# Setting -> (accepted types, what to tell the operator).  TOML gives any type; catch it here,
# not as a TypeError deep inside a collection.
_TEXT, _NUMBER = (str,), (int, float)
_SETTING_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "mi_url": (_TEXT, "a URL string"), "mi_fifo": (_TEXT, "a path string"),
    "mi_reply_dir": (_TEXT, "a directory string"), "mi_user": (_TEXT, "a string"),
    "mi_password": (_TEXT, "a string"), "opensips_version": (_TEXT, 'a string like "3.4"'),
    "audit_log": (_TEXT, "a path string"), "name": (_TEXT, "a string"),
    "timeout": (_NUMBER, "a positive number of seconds"), "interval": (_NUMBER, "a positive number of seconds"),
    "heavy_interval": (_NUMBER, "a positive number of seconds"), "full_sync_max": ((int,), "a whole number"),
    "events": ((bool,), "true or false"), "trace": ((bool,), "true or false"),
}


def _check_types(values: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the setting when a value has the wrong type (or is not positive)."""
    for key, value in values.items():
        if value is None or key not in _SETTING_TYPES:
            continue
        types, wanted = _SETTING_TYPES[key]
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong or (_NUMBER == types and value <= 0):
            raise ConfigError(f"setting {key} must be {wanted}, got {value!r}")
    for name, value in vars(values.get("thresholds") or Thresholds()).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"[thresholds] {name} must be a number, got {value!r}")


# The TOML layout: section -> {key: Config field}.  Validation and mapping read the same table,
# so a key cannot be accepted without being used.
TOML_LAYOUT: dict[str, dict[str, str]] = {
    "opensips": {"mi_url": "mi_url", "mi_fifo": "mi_fifo", "user": "mi_user", "password": "mi_password",
                 "version": "opensips_version", "full_sync_max": "full_sync_max", "mi_reply_dir": "mi_reply_dir",
                 "events": "events", "trace": "trace"},
    "rtpengine": {"ng": "ng", "cli": "cli"},
    "console": {"timeout": "timeout", "interval": "interval", "heavy_interval": "heavy_interval", "name": "name",
                "audit_log": "audit_log"},
    "thresholds": {name: name for name in Thresholds.__dataclass_fields__},
    "trace": {"enabled": "trace"},  # the console's `T` and `opsconsole trace` (same switch as [opensips] trace)
}
# Each warn level must stay below its fail level, or a check would skip WARN (or never FAIL).
THRESHOLD_PAIRS = (("load_warn", "load_fail"), ("shm_warn", "shm_fail"), ("ports_warn", "ports_fail"),
                   ("poor_calls_warn", "poor_calls_fail"), ("sip_failure_warn", "sip_failure_fail"))
# Thresholds that are a length of time, a count or a share: zero or less would make a check
# fire on everything (or never); a share above 100 % never fires.
POSITIVE_THRESHOLDS = ("mos_poor", "silent_after_s", "poor_calls_warn", "sip_min_replies", "sip_window_s")
MOS_RANGE = (1.0, 5.0)


def _did_you_mean(word: str, choices, labels: Mapping[str, str] | None = None) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" — did you mean {(labels or {}).get(close[0], close[0])}?"


def _check_layout(data: Mapping[str, Any], plugin_sections: Mapping[str, Any]) -> None:
    """Refuse unknown sections and keys: a misspelt setting silently ignored is a 3 a.m. surprise."""
    sections = set(TOML_LAYOUT) | set(plugin_sections)
    for name, body in data.items():
        if name in plugin_sections:
            _check_plugin_section(name, body, plugin_sections[name])
            continue
        if name not in TOML_LAYOUT:
            owner = [f"[{section}] {name}" for section, keys in TOML_LAYOUT.items() if name in keys]
            if owner:
                raise ConfigError(f"setting {name} outside a section — did you mean {owner[0]}?")
            raise ConfigError(f"unknown section [{name}]" + _did_you_mean(name, sections, {s: f"[{s}]" for s in sections}),
                              hint=f"known sections: {', '.join(f'[{s}]' for s in sorted(sections))}")
        if not isinstance(body, dict):
            raise ConfigError(f"[{name}] must be a table (a section), got {body!r}")
        for key in body:
            if key in TOML_LAYOUT[name]:
                continue
            elsewhere = [s for s, keys in TOML_LAYOUT.items() if key in keys and s != name]
            hint = f" — did you mean [{elsewhere[0]}] {key}?" if elsewhere else _did_you_mean(key, TOML_LAYOUT[name])
            raise ConfigError(f"unknown setting [{name}] {key}{hint}",
                              hint=f"[{name}] takes: {', '.join(sorted(TOML_LAYOUT[name]))}")


def _check_plugin_section(name: str, body: Any, declared: Any) -> None:
    """A plugin's section: a table, only the keys it declares (when it declares any), then its own
    validator.  `declared` is a console.plugins.ConfigSection (or None: any keys)."""
    if not isinstance(body, dict):
        raise ConfigError(f"[{name}] must be a table (a section), got {body!r}")
    keys = getattr(declared, "keys", None) or {}
    for key in body:
        if keys and key not in keys:
            raise ConfigError(f"unknown setting [{name}] {key}" + _did_you_mean(key, keys),
                              hint=f"[{name}] takes: {', '.join(sorted(keys))}")
    validate = getattr(declared, "validate", None)
    if validate is not None:
        validate(body)


def check_thresholds(thresholds: Thresholds) -> None:
    for name in POSITIVE_THRESHOLDS:
        if getattr(thresholds, name) <= 0:
            raise ConfigError(f"[thresholds] {name} = {getattr(thresholds, name)} must be above 0")
    if thresholds.sip_sample_s < 0:
        raise ConfigError(f"[thresholds] sip_sample_s = {thresholds.sip_sample_s} must not be negative")
    low, high = MOS_RANGE
    if not low <= thresholds.mos_poor <= high:
        raise ConfigError(f"[thresholds] mos_poor = {thresholds.mos_poor} is not a MOS",
                          hint=f"MOS runs from {low:g} (bad) to {high:g} (excellent); 3.5 is a common line")
    if thresholds.sip_failure_fail > 100:
        raise ConfigError(f"[thresholds] sip_failure_fail = {thresholds.sip_failure_fail} is a share above 100 %")
    for warn, fail in THRESHOLD_PAIRS:
        low, high = getattr(thresholds, warn), getattr(thresholds, fail)
        if low >= high:
            raise ConfigError(f"[thresholds] {warn} = {low} must be below {fail} = {high}",
                              hint="a check warns from the warn level and fails from the fail level")


def _from_toml(data: Mapping[str, Any], plugin_sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Map the TOML layout (TOML_LAYOUT) to Config fields; unknown sections and keys are refused.
    Sections that plugins own go to `sections`, each as its plugin validated it."""
    plugin_sections = plugin_sections or {}
    out: dict[str, Any] = {}
    if "targets" in data:  # [[targets]]: an array of tables, validated on its own (console.targets)
        from .targets import parse_targets

        out["targets"] = parse_targets(data["targets"], check_mi_url=check_mi_url, parse_hostport=parse_hostport)
        flat = [f"[{section}] {key}" for section, keys in (("opensips", ("mi_url", "mi_fifo")), ("rtpengine", ("ng", "cli")))
                for key in keys if isinstance(data.get(section), dict) and key in data[section]]
        if flat:
            raise ConfigError(f"{', '.join(flat)} and [[targets]]: with targets, each node's addresses go in its "
                              "[[targets]] block", hint="move them into a [[targets]] block with a name")
        data = {name: body for name, body in data.items() if name != "targets"}
    for name, body in data.items():
        if isinstance(body, list) and name not in plugin_sections:  # [[target]], [[nodes]]: arrays of tables
            raise ConfigError(f"unknown section [[{name}]]" + _did_you_mean(name, ["targets"], {"targets": "[[targets]]"}),
                              hint="nodes are declared as [[targets]] blocks")
    _check_layout(data, plugin_sections)
    owned = {name: dict(body) for name, body in data.items() if name in plugin_sections}
    if owned:
        out["sections"] = owned
    for section in ("opensips", "console", "trace"):
        for key, target in TOML_LAYOUT[section].items():
            if key in data.get(section, {}):
                out[target] = data[section][key]
    rtp = data.get("rtpengine", {})
    for key in ("ng", "cli"):
        if key in rtp:
            out[key] = parse_hostport(str(rtp[key]), option=f"[rtpengine] {key}")
    if "thresholds" in data:
        out["thresholds"] = replace(Thresholds(), **data["thresholds"])
    return out


ENV_MAP = {
    "OPSCONSOLE_MI_URL": "mi_url",
    "OPSCONSOLE_MI_FIFO": "mi_fifo",
    "OPSCONSOLE_MI_USER": "mi_user",
    "OPSCONSOLE_MI_PASSWORD": "mi_password",
    "OPSCONSOLE_NG": "ng",
    "OPSCONSOLE_CLI": "cli",
    "OPSCONSOLE_TIMEOUT": "timeout",
}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, key in ENV_MAP.items():
        if var not in env or env[var] == "":
            continue
        value: Any = env[var]
        if key in ("ng", "cli"):
            value = parse_hostport(value, option=var)
        elif key == "timeout":
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{var} must be a number of seconds, got {value!r}") from None
        out[key] = value
    return out


def _discoverers() -> list[Any]:
    from .plugins import load_plugins  # entry points: the core names no plugin

    return load_plugins().discoverers()


def _adopt(values: dict[str, Any], taken: set[str], found: Any) -> None:
    """Take from a discoverer's findings what is neither set explicitly nor found by an earlier
    discoverer (`taken` holds both, and grows)."""
    if not taken & {"mi_url", "mi_fifo"}:
        if found.mi_url:
            values["mi_url"] = found.mi_url
            taken.add("mi_url")
        elif found.mi_fifo:
            values["mi_fifo"], values["mi_url"] = found.mi_fifo, None
            taken.add("mi_fifo")
    for key in ("ng", "cli"):
        if key not in taken and getattr(found, key):
            values[key] = getattr(found, key)
            taken.add(key)


def load_config(
    cli_overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    discover: bool = True,
    plugin_sections: Iterable[str] | Mapping[str, Any] = (),
    discovery_roots: Mapping[str, Any] | None = None,
    discoverers: Iterable[Any] | None = None,
) -> Config:
    """Build the effective Config.  Raises ConfigError with a readable message.

    `plugin_sections`: TOML sections that loaded plugins own: name -> console.plugins.ConfigSection
    (its keys and validator), or bare names (any keys).
    `discoverers`: the plugins' `discover` hooks (None: those of the installed plugins), each called
    with `given` (what was set explicitly, and where) and `discovery_roots` (home, etc_paths,
    proc_root, processes: tests pass fixture trees); a value one of them found is not replaced."""
    env = os.environ if env is None else env
    owned = dict(plugin_sections) if isinstance(plugin_sections, Mapping) else dict.fromkeys(plugin_sections)
    overrides = {k: v for k, v in (cli_overrides or {}).items() if v is not None}
    values: dict[str, Any] = {}
    notes: list[str] = []

    path: Path | None = None
    if config_file:
        path = Path(config_file).expanduser()
        values.update(_from_toml(read_toml(path), owned))
    else:
        for candidate in CONFIG_PATHS:
            candidate = candidate.expanduser()
            if candidate.is_file():
                path = candidate
                values.update(_from_toml(read_toml(candidate), owned))
                break
    if path:
        notes.append(f"config file: {path}")

    origins = dict.fromkeys(values, f"config file {path}")  # where each explicit value came from
    env_values = _from_env(env)
    origins.update({key: var for var, key in ENV_MAP.items() if key in env_values})
    origins.update({key: "--" + key.replace("_", "-") for key in overrides})
    values.update(env_values)
    values.update(overrides)

    # Discovery fills only what nobody set explicitly.
    explicit = set(values)
    # [[targets]] name every node: nothing to discover for them (an address given on the command line or in
    # the environment is one unnamed target instead: console.fleet.targets_from)
    named = bool(values.get("targets")) and not explicit & {"mi_url", "mi_fifo", "ng", "cli"}
    if discover and not named and not ({"mi_url", "mi_fifo"} <= explicit and {"ng", "cli"} <= explicit):
        given = {key: (values[key], origins[key]) for key in ("mi_url", "mi_fifo", "ng", "cli") if key in values}
        for run_discovery in _discoverers() if discoverers is None else discoverers:
            try:
                found = run_discovery(given=given, **(discovery_roots or {}))
            except Exception as exc:  # discovery is best effort, never fatal
                notes.append(f"discovery failed: {type(exc).__name__}: {exc}")
                continue
            notes.extend(found.notes)
            _adopt(values, explicit, found)  # explicit grows with what is found
    if "mi_fifo" in overrides and "mi_url" not in overrides:
        values["mi_url"] = None  # --mi-fifo alone means: talk over the FIFO

    values["discovery"] = tuple(notes)
    values["config_file"] = str(path) if path else None
    _check_types(values)
    if values.get("mi_url"):
        check_mi_url(values["mi_url"], "setting mi_url")
    check_thresholds(values.get("thresholds") or Thresholds())
    try:
        return Config(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
