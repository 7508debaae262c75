"""Targets: the nodes one console watches (`[[targets]]` in the config file).

A target is one OpenSIPS (its MI over mi_http or mi_fifo) with the RTPengines it uses (several ng /
CLI addresses allowed) and free labels (site, role, …).  Today's flat options (`--mi-url`, `[opensips]
mi_url`, discovery) are one unnamed target.  This module only describes and validates them; the
config module reads them (console.config) and the fleet runs them (console.fleet).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .errors import ConfigError

# key -> what it takes, for messages; validation and the docs read the same table
TARGET_KEYS: dict[str, str] = {
    "name": 'a name like "sbc-1" (letters, digits, . _ -)',
    "mi_url": 'the OpenSIPS mi_http URL, e.g. "http://10.0.0.5:8888/mi"',
    "mi_fifo": 'the OpenSIPS mi_fifo path, e.g. "/run/opensips/opensips_fifo"',
    "ng": 'RTPengine ng addresses, e.g. ["10.0.0.7:2223", "10.0.0.8:2223"]',
    "cli": 'RTPengine CLI addresses, e.g. ["10.0.0.7:9900"]',
    "labels": 'free labels, e.g. {site = "par", role = "active"}',
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # a Prometheus label name
RESERVED_LABELS = ("target", "check", "source", "instance", "job")  # the exporter's own label names


@dataclass(frozen=True)
class TargetSpec:
    """One node.  `name` is "" for the unnamed single target built from today's flat options."""

    name: str
    mi_url: str | None = None
    mi_fifo: str | None = None
    ng: tuple[str, ...] = ()  # "host:port", several RTPengines allowed (the first is the target's own)
    cli: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def shown_name(self) -> str:
        return self.name or "(default)"


def parse_targets(raw: Any, *, check_mi_url, parse_hostport) -> tuple[TargetSpec, ...]:
    """The `[[targets]]` array of the TOML file, validated like every section: unknown keys refused
    with a did-you-mean, names unique, addresses parsed now (not at the first poll).
    `check_mi_url` / `parse_hostport`: console.config's (this module imports nothing above it)."""
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise ConfigError("targets must be an array of tables: [[targets]] blocks, each with name = …",
                          hint="write [[targets]] (double brackets) before each node's keys")
    specs: list[TargetSpec] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(raw, 1):
        spec = _one_target(entry, number, check_mi_url, parse_hostport)
        if spec.name in seen:
            raise ConfigError(f"[[targets]] #{number}: name {spec.name!r} is already the name of [[targets]] "
                              f"#{seen[spec.name]}", hint="each target needs a name of its own")
        seen[spec.name] = number
        specs.append(spec)
    return tuple(specs)


def _one_target(entry: Mapping[str, Any], number: int, check_mi_url, parse_hostport) -> TargetSpec:
    where = f"[[targets]] #{number}"
    for key in entry:
        if key not in TARGET_KEYS:
            close = difflib.get_close_matches(key, list(TARGET_KEYS), n=1, cutoff=0.6)
            raise ConfigError(f"unknown setting {where} {key}" + (f" — did you mean {close[0]}?" if close else ""),
                              hint=f"[[targets]] takes: {', '.join(sorted(TARGET_KEYS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(f"{where}: name must be {TARGET_KEYS['name']}, got {name!r}")
    where = f"[[targets]] {name}"
    mi_url, mi_fifo = (_text(entry, key, where) for key in ("mi_url", "mi_fifo"))
    if mi_url and mi_fifo:
        raise ConfigError(f"{where}: mi_url and mi_fifo: MI goes over one of them; choose one")
    if not (mi_url or mi_fifo):
        raise ConfigError(f"{where}: needs mi_url or mi_fifo (where its OpenSIPS MI answers)")
    if mi_url:
        check_mi_url(mi_url, f"{where} mi_url")
    ng, cli = (_addresses(entry, key, where, parse_hostport) for key in ("ng", "cli"))
    return TargetSpec(name, mi_url=mi_url, mi_fifo=mi_fifo, ng=ng, cli=cli, labels=_labels(entry, where))


def _text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{where}: {key} must be {TARGET_KEYS[key]}, got {value!r}")
    return value


def _addresses(entry: Mapping[str, Any], key: str, where: str, parse_hostport) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]  # one address written without brackets
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: {key} must be {TARGET_KEYS[key]}, got {value!r}")
    for item in value:
        parse_hostport(item, option=f"{where} {key}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {key} names an address twice: {value!r}")
    return tuple(value)


def _labels(entry: Mapping[str, Any], where: str) -> Mapping[str, str]:
    labels = entry.get("labels", {})
    if not isinstance(labels, dict):
        raise ConfigError(f"{where}: labels must be {TARGET_KEYS['labels']}, got {labels!r}")
    for key, value in labels.items():
        if not LABEL_PATTERN.match(key) or key in RESERVED_LABELS or key.startswith("__"):
            raise ConfigError(f"{where}: label {key!r} is not a usable label name",
                              hint="letters, digits and _ (not first a digit); not one of "
                                   + ", ".join(RESERVED_LABELS))
        if not isinstance(value, str):
            raise ConfigError(f"{where}: label {key} must be a string, got {value!r}")
    return MappingProxyType(dict(labels))


def target_names(targets) -> str:
    return ", ".join(spec.shown_name for spec in targets)
