"""The import contract: the core stays free of Textual, and nothing but the entry uses the lab.

Checked statically over every import statement (top-level or inside a function), so a lazy
import cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jamtui"

# Layers that must run without a terminal (DESIGN.md: sources, store, routing, inventory,
# workflows), and the plain-data modules they share.
NO_TEXTUAL = ("sources", "store", "routing", "route_book", "inventory", "workflows", "model",
              "config", "sim")
# Only the command-line entry may start the embedded lab (for --demo and `jamtui lab`).
MAY_USE_SIM = ("cli",)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    module_parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                if path.name == "__init__.py":
                    base = module_parts[: len(module_parts) - node.level + 1]
                prefix = ".".join(base)
                names.add(f"{prefix}.{node.module}" if node.module else prefix)
                names.update(f"{prefix}.{a.name}" for a in node.names if not node.module)
            elif node.module:
                names.add(node.module)
    return names


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def test_core_layers_do_not_import_textual() -> None:
    offenders = [
        f"jamtui.{name} imports {imp}"
        for name, path in modules()
        if name.split(".")[0] in NO_TEXTUAL
        for imp in imports_of(path)
        if imp == "textual" or imp.startswith("textual.")
    ]
    assert offenders == []


def test_only_the_entry_uses_the_lab() -> None:
    offenders = [
        f"jamtui.{name} imports {imp}"
        for name, path in modules()
        if name.split(".")[0] not in ("sim", *MAY_USE_SIM)
        for imp in imports_of(path)
        if imp == "jamtui.sim" or imp.startswith("jamtui.sim.")
    ]
    assert offenders == []


def test_the_checker_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    # guard against a contract that passes because it sees nothing
    names = imports_of(PACKAGE / "cli.py")
    assert "jamtui.sim.lab" in names
    assert "jamtui.config" in names
