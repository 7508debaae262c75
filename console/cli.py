"""Command line: `opsconsole [snapshot|diagnose|mi] [options]`.

The names here are a contract with users' scripts: keep them stable.
The TUI (no subcommand) imports Textual lazily; `snapshot`, `diagnose` and
`mi` never do (a test proves it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any, Sequence

from . import __version__
from .errors import ConfigError, OpsError, RemoteError, TransportError, WriteRefused

TARGET_OPTIONS = ("mi_url", "mi_fifo", "ng", "cli", "timeout")


def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Target options accepted before or after the subcommand."""
    default = argparse.SUPPRESS if sub else None
    g = parser.add_argument_group("target")
    g.add_argument("--mi-url", metavar="URL", default=default, help="OpenSIPS mi_http URL (default: discovered, else http://127.0.0.1:8888/mi)")
    g.add_argument("--mi-fifo", metavar="PATH", default=default, help="OpenSIPS mi_fifo path (used when no --mi-url)")
    g.add_argument("--ng", metavar="HOST:PORT", default=default, help="RTPengine ng listener (-n/--listen-ng)")
    g.add_argument("--cli", metavar="HOST:PORT", default=default, help="RTPengine CLI listener (-c/--listen-cli)")
    g.add_argument("--config", metavar="FILE", default=default, help="TOML config file")
    g.add_argument("--timeout", metavar="S", type=float, default=default, help="per-request timeout in seconds (default 2)")
    g.add_argument("--allow-write", action="store_true", default=default if sub else False,
                   help="permit MI methods that change the platform (each is confirmed and audited)")
    d = parser.add_argument_group("demo")
    d.add_argument("--demo", action="store_true", default=default if sub else False,
                   help="run against an embedded simulated platform (loopback only)")
    d.add_argument("--demo-size", metavar="N", type=int, default=default, help="demo contacts (default 70)")
    d.add_argument("--demo-version", choices=("3.4", "4.0"), default=default, help="OpenSIPS version the demo imitates")


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: argparse would otherwise take `--a` for `--allow-write`.
    parser = argparse.ArgumentParser(prog="opsconsole", allow_abbrev=False,
        description="Operations console for OpenSIPS + RTPengine. Without a command: the interactive console.",
    )
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    parser.add_argument("--interval", type=float, default=None, metavar="S", help="TUI poll interval (default 2 s)")
    parser.add_argument("--no-events", action="store_true",
                        help="do not subscribe to OpenSIPS events; poll (bounded) instead")
    _add_common(parser, sub=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    snap = subs.add_parser("snapshot", allow_abbrev=False, help="collect once and print everything known (exit 1 if a source failed)")
    snap.add_argument("--json", action="store_true", help="one JSON document")
    snap.add_argument("--no-contacts", action="store_true", help="skip the contact list (ul_dump)")
    snap.add_argument("--full-sync", action="store_true", help="fetch the full contact list even above the size threshold")
    _add_common(snap, sub=True)

    diag = subs.add_parser("diagnose", allow_abbrev=False, help="run every check once (Nagios exit codes: 0 ok, 1 warn, 2 fail, 3 unknown)")
    diag.add_argument("--json", action="store_true", help="JSON output")
    diag.add_argument("--only", metavar="ID[,ID…]", help="run only these checks (ids or prefixes)")
    diag.add_argument("--skip", metavar="ID[,ID…]", help="skip these checks")
    diag.add_argument("--list", action="store_true", help="list the check ids and exit")
    diag.add_argument("-v", "--verbose", action="store_true", help="show each check's evidence")
    _add_common(diag, sub=True)

    mi = subs.add_parser("mi", allow_abbrev=False, help="run one OpenSIPS MI command and print the result as JSON")
    mi.add_argument("method", help="MI method, e.g. get_statistics (3.x/4.0 names are mapped)")
    mi.add_argument("params", nargs="*", help="key=value (string), key:=JSON (typed), or one JSON object/array")
    _add_common(mi, sub=True)
    return parser


def parse_mi_params(items: Sequence[str]) -> Any:
    """`key=value` → string, `key:=json` → typed (httpie's convention), or one JSON object/array."""
    if not items:
        return None
    if len(items) == 1 and items[0].lstrip()[:1] in ("{", "["):
        try:
            return json.loads(items[0])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"params: not valid JSON: {exc.msg} at column {exc.colno}") from None
    params: dict[str, Any] = {}
    for item in items:
        if ":=" in item and ("=" not in item or item.index(":=") < item.index("=")):
            key, _, raw = item.partition(":=")
            try:
                params[key] = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(f"params: {key}:= needs a JSON value, got {raw!r}") from None
        elif "=" in item:
            key, _, value = item.partition("=")
            params[key] = value
        else:
            raise ConfigError(f"params: expected key=value, key:=JSON or a JSON object, got {item!r}")
        if not key:
            raise ConfigError(f"params: empty key in {item!r}")
    return params


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from .config import parse_hostport

    out: dict[str, Any] = {}
    if getattr(args, "mi_url", None):
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
    return out


def _load_config(args: argparse.Namespace, extra: dict[str, Any] | None = None):
    from .config import load_config

    from .config import security_warnings

    overrides = _overrides(args) | (extra or {})
    config = load_config(overrides, config_file=getattr(args, "config", None),
                         discover=not getattr(args, "demo", False))
    for warning in security_warnings(config):
        _err(f"warning: {warning}")
    return config


@contextlib.asynccontextmanager
async def _platform(args: argparse.Namespace):
    """Yields config overrides: the embedded demo's addresses, or nothing."""
    if not getattr(args, "demo", False):
        yield {}
        return
    from .demo import DemoPlatform

    size = getattr(args, "demo_size", None) or 70
    version = getattr(args, "demo_version", None) or "3.4"
    async with DemoPlatform(size=size, version=version, rtp=True) as demo:
        yield demo.overrides() | {"demo": True, "demo_simulated_relay": not demo.media.real}


def _err(message: str) -> None:
    from .render.safe import escape_controls

    print(f"opsconsole: {escape_controls(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


async def _snapshot(args: argparse.Namespace) -> int:
    from .plugins import CollectOptions
    from .render.jsonout import dumps, snapshot_dict
    from .service import ConsoleService

    async with _platform(args) as demo:
        config = _load_config(args, demo)
        service = ConsoleService(config)
        _report_plugin_failures(service)
        try:
            options = CollectOptions(contacts=not args.no_contacts, full_sync_max=config.full_sync_max,
                                     force_full_sync=args.full_sync)
            snap = await service.snapshot(options)
        finally:
            await service.aclose()
    if args.json:
        print(dumps(snapshot_dict(snap), pretty=sys.stdout.isatty()))
    else:
        from .render.text import make_console, render_snapshot

        make_console().print(render_snapshot(snap))
    return 0 if snap.ok else 1


async def _diagnose(args: argparse.Namespace) -> int:
    from .model import EXIT_CODES, overall_status
    from .plugins import CollectOptions
    from .render.jsonout import diagnose_dict, dumps
    from .service import ConsoleService
    from .snapshot import hostname

    started = time.perf_counter()
    async with _platform(args) as demo:
        config = _load_config(args, demo)
        service = ConsoleService(config)
        if args.list:
            print("\n".join(service.check_ids()))
            return 0
        _report_plugin_failures(service)
        try:
            # Checks need the session list, not each session's legs (one ng query per call);
            # contact lists only below the size where a dump would hold OpenSIPS MI.
            snap = await service.snapshot(CollectOptions(media_details=False, full_sync_max=config.full_sync_max))
            only = args.only.split(",") if args.only else None
            skip = args.skip.split(",") if args.skip else None
            results = await service.checks(snap, only=only, skip=skip)
        finally:
            await service.aclose()
    elapsed = (time.perf_counter() - started) * 1000
    if args.json:
        print(dumps(diagnose_dict(results, elapsed_ms=elapsed, host=hostname(), version=__version__),
                    pretty=sys.stdout.isatty()))
    else:
        from .render.text import make_console, render_diagnose

        make_console().print(render_diagnose(results, host=hostname(), elapsed_ms=elapsed, verbose=args.verbose))
    if not results:
        return 3
    return EXIT_CODES[overall_status([r.status for r in results])]


async def _mi(args: argparse.Namespace) -> int:
    from .render.jsonout import dumps
    from .service import ConsoleService

    params = parse_mi_params(args.params)
    async with _platform(args) as demo:
        config = _load_config(args, demo)
        service = ConsoleService(config)
        try:
            result = await service.mi(args.method, params)
        except WriteRefused as exc:
            _err(str(exc))
            return 1
        except RemoteError as exc:
            _err(f"MI error: {exc}")
            return 1
        except TransportError as exc:
            _err(str(exc))
            return 2
        except OpsError as exc:
            _err(str(exc))
            return 2
        finally:
            await service.aclose()
    print(dumps(result, pretty=sys.stdout.isatty()))
    return 0


def _report_plugin_failures(service) -> None:
    for failure in service.plugins.failures:
        _err(f"plugin {failure.name}: {failure.error}")


async def _tui(args: argparse.Namespace) -> int:
    from .service import ConsoleService
    from .ui.app import create_app  # the only path that imports Textual

    async with _platform(args) as demo:
        config = _load_config(args, demo)
        service = ConsoleService(config)
        _report_plugin_failures(service)
        app = create_app(service, interval=config.interval, allow_write=config.allow_write)
        try:
            await app.run_async()
        finally:
            await service.aclose()
    return app.return_code or 0


COMMANDS = {"snapshot": _snapshot, "diagnose": _diagnose, "mi": _mi, None: _tui}
# What a configuration error exits with, per command (diagnose: Nagios UNKNOWN).
CONFIG_ERROR_EXIT = {"snapshot": 2, "diagnose": 3, "mi": 2, None: 2}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        return asyncio.run(handler(args))
    except ConfigError as exc:
        _err(str(exc))
        return CONFIG_ERROR_EXIT[args.command]
    except KeyboardInterrupt:
        return 130
    except OpsError as exc:
        _err(str(exc))
        return CONFIG_ERROR_EXIT[args.command]


if __name__ == "__main__":
    sys.exit(main())
