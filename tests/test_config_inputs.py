"""Config values that parse but would not work: a poll interval that floods the backends or
never fires, addresses without a scheme or malformed, each named by its key or variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from jamtui.config import ConfigError, load_config


@pytest.mark.parametrize("value", ["nan", "inf", "1e-9", "0.1"])
def test_poll_interval_must_be_finite_and_at_least_half_a_second(tmp_path: Path,
                                                                 value: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"\npoll_interval = {value}\n")
    with pytest.raises(ConfigError, match=r"line 2: poll_interval: must be"):
        load_config(path, env={})


def test_poll_interval_of_half_a_second_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("poll_interval = 0.5\n")
    assert load_config(path, env={}).poll_interval == 0.5


@pytest.mark.parametrize(("name", "value", "words"), [
    ("NOMAD_ADDR", "127.0.0.1:4646", "has no scheme: write http://127.0.0.1:4646"),
    ("NOMAD_ADDR", "http://[::1", "is not a valid URL"),
    ("NOMAD_ADDR", "http://127.0.0.1:46x6", "is not a valid URL"),
    ("NOMAD_ADDR", "ftp://127.0.0.1:4646", "must be http or https"),
    ("PROXMOX_VE_ENDPOINT", "pve1:8006", "has no scheme"),
    ("CONSUL_HTTP_ADDR", "http://[::1", "is not a valid URL"),
])
def test_a_bad_address_in_the_environment_names_the_variable(name: str, value: str,
                                                             words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={name: value, "XDG_CONFIG_HOME": "/nonexistent"})
    assert str(info.value).startswith(f"environment variable {name}: ")
    assert words in str(info.value)


def test_consul_takes_host_port_as_its_cli_does() -> None:
    env = {"XDG_CONFIG_HOME": "/nonexistent", "CONSUL_HTTP_ADDR": "127.0.0.1:8500"}
    assert load_config(None, env=env).consul.address == "http://127.0.0.1:8500"
    env["CONSUL_HTTP_SSL"] = "true"
    assert load_config(None, env=env).consul.address == "https://127.0.0.1:8500"


@pytest.mark.parametrize(("text", "expected"), [
    ('[nomad]\naddress = "127.0.0.1:4646"\n', r"line 2: nomad\.address: .* has no scheme"),
    ('[proxmox]\n\naddress = "https://[::1"\n', r"line 3: proxmox\.address: .* not a valid"),
    ('[fabio]\naddresses = ["vs0:9998"]\n', r"line 2: fabio\.addresses: .* has no scheme"),
    ('[haproxy]\nstats_url = "http://b:99999/stats;csv"\n', r"haproxy\.stats_url: .* valid"),
])
def test_a_bad_address_in_the_file_names_the_key(tmp_path: Path, text: str,
                                                 expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path, env={})


def test_consul_host_port_in_the_file_means_http(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[consul]\naddress = "vb0:8500"\n')
    assert load_config(path, env={}).consul.address == "http://vb0:8500"
