"""The methods `dataclasses` generates, compiled once and kept like bytecode (#18).

Every `@dataclass` writes the source of its `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__`... as text and compiles it at import: for the ~80 dataclasses a one-shot command loads
that was ~430 compilations, 40 ms of its ~160 ms of imports (measured: bench/bench_oneshot.py,
README "Measured").  Python caches a module's bytecode in `__pycache__`, but not this generated code.

`install()` wraps `dataclasses._create_fn` so that the same text is compiled once: the code objects
are kept in `console/__pycache__/dataclass-code.<tag>/<module>.marshal` (one file per module that
defines dataclasses, read when that module builds its first one), written like a .pyc (not when
`sys.dont_write_bytecode` / PYTHONDONTWRITEBYTECODE says not to, never failing).  The generated functions are exactly those `dataclasses` builds (the same text, compiled the
same way, run in the same namespace); only the compilation is skipped.  On a Python whose
`dataclasses` works otherwise (3.13 builds functions differently) nothing is changed.
"""

from __future__ import annotations

import atexit
import dataclasses
import marshal
import os
import sys
from types import CodeType

_EXPECTED_ARGS = ("name", "args", "body", "globals", "locals", "return_type")
_MAX_ENTRIES = 2000  # per module: generated texts differ per class, a bound keeps a stale cache small

_codes: dict[str, dict[str, CodeType]] = {}  # module -> generated text -> its compiled code
_state: dict = {"installed": False, "dirty": set()}


def cache_dir() -> str:
    return os.path.join(os.path.dirname(__file__), "__pycache__", f"dataclass-code.{sys.implementation.cache_tag}")


def supported() -> bool:
    """This Python's dataclasses builds each method from text with `_create_fn`, as 3.11 and 3.12 do."""
    create = getattr(dataclasses, "_create_fn", None)
    code = getattr(create, "__code__", None)
    return code is not None and code.co_varnames[:len(_EXPECTED_ARGS)] == _EXPECTED_ARGS


def install() -> bool:
    """Route dataclasses' compilations through the cache (once per process); False when unsupported."""
    if _state["installed"]:
        return True
    if not supported():
        return False
    dataclasses._create_fn = _create_fn
    atexit.register(save)
    _state["installed"] = True
    return True


def _create_fn(name, args, body, *, globals=None, locals=None, return_type=dataclasses.MISSING):
    # dataclasses._create_fn of CPython 3.11/3.12, line for line, but for the cached compilation.
    if locals is None:
        locals = {}
    return_annotation = ""
    if return_type is not dataclasses.MISSING:
        locals["_return_type"] = return_type
        return_annotation = "->_return_type"
    args = ",".join(args)
    body = "\n".join(f"  {b}" for b in body)
    txt = f" def {name}({args}){return_annotation}:\n{body}"
    local_vars = ", ".join(locals.keys())
    txt = f"def __create_fn__({local_vars}):\n{txt}\n return {name}"
    ns: dict = {}
    exec(_compiled(txt, (globals or {}).get("__name__")), globals, ns)
    return ns["__create_fn__"](**locals)


def _compiled(txt: str, module: str | None) -> CodeType:
    # Keyed by module: a file name from a dotted name only ('__main__' too; anything else is compiled).
    named = isinstance(module, str) and all(part.isidentifier() for part in module.split("."))
    codes = _module_codes(module) if named else None
    code = codes.get(txt) if codes is not None else None
    if code is None:
        code = compile(txt, "<string>", "exec")
        if codes is not None:
            codes[txt] = code
            _state["dirty"].add(module)
    return code


def _module_codes(module: str) -> dict[str, CodeType]:
    """The module's cached codes, read from its file on first use (only the modules a command imports)."""
    codes = _codes.get(module)
    if codes is None:
        codes = _codes[module] = _load(os.path.join(cache_dir(), f"{module}.marshal"))
    return codes


def _load(path: str) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as fh:
            loaded = marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return {}  # none yet, or unreadable: compile as dataclasses would
    if not isinstance(loaded, dict) or len(loaded) > _MAX_ENTRIES:
        return {}
    return {text: code for text, code in loaded.items() if isinstance(text, str) and isinstance(code, CodeType)}


def save() -> None:
    """Write the modules that compiled something new (at exit; like a .pyc: not when bytecode must not be
    written, atomically, best effort)."""
    dirty, _state["dirty"] = _state["dirty"], set()
    if not dirty or sys.dont_write_bytecode:
        return
    directory = cache_dir()
    for module in dirty:
        codes = _codes.get(module, {})
        path = os.path.join(directory, f"{module}.marshal")
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(directory, exist_ok=True)
            with open(temporary, "wb") as fh:
                marshal.dump(codes if len(codes) <= _MAX_ENTRIES else {}, fh)
            os.replace(temporary, path)  # atomic: a concurrent start reads the old cache or the new one
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
