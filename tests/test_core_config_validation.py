"""Config validation is even: unknown sections and keys are refused everywhere (with a "did you mean"),
URLs must be URLs, and each warn threshold must be below its fail threshold (issue #14, item 5)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from console.cli import _plugin_sections, main
from console.config import Thresholds, load_config
from console.errors import ConfigError
from console.plugins import ConfigSection, LoadedPlugins, Plugin
from support.faults import clean_home  # noqa: F401  (fixture)

README = Path(__file__).parent.parent / "README.md"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "opsconsole.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


def refusal(tmp_path, text: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(config_file=write(tmp_path, text), env={}, discover=False, **kwargs)
    return str(exc.value)


@pytest.mark.parametrize("toml, says", [
    ('[opensips]\nmi_urll = "http://127.0.0.1:1/mi"\n', ["[opensips] mi_urll", "did you mean mi_url?"]),
    ('[rtpengin]\nng = "127.0.0.1:1"\n', ["unknown section [rtpengin]", "did you mean [rtpengine]?"]),
    ("[console]\ntimout = 3\n", ["[console] timout", "did you mean timeout?"]),
    ("[opensips]\ntimeout = 3\n", ["[opensips] timeout", "did you mean [console] timeout?"]),
    ("timeout = 3\n", ["timeout outside a section", "[console] timeout"]),
    ("[thresholds]\nbogus = 1\n", ["[thresholds] bogus", "takes:"]),
    ("[frobnicate]\nx = 1\n", ["unknown section [frobnicate]", "known sections"]),
    ("opensips = 5\n", ["[opensips] must be a table"]),
])
def test_unknown_sections_and_keys_are_refused_by_name(tmp_path, toml, says):
    message = refusal(tmp_path, toml)
    for words in says:
        assert words in message, message


@pytest.mark.parametrize("toml", [
    "[thresholds]\nload_warn = 50\nload_fail = 10\n",
    "[thresholds]\nshm_warn = 85\nshm_fail = 85\n",
    "[thresholds]\nports_warn = 99\n",  # above the default ports_fail (95)
])
def test_a_warn_level_at_or_above_its_fail_level_is_refused(tmp_path, toml):
    message = refusal(tmp_path, toml)
    assert "must be below" in message and "_warn" in message and "_fail" in message


def test_consistent_thresholds_are_accepted(tmp_path):
    config = load_config(config_file=write(tmp_path, "[thresholds]\nload_warn = 50\nload_fail = 60\n"),
                         env={}, discover=False)
    assert (config.thresholds.load_warn, config.thresholds.load_fail) == (50, 60)
    assert config.thresholds.shm_warn == Thresholds().shm_warn


@pytest.mark.parametrize("url", ["garbage", "127.0.0.1:8888/mi", "ftp://127.0.0.1/mi", "http://", "http://h:99999/mi"])
def test_an_mi_url_must_be_an_http_url(tmp_path, url):
    assert "mi_url" in refusal(tmp_path, f'[opensips]\nmi_url = "{url}"\n')


def test_the_readme_example_config_is_valid(tmp_path):
    """The documented layout and the accepted layout are the same."""
    example = re.search(r"```toml\n(.*?)```", README.read_text(), re.S).group(1)
    config = load_config(config_file=write(tmp_path, example), env={}, discover=False)
    assert config.full_sync_max == 10000 and config.ng == ("127.0.0.1", 2223)


def test_a_section_a_loaded_plugin_declares_is_not_unknown(tmp_path):
    text = '[sbc]\nanything = "the plugin reads it"\n'
    assert "unknown section [sbc]" in refusal(tmp_path, text)
    load_config(config_file=write(tmp_path, text), env={}, discover=False, plugin_sections={"sbc"})
    sbc = ConfigSection("sbc", {"limit": "a number"})
    declared = LoadedPlugins((Plugin("sbc", config_sections=(sbc,)), Plugin("other")))
    assert _plugin_sections(declared) == {"sbc": sbc}


def test_a_plugin_section_is_validated_by_its_keys_and_validator_and_reaches_the_plugin(tmp_path):
    def positive(values):
        if values.get("limit", 1) <= 0:
            raise ConfigError("[sbc] limit must be positive")

    owned = {"sbc": ConfigSection("sbc", {"limit": "a number", "name": "a string"}, positive)}
    config = load_config(config_file=write(tmp_path, "[sbc]\nlimit = 5\n"), env={}, discover=False,
                         plugin_sections=owned)
    assert config.section("sbc") == {"limit": 5} and config.section("other") == {}
    for text, words in (("[sbc]\nlimt = 5\n", "did you mean limit?"), ("[sbc]\nlimit = 0\n", "must be positive")):
        with pytest.raises(ConfigError, match=words):
            load_config(config_file=write(tmp_path, text), env={}, discover=False, plugin_sections=owned)


@pytest.mark.usefixtures("clean_home")
def test_the_cli_knows_the_loaded_plugins_sections(tmp_path, monkeypatch, mi_server, capsys):
    import console.plugins as plugins

    config = write(tmp_path, f'[opensips]\nmi_url = "{mi_server.url}"\n[sbc]\nlimit = 5\n')
    assert main(["mi", "version", "--config", config]) == 3  # no plugin owns [sbc]
    assert "unknown section [sbc]" in capsys.readouterr().err
    real = plugins.load_plugins

    def with_sbc(*args, **kwargs):
        loaded = real(*args, **kwargs)
        return LoadedPlugins(loaded.plugins + (Plugin("sbc", config_sections=(ConfigSection("sbc"),)),), loaded.failures)

    monkeypatch.setattr(plugins, "load_plugins", with_sbc)
    assert main(["mi", "version", "--config", config]) == 0


@pytest.mark.usefixtures("clean_home")
@pytest.mark.parametrize("command", [["snapshot"], ["diagnose"], ["mi", "version"]])
def test_every_command_refuses_a_misspelt_key_with_exit_3(tmp_path, command, capsys):
    assert main([*command, "--config", write(tmp_path, '[opensips]\nmi_urll = "x"\n')]) == 3
    err = capsys.readouterr().err
    assert "did you mean mi_url?" in err and "Traceback" not in err
