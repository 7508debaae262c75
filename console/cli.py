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
from .errors import ConfigError, OpsError, ProtocolError, RemoteError, TransportError, WriteRefused

TARGET_OPTIONS = ("mi_url", "mi_fifo", "ng", "cli", "timeout")
COMMAND_NAMES = ("snapshot", "diagnose", "mi", "trace")
# A whole-table MI read estimated to hold OpenSIPS MI (one request at a time) longer than this is
# refused without --force.
HEAVY_HOLD_LIMIT_S = 3.0

# The exit codes, one table for every command (None: the interactive console).  README "Exit codes"
# is this table; tests/test_cli_exit_codes.py walks every cell.  In `diagnose` (Nagios) and `mi`,
# 2 already means something, so a refused command line exits 3 there.
EXIT: dict[str, dict[str | None, int]] = {
    # trace: ended by --duration, SIGTERM or SIGHUP, and its trace stopped
    "ok": {None: 0, "snapshot": 0, "diagnose": 0, "mi": 0, "trace": 0},
    # snapshot: a source failed (the rest is printed); mi: MI error, write/whole-table read refused or declined;
    # trace: OpenSIPS cannot trace (what to add is on stderr), refused it, or the trace could not be stopped
    "partial": {"snapshot": 1, "mi": 1, "trace": 1},
    "warn": {"diagnose": 1},
    "fail": {"diagnose": 2},
    "unknown": {"diagnose": 3},  # nothing failed, something could not be determined
    "unreachable": {"mi": 2, "trace": 2},  # OpenSIPS MI did not answer (or not in MI's protocol)
    "usage": {None: 2, "snapshot": 2, "diagnose": 3, "mi": 3, "trace": 3},  # command line refused
    "config": {None: 3, "snapshot": 3, "diagnose": 3, "mi": 3, "trace": 3},  # configuration refused
    "interrupted": {None: 130, "snapshot": 130, "diagnose": 130, "mi": 130, "trace": 130},  # Ctrl-C: 128 + SIGINT
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
                   help="permit MI methods that change the platform (each is confirmed and audited with its outcome)")
    g.add_argument("--yes", action="store_true", default=default if sub else False,
                   help="with --allow-write: confirm `mi` writes without asking (for scripts; still audited)")
    d = parser.add_argument_group("demo")
    d.add_argument("--demo", action="store_true", default=default if sub else False,
                   help="run against an embedded simulated platform (loopback only)")
    d.add_argument("--demo-size", metavar="N", type=_positive_int, default=default,
                   help="with --demo: demo contacts (default 70)")
    d.add_argument("--demo-version", choices=("3.4", "4.0"), default=default,
                   help="with --demo: OpenSIPS version the demo imitates")


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: argparse would otherwise take `--a` for `--allow-write`.
    parser = argparse.ArgumentParser(prog="opsconsole", allow_abbrev=False,
        description="Operations console for OpenSIPS + RTPengine. Without a command: the interactive console "
                    "(needs a terminal on stdin and stderr; for scripts use snapshot or diagnose).",
        epilog="Exit codes: 0 success; snapshot 1 = a source failed; diagnose 0/1/2/3 = ok/warn/fail/unknown "
               "(Nagios); mi 1 = MI error or refused, 2 = OpenSIPS MI unreachable; trace 1 = cannot trace or not "
               "stopped, 2 = OpenSIPS MI unreachable; a refused command line 2 (3 for diagnose, mi and trace); "
               "bad configuration 3; Ctrl-C 130; output closed early (| head) 141.",
    )
    parser.add_argument("--version", action="version", version=f"opsconsole {__version__}")
    parser.add_argument("--interval", type=float, default=None, metavar="S",
                        help="console only: poll interval (default 2 s)")
    parser.add_argument("--no-events", action="store_true",
                        help="console only: do not subscribe to OpenSIPS events; poll (bounded) instead")
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

    mi = subs.add_parser("mi", allow_abbrev=False, help="run one OpenSIPS MI command and print the result as JSON",
                         description="Run one OpenSIPS MI command. Writes need --allow-write and a confirmation "
                                     "(asked on a terminal, or --yes) and are audited with their outcome. "
                                     "Whole-table reads (ul_dump, dlg_list, …) that would hold OpenSIPS MI for "
                                     f"more than {HEAVY_HOLD_LIMIT_S:.0f} s are refused without --force.")
    mi.add_argument("method", help="MI method, e.g. get_statistics (3.x/4.0 names are mapped)")
    # default=[]: without it argparse lists the optional params as required in its usage error.
    mi.add_argument("params", nargs="*", default=[], metavar="PARAM",
                    help="key=value (string), key:=JSON (typed), or one JSON object/array (optional)")
    mi.add_argument("--force", action="store_true",
                    help="run a whole-table read (ul_dump, dlg_list, …) even when it would hold OpenSIPS MI "
                         f"for more than {HEAVY_HOLD_LIMIT_S:.0f} s")
    _add_common(mi, sub=True)

    trace = subs.add_parser(
        "trace", allow_abbrev=False,
        help="live SIP ladder from OpenSIPS's tracer (HEP), with each call explained",
        description="Start a dynamic OpenSIPS trace (MI trace_start, HEP to this host), print each SIP message as "
                    "a ladder line as it arrives (time, delta within its call, source → destination, method or "
                    "status, Call-ID) and explain each call when it ends (timings, or why it failed and the fix). "
                    "The trace is always stopped on exit (also Ctrl-C, SIGTERM, SIGHUP); one left behind by a "
                    "crashed opsconsole is removed at the next start. Allowed in read-only mode (a transient "
                    "change), recorded in the audit log. OpenSIPS needs loadmodule \"proto_hep.so\", loadmodule "
                    "\"tracer.so\" and socket=hep_udp:IP:PORT.",
        epilog="Exit codes: 0 stopped by --duration, SIGTERM or SIGHUP; 1 OpenSIPS cannot trace or refused "
               "(what to add is said), or the trace could not be stopped; 2 OpenSIPS MI unreachable; 3 command "
               "line or configuration refused; 130 Ctrl-C; 141 output closed early.")
    trace.add_argument("--caller", metavar="USER", help="only calls from this user (tracer filter caller=)")
    trace.add_argument("--callee", metavar="USER", help="only calls to this user (tracer filter callee=)")
    trace.add_argument("--ip", metavar="IP", help="only requests from this source IP (tracer filter ip=)")
    trace.add_argument("--scope", choices=("dialog", "message"), default="dialog",
                       help="dialog: calls from their INVITE (default; no REGISTERs); message: every message")
    trace.add_argument("--pcap", metavar="FILE", help="also write the messages to this pcap file (Wireshark, sngrep)")
    trace.add_argument("--duration", metavar="S", type=float, help="stop after S seconds (default: until Ctrl-C)")
    trace.add_argument("--listen", metavar="IP[:PORT]",
                       help="where OpenSIPS sends HEP (default: loopback for a local OpenSIPS, else the address "
                            "that routes to it; port from the OS)")
    _add_common(trace, sub=True)
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
    from .service import ConsoleService

    return ConsoleService(_load_config(args, demo, plugins), plugins=plugins)


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
    async with make_platform(size=size, version=version, rtp=True) as demo:
        yield plugins, demo.overrides() | {"demo": True, "demo_simulated_relay": not demo.media.real}


def _err(message: str) -> None:
    from .render.safe import escape_controls

    print(f"opsconsole: {escape_controls(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- command-line checks


def _check_combinations(args: argparse.Namespace) -> None:
    """Refuse options that would be silently ignored, or that contradict each other."""
    command = args.command
    demo = getattr(args, "demo", False)
    for option, attr in (("--demo-size", "demo_size"), ("--demo-version", "demo_version")):
        if not demo and getattr(args, attr, None) is not None:
            raise UsageError(f"{option} needs --demo (without it opsconsole watches the real platform)")
    for option, attr in (("--mi-url", "mi_url"), ("--mi-fifo", "mi_fifo"), ("--ng", "ng"), ("--cli", "cli")):
        if demo and getattr(args, attr, None):
            raise UsageError(f"{option} with --demo: the demo runs its own platform; drop one of them")
    if getattr(args, "mi_url", None) and getattr(args, "mi_fifo", None):
        raise UsageError("--mi-url and --mi-fifo: MI goes over one of them; choose one")
    if getattr(args, "yes", False):
        if command != "mi":
            raise UsageError("--yes confirms `opsconsole mi` writes only (the console asks in its own dialog)")
        if not getattr(args, "allow_write", False):
            raise UsageError("--yes needs --allow-write (it confirms a write that --allow-write permits)")
    if command is not None:
        for option, attr in (("--interval", "interval"), ("--no-events", "no_events")):
            if getattr(args, attr, None) not in (None, False):
                raise UsageError(f"{option} applies to the interactive console only, not to `{command}`")
    elif args.interval is not None and args.interval <= 0:
        raise UsageError("--interval must be a positive number of seconds")
    if command == "snapshot" and args.full_sync and args.no_contacts:
        raise UsageError("--full-sync fetches the contact list that --no-contacts skips; choose one")
    if command == "diagnose" and args.list:
        given = [o for o, a in (("--only", "only"), ("--skip", "skip"), ("--json", "json"), ("--verbose", "verbose"))
                 if getattr(args, a)]
        if given:
            raise UsageError(f"--list prints every check id and runs nothing; {', '.join(given)} would be ignored")


def _check_terminal() -> None:
    """The console draws on stderr (Textual's choice) and reads keys from stdin: both must be a terminal,
    or `opsconsole 2>err.log` shows a blank screen and fills the file with escape codes."""
    streams = {"stdin": sys.stdin, "stderr": sys.__stderr__}
    missing = [name for name, stream in streams.items() if stream is None or not _isatty(stream)]
    if missing:
        raise UsageError(
            f"the interactive console needs a terminal, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not one (it reads keys from stdin and draws on stderr)",
            hint="for non-interactive use run `opsconsole snapshot` or `opsconsole diagnose`")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


# --------------------------------------------------------------------------- commands


async def _snapshot(args: argparse.Namespace) -> int:
    from .plugins import CollectOptions
    from .render.jsonout import dumps, snapshot_dict

    async with _platform(args) as (plugins, demo):
        service = _service(args, demo, plugins)
        config = service.config
        _report_plugin_failures(service)
        try:
            options = CollectOptions(contacts=not args.no_contacts, full_sync_max=config.full_sync_max,
                                     force_full_sync=args.full_sync)
            snap = await service.snapshot(options)
        finally:
            await service.aclose()
    if args.json:
        print(dumps(snapshot_dict(snap, service.plugins.json_parts(snap), thresholds=config.thresholds),
                    pretty=sys.stdout.isatty()))
    else:
        from .render.text import make_console, render_snapshot

        console = make_console()
        console.print(render_snapshot(snap, clip_ids=console.is_terminal, thresholds=config.thresholds,
                                      sections=service.plugins.overview_sections(snap)))
    return EXIT["ok" if snap.ok else "partial"]["snapshot"]


async def _diagnose(args: argparse.Namespace) -> int:
    from .model import overall_status
    from .plugins import CollectOptions
    from .render.jsonout import diagnose_dict, dumps
    from .snapshot import hostname

    started = time.perf_counter()
    async with _platform(args) as (plugins, demo):
        service = _service(args, demo, plugins)
        config = service.config
        if args.list:
            print("\n".join(service.check_ids()))
            return EXIT["ok"]["diagnose"]
        _report_plugin_failures(service)
        try:
            # Checks need the session list, not each session's legs (one ng query per call);
            # contact lists only below the size where a dump would hold OpenSIPS MI.
            # media details: the calls.* checks judge each call's packets and MOS (one ng query per call,
            # ~0.24 s at 1 000 calls, bench/bench_quality.py)
            snap = await service.snapshot(CollectOptions(media_details=True, full_sync_max=config.full_sync_max))
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
        return EXIT["unknown"]["diagnose"]
    status = overall_status([r.status for r in results])
    return EXIT[{"ok": "ok", "skip": "ok"}.get(status.value, status.value)]["diagnose"]


async def _mi(args: argparse.Namespace) -> int:
    from .render.jsonout import dumps

    try:
        params = parse_mi_params(args.params)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    async with _platform(args) as (plugins, demo):
        service = _service(args, demo, plugins)
        try:
            confirmed = False
            if service.is_write_method(args.method) and service.config.allow_write:
                confirmed = _confirm_write(args, service.config.mi_target, params)
            elif not args.force:
                await _refuse_long_hold(service, args.method, params)
            result = await service.mi(args.method, params, confirmed=confirmed)
        except (WriteRefused, ReadRefused) as exc:
            _err(str(exc))
            return EXIT["partial"]["mi"]
        except RemoteError as exc:
            _err(f"MI error: {exc}")
            return EXIT["partial"]["mi"]
        except (UsageError, ConfigError):
            raise
        except OpsError as exc:  # transport or protocol: OpenSIPS MI did not answer as MI does
            _err(str(exc))
            return EXIT["unreachable"]["mi"]
        finally:
            await service.aclose()
    print(dumps(result, pretty=sys.stdout.isatty()))
    return EXIT["ok"]["mi"]


def _confirm_write(args: argparse.Namespace, target: str, params: Any) -> bool:
    """--yes, or a 'y' typed on the terminal; no terminal and no --yes is a refusal (nothing is sent)."""
    from .render.safe import escape_controls

    if args.yes:
        return True
    if not _isatty(sys.stdin):
        raise WriteRefused(f"{args.method} changes the platform and needs a confirmation, but stdin is not a terminal",
                           hint="add --yes to confirm it from a script")
    shown = escape_controls(json.dumps(params, ensure_ascii=False)) if params is not None else "(no params)"
    print(f"Run {escape_controls(args.method)} {shown} on {escape_controls(target)}?\n"
          "This changes the live platform and is audit-logged. [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise WriteRefused(f"{args.method} not run: not confirmed")
    return True


async def _refuse_long_hold(service, method: str, params: Any) -> None:
    """A whole-table read (ul_dump, dlg_list, …) holds OpenSIPS MI, which answers one request at a time
    (3.4 at 100k contacts: minutes).  The plugin estimates it from the counters and its measured curve."""
    hold = await service.mi_hold_estimate(method, params)
    if hold is None:
        return
    hint = f"add --force to run it anyway; instead: {hold.alternatives}"
    if hold.count is None:
        raise ReadRefused(f"{method} walks every {hold.table[:-1]}, and the {hold.counters} counters do not say how "
                          "many (so not how long it would hold OpenSIPS MI)", hint=hint)
    if hold.seconds > HEAVY_HOLD_LIMIT_S:
        raise ReadRefused(f"{method} over {hold.count} {hold.table} would hold OpenSIPS MI for ~{hold.seconds:.0f} s "
                          "(it answers nobody else meanwhile)",
                          hint=f"add --force to run it anyway (with a --timeout that allows ~{hold.seconds:.0f} s); "
                               f"instead: {hold.alternatives}")


def _report_plugin_failures(service) -> None:
    for failure in service.plugins.failures:
        _err(f"plugin {failure.name}: {failure.error}")


async def _tui(args: argparse.Namespace) -> int:
    from .ui.app import create_app  # the only path that imports Textual

    async with _platform(args) as (plugins, demo):
        service = _service(args, demo, plugins)
        config = service.config
        _report_plugin_failures(service)
        app = create_app(service, interval=config.interval, allow_write=config.allow_write)
        try:
            await app.run_async()
        finally:
            await service.aclose()
    return app.return_code or 0


# --------------------------------------------------------------------------- trace


def _trace_listen(text: str | None) -> tuple[str, int]:
    """--listen IP, IP:PORT or [V6]:PORT; port 0 or none: from the OS."""
    import ipaddress

    if not text:
        return "", 0
    value = text.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":") or "0"
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, "0"
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise UsageError(f"--listen: expected IP[:PORT] (OpenSIPS sends HEP to an address), got {text!r}") from None
    if not 0 <= port < 65536:
        raise UsageError(f"--listen: port {port} out of range")
    return host, port


def _trace_options(args: argparse.Namespace):
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    host, port = _trace_listen(args.listen)
    return {"caller": args.caller or "", "callee": args.callee or "", "ip": args.ip or "", "scope": args.scope,
            "listen_host": host, "listen_port": port}


class _Stop:
    """SIGINT/SIGTERM/SIGHUP end the trace loop (the trace is stopped in `finally`); which one is kept."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: int | None = None
        self._installed: list[int] = []

    def install(self) -> None:
        import signal

        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(number, self._stop, number)
                self._installed.append(number)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass

    def _stop(self, number: int) -> None:
        self.signal = self.signal or number
        self.event.set()

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for number in self._installed:
            loop.remove_signal_handler(number)


async def _trace(args: argparse.Namespace) -> int:
    options = _trace_options(args)
    created = bool(args.pcap) and not os.path.exists(args.pcap)
    pcap = _open_pcap(args.pcap) if args.pcap else None
    try:
        async with _platform(args) as (plugins, demo):
            service = _service(args, demo, plugins)
            try:
                return await _run_trace(service, options, pcap, args.duration)
            finally:
                await service.aclose()
    finally:
        if pcap is not None:
            _close_pcap(pcap, args.pcap, created)


def _close_pcap(pcap, path: str, created: bool) -> None:
    """Close it; an empty file we created (the trace never started) is not left behind as a capture."""
    empty = pcap.tell() == 0
    pcap.close()
    if empty and created:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _open_pcap(path: str):
    try:
        return open(path, "wb")
    except OSError as exc:
        raise UsageError(f"--pcap {path}: cannot write: {exc.strerror or exc}") from None


async def _run_trace(service, options: dict, pcap, duration: float | None) -> int:
    import signal

    _report_plugin_failures(service)
    if not service.config.trace:
        _err("tracing is turned off on this host ([opensips] trace = false in the configuration); nothing was started")
        return EXIT["partial"]["trace"]
    stop = _Stop()
    stop.install()
    try:
        session = service.trace_session(options)
        try:
            await session.start()
        except ValueError as exc:  # an option the tracer cannot take (--caller with a space, …)
            raise UsageError(str(exc)) from None
        except (TransportError, ProtocolError) as exc:
            _err(str(exc))
            await session.stop()
            return EXIT["unreachable"]["trace"]
        except (UsageError, ConfigError):
            raise
        except OpsError as exc:  # cannot trace (what to add), refused, or the audit log is not writable
            _err(str(exc))
            await session.stop()
            return EXIT["partial"]["trace"]
        try:
            if pcap is not None:
                session.attach_pcap(pcap)
            _trace_banner(session, duration)
            await _trace_loop(session, stop, duration)
        finally:
            await session.stop()
        for flow in session.ladder.unexplained():  # calls still open when the trace ended
            _print_lines(await session.explain_text(flow))
        _err(f"trace {session.trace_id} stopped: {session.ladder.count} messages, {len(session.ladder.calls)} "
             f"Call-ID(s){session.listener_note()}")
        if session.stop_error:
            _err(f"the trace {session.trace_id} could not be stopped: {session.stop_error} — it keeps sending to "
                 f"{session.uri} until OpenSIPS restarts or `opsconsole mi trace_stop id={session.trace_id} "
                 "--allow-write` (the next `opsconsole trace` also removes it)")
            return EXIT["partial"]["trace"]
    finally:
        stop.remove()
    if stop.signal == signal.SIGINT:
        return EXIT["interrupted"]["trace"]
    return EXIT["ok"]["trace"]


def _trace_banner(session, duration: float | None) -> None:
    options = session.options
    filters = ", ".join(options.filters()) or "none"
    removed = (f"; removed {len(session.removed_leftovers)} trace(s) left behind by a crash: "
               f"{', '.join(session.removed_leftovers)}") if session.removed_leftovers else ""
    until = f"for {duration:g} s" if duration else "until Ctrl-C"
    _err(f"tracing as {session.trace_id} (scope {options.scope}, filter {filters}), HEP to {session.uri}, "
         f"{until}{removed}")


def _print_lines(lines) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


TRACE_SETTLE_S = 1.0  # a call is explained once it ended and was quiet this long (its ACK had time)


async def _trace_loop(session, stop: _Stop, duration: float | None) -> None:
    """Print each message as it arrives, and each call's explanation once it ended, until stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration else None
    lines = session.lines()
    next_line = asyncio.ensure_future(anext(lines))
    stopped = asyncio.ensure_future(stop.event.wait())
    try:
        while not stopped.done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            wait = 0.25 if remaining is None else min(0.25, remaining)
            done, _ = await asyncio.wait({next_line, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if next_line in done:
                try:
                    line = next_line.result()
                except StopAsyncIteration:
                    break
                _print_lines([session.line_text(line)])
                next_line = asyncio.ensure_future(anext(lines))
            for flow in session.ladder.due(loop.time(), TRACE_SETTLE_S):
                _print_lines(await session.explain_text(flow))
    finally:
        for task in (next_line, stopped):
            task.cancel()
        await asyncio.gather(next_line, stopped, return_exceptions=True)
        await lines.aclose()


COMMANDS = {"snapshot": _snapshot, "diagnose": _diagnose, "mi": _mi, "trace": _trace, None: _tui}


def _command_in(argv: Sequence[str]) -> str | None:
    """The command a refused command line meant (for its exit code): the first command name in it."""
    return next((arg for arg in argv if arg in COMMAND_NAMES), None)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 2:  # argparse's usage error; --help and --version exit 0
            raise SystemExit(EXIT["usage"][_command_in(argv)]) from None
        raise


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush stays quiet
    (Python's documented recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    command = args.command
    try:
        _check_combinations(args)
        if command is None:
            _check_terminal()
        code = asyncio.run(COMMANDS[command](args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT["broken_pipe"].get(command, 141)
    except UsageError as exc:
        _err(str(exc))
        return EXIT["usage"][command]
    except ConfigError as exc:
        _err(str(exc))
        return EXIT["config"][command]
    except KeyboardInterrupt:
        return EXIT["interrupted"][command]
    except OpsError as exc:
        _err(str(exc))
        return EXIT["config"][command]


if __name__ == "__main__":
    sys.exit(main())
