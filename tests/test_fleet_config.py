"""[[targets]] in the config file (#16): validated like every section (unknown keys refused with a
did-you-mean, duplicate names refused, addresses parsed at load), read in file order, no discovery for
named nodes; flat options stay one unnamed target; `--target` picks one."""

from __future__ import annotations

import os

import pytest

from console.config import load_config
from console.errors import ConfigError
from console.fleet import TargetNotChosen, TargetSpec, config_for, pick_target, targets_from
from console.plugins import Discovered

TWO_TARGETS = '''
[[targets]]
name = "par-1"
mi_url = "http://127.0.0.1:1/mi"
ng = ["127.0.0.1:2", "127.0.0.1:3"]
cli = "127.0.0.1:4"
labels = {site = "par", role = "active"}

[[targets]]
name = "par-2"
mi_fifo = "/run/opensips/fifo"
'''


def write(tmp_path, text: str) -> str:
    path = tmp_path / "opsconsole.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


def load(tmp_path, text: str, **kwargs):
    return load_config(config_file=write(tmp_path, text), env={}, discover=False, **kwargs)


def refusal(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    return str(exc.value)


def test_targets_are_read_in_file_order_with_their_addresses_and_labels(tmp_path):
    config = load(tmp_path, TWO_TARGETS)
    first, second = config.targets
    assert first == TargetSpec("par-1", mi_url="http://127.0.0.1:1/mi", ng=("127.0.0.1:2", "127.0.0.1:3"),
                               cli=("127.0.0.1:4",), labels={"site": "par", "role": "active"})
    assert (second.name, second.mi_fifo, second.mi_url, second.ng) == ("par-2", "/run/opensips/fifo", None, ())
    assert targets_from(None, config) == [first, second]


def test_a_targets_config_is_its_nodes_own_config(tmp_path):
    config = load(tmp_path, TWO_TARGETS + '\n[console]\ntimeout = 7\n')
    one = config_for(config, config.targets[0])
    assert (one.mi_url, one.mi_fifo, one.ng, one.cli, one.name) == (
        "http://127.0.0.1:1/mi", None, ("127.0.0.1", 2), ("127.0.0.1", 4), "par-1")
    assert one.relays_ng == (("127.0.0.1", 2), ("127.0.0.1", 3)) and one.timeout == 7
    assert dict(one.labels) == {"site": "par", "role": "active"}
    fifo = config_for(config, config.targets[1])
    assert (fifo.mi_url, fifo.mi_fifo, fifo.ng, fifo.cli) == (None, "/run/opensips/fifo", None, None)
    assert fifo.mi_target == "/run/opensips/fifo"


@pytest.mark.parametrize("toml, says", [
    ('[[targets]]\nname = "a"\nmi_url = "http://127.0.0.1:1/mi"\nmi_ulr = "x"\n',
     ["[[targets]] #1 mi_ulr", "did you mean mi_url?"]),
    ('[[targets]]\nname = "a"\nmi_url = "http://127.0.0.1:1/mi"\nlabel = {site = "x"}\n', ["did you mean labels?"]),
    ('[[targets]]\nname = "a"\nmi_url = "http://127.0.0.1:1/mi"\n[[targets]]\nname = "a"\nmi_fifo = "/f"\n',
     ["name 'a' is already the name of [[targets]] #1"]),
    ('[[targets]]\nmi_url = "http://127.0.0.1:1/mi"\n', ["[[targets]] #1: name must be"]),
    ('[[targets]]\nname = "has space"\nmi_url = "http://127.0.0.1:1/mi"\n', ["name must be"]),
    ('[[targets]]\nname = "a"\n', ["[[targets]] a: needs mi_url or mi_fifo"]),
    ('[[targets]]\nname = "a"\nmi_url = "http://127.0.0.1:1/mi"\nmi_fifo = "/f"\n', ["choose one"]),
    ('[[targets]]\nname = "a"\nmi_url = "127.0.0.1:8888"\n', ["[[targets]] a mi_url", "http://"]),
    ('[[targets]]\nname = "a"\nmi_fifo = "/f"\nng = ["127.0.0.1"]\n', ["[[targets]] a ng", "HOST:PORT"]),
    ('[[targets]]\nname = "a"\nmi_fifo = "/f"\nng = [2223]\n', ["[[targets]] a: ng must be"]),
    ('[[targets]]\nname = "a"\nmi_fifo = "/f"\nng = ["127.0.0.1:1", "127.0.0.1:1"]\n', ["names an address twice"]),
    ('[[targets]]\nname = "a"\nmi_fifo = "/f"\nlabels = {target = "x"}\n', ["label 'target' is not a usable"]),
    ('[[targets]]\nname = "a"\nmi_fifo = "/f"\nlabels = {site = 1}\n', ["label site must be a string"]),
    ('[targets]\nname = "a"\n', ["targets must be an array of tables", "[[targets]]"]),
    ('[[target]]\nname = "a"\nmi_fifo = "/f"\n', ["unknown section [[target]]", "did you mean [[targets]]?"]),
    ('[opensips]\nmi_url = "http://127.0.0.1:1/mi"\n[[targets]]\nname = "a"\nmi_fifo = "/f"\n',
     ["[opensips] mi_url and [[targets]]"]),
])
def test_bad_targets_are_refused_by_name(tmp_path, toml, says):
    message = refusal(tmp_path, toml)
    for words in says:
        assert words in message, message


def test_named_targets_need_no_discovery(tmp_path):
    """Discovery fills one local target; with [[targets]] naming every node it is not run at all."""
    asked = []

    def discoverer(**kwargs):
        asked.append(kwargs)
        return Discovered(mi_url="http://127.0.0.1:5/mi", notes=("found one",))

    with_targets = load_config(config_file=write(tmp_path, TWO_TARGETS), env={}, discoverers=[discoverer])
    assert asked == [] and with_targets.targets
    flat = load_config(config_file=write(tmp_path, "[console]\ntimeout = 3\n"), env={}, discoverers=[discoverer])
    assert len(asked) == 1 and flat.mi_url == "http://127.0.0.1:5/mi" and flat.targets == ()
    assert targets_from(None, flat) == [TargetSpec("", mi_url="http://127.0.0.1:5/mi", ng=("127.0.0.1:2223",),
                                                   cli=("127.0.0.1:9900",))]


def test_flat_options_are_one_unnamed_target_whose_config_is_the_config_itself():
    config = load_config({"mi_url": "http://127.0.0.1:7/mi", "ng": ("127.0.0.1", 8)}, env={}, discover=False)
    (only,) = targets_from(None, config)
    assert only.name == "" and only.mi_url == "http://127.0.0.1:7/mi" and only.ng == ("127.0.0.1:8",)
    assert config_for(config, only) is config
    assert pick_target([only], None) is only


def test_an_address_on_the_command_line_wins_over_targets(tmp_path):
    class Args:
        mi_url = "http://127.0.0.1:9/mi"

    config = load_config({"mi_url": Args.mi_url}, config_file=write(tmp_path, TWO_TARGETS), env={}, discover=False)
    (only,) = targets_from(Args(), config)
    assert only.name == "" and only.mi_url == Args.mi_url


def test_pick_target_names_the_choices(tmp_path):
    targets = load(tmp_path, TWO_TARGETS).targets
    assert pick_target(targets, "par-2").mi_fifo == "/run/opensips/fifo"
    assert pick_target(targets, None, needed=False) is None
    with pytest.raises(TargetNotChosen) as several:
        pick_target(targets, None)
    assert "2 targets" in str(several.value) and "par-1, par-2" in str(several.value)
    with pytest.raises(TargetNotChosen) as typo:
        pick_target(targets, "par-22")
    assert "no such target" in str(typo.value) and "did you mean par-2?" in str(typo.value)
