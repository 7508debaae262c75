"""The import graph of console/ and plugins/: no cycles, and layers only import downwards.

Forbidden: the core importing a plugin or the UI, a plugin importing the UI, a renderer importing the UI.
The graph is read from the sources (ast), so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = [ROOT / "console", *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists())]


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGE_DIRS:
        for path in package.rglob("*.py"):
            parts = path.relative_to(package.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _target(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a module.attribute) is."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _target(module, path, node)
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            edges.update(owner for owner in (_owner(n, modules) for n in names) if owner and owner != module)
        graph[module] = edges
    return graph


def _layer(module: str) -> str:
    if module.startswith("console.ui"):
        return "ui"
    if module.startswith("console.render"):
        return "render"
    if module.startswith("console"):
        return "core"
    return "plugin"


FORBIDDEN = {("core", "plugin"), ("core", "ui"), ("plugin", "ui"), ("render", "ui"), ("render", "plugin")}


def test_no_layer_imports_upwards():
    graph = import_graph()
    wrong = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                   if (_layer(a), _layer(b)) in FORBIDDEN and a != "console.cli")
    # console.cli is the entry point: it starts the UI (lazily) and nothing imports it.
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_cli_is_imported_by_nothing_and_only_it_starts_the_ui():
    graph = import_graph()
    assert not [a for a, targets in graph.items() if "console.cli" in targets and a != "console.__main__"]
    cli_targets = {_layer(b) for b in graph["console.cli"]}
    assert "plugin" not in cli_targets, sorted(graph["console.cli"])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_graph_reader_sees_real_edges():
    """Guards the test itself: a reader that found no edges would pass everything."""
    graph = import_graph()
    assert "console.model" in graph["console.snapshot"]
    assert "console.errors" in graph["opsconsole_opensips.client"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
