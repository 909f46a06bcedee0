"""Inventories as people write them: hosts by name, defects named by field, a BOM, a
read-only file, a failed write. One validator for doctor, `node add` and the cockpit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jamtui.config import Config
from jamtui.doctor import _config_findings
from jamtui.inventory import (
    InventoryError,
    add_node,
    default_inventory_path,
    load_inventory,
    propose_node,
    remove_node,
    validate_node,
)
from jamtui.sim.lab import Lab
from tests.conftest import CLIENT_ENV


@pytest.fixture
def inv_path(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    shutil.copy(default_inventory_path(), path)
    return path


def by_name(path: Path, *hosts: str) -> None:
    text = path.read_text()
    ips = {"vs0": "192.168.42.30", "vs1": "192.168.42.31", "vs2": "192.168.42.32"}
    for host in hosts:
        text = text.replace(f"ansible_host: {ips[host]}", f"ansible_host: {host}.jamfox.dev")
    path.write_text(text)


def test_hosts_by_name_are_valid_and_resolved_only_for_addresses(inv_path: Path,
                                                                   lab: Lab) -> None:
    from jamtui.inventory import inventory_problems, resolve_names
    from jamtui.sources.dns import addresses_of

    by_name(inv_path, "vs0", "vs2")
    inv = load_inventory(inv_path)
    assert inventory_problems(inv) == []
    # no address needed, nothing resolved: the proposal skips what it cannot know
    assert propose_node(inv, "vs").name == "vs3"
    # an address is needed: names through the internal DNS (the lab's)
    addresses = resolve_names(inv, addresses_of(lab.urls["dns"]))
    assert addresses == {"vs0": "192.168.42.30", "vs2": "192.168.42.32"}
    spec = propose_node(inv, "vs", addresses)
    assert spec.ip == "192.168.42.33"
    taken = validate_node(inv, spec.__class__(**{**spec.__dict__, "ip": "192.168.42.32"}),
                          addresses)
    assert taken == {"ip": "192.168.42.32 is already vs2's"}


@pytest.mark.parametrize(("old", "new", "words"), [
    ("vmid: 301", "vmid: abc", "host vs1: vmid: 'abc' is not a whole number"),
    ("memory: 8192", "memory: 64G", "host vs0: memory: '64G' is not a whole number of MiB"),
    ("lab_subnet: 192.168.42.0/24", "lab_subnet: banana",
     "all vars: lab_subnet: 'banana' is not a subnet"),
    ("ansible_host: 192.168.42.31", "ansible_host: 'vs1 .lab'",
     "host vs1: ansible_host: 'vs1 .lab' is neither an IP address nor a host name"),
    ("hypervisor: pve2", "hypervisor: pve9", "hypervisor: 'pve9' is not in the hypervisors"),
])
def test_doctor_and_node_add_name_the_field_and_the_reason(inv_path: Path, tmp_path: Path,
                                                           old: str, new: str,
                                                           words: str) -> None:
    inv_path.write_text(inv_path.read_text().replace(old, new, 1))
    findings = [f for f in _config_findings(Config(inventory=str(inv_path)))
                if f.backend == "inventory"]
    assert [f.ok for f in findings] == [False] and words in findings[0].detail
    # `jamtui node add` refuses with the same words, no traceback
    cfg = tmp_path / "jamtui.toml"
    cfg.write_text(f'inventory = "{inv_path}"\n[nomad]\naddress = "http://127.0.0.1:9"\n'
                   f'[consul]\naddress = "http://127.0.0.1:9"\n'
                   f'[provisioning]\nstate_dir = "{tmp_path / "state"}"\n')
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    out = subprocess.run([sys.executable, "-m", "jamtui", "--config", str(cfg), "node", "add",
                          "--group", "vs", "--yes"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and words in out.stderr
    from jamtui.inventory import inventory_problems

    problems = inventory_problems(load_inventory(inv_path))
    assert len(problems) == 1 and words in problems[0], problems


def node_add(inv_path: Path, tmp_path: Path, dns: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "jamtui.toml"
    cfg.write_text(f'inventory = "{inv_path}"\n[nomad]\naddress = "http://127.0.0.1:9"\n'
                   f'[consul]\naddress = "http://127.0.0.1:9"\n[dns]\nserver = "{dns}"\n'
                   f'[provisioning]\nstate_dir = "{tmp_path / "state"}"\n')
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    return subprocess.run([sys.executable, "-m", "jamtui", "--config", str(cfg), "node", "add",
                           "--group", "vs", "--yes"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_node_add_with_hosts_by_name(inv_path: Path, tmp_path: Path, lab: Lab) -> None:
    # a name the internal DNS does not know: the IP cannot be checked, so it is refused
    text = inv_path.read_text()
    inv_path.write_text(text.replace("ansible_host: 192.168.42.32",
                                     "ansible_host: gone.jamfox.dev"))
    refused = node_add(inv_path, tmp_path, lab.urls["dns"])
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert ("ip: cannot tell whether 192.168.42.32 is free: vs2 (gone.jamfox.dev) did not "
            "resolve") in refused.stderr
    # a name it knows: the next free address past it, and the workflow starts (it stops at
    # the template: Proxmox is not configured here)
    inv_path.write_text(text.replace("ansible_host: 192.168.42.32",
                                     "ansible_host: vs2.jamfox.dev"))
    started = node_add(inv_path, tmp_path, lab.urls["dns"])
    assert "Traceback" not in started.stderr, started.stderr
    # the entry is written when the workflow is made (under the inventory's lock)
    added = load_inventory(inv_path).host("vs3")
    assert added is not None and added.address == "192.168.42.33"
    assert started.returncode == 1 and "Proxmox is not configured" in started.stderr


def test_an_ini_inventory_with_a_bom_is_read_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    text = ("[hypervisors]\npve1 ansible_host=192.168.42.10 cores=16 memory=65536\n\n"
            "[vs]\nvs0 ansible_host=192.168.42.30 vmid=300 cores=2 memory=2048 disk=32 "
            "hypervisor=pve1\n\n[all:vars]\nlab_subnet=192.168.42.0/24\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    inv = load_inventory(path)
    assert [h.name for h in inv.group("vs")] == ["vs0"]
    add_node(path, propose_node(inv, "vs"))
    remove_node(path, "vs1")
    assert path.read_bytes() == b"\xef\xbb\xbf" + text.encode()


def test_a_read_only_inventory_is_refused_untouched(inv_path: Path) -> None:
    before = inv_path.read_bytes()
    inv_path.chmod(0o444)
    ino = inv_path.stat().st_ino
    with pytest.raises(InventoryError, match="read-only"):
        add_node(inv_path, propose_node(load_inventory(inv_path), "vs"))
    st = inv_path.stat()
    assert (st.st_ino, st.st_mode & 0o777, inv_path.read_bytes()) == (ino, 0o444, before)
    assert not (inv_path.parent / "inventory.yml.bak").exists()


def test_a_failed_write_leaves_the_file_and_the_old_bak(inv_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    bak = inv_path.parent / "inventory.yml.bak"
    bak.write_text("# the previous backup\n")
    before = inv_path.read_text()
    real = os.replace

    def failing(src: object, dst: object) -> None:
        if Path(str(dst)) == inv_path:
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        add_node(inv_path, propose_node(load_inventory(inv_path), "vs"))
    assert inv_path.read_text() == before
    assert bak.read_text() == "# the previous backup\n"
    assert sorted(p.name for p in inv_path.parent.iterdir()) == [
        ".inventory.yml.lock", "inventory.yml", "inventory.yml.bak"]


def test_an_edit_keeps_the_files_mode_and_group(inv_path: Path) -> None:
    inv_path.chmod(0o640)
    add_node(inv_path, propose_node(load_inventory(inv_path), "vs"))
    assert inv_path.stat().st_mode & 0o777 == 0o640
    assert (inv_path.parent / "inventory.yml.bak").stat().st_mode & 0o777 == 0o640


def test_the_trace_resolves_a_bastion_written_by_name(inv_path: Path, lab: Lab) -> None:
    from jamtui.config import DNSConfig
    from jamtui.tracing import expected_addresses

    inv_path.write_text(inv_path.read_text().replace("ansible_host: 192.168.42.5",
                                                     "ansible_host: bastion.jamfox.dev"))
    cfg = Config(inventory=str(inv_path), dns=DNSConfig(server=lab.urls["dns"]))
    assert expected_addresses(cfg, load_inventory(inv_path)) == ("192.168.42.5",)
