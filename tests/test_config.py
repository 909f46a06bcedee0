"""Configuration: file, defaults, environment overrides, errors that name file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jamtui.config import ConfigError, Secret, load_config

GOOD = """\
inventory = "inv/hosts.yml"
poll_interval = 3

[proxmox]
address = "https://pve1:8006"
token = "root@pam!jamtui=11111111-2222-3333-4444-555555555555"
ca_file = "/etc/jamtui/pve-ca.pem"

[nomad]
address = "https://vb0:4646"
token = "nomad-secret-token"
ca_file = "/etc/nomad.d/ca.pem"

[consul]
address = "https://vb0:8501"

[fabio]
addresses = ["http://vs0:9998", "http://vs1:9998"]

[haproxy]
stats_url = "http://bastion:8404/stats;csv"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_file_values_are_read(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.proxmox.address == "https://pve1:8006"
    assert cfg.proxmox.token_id == "root@pam!jamtui"
    assert cfg.proxmox.token_secret.reveal() == "11111111-2222-3333-4444-555555555555"
    assert cfg.nomad.token.reveal() == "nomad-secret-token"
    assert cfg.fabio.addresses == ("http://vs0:9998", "http://vs1:9998")
    assert cfg.poll_interval == 3.0
    # a relative inventory path is relative to the config file, not the working directory
    assert cfg.inventory == str(tmp_path / "inv/hosts.yml")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "NOMAD_ADDR": "https://other:4646",
        "NOMAD_TOKEN": "env-token",
        "NOMAD_CACERT": "/tmp/ca.pem",
        "NOMAD_SKIP_VERIFY": "true",
        "CONSUL_HTTP_ADDR": "vb1:8501",
        "CONSUL_HTTP_SSL": "true",
        "CONSUL_HTTP_TOKEN": "consul-env",
        "CONSUL_CACERT": "/tmp/consul-ca.pem",
        "PROXMOX_VE_ENDPOINT": "https://pve2:8006/",
        "PROXMOX_VE_API_TOKEN": "ops@pve!cockpit=abc",
        "PROXMOX_VE_INSECURE": "false",
    }
    cfg = load_config(write(tmp_path, GOOD), env=env)
    assert cfg.nomad.address == "https://other:4646"
    assert cfg.nomad.token.reveal() == "env-token"
    assert cfg.nomad.ca_file == "/tmp/ca.pem"
    assert cfg.nomad.insecure is True
    assert cfg.consul.address == "https://vb1:8501"
    assert cfg.consul.token.reveal() == "consul-env"
    assert cfg.consul.ca_file == "/tmp/consul-ca.pem"
    assert cfg.proxmox.address == "https://pve2:8006"
    assert cfg.proxmox.token_id == "ops@pve!cockpit"
    assert cfg.proxmox.token_secret.reveal() == "abc"
    assert cfg.proxmox.insecure is False


def test_default_path_follows_xdg_and_may_be_absent(tmp_path: Path) -> None:
    cfg = load_config(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.path is None and cfg.nomad.address == "http://127.0.0.1:4646"
    (tmp_path / "jamtui").mkdir()
    (tmp_path / "jamtui" / "config.toml").write_text('[nomad]\naddress = "http://vb2:4646"\n')
    cfg = load_config(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.nomad.address == "http://vb2:4646"
    assert cfg.path == tmp_path / "jamtui" / "config.toml"


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config file"):
        load_config(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[nomad]\naddress = "x"\ntoken = 5\n', r"line 3: nomad\.token: must be a string"),
        ('[nomad]\nadress = "x"\n', r"line 2: nomad\.adress: unknown key"),
        ('read_only = "yes"\n', r"line 1: read_only: must be true or false"),
        ('\n\n[fabio]\naddresses = "http://vs0"\n', r"line 4: fabio\.addresses: must be a list"),
        ('poll_interval = -1\n', r"line 1: poll_interval: must be a positive number"),
        ('[proxmox]\ntoken = "no-bang"\n', r"line 2: proxmox\.token: must look like"),
        ('[consul]\naddress = "x\n', r"line 2"),  # a TOML syntax error names the line too
        ('nomad = "x"\n', r"line 1: nomad: must be a table"),
        ('colour = "blue"\n', r"line 1: colour: unknown key"),
    ],
)
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert message.startswith(str(path))
    assert re.search(expected, message), message


def test_keys_table_is_read(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[keys]\nvm_stop = "ctrl+k"\nquit = "ctrl+q"\n'), env={})
    assert dict(cfg.keys) == {"vm_stop": "ctrl+k", "quit": "ctrl+q"}
    with pytest.raises(ConfigError, match=r"line 1: keys: must be a table"):
        load_config(write(tmp_path, 'keys = "q"\n'), env={})


def test_bad_environment_boolean_is_named() -> None:
    with pytest.raises(ConfigError, match="NOMAD_SKIP_VERIFY"):
        load_config(env={"NOMAD_SKIP_VERIFY": "maybe", "XDG_CONFIG_HOME": "/nonexistent"})


def test_tokens_never_show(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={"CONSUL_HTTP_TOKEN": "consul-secret"})
    shown = repr(cfg) + str(cfg)
    for secret in ("nomad-secret-token", "11111111-2222-3333-4444-555555555555", "consul-secret"):
        assert secret not in shown
    assert repr(Secret("x")) == "Secret('********')"


def test_consul_agents_table_and_default_agent_url(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[consul]\naddress = "https://vb0.lab:8501"\n\n'
                    '[consul.agents]\nvs0 = "https://vs0.lab:8501"\n')
    cfg = load_config(path, env={})
    assert cfg.consul.agent_url("vs0", "10.0.0.30") == "https://vs0.lab:8501"
    assert cfg.consul.agent_url("vs1", "10.0.0.31") == "https://10.0.0.31:8501"
    path.write_text('[consul.agents]\nvs0 = 5\n')
    with pytest.raises(ConfigError, match=r"consul\.agents"):
        load_config(path, env={})


def test_token_file_is_read_relative_to_the_config_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "tokens").mkdir()
    for name, value in (("nomad", "nomad-from-file\n"), ("consul", "consul-from-file"),
                        ("pve", "root@pam!ci=99999999-0000-0000-0000-000000000000\n")):
        (tmp_path / "tokens" / name).write_text(value)
        (tmp_path / "tokens" / name).chmod(0o600)
    path = write(tmp_path, '[nomad]\ntoken_file = "tokens/nomad"\n'
                           f'[consul]\ntoken_file = "{tmp_path}/tokens/consul"\n'
                           '[proxmox]\naddress = "https://pve1:8006"\n'
                           'token_file = "tokens/pve"\n')
    cfg = load_config(path, env={})
    assert cfg.nomad.token == Secret("nomad-from-file")
    assert cfg.consul.token == Secret("consul-from-file")
    assert cfg.proxmox.token_id == "root@pam!ci"
    assert cfg.proxmox.token_secret == Secret("99999999-0000-0000-0000-000000000000")
    assert "from-file" not in repr(cfg) and "9999" not in repr(cfg)
    # the environment still wins, as the CLIs have it
    assert load_config(path, env={"NOMAD_TOKEN": "env"}).nomad.token == Secret("env")


def test_token_file_problems_are_named_and_leak_nothing(tmp_path: Path) -> None:
    token = tmp_path / "nomad.token"
    token.write_text("s3cret-value\n")
    token.chmod(0o644)
    path = write(tmp_path, f'[nomad]\ntoken_file = "{token}"\n')
    with pytest.raises(ConfigError, match=r"line 2: nomad\.token_file: .*every user "
                                          r"\(mode 0644\): chmod 600"):
        load_config(path, env={})
    token.chmod(0o600)
    path = write(tmp_path, f'[nomad]\ntoken = "x"\ntoken_file = "{token}"\n')
    with pytest.raises(ConfigError, match="set token or token_file, not both"):
        load_config(path, env={})
    path = write(tmp_path, '[consul]\ntoken_file = "missing.token"\n')
    with pytest.raises(ConfigError, match=r"consul\.token_file: cannot read .*missing\.token"):
        load_config(path, env={})
    token.write_text("")
    path = write(tmp_path, f'[nomad]\ntoken_file = "{token}"\n')
    with pytest.raises(ConfigError, match="must hold the token on one line"):
        load_config(path, env={})


def test_a_token_no_header_can_carry_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A token with a line break went into every request's header: requests refused each
    one in an error quoting the header, token and all, into the screen's error lines."""
    for env in ({"NOMAD_TOKEN": "s3cret-value\r\nX-Injected: yes"},
                {"CONSUL_HTTP_TOKEN": "s3cret-value\n"},
                {"PROXMOX_VE_API_TOKEN": "root@pam!jamtui=s3cret-value\x1b[2J"}):
        with pytest.raises(ConfigError, match="cannot carry; the token is not shown") as info:
            load_config(None, env={**env, "XDG_CONFIG_HOME": str(tmp_path)})
        assert "s3cret" not in str(info.value)
    path = write(tmp_path, '[nomad]\ntoken = " s3cret-value"\n')
    with pytest.raises(ConfigError, match=r"\[nomad\] token") as info:
        load_config(path, env={})
    assert "s3cret" not in str(info.value)
    path = write(tmp_path, '[nomad]\ntoken = "s3cret-value"\n')
    assert load_config(path, env={}).nomad.token.reveal() == "s3cret-value"
