"""The command line's fleet part: `--target NAME`, `snapshot --all`, `diagnose --all`, `exporter`.
(Light at import: console/cli.py builds the exporter's parser from here; the work is imported lazily.)

`--target` picks one [[targets]] node for the console, snapshot, diagnose, mi and trace (the service
is built for it in console.cli_common._service); `--all` runs snapshot or diagnose on every target at
once and prints `{"targets": {name: <the single-node document>}}` (text: one section per node), with
the worst exit code of all.  console/cli.py imports this module only inside the commands that use it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .cli_common import EXIT, UsageError, _err, _load_config, _platform, _report_plugin_failures

ADDRESS_OPTIONS = (("--mi-url", "mi_url"), ("--mi-fifo", "mi_fifo"), ("--ng", "ng"), ("--cli", "cli"))


def check_target_options(args: argparse.Namespace) -> None:
    """Refuse --target/--all where they would be ignored or contradict another option."""
    target, every = getattr(args, "target", None), getattr(args, "all_targets", False)
    if target is None and not every:
        return
    option = "--target" if target is not None else "--all"
    if target is not None and every:
        raise UsageError("--target NAME and --all: one node or every node; choose one")
    if target is not None and not target.strip():
        raise UsageError("--target needs a target name")
    given = [flag for flag, attr in ADDRESS_OPTIONS if getattr(args, attr, None)]
    if given:
        raise UsageError(f"{option} picks [[targets]] nodes of the config file; {given[0]} names the node itself; "
                         "choose one")
    if getattr(args, "demo", False) and not getattr(args, "demo_nodes", None):
        raise UsageError(f"{option} with --demo: the demo is one node of its own (--demo-nodes N runs several); "
                         "drop one of them")
    if every and getattr(args, "list", False):
        raise UsageError("--list prints every check id and runs nothing; --all would be ignored")


# --------------------------------------------------------------------------- --all


async def every_target(args: argparse.Namespace, work) -> list[tuple[str, Any]]:
    """`await work(service)` for every target, concurrently: [(name, result)] in the config's order.  Each node's service is closed whatever happens."""
    import asyncio  # here: console/cli.py builds its parser from this module for every command (#18)

    from .fleet_targets import config_for, targets_from
    from .service import ConsoleService

    async with _platform(args) as (plugins, demo):
        config = _load_config(args, demo, plugins)
        targets = targets_from(args, config)
        services = [ConsoleService(config_for(config, spec), plugins=plugins) for spec in targets]
        if services:
            _report_plugin_failures(services[0])
        try:
            results = await asyncio.gather(*(work(service) for service in services))
        finally:
            await asyncio.gather(*(service.aclose() for service in services), return_exceptions=True)
    return [(spec.name or "default", result) for spec, result in zip(targets, results)]


async def snapshot_all(args: argparse.Namespace) -> int:
    from .plugins import CollectOptions
    from .render.jsonout import dumps, snapshot_dict

    async def collect(service):
        config = service.config
        options = CollectOptions(contacts=not args.no_contacts, full_sync_max=config.full_sync_max,
                                 force_full_sync=args.full_sync)
        return service, await service.snapshot(options)

    done = await every_target(args, collect)
    if args.json:
        documents = {name: snapshot_dict(snap, service.plugins.json_parts(snap), thresholds=service.config.thresholds)
                     for name, (service, snap) in done}
        print(dumps({"targets": documents}, pretty=sys.stdout.isatty()))
    else:
        from .render.text import make_console, render_snapshot

        console = make_console()
        for name, (service, snap) in done:
            console.rule(_heading(name, service.config), align="left")
            console.print(render_snapshot(snap, clip_ids=console.is_terminal, thresholds=service.config.thresholds,
                                          sections=service.plugins.overview_sections(snap)))
    every_ok = all(snap.ok for _name, (_service, snap) in done)
    return EXIT["ok" if every_ok else "partial"]["snapshot"]


async def diagnose_all(args: argparse.Namespace) -> int:
    from . import __version__
    from .plugins import CollectOptions
    from .render.jsonout import diagnose_dict, dumps
    from .snapshot import hostname

    only = args.only.split(",") if args.only else None
    skip = args.skip.split(",") if args.skip else None

    snapshots: dict[int, Any] = {}

    async def diagnose(service):
        started = time.perf_counter()
        snap = await service.snapshot(CollectOptions(media_details=True, full_sync_max=service.config.full_sync_max))
        snapshots[id(service)] = snap
        results = await service.checks(snap, only=only, skip=skip)
        return service, results, (time.perf_counter() - started) * 1000

    done = _judged_across_nodes(await every_target(args, diagnose), snapshots)
    host = hostname()
    if args.json:
        documents = {name: diagnose_dict(results, elapsed_ms=elapsed, host=host, version=__version__)
                     for name, (_service, results, elapsed) in done}
        print(dumps({"targets": documents}, pretty=sys.stdout.isatty()))
    else:
        from .render.text import make_console, render_diagnose

        console = make_console()
        for name, (service, results, elapsed) in done:
            console.rule(_heading(name, service.config), align="left")
            console.print(render_diagnose(results, host=host, elapsed_ms=elapsed, verbose=args.verbose))
    return EXIT[worst_word([results for _name, (_service, results, _elapsed) in done])]["diagnose"]


def _judged_across_nodes(done: list, snapshots: dict[int, Any]) -> list:
    """Sharing tags judged over every node's own view: a node alone sees only its own tags (#16)."""
    from .model.topology import fleet_shtags

    judged = fleet_shtags({name: results for name, (_service, results, _elapsed) in done},
                          {name: snapshots[id(service)].parts.get("topology") for name, (service, _r, _e) in done})
    return [(name, (service, judged[name], elapsed)) for name, (service, _results, elapsed) in done]


def worst_word(per_target: list[list]) -> str:
    """The EXIT row of the worst node: a node without results is unknown (as a lone diagnose says)."""
    from .model import Status, overall_status

    statuses = [overall_status([r.status for r in results]) if results else Status.UNKNOWN for results in per_target]
    worst = overall_status(statuses) if statuses else Status.UNKNOWN
    return {"ok": "ok", "skip": "ok"}.get(worst.value, worst.value)


def _heading(name: str, config):
    """The node's section title (plain text: rule() does not parse markup from a Text)."""
    from rich.text import Text

    labels = " ".join(f"{key}={value}" for key, value in sorted(config.labels.items()))
    return Text(f"{name}  {config.mi_target}" + (f"  {labels}" if labels else ""))


# --------------------------------------------------------------------------- exporter

EXPORTER_LISTEN = "127.0.0.1:9464"  # console.exporter.DEFAULT_LISTEN (not imported: prometheus-client is slow to load)
EXPORTER_INTERVAL = 5.0


def add_exporter_parser(subs, add_common) -> None:
    exporter = subs.add_parser(
        "exporter", allow_abbrev=False, help="serve every target's state as Prometheus metrics (HTTP /metrics)",
        description="Watch every [[targets]] node (or the one --target names, or the flat options' node) with the "
                    "console's live sessions (OpenSIPS events where available; the cheap counters every --interval, "
                    "the lists and checks every heavy_interval) and serve the last state as Prometheus metrics; a "
                    "scrape never makes a node collect.  Stops cleanly on SIGTERM or SIGINT.",
        epilog="Exit codes: 0 stopped by SIGTERM or SIGINT; 1 cannot listen on the address; 2 command line "
               "refused; 3 bad configuration.")
    exporter.add_argument("--listen", metavar="HOST:PORT", default=EXPORTER_LISTEN,
                          help=f"where to serve /metrics (default {EXPORTER_LISTEN}; port 0: one from the OS, printed)")
    exporter.add_argument("--interval", metavar="S", type=float, dest="exporter_interval", default=EXPORTER_INTERVAL,
                          help=f"seconds between two polls of a node's counters (default {EXPORTER_INTERVAL:g})")
    add_common(exporter, sub=True)


async def exporter(args: argparse.Namespace) -> int:
    from .config import is_loopback
    from .errors import ConfigError
    from .exporter import Exporter, parse_listen
    from .fleet import FleetSession, TargetNotChosen, pick_target, targets_from

    try:
        listen = parse_listen(args.listen)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not args.exporter_interval > 0:
        raise UsageError("--interval must be a positive number of seconds")
    async with _platform(args) as (plugins, demo):
        config = _load_config(args, demo, plugins)
        targets = targets_from(args, config)
        try:
            if getattr(args, "target", None) is not None:
                targets = [pick_target(targets, args.target)]
        except TargetNotChosen as exc:
            raise UsageError(exc.message, hint=exc.hint) from None
        fleet = FleetSession(targets, config, interval=args.exporter_interval,
                             background_interval=args.exporter_interval, plugins=plugins)
        _report_plugin_failures(fleet.service(fleet.names[0]))
        served = Exporter(fleet, listen)
        try:
            served.start()
        except OSError as exc:
            await fleet.aclose()
            _err(f"exporter: cannot listen on {args.listen}: {exc.strerror or exc}")
            return EXIT["partial"]["exporter"]
        if not is_loopback(listen[0]):
            _err(f"warning: /metrics on {listen[0]} is plain HTTP without authentication: anyone who reaches it "
                 "reads the platform's state — prefer loopback and a Prometheus on the same host, or a firewall")
        names = ", ".join(spec.name or "default" for spec in targets)
        _err(f"exporter: {len(targets)} target{'s' if len(targets) != 1 else ''} ({names}) on {served.url}")
        await served.run()
    return EXIT["ok"]["exporter"]
