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


def test_a_plain_inventory_is_read_by_the_safe_loader_as_round_trip_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#17: the round-trip loader took 0.11-0.15 s for the 100-host inventory before any VM
    showed; a plain inventory is read by the safe (C) loader, with the same hosts, groups
    and variables, and only what it refuses is read round-trip (an Ansible !vault tag)."""
    from ruamel.yaml import YAML

    import jamtui.inventory.parse as parse

    text = default_inventory_path().read_text()
    rt = YAML(typ="rt").load(text)
    expected: dict[str, tuple[list[str], dict]] = {}
    parse._walk_group(default_inventory_path(), "all", rt["all"], expected)
    made: list[str] = []

    class Counted(YAML):
        def __init__(self, typ: str = "rt", **kw: object) -> None:
            made.append(typ)
            super().__init__(typ=typ, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(parse, "YAML", Counted)
    inv = load_inventory(default_inventory_path())
    assert made == ["safe"]  # before: ["rt"]
    assert {h.name: (list(h.groups), h.vars) for h in inv.hosts} == expected
    assert inv.vars == dict(rt["all"]["vars"])
    vault = tmp_path / "hosts.yml"
    vault.write_text("all:\n  hosts:\n    vs0:\n      ansible_host: 10.0.0.5\n"
                     "      secret: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n")
    made.clear()
    host = load_inventory(vault).host("vs0")
    assert made == ["safe", "rt"] and host is not None and host.address == "10.0.0.5"


def test_missing_inventory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "absent.yml")


# -- editing ---------------------------------------------------------------------------------

import multiprocessing  # noqa: E402
import shutil  # noqa: E402
from dataclasses import replace  # noqa: E402

from jamtui.inventory import (  # noqa: E402
    NodeSpec,
    add_node,
    propose_node,
    remove_node,
    validate_node,
)

INI = """\
# JamLab in Ansible's INI format
[hypervisors]
pve1 ansible_host=192.168.42.10 cores=16 memory=65536

[vs]
# the Nomad clients
vs0 ansible_host=192.168.42.30 vmid=300 cores=4 memory=8192 disk=64 hypervisor=pve1
vs1 ansible_host=192.168.42.31 vmid=301 cores=4 memory=8192 disk=64 hypervisor=pve1

[vs:vars]
fabio_port=9999

[nodes:children]
vs

[all:vars]
lab_subnet=192.168.42.0/24
lab_gateway=192.168.42.1
"""


@pytest.fixture
def yaml_inv(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    shutil.copy(default_inventory_path(), path)
    return path


def test_proposal_is_the_next_free_name_ip_vmid_on_the_least_loaded_hypervisor(
        yaml_inv: Path) -> None:
    inv = load_inventory(yaml_inv)
    spec = propose_node(inv, "vs")
    # pve1 has 64 GiB with 18 GiB given to VMs; pve2 48 GiB with 20 GiB given
    assert spec == NodeSpec("vs", "vs3", "192.168.42.33", 303, 4, 8192, 64, "pve1")
    assert validate_node(inv, spec) == {}
    assert propose_node(inv, "vb").name == "vb3" and propose_node(inv, "vb").vmid == 203


def test_yaml_add_then_remove_keeps_comments_and_order_byte_for_byte(yaml_inv: Path) -> None:
    before = yaml_inv.read_text()
    inv = add_node(yaml_inv, propose_node(load_inventory(yaml_inv), "vs"))
    text = yaml_inv.read_text()
    assert text.startswith(before.rstrip("\n"))  # everything kept, the host appended to vs
    assert "        vs3:\n          ansible_host: 192.168.42.33\n          vmid: 303\n" in text
    assert inv.host("vs3").group == "vs" and inv.host("vs3").vars["hypervisor"] == "pve1"
    assert (yaml_inv.parent / "inventory.yml.bak").read_text() == before
    remove_node(yaml_inv, "vs3")
    assert yaml_inv.read_text() == before
    assert remove_node(yaml_inv, "vs3").host("vs3") is None  # idempotent


def test_ini_reads_and_edits_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(INI)
    inv = load_inventory(path)
    assert [h.name for h in inv.group("vs")] == ["vs0", "vs1"]
    assert inv.host("vs1").vars == {"ansible_host": "192.168.42.31", "vmid": 301, "cores": 4,
                                    "memory": 8192, "disk": 64, "hypervisor": "pve1"}
    assert inv.vars["lab_gateway"] == "192.168.42.1"
    spec = propose_node(inv, "vs")
    assert (spec.name, spec.ip, spec.vmid) == ("vs2", "192.168.42.32", 302)
    add_node(path, spec)
    lines = path.read_text().splitlines()
    at = lines.index("vs2 ansible_host=192.168.42.32 vmid=302 cores=4 memory=8192 disk=64 "
                     "hypervisor=pve1")
    assert lines[at - 1].startswith("vs1 ") and lines[at + 2] == "[vs:vars]"
    assert load_inventory(path).host("vs2").vars["vmid"] == 302
    remove_node(path, "vs2")
    assert path.read_text() == INI


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"name": "vs_3"}, "name", "RFC 1123"),
    ({"name": "-vs3"}, "name", "RFC 1123"),
    ({"name": "vs1"}, "name", "already in the inventory"),
    ({"ip": "192.168.42.31"}, "ip", "already vs1's"),
    ({"ip": "10.0.0.5"}, "ip", "not a host address in the lab's subnet"),
    ({"ip": "192.168.42.1"}, "ip", "gateway"),
    ({"ip": "192.168.42.999"}, "ip", "not an IP address"),
    ({"vmid": 301}, "vmid", "already vs1's"),
    ({"vmid": 42}, "vmid", "from 100"),
    ({"hypervisor": "pve9"}, "hypervisor", "no hypervisor 'pve9'"),
    ({"cores": 64}, "cores", "pve1 has 16 cores"),
    ({"memory": 60000}, "memory", "MiB unallocated"),
    ({"disk": 1}, "disk", "at least"),
    ({"group": "dns"}, "group", "vb or vs"),
])
def test_validation_names_the_field_and_the_reason(yaml_inv: Path, change: dict, field: str,
                                                   words: str) -> None:
    inv = load_inventory(yaml_inv)
    errors = validate_node(inv, replace(propose_node(inv, "vs"), **change))
    assert list(errors) == [field] and words in errors[field], errors


def test_invalid_node_or_malformed_file_writes_nothing(yaml_inv: Path) -> None:
    before = yaml_inv.read_text()
    bad = replace(propose_node(load_inventory(yaml_inv), "vs"), name="vs1")
    with pytest.raises(InventoryError, match="cannot add vs1: name: vs1 is already"):
        add_node(yaml_inv, bad)
    assert yaml_inv.read_text() == before
    broken = before.replace("        vs2:\n", "        vs2: [\n")
    yaml_inv.write_text(broken)
    with pytest.raises(InventoryError, match=r"inventory.yml, line \d+"):
        add_node(yaml_inv, propose_node(load_inventory(default_inventory_path()), "vs"))
    assert yaml_inv.read_text() == broken
    assert sorted(p.name for p in yaml_inv.parent.iterdir()) == [".inventory.yml.lock",
                                                                 "inventory.yml"]


def _add_many(path: str, group: str, count: int) -> None:
    for _ in range(count):
        for _attempt in range(20):  # a proposal can race with the other editor: propose again
            try:
                add_node(path, propose_node(load_inventory(path), group))
                break
            except InventoryError:
                continue


def test_two_editors_at_once_lose_nothing(yaml_inv: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(yaml_inv), g, 5)) for g in ("vs", "vb")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    inv = load_inventory(yaml_inv)
    assert len(inv.group("vs")) == 8 and len(inv.group("vb")) == 8
    ips = [h.address for h in inv.hosts if h.address]
    assert len(ips) == len(set(ips))
