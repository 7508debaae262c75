"""Command line: `opsconsole [snapshot|diagnose|mi] [options]`.

The names here are a contract with users' scripts: keep them stable.
The TUI (no subcommand) imports Textual lazily; `snapshot`, `diagnose` and
`mi` never do (a test proves it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any, Sequence

from . import __version__
from .cli_common import (  # noqa: F401  (re-exported: tests and scripts use console.cli.EXIT etc.)
    COMMAND_NAMES, EXIT, HEAVY_HOLD_LIMIT_S, TARGET_OPTIONS, ReadRefused, UsageError, _err, _load_config,
    _overrides, _platform, _plugin_sections, _positive_int, _report_plugin_failures, _service, start_prefetch,
)
from .errors import ConfigError, OpsError, RemoteError, WriteRefused
from .heap import one_shot

# Commands that run once and exit: no cyclic GC while they run (console/heap.py one_shot), and `run`
# exits without tearing down what they built (#18)
ONE_SHOT = ("snapshot", "diagnose", "mi")
_ran: dict[str, str | None] = {"command": None}  # the command `main` last ran, for `run`

def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Target options accepted before or after the subcommand."""
    default = argparse.SUPPRESS if sub else None
    g = parser.add_argument_group("target")
    g.add_argument("--mi-url", metavar="URL", default=default, help="OpenSIPS mi_http URL (default: discovered, else http://127.0.0.1:8888/mi)")
    g.add_argument("--mi-fifo", metavar="PATH", default=default, help="OpenSIPS mi_fifo path (used when no --mi-url)")
    g.add_argument("--ng", metavar="HOST:PORT", default=default, help="RTPengine ng listener (-n/--listen-ng)")
    g.add_argument("--cli", metavar="HOST:PORT", default=default, help="RTPengine CLI listener (-c/--listen-cli)")
    g.add_argument("--config", metavar="FILE", default=default, help="TOML config file")
    g.add_argument("--target", metavar="NAME", default=default,
                   help="the config's [[targets]] node to work on (needed when it names several)")
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
    d.add_argument("--demo-nodes", metavar="N", type=_positive_int, default=default,
                   help="with --demo: run N simulated OpenSIPS nodes (Fleet screen, key 0; default 1)")


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
    parser.add_argument("--no-trace", action="store_true",
                        help="console only: `T` starts no SIP trace (as [trace] enabled = false)")
    _add_common(parser, sub=False)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    snap = subs.add_parser("snapshot", allow_abbrev=False, help="collect once and print everything known (exit 1 if a source failed)")
    snap.add_argument("--json", action="store_true", help="one JSON document")
    snap.add_argument("--no-contacts", action="store_true", help="skip the contact list (ul_dump)")
    snap.add_argument("--full-sync", action="store_true", help="fetch the full contact list even above the size threshold")
    snap.add_argument("--all", action="store_true", dest="all_targets",
                      help='every [[targets]] node: JSON {"targets": {name: ...}}, exit code the worst of all')
    _add_common(snap, sub=True)

    diag = subs.add_parser("diagnose", allow_abbrev=False, help="run every check once (Nagios exit codes: 0 ok, 1 warn, 2 fail, 3 unknown)")
    diag.add_argument("--json", action="store_true", help="JSON output")
    diag.add_argument("--only", metavar="ID[,ID…]", help="run only these checks (ids or prefixes)")
    diag.add_argument("--skip", metavar="ID[,ID…]", help="skip these checks")
    diag.add_argument("--list", action="store_true", help="list the check ids and exit")
    diag.add_argument("-v", "--verbose", action="store_true", help="show each check's evidence")
    diag.add_argument("--all", action="store_true", dest="all_targets",
                      help='every [[targets]] node: JSON {"targets": {name: ...}}, exit code the worst of all')
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
    trace.add_argument("--scope", choices=("dialog", "transaction", "message"), default="dialog",
                       help="dialog: calls from their INVITE (default; no REGISTERs); transaction: each matching "
                            "request with its replies (REGISTERs too); message: only the matching requests")
    trace.add_argument("--pcap", metavar="FILE", help="also write the messages to this pcap file (Wireshark, sngrep)")
    trace.add_argument("--duration", metavar="S", type=float, help="stop after S seconds (default: until Ctrl-C)")
    trace.add_argument("--listen", metavar="IP[:PORT]",
                       help="where OpenSIPS sends HEP (default: loopback for a local OpenSIPS, else the address "
                            "that routes to it; port from the OS)")
    _add_common(trace, sub=True)
    from .cli_fleet import add_exporter_parser

    add_exporter_parser(subs, _add_common)
    return parser


def parse_mi_params(items: Sequence[str]) -> Any:
    """The MI parameter grammar (console.mi_params, shared with the MI screen); a refusal is a
    command-line error."""
    from .mi_params import ParamError, parse_params

    try:
        return parse_params(items)
    except ParamError as exc:
        raise UsageError(str(exc)) from None


# --------------------------------------------------------------------------- command-line checks


def _check_combinations(args: argparse.Namespace) -> None:
    """Refuse options that would be silently ignored, or that contradict each other."""
    command = args.command
    demo = getattr(args, "demo", False)
    if getattr(args, "target", None) is not None or getattr(args, "all_targets", False):
        from .cli_fleet import check_target_options

        check_target_options(args)
    for option, attr in (("--demo-size", "demo_size"), ("--demo-version", "demo_version"),
                         ("--demo-nodes", "demo_nodes")):
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
        for option, attr in (("--interval", "interval"), ("--no-events", "no_events"), ("--no-trace", "no_trace")):
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
    if args.all_targets:
        from .cli_fleet import snapshot_all

        return await snapshot_all(args)
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
    if args.all_targets and not args.list:
        from .cli_fleet import diagnose_all

        return await diagnose_all(args)
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


async def _tui(args: argparse.Namespace) -> int:
    from .ui.app import create_app  # the only path that imports Textual
    from .ui.fleet import console_fleet

    async with _platform(args) as (plugins, demo):
        service = _service(args, demo, plugins)
        config = service.config
        _report_plugin_failures(service)
        fleet = console_fleet(args, config, plugins, service)  # several nodes: the Fleet screen (0)
        app = create_app(service, interval=config.interval, allow_write=config.allow_write, fleet=fleet)
        try:
            await app.run_async()
        finally:
            await app.stop_trace()  # a SIP trace still running (exit, crash): stopped before MI closes
            # every node's service (`service` is the first node's), or the one
            await (fleet.aclose() if fleet is not None else service.aclose())
    return app.return_code or 0


async def _trace(args: argparse.Namespace) -> int:
    from .cli_trace import _trace as trace  # its module (and asyncio's extras) for `trace` only

    return await trace(args)


async def _exporter(args: argparse.Namespace) -> int:
    from .cli_fleet import exporter

    return await exporter(args)


COMMANDS = {"snapshot": _snapshot, "diagnose": _diagnose, "mi": _mi, "trace": _trace, "exporter": _exporter, None: _tui}


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
    command = _ran["command"] = args.command
    try:
        _check_combinations(args)
        if command is None:
            _check_terminal()
        elif command in ("snapshot", "diagnose"):
            start_prefetch(args)  # OpenSIPS builds its ul_dump reply while the plugins load (#18)
        import asyncio  # after the prefetch: ~30 ms of imports OpenSIPS spends building the dump (#18)

        with one_shot() if command in ONE_SHOT else contextlib.nullcontext():
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


def run() -> None:
    """The `opsconsole` program (and `python -m console`): `main`, then, after a one-shot command, exit
    without freeing one by one what it built — a 10k-contact snapshot's objects took ~20 ms to tear down
    (#18).  Exit handlers still run and the output is flushed first; `main` itself returns, for callers
    in their own process."""
    code = main()
    if _ran["command"] in ONE_SHOT:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a reader gone (| head): main already chose the exit code
                pass
        import atexit

        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
