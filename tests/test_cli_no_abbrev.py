"""No option may be abbreviated: argparse's default would take `--a` for `--allow-write` and run a write."""

import pytest

from console.cli import build_parser, main

PREFIXES = ("--a", "--al", "--all", "--allow", "--allow-w")
# Every command with the arguments that make it otherwise valid.
COMMANDS = {
    "tui": [],
    "snapshot": ["snapshot"],
    "diagnose": ["diagnose"],
    "mi": ["mi", "ul_rm", "table_name=location", "aor=x"],
}


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_allow_write_prefix_is_refused(command, prefix, capsys):
    if prefix == "--all" and command in ("snapshot", "diagnose"):
        # an option of its own there (#16: every [[targets]] node), never --allow-write
        args = build_parser().parse_args([*COMMANDS[command], prefix])
        assert args.all_targets is True and not getattr(args, "allow_write", False)
        return
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*COMMANDS[command], prefix])
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ("--a", "--all", "--allow"))
def test_mi_write_with_a_prefix_never_reaches_the_platform_or_the_audit_log(prefix, tmp_path, monkeypatch, capsys):
    """The reported hole end to end: the write is refused before any config, connection or audit line."""
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["mi", "ul_rm", "table_name=location", "aor=x", prefix, "--mi-url", "http://127.0.0.1:9/mi"])
    assert exc.value.code == 3  # a refused `mi` command line (2 is a transport failure there)
    assert not (tmp_path / ".local/state/opsconsole/audit.log").exists()


@pytest.mark.parametrize("abbrev, full", [("--mi", "--mi-url"), ("--time", "--timeout"), ("--conf", "--config"),
                                          ("--demo-s", "--demo-size"), ("--no-ev", "--no-events"),
                                          ("--js", "--json"), ("--full", "--full-sync"), ("--verb", "--verbose")])
def test_no_option_is_abbreviated(abbrev, full, capsys):
    argv = {"--js": ["snapshot"], "--full": ["snapshot"], "--verb": ["diagnose"]}.get(abbrev, [])
    value = [] if full in ("--no-events", "--json", "--full-sync", "--verbose") else ["1"]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*argv, abbrev, *value])
    assert exc.value.code == 2
    # The full spelling still works.
    build_parser().parse_args([*argv, full, *value])


def test_every_parser_refuses_abbreviations():
    """Walks the parser tree, so a subcommand added later cannot forget allow_abbrev=False."""
    import argparse

    def walk(parser):
        yield parser
        for action in parser._actions:  # argparse exposes subparsers only here
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from walk(sub)

    parsers = list(walk(build_parser()))
    assert len(parsers) >= 4
    assert all(p.allow_abbrev is False for p in parsers), [p.prog for p in parsers if p.allow_abbrev]
