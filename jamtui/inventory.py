"""Reading the Ansible inventory, the single source of truth for which nodes exist."""

from __future__ import annotations

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


def load_inventory(path: str | Path) -> Inventory:
    """Load a YAML inventory; raise InventoryError naming file and line on any defect."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror}") from exc
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InventoryError(f"{path}{where}: invalid YAML: {exc.problem}") from exc
    except YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from exc
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
    return Path(__file__).parent / "sim" / "data" / "inventory.yml"
