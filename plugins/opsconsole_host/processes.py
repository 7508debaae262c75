"""Find the rtpengine and OpenSIPS daemons and read their settings.

Only file reads under a proc root (procfs.iter_processes; psutil's exception types): no `ps`,
no `pgrep`, and tests read fixture trees instead of this machine.  A process counts when its
executable or argv[0] basename is exactly `rtpengine` / `opensips`; one that
merely has that name but is not the real binary (no marker strings in the
executable) and carries none of the daemon's options is reported with
`ProcessInfo.suspect` instead of being trusted.
"""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path
from typing import Any, Iterable

from console.errors import ConfigError
from console.model import ProcessInfo, replace

from . import procfs

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is a hard dependency
    psutil = None  # type: ignore[assignment]

RTPENGINE_DEFAULT_CONFIG = "/etc/rtpengine/rtpengine.conf"
RTPENGINE_DEFAULT_SECTION = "rtpengine"
OPENSIPS_DEFAULT_CONFIG = "/etc/opensips/opensips.cfg"
OPENSIPS_DEFAULT_FIFO = "/tmp/opensips_fifo"
HTTPD_DEFAULT_PORT = 8888
MI_HTTP_DEFAULT_ROOT = "mi"

# rtpengine short options that take a value (GOption; `rtpengine --help`).
RTPENGINE_SHORT = {
    "L": "log-level", "p": "pidfile", "t": "table", "i": "interface", "k": "subscribe-keyspace",
    "l": "listen-tcp", "u": "listen-udp", "n": "listen-ng", "N": "listen-tcp-ng", "c": "listen-cli",
    "g": "graphite", "G": "graphite-interval", "T": "tos", "o": "timeout", "s": "silent-timeout",
    "a": "final-timeout", "m": "port-min", "M": "port-max", "r": "redis", "w": "redis-write",
    "b": "b2b-url", "x": "xmlrpc-format", "d": "delete-delay",
}
RTPENGINE_SHORT_FLAGS = {
    "h": "help", "v": "version", "E": "log-stderr", "f": "foreground", "F": "no-fallback",
    "S": "save-interface-ports", "q": "no-redis-required", "y": "redis-delete-async",
}
# Long options that are flags; any other long option takes a value.
RTPENGINE_LONG_FLAGS = set(RTPENGINE_SHORT_FLAGS.values()) | {
    "split-logs", "no-log-timestamps", "log-mark-prefix", "log-mark-suffix", "active-switchover",
    "dtmf-log-ng-tcp", "dtmf-no-suppress", "sip-source", "dtls-passive", "codecs", "log-srtp-keys",
    "jb-clock-drift", "debug-srtp", "reject-invalid-sdp", "poller-per-thread", "redis-delete-async-interval",
    "dtmf-digit-delay",
}
RTPENGINE_INT_KEYS = ("table", "port-min", "port-max", "log-level", "delete-delay", "timeout")
# Options that only the real daemon has: any of them makes a process credible.
RTPENGINE_IDENTIFYING = {"listen-ng", "listen-cli", "listen-udp", "listen-tcp", "listen-tcp-ng", "interface",
                         "config-file", "table", "port-min", "port-max", "foreground", "pidfile"}

# OpenSIPS getopt short options that take a value.
OPENSIPS_VALUED = set("fmMblnNwtugPGWoaks")

# Strings every build of the binary contains (checked in the executable file).
BINARY_MARKERS = {
    "rtpengine": (b"listen-ng", b"rtpengine"),
    "opensips": (b"loadmodule", b"opensips"),
}

_marker_cache: dict[tuple[str, int, int, int], bool] = {}

# Neither ng nor the CLI tells RTPengine's version, and running a binary found in the process
# table (`rtpengine --version`) could run anything a local user named so.  The package
# database tells it without running anything, for the packages that install the daemons.
DPKG_ROOT = "/var/lib/dpkg"
DAEMON_PACKAGES = {
    "rtpengine": ("rtpengine-daemon", "ngcp-rtpengine-daemon", "rtpengine"),
    "opensips": ("opensips",),
}
_version_cache: dict[tuple[str, str, str, float], str] = {}


# --------------------------------------------------------------------------- rtpengine


def parse_rtpengine_args(argv: Iterable[str]) -> dict[str, Any]:
    """rtpengine command line -> {long-option: value}; `interface` is a list.

    Accepts `--opt=value`, `--opt value`, `-n value`, `-nvalue`; flags become
    True; positional arguments (rtpengine takes none) land in `args`.
    """
    args = list(argv)[1:]
    out: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and name not in RTPENGINE_LONG_FLAGS and i < len(args):
                value, i = args[i], i + 1
            elif not eq and name in RTPENGINE_LONG_FLAGS:
                value = True  # type: ignore[assignment]
            _store(out, name, value)
        elif arg.startswith("-") and len(arg) > 1:
            letter = arg[1]
            if letter in RTPENGINE_SHORT:
                value = arg[2:].lstrip("=") if len(arg) > 2 else (args[i] if i < len(args) else "")
                if len(arg) == 2:
                    i += 1
                _store(out, RTPENGINE_SHORT[letter], value)
            else:
                for flag in arg[1:]:  # bundled flags: -fE
                    _store(out, RTPENGINE_SHORT_FLAGS.get(flag, flag), True)
        else:
            positional.append(arg)
    if positional:
        out["args"] = positional
    return _normalize(out)


def _store(out: dict[str, Any], name: str, value: Any) -> None:
    if name == "interface":
        out.setdefault("interface", []).extend(_split_list(value))
    else:
        out[name] = value


def _split_list(value: Any) -> list[str]:
    return [v.strip() for v in str(value).split(";") if v.strip()]


def _normalize(settings: dict[str, Any]) -> dict[str, Any]:
    for key in RTPENGINE_INT_KEYS:
        value = settings.get(key)
        if isinstance(value, str):
            try:
                settings[key] = int(value.strip())
            except ValueError:
                pass  # keep the text: the check shows what the operator wrote
    return settings


def read_rtpengine_config(path: str | os.PathLike, section: str = RTPENGINE_DEFAULT_SECTION) -> dict[str, Any]:
    """Settings of one section of an rtpengine config file (GKeyFile/INI); ConfigError if unusable."""
    import configparser  # only for an rtpengine started with --config-file (not at every import, #18)

    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#",),
                                       inline_comment_prefixes=None, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        raise ConfigError(f"rtpengine config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"rtpengine config file not readable (permission denied): {path}",
                          hint="run as root or as the rtpengine user") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"rtpengine config file {path} has no [{section}] section "
                          f"(line {exc.lineno} comes before any section header)") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"rtpengine config file {path} is not valid INI: {first_line}") from None
    except (UnicodeError, OSError) as exc:
        raise ConfigError(f"cannot read rtpengine config file {path}: {exc}") from None
    if not parser.has_section(section):
        raise ConfigError(f"rtpengine config file {path} has no [{section}] section")
    out: dict[str, Any] = {}
    for key, value in parser.items(section):
        if key == "interface":
            out["interface"] = _split_list(value)
        else:
            out[key] = value.strip()
    return _normalize(out)


def rtpengine_settings(argv: Iterable[str], *, cwd: str | None = None) -> dict[str, Any]:
    """Command line merged over its config file (the command line wins, as in rtpengine)."""
    cmdline = parse_rtpengine_args(argv)
    config_file = cmdline.get("config-file", RTPENGINE_DEFAULT_CONFIG)
    section = cmdline.get("config-section", RTPENGINE_DEFAULT_SECTION)
    settings: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_note = ""
    if isinstance(config_file, str) and config_file != "none":
        path = config_file if os.path.isabs(config_file) or not cwd else os.path.join(cwd, config_file)
        try:
            settings.update(read_rtpengine_config(path, str(section)))
            sources.update(dict.fromkeys(settings, "config"))
        except ConfigError as exc:
            # A missing default file is normal; a missing explicit one is worth showing.
            if "config-file" in cmdline or "not found" not in exc.message:
                config_note = str(exc)
    settings.update({k: v for k, v in cmdline.items() if k != "interface"})
    if "interface" in cmdline:
        settings["interface"] = cmdline["interface"]  # the command line replaces, not extends
    sources.update(dict.fromkeys(cmdline, "cmdline"))
    settings["config_file"] = None if config_file == "none" else config_file
    settings["config_section"] = section
    settings["sources"] = sources
    if config_note:
        settings["config_error"] = config_note
    return settings


def ng_address(value: Any) -> tuple[str, int] | None:
    """'[IP46|HOSTNAME:]PORT' -> (host, port) usable from this box; None if unparsable.

    A bare port or a wildcard address listens on every interface, so
    loopback reaches it; `localhost` is pinned to 127.0.0.1.
    """
    if value is None or value is True:
        return None
    text = str(value).strip().split(";")[0].strip()
    for prefix in ("udp:", "tcp:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    host = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif text.count(":") > 1:
        return None  # bare IPv6 without brackets is ambiguous
    else:
        port_text = text
    if not port_text.isdecimal() or not 0 < int(port_text) < 65536:
        return None
    if host in ("", "*", "0.0.0.0", "::", "any", "localhost"):
        host = "127.0.0.1"
    return host, int(port_text)


# --------------------------------------------------------------------------- OpenSIPS


def parse_opensips_args(argv: Iterable[str]) -> dict[str, Any]:
    """OpenSIPS getopt command line -> {"config-file": ..., "pidfile": ..., "flags": [...]}."""
    args = list(argv)[1:]
    out: dict[str, Any] = {"config-file": OPENSIPS_DEFAULT_CONFIG, "config_file_default": True}
    flags: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-" or arg.startswith("--"):
            continue
        for pos, letter in enumerate(arg[1:], start=2):
            if letter in OPENSIPS_VALUED:
                value = arg[pos:]
                if not value and i < len(args):
                    value, i = args[i], i + 1
                if letter == "f":
                    out["config-file"] = value
                    out["config_file_default"] = False
                elif letter == "P":
                    out["pidfile"] = value
                else:
                    out[f"-{letter}"] = value
                break
            flags.append(letter)
    out["flags"] = flags
    return out


_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SOCKET = re.compile(r"^\s*(?:socket|listen)\s*=\s*(\S+)", re.M)
_LOADMODULE = re.compile(r"""^\s*loadmodule\s+["']([^"']+)["']""", re.M)
_MPATH = re.compile(r"""^\s*mpath\s*=\s*["']([^"']*)["']""", re.M)
_INCLUDE = re.compile(r"""^\s*(?:include_file|import_file)\s+["']([^"']+)["']""", re.M)
_MODPARAM = re.compile(
    r"""modparam\s*\(\s*["']([^"']+)["']\s*,\s*["']([^"']+)["']\s*,\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\s*\)"""
)


def _strip_comments(text: str) -> str:
    """Drop /* */ blocks and `#` to end of line, but not a `#` inside a quoted string."""
    text = _BLOCK_COMMENT.sub(" ", text)
    lines = []
    for line in text.splitlines():
        quote = ""
        for pos, char in enumerate(line):
            if quote:
                quote = "" if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char == "#":
                line = line[:pos]
                break
        lines.append(line)
    return "\n".join(lines)


def read_opensips_cfg(path: str | os.PathLike, *, _depth: int = 0) -> dict[str, Any]:
    """What opsconsole needs from opensips.cfg: sockets, modules, rtpengine sockets, MI endpoints.

    Follows include_file/import_file (relative to the including file). ConfigError if unreadable.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"OpenSIPS config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"OpenSIPS config file not readable (permission denied): {path}",
                          hint="run as root or as the opensips user") from None
    except OSError as exc:
        raise ConfigError(f"cannot read OpenSIPS config file {path}: {exc.strerror or exc}") from None
    text = _strip_comments(text)
    sockets = _SOCKET.findall(text)
    modules = [Path(m).name.removesuffix(".so") for m in _LOADMODULE.findall(text)]
    modparams: dict[str, dict[str, list[str]]] = {}
    for match in _MODPARAM.finditer(text):
        module, param = match.group(1), match.group(2)
        value = next(g for g in match.groups()[2:] if g is not None)
        modparams.setdefault(module, {}).setdefault(param, []).append(value)
    errors: list[str] = []
    for include in _INCLUDE.findall(text):
        if _depth >= 5:
            errors.append(f"include depth limit reached at {include}")
            break
        target = include if os.path.isabs(include) else os.path.join(os.path.dirname(path), include)
        try:
            nested = read_opensips_cfg(target, _depth=_depth + 1)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        sockets += nested["sockets"]
        modules += nested["modules"]
        for module, params in nested["modparams"].items():
            for param, values in params.items():
                modparams.setdefault(module, {}).setdefault(param, []).extend(values)
        errors += nested["errors"]
    mpath = _MPATH.findall(text)
    return {
        "config_file": str(path),
        "sockets": sockets,
        "modules": modules,
        "mpath": mpath[-1] if mpath else "",
        "modparams": modparams,
        "rtpengine_sock": _rtpengine_socks(modparams),
        "mi_http": _mi_http(modules, modparams),
        "mi_fifo": _last(modparams, "mi_fifo", "fifo_name", OPENSIPS_DEFAULT_FIFO) if "mi_fifo" in modules else None,
        "errors": errors,
    }


def _last(modparams: dict[str, dict[str, list[str]]], module: str, param: str, default: Any) -> Any:
    values = modparams.get(module, {}).get(param)
    return values[-1] if values else default


def _rtpengine_socks(modparams: dict[str, dict[str, list[str]]]) -> list[str]:
    """`rtpengine_sock` values, split into single URLs (a value may hold several, space-separated,
    optionally prefixed by a set id `1 == udp:...`)."""
    socks: list[str] = []
    for value in modparams.get("rtpengine", {}).get("rtpengine_sock", []):
        for part in value.split():
            if ":" in part and "==" not in part:
                socks.append(part.split("=")[0])
    return socks


def _mi_http(modules: list[str], modparams: dict[str, dict[str, list[str]]]) -> dict[str, Any] | None:
    if "mi_http" not in modules:
        return None
    ip = _last(modparams, "httpd", "ip", "")
    port_text = str(_last(modparams, "httpd", "port", HTTPD_DEFAULT_PORT))
    root = str(_last(modparams, "mi_http", "root", MI_HTTP_DEFAULT_ROOT)).strip("/")
    port = int(port_text) if port_text.isdecimal() else None
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "*", "::") else ip
    shown = f"[{host}]" if ":" in host else host
    return {
        "ip": ip,
        "port": port,
        "root": root,
        "url": f"http://{shown}:{port}/{root}" if port else None,
    }


def opensips_settings(argv: Iterable[str], *, cwd: str | None = None) -> dict[str, Any]:
    """OpenSIPS command line plus what its cfg file says (errors land in `config_error`)."""
    settings = parse_opensips_args(argv)
    path = settings["config-file"]
    if cwd and not os.path.isabs(path):
        path = os.path.join(cwd, path)
    try:
        settings.update(read_opensips_cfg(path))
    except ConfigError as exc:
        settings["config_error"] = str(exc)
    return settings


# --------------------------------------------------------------------------- processes


def _basename(path: str) -> str:
    return os.path.basename(path.removesuffix(" (deleted)"))


def binary_has_markers(exe: str, daemon: str) -> bool | None:
    """Whether the executable file carries the daemon's marker strings; None if unreadable."""
    path = exe.removesuffix(" (deleted)")
    try:
        st = os.stat(path)
        key = (path, st.st_ino, int(st.st_mtime), st.st_size)
        if key in _marker_cache:
            return _marker_cache[key]
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = all(data.find(marker) >= 0 for marker in BINARY_MARKERS[daemon])
    except (OSError, ValueError):
        return None
    _marker_cache[key] = found
    return found


def package_version(exe: str, daemon: str, dpkg_root: str = DPKG_ROOT) -> str:
    """Version of the Debian package that installed `exe` ("" when none of the daemon's
    packages lists that file, or there is no dpkg)."""
    path = exe.removesuffix(" (deleted)")
    status = os.path.join(dpkg_root, "status")
    try:
        key = (path, daemon, dpkg_root, os.stat(status).st_mtime)
    except OSError:
        return ""
    if key not in _version_cache:
        _version_cache[key] = _owning_package_version(path, daemon, dpkg_root, status)
    return _version_cache[key]


def _owning_package_version(path: str, daemon: str, dpkg_root: str, status: str) -> str:
    for package in DAEMON_PACKAGES.get(daemon, ()):
        try:
            listed = Path(dpkg_root, "info", f"{package}.list").read_text(errors="replace").splitlines()
        except OSError:
            continue
        if path in listed:
            return _status_version(status, package)
    return ""


def _status_version(status: str, package: str) -> str:
    """The Version field of `package`'s paragraph in dpkg's status file, if it is installed."""
    try:
        text = "\n" + Path(status).read_text(errors="replace")
    except OSError:
        return ""
    start = text.find(f"\nPackage: {package}\n")
    if start < 0:
        return ""
    end = text.find("\n\n", start + 1)
    fields = dict(line.split(": ", 1) for line in text[start + 1:end if end >= 0 else None].splitlines()
                  if ": " in line and line[:1] != " ")
    return fields.get("Version", "") if fields.get("Status", "").endswith(" installed") else ""


def suspect_reason(daemon: str, exe: str, settings: dict[str, Any]) -> str:
    """Why a process named like the daemon is probably not it; "" when credible."""
    if daemon == "rtpengine":
        sources = settings.get("sources", {})
        has_options = any(sources.get(key) == "cmdline" for key in RTPENGINE_IDENTIFYING)
        stray_args = bool(settings.get("args"))
    else:
        has_options = not settings.get("config_file_default", True) or bool(settings.get("flags"))
        stray_args = False
    real_binary = binary_has_markers(exe, daemon) if exe else None
    if real_binary is True and not stray_args:
        return ""
    if real_binary is None and not stray_args:
        return ""  # executable unreadable (not root): nothing says it is fake
    if real_binary is False and not has_options:
        return f"named {daemon} but {exe} is not a {daemon} binary and has none of its options"
    if real_binary is False:
        return f"named {daemon} but {exe} is not a {daemon} binary"
    return f"named {daemon} but takes arguments {daemon} does not: {' '.join(settings['args'])}"


def find_daemons(daemon: str, *, process_iter=None, proc_root: str | None = None) -> tuple[ProcessInfo, ...]:
    """Every `daemon` process (rtpengine/opensips); OpenSIPS children are folded into their main process.

    Read from `proc_root` (None: the host's, procfs.HOST_PROC_ROOT) unless `process_iter` gives the
    processes (psutil-like objects)."""
    if psutil is None:  # pragma: no cover
        return ()
    iterate = process_iter or (lambda: procfs.iter_processes(proc_root))
    found: list[ProcessInfo] = []
    pids: dict[int, int] = {}  # pid -> ppid, to fold OpenSIPS workers
    # OpenSIPS forks its workers with its own command line and directory: their config file is the
    # instance's, read (and stripped of comments) once per instance, not once per process (#18)
    settings_of: dict[tuple[tuple[str, ...], str | None], dict[str, Any]] = {}
    for proc in iterate():
        try:
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            continue
        if name != daemon:
            continue  # comm first (cheap); exe/argv[0] basename checked in _read_process
        info = _read_process(proc, daemon, settings_of)
        if info is not None:
            found.append(info)
            pids[info.pid] = info.settings.get("ppid", 0)
    if daemon == "opensips":
        found = _fold_children(found, pids)
    return tuple(found)


def _read_process(proc, daemon: str, settings_of: dict | None = None) -> ProcessInfo | None:
    """ProcessInfo for one candidate, or None when it is not `daemon` after all / vanished."""
    pid = proc.pid
    try:
        cmdline = tuple(proc.cmdline())
        exe = _safe(proc.exe, "")
        if _basename(exe) != daemon and not (cmdline and _basename(cmdline[0]) == daemon):
            return None
        user = _safe(proc.username, "")
        ppid = _safe(proc.ppid, 0)
        cwd = _safe(proc.cwd, None)
    except psutil.NoSuchProcess:
        return None  # exited between listing and reading: nothing to report
    except psutil.AccessDenied as exc:
        return ProcessInfo(pid=pid, name=daemon, error=f"access denied reading pid {pid}: run as root ({exc.msg or 'EPERM'})")
    if not cmdline:
        return ProcessInfo(pid=pid, name=daemon, user=user, error=f"pid {pid} has no command line (zombie or kernel thread)")
    reader = rtpengine_settings if daemon == "rtpengine" else opensips_settings
    settings_of = {} if settings_of is None else settings_of
    if (cmdline, cwd) not in settings_of:
        settings_of[cmdline, cwd] = reader(cmdline, cwd=cwd)
    settings = dict(settings_of[cmdline, cwd])  # each process adds its own exe, ppid, version
    settings["exe"] = exe
    settings["ppid"] = ppid
    settings["version"] = package_version(exe, daemon) if exe else ""
    if daemon == "rtpengine":  # "host:port" as a console would reach it, to tell which relay this is
        address = ng_address(settings.get("listen-ng"))
        settings["ng_address"] = f"{address[0]}:{address[1]}" if address else ""
    suspect = suspect_reason(daemon, exe, settings)
    return ProcessInfo(pid=pid, name=daemon, cmdline=cmdline, user=user, settings=settings, suspect=suspect)


def _safe(getter, default):
    """One attribute that may be denied without making the whole process unreadable."""
    try:
        return getter()
    except psutil.AccessDenied:
        return default


def _fold_children(found: list[ProcessInfo], pids: dict[int, int]) -> list[ProcessInfo]:
    """OpenSIPS forks workers with the same command line: keep the main processes, count workers."""
    mains = [p for p in found if pids.get(p.pid) not in pids]
    out = []
    for main in mains:
        children = sum(1 for p in found if _root(p.pid, pids) == main.pid and p.pid != main.pid)
        out.append(replace(main, settings=dict(main.settings, workers=children)))
    return out


def _root(pid: int, pids: dict[int, int]) -> int:
    seen = set()
    while pids.get(pid) in pids and pid not in seen:
        seen.add(pid)
        pid = pids[pid]
    return pid
