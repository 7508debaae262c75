"""Options that only make sense with another (or contradict another) are refused, never silently ignored.

Before: `opsconsole --demo-size -5` opened the TUI against whatever OpenSIPS it discovered.
A refusal is one line on stderr naming the options, exit code EXIT["usage"] for the command
(2; 3 for diagnose and mi, where 2 already means something); nothing is started or contacted.
"""

from __future__ import annotations

import pytest

from console.cli import main
from support.faults import assert_clean_output

MI = "http://127.0.0.1:9/mi"  # never contacted: the refusal comes first (port 9: discard, nothing listens)

REFUSED = [
    # (argv, exit code, words the message must hold)
    (["--demo-size", "5"], 2, ["--demo-size", "--demo"]),
    (["--demo-size", "-5"], 2, ["--demo-size", "positive"]),
    (["--demo", "--demo-size", "0"], 2, ["--demo-size", "positive"]),
    (["--demo", "--demo-size", "many"], 2, ["--demo-size", "whole number"]),
    (["--demo-version", "4.0"], 2, ["--demo-version", "--demo"]),
    (["snapshot", "--demo-size", "5"], 2, ["--demo-size", "--demo"]),
    (["diagnose", "--demo-version", "3.4"], 3, ["--demo-version", "--demo"]),
    (["--demo", "--mi-url", MI], 2, ["--mi-url", "--demo"]),
    (["snapshot", "--demo", "--ng", "127.0.0.1:9"], 2, ["--ng", "--demo"]),
    (["mi", "ul_rm", "aor=x", "--yes", "--mi-url", MI], 3, ["--yes", "--allow-write"]),
    (["--allow-write", "--yes"], 2, ["--yes", "mi"]),
    (["mi", "version", "--mi-url", MI, "--mi-fifo", "/run/opensips/fifo"], 3, ["--mi-url", "--mi-fifo"]),
    (["diagnose", "--yes", "--allow-write"], 3, ["--yes", "mi"]),
    (["snapshot", "--full-sync", "--no-contacts"], 2, ["--full-sync", "--no-contacts"]),
    (["--interval", "5", "snapshot"], 2, ["--interval", "console"]),
    (["--no-events", "diagnose"], 3, ["--no-events", "console"]),
    (["--interval", "0"], 2, ["--interval", "positive"]),
    (["diagnose", "--list", "--only", "opensips"], 3, ["--list", "--only"]),
    (["diagnose", "--list", "--json"], 3, ["--list", "--json"]),
]


@pytest.mark.parametrize("argv, code, words", REFUSED, ids=[" ".join(a) for a, _, _ in REFUSED])
def test_an_option_without_its_partner_is_refused(argv, code, words, capsys):
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse's own refusals (a bad value) exit from the parser
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code, err
    for word in words:
        assert word in err, err
    assert out == ""
    assert_clean_output(out, err)


def test_mi_usage_does_not_call_params_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["mi"])
    err = capsys.readouterr().err
    assert exc.value.code == 3
    assert "required: method" in err
    assert "params" not in err.split("required:")[1]  # PARAMs are optional
    assert "[PARAM ...]" in err


def test_the_same_options_with_their_partner_are_accepted():
    """The refusals above are about the combination, not the option: with its partner each parses."""
    from console.cli import _check_combinations, build_parser

    for argv in (["--demo", "--demo-size", "5", "--demo-version", "4.0"], ["--interval", "5", "--no-events"],
                 ["mi", "ul_rm", "aor=x", "--allow-write", "--yes"], ["--allow-write", "--yes", "mi", "ul_rm"],
                 ["snapshot", "--full-sync"], ["diagnose", "--list"], ["snapshot", "--demo", "--config", "x.toml"]):
        _check_combinations(build_parser().parse_args(argv))
