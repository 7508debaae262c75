"""Text output that is not a terminal is never wrapped and never cuts an identifier: `opsconsole snapshot |
grep CALLID` finds the Call-ID (issue #14, item 7).  On a terminal, long values are still shortened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.render.text import make_console
from support.faults import clean_home, targets  # noqa: F401  (clean_home: fixture)

pytestmark = pytest.mark.usefixtures("clean_home")

MI = Path(__file__).parent / "fixtures" / "demo" / "opensips-3.4" / "mi"
LONG_AOR = "a-very-long-registration-name-that-no-80-column-table-can-hold-" + "x" * 40 + "@tenant.example.com"
LONG_CALLID = "3c2a5f1e-9b7d-4e2f-8a61-" + "0123456789abcdef" * 5 + "@sbc-west-17.carrier.example.net"


def long_identifiers(mi_server) -> None:
    """The fake's first contact and first dialog get identifiers far wider than 80 columns."""
    dialogs = json.loads((MI / "dlg_list_ctx.json").read_text())["result"]
    dialogs["Dialogs"][0]["callid"] = LONG_CALLID
    mi_server.set_response("dlg_list_ctx", dialogs)
    mi_server.set_response("ul_dump", {"Domains": [{"name": "location", "hash_size": 512, "AORs": [
        {"AOR": LONG_AOR, "Contacts": [{"Contact": "sip:1000@192.0.2.10:5060", "ContactID": "1",
                                         "Expires": 3600, "Q": "", "Callid": "c1", "Cseq": 1,
                                         "User-agent": "lab", "State": "CS_SYNC", "Flags": 0, "Cflags": "",
                                         "Methods": 4294967295, "Socket": "udp:127.0.0.1:5060"}]}]}]})


def test_snapshot_into_a_pipe_keeps_whole_identifiers_on_one_line(mi_server, capsys):
    long_identifiers(mi_server)
    code = main(["snapshot", *targets(mi_server.url, None, None)])
    out = capsys.readouterr().out
    assert code == 1  # the relay is down in this test; what matters is the text
    assert [line for line in out.splitlines() if LONG_AOR in line], out[-3000:]
    assert [line for line in out.splitlines() if LONG_CALLID in line], out[-3000:]
    assert "…" not in "".join(line for line in out.splitlines() if "@tenant" in line or "@sbc-west" in line)


def test_diagnose_into_a_pipe_does_not_wrap_a_long_line(mi_server, capsys):
    main(["diagnose", "-v", *targets(mi_server.url, None, None)])
    out = capsys.readouterr().out
    # A check's summary with its remedy runs past 80 columns; unwrapped, each row is one line that starts
    # with its status word (a wrapped one would start with spaces under the summary column).
    rows = [line for line in out.splitlines() if line.startswith(("FAIL", "WARN", "OK", "UNKNOWN", "SKIP"))]
    assert any(len(line.rstrip()) > 80 for line in rows), out[-2000:]


def test_only_a_terminal_keeps_a_terminal_width(monkeypatch):
    from support.terminal import Terminal

    assert make_console().width > 1000  # pytest's stdout is not a terminal
    monkeypatch.setattr("sys.stdout", Terminal())
    monkeypatch.setenv("COLUMNS", "80")
    assert make_console().width == 80  # a terminal's console is sized by Rich, as before


@pytest.mark.parametrize("command", ["snapshot", "diagnose"])
def test_piped_lines_carry_no_padding(command, mi_server, capsys):
    """A wide row (a long identifier, a remedy) must not pad every other line of a pipe or file with spaces."""
    long_identifiers(mi_server)
    main([command, *targets(mi_server.url, None, None)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) > 10 and max(map(len, lines)) > 120  # some content really is wide
    assert [line for line in lines if line != line.rstrip(" ")] == []


def test_a_partial_line_is_written_whole_on_flush():
    import io

    from console.render.text import _TrailingSpaceStripper

    sink = io.StringIO()
    stripper = _TrailingSpaceStripper(sink)
    stripper.write("a   \nb  ")
    assert sink.getvalue() == "a\n"   # the partial line waits for its end
    stripper.flush()
    assert sink.getvalue() == "a\nb  "  # a flush writes it as it is (more of the line may follow)
