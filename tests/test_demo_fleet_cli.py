"""`opsconsole --demo --demo-nodes N`: the command line's path to the Fleet screen (the platform hook,
the config's targets, the console's FleetSession), and its refusals."""

from __future__ import annotations

import pytest

from console.cli import main
from console.cli_common import _platform, _service
from console.cli import build_parser
from console.ui.fleet import console_fleet
from support.faults import assert_clean_output


@pytest.mark.parametrize("argv, words", [
    (["--demo-nodes", "3"], ["--demo-nodes", "--demo"]),  # without the demo: refused, nothing started
    (["--demo", "--demo-nodes", "0"], ["--demo-nodes", "positive"]),
    (["snapshot", "--demo", "--demo-nodes", "51"], ["--demo-nodes", "1 to 50"]),  # the demo says its bound
    (["snapshot", "--demo-nodes", "2"], ["--demo-nodes", "--demo"]),
])
def test_demo_nodes_is_refused_without_the_demo_or_out_of_range(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal of a bad value
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, err
    for word in words:
        assert word in err, err
    assert out == ""
    assert_clean_output(out, err)


async def test_the_console_of_demo_nodes_polls_every_node(tmp_path):
    args = build_parser().parse_args(["--demo", "--demo-nodes", "4", "--demo-size", "20"])
    async with _platform(args) as (plugins, overrides):
        service = _service(args, overrides | {"audit_log": str(tmp_path / "audit.log")}, plugins)
        fleet = console_fleet(args, service.config, plugins, service)
        try:
            assert fleet is not None and fleet.names == ("node-01", "node-02", "node-03", "node-04")
            assert fleet.focused == "node-01" and fleet.service("node-01") is service
            rows = await fleet.poll_once()
        finally:
            await fleet.aclose()
    assert [row.name for row in rows] == list(fleet.names)
    assert all(row.version and row.contacts for row in rows)  # every node answered its own MI
    assert rows[-1].worst_status == "FAIL" and rows[-1].load_pct == 57.0


async def test_the_plain_demo_stays_a_single_node(tmp_path):
    args = build_parser().parse_args(["--demo", "--demo-size", "20"])
    async with _platform(args) as (plugins, overrides):
        service = _service(args, overrides | {"audit_log": str(tmp_path / "audit.log")}, plugins)
        try:
            assert console_fleet(args, service.config, plugins, service) is None
        finally:
            await service.aclose()
