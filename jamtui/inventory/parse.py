"""Reading the inventory (YAML or INI) into `Inventory` and `Host`; an error names the
file and, where known, the line."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

NODE_GROUPS = ("vb", "vs")


class InventoryError(ValueError):
    """A malformed inventory: the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def address(self) -> str | None:
        return self.vars.get("ansible_host")

    @property
    def group(self) -> str | None:
        """The node group (`vb`/`vs`) or, failing that, the first group the host is in."""
        for g in NODE_GROUPS:
            if g in self.groups:
                return g
        return self.groups[0] if self.groups else None


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[Host, ...]
    vars: dict[str, Any] = field(default_factory=dict, compare=False)

    def group(self, name: str) -> list[Host]:
        return [h for h in self.hosts if name in h.groups]

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)


def _line_of(node: Any) -> str:
    lc = getattr(node, "lc", None)
    return f", line {lc.line + 1}" if lc is not None else ""


def is_ini(path: Path, text: str) -> bool:
    """INI by its suffix, or (a `hosts` file has none) by its first meaningful line."""
    if path.suffix in (".yml", ".yaml", ".json"):
        return False
    if path.suffix in (".ini", ".cfg"):
        return True
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            return line.startswith("[") or not (line.startswith("all:") or line == "---")
    return False


def read_text(path: Path) -> str:
    """The file's text; a UTF-8 byte order mark (Windows editors write one) is not part of it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror}") from exc


def load_inventory(path: str | Path) -> Inventory:
    """Load a YAML or INI inventory; raise InventoryError naming file and line on any defect."""
    path = Path(path)
    return parse_inventory(path, read_text(path))


def parse_inventory(path: Path, text: str) -> Inventory:
    if is_ini(path, text):
        return parse_ini(path, text)
    # ruamel's safe loader (libyaml's parser, ruamel.yaml.clib) reads a plain inventory in a
    # sixth of the round-trip loader's time (0.02 s, not 0.11-0.15 s, for 100 hosts: time
    # before the VMs show); the same YAML 1.2 resolution. Anything it refuses (a syntax error,
    # an Ansible tag such as !vault, a malformed group) is read again round-trip, whose nodes
    # know their lines: a plain inventory reads the same, an error has the same words.
    try:
        return _inventory_of(path, YAML(typ="safe").load(text))
    except (YAMLError, InventoryError, TypeError, ValueError):
        pass
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InventoryError(f"{path}{where}: invalid YAML: {exc.problem}") from exc
    except YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from exc
    return _inventory_of(path, doc)


def _inventory_of(path: Path, doc: Any) -> Inventory:
    if not isinstance(doc, dict) or not isinstance(doc.get("all"), dict):
        raise InventoryError(f"{path}: an inventory must be a mapping with a top-level 'all' group")
    hosts: dict[str, tuple[list[str], dict[str, Any]]] = {}
    _walk_group(path, "all", doc["all"], hosts)
    all_vars = dict(doc["all"].get("vars") or {})
    return Inventory(
        path=path,
        hosts=tuple(Host(n, tuple(g), v) for n, (g, v) in hosts.items()),
        vars=all_vars,
    )


def _walk_group(path: Path, name: str, group: Any, out: dict) -> None:
    if group is None:
        return
    if not isinstance(group, dict):
        raise InventoryError(f"{path}{_line_of(group)}: group '{name}' must be a mapping")
    for key in group:
        if key not in ("hosts", "children", "vars"):
            raise InventoryError(
                f"{path}{_line_of(group)}: group '{name}' has unknown key '{key}' "
                "(expected hosts, children or vars)"
            )
    hosts = group.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise InventoryError(
            f"{path}{_line_of(group)}: 'hosts' of group '{name}' must be a mapping"
        )
    for host, hvars in hosts.items():
        if hvars is not None and not isinstance(hvars, dict):
            raise InventoryError(
                f"{path}{_line_of(hosts)}: variables of host '{host}' must be a mapping"
            )
        groups, merged = out.setdefault(str(host), ([], {}))
        if name != "all":
            groups.append(name)
        merged.update(dict(hvars or {}))
    children = group.get("children") or {}
    if not isinstance(children, dict):
        raise InventoryError(
            f"{path}{_line_of(group)}: 'children' of group '{name}' must be a mapping"
        )
    for child, sub in children.items():
        _walk_group(path, str(child), sub, out)


def default_inventory_path() -> Path:
    """The realistic JamLab inventory shipped with the embedded lab."""
    return Path(__file__).parent.parent / "sim" / "data" / "inventory.yml"


# -- INI ------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\[([^\]:\s]+)(?::(vars|children))?\]\s*$")


def _ini_value(text: str) -> Any:
    """Ansible reads INI values as Python literals where they are ones (8 → int), else text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float, str, bool)) else text


def _ini_pairs(path: Path, lineno: int, words: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InventoryError(f"{path}, line {lineno}: expected key=value, got {word!r}")
        out[key] = _ini_value(value)
    return out


def _ini_split(path: Path, lineno: int, line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise InventoryError(f"{path}, line {lineno}: {exc}") from exc


def parse_ini(path: Path, text: str) -> Inventory:
    """Ansible's INI inventory: `[group]` host lines with key=value variables, `[group:vars]`,
    `[group:children]`. Host ranges (`vs[0:2]`) are not expanded: name them one by one."""
    hosts: dict[str, tuple[list[str], dict[str, Any]]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    section, kind = "ungrouped", None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                raise InventoryError(f"{path}, line {lineno}: malformed section header {line!r}")
            section, kind = m.group(1), m.group(2)
            continue
        words = _ini_split(path, lineno, line)
        if not words:
            continue
        if kind == "vars":
            group_vars.setdefault(section, {}).update(_ini_pairs(path, lineno, words))
        elif kind == "children":
            if len(words) != 1:
                raise InventoryError(f"{path}, line {lineno}: a children line names one group")
        else:
            name = words[0]
            if "=" in name or "[" in name:
                raise InventoryError(f"{path}, line {lineno}: {name!r} is not a host name "
                                     "(host ranges are not supported: name each host)")
            groups, merged = hosts.setdefault(name, ([], {}))
            if section not in ("all", "ungrouped") and section not in groups:
                groups.append(section)
            merged.update(_ini_pairs(path, lineno, words[1:]))
    return Inventory(path=path, hosts=tuple(Host(n, tuple(g), v) for n, (g, v) in hosts.items()),
                     vars=group_vars.get("all", {}))


def _ip(text: str) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host_ip(host: Host, addresses: Mapping[str, str] | None = None) -> Any:
    """The host's IP address: `ansible_host` when it is one, else what its name resolved to
    (`addresses`, from `resolve_names`), else None (not known without asking DNS)."""
    if host.address is None:
        return None
    ip = _ip(str(host.address))
    if ip is None and addresses:
        ip = _ip(addresses.get(host.name, ""))
    return ip
