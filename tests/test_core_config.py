import os
import stat

import pytest

from console.config import Config, Thresholds, load_config, parse_hostport
from console.errors import ConfigError


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:2223", ("127.0.0.1", 2223)),
    ("localhost:9900", ("localhost", 9900)),
    ("[::1]:2223", ("::1", 2223)),
    ("udp:127.0.0.1:60000", ("127.0.0.1", 60000)),
])
def test_parse_hostport_accepts_common_forms(text, expected):
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:x", "127.0.0.1:0", "127.0.0.1:70000", ":2223"])
def test_parse_hostport_rejects_with_readable_error(text):
    with pytest.raises(ConfigError) as err:
        parse_hostport(text, option="--ng")
    assert "--ng" in str(err.value)


def test_precedence_cli_over_env_over_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[opensips]\nmi_url = "http://127.0.0.1:1/mi"\n[rtpengine]\nng = "127.0.0.1:1111"\ncli = "127.0.0.1:2222"\n'
                   '[console]\ntimeout = 5\n[thresholds]\nload_warn = 33\n')
    env = {"OPSCONSOLE_NG": "127.0.0.1:3333", "OPSCONSOLE_TIMEOUT": "7"}
    config = load_config({"timeout": 1.5}, config_file=str(cfg), env=env, discover=False)
    assert config.mi_url == "http://127.0.0.1:1/mi"  # file
    assert config.ng == ("127.0.0.1", 3333)  # env beats file
    assert config.cli == ("127.0.0.1", 2222)
    assert config.timeout == 1.5  # command line beats env
    assert config.thresholds.load_warn == 33
    assert config.thresholds.shm_fail == Thresholds().shm_fail
    assert any(str(cfg) in note for note in config.discovery)


def test_mi_fifo_alone_means_fifo_transport():
    config = load_config({"mi_fifo": "/tmp/opensips_fifo"}, env={}, discover=False)
    assert config.mi_url is None and config.mi_fifo == "/tmp/opensips_fifo"


def test_secret_in_world_readable_config_is_refused(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[opensips]\nuser = "admin"\npassword = "s3cret"\n')
    os.chmod(cfg, 0o644)
    with pytest.raises(ConfigError) as err:
        load_config({}, config_file=str(cfg), env={}, discover=False)
    assert "chmod 600" in str(err.value)
    assert "s3cret" not in str(err.value)
    os.chmod(cfg, 0o600)
    config = load_config({}, config_file=str(cfg), env={}, discover=False)
    assert config.mi_password == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.redacted()["mi_password"] == "***"


def test_invalid_toml_and_unknown_threshold_are_readable(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[opensips\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({}, config_file=str(bad), env={}, discover=False)
    unknown = tmp_path / "u.toml"
    unknown.write_text("[thresholds]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_config({}, config_file=str(unknown), env={}, discover=False)
    with pytest.raises(ConfigError, match="not found"):
        load_config({}, config_file=str(tmp_path / "missing.toml"), env={}, discover=False)


def test_env_timeout_must_be_number():
    with pytest.raises(ConfigError, match="OPSCONSOLE_TIMEOUT"):
        load_config({}, env={"OPSCONSOLE_TIMEOUT": "soon"}, discover=False)


def test_plain_http_to_remote_mi_warns_without_leaking_password():
    from console.config import security_warnings

    assert security_warnings(Config(mi_url="http://127.0.0.1:8888/mi")) == []
    assert security_warnings(Config(mi_url="https://10.0.0.5/mi")) == []
    warnings = security_warnings(Config(mi_url="http://10.0.0.5:8888/mi", mi_password="hunter2"))
    assert len(warnings) == 1 and "plain HTTP" in warnings[0] and "10.0.0.5" in warnings[0]
    assert "hunter2" not in warnings[0]


@pytest.mark.parametrize("host,local", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                        ("localhost", True), ("10.0.0.9", False), ("example.com", False), ("", False)])
def test_is_loopback(host, local):
    from console.config import is_loopback

    assert is_loopback(host) is local
