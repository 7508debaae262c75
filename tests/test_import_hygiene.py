"""Public Textual API only (issue #13): private Textual names change without notice between releases.

Read from the sources with `ast`; the private names are read from the installed Textual's own sources
(every `_name` it defines as a method, a class attribute or a `self._name`), so the check follows
Textual as it evolves.  Forbidden under console/ and plugins/:
- importing a private Textual module (`textual._two_way_dict`, `from textual import _x`);
- in a subclass of a Textual class: defining, overriding or touching (`self._x`, `super()._x`) a
  private name Textual defines;
- anywhere: reading `something._x` where `_x` is private to Textual and the project defines no
  such name of its own, plus a list of DataTable/App internals that are always forbidden.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from functools import lru_cache
from pathlib import Path

import textual

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = [ROOT / "console", ROOT / "plugins"]

# Internals the console once used (issue #13): never again, whatever the object.
ALWAYS_FORBIDDEN = frozenset({
    "_row_locations", "_column_locations", "_update_count", "_updated_cells", "_render_cell",
    "_get_row_style", "_clear_caches", "_get_styles_to_render_cell", "_header_cells", "_row_render_cache",
    "_cell_render_cache", "_line_cache", "_row_renderable_cache", "_get_row_renderables", "_styles_cache",
    "_show_hover_cursor", "_pseudo_class_state", "_require_update_dimensions",
})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _sources() -> list[Path]:
    return sorted(path for directory in SOURCE_DIRS for path in directory.rglob("*.py")
                  if ".venv" not in path.parts)


@lru_cache(maxsize=None)
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@lru_cache(maxsize=1)
def textual_private_names() -> frozenset[str]:
    """Every private name the installed Textual defines on its classes or instances."""
    names: set[str] = set()
    for path in Path(textual.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
                    elif isinstance(item, ast.Assign):
                        names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        names.add(item.target.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return frozenset(name for name in names if _is_private(name))


def _textual_imports(tree: ast.Module) -> set[str]:
    """Names a module binds from Textual (`from textual.widgets import DataTable` -> DataTable)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "textual":
            bound.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                         if alias.name.split(".")[0] == "textual")
    return bound


def _other_modules(tree: ast.Module) -> set[str]:
    """Names bound to non-Textual modules (`os`, `sys`): `os._exit` is not Textual's."""
    return {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names if alias.name.split(".")[0] != "textual"}


def textual_ancestry_private_names(cls: type) -> frozenset[str]:
    """Private names the Textual classes in `cls`'s MRO define: class attributes, methods, and the
    `self._x` their methods assign (instance state such as App._exit)."""
    names: set[str] = set()
    for ancestor in cls.__mro__:
        if ancestor.__module__.startswith("textual"):
            names |= _own_private_names(ancestor)
    return frozenset(names)


@lru_cache(maxsize=None)
def _own_private_names(cls: type) -> frozenset[str]:
    names = set(vars(cls))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        tree = ast.Module(body=[], type_ignores=[])
    names.update(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                 and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and node.value.id == "self")
    return frozenset(name for name in names if _is_private(name))


def _module_name(path: Path) -> str:
    base = ROOT / "plugins" if path.is_relative_to(ROOT / "plugins") else ROOT
    return ".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__")


def textual_subclasses() -> dict[tuple[str, str], frozenset[str]]:
    """(module, class name) of every project class deriving from a Textual class -> the private
    names of its Textual ancestors.  Only modules importing Textual are imported."""
    found: dict[tuple[str, str], frozenset[str]] = {}
    for path in _sources():
        if not _textual_imports(_parsed(path)):
            continue
        module = importlib.import_module(_module_name(path))
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__ \
                    and any(c.__module__.startswith("textual") for c in value.__mro__):
                found[(module.__name__, name)] = textual_ancestry_private_names(value)
    return found


def project_private_names(subclasses: dict[tuple[str, str], frozenset[str]]) -> set[str]:
    """Private names the project defines itself (its own attributes, methods, functions), less
    those that are Textual's in the class that defines them."""
    names: set[str] = set()
    for path in _sources():
        module = _module_name(path)
        tree = _parsed(path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            theirs = subclasses.get((module, cls.name), frozenset())
            for item in ast.walk(cls):
                if isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store) and item.attr not in theirs:
                    names.add(item.attr)
            names.difference_update(n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                    and n.name in theirs)
    return {name for name in names if _is_private(name)}


def private_textual_uses(path: Path, private: frozenset[str], own: set[str],
                         subclasses: dict[tuple[str, str], frozenset[str]]) -> list[str]:
    tree = _parsed(path)
    where = path.relative_to(ROOT)
    module = _module_name(path)
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"{where}:{node.lineno}: imports {alias.name}" for alias in node.names
                         if alias.name.startswith("textual.") and any(map(_is_private, alias.name.split(".")))]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "textual":
            if any(map(_is_private, (node.module or "").split("."))) or any(_is_private(a.name) for a in node.names):
                problems.append(f"{where}:{node.lineno}: imports from {node.module}: "
                                + ", ".join(alias.name for alias in node.names))
        elif isinstance(node, ast.ClassDef) and (module, node.name) in subclasses:
            problems += _subclass_problems(node, where, subclasses[(module, node.name)])
    modules = _other_modules(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in modules:
                continue  # os._exit, sys._getframe: not Textual
            if node.attr in ALWAYS_FORBIDDEN or (node.attr in private and node.attr not in own):
                problems.append(f"{where}:{node.lineno}: uses .{node.attr} (private to Textual)")
    return problems


def _subclass_problems(node: ast.ClassDef, where: Path, private: frozenset[str]) -> list[str]:
    problems = []
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in private:
            problems.append(f"{where}:{item.lineno}: {node.name} overrides Textual's {item.name}")
    for item in ast.walk(node):
        if isinstance(item, ast.Attribute) and item.attr in private and _on_self(item.value):
            problems.append(f"{where}:{item.lineno}: {node.name} touches Textual's {item.attr}")
    return problems


def _on_self(value: ast.expr) -> bool:
    if isinstance(value, ast.Name):
        return value.id == "self"
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


def test_the_checker_knows_textuals_private_names():
    private = textual_private_names()
    assert {"_row_locations", "_update_count", "_render_cell", "_exit"} <= private
    assert "render_line" not in private and "__init__" not in private


def test_the_checker_finds_what_the_console_once_did(tmp_path):
    """The old tablediff/app code, as it was: every kind of use is reported."""
    old = tmp_path / "old.py"
    old.write_text(
        "from textual._two_way_dict import TwoWayDict\n"
        "from textual.widgets import DataTable\n"
        "import os\n"
        "class Steady(DataTable):\n"
        "    def _render_cell(self, row):\n"
        "        return super()._render_cell(row)\n"
        "    def paint(self):\n"
        "        return self._update_count\n"
        "def peek(table):\n"
        "    os._exit(0)\n"
        "    return table._data, table._row_locations\n",
        encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        from textual.widgets import DataTable

        steady = {("old", "Steady"): textual_ancestry_private_names(DataTable)}
        problems = private_textual_uses(old, textual_private_names(), set(), steady)
    finally:
        ROOT = saved
    text = "\n".join(problems)
    assert "imports from textual._two_way_dict" in text
    assert "overrides Textual's _render_cell" in text
    assert "touches Textual's _update_count" in text
    assert "uses ._row_locations" in text and "uses ._data" in text
    assert "_exit" not in text  # os._exit is the standard library's


def test_no_private_textual():
    private = textual_private_names()
    subclasses = textual_subclasses()
    own = project_private_names(subclasses)
    assert {("console.ui.tablediff", "SteadyTable"), ("console.ui.app", "OpsConsoleApp")} <= set(subclasses)
    assert "_exit" in subclasses[("console.ui.app", "OpsConsoleApp")]  # App's instance state is seen
    problems = [problem for path in _sources() for problem in private_textual_uses(path, private, own, subclasses)]
    assert problems == [], "private Textual API (issue #13):\n" + "\n".join(problems)
