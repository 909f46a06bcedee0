"""Round-trip text edits of an inventory (comments and order kept): a host line added to or
removed from INI or YAML."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from .parse import _SECTION


def _ini_add(text: str, group: str, line: str) -> str:
    lines = text.splitlines()
    start = next((i for i, raw in enumerate(lines) if raw.strip() == f"[{group}]"), None)
    if start is None:
        tail = "" if not lines or not lines[-1].strip() else "\n"
        return text.rstrip("\n") + f"\n{tail}[{group}]\n{line}\n"
    at = start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("["):
            break
        if stripped and not stripped.startswith(("#", ";")):
            at = i + 1
    lines.insert(at, line)
    return "\n".join(lines) + "\n"


def _ini_remove(text: str, name: str) -> str:
    out, kind = [], None
    for raw in text.splitlines():
        stripped = raw.strip()
        m = _SECTION.match(stripped) if stripped.startswith("[") else None
        if m:
            kind = m.group(2)
        elif kind is None and stripped and not stripped.startswith(("#", ";")) \
                and stripped.split()[0] == name:
            continue
        out.append(raw)
    return "\n".join(out) + "\n"


def _ini_host_line(name: str, hvars: dict[str, Any]) -> str:
    return " ".join([name, *(f"{k}={v}" for k, v in hvars.items())])


# -- YAML round-trip --------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _yaml_edit(text: str, fn: Any) -> str:
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    doc = yaml.load(text)
    fn(doc, CommentedMap)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def _yaml_add(text: str, group: str, name: str, hvars: dict[str, Any]) -> str:
    def add(doc: Any, cmap: Any) -> None:
        root = doc["all"]
        if root.get("children") is None:
            root["children"] = cmap()
        grp = root["children"].get(group)
        if grp is None:
            grp = root["children"][group] = cmap()
        if grp.get("hosts") is None:
            grp["hosts"] = cmap()
        grp["hosts"][name] = cmap(hvars)

    return _yaml_edit(text, add)


def _yaml_remove(text: str, name: str) -> str:
    def walk(group: Any) -> None:
        if not isinstance(group, dict):
            return
        hosts = group.get("hosts")
        if isinstance(hosts, dict) and name in hosts:
            del hosts[name]
        for child in (group.get("children") or {}).values():
            walk(child)

    return _yaml_edit(text, lambda doc, _cmap: walk(doc["all"]))
