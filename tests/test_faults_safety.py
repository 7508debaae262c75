"""Safe actions and secrets: MI writes need --allow-write and are audited; MI credentials
never reach any output; a config file holding a password must not be readable by others."""

from __future__ import annotations

import json
import os

import pytest

from console.cli import main
from support.faults import SilentTCP, assert_clean_output, clean_home, free_port, targets

pytestmark = pytest.mark.usefixtures("clean_home")

USER, PASSWORD = "opsadmin", "Tr0ub4dor-S3cret"
WRITE_METHOD, WRITE_PARAMS = "ul_rm", ["aor=1000@127.0.0.1", "table_name=location"]


def _write_config(path, text: str, mode: int = 0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_mi_write_is_refused_without_allow_write_and_nothing_is_sent(mi_server, capsys):
    code = main(["mi", WRITE_METHOD, *WRITE_PARAMS, *targets(mi_server.url, None, None)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "refused" in err and "--allow-write" in err
    assert mi_server.requests == []  # not even version detection reached the platform
    assert out == ""
    assert_clean_output(out, err)


def test_mi_write_with_allow_write_is_sent_and_audited_once(mi_server, tmp_path, capsys):
    audit = tmp_path / "state" / "audit.log"
    config = _write_config(tmp_path / "opsconsole.toml",
                           f'[opensips]\nmi_url = "{mi_server.url}"\n[console]\naudit_log = "{audit}"\n')
    code = main(["mi", WRITE_METHOD, *WRITE_PARAMS, "--config", str(config), "--allow-write", "--yes",
                 "--timeout", "0.5"])
    out, err = capsys.readouterr()
    assert WRITE_METHOD in [method for method, _ in mi_server.requests]
    lines = audit.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert {"time", "user", "target", "method", "params"} <= set(record)
    assert record["method"] == WRITE_METHOD and record["target"] == mi_server.url
    assert record["params"] == {"aor": "1000@127.0.0.1", "table_name": "location"}
    assert record["user"] and record["time"]
    assert code in (0, 1)  # the fake may answer with an MI error; the call itself was made
    assert_clean_output(out, err)


def test_readonly_mi_call_is_not_audited(mi_server, tmp_path, capsys):
    audit = tmp_path / "audit.log"
    config = _write_config(tmp_path / "c.toml", f'[opensips]\nmi_url = "{mi_server.url}"\n[console]\naudit_log = "{audit}"\n')
    assert main(["mi", "version", "--config", str(config), "--timeout", "0.5"]) == 0
    assert "Server" in capsys.readouterr().out
    assert not audit.exists()


# --------------------------------------------------------------------------- secrets


def _credential_url(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


def _assert_no_secret(*streams: str) -> None:
    for text in streams:
        assert PASSWORD not in text, text[:3000]


@pytest.fixture(params=["refused", "silent", "answering"])
def mi_with_credentials(request, mi_server):
    """An MI URL carrying user:password@, in three states of the peer."""
    if request.param == "refused":
        yield _credential_url(f"http://127.0.0.1:{free_port()}/mi")
    elif request.param == "silent":
        with SilentTCP() as peer:
            yield _credential_url(peer.url)
    else:
        yield _credential_url(mi_server.url)


@pytest.mark.parametrize("command", [["snapshot", "--json"], ["snapshot"], ["diagnose", "--json", "-v"],
                                     ["diagnose", "-v"], ["mi", "version"]])
def test_credentials_in_the_url_never_reach_any_output(mi_with_credentials, command, capsys):
    main([*command, *targets(mi_with_credentials, None, None)])
    out, err = capsys.readouterr()
    _assert_no_secret(out, err)
    assert_clean_output(out, err)


def test_credentials_from_the_environment_never_reach_any_output(mi_server, monkeypatch, capsys):
    monkeypatch.setenv("OPSCONSOLE_MI_USER", USER)
    monkeypatch.setenv("OPSCONSOLE_MI_PASSWORD", PASSWORD)
    for command in (["snapshot", "--json"], ["diagnose", "--json", "-v"], ["mi", "version"]):
        main([*command, *targets(mi_server.url, None, None)])
        out, err = capsys.readouterr()
        _assert_no_secret(out, err)
    assert mi_server.last_headers.get("Authorization", "").startswith("Basic ")  # it was used, not shown


def test_config_with_a_password_readable_by_others_is_refused(tmp_path, mi_server, capsys):
    config = _write_config(tmp_path / "shared.toml",
                           f'[opensips]\nmi_url = "{mi_server.url}"\nuser = "{USER}"\npassword = "{PASSWORD}"\n',
                           mode=0o644)
    assert main(["snapshot", "--config", str(config)]) == 3  # bad configuration (README exit codes)
    assert main(["diagnose", "--config", str(config)]) == 3
    out, err = capsys.readouterr()
    assert "readable by others" in err and f"chmod 600 {config}" in err
    assert mi_server.requests == []  # refused before talking to anyone
    _assert_no_secret(out, err)
    os.chmod(config, 0o600)
    assert main(["mi", "version", "--config", str(config)]) == 0


def test_config_with_credentials_inside_the_mi_url_must_be_private_too(tmp_path, mi_server, capsys):
    config = _write_config(tmp_path / "url.toml", f'[opensips]\nmi_url = "{_credential_url(mi_server.url)}"\n',
                           mode=0o640)
    assert main(["mi", "version", "--config", str(config)]) == 3  # bad configuration
    out, err = capsys.readouterr()
    assert "readable by others" in err and "chmod 600" in err
    _assert_no_secret(out, err)
    os.chmod(config, 0o600)
    assert main(["mi", "version", "--config", str(config), "--timeout", "0.5"]) == 0
    assert mi_server.last_headers.get("Authorization", "").startswith("Basic ")


def test_credentials_in_a_discovered_opensips_cli_url_are_not_shown(clean_home, mi_server, capsys):
    """No --mi-url: discovery takes opensips-cli's url (with user:password@) and notes where it came from."""
    (clean_home / ".opensips-cli.cfg").write_text(
        f"[default]\ncommunication_type: http\nurl: {_credential_url(mi_server.url)}\n")
    ng_cli = targets(None, None, None)[2:]  # --ng/--cli/--timeout only
    for command in (["snapshot", "--json"], ["diagnose", "--json", "-v"], ["mi", "version"]):
        main([*command, *ng_cli])
        out, err = capsys.readouterr()
        _assert_no_secret(out, err)
    assert mi_server.requests  # the discovered URL was really used


def test_a_write_is_refused_when_it_cannot_be_audited(mi_server, tmp_path, capsys):
    """No record, no change: an unwritable audit log stops the write before it is sent."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = _write_config(tmp_path / "c.toml", f'[opensips]\nmi_url = "{mi_server.url}"\n'
                                                f'[console]\naudit_log = "{blocker}/audit.log"\n')
    code = main(["mi", WRITE_METHOD, *WRITE_PARAMS, "--config", str(config), "--allow-write", "--yes",
                 "--timeout", "0.5"])
    out, err = capsys.readouterr()
    assert code == 1  # the write was refused (README exit codes)
    assert "cannot write the audit log" in err and "audit_log" in err
    assert WRITE_METHOD not in [method for method, _ in mi_server.requests]
    assert_clean_output(out, err)
