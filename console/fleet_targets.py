"""Which node a command works on: the targets of a config (its [[targets]], or one unnamed target from
the flat options), `--target NAME`, and the Config of one node.  Light on purpose: every command
goes through it (console.cli_common._service); the fleet's live part is console.fleet."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from .config import Config, _did_you_mean, parse_hostport
from .errors import ConfigError
from .targets import TargetSpec, target_names


class TargetNotChosen(ConfigError):
    """Several targets and none named where one is needed (the CLI: a command-line error)."""


def targets_from(args: Any, config: Config) -> list[TargetSpec]:
    """The config's [[targets]], or one unnamed target from the flat options (command line, environment,
    [opensips]/[rtpengine], discovery) — also when an address was given on the command line next to
    [[targets]]: what the operator typed wins.  `args` may be None."""
    flat_given = any(getattr(args, key, None) for key in ("mi_url", "mi_fifo", "ng", "cli"))
    # --demo is one node of its own (a config file's [[targets]] are not it); --demo-nodes names its nodes
    one_demo = getattr(args, "demo", False) and not getattr(args, "demo_nodes", None)
    if config.targets and not flat_given and not one_demo:
        return list(config.targets)
    return [unnamed_target(config)]


def unnamed_target(config: Config) -> TargetSpec:
    def address(hostport) -> tuple[str, ...]:
        return (f"{hostport[0]}:{hostport[1]}",) if hostport else ()

    return TargetSpec("", mi_url=config.mi_url, mi_fifo=config.mi_fifo, ng=address(config.ng),
                      cli=address(config.cli), labels=dict(config.labels))


def pick_target(targets: Sequence[TargetSpec], name: str | None, *, needed: bool = True) -> TargetSpec | None:
    """The target `--target NAME` names; with no name, the only one.  Several and no name: None when not
    `needed` (the console then shows them all), else TargetNotChosen listing the names."""
    if name is not None:
        for spec in targets:
            if spec.name == name:
                return spec
        known = [spec.name for spec in targets if spec.name]
        if not known:
            raise TargetNotChosen(f"--target {name}: the configuration names no targets",
                                  hint="declare nodes as [[targets]] blocks (name, mi_url, ng, ...) in the config file")
        raise TargetNotChosen(f"--target {name}: no such target" + _did_you_mean(name, known),
                              hint=f"targets: {target_names(targets)}")
    if len(targets) == 1:
        return targets[0]
    if needed:
        raise TargetNotChosen(f"{len(targets)} targets are configured; name one with --target NAME (or --all "
                              f"where the command takes it): {target_names(targets)}")
    return None


def config_for(config: Config, spec: TargetSpec) -> Config:
    """The Config one node's service runs with: the shared settings, the node's addresses.  The
    unnamed target is `config` itself (today's single-node behaviour, unchanged)."""
    if not spec.name and not config.targets:
        return config

    def addresses(values: tuple[str, ...], key: str):
        return tuple(parse_hostport(value, option=f"[[targets]] {spec.name} {key}") for value in values)

    ng, cli = addresses(spec.ng, "ng"), addresses(spec.cli, "cli")
    return replace(config, mi_url=spec.mi_url if not spec.mi_fifo else None, mi_fifo=spec.mi_fifo,
                   ng=ng[0] if ng else None, cli=cli[0] if cli else None, relays_ng=ng, relays_cli=cli,
                   name=spec.name or config.name, labels=dict(spec.labels))


def target_config(args: Any, config: Config) -> Config:
    """The Config of the node a command works on: `--target`'s, or the only one.  Several targets and no
    --target: TargetNotChosen listing them for snapshot/diagnose/mi/trace; the interactive console takes
    the first (its Fleet screen shows them all: `config.targets` stays in every node's Config)."""
    targets = targets_from(args, config)
    spec = pick_target(targets, getattr(args, "target", None), needed=getattr(args, "command", None) is not None)
    return config_for(config, spec if spec is not None else targets[0])
