"""Reading the Ansible inventory: groups, host variables, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jamtui.inventory import InventoryError, default_inventory_path, load_inventory


def test_default_inventory_is_a_realistic_jamlab() -> None:
    inv = load_inventory(default_inventory_path())
    assert [h.name for h in inv.group("hypervisors")] == ["pve1", "pve2"]
    assert [h.name for h in inv.group("vb")] == ["vb0", "vb1", "vb2"]
    assert [h.name for h in inv.group("vs")] == ["vs0", "vs1", "vs2"]
    assert inv.host("bastion") is not None and inv.host("pi") is not None
    vs1 = inv.host("vs1")
    assert vs1 is not None and vs1.group == "vs"
    assert vs1.vars["vmid"] == 301 and vs1.vars["hypervisor"] == "pve2"
    assert vs1.address == "192.168.42.31"
    vmids = [h.vars["vmid"] for h in inv.hosts if "vmid" in h.vars]
    assert len(vmids) == len(set(vmids))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("all:\n  children:\n    vs:\n      hosts:\n        vs0: [1, 2]\n", "line 5"),
        ("all:\n  children:\n    vs:\n      hosts: [vs0]\n", "line 4"),
        ("all:\n  children:\n    vs:\n      hostz: {}\n", "line 4"),
        ("all:\n  children:\n    vs:\n  hosts: {a: 1\n", "line 5"),
        ("- just\n- a list\n", "top-level 'all'"),
    ],
)
def test_malformed_inventory_names_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert str(path) in str(info.value) and where in str(info.value), str(info.value)


def test_missing_inventory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "absent.yml")
