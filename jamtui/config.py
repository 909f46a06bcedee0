"""jamtui's configuration: a TOML file, overridden by the ecosystem's environment variables.

Precedence, lowest first: built-in defaults, the config file (`--config PATH`, else
`$XDG_CONFIG_HOME/jamtui/config.toml`), then NOMAD_*, CONSUL_* and PROXMOX_VE_* variables, as
the nomad, consul and terraform CLIs read them, so an operator's existing shell just works.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration defect; the message names the file, the line and the key."""


class Secret:
    """A token that never shows itself: not in repr, str, logs, errors or screens."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class ProxmoxConfig:
    address: str = ""  # https://host:8006
    token_id: str = ""  # USER@REALM!TOKENID
    token_secret: Secret = field(default_factory=lambda: Secret(""))
    token_file: str = ""  # the secret (or the whole USER@REALM!TOKENID=SECRET), mode 0600
    ca_file: str = ""
    insecure: bool = False


@dataclass(frozen=True)
class NomadConfig:
    address: str = "http://127.0.0.1:4646"
    token: Secret = field(default_factory=lambda: Secret(""))
    token_file: str = ""  # a file holding the token (not readable by other users)
    ca_file: str = ""
    insecure: bool = False
    namespace: str = "*"  # every namespace; `[nomad] namespace` / NOMAD_NAMESPACE: one
    region: str = ""
    # TLS with client certificates (verify_https_client); server name: NOMAD_TLS_SERVER_NAME
    client_cert: str = ""
    client_key: str = ""
    tls_server_name: str = ""

    def auth_headers(self) -> dict[str, str]:
        """The ACL token header for a request made without python-nomad."""
        return {"X-Nomad-Token": self.token.reveal()} if self.token else {}


@dataclass(frozen=True)
class ConsulConfig:
    address: str = "http://127.0.0.1:8500"
    token: Secret = field(default_factory=lambda: Secret(""))
    token_file: str = ""  # a file holding the token (not readable by other users)
    ca_file: str = ""
    insecure: bool = False
    datacenter: str = ""
    # [consul.agents] node = "http://addr:8500": where each node's own agent answers, for
    # what only that agent does (maintenance). Unlisted nodes: their address, same scheme/port.
    agents: tuple[tuple[str, str], ...] = ()
    # TLS with client certificates (verify_incoming); server name: CONSUL_TLS_SERVER_NAME
    client_cert: str = ""
    client_key: str = ""
    tls_server_name: str = ""

    def agent_url(self, node: str, address: str) -> str:
        listed = dict(self.agents).get(node)
        if listed:
            return listed
        parts = urlsplit(self.address if "://" in self.address else f"http://{self.address}")
        return f"{parts.scheme}://{address}:{parts.port or 8500}"


@dataclass(frozen=True)
class FabioConfig:
    addresses: tuple[str, ...] = ()  # each Fabio UI/API, http://vs0:9998


@dataclass(frozen=True)
class HAProxyConfig:
    stats_url: str = ""  # http://bastion:8404/stats;csv
    socket: str = ""  # runtime API socket, used instead of stats_url when set
    frontend: str = ""  # where a --probe request goes, http://bastion
    ca_file: str = ""  # the CA of an https:// frontend's certificate (default: the system's)


@dataclass(frozen=True)
class DNSConfig:
    server: str = ""  # the internal resolver, "192.168.42.2" or "host:port"
    consul: str = ""  # Consul DNS, "vb0.lab:8600"
    expect: tuple[str, ...] = ()  # where public hostnames must point (default: the bastion)


@dataclass(frozen=True)
class SSHConfig:
    user: str = "root"  # unless the inventory sets ansible_user
    key_file: str = ""  # else the SSH agent and ~/.ssh keys
    known_hosts: str = "~/.ssh/known_hosts"
    bastion: str = ""  # inventory host to jump through, e.g. "bastion"


@dataclass(frozen=True)
class ProvisioningConfig:
    """The tools node add/remove runs, where, and where its journals go."""

    terraform: str = "terraform"
    packer: str = "packer"
    ansible_playbook: str = "ansible-playbook"
    template: str = "debian-12-cloudinit"  # the Packer-built template Terraform clones
    template_node: str = ""  # the hypervisor Packer builds it on (default: the first)
    packer_template: str = "packer/debian.pkr.hcl"  # relative to `provisioners`
    playbook: str = "ansible/site.yml"  # relative to `provisioners`
    vault_password_file: str = ""  # passed to ansible-playbook; never read by jamtui
    state_dir: str = "~/.local/state/jamtui"  # workflow journals and step logs
    ssh_timeout: float = 300.0  # how long a new VM may take to answer on SSH
    join_timeout: float = 180.0  # how long it may take to join Consul/Nomad


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    inventory: str = "provisioners/ansible/inventory.yml"
    provisioners: str = "provisioners"
    read_only: bool = False
    poll_interval: float = 5.0
    proxmox: ProxmoxConfig = field(default_factory=ProxmoxConfig)
    nomad: NomadConfig = field(default_factory=NomadConfig)
    consul: ConsulConfig = field(default_factory=ConsulConfig)
    fabio: FabioConfig = field(default_factory=FabioConfig)
    haproxy: HAProxyConfig = field(default_factory=HAProxyConfig)
    dns: DNSConfig = field(default_factory=DNSConfig)
    ssh: SSHConfig = field(default_factory=SSHConfig)
    provisioning: ProvisioningConfig = field(default_factory=ProvisioningConfig)
    keys: tuple[tuple[str, str], ...] = ()  # [keys] action = "key": rebinds (checked by the UI)


_SECTIONS: dict[str, type] = {
    "proxmox": ProxmoxConfig,
    "nomad": NomadConfig,
    "consul": ConsulConfig,
    "fabio": FabioConfig,
    "haproxy": HAProxyConfig,
    "dns": DNSConfig,
    "ssh": SSHConfig,
    "provisioning": ProvisioningConfig,
}
_TOP_LEVEL = {"inventory": str, "provisioners": str, "read_only": bool, "poll_interval": float}


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jamtui" / "config.toml"


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file (explicit path must exist; the default may be absent) and the env."""
    env = os.environ if env is None else env
    explicit = path is not None
    file = Path(path) if path is not None else default_config_path(env)
    cfg = Config()
    if file.exists() or explicit:
        cfg = _from_file(file)
    cfg = apply_env(cfg, env)
    _check_tokens(cfg)
    return cfg


# a token travels in an HTTP header: a line break (a pasted CR, a stray newline) or another
# control character cannot, nor can whitespace at its ends be meant
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")


def _check_tokens(cfg: Config) -> None:
    """Refuse a token no header can carry, in words that do not show it: requests refuses
    such a header on every request, in an error that quotes the header's value, token and
    all, into the screen's error lines."""
    for section, key, where, value in (
            ("nomad", "token", "NOMAD_TOKEN", cfg.nomad.token.reveal()),
            ("consul", "token", "CONSUL_HTTP_TOKEN", cfg.consul.token.reveal()),
            ("proxmox", "token_id", "PROXMOX_VE_API_TOKEN", cfg.proxmox.token_id),
            ("proxmox", "token_secret", "PROXMOX_VE_API_TOKEN",
             cfg.proxmox.token_secret.reveal())):
        if _NOT_IN_A_HEADER.search(value):
            raise ConfigError(f"[{section}] {key} (or token_file, or {where}): it holds a "
                              "line break, another control character or whitespace at an end, "
                              "which an HTTP header cannot carry; the token is not shown")


def _from_file(file: Path) -> Config:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    loc = _Locator(file, text)
    top: dict[str, Any] = {"path": file}
    for key, value in doc.items():
        if key == "keys":
            if not isinstance(value, dict) or not all(
                isinstance(v, str) and v for v in value.values()
            ):
                raise ConfigError(loc.at(None, key, "must be a table of action = \"key\""))
            top[key] = tuple(sorted(value.items()))
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(loc.at(None, key, "must be a table, like [" + key + "]"))
            top[key] = _section(loc, key, _SECTIONS[key], value)
            if value.get("token_file"):
                top[key] = _read_token_file(loc, key, top[key], file.parent)
        elif key in _TOP_LEVEL:
            top[key] = _typed(loc, None, key, value, _TOP_LEVEL[key])
        else:
            known = ", ".join([*_TOP_LEVEL, *_SECTIONS, "keys"])
            raise ConfigError(loc.at(None, key, f"unknown key (known: {known})"))
    cfg = Config(**top)
    _check_file_values(cfg, loc)
    if cfg.inventory and not Path(cfg.inventory).is_absolute():
        cfg = replace(cfg, inventory=str(file.parent / cfg.inventory))
    if cfg.provisioners and not Path(cfg.provisioners).is_absolute():
        cfg = replace(cfg, provisioners=str(file.parent / cfg.provisioners))
    return cfg


def _section(loc: _Locator, name: str, cls: type, table: dict[str, Any]) -> Any:
    types = {f.name: f.type for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key == "token" and name == "proxmox":
            # one string in the form PROXMOX_VE_API_TOKEN takes: USER@REALM!TOKENID=SECRET
            values.update(_split_pve_token(value, lambda m: loc.at(name, "token", m)))
            continue
        if key not in types:
            raise ConfigError(loc.at(name, key, f"unknown key (known: {', '.join(types)})"))
        if key == "agents":
            if not isinstance(value, dict) or not all(
                    isinstance(v, str) and v for v in value.values()):
                raise ConfigError(loc.at(name, key, 'must be a table of node = "url"'))
            values[key] = tuple(sorted(value.items()))
            continue
        values[key] = _typed(loc, name, key, value, types[key])
    return cls(**values)


TOKEN_FIELD = {"nomad": "token", "consul": "token", "proxmox": "token_secret"}


def _read_token_file(loc: _Locator, name: str, section: Any, base: Path) -> Any:
    """`token_file = PATH` (relative to the config file): the token read from it, trailing
    newline dropped, never shown. A file other users may read or write is refused, as ssh
    refuses such a key. A token given in the file as well is a conflict."""
    secret_field = TOKEN_FIELD[name]
    if getattr(section, secret_field):
        raise ConfigError(loc.at(name, "token_file", f"set {secret_field} or token_file, "
                                 "not both"))
    path = Path(section.token_file).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(loc.at(name, "token_file", f"cannot read {path}: "
                                 f"{exc.strerror}")) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(loc.at(name, "token_file", f"{path} is not text")) from exc
    if mode & 0o007:
        raise ConfigError(loc.at(name, "token_file", f"{path} can be read or written by every "
                                 f"user (mode {mode & 0o777:04o}): chmod 600 it"))
    if not text or "\n" in text:
        raise ConfigError(loc.at(name, "token_file", f"{path} must hold the token on one line"))
    if name == "proxmox" and "=" in text:  # the whole USER@REALM!TOKENID=SECRET
        return replace(section, token_file=str(path), **_split_pve_token(
            text, lambda m: loc.at(name, "token_file", f"{path}: {m}")))
    return replace(section, token_file=str(path), **{secret_field: Secret(text)})


def _typed(loc: _Locator, section: str | None, key: str, value: Any, want: Any) -> Any:
    want = str(want)
    if "Secret" in want:
        if not isinstance(value, str):
            raise ConfigError(loc.at(section, key, "must be a string"))
        return Secret(value)
    if "tuple" in want:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(loc.at(section, key, "must be a list of strings"))
        return tuple(value)
    if "bool" in want:
        if not isinstance(value, bool):
            raise ConfigError(loc.at(section, key, "must be true or false"))
        return value
    if "float" in want:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 \
                or not math.isfinite(value):
            raise ConfigError(loc.at(section, key, "must be a positive number"))
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(loc.at(section, key, "must be a string"))
    return value


# -- values that parse but would not work --------------------------------------------------

MIN_POLL_INTERVAL = 0.5  # seconds; below it polling is a load test on the backends


def interval_problem(value: float) -> str | None:
    """Why `poll_interval` cannot be used (NaN, infinite, too small), or None."""
    if not math.isfinite(value):
        return "must be a finite number of seconds"
    if value < MIN_POLL_INTERVAL:
        return f"must be at least {MIN_POLL_INTERVAL} seconds (every backend is polled that often)"
    return None


def url_problem(value: str, host_port_ok: bool = False) -> str | None:
    """Why `value` is not an http(s) URL a client can use, or None. `host_port_ok`: a bare
    `host:port` is accepted (Consul's api client does, with http unless told https)."""
    if host_port_ok and "://" not in value:
        value = "http://" + value
    if "://" not in value:
        return f"{value!r} has no scheme: write http://{value} or https://{value}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number or range
    except ValueError as exc:
        return f"{value!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"{value!r}: the scheme must be http or https, not {parts.scheme!r}"
    if not parts.hostname:
        return f"{value!r} has no host"
    return None


def with_scheme(address: str, https: bool = False) -> str:
    """A Consul-style `host:port` made a URL (http unless `https`)."""
    return address if "://" in address else ("https://" if https else "http://") + address


def _check_file_values(cfg: Config, loc: _Locator) -> None:
    problem = interval_problem(cfg.poll_interval)
    if problem:
        raise ConfigError(loc.at(None, "poll_interval", problem))
    urls: list[tuple[str, str, str, bool]] = [
        ("nomad", "address", cfg.nomad.address, False),
        ("consul", "address", cfg.consul.address, True),
        ("proxmox", "address", cfg.proxmox.address, False),
        ("haproxy", "stats_url", cfg.haproxy.stats_url, False),
        ("haproxy", "frontend", cfg.haproxy.frontend, False),
        *(("fabio", "addresses", a, False) for a in cfg.fabio.addresses),
        *(("consul", "agents", a, False) for _, a in cfg.consul.agents),
    ]
    for section, key, value, host_port_ok in urls:
        if value and (problem := url_problem(value, host_port_ok)):
            raise ConfigError(loc.at(section, key, problem))


def _env_url(env: Mapping[str, str], name: str, host_port_ok: bool = False) -> str:
    value = env[name]
    problem = url_problem(value, host_port_ok)
    if problem:
        raise ConfigError(f"environment variable {name}: {problem}")
    return value


def _split_pve_token(value: Any, err: Any) -> dict[str, Any]:
    if not isinstance(value, str) or "=" not in value or "!" not in value.split("=", 1)[0]:
        raise ConfigError(err("must look like USER@REALM!TOKENID=SECRET"))
    token_id, secret = value.split("=", 1)
    return {"token_id": token_id, "token_secret": Secret(secret)}


class _Locator:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines = text.splitlines()

    def at(self, section: str | None, key: str, message: str) -> str:
        current: str | None = None
        for no, line in enumerate(self.lines, 1):
            stripped = line.strip()
            header = re.match(r"\[\s*([A-Za-z0-9_.-]+)\s*\]", stripped)
            if header:
                current = header.group(1)
                if section is None and current == key:
                    return f"{self.file}, line {no}: {key}: {message}"
                continue
            if current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
                return f"{self.file}, line {no}: {_dotted(section, key)}: {message}"
        return f"{self.file}: {_dotted(section, key)}: {message}"


def _dotted(section: str | None, key: str) -> str:
    return f"{section}.{key}" if section else key


_TRUE = {"1", "t", "true", "yes", "on"}


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    if name not in env or env[name] == "":
        return None
    value = env[name].strip().lower()
    if value in _TRUE:
        return True
    if value in {"0", "f", "false", "no", "off"}:
        return False
    raise ConfigError(f"environment variable {name}: {env[name]!r} is not a boolean")


def apply_env(cfg: Config, env: Mapping[str, str]) -> Config:
    """Overlay the NOMAD_*, CONSUL_* and PROXMOX_VE_* variables on the file's values."""
    nomad, consul, pve = cfg.nomad, cfg.consul, cfg.proxmox
    if env.get("NOMAD_ADDR"):
        nomad = replace(nomad, address=_env_url(env, "NOMAD_ADDR"))
    if env.get("NOMAD_TOKEN"):
        nomad = replace(nomad, token=Secret(env["NOMAD_TOKEN"]))
    if env.get("NOMAD_CACERT"):
        nomad = replace(nomad, ca_file=env["NOMAD_CACERT"])
    if env.get("NOMAD_NAMESPACE"):
        nomad = replace(nomad, namespace=env["NOMAD_NAMESPACE"])
    if env.get("NOMAD_REGION"):
        nomad = replace(nomad, region=env["NOMAD_REGION"])
    if (skip := _env_bool(env, "NOMAD_SKIP_VERIFY")) is not None:
        nomad = replace(nomad, insecure=skip)
    if env.get("CONSUL_HTTP_ADDR"):
        # Consul's api client takes host:port, https when CONSUL_HTTP_SSL says so
        addr = with_scheme(_env_url(env, "CONSUL_HTTP_ADDR", host_port_ok=True),
                           bool(_env_bool(env, "CONSUL_HTTP_SSL")))
        consul = replace(consul, address=addr)
    if env.get("CONSUL_HTTP_TOKEN"):
        consul = replace(consul, token=Secret(env["CONSUL_HTTP_TOKEN"]))
    if env.get("CONSUL_CACERT"):
        consul = replace(consul, ca_file=env["CONSUL_CACERT"])
    if (verify := _env_bool(env, "CONSUL_HTTP_SSL_VERIFY")) is not None:
        consul = replace(consul, insecure=not verify)
    if env.get("PROXMOX_VE_ENDPOINT"):
        pve = replace(pve, address=_env_url(env, "PROXMOX_VE_ENDPOINT").rstrip("/"))
    if env.get("PROXMOX_VE_API_TOKEN"):
        pve = replace(pve, **_split_pve_token(
            env["PROXMOX_VE_API_TOKEN"],
            lambda m: f"environment variable PROXMOX_VE_API_TOKEN: {m}",
        ))
    if env.get("PROXMOX_VE_CACERT"):
        pve = replace(pve, ca_file=env["PROXMOX_VE_CACERT"])
    if (insecure := _env_bool(env, "PROXMOX_VE_INSECURE")) is not None:
        pve = replace(pve, insecure=insecure)
    if cfg.consul.address == consul.address and "://" not in consul.address:
        consul = replace(consul, address=with_scheme(consul.address))  # host:port in the file
    nomad, consul = _tls_env(nomad, "NOMAD", env), _tls_env(consul, "CONSUL", env)
    return replace(cfg, nomad=nomad, consul=consul, proxmox=pve)


_TLS_ENV = {"client_cert": "CLIENT_CERT", "client_key": "CLIENT_KEY",
            "tls_server_name": "TLS_SERVER_NAME"}


def _tls_env(section: Any, prefix: str, env: Mapping[str, str]) -> Any:
    """The CLIs' client-certificate variables (NOMAD_CLIENT_CERT ...); a CA directory
    (NOMAD_CAPATH / CONSUL_CAPATH) stands in for a CA file when none is given."""
    changes = {key: env[f"{prefix}_{var}"] for key, var in _TLS_ENV.items()
               if env.get(f"{prefix}_{var}")}
    if not section.ca_file and env.get(f"{prefix}_CAPATH"):
        changes["ca_file"] = env[f"{prefix}_CAPATH"]
    section = replace(section, **changes)
    if bool(section.client_cert) != bool(section.client_key):
        name = section.__class__.__name__.removesuffix("Config").lower()
        raise ConfigError(f"[{name}] client_cert and client_key go together: set both (or "
                          f"{prefix}_CLIENT_CERT and {prefix}_CLIENT_KEY), or neither")
    return section
