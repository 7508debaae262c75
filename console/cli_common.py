"""What every command of the command line shares: the exit-code table, the errors that choose an
exit code, loading the plugins, the config and the service, the embedded platform, messages.
(console/cli.py builds the parser and runs the commands; console/cli_trace.py is `trace`.)"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, OpsError

TARGET_OPTIONS = ("mi_url", "mi_fifo", "ng", "cli", "timeout")
COMMAND_NAMES = ("snapshot", "diagnose", "mi", "trace", "exporter")
# A whole-table MI read estimated to hold OpenSIPS MI (one request at a time) longer than this is
# refused without --force.
HEAVY_HOLD_LIMIT_S = 3.0

# The exit codes, one table for every command (None: the interactive console).  README "Exit codes"
# is this table; tests/test_cli_exit_codes.py walks every cell.  In `diagnose` (Nagios) and `mi`,
# 2 already means something, so a refused command line exits 3 there.
EXIT: dict[str, dict[str | None, int]] = {
    # trace: ended by --duration, SIGTERM or SIGHUP, and its trace stopped
    # exporter: stopped by SIGTERM or SIGINT
    "ok": {None: 0, "snapshot": 0, "diagnose": 0, "mi": 0, "trace": 0, "exporter": 0},
    # snapshot: a source failed (the rest is printed); mi: MI error, write/whole-table read refused or declined;
    # trace: OpenSIPS cannot trace (what to add is on stderr), refused it, or the trace could not be stopped
    # exporter: cannot listen on the --listen address
    "partial": {"snapshot": 1, "mi": 1, "trace": 1, "exporter": 1},
    "warn": {"diagnose": 1},
    "fail": {"diagnose": 2},
    "unknown": {"diagnose": 3},  # nothing failed, something could not be determined
    "unreachable": {"mi": 2, "trace": 2},  # OpenSIPS MI did not answer (or not in MI's protocol)
    "usage": {None: 2, "snapshot": 2, "diagnose": 3, "mi": 3, "trace": 3, "exporter": 2},  # command line refused
    "config": {None: 3, "snapshot": 3, "diagnose": 3, "mi": 3, "trace": 3, "exporter": 3},  # configuration refused
    # Ctrl-C: 128 + SIGINT (exporter: before it listens; then SIGINT stops it cleanly, 0)
    "interrupted": {None: 130, "snapshot": 130, "diagnose": 130, "mi": 130, "trace": 130, "exporter": 130},
    # stdout closed early (`| head`): 128 + SIGPIPE, what a shell reports for `cat` in the same place
    "broken_pipe": {"snapshot": 141, "diagnose": 141, "mi": 141, "trace": 141},
}


class UsageError(ConfigError):
    """The command line asks for something that cannot be done as written (exit: EXIT["usage"])."""


class ReadRefused(OpsError):
    """A whole-table MI read that would hold OpenSIPS MI too long, asked for without --force."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from .config import check_mi_url, parse_hostport

    out: dict[str, Any] = {}
    if getattr(args, "mi_url", None):
        check_mi_url(args.mi_url, "--mi-url")
        out["mi_url"] = args.mi_url
    if getattr(args, "mi_fifo", None):
        out["mi_fifo"] = args.mi_fifo
    for key in ("ng", "cli"):
        value = getattr(args, key, None)
        if value:
            out[key] = parse_hostport(value, option=f"--{key}")
    if getattr(args, "timeout", None) is not None:
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
        out["timeout"] = args.timeout
    if getattr(args, "interval", None) is not None:
        out["interval"] = args.interval
    if getattr(args, "allow_write", False):
        out["allow_write"] = True
    if getattr(args, "no_events", False):
        out["events"] = False
    if getattr(args, "no_trace", False):
        out["trace"] = False
    return out


def _load_config(args: argparse.Namespace, extra: dict[str, Any] | None = None, plugins=None):
    from .config import load_config, security_warnings

    try:
        overrides = _overrides(args)
    except UsageError:
        raise
    except ConfigError as exc:  # a command-line value: the command line is what to fix
        raise UsageError(str(exc)) from None
    config = load_config(overrides | (extra or {}), config_file=getattr(args, "config", None),
                         discover=not getattr(args, "demo", False),
                         plugin_sections=_plugin_sections(plugins) if plugins is not None else (),
                         discoverers=plugins.discoverers() if plugins is not None else None)
    for warning in security_warnings(config):
        _err(f"warning: {warning}")
    return config


def _plugin_sections(plugins) -> dict[str, Any]:
    """TOML sections the loaded plugins own (console.plugins.ConfigSection by name)."""
    return plugins.config_sections()


def _service(args: argparse.Namespace, demo: dict[str, Any], plugins):
    """The config (the plugins' sections and discoverers known), then the service."""
    from .fleet_targets import TargetNotChosen, target_config
    from .service import ConsoleService

    try:  # --target's node, or the only one (console.fleet)
        config = target_config(args, _load_config(args, demo, plugins))
    except TargetNotChosen as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    return ConsoleService(config, plugins=plugins)


@contextlib.asynccontextmanager
async def _platform(args: argparse.Namespace):
    """Yields (the loaded plugins, config overrides): with --demo the embedded platform a plugin
    offers (`platforms` hook: opsconsole_demo) runs meanwhile and the overrides are its addresses."""
    from .plugins import load_plugins

    plugins = load_plugins()
    if not getattr(args, "demo", False):
        yield plugins, {}
        return
    make_platform = plugins.platform("demo")
    if make_platform is None:
        raise UsageError("--demo needs the demo plugin (opsconsole_demo), which is not installed",
                         hint="pip install -e . from the opsconsole checkout installs it")
    size = getattr(args, "demo_size", None) or 70
    version = getattr(args, "demo_version", None) or "3.4"
    nodes = getattr(args, "demo_nodes", None)
    if nodes:  # several nodes (opsconsole_demo.fleet): the overrides name every node as a target
        try:
            platform = plugins.platform("demo-fleet")(nodes=nodes, size=size, version=version, rtp=True)
        except ConfigError as exc:
            raise UsageError(f"--demo-nodes: {exc}") from None
    else:
        platform = make_platform(size=size, version=version, rtp=True)
    async with platform as demo:
        yield plugins, demo.overrides() | {"demo": True, "demo_simulated_relay": not demo.media.real}


def _err(message: str) -> None:
    from .render.safe import escape_controls

    print(f"opsconsole: {escape_controls(message)}", file=sys.stderr)


def _report_plugin_failures(service) -> None:
    for failure in service.plugins.failures:
        _err(f"plugin {failure.name}: {failure.error}")


# --------------------------------------------------------------------------- prefetch (#18)

PREFETCH_GROUP = "opsconsole.prefetch"


def start_prefetch(args: argparse.Namespace) -> None:
    """Let plugins send their one slow request before the console loads (entry points of
    PREFETCH_GROUP, called with `early_settings`): OpenSIPS builds a 10k-contact ul_dump (~0.4 s)
    while the interpreter imports the plugins.  Best effort: nothing here can fail the command."""
    early = early_settings(args)
    if early is None:
        return
    from .entrypoints import entry_points

    for entry in entry_points(PREFETCH_GROUP):
        try:
            entry.load()(early)
        except Exception:  # a head start, never a failure: the command asks as usual
            continue


def early_settings(args: argparse.Namespace, env=None) -> dict[str, Any] | None:
    """What the command line, the environment and the config file say before any plugin is loaded, for a
    one-shot command that reads contacts; None when that is not known without the plugins (discovery,
    a FIFO, a forced OpenSIPS version, a config file that does not read)."""
    import os

    env = os.environ if env is None else env
    contacts = (args.command == "snapshot" and not args.no_contacts) or (args.command == "diagnose" and not args.list)
    if not contacts or getattr(args, "demo", False) or getattr(args, "mi_fifo", None) or env.get("OPSCONSOLE_MI_FIFO"):
        return None
    mi_url = getattr(args, "mi_url", None) or env.get("OPSCONSOLE_MI_URL")
    if not mi_url:
        return None  # discovery's to find: after the plugins
    from .config import CONFIG_PATHS, Config, read_toml

    opensips: dict[str, Any] = {}
    path = getattr(args, "config", None)
    candidates = [path] if path else [str(p.expanduser()) for p in CONFIG_PATHS]
    for candidate in candidates:
        if os.path.isfile(os.path.expanduser(candidate)):
            try:
                opensips = dict(read_toml(Path(candidate).expanduser()).get("opensips") or {})
            except (ConfigError, OSError, AttributeError, TypeError, ValueError):
                return None
            break
    if "version" in opensips or "mi_fifo" in opensips:
        return None
    user = env.get("OPSCONSOLE_MI_USER") or opensips.get("user")
    password = env.get("OPSCONSOLE_MI_PASSWORD") or opensips.get("password") or ""
    full_sync_max = opensips.get("full_sync_max", Config.full_sync_max)
    if (user is not None and not isinstance(user, str)) or not isinstance(password, str) \
            or not isinstance(full_sync_max, int):
        return None
    return {"mi_url": mi_url, "mi_auth": (user, password) if user else None, "contacts": True,
            "full_sync_max": full_sync_max, "force_full_sync": bool(getattr(args, "full_sync", False))}
