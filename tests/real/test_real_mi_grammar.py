"""The one MI parameter grammar on a real OpenSIPS 3.4 and 4.0: every example the MI screen offers,
and the CLI's forms, reach the method with parameters OpenSIPS accepts (no "Invalid params")."""

from __future__ import annotations

import shlex

import pytest

import json

from console.mi_params import EXAMPLES, parse_command


def _mi(opsconsole, platform, line: str) -> tuple[int, str, str]:
    method, *words = shlex.split(line)
    code, out = opsconsole.run("mi", method, *words, "--mi-url", platform.mi_url)
    return code, out, opsconsole.last_err


@pytest.mark.parametrize("line", EXAMPLES)
def test_every_example_of_the_mi_screen_is_answered(real_platform, opsconsole, line):
    """As typed on the MI screen (its parser), sent through the CLI's (the same grammar)."""
    method, params = parse_command(line)
    words = [json.dumps(params)] if params is not None else []
    code, out, err = _mi(opsconsole, real_platform, shlex.join([method, *words]))
    assert code == 0, err
    assert out.strip()


@pytest.mark.parametrize("line, key", [
    ("dlg_list index=0 counter=2", "Dialogs"),           # numbers as strings, as opensips-cli sends them
    ("dlg_list index:=0 counter:=2", "Dialogs"),         # typed
    ("get_statistics 'statistics:=[\"dialog:\"]'", "dialog:active_dialogs"),
    ("get_statistics '{\"statistics\": [\"dialog:\"]}'", "dialog:active_dialogs"),
])
def test_cli_forms_reach_the_method(real_platform, opsconsole, line, key):
    code, out, err = _mi(opsconsole, real_platform, line)
    assert code == 0, err
    assert key in out


def test_plain_words_are_positional_parameters(real_platform, opsconsole):
    """`ul_show_contact location AOR`: 4.0 keeps the domain in the AoR, 3.4 (this lab) does not."""
    contacts = real_platform.mi("ul_dump" if real_platform.version == "3.4" else "usrloc:dump")
    aor = next(a["AOR"] for d in contacts["Domains"] for a in d["AORs"] if a["AOR"].startswith("1000"))
    code, out, err = _mi(opsconsole, real_platform, f"ul_show_contact location {aor}")
    assert code == 0, err
    assert "Contacts" in out
