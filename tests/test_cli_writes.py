"""`opsconsole mi` writes are confirmed and audited with their outcome; whole-table reads that would
hold OpenSIPS MI for long are refused without --force (issue #14, items 3 and 3b)."""

from __future__ import annotations

import json
import os

import pytest

from console.cli import main
from support.faults import assert_clean_output, clean_home  # noqa: F401  (fixture)
from support.terminal import Terminal

pytestmark = pytest.mark.usefixtures("clean_home")

WRITE = ["mi", "ul_rm", "table_name=location", "aor=1000@127.0.0.1"]


@pytest.fixture
def config(mi_server, tmp_path):
    """A config file pointing at the fake MI server, with an audit log of the test's own."""
    path = tmp_path / "opsconsole.toml"
    path.write_text(f'[opensips]\nmi_url = "{mi_server.url}"\n[console]\naudit_log = "{tmp_path / "audit.log"}"\n')
    os.chmod(path, 0o600)
    return path


def audit_lines(config) -> list[dict]:
    log = config.parent / "audit.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def sent(mi_server) -> list[str]:
    return [method for method, _ in mi_server.requests]


def test_a_write_on_a_terminal_asks_and_a_no_sends_nothing(mi_server, config, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code = main([*WRITE, "--allow-write", "--config", str(config)])
    out, err = capsys.readouterr()
    assert "ul_rm" in err and mi_server.url in err and "[y/N]" in err  # the question, on stderr
    assert "not confirmed" in err
    assert code == 1
    assert "ul_rm" not in sent(mi_server)
    assert audit_lines(config) == []  # nothing was sent, so nothing happened to record
    assert out == ""
    assert_clean_output(out, err)


def test_a_write_on_a_terminal_answered_yes_is_sent_and_audited_ok(mi_server, config, monkeypatch, capsys):
    mi_server.set_response("ul_rm", "OK")
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code = main([*WRITE, "--allow-write", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sent(mi_server).count("ul_rm") == 1
    [record] = audit_lines(config)
    assert record["method"] == "ul_rm" and record["outcome"] == "ok" and "error" not in record
    assert record["params"] == {"table_name": "location", "aor": "1000@127.0.0.1"}


def test_without_a_terminal_and_without_yes_a_write_is_refused(mi_server, config, capsys):
    code = main([*WRITE, "--allow-write", "--config", str(config)])  # pytest's stdin is no terminal
    out, err = capsys.readouterr()
    assert code == 1
    assert "--yes" in err and "not a terminal" in err
    assert "ul_rm" not in sent(mi_server) and audit_lines(config) == []
    assert_clean_output(out, err)


def test_yes_confirms_for_scripts_and_the_audit_records_the_mi_error(mi_server, config, capsys):
    mi_server.set_error("ul_rm", 404, "AOR not found")
    code = main([*WRITE, "--allow-write", "--yes", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 1 and "AOR not found" in err
    [record] = audit_lines(config)
    assert record["outcome"] == "error" and "AOR not found" in record["error"]
    assert isinstance(record["elapsed_ms"], int)


def test_an_unreachable_platform_is_audited_as_an_error_too(tmp_path, config, capsys):
    from support.faults import free_port

    code = main([*WRITE, "--allow-write", "--yes", "--config", str(config),
                 "--mi-url", f"http://127.0.0.1:{free_port()}/mi", "--timeout", "0.5"])
    assert code == 2  # transport failure
    [record] = audit_lines(config)
    assert record["outcome"] == "error" and record["error"]


# ---------------------------------------------------------------------------------------- 3b


def big(mi_server, contacts: int = 0, dialogs: int = 0) -> None:
    """The fake now says it holds this many contacts / dialogs (its counters, as OpenSIPS reports them)."""
    mi_server.set_response("get_statistics", {"usrloc:location-contacts": contacts, "usrloc:location-users": contacts,
                                              "dialog:active_dialogs": dialogs})


def test_ul_dump_at_100k_contacts_is_refused_with_the_estimate_and_the_alternatives(mi_server, config, capsys):
    big(mi_server, contacts=100_000)
    code = main(["mi", "ul_dump", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "100000 contacts" in err and "~155 s" in err  # the console's own measured curve (live.py)
    assert "--force" in err and "ul_show_contact" in err and "brief" in err
    assert "ul_dump" not in sent(mi_server)  # only the counters were read
    assert out == ""
    assert_clean_output(out, err)


def test_force_runs_it_anyway(mi_server, config, capsys):
    big(mi_server, contacts=100_000)
    assert main(["mi", "ul_dump", "--force", "--config", str(config)]) == 0
    assert "ul_dump" in sent(mi_server)


def test_a_brief_dump_is_judged_by_the_brief_estimate(mi_server, config, capsys):
    big(mi_server, contacts=30_000)  # full dump ~7 s, brief ~0.5 s
    assert main(["mi", "ul_dump", "--config", str(config)]) == 1
    assert main(["mi", "ul_dump", "brief:=1", "--config", str(config)]) == 0
    assert sent(mi_server).count("ul_dump") == 1


def test_small_tables_are_dumped_without_force(mi_server, config, capsys):
    assert main(["mi", "ul_dump", "--config", str(config)]) == 0  # the fake's 70 contacts
    assert "ul_dump" in sent(mi_server)


def test_dialog_lists_are_judged_by_the_dialog_counter_and_one_call_is_always_fine(mi_server, config, capsys):
    big(mi_server, contacts=10, dialogs=100_000)
    assert main(["mi", "dlg_list", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "100000 dialogs" in err and "dlg_list callid=" in err
    main(["mi", "dlg_list", "callid=abc", "--config", str(config)])  # one Call-ID: bounded, not refused
    assert sent(mi_server).count("dlg_list") == 1  # the one-call read was sent, the whole list was not


def test_an_unknown_count_is_refused_with_the_reason(mi_server, config, capsys):
    mi_server.set_response("get_statistics", {"core:uptime": 5})  # no usrloc counters
    assert main(["mi", "ul_dump", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "do not say how many" in err and "--force" in err


@pytest.mark.parametrize("name", ["ul_dump", "usrloc:dump"])
def test_opensips_40_names_are_judged_alike(mi_server_40, tmp_path, name, capsys):
    big(mi_server_40, contacts=100_000)
    assert main(["mi", name, "--mi-url", mi_server_40.url]) == 1
    assert "~155 s" in capsys.readouterr().err
    assert "usrloc:dump" not in sent(mi_server_40)
    assert "statistics:get" in sent(mi_server_40)  # the counters were asked in 4.0's spelling


async def test_the_mi_session_shares_the_collectors_opensips_client(mi_server):
    """One MI connection policy and one heavy call at a time across the polls and `mi`/the MI prompt."""
    from console.config import Config
    from console.service import ConsoleService

    service = ConsoleService(Config(mi_url=mi_server.url, ng=None, cli=None, timeout=2.0, audit_log="/dev/null"))
    try:
        await service.mi("version")
        source = next(s for s in service.collector.sources if s.name == "opensips")
        assert service._mi_session().client() is source.client()
        snap = await service.snapshot()
        assert snap.sources["opensips"].ok
    finally:
        await service.aclose()
