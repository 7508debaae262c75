"""Entry points of one group, read from the installed distributions' `entry_points.txt` (#18).

`importlib.metadata.entry_points(group=...)` gives the same answer but imports ~20 modules (email,
zipfile, csv, ...) to do it: ~20 ms of every one-shot command, for four lines of text.  This reads the
`*.dist-info` / `*.egg-info` directories on `sys.path` the way importlib.metadata does (path order,
the first distribution of a name wins) and falls back to importlib.metadata itself whenever the
environment holds anything else it knows how to read (a zip or egg file on the path, an import hook
that finds distributions its own way).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable

_ENTRY = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_METADATA_DIR = (".dist-info", ".egg-info")


@dataclass(frozen=True)
class EntryPoint:
    """What console.plugins uses of importlib.metadata.EntryPoint: name, value, load()."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        match = _ENTRY.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj


def entry_points(group: str, path: Iterable[str] | None = None) -> list[EntryPoint]:
    entries = list(sys.path if path is None else path)
    if not _plain_directories_only(entries):
        return _from_importlib(group)
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in entries:
        for meta_dir in _metadata_dirs(entry or "."):
            name = _normalized(os.path.basename(meta_dir))
            if name in seen:
                continue
            seen.add(name)
            found.extend(_read_group(os.path.join(meta_dir, "entry_points.txt"), group))
    return found


def _plain_directories_only(entries: list[str]) -> bool:
    """Directories (or missing entries) only, and no import hook with distributions of its own."""
    from importlib.machinery import PathFinder

    hooks = [f for f in sys.meta_path if f is not PathFinder and hasattr(f, "find_distributions")]
    return not hooks and not any(os.path.isfile(entry) for entry in entries if entry)


def _metadata_dirs(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names if name.endswith(_METADATA_DIR)
            and os.path.isdir(os.path.join(directory, name))]


def _normalized(dir_name: str) -> str:
    """'Foo.Bar-1.0.dist-info' -> 'foo_bar', as importlib.metadata names a distribution by its stem."""
    stem = dir_name.rpartition(".")[0]
    return re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()


def _read_group(path: str, group: str) -> list[EntryPoint]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeError):
        return []
    found: list[EntryPoint] = []
    section = None
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == group:
            name, sep, value = line.partition("=")
            if sep:
                found.append(EntryPoint(name.strip(), value.strip(), group))
    return found


def _from_importlib(group: str) -> list[Any]:
    from importlib.metadata import entry_points as metadata_entry_points

    return list(metadata_entry_points(group=group))
