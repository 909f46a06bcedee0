"""The lab's IaC in provisioners/, checked with the real tools that run here (ansible-core and
ansible-lint from PyPI, Debian's packer) and, for Terraform (not installable here), a parse of
its files: every variable used is declared, the hosts come from the Ansible inventory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from jamtui.inventory import default_inventory_path, load_inventory

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2] / "provisioners"
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
       "CHECKPOINT_DISABLE": "1"}


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env or ENV, capture_output=True, text=True,
                          timeout=timeout)


def test_playbooks_pass_ansible_syntax_check() -> None:
    out = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.yml",
               "site.yml"], ANSIBLE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_playbooks_and_roles_pass_ansible_lint_production_profile(tmp_path: Path) -> None:
    env = {**ENV, "ANSIBLE_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    out = run([str(BIN / "ansible-lint"), "--offline", "--nocolor"], ANSIBLE, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Profile 'production' was required, and it passed" in out.stdout + out.stderr


def test_the_inventories_agree_with_each_other_and_with_the_lab(tmp_path: Path) -> None:
    """ansible-inventory (the real parser) on the YAML and INI forms, copied away from
    group_vars so the vault is not needed."""
    def listed(name: str) -> dict:
        shutil.copy(ANSIBLE / name, tmp_path / name)
        out = run([str(BIN / "ansible-inventory"), "-i", name, "--list"], tmp_path)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        groups = {g: sorted(doc[g].get("hosts", [])) for g in ("hypervisors", "dns", "vb", "vs")}
        return {"groups": groups, "hostvars": doc["_meta"]["hostvars"]}

    yaml_doc, ini_doc = listed("inventory.yml"), listed("hosts.ini")
    assert yaml_doc == ini_doc
    lab = load_inventory(default_inventory_path())
    assert {h.name: h.vars for h in lab.hosts} == {
        n: {k: v for k, v in hv.items() if k not in lab.vars}
        for n, hv in yaml_doc["hostvars"].items()}


def test_secrets_are_vaulted_and_nothing_secret_is_in_plain_text() -> None:
    vault = ANSIBLE / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    plain = YAML(typ="safe").load((ANSIBLE / "group_vars" / "all" / "vars.yml").read_text())
    for key in ("consul_encrypt", "consul_acl_token", "nomad_acl_token"):
        assert plain[key] == "{{ vault_" + key + " }}"
    uuid = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
    for path in ROOT.rglob("*"):
        if not path.is_file() or path == vault:
            continue
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text, path
        assert not uuid.search(text), f"{path}: a token-like UUID in plain text"
    ignored = (ROOT / ".gitignore").read_text()
    assert ".vault_pass*" in ignored and "*.tfstate" in ignored



def test_packer_template_validates(packer: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "id_ed25519"  # validate reads the build key: a throwaway one
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    env = {**ENV, "PROXMOX_URL": "https://pve1.jamfox.dev:8006/api2/json",
           "PROXMOX_USERNAME": "packer@pve", "PROXMOX_PASSWORD": "validate-only"}
    out = run([packer, "validate", "-var", f"ssh_private_key_file={key}", "debian.pkr.hcl"],
              ROOT / "packer", env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (ROOT / "packer" / "debian.pkr.hcl").read_text()
    assert 'sensitive = true' in text and 'env("PROXMOX_PASSWORD")' in text
    for cleanup in ("cloud-init clean", "truncate -s 0 /etc/machine-id", "userdel -r packer",
                    "rm -f /etc/ssh/ssh_host_*"):
        assert cleanup in text  # nothing of the build stays in the image
    assert "file" not in re.findall(r'provisioner "(\w+)"', text)  # no file copied in


def hcl_blocks(text: str, kind: str) -> dict[str, str]:
    """`kind "name" { ... }` blocks by name, braces balanced."""
    out = {}
    for m in re.finditer(rf'^{kind}\s+"([^"]+)"(?:\s+"([^"]+)")?\s*{{', text, re.M):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(2) or m.group(1)] = text[m.end():i - 1]
    return out


def test_terraform_is_consistent_and_derives_hosts_from_the_inventory() -> None:
    tf = {p.name: p.read_text() for p in (ROOT / "terraform").glob("*.tf")}
    everything = "\n".join(tf.values())
    declared = hcl_blocks(tf["variables.tf"], "variable")
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", everything))
    assert used <= set(declared), f"undeclared: {used - set(declared)}"
    assert set(declared) <= used, f"declared, never used: {set(declared) - used}"
    for name, body in declared.items():
        if re.search(r"sensitive\s*=\s*true", body):
            default = re.search(r'default\s*=\s*"([^"]*)"', body)
            assert default is None or default.group(1) == "", f"{name}: a secret default"
    resource = hcl_blocks(tf["main.tf"], "resource")["node"]
    assert re.search(r"for_each\s*=\s*local\.nodes", resource)
    assert 'yamldecode(file("${path.module}/${var.inventory_file}"))' in tf["main.tf"]
    assert re.search(r'default\s*=\s*"\.\./ansible/inventory\.yml"',
                     declared["inventory_file"])
    # what the resource reads from each host is what the inventory's vb/vs hosts carry
    read = set(re.findall(r"each\.value\.([a-z_]+)", resource)) - {"group"}
    for host in load_inventory(ANSIBLE / "inventory.yml").hosts:
        if host.group in ("vb", "vs"):
            assert read <= set(host.vars), (host.name, read - set(host.vars))
    # jamtui targets proxmox_vm_qemu.node["NAME"]; credentials only from the environment
    assert 'resource "proxmox_vm_qemu" "node"' in tf["main.tf"]
    assert "pm_api_token_secret" not in everything and "pm_password" not in everything
