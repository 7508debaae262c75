"""The one grammar of MI parameters, for `opsconsole mi` and the TUI's MI screen alike.

    version                                     no parameters
    ul_show_contact location 1000@example.com   plain words: positional parameters (strings)
    dlg_list callid=abc@host                    key=value: a string (httpie's convention; OpenSIPS
                                                takes numbers as strings too, as opensips-cli sends them)
    dlg_list index:=0 counter:=10               key:=JSON: a typed value (number, list, object…)
    get_statistics statistics:=["dialog:"]      … e.g. the list get_statistics wants
    dlg_list {"callid": "x"}                    one JSON object or array: sent as it is

Plain words and named parameters do not mix (OpenSIPS takes one or the other).  On the MI screen
single quotes group words ('sip:a b'); double quotes belong to the JSON and are kept.  On the command
line the shell's quoting applies (`opsconsole mi get_statistics 'statistics:=["dialog:"]'`).
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Sequence

# What the MI screen offers as examples: each works on a real OpenSIPS 3.4 and 4.0
# (tests/real/test_real_mi_grammar.py sends every one).
EXAMPLES = ("version", 'get_statistics statistics:=["usrloc:","dialog:"]', "dlg_list index:=0 counter:=10",
            "which")


class ParamError(ValueError):
    """Parameters that do not parse: the message says what and how to write it."""


def parse_params(words: Sequence[str]) -> Any:
    """Words after the method → None, a dict (named), a list (positional) or the JSON given."""
    if not words:
        return None
    if len(words) == 1 and words[0].lstrip()[:1] in ("{", "["):
        try:
            return json.loads(words[0])
        except json.JSONDecodeError as exc:
            raise ParamError(f"params: not valid JSON: {exc.msg} at column {exc.colno}") from None
    named = [w for w in words if _is_named(w)]
    if named and len(named) != len(words):
        raise ParamError("params: plain words and key=value do not mix; use one style "
                         f"(got {', '.join(repr(w) for w in words)})")
    if not named:
        return list(words)
    params: dict[str, Any] = {}
    for word in words:
        key, value = _named(word)
        params[key] = value
    return params


def parse_command(line: str) -> tuple[str, Any]:
    """A whole MI screen line: the method, then its parameters in the grammar above (quotes as in
    a shell; a JSON object or array may be typed as it is, spaces and all)."""
    text = line.strip()
    if not text:
        raise ParamError(f"type an MI command, e.g. {EXAMPLES[0]} or {EXAMPLES[1]}")
    method, _, rest = text.partition(" ")
    rest = rest.strip()
    if rest[:1] in ("{", "["):
        return method, parse_params([rest])
    return method, parse_params(_words(rest))


def _words(text: str) -> list[str]:
    """Whitespace-separated words; single quotes group, double quotes stay (they are JSON's)."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = "'"
    lexer.escape = ""
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:
        raise ParamError(f"params: {exc}") from None


def _is_named(word: str) -> bool:
    head = word.split("=", 1)[0]
    return "=" in word and head.rstrip(":") != "" and " " not in head


def _named(word: str) -> tuple[str, Any]:
    if ":=" in word and word.index(":=") < word.index("="):
        key, _, raw = word.partition(":=")
        try:
            return key, json.loads(raw)
        except json.JSONDecodeError:
            raise ParamError(f"params: {key}:= needs a JSON value, got {raw!r}") from None
    key, _, value = word.partition("=")
    return key, value
