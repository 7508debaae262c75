"""Fault matrix, configuration rows: a TOML value of the wrong type is named, never a traceback."""

from __future__ import annotations

import os

import pytest

from console.cli import main
from support.faults import assert_clean_output, clean_home

pytestmark = pytest.mark.usefixtures("clean_home")


@pytest.mark.parametrize("toml, named", [
    ('[console]\ntimeout = "fast"\n', "timeout"),
    ("[console]\ntimeout = 0\n", "timeout"),
    ("[console]\naudit_log = 5\n", "audit_log"),
    ("[console]\ninterval = true\n", "interval"),
    ("[opensips]\nmi_url = 7\n", "mi_url"),
    ("[opensips]\nfull_sync_max = 1.5\n", "full_sync_max"),
    ('[thresholds]\nload_warn = "high"\n', "load_warn"),
    ('[rtpengine]\nng = "nonsense"\n', "ng"),
])
@pytest.mark.parametrize("command, exit_code", [(["snapshot"], 3), (["diagnose"], 3), (["mi", "version"], 3)])
def test_a_wrong_typed_setting_is_a_readable_config_error(tmp_path, capsys, toml, named, command, exit_code):
    config = tmp_path / "opsconsole.toml"
    config.write_text(toml)
    os.chmod(config, 0o600)
    assert main([*command, "--config", str(config)]) == exit_code
    out, err = capsys.readouterr()
    assert named in err and err.startswith("opsconsole: ")
    assert out == ""
    assert_clean_output(out, err)
