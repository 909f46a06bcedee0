"""The lab's IaC in provisioners/, checked with the real tools CI has: ansible-core and
ansible-lint from PyPI (the venv's), Debian's packer, haproxy. Terraform is not on CI: its
files are parsed with python-hcl2 and checked for consistency; where a `terraform` binary
is installed, `terraform fmt` and the inventory-reading `locals` are checked with it too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
from ruamel.yaml import YAML

import jamtui.workflows

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "provisioners"
ANSIBLE = ROOT / "ansible"
PACKER = ROOT / "packer"
TERRAFORM = ROOT / "terraform"
LAB_INVENTORY = REPO / "jamtui" / "sim" / "data" / "inventory.yml"
CALLBACKS = Path(jamtui.workflows.__file__).parent / "ansible_callback"
BIN = Path(sys.executable).parent
ROLES = ("common", "hashicorp_repo", "dns", "consul", "nomad", "fabio", "haproxy",
         "nfs_server", "nfs_client", "docker")


def tool_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No vault password, no developer config, caches in tmp: the same run everywhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "PACKER_", "TF_", "PROXMOX_", "PM_"))}
    return {**env, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "CHECKPOINT_DISABLE": "1",
            "TMPDIR": str(tmp_path), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            **extra}


def run(argv: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


# -- Ansible -----------------------------------------------------------------------------------


def test_site_playbook_passes_syntax_check_with_both_inventories(tmp_path: Path) -> None:
    """The vault is not needed for a syntax check: no password anywhere."""
    env = tool_env(tmp_path)
    out = run([BIN / "ansible-playbook", "--syntax-check", "-i",
               "provisioners/ansible/inventory.yml", "provisioners/ansible/site.yml"], REPO, env)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run([BIN / "ansible-playbook", "--syntax-check", "-i", "hosts.ini", "site.yml"],
              ANSIBLE, env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_playbook_and_roles_pass_ansible_lint_production_profile(tmp_path: Path) -> None:
    config = load_yaml(ANSIBLE / ".ansible-lint")
    assert config["profile"] == "production"
    assert not config.get("skip_list") and not config.get("warn_list")  # no rule waived
    out = run([BIN / "ansible-lint", "--offline", "--nocolor"], ANSIBLE, tool_env(tmp_path),
              timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Profile 'production' was required, and it passed" in out.stdout + out.stderr


def test_roles_use_only_ansible_core_modules_with_fqcn() -> None:
    keywords = {"name", "when", "loop", "loop_control", "label", "register", "notify", "until",
                "retries", "delay", "changed_when", "failed_when", "no_log", "become", "vars",
                "check_mode", "tags", "ignore_errors", "run_once", "delegate_to", "listen"}
    for tasks in (ANSIBLE / "roles").glob("*/*/main.yml"):
        if tasks.parent.name not in ("tasks", "handlers"):
            continue
        for path in tasks.parent.glob("*.yml"):
            for item in load_yaml(path):
                modules = set(item) - keywords
                assert len(modules) == 1, (path, item.get("name"), modules)
                assert modules.pop().startswith("ansible.builtin."), (path, item.get("name"))
    assert sorted(p.name for p in (ANSIBLE / "roles").iterdir()) == sorted(ROLES)
    for role in ROLES:
        assert (ANSIBLE / "roles" / role / "meta" / "main.yml").is_file(), role


RENDER = """\
- name: Render every role's templates for one host of each group
  hosts: vb0,vs0,bastion,pi
  connection: local
  gather_facts: false
  vars_files: {vars_files}
  vars:
    ansible_managed: managed by Ansible
    vault_consul_encrypt: "dGVzdC1vbmx5LWdvc3NpcC1rZXktbm90LXJlYWwtMDA="
    vault_consul_acl_token: test-consul-token
    vault_nomad_acl_token: test-nomad-token
  tasks:
    - name: Render
      ansible.builtin.debug:
        msg: {msg}
"""


def render_templates(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Each role template as Ansible renders it from the real inventory, per host; the play
    runs in tmp (with fake vault values) so the encrypted vault is not loaded."""
    templates = sorted((ANSIBLE / "roles").glob("*/templates/*.j2"))
    shutil.copy(ANSIBLE / "inventory.yml", tmp_path / "inventory.yml")
    vars_files = [str(ANSIBLE / "group_vars" / "all" / "vars.yml")] + [
        str(p) for p in sorted((ANSIBLE / "roles").glob("*/defaults/main.yml"))]
    lookups = ", ".join(f"'{t.parent.parent.name}/{t.stem}': lookup('ansible.builtin.template',"
                        f" '{t}')" for t in templates)
    (tmp_path / "render.yml").write_text(RENDER.format(
        vars_files=json.dumps(vars_files), msg=json.dumps("{{ {" + lookups + "} }}")))
    env = tool_env(tmp_path, ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
                   ANSIBLE_STDOUT_CALLBACK="jamtui_events")
    out = run([BIN / "ansible-playbook", "-i", "inventory.yml", "render.yml"], tmp_path, env)
    assert out.returncode == 0, out.stdout + out.stderr
    rendered = {}
    for line in out.stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "runner_on_ok":
            rendered[event["event_data"]["host"]] = event["event_data"]["res"]["msg"]
    assert sorted(rendered) == ["bastion", "pi", "vb0", "vs0"]
    return rendered


def inventory_hosts(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    children = load_yaml(path)["all"]["children"]
    return {group: body.get("hosts") or {} for group, body in children.items()}


def hcl(text: str) -> dict[str, Any]:
    return hcl2.loads(text)


def unq(value: Any) -> Any:
    """python-hcl2 keeps quotes and ${} around some values, depending on its version."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
    if isinstance(value, list):
        return [unq(v) for v in value]
    return value


def test_role_templates_render_from_the_inventory(tmp_path: Path) -> None:
    rendered = render_templates(tmp_path)
    hosts = inventory_hosts(ANSIBLE / "inventory.yml")
    vb_ips = [h["ansible_host"] for h in hosts["vb"].values()]
    vs = sorted(hosts["vs"].items())

    # Consul: servers on vb, clients elsewhere, all joining the vb group, secrets from vault
    for name in ("vb0", "vs0", "bastion", "pi"):
        conf = hcl(rendered[name]["consul/consul.hcl"])
        assert unq(conf["retry_join"]) == vb_ips, name
        assert unq(conf["encrypt"]) == "dGVzdC1vbmx5LWdvc3NpcC1rZXktbm90LXJlYWwtMDA="
        tokens = conf["acl"][0]["tokens"][0]
        assert unq(tokens["agent"]) == "test-consul-token"
        assert (conf.get("server") is True) == (name == "vb0"), name
        assert ("initial_management" in tokens) == (name == "vb0"), name
    assert hcl(rendered["vb0"]["consul/consul.hcl"])["bootstrap_expect"] == len(vb_ips)

    # Nomad: servers on vb, clients on vs with the NFS host volume
    server = hcl(rendered["vb0"]["nomad/nomad.hcl"])
    assert server["server"][0]["bootstrap_expect"] == len(vb_ips)
    assert "client" not in server
    client = hcl(rendered["vs0"]["nomad/nomad.hcl"])
    assert "server" not in client
    joins = unq(client["client"][0]["server_join"][0]["retry_join"])
    assert joins == [f"{ip}:4647" for ip in vb_ips]
    assert unq(client["consul"][0]["token"]) == "test-consul-token"

    # HAProxy on the bastion: one server line per vs host, at its Fabio (9999)
    haproxy = rendered["bastion"]["haproxy/haproxy.cfg"]
    servers = re.findall(r"^\s+server (\S+) (\S+) check port 9998$", haproxy, re.M)
    assert servers == [(n, f"{h['ansible_host']}:9999") for n, h in vs]
    checker = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if Path(checker).exists():  # CI installs haproxy (scripts/test)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy)
        out = run([checker, "-c", "-f", cfg], tmp_path, tool_env(tmp_path))
        assert out.returncode == 0, out.stdout + out.stderr

    # internal DNS: every inventory host by short and full name; *.consul to the servers
    records = rendered["pi"]["dns/jamlab.hosts"]
    for group in hosts.values():
        for name, host in group.items():
            assert f"{host['ansible_host']} {name}.jamfox.dev {name}\n" in records, name
    dns = rendered["pi"]["dns/jamlab.conf"]
    assert [f"server=/consul/{ip}#8600" for ip in vb_ips] == re.findall(r"server=/consul/.*",
                                                                        dns)
    assert f"address=/jamfox.dev/{hosts['bastion']['bastion']['ansible_host']}" in dns
    if shutil.which("dnsmasq"):  # not on CI; where it is, dnsmasq checks its own syntax
        (tmp_path / "jamlab.conf").write_text(dns.replace("/etc/jamlab.hosts", os.devnull))
        out = run(["dnsmasq", "--test", f"--conf-file={tmp_path / 'jamlab.conf'}"], tmp_path,
                  tool_env(tmp_path))
        assert out.returncode == 0, out.stdout + out.stderr

    # NFS: exported to each vs host, mounted from the dns host
    exports = rendered["pi"]["nfs_server/exports"]
    assert all(f"{h['ansible_host']}(rw" in exports for _, h in vs)
    assert f"What={hosts['dns']['pi']['ansible_host']}:/srv/nfs/jamlab" in \
        rendered["vs0"]["nfs_client/nfs.mount"]


def test_the_inventories_agree_with_each_other_and_with_the_lab(tmp_path: Path) -> None:
    """ansible-inventory, the real parser, on the YAML and INI forms and on jamtui's lab
    inventory (each copied into tmp, away from group_vars: no vault needed)."""

    def listed(source: Path, name: str) -> dict[str, Any]:
        (tmp_path / name).write_text(source.read_text())
        out = run([BIN / "ansible-inventory", "-i", name, "--list"], tmp_path,
                  tool_env(tmp_path))
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        groups = {g: sorted(body.get("hosts", [])) for g, body in doc.items()
                  if g not in ("_meta", "all", "ungrouped")}
        return {"groups": groups, "hostvars": doc["_meta"]["hostvars"]}

    yaml_doc = listed(ANSIBLE / "inventory.yml", "inventory.yml")
    assert yaml_doc == listed(ANSIBLE / "hosts.ini", "hosts.ini")
    assert yaml_doc == listed(LAB_INVENTORY, "lab.yml")
    assert sorted(yaml_doc["groups"]) == ["bastion", "dns", "hypervisors", "vb", "vs"]
    for group in ("bastion", "vb", "vs"):  # the VMs: what Terraform needs of each
        for name in yaml_doc["groups"][group]:
            host = yaml_doc["hostvars"][name]
            assert {"ansible_host", "vmid", "cores", "memory", "disk", "hypervisor"} <= set(host)
            assert isinstance(host["vmid"], int) and host["hypervisor"] in \
                yaml_doc["groups"]["hypervisors"]


# -- secrets ------------------------------------------------------------------------------------

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
GOSSIP_KEY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])")
LITERAL_SECRET = re.compile(
    r"""(?ix)\b[\w.]*(?:token|secret|password|passwd|encrypt)[\w.]*\s*[:=]\s*
        ["']([^"'{$\s!*][^"']{5,})["']""")  # "!" and "*" lock a password


def test_secrets_are_vaulted_and_nothing_secret_is_in_plain_text() -> None:
    vault = ANSIBLE / "group_vars" / "all" / "vault.yml"
    text = vault.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert all(re.fullmatch(r"[0-9a-f]+", line) for line in text.splitlines()[1:])
    plain = load_yaml(ANSIBLE / "group_vars" / "all" / "vars.yml")
    for key in ("consul_encrypt", "consul_acl_token", "nomad_acl_token"):
        assert plain[key] == "{{ vault_" + key + " }}"

    for path in sorted(ROOT.rglob("*")):
        if not path.is_file() or path == vault:
            continue
        body = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in body, path
        assert not UUID.search(body), f"{path}: a token-like UUID in plain text"
        assert not GOSSIP_KEY.search(body), f"{path}: a base64 key in plain text"
        assert not LITERAL_SECRET.search(body), \
            f"{path}: a literal secret: {LITERAL_SECRET.search(body).group(0)}"  # type: ignore[union-attr]
        assert not path.name.startswith(".vault_pass"), path

    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".vault_pass*" in ignored and "*.tfstate" in ignored


# -- Packer -------------------------------------------------------------------------------------


def test_packer_template_validates(packer: str, tmp_path: Path) -> None:
    env = tool_env(tmp_path)
    out = run([packer, "validate", "-syntax-only", "debian.pkr.hcl"], PACKER, env)
    assert out.returncode == 0, out.stdout + out.stderr
    values = ["-var", "proxmox_url=https://pve1.jamfox.dev:8006/api2/json",
              "-var", "proxmox_username=packer@pve", "-var", "proxmox_password=validate-only"]
    out = run([packer, "validate", *values, "debian.pkr.hcl"], PACKER, env)
    assert out.returncode == 0, out.stdout + out.stderr
    # and the full validation does check: without credentials it refuses
    out = run([packer, "validate", "debian.pkr.hcl"], PACKER, env)
    assert out.returncode != 0 and "password must be specified" in out.stdout + out.stderr


def test_packer_template_leaves_no_secret_in_the_image() -> None:
    template = hcl((PACKER / "debian.pkr.hcl").read_text())
    variables = {unq(k): v for block in template["variable"] for k, v in block.items()}
    assert variables["proxmox_password"].get("sensitive") is True
    assert unq(variables["template_vmid"]["default"]) == 9000
    assert unq(variables["template_name"]["default"]) == "debian-12-cloudinit"
    for name in ("proxmox_url", "proxmox_username", "proxmox_node", "storage_pool"):
        assert name in variables

    (build,) = template["build"]
    provisioners = [(unq(kind), body) for p in build["provisioner"] for kind, body in p.items()]
    assert {kind for kind, _ in provisioners} == {"shell"}  # no file copied into the image
    steps = [line for _, body in provisioners for line in unq(body["inline"])]
    script = "\n".join(steps)
    for cleanup in ("cloud-init clean", "truncate -s 0 /etc/machine-id",
                    "rm -f /var/lib/dbus/machine-id", "rm -f /etc/ssh/ssh_host_*",
                    "rm -rf /var/log/installer", "rm -f /etc/sudoers.d/packer",
                    "userdel -f -r packer"):
        assert cleanup in script, cleanup
    assert steps[-1] == "userdel -f -r packer"  # the build user goes last
    source = (PACKER / "debian.pkr.hcl").read_text()
    assert "ssh_private_key_file" not in source and "vault" not in source.lower()
    preseed = (PACKER / "http" / "preseed.cfg").read_text()
    assert "passwd/user-password " not in preseed  # the password only on the boot line


# -- Terraform ----------------------------------------------------------------------------------


def terraform_files() -> dict[str, dict[str, Any]]:
    return {p.name: hcl2.loads(p.read_text()) for p in sorted(TERRAFORM.glob("*.tf"))}


def blocks(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return {unq(k): v for block in doc.get(kind, []) for k, v in block.items()}


def test_terraform_is_consistent_and_derives_the_nodes_from_the_inventory() -> None:
    files = terraform_files()
    assert sorted(files) == ["main.tf", "outputs.tf", "variables.tf", "versions.tf"]
    text = "\n".join(p.read_text() for p in TERRAFORM.glob("*.tf"))

    declared = blocks(files["variables.tf"], "variable")
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    assert used <= set(declared), f"used, not declared: {used - set(declared)}"
    assert set(declared) <= used, f"declared, never used: {set(declared) - used}"
    secrets = {n for n, v in declared.items() if v.get("sensitive") is True}
    assert {"proxmox_api_token_secret", "cloudinit_password"} <= secrets
    for name in secrets:
        assert declared[name].get("default") in (None, "null"), f"{name} has a default"

    (terraform,) = files["versions.tf"]["terraform"]
    proxmox = terraform["required_providers"][0]["proxmox"]
    assert unq(proxmox["source"]) == "telmate/proxmox"
    provider = blocks(files["versions.tf"], "provider")["proxmox"]
    assert unq(provider["pm_api_token_secret"]) == "var.proxmox_api_token_secret"

    (local,) = files["main.tf"]["locals"]
    assert unq(local["inventory"]) == 'yamldecode(file("${path.module}/../ansible/inventory.yml"))'
    assert (TERRAFORM / ".." / "ansible" / "inventory.yml").resolve().is_file()
    nodes = unq(local["nodes"])
    assert "local.groups.vb.hosts" in nodes and "local.groups.vs.hosts" in nodes
    assert unq(local["groups"]) == "local.inventory.all.children"

    resources = blocks(files["main.tf"], "resource")
    assert list(resources) == ["proxmox_vm_qemu"]  # jamtui: -target=proxmox_vm_qemu.node["x"]
    vm = {unq(k): v for k, v in resources["proxmox_vm_qemu"].items()}["node"]
    assert unq(vm["for_each"]) == "local.nodes"
    assert unq(vm["clone"]) == "var.template_name"
    assert unq(vm["target_node"]) == "each.value.hypervisor"
    assert unq(vm["vmid"]) == "each.value.vmid"
    assert unq(vm["os_type"]) == "cloud-init"
    assert unq(vm["ipconfig0"]).startswith("ip=${each.value.ansible_host}/")
    # everything the resource reads of a host, every vb and vs host of the inventory has
    body = re.search(r'resource "proxmox_vm_qemu" "node" \{.*?\n\}', text, re.S)
    assert body is not None
    read = set(re.findall(r"each\.value\.([a-z_]+)", body.group(0))) - {"group"}
    assert {"ansible_host", "vmid", "cores", "memory", "disk", "hypervisor"} <= read
    hosts = inventory_hosts(ANSIBLE / "inventory.yml")
    for name, host in {**hosts["vb"], **hosts["vs"]}.items():
        assert read <= set(host), (name, read - set(host))

    outputs = blocks(files["outputs.tf"], "output")
    assert "proxmox_vm_qemu.node" in unq(outputs["ips"]["value"])


LOCALS_ONLY = """
output "nodes" { value = local.nodes }
output "ipconfig0" {
  value = {
    for n, h in local.nodes : n => "ip=${h.ansible_host}/${local.prefix_len},gw=${local.gateway}"
  }
}
"""


def test_terraform_fmt_and_locals_with_a_local_terraform(tmp_path: Path) -> None:
    """Only where a terraform binary is installed (not on CI): `fmt -check`, and the
    `locals` evaluated for real on the inventory (no provider needed, offline)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary here (CI has none): the HCL parse above covers CI")
    env = tool_env(tmp_path, TF_IN_AUTOMATION="1", TF_INPUT="0",
                   TF_CLI_CONFIG_FILE=os.devnull)
    out = run([terraform, "fmt", "-check", "-diff", "-recursive"], TERRAFORM, env)
    assert out.returncode == 0, out.stdout + out.stderr

    main = (TERRAFORM / "main.tf").read_text()
    start = re.search(r"^locals \{", main, re.M)
    assert start is not None
    end = main.index("\n}\n", start.start()) + 3
    (tmp_path / "ansible").mkdir()
    shutil.copy(ANSIBLE / "inventory.yml", tmp_path / "ansible" / "inventory.yml")
    module = tmp_path / "terraform"
    module.mkdir()
    shutil.copy(TERRAFORM / "variables.tf", module / "variables.tf")
    (module / "main.tf").write_text(main[start.start():end] + LOCALS_ONLY)
    for argv in (["init", "-backend=false", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
        out = run([terraform, *argv], module, env)
        assert out.returncode == 0, out.stdout + out.stderr
    out = run([terraform, "output", "-json"], module, env)
    values = {k: v["value"] for k, v in json.loads(out.stdout).items()}
    hosts = inventory_hosts(ANSIBLE / "inventory.yml")
    expected = {**hosts["vb"], **hosts["vs"]}
    assert sorted(values["nodes"]) == sorted(expected)
    for name, host in expected.items():
        assert {k: values["nodes"][name][k] for k in host} == host
        assert values["ipconfig0"][name] == f"ip={host['ansible_host']}/24,gw=192.168.42.1"
